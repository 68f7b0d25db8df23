//! The JSON form of the sync machine's events and actions, as the TypeScript shell sends and
//! reads them: every one an object with a `kind`. Objects a download or a server action writes
//! arrive as rows ready to bind (see [`crate::values`]), so the shell never converts a value.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_model::{Entity, Model, ObjectId, Timestamp};
use ferry_protocol::{ObjectChange, UploadRequest, UploadResponse};
use ferry_sync::restore::JournalRow;
use ferry_sync::{
    Action, Answer, Body, Done, Error, Event, Job, Mode, Progress, Start, Step, Store, TargetFacts,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use crate::values::{self, Row};

/// An event from the shell.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum WireEvent {
    Start(Box<WireStart>),
    Answer {
        status: u16,
        #[serde(default)]
        body: String,
    },
    Unreachable {
        reason: String,
    },
    LookedUp {
        facts: Vec<WireFacts>,
    },
    EntityState {
        checkpoint: Option<String>,
        holds_objects: bool,
    },
    Revisions {
        revisions: BTreeMap<String, i64>,
    },
    ContentsHeld {
        hashes: Vec<String>,
    },
    ModelUpgraded {
        /// The device's new model file, when it changed.
        model: Option<String>,
    },
    Committed {
        #[serde(default)]
        downloaded: BTreeMap<String, usize>,
        #[serde(default)]
        removed: BTreeMap<String, usize>,
    },
    Clock {
        /// An ISO 8601 time (`2026-12-01T10:00:00Z`, with up to microseconds).
        at: String,
    },
    /// The upload journal's rows (`ferry_sql::journal::READ`).
    Journal {
        rows: Vec<JournalRow>,
    },
    /// Every committed change not yet uploaded.
    Dirty {
        changes: Vec<ObjectChange>,
    },
    Timer,
    Cancel,
}

