//! Fuzz target: any bytes as the body of each request the server decodes (upload, action,
//! files, objects, sync report), and every value of a decoded upload checked against the type of
//! its member in the sample model, must decode or be refused, never panic.

#![no_main]

use std::sync::OnceLock;

use ferry_model::{Model, samples};
use ferry_protocol::{
    ActionRequest, FilesMissingRequest, NewUser, ObjectsRequest, SyncRecord, UploadRequest, value,
};
use libfuzzer_sys::fuzz_target;

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(samples::field_service)
}

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<ActionRequest>(data);
    let _ = serde_json::from_slice::<FilesMissingRequest>(data);
    let _ = serde_json::from_slice::<ObjectsRequest>(data);
    let _ = serde_json::from_slice::<SyncRecord>(data);
    let _ = serde_json::from_slice::<NewUser>(data);
    let Ok(upload) = serde_json::from_slice::<UploadRequest>(data) else { return };
    for change in &upload.changes {
        let Some(entity) = model().entity(&change.entity) else { continue };
        for (member, json) in &change.values {
            let Some(found) = entity.member(member) else { continue };
            let attribute_type = entity.attribute_type_of(found);
            if let Ok(decoded) = value::decode(json, attribute_type) {
                // What decodes encodes back to something that decodes to the same value.
                let again = value::decode(&value::encode(&decoded), attribute_type);
                assert_eq!(again.ok(), Some(decoded), "{json}");
            }
        }
    }
});
