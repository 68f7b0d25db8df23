//! Wall-clock time and randomness, reached only through here so tests can control them.

use ferry_model::{ObjectId, Timestamp};

/// Wall-clock time as the server sees it (token expiry, `[%CurrentDateTime%]`, failure times).
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods, reason = "this is the production clock the rule points to")]
    fn now(&self) -> Timestamp {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        Timestamp::from_unix_micros(micros).expect("the system clock is within the years 1970-9999")
    }
}

/// Bytes from the operating system's secure random source.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
    bytes
}

/// A new time-ordered object id.
pub(crate) fn new_object_id(now: Timestamp) -> ObjectId {
    let millis = u64::try_from(now.unix_micros() / 1000).unwrap_or(0);
    ObjectId::from_parts(millis, u128::from_be_bytes(random_bytes::<16>()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An error with the causes under it, as one line (a refused certificate is often a cause).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
