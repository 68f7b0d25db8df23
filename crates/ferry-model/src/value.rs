//! Attribute values and the scalar types behind them: object ids, UTC timestamps and exact decimals.
//! Every layer (constraints, SQL, wire, stores) speaks in these, so their text forms are fixed here.

use std::cmp::Ordering;
use std::fmt;

/// The largest number of significant digits a decimal attribute may hold.
/// Both backends store decimals exactly within it (a scaled 64-bit integer in SQLite).
pub const DECIMAL_PRECISION_MAX: u32 = 18;

/// An object's identity: 128 bits, generated on the device, never changed.
/// Its text form is the usual 8-4-4-4-12 lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId(u128);

impl ObjectId {
    pub const fn from_u128(raw: u128) -> Self {
        ObjectId(raw)
    }

    /// A time-ordered id: 48 bits of milliseconds, then 80 random bits, so new ids cluster in indexes.
    pub fn from_parts(unix_millis: u64, random: u128) -> Self {
        let time = u128::from(unix_millis & 0xFFFF_FFFF_FFFF) << 80;
        ObjectId(time | (random & ((1u128 << 80) - 1)))
    }

    pub const fn as_u128(self) -> u128 {
        self.0
    }

    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        ObjectId(u128::from_be_bytes(bytes))
    }

    /// Parses the 8-4-4-4-12 hex form (either case).
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 36 {
            return None;
        }
        let mut raw: u128 = 0;
        for (index, &byte) in bytes.iter().enumerate() {
            if matches!(index, 8 | 13 | 18 | 23) {
                if byte != b'-' {
                    return None;
                }
                continue;
            }
            let digit = (byte as char).to_digit(16)?;
            raw = (raw << 4) | u128::from(digit);
        }
        Some(ObjectId(raw))
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = format!("{:032x}", self.0);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A point in time, UTC, in microseconds since 1970-01-01T00:00:00Z.
/// The range is the years 0001 to 9999, which both backends store.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Timestamp(i64);

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;
/// 0001-01-01T00:00:00Z.
pub const TIMESTAMP_MIN: Timestamp = Timestamp(-62_135_596_800 * MICROS_PER_SECOND);
/// 9999-12-31T23:59:59.999999Z.
pub const TIMESTAMP_MAX: Timestamp = Timestamp(253_402_300_800 * MICROS_PER_SECOND - 1);

impl Timestamp {
    /// `None` outside the years 0001–9999.
    pub fn from_unix_micros(micros: i64) -> Option<Self> {
        (TIMESTAMP_MIN.0..=TIMESTAMP_MAX.0).contains(&micros).then_some(Timestamp(micros))
    }

    pub const fn unix_micros(self) -> i64 {
        self.0
    }

    /// Midnight (UTC) at the start of this timestamp's day.
    pub fn begin_of_day(self) -> Self {
        Timestamp(self.0.div_euclid(MICROS_PER_DAY) * MICROS_PER_DAY)
    }

    /// This timestamp moved by whole days; `None` when that leaves the supported range.
    pub fn add_days(self, days: i64) -> Option<Self> {
        Timestamp::from_unix_micros(self.0.checked_add(days.checked_mul(MICROS_PER_DAY)?)?)
    }

    /// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.ffffff]]` followed by `Z` or `+00:00`.
    /// A date alone means midnight UTC; a time must say it is UTC.
    pub fn parse(text: &str) -> Option<Self> {
        let (date, time) = match text.split_once(['T', ' ']) {
            Some((date, time)) => (date, Some(time)),
            None => (text, None),
        };
        let mut parts = date.splitn(3, '-');
        let year = parse_digits(parts.next()?, 4)?;
        let month = parse_digits(parts.next()?, 2)?;
        let day = parse_digits(parts.next()?, 2)?;
        if year == 0 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        let mut micros = days_from_civil(year, month, day) * MICROS_PER_DAY;
        if let Some(time) = time {
            let time = time.strip_suffix('Z').or_else(|| time.strip_suffix("+00:00"))?;
            let (clock, fraction) = match time.split_once('.') {
                Some((clock, fraction)) => (clock, Some(fraction)),
                None => (time, None),
            };
            let mut fields = clock.split(':');
            let hour = parse_digits(fields.next()?, 2)?;
            let minute = parse_digits(fields.next()?, 2)?;
            let second = match fields.next() {
                Some(second) => parse_digits(second, 2)?,
                None => 0,
            };
            if fields.next().is_some() || hour > 23 || minute > 59 || second > 59 {
                return None;
            }
            micros += (hour * 3600 + minute * 60 + second) * MICROS_PER_SECOND;
            if let Some(fraction) = fraction {
                if fraction.is_empty() || fraction.len() > 6 {
                    return None;
                }
                let digits = parse_digits(fraction, fraction.len())?;
                micros += digits * 10_i64.pow(6 - fraction.len() as u32);
            }
        }
        Timestamp::from_unix_micros(micros)
    }
}

impl fmt::Display for Timestamp {
    /// `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`; the fraction only when it is not zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(MICROS_PER_DAY);
        let in_day = self.0.rem_euclid(MICROS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let seconds = in_day / MICROS_PER_SECOND;
        let fraction = in_day % MICROS_PER_SECOND;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        )?;
        if fraction != 0 {
            write!(f, ".{fraction:06}")?;
        }
        f.write_str("Z")
    }
}

