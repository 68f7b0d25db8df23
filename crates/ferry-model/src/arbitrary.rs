//! Seeded random data over a model, for tests, the simulation and benchmarks.
//! Values are drawn from small pools full of edge cases (empty, case, non-ASCII, precision,
//! day boundaries), so that random constraints over random objects hit them often.

use crate::entity::{AttributeType, Entity};
use crate::object::Object;
use crate::value::{DECIMAL_PRECISION_MAX, Decimal, ObjectId, Timestamp, Value};

/// SplitMix64: a tiny, fast, well-distributed generator; a run is a function of its seed.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound`; `bound` must not be zero.
    pub fn below(&mut self, bound: usize) -> usize {
        assert!(bound > 0, "below(0) has no value to return");
        ((u128::from(self.next_u64()) * bound as u128) >> 64) as usize
    }

    /// True with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: usize, denominator: usize) -> bool {
        self.below(denominator) < numerator
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Strings that exercise comparison, case folding and substring edges.
pub const STRING_POOL: [&str; 24] = [
    "", "a", "A", "ab", "Ab", "aB", "b", "test", "Test", "TEST", "a test", "testing", "tes", "x",
    "Z", "z", "é", "É", "Ä", "ä", "ß", "日本", "a'b", "100",
];

/// A source of random values, all relative to one `now` so that time tokens hit the data.
#[derive(Clone, Debug)]
pub struct Arbitrary {
    pub rng: SplitMix64,
    pub now: Timestamp,
}

impl Arbitrary {
    pub fn new(seed: u64, now: Timestamp) -> Self {
        Arbitrary { rng: SplitMix64::new(seed), now }
    }

    /// A non-empty value of the type (strings within its max length).
    pub fn value(&mut self, attribute_type: &AttributeType) -> Value {
        let rng = &mut self.rng;
        match attribute_type {
            AttributeType::String { max_length } => {
                let mut text = (*rng.pick(&STRING_POOL)).to_owned();
                if rng.chance(1, 4) {
                    let suffix: &&str = rng.pick(&STRING_POOL);
                    text.push_str(suffix);
                }
                let max = max_length.map_or(usize::MAX, |m| m as usize);
                Value::String(text.chars().take(max).collect())
            }
            AttributeType::Integer => Value::Integer(match rng.below(8) {
                0 => *rng.pick(&[i64::MIN, i64::MAX, 0, -1, 1]),
                _ => rng.below(11) as i64 - 5,
            }),
            AttributeType::Decimal { scale } => {
                let scale = *scale;
                let limit = 10_i64.pow(DECIMAL_PRECISION_MAX) - 1;
                let units = match rng.below(8) {
                    0 => *rng.pick(&[limit, -limit, 0, 1, -1]),
                    1 => rng.below(2001) as i64 - 1000,
                    _ => (rng.below(11) as i64 - 5) * 10_i64.pow(scale),
                };
                Value::Decimal(Decimal::new(units, scale).expect("units within the precision"))
            }
            AttributeType::Boolean => Value::Boolean(rng.chance(1, 2)),
            AttributeType::DateTime => {
                let base = match rng.below(4) {
                    0 => self.now,
                    1 => self.now.begin_of_day(),
                    2 => Timestamp::from_unix_micros(0).expect("the epoch is in range"),
                    _ => self.now.begin_of_day().add_days(1).expect("tomorrow is in range"),
                };
                let micros = match rng.below(5) {
                    0 => -1,
                    1 => 1,
                    2 => 0,
                    3 => (rng.below(49) as i64 - 24) * 3_600_000_000,
                    _ => (rng.below(21) as i64 - 10) * 86_400_000_000,
                };
                Value::DateTime(
                    Timestamp::from_unix_micros(base.unix_micros() + micros)
                        .expect("near now or the epoch"),
                )
            }
            AttributeType::Enumeration { values } => Value::Enumeration(rng.pick(values).clone()),
            AttributeType::Binary => {
                let length = rng.below(4);
                Value::Binary((0..length).map(|_| rng.below(256) as u8).collect())
            }
        }
    }

    /// An object of the entity: each attribute empty one time in five, references drawn from
    /// `targets(association index)` (empty one time in five, or when there is none).
    pub fn object(
        &mut self,
        entity: &Entity,
        id: ObjectId,
        targets: &mut dyn FnMut(usize) -> Vec<ObjectId>,
    ) -> Object {
        let mut values = Vec::with_capacity(entity.member_count());
        for attribute in &entity.attributes {
            let empty = self.rng.chance(1, 5);
            values.push(if empty { Value::Empty } else { self.value(&attribute.attribute_type) });
        }
        for index in 0..entity.associations.len() {
            let candidates = targets(index);
            let value = if candidates.is_empty() || self.rng.chance(1, 5) {
                Value::Empty
            } else {
                Value::Reference(*self.rng.pick(&candidates))
            };
            values.push(value);
        }
        Object { id, values }
    }

    pub fn object_id(&mut self) -> ObjectId {
        let high = u128::from(self.rng.next_u64()) << 64;
        ObjectId::from_u128(high | u128::from(self.rng.next_u64()))
    }
}
