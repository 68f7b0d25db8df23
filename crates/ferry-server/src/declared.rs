//! Actions declared in the model file, run without app code: the caller's roles are checked,
//! the parameters read as their declared types, and the objects matching the action's
//! constraint are synchronized to the device with the objects they reference through the
//! followed associations.

use std::collections::BTreeMap;

use ferry_model::{Decimal, DeclaredAction, ObjectId, Timestamp, Value, ValueType};
use serde_json::Value as Json;

use crate::State;
use crate::access::context;
use crate::actions::ActionError;
use crate::actions::{ActionCall, ServerObject, query_objects};
use crate::auth::User;

/// Runs `action` for the call's user; the result is how many objects matched.
pub(crate) async fn run(
    state: &State,
    user: &User,
    action: &DeclaredAction,
    call: &ActionCall,
) -> Result<Json, ActionError> {
    if !action.roles.iter().any(|role| user.roles.iter().any(|r| r == role.as_str())) {
        let roles: Vec<&str> = action.roles.iter().map(|r| r.as_str()).collect();
        return Err(ActionError::Forbidden(format!(
            "only role(s) {} may call the action `{}`",
            roles.join(", "),
            action.name
        )));
    }
    let mut context = context(state, user);
    context.parameters = parameters(action, call.parameters())?;
    let entity = state.model.entity(action.entity.as_str()).expect("checked at load");
    let bound = state.constraints.actions.get(&action.name).map(|c| c.bind(&context));
    let failed = |reason: String| {
        ActionError::Failed(format!("the action `{}` failed: {reason}", action.name))
    };
    let objects = query_objects(state, entity, bound.as_ref()).await.map_err(failed)?;
    for object in &objects {
        call.sync_to_device(object).map_err(failed)?;
        for association in &action.follow {
            let (index, found) = entity.association(association).expect("checked at load");
            let slot = entity.slot(ferry_model::MemberRef::Association(index));
            if let Value::Reference(target) = call.value_at(object, slot) {
                let target = ServerObject::named(found.target.clone(), *target);
                call.sync_to_device(&target).map_err(failed)?;
            }
        }
    }
    Ok(serde_json::json!({ "objects": objects.len() }))
}

/// The call's parameters as the declared types; an undeclared or ill-typed one is refused.
fn parameters(
    action: &DeclaredAction,
    given: &serde_json::Map<String, Json>,
) -> Result<BTreeMap<String, Value>, ActionError> {
    let bad = |parameter: &str, message: String| ActionError::Bad {
        message,
        details: serde_json::json!({ "action": action.name, "parameter": parameter }),
    };
    if let Some(unknown) =
        given.keys().find(|name| !action.parameters.iter().any(|p| &p.name == *name))
    {
        let declared: Vec<&str> = action.parameters.iter().map(|p| p.name.as_str()).collect();
        return Err(bad(
            unknown,
            format!(
                "the action `{}` has no parameter `{unknown}` (declared: {})",
                action.name,
                declared.join(", ")
            ),
        ));
    }
    let mut values = BTreeMap::new();
    for parameter in &action.parameters {
        let json = given.get(&parameter.name).unwrap_or(&Json::Null);
        let value = plain_value(json, parameter.value_type).ok_or_else(|| {
            let expected = match parameter.value_type {
                ValueType::Reference => "an object id".to_owned(),
                ValueType::Decimal => "a decimal as a string, such as \"12.50\"".to_owned(),
                ValueType::DateTime => {
                    "a UTC date-time such as \"2026-01-31T08:00:00Z\"".to_owned()
                }
                other => format!("a {other}"),
            };
            bad(
                &parameter.name,
                format!(
                    "parameter `{}` of the action `{}` takes {expected}, not {json}",
                    parameter.name, action.name
                ),
            )
        })?;
        values.insert(parameter.name.clone(), value);
    }
    Ok(values)
}

/// A JSON parameter as a value of `value_type`; `null` is empty.
fn plain_value(json: &Json, value_type: ValueType) -> Option<Value> {
    Some(match (value_type, json) {
        (_, Json::Null) => Value::Empty,
        (ValueType::String, Json::String(text)) => Value::String(text.clone()),
        (ValueType::Integer, Json::Number(number)) => Value::Integer(number.as_i64()?),
        (ValueType::Boolean, Json::Bool(flag)) => Value::Boolean(*flag),
        (ValueType::Decimal, Json::String(text)) => {
            let scale = text.split_once('.').map_or(0, |(_, fraction)| fraction.len());
            Value::Decimal(Decimal::parse(text, u32::try_from(scale).ok()?)?)
        }
        (ValueType::DateTime, Json::String(text)) => Value::DateTime(Timestamp::parse(text)?),
        (ValueType::Reference, Json::String(text)) => Value::Reference(ObjectId::parse(text)?),
        _ => return None,
    })
}
