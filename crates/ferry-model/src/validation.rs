//! The validation rules an object's own values must keep: required, max length, range and
//! pattern. The server checks them before it applies a change (it is the authority, and also
//! checks `unique` against its data); the device checks the same rules at commit, so an app
//! learns of a broken rule at once and with the server's message.

use crate::{AttributeType, Entity, Slot, Value};

/// The first rule an object breaks; its text is the reason a `SynchronizationError` records.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BrokenRule {
    #[error("validation: `{attribute}` is required")]
    Required { attribute: String },
    #[error("validation: `{attribute}` is longer than its max length of {max} characters")]
    TooLong { attribute: String, max: u32 },
    #[error("validation: `{attribute}` is {value}, below its minimum {min}")]
    BelowMinimum { attribute: String, value: Value, min: Value },
    #[error("validation: `{attribute}` is {value}, above its maximum {max}")]
    AboveMaximum { attribute: String, value: Value, max: Value },
    #[error("validation: `{attribute}` does not match the pattern {pattern}")]
    Pattern { attribute: String, pattern: String },
}

impl Entity {
    /// Checks the rules that need only the object itself on the attributes at `slots` (every
    /// attribute when `None`); `values` holds a value per member slot.
    pub fn check_rules(&self, values: &[Value], slots: Option<&[Slot]>) -> Result<(), BrokenRule> {
        for (index, attribute) in self.attributes.iter().enumerate() {
            if slots.is_some_and(|slots| !slots.contains(&Slot(index))) {
                continue;
            }
            let value = &values[index];
            let name = || attribute.name.clone();
            let rules = &attribute.rules;
            if value.is_empty() {
                if rules.required {
                    return Err(BrokenRule::Required { attribute: name() });
                }
                continue;
            }
            if let (AttributeType::String { max_length: Some(max) }, Value::String(text)) =
                (&attribute.attribute_type, value)
                && text.chars().count() > *max as usize
            {
                return Err(BrokenRule::TooLong { attribute: name(), max: *max });
            }
            if let Some(min) = &rules.min
                && value.compare(min) == Some(std::cmp::Ordering::Less)
            {
                let (value, min) = (value.clone(), min.clone());
                return Err(BrokenRule::BelowMinimum { attribute: name(), value, min });
            }
            if let Some(max) = &rules.max
                && value.compare(max) == Some(std::cmp::Ordering::Greater)
            {
                let (value, max) = (value.clone(), max.clone());
                return Err(BrokenRule::AboveMaximum { attribute: name(), value, max });
            }
            if let (Some(pattern), Value::String(text)) = (&rules.pattern, value)
                && !pattern.matches(text)
            {
                let pattern = pattern.source().to_owned();
                return Err(BrokenRule::Pattern { attribute: name(), pattern });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{Slot, Value, samples};

    #[test]
    fn each_rule_is_named_in_its_message() {
        let model = samples::field_service();
        let order = model.entity("Field.WorkOrder").unwrap();
        let slot = |name: &str| order.slot(order.member(name).unwrap());
        let mut values = order.default_values();
        values[slot("Number").0] = Value::Integer(1);
        values[slot("Title").0] = Value::String("Pump".to_owned());
        assert_eq!(order.check_rules(&values, None), Ok(()));
        let broken = |member: &str, value: Value| {
            let mut changed = values.clone();
            changed[slot(member).0] = value;
            order.check_rules(&changed, None).unwrap_err().to_string()
        };
        assert_eq!(broken("Title", Value::Empty), "validation: `Title` is required");
        assert_eq!(
            broken("Priority", Value::Integer(9)),
            "validation: `Priority` is 9, above its maximum 5"
        );
        assert_eq!(
            broken("Title", Value::String("x".repeat(201))),
            "validation: `Title` is longer than its max length of 200 characters"
        );
        let country = model.entity("Field.Country").unwrap();
        let mut values = country.default_values();
        values[0] = Value::String("nl".to_owned());
        values[1] = Value::String("Netherlands".to_owned());
        assert_eq!(
            country.check_rules(&values, None).unwrap_err().to_string(),
            "validation: `Code` does not match the pattern [A-Z]{2}"
        );
        // Only the attributes asked for: an unchanged one is the server's to judge.
        assert_eq!(country.check_rules(&values, Some(&[Slot(1)])), Ok(()));
    }
}