/// The start of a job and what the local store holds.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireStart {
    job: WireJob,
    device: String,
    upload_id: String,
    seed: u64,
    started: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    pending: Option<UploadRequest>,
    #[serde(default)]
    dirty: Vec<ObjectChange>,
    #[serde(default)]
    server_epoch: String,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum WireJob {
    All,
    Unsynchronized,
    Selected { objects: Vec<(String, String)> },
    FollowModel,
    SignIn { user: String, password: String },
    CallAction { name: String, parameters: serde_json::Map<String, Json> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireFacts {
    #[serde(default)]
    held: bool,
    #[serde(default)]
    created_here: bool,
    #[serde(default)]
    removed: bool,
}

fn id(text: &str) -> Result<ObjectId, String> {
    ObjectId::parse(text).ok_or_else(|| format!("`{text}` is not an object id"))
}

fn time(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse(text).ok_or_else(|| format!("`{text}` is not a time"))
}

impl WireEvent {
    /// The machine's event; `model` is the device's model, which a start carries.
    pub(crate) fn into_event(self, model: &Arc<Model>) -> Result<Event, String> {
        Ok(match self {
            WireEvent::Start(start) => Event::Start(Box::new(start.into_start(model)?)),
            WireEvent::Answer { status, body } => {
                Event::Answer(Answer { status, body: body.into_bytes() })
            }
            WireEvent::Unreachable { reason } => Event::Unreachable { reason },
            WireEvent::LookedUp { facts } => Event::LookedUp(
                facts
                    .into_iter()
                    .map(|f| TargetFacts {
                        held: f.held,
                        created_here: f.created_here,
                        removed: f.removed,
                    })
                    .collect(),
            ),
            WireEvent::EntityState { checkpoint, holds_objects } => {
                Event::EntityState { checkpoint, holds_objects }
            }
            WireEvent::Revisions { revisions } => Event::Revisions(
                revisions
                    .into_iter()
                    .map(|(text, revision)| Ok((id(&text)?, revision)))
                    .collect::<Result<_, String>>()?,
            ),
            WireEvent::ContentsHeld { hashes } => Event::ContentsHeld(hashes),
            WireEvent::ModelUpgraded { model: None } => Event::ModelUpgraded { model: None },
            WireEvent::ModelUpgraded { model: Some(text) } => {
                let model = crate::parse_model(&text)?;
                Event::ModelUpgraded { model: Some(Arc::new(model)) }
            }
            WireEvent::Committed { downloaded, removed } => {
                Event::Committed { downloaded, removed }
            }
            WireEvent::Clock { at } => Event::Clock(time(&at)?),
            WireEvent::Journal { rows } => Event::Journal(rows),
            WireEvent::Dirty { changes } => Event::Dirty(changes),
            WireEvent::Timer => Event::Timer,
            WireEvent::Cancel => Event::Cancel,
        })
    }
}

impl WireStart {
    fn into_start(self, model: &Arc<Model>) -> Result<Start, String> {
        let job = match self.job {
            WireJob::All => Job::Sync(Mode::All),
            WireJob::Unsynchronized => Job::Sync(Mode::Unsynchronized),
            WireJob::Selected { objects } => Job::Sync(Mode::Selected(
                objects
                    .into_iter()
                    .map(|(entity, text)| Ok((entity, id(&text)?)))
                    .collect::<Result<_, String>>()?,
            )),
            WireJob::FollowModel => Job::FollowModel,
            WireJob::SignIn { user, password } => Job::SignIn { user, password },
            WireJob::CallAction { name, parameters } => Job::CallAction { name, parameters },
        };
        Ok(Start {
            job,
            model: Arc::clone(model),
            device: self.device,
            upload_id: self.upload_id,
            seed: self.seed,
            started: time(&self.started)?,
            user: self.user.as_deref().map(id).transpose()?,
            refresh_token: self.refresh_token,
            pending: self.pending,
            dirty: self.dirty,
            server_epoch: self.server_epoch,
        })
    }
}

/// An object written by a download or a server action: its id and the row to bind to the
/// entity's `replace` statement.
#[derive(Serialize)]
struct WireObject {
    id: String,
    row: Row,
}

/// Turns the machine's actions into their JSON form. It follows the download's entity, whose
/// model gives the rows of its pages.
pub(crate) struct Writer<'m> {
    pub(crate) model: &'m Model,
    pub(crate) entity: Option<String>,
}

impl Writer<'_> {
    pub(crate) fn action(&mut self, action: &Action) -> Json {
        match action {
            Action::Send(outgoing) => json!({
                "kind": "send",
                "anonymous": outgoing.anonymous,
                "method": outgoing.route.method.as_str(),
                "path": outgoing.path,
                "body": body(&outgoing.body),
            }),
            Action::Wait { ms } => json!({ "kind": "wait", "ms": ms }),
            Action::LookUp(targets) => {
                let targets: Vec<(&str, String)> =
                    targets.iter().map(|(e, id)| (e.as_str(), id.to_string())).collect();
                json!({ "kind": "look-up", "targets": targets })
            }
            Action::ReadEntity { entity } => json!({ "kind": "read-entity", "entity": entity }),
            Action::ReadRevisions { entity, ids } => {
                json!({ "kind": "read-revisions", "entity": entity, "ids": ids })
            }
            Action::LookUpContents(hashes) => {
                json!({ "kind": "look-up-contents", "hashes": hashes })
            }
            Action::UpgradeModel { text } => json!({ "kind": "upgrade-model", "text": text }),
            Action::Store(store) => json!({ "kind": "store", "store": self.store(store) }),
            Action::BeginDownload => json!({ "kind": "begin-download" }),
            Action::Download(step) => json!({ "kind": "download", "step": self.step(step) }),
            Action::CommitDownload => json!({ "kind": "commit-download" }),
            Action::ApplySynced { synced, removed } => {
                let synced: Vec<Json> = synced
                    .iter()
                    .filter_map(|object| {
                        let entity = self.model.entity(&object.entity)?;
                        let row = object_row(entity, &object.id, &object.values, object.revision)?;
                        Some(json!({ "entity": object.entity, "id": object.id, "row": row }))
                    })
                    .collect();
                json!({ "kind": "apply-synced", "synced": synced, "removed": removed })
            }
            Action::Progress(progress) => progress_json(progress),
            Action::ReadClock => json!({ "kind": "read-clock" }),
            Action::ReadJournal { except_epoch } => {
                json!({ "kind": "read-journal", "except_epoch": except_epoch })
            }
            Action::ReadDirty => json!({ "kind": "read-dirty" }),
            Action::Finish(outcome) => finish(outcome),
        }
    }

    fn store(&self, store: &Store) -> Json {
        match store {
            Store::PendingUpload(request) => {
                json!({ "kind": "pending-upload", "request": request })
            }
            Store::UploadAnswered { request, response } => json!({
                "kind": "upload-answered",
                "request": request,
                "response": response,
                "fresh": self.fresh_rows(response),
            }),
            Store::FullSyncDue => json!({ "kind": "full-sync-due" }),
            Store::SignedIn { token, refresh_token, user, roles, forget_previous } => json!({
                "kind": "signed-in",
                "token": token,
                "refresh_token": refresh_token,
                "user": user.to_string(),
                "roles": roles,
                "forget_previous": forget_previous,
            }),
            Store::Refreshed { token, refresh_token, roles } => json!({
                "kind": "refreshed",
                "token": token,
                "refresh_token": refresh_token,
                "roles": roles,
            }),
            Store::Restored { epoch, lost, forget } => {
                let lost: Vec<Json> = lost
                    .iter()
                    .map(|l| {
                        json!({
                            "entity": l.entity,
                            "id": l.id.to_string(),
                            "kind": l.kind,
                            "members": l.members,
                            "base_revision": l.base_revision,
                        })
                    })
                    .collect();
                json!({ "kind": "restored", "epoch": epoch, "lost": lost, "forget": forget })
            }
            Store::FullSyncDone => json!({ "kind": "full-sync-done" }),
            Store::LastSync { at, mode } => {
                json!({ "kind": "last-sync", "at": at.to_string(), "mode": mode })
            }
        }
    }

    /// For each applied outcome, the fresh members the server answered, as columns and
    /// parameters: `{entity, id, revision, members: [[member, column, param]]}`.
    fn fresh_rows(&self, response: &UploadResponse) -> Vec<Json> {
        let mut fresh = Vec::new();
        for outcome in &response.outcomes {
            let ferry_protocol::OutcomeResult::Applied { revision, values } = &outcome.result
            else {
                continue;
            };
            let Some(entity) = self.model.entity(&outcome.entity) else { continue };
            let members = values::member_params(entity, values);
            fresh.push(json!({
                "entity": outcome.entity,
                "id": outcome.id,
                "revision": revision,
                "members": members,
            }));
        }
        fresh
    }

    fn step(&mut self, step: &Step) -> Json {
        match step {
            Step::Begin { entity, full } => {
                self.entity = Some(entity.clone());
                json!({ "kind": "begin", "entity": entity, "full": full })
            }
            Step::Page { objects, removed, unchanged } => {
                let entity = self.entity.as_deref().and_then(|name| self.model.entity(name));
                let objects: Vec<WireObject> = match entity {
                    Some(entity) => objects
                        .iter()
                        .filter_map(|o| {
                            let row = object_row(entity, &o.id, &o.values, o.revision)?;
                            Some(WireObject { id: o.id.clone(), row })
                        })
                        .collect(),
                    None => Vec::new(),
                };
                let unchanged: Vec<String> = unchanged.iter().map(ObjectId::to_string).collect();
                json!({ "kind": "page", "objects": objects, "removed": removed, "unchanged": unchanged })
            }
            Step::End { checkpoint } => json!({ "kind": "end", "checkpoint": checkpoint }),
        }
    }
}

