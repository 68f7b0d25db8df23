//! Limits on sign-in attempts, each over the last minute: per user name (guessing one user's
//! password) and per client address (guessing many users' passwords from one place). Memory is
//! bounded: entries older than a minute are forgotten, and at most [`SIGN_IN_TRACKED_MAX`] names
//! and addresses are remembered at once (the one that tried longest ago makes room).
//! An IPv6 client counts by its /64 network, which one holder has whole.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use ferry_model::Timestamp;

/// The most user names, and the most client addresses, whose recent attempts are remembered;
/// past it, the one whose last attempt is oldest is forgotten.
pub const SIGN_IN_TRACKED_MAX: usize = 10_000;
/// The window the limits count over, in microseconds.
const WINDOW_MICROS: i64 = 60_000_000;

/// Why an attempt was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    User { max: usize },
    Address { max: usize },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::User { max } => write!(
                f,
                "more than {max} sign-in attempts for this user in one minute: wait a minute"
            ),
            Refusal::Address { max } => write!(
                f,
                "more than {max} sign-in attempts from this address in one minute: wait a minute"
            ),
        }
    }
}

/// The recent attempts of each name and each address.
#[derive(Default)]
pub(crate) struct SignInLimiter {
    windows: Mutex<(Window<String>, Window<IpAddr>)>,
}

impl SignInLimiter {
    /// Counts an attempt for `name` from `address`, or refuses it (and counts nothing). Loopback
    /// addresses have no address limit: they are the machine's own clients, or a reverse proxy
    /// in front of the server, whose clients all share its address.
    pub(crate) fn attempt(
        &self,
        name: &str,
        address: Option<IpAddr>,
        now: Timestamp,
        per_user_max: usize,
        per_address_max: usize,
    ) -> Result<(), Refusal> {
        let mut windows = self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (names, addresses) = &mut *windows;
        let now = now.unix_micros();
        let address = address.map(|a| a.to_canonical()).filter(|a| !a.is_loopback()).map(network);
        names.check(&name.to_owned(), now, per_user_max, |max| Refusal::User { max })?;
        if let Some(address) = &address {
            addresses.check(address, now, per_address_max, |max| Refusal::Address { max })?;
        }
        names.record(name.to_owned(), now);
        if let Some(address) = address {
            addresses.record(address, now);
        }
        Ok(())
    }

    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        let windows = self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        (windows.0.attempts.len(), windows.1.attempts.len())
    }
}

/// The key an address counts under: itself for IPv4, its /64 network for IPv6.
fn network(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => {
            IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX)))
        }
    }
}

/// Attempts in the last minute, per key.
struct Window<K> {
    attempts: BTreeMap<K, VecDeque<i64>>,
}

impl<K> Default for Window<K> {
    fn default() -> Self {
        Window { attempts: BTreeMap::new() }
    }
}

impl<K: Ord + Clone> Window<K> {
    fn check(
        &mut self,
        key: &K,
        now: i64,
        max: usize,
        refusal: impl Fn(usize) -> Refusal,
    ) -> Result<(), Refusal> {
        let since = now - WINDOW_MICROS;
        if let Some(recent) = self.attempts.get_mut(key) {
            while recent.front().is_some_and(|&at| at <= since) {
                recent.pop_front();
            }
            return if recent.len() >= max { Err(refusal(max)) } else { Ok(()) };
        }
        if self.attempts.len() >= SIGN_IN_TRACKED_MAX {
            self.attempts.retain(|_, recent| recent.back().is_some_and(|&at| at > since));
        }
        if self.attempts.len() >= SIGN_IN_TRACKED_MAX {
            let oldest = self
                .attempts
                .iter()
                .min_by_key(|(_, recent)| recent.back().copied().unwrap_or(i64::MIN))
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                self.attempts.remove(&oldest);
            }
        }
        Ok(())
    }

    fn record(&mut self, key: K, now: i64) {
        self.attempts.entry(key).or_default().push_back(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_micros(1_800_000_000_000_000 + seconds * 1_000_000).unwrap()
    }

    fn address(n: u32) -> Option<IpAddr> {
        Some(IpAddr::from((0x0a00_0000 + n).to_be_bytes()))
    }

    #[test]
    fn a_user_name_is_limited_per_minute() {
        let limiter = SignInLimiter::default();
        for n in 0..3 {
            assert_eq!(limiter.attempt("alice", address(n), at(n as i64), 3, 100), Ok(()));
        }
        assert_eq!(
            limiter.attempt("alice", address(9), at(10), 3, 100),
            Err(Refusal::User { max: 3 })
        );
        assert_eq!(limiter.attempt("bob", address(9), at(10), 3, 100), Ok(()), "another user");
        assert_eq!(limiter.attempt("alice", address(9), at(61), 3, 100), Ok(()), "a minute on");
    }

    #[test]
    fn an_address_is_limited_whatever_names_it_tries() {
        let limiter = SignInLimiter::default();
        for n in 0..5 {
            assert_eq!(limiter.attempt(&format!("user{n}"), address(1), at(0), 3, 5), Ok(()));
        }
        let refused = limiter.attempt("user99", address(1), at(1), 3, 5);
        assert_eq!(refused, Err(Refusal::Address { max: 5 }));
        assert_eq!(limiter.attempt("user99", address(2), at(1), 3, 5), Ok(()), "another address");
        // An IPv6 client counts by its /64: new addresses in it are the same client.
        let v6 = |last: u16| Some(IpAddr::from([0x2001, 0xdb8, 0, 7, 0, 0, 0, last]));
        for n in 0..5 {
            assert_eq!(limiter.attempt(&format!("six{n}"), v6(n), at(0), 3, 5), Ok(()));
        }
        assert_eq!(limiter.attempt("six9", v6(99), at(1), 3, 5), Err(Refusal::Address { max: 5 }));
        // Loopback clients share the machine (or a proxy in front): only the name counts.
        let loopback = Some(IpAddr::from([127, 0, 0, 1]));
        for n in 0..20 {
            assert_eq!(limiter.attempt(&format!("local{n}"), loopback, at(2), 3, 5), Ok(()));
        }
    }

    #[test]
    fn memory_stays_bounded_and_old_entries_are_forgotten() {
        let limiter = SignInLimiter::default();
        // Each minute, a new crowd of names and addresses: old ones make room for new ones.
        for minute in 0..3 {
            for n in 0..SIGN_IN_TRACKED_MAX as u32 {
                let name = format!("m{minute}-{n}");
                let from = address(minute * SIGN_IN_TRACKED_MAX as u32 + n);
                assert_eq!(limiter.attempt(&name, from, at(minute as i64 * 61), 3, 5), Ok(()));
            }
            let (names, addresses) = limiter.tracked();
            assert!(names <= SIGN_IN_TRACKED_MAX && addresses <= SIGN_IN_TRACKED_MAX);
        }
        // Within one minute, a new name makes room by forgetting the one that tried longest ago.
        assert_eq!(limiter.attempt("one more", address(0), at(2 * 61 + 1), 3, 5), Ok(()));
        let (names, _) = limiter.tracked();
        assert_eq!(names, SIGN_IN_TRACKED_MAX);
    }
}
