//! Wall-clock time and new object ids, reached only through here so tests and the simulation
//! can control them.

use ferry_model::{ObjectId, Timestamp};

/// Wall-clock time as the device sees it (`[%CurrentDateTime%]` in local queries).
pub trait Clock: Send + Sync {
    /// The current time.
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

/// Where new object ids come from. Ids are made on the device and never change.
pub trait IdSource: Send + Sync {
    /// A new id, never given before; `now` lets ids be ordered by creation time.
    fn new_id(&self, now: Timestamp) -> ObjectId;
}

/// Time-ordered ids with 80 random bits from the operating system.
pub struct RandomIds;

impl IdSource for RandomIds {
    fn new_id(&self, now: Timestamp) -> ObjectId {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).expect("the operating system provides random bytes");
        let millis = u64::try_from(now.unix_micros() / 1000).unwrap_or(0);
        ObjectId::from_parts(millis, u128::from_be_bytes(random))
    }
}

/// 32 random hex digits: upload ids and device names.
pub(crate) fn random_token() -> String {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).expect("the operating system provides random bytes");
    random.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random seed, for the jitter of a sync's retry waits.
pub(crate) fn random_seed() -> u64 {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).expect("the operating system provides random bytes");
    u64::from_be_bytes(random)
}