fn object_row(
    entity: &Entity,
    text: &str,
    values: &ferry_protocol::Members,
    revision: i64,
) -> Option<Row> {
    let id = ObjectId::parse(text)?;
    Some(values::object_row(entity, id, values, revision))
}

fn body(body: &Body) -> Json {
    match body {
        Body::Empty => json!({ "kind": "empty" }),
        Body::Json(bytes) => {
            json!({ "kind": "json", "text": String::from_utf8_lossy(bytes) })
        }
        Body::Content { hash, entity, id } => {
            json!({ "kind": "content", "hash": hash, "entity": entity, "id": id })
        }
        Body::IntoStore { hash } => json!({ "kind": "into-store", "hash": hash }),
    }
}

fn progress_json(progress: &Progress) -> Json {
    json!({
        "kind": "progress",
        "phase": match progress.phase {
            ferry_sync::Phase::Upload => "upload",
            ferry_sync::Phase::Download => "download",
        },
        "entity": progress.entity,
        "objects_done": progress.objects_done,
        "objects_total": progress.objects_total,
        "bytes_done": progress.bytes_done,
        "bytes_total": progress.bytes_total,
    })
}

fn finish(outcome: &Result<Done, Error>) -> Json {
    match outcome {
        Ok(Done::Synced(report)) => {
            let rejected: Vec<Json> = report
                .rejected
                .iter()
                .map(|(entity, id, reason)| {
                    json!({ "entity": entity, "id": id.to_string(), "reason": reason })
                })
                .collect();
            json!({ "kind": "finish", "done": {
                "kind": "synced",
                "uploaded": report.uploaded,
                "rejected": rejected,
                "downloaded": report.downloaded,
                "removed": report.removed,
                "files_uploaded": report.files_uploaded,
                "files_downloaded": report.files_downloaded,
            }})
        }
        Ok(Done::ModelFollowed) => {
            json!({ "kind": "finish", "done": { "kind": "model-followed" } })
        }
        Ok(Done::SignedIn(user)) => {
            json!({ "kind": "finish", "done": { "kind": "signed-in", "user": user.to_string() } })
        }
        Ok(Done::Acted(acted)) => json!({ "kind": "finish", "done": {
            "kind": "acted",
            "result": acted.result,
            "synced": acted.synced,
            "removed": acted.removed,
            "skipped": acted.skipped,
        }}),
        Err(error) => json!({ "kind": "finish", "error": error_json(error) }),
    }
}

