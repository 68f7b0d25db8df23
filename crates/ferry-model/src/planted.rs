//! Planted bugs, for proving that the simulation catches what it must: each is a named wrong
//! turn in the device SDK or the server, taken only when the `planted-bugs` feature is on and
//! the bug is planted.
//! Without the feature, `active` is a constant `false` and the wrong turns compile away.

#[cfg(feature = "planted-bugs")]
static PLANTED: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Plants the bug `name` (or none) for what runs next in this process.
#[cfg(feature = "planted-bugs")]
pub fn plant(name: Option<&str>) {
    *PLANTED.lock().unwrap_or_else(|p| p.into_inner()) = name.map(str::to_owned);
}

/// True when the bug `name` is planted.
#[cfg(feature = "planted-bugs")]
pub fn active(name: &str) -> bool {
    PLANTED.lock().unwrap_or_else(|p| p.into_inner()).as_deref() == Some(name)
}

#[cfg(not(feature = "planted-bugs"))]
pub const fn active(_: &str) -> bool {
    false
}