fn parse_digits(text: &str, len: usize) -> Option<i64> {
    if text.len() != len || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// An exact decimal: `units / 10^scale`. Values of one attribute always share the attribute's scale,
/// so comparing them is comparing integers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Decimal {
    units: i64,
    scale: u32,
}

impl Decimal {
    /// `None` when `units` has more than [`DECIMAL_PRECISION_MAX`] digits or the scale exceeds it.
    pub fn new(units: i64, scale: u32) -> Option<Self> {
        let limit = 10_i64.pow(DECIMAL_PRECISION_MAX);
        (scale <= DECIMAL_PRECISION_MAX && units > -limit && units < limit)
            .then_some(Decimal { units, scale })
    }

    pub const fn units(self) -> i64 {
        self.units
    }

    pub const fn scale(self) -> u32 {
        self.scale
    }

    /// Parses `-12.345` into the given scale; `None` if the text is not a decimal,
    /// has more fractional digits than `scale`, or does not fit the precision.
    pub fn parse(text: &str, scale: u32) -> Option<Self> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && fraction.is_empty()
            || !all_digits(whole)
            || !all_digits(fraction)
            || digits.ends_with('.')
        {
            return None;
        }
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > scale as usize {
            return None;
        }
        let whole = whole.trim_start_matches('0');
        if whole.len() + scale as usize > DECIMAL_PRECISION_MAX as usize {
            return None;
        }
        let mut units: i64 = 0;
        for byte in whole.bytes().chain(fraction.bytes()) {
            units = units * 10 + i64::from(byte - b'0');
        }
        units *= 10_i64.pow(scale - fraction.len() as u32);
        Decimal::new(if negative { -units } else { units }, scale)
    }

    /// The same number at another scale; `None` if digits would be lost or the precision exceeded.
    pub fn rescale(self, scale: u32) -> Option<Self> {
        match scale.cmp(&self.scale) {
            Ordering::Equal => Some(self),
            Ordering::Greater => Decimal::new(
                self.units.checked_mul(10_i64.checked_pow(scale - self.scale)?)?,
                scale,
            ),
            Ordering::Less => {
                let factor = 10_i64.pow(self.scale - scale);
                (self.units % factor == 0).then(|| Decimal { units: self.units / factor, scale })
            }
        }
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        let scale = self.scale.max(other.scale);
        let widen = |d: &Decimal| i128::from(d.units) * 10_i128.pow(scale - d.scale);
        widen(self).cmp(&widen(other))
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Decimal {
    /// Always with exactly `scale` fractional digits, e.g. `-0.50` at scale 2.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.units < 0 { "-" } else { "" };
        let magnitude = self.units.unsigned_abs();
        if self.scale == 0 {
            return write!(f, "{sign}{magnitude}");
        }
        let factor = 10_u64.pow(self.scale);
        let width = self.scale as usize;
        write!(f, "{sign}{}.{:0width$}", magnitude / factor, magnitude % factor)
    }
}

/// The type of a value, as the constraint checker and error messages name it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ValueType {
    String,
    Integer,
    Decimal,
    Boolean,
    DateTime,
    Enumeration,
    Binary,
    Reference,
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueType::String => "string",
            ValueType::Integer => "integer",
            ValueType::Decimal => "decimal",
            ValueType::Boolean => "boolean",
            ValueType::DateTime => "date-time",
            ValueType::Enumeration => "enumeration",
            ValueType::Binary => "binary",
            ValueType::Reference => "reference",
        })
    }
}

/// One attribute or reference value. `Empty` is the absence of a value (SQL NULL);
/// the empty string is a value like any other.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Value {
    Empty,
    String(String),
    Integer(i64),
    Decimal(Decimal),
    Boolean(bool),
    DateTime(Timestamp),
    /// One of the attribute's declared enumeration values.
    Enumeration(String),
    Binary(Vec<u8>),
    Reference(ObjectId),
}

impl Value {
    pub fn is_empty(&self) -> bool {
        matches!(self, Value::Empty)
    }

    /// Orders two values of the same type; `None` when either is empty or the types differ.
    /// Strings order by their UTF-8 bytes, as both SQL backends do with the `C` collation.
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        Some(match (self, other) {
            (Value::String(a), Value::String(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Value::Integer(a), Value::Integer(b)) => a.cmp(b),
            (Value::Decimal(a), Value::Decimal(b)) => a.cmp(b),
            (Value::Boolean(a), Value::Boolean(b)) => a.cmp(b),
            (Value::DateTime(a), Value::DateTime(b)) => a.cmp(b),
            (Value::Enumeration(a), Value::Enumeration(b)) => a.cmp(b),
            (Value::Binary(a), Value::Binary(b)) => a.cmp(b),
            (Value::Reference(a), Value::Reference(b)) => a.cmp(b),
            _ => return None,
        })
    }
}

impl fmt::Display for Value {
    /// The form used in canonical model text and messages: strings quoted, empty as `empty`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Empty => f.write_str("empty"),
            Value::String(s) | Value::Enumeration(s) => write!(f, "{s:?}"),
            Value::Integer(i) => write!(f, "{i}"),
            Value::Decimal(d) => write!(f, "{d}"),
            Value::Boolean(b) => write!(f, "{b}"),
            Value::DateTime(t) => write!(f, "{t}"),
            Value::Binary(bytes) => {
                f.write_str("0x")?;
                bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            Value::Reference(id) => write!(f, "{id}"),
        }
    }
}

#[cfg(test)]
mod tests;