/// A job's error: its kind, the sentence for a person, and the fields a program acts on.
fn error_json(error: &Error) -> Json {
    let (kind, fields) = match error {
        Error::Cancelled => ("cancelled", json!({})),
        Error::Protocol { server, device } => {
            ("protocol", json!({ "server": server, "device": device }))
        }
        Error::Unreachable { reason } => ("unreachable", json!({ "reason": reason })),
        Error::NotSignedIn { .. } => ("not-signed-in", json!({})),
        Error::Server { status, code, .. } => ("server", json!({ "status": status, "code": code })),
        Error::Integrity { entity, id, association, target }
        | Error::SelectionIntegrity { entity, id, association, target } => (
            if matches!(error, Error::Integrity { .. }) {
                "integrity"
            } else {
                "selection-integrity"
            },
            json!({
                "entity": entity,
                "id": id.to_string(),
                "association": association,
                "target": target.to_string(),
            }),
        ),
        Error::FileUpload { entity, id, .. } => {
            ("file-upload", json!({ "entity": entity, "id": id }))
        }
        Error::AnotherUsersChanges { count } => {
            ("another-users-changes", json!({ "count": count }))
        }
        Error::UnknownEntity { entity } => ("unknown-entity", json!({ "entity": entity })),
        Error::Corrupt { .. } => ("corrupt", json!({})),
        Error::Unexpected { event } => ("unexpected", json!({ "event": event })),
    };
    let mut object = match fields {
        Json::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    object.insert("kind".to_owned(), json!(kind));
    object.insert("message".to_owned(), json!(error.to_string()));
    Json::Object(object)
}

/// An event in its JSON form: what a shell sends for it (the transcripts' events go through
/// the same bridge as a shell's).
pub(crate) fn event_json(event: &Event, model_text: Option<&str>) -> Json {
    match event {
        Event::Start(start) => start_json(start),
        Event::Answer(answer) => json!({
            "kind": "answer",
            "status": answer.status,
            "body": String::from_utf8_lossy(&answer.body),
        }),
        Event::Unreachable { reason } => json!({ "kind": "unreachable", "reason": reason }),
        Event::LookedUp(facts) => {
            let facts: Vec<Json> = facts
                .iter()
                .map(|f| json!({ "held": f.held, "created_here": f.created_here, "removed": f.removed }))
                .collect();
            json!({ "kind": "looked-up", "facts": facts })
        }
        Event::EntityState { checkpoint, holds_objects } => json!({
            "kind": "entity-state", "checkpoint": checkpoint, "holds_objects": holds_objects,
        }),
        Event::Revisions(revisions) => {
            let revisions: BTreeMap<String, i64> =
                revisions.iter().map(|(id, rev)| (id.to_string(), *rev)).collect();
            json!({ "kind": "revisions", "revisions": revisions })
        }
        Event::ContentsHeld(hashes) => json!({ "kind": "contents-held", "hashes": hashes }),
        Event::ModelUpgraded { model } => json!({
            "kind": "model-upgraded",
            "model": model.as_ref().and(model_text),
        }),
        Event::Committed { downloaded, removed } => {
            json!({ "kind": "committed", "downloaded": downloaded, "removed": removed })
        }
        Event::Clock(at) => json!({ "kind": "clock", "at": at.to_string() }),
        Event::Journal(rows) => json!({ "kind": "journal", "rows": rows }),
        Event::Dirty(changes) => json!({ "kind": "dirty", "changes": changes }),
        Event::Timer => json!({ "kind": "timer" }),
        Event::Cancel => json!({ "kind": "cancel" }),
    }
}

fn start_json(start: &Start) -> Json {
    let job = match &start.job {
        Job::Sync(Mode::All) => json!({ "kind": "all" }),
        Job::Sync(Mode::Unsynchronized) => json!({ "kind": "unsynchronized" }),
        Job::Sync(Mode::Selected(objects)) => {
            let objects: Vec<(&str, String)> =
                objects.iter().map(|(e, id)| (e.as_str(), id.to_string())).collect();
            json!({ "kind": "selected", "objects": objects })
        }
        Job::FollowModel => json!({ "kind": "follow-model" }),
        Job::SignIn { user, password } => {
            json!({ "kind": "sign-in", "user": user, "password": password })
        }
        Job::CallAction { name, parameters } => {
            json!({ "kind": "call-action", "name": name, "parameters": parameters })
        }
    };
    json!({
        "kind": "start",
        "job": job,
        "device": start.device,
        "upload_id": start.upload_id,
        "seed": start.seed,
        "started": start.started.to_string(),
        "user": start.user.map(|u| u.to_string()),
        "refresh_token": start.refresh_token,
        "pending": start.pending,
        "dirty": start.dirty,
        "server_epoch": start.server_epoch,
    })
}
