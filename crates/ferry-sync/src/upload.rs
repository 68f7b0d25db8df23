//! The upload: which changes go (the mode's selection), the integrity check of their
//! references, and the answer's outcomes, which must match the changes one to one.

use std::collections::BTreeSet;

use ferry_model::{EntityKind, Model, ObjectId, Value};
use ferry_protocol::endpoint::{self, Endpoint};
use ferry_protocol::{
    ChangeKind, ObjectChange, OutcomeResult, UploadRequest, UploadResponse, value,
};

use crate::error::Error;
use crate::event::{Action, Body, Event, Outgoing, Store, TargetFacts};
use crate::progress::Progress;
use crate::report::SyncReport;
use crate::run::{Cx, unexpected};
use crate::{Mode, files};

/// A reference of a change to be checked: the object and association it is made from, and the
/// object it points at.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Reference {
    entity: String,
    id: ObjectId,
    association: String,
    target_entity: String,
    target: ObjectId,
}

/// Makes the upload of this sync from the device's dirty changes, checks it, and has it stored
/// before anything is sent (every retry sends exactly it). `None` when nothing is to go.
pub(crate) async fn plan(
    cx: &mut Cx,
    mode: &Mode,
    dirty: Vec<ObjectChange>,
    device: String,
    upload_id: String,
) -> Result<Option<UploadRequest>, Error> {
    let changes = selected(mode, dirty);
    if changes.is_empty() {
        return Ok(None);
    }
    let references = unsent_references(&cx.model, &changes)?;
    if !references.is_empty() {
        let targets =
            references.iter().map(|r| (r.target_entity.clone(), r.target)).collect::<Vec<_>>();
        let facts = match cx.io.ask(Action::LookUp(targets)).await {
            Event::LookedUp(facts) if facts.len() == references.len() => facts,
            other => return Err(unexpected(&other)),
        };
        check_integrity(&references, &facts, matches!(mode, Mode::Selected(_)))?;
    }
    let request = UploadRequest { upload_id, device, changes };
    cx.io.emit(Action::Store(Store::PendingUpload(request.clone())));
    Ok(Some(request))
}

/// The changes a mode sends: all of them, or those of the selected objects that are not
/// deletions (a deletion cannot be selected).
fn selected(mode: &Mode, dirty: Vec<ObjectChange>) -> Vec<ObjectChange> {
    let Mode::Selected(objects) = mode else { return dirty };
    let chosen: BTreeSet<(&str, String)> =
        objects.iter().map(|(entity, id)| (entity.as_str(), id.to_string())).collect();
    dirty
        .into_iter()
        .filter(|change| change.kind != ChangeKind::Delete)
        .filter(|change| chosen.contains(&(change.entity.as_str(), change.id.clone())))
        .collect()
}

/// The references of the changes to objects the upload does not itself send (users are known
/// to the server and never checked), in the order of the changes and their associations.
fn unsent_references(model: &Model, changes: &[ObjectChange]) -> Result<Vec<Reference>, Error> {
    let sent: BTreeSet<(&str, &str)> =
        changes.iter().map(|c| (c.entity.as_str(), c.id.as_str())).collect();
    let mut references = Vec::new();
    for change in changes.iter().filter(|c| c.kind != ChangeKind::Delete) {
        let entity = model.entity(&change.entity).ok_or_else(|| Error::Corrupt {
            what: format!("a change of `{}`, which the model does not have", change.entity),
        })?;
        let id = ObjectId::parse(&change.id).ok_or_else(|| Error::Corrupt {
            what: format!("`{}` is not an object id", change.id),
        })?;
        for association in &entity.associations {
            let Some(json) = change.values.get(&association.name) else { continue };
            let Ok(Value::Reference(target)) = value::decode(json, None) else { continue };
            let target_entity = model.entity(association.target.as_str()).expect("validated model");
            let target_text = target.to_string();
            if target_entity.kind == EntityKind::System
                || sent.contains(&(target_entity.name.as_str(), target_text.as_str()))
            {
                continue;
            }
            references.push(Reference {
                entity: change.entity.clone(),
                id,
                association: association.name.to_string(),
                target_entity: target_entity.name.to_string(),
                target,
            });
        }
    }
    Ok(references)
}

/// Every reference must point at an object on the device, or one a download or a clear
/// removed lately (the server decides about those); in a selection, not at one created here
/// and not yet uploaded, which would have to go in the same upload.
fn check_integrity(
    references: &[Reference],
    facts: &[TargetFacts],
    selection: bool,
) -> Result<(), Error> {
    for (reference, facts) in references.iter().zip(facts) {
        let Reference { entity, id, association, target, .. } = reference.clone();
        if !facts.held && !facts.removed {
            return Err(Error::Integrity { entity, id, association, target });
        }
        if selection && facts.created_here {
            return Err(Error::SelectionIntegrity { entity, id, association, target });
        }
    }
    Ok(())
}

/// Sends the contents the upload names, then the upload; counts its outcomes into the report
/// and has the answer applied locally.
pub(crate) async fn send(
    cx: &mut Cx,
    request: UploadRequest,
    report: &mut SyncReport,
) -> Result<(), Error> {
    let body = serde_json::to_vec(&request).expect("requests serialise");
    let (total, bytes) = (request.changes.len(), body.len());
    cx.io.emit(Action::Progress(Progress::upload(0, total, 0, bytes)));
    report.files_uploaded += files::send_contents(cx, &request).await?;
    cx.io.check_cancel()?;
    let outgoing = Outgoing {
        anonymous: false,
        route: endpoint::Upload::ROUTE,
        path: endpoint::Upload::ROUTE.path(&[]),
        body: Body::Json(body),
    };
    let answer = cx.send(outgoing).await?;
    let (response, _): (UploadResponse, usize) = crate::answer::decode(&answer)?;
    check_outcomes(&request, &response)?;
    cx.io.emit(Action::Progress(Progress::upload(total, total, bytes, bytes)));
    for (change, outcome) in request.changes.iter().zip(&response.outcomes) {
        match &outcome.result {
            OutcomeResult::Applied { .. } | OutcomeResult::Deleted => report.uploaded += 1,
            OutcomeResult::Failed { reason, .. } => {
                let id = ObjectId::parse(&change.id).ok_or_else(|| Error::Corrupt {
                    what: format!("the pending upload names `{}`, not an object id", change.id),
                })?;
                report.rejected.push((change.entity.clone(), id, reason.clone()));
            }
        }
    }
    cx.io.emit(Action::Store(Store::UploadAnswered { request, response }));
    Ok(())
}

/// An upload's answer has one outcome per change, of the same object, in the same order; any
/// other answer is refused before anything of it is applied (every change stays for the next
/// sync).
pub fn check_outcomes(request: &UploadRequest, response: &UploadResponse) -> Result<(), Error> {
    let matching =
        response.outcomes.len() == request.changes.len()
            && request.changes.iter().zip(&response.outcomes).all(|(change, outcome)| {
                change.entity == outcome.entity && change.id == outcome.id
            });
    if matching {
        return Ok(());
    }
    Err(Error::bad_response(
        200,
        format!(
            "the upload's answer has {} outcomes for its {} changes, or not for the same objects; nothing of it was applied",
            response.outcomes.len(),
            request.changes.len()
        ),
    ))
}
