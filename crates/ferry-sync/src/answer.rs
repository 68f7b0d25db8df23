//! Reading the server's answers: the typed body of a success, the error of a refusal.

use ferry_protocol::{ErrorBody, ModelResponse, PROTOCOL_VERSION};
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::event::Answer;

/// The typed body of a success (200, or 204 for an answer of no body) and its size in bytes,
/// or the error a refusal carries.
pub fn decode<T: DeserializeOwned>(answer: &Answer) -> Result<(T, usize), Error> {
    match answer.status {
        204 => serde_json::from_slice(b"null").map(|value| (value, 0)).map_err(|e| {
            Error::bad_response(204, format!("an empty answer where this device expects one: {e}"))
        }),
        200 => serde_json::from_slice(&answer.body)
            .map(|value| (value, answer.body.len()))
            .map_err(|e| {
                Error::bad_response(200, format!("the answer is not what this device expects: {e}"))
            }),
        _ => Err(refusal(answer)),
    }
}

/// The error an answer other than 200 or 204 carries: 401 says the token is not (or no longer)
/// good; any other status carries the server's [`ErrorBody`], or its text.
pub fn refusal(answer: &Answer) -> Error {
    let error: ErrorBody = serde_json::from_slice(&answer.body).unwrap_or(ErrorBody {
        code: "unknown".to_owned(),
        message: String::from_utf8_lossy(&answer.body).into_owned(),
        details: serde_json::Value::Null,
        request_id: None,
    });
    let message = match &error.request_id {
        Some(id) => format!("{} (request {id})", error.message),
        None => error.message,
    };
    if answer.status == 401 {
        return Error::NotSignedIn { message };
    }
    Error::Server { status: answer.status, code: error.code, message }
}

/// Refuses a server that speaks another protocol version than this device.
pub fn check_protocol(model: &ModelResponse) -> Result<(), Error> {
    if model.protocol_version != PROTOCOL_VERSION {
        return Err(Error::Protocol { server: model.protocol_version, device: PROTOCOL_VERSION });
    }
    Ok(())
}
