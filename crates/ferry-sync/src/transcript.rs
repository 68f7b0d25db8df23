//! The text form of the golden transcripts (`transcripts/`): each `> ` line an event, each `< `
//! line an action the machine answered it with. Shared by the transcripts' test and by every
//! SDK that runs them against its own build of the core (the WebAssembly one among them).
//!
//! In events, `$VERSION` stands for the version of the transcripts' model and `$MODEL` for its
//! text (as a JSON string), so answers of `GET /v1/model` stay readable.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_model::{Model, ObjectId, Timestamp};
use ferry_protocol::{ObjectChange, UploadRequest};
use serde::Deserialize;

use crate::progress::Progress;
use crate::{Action, Answer, Body, Done, Event, Job, Mode, Start, Step, Store, TargetFacts};

/// When every transcript's job starts.
const STARTED: &str = "2026-12-01T10:00:00Z";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartLine {
    job: JobLine,
    #[serde(default)]
    pending: Option<UploadRequest>,
    #[serde(default)]
    dirty: Vec<ObjectChange>,
    #[serde(default = "default_seed")]
    seed: u64,
    /// The user signed in on the device before.
    #[serde(default)]
    user: Option<String>,
    /// The session's refresh token.
    #[serde(default)]
    refresh_token: Option<String>,
    /// The server's epoch as the device last saw it.
    #[serde(default)]
    server_epoch: String,
}

fn default_seed() -> u64 {
    1
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum JobLine {
    All,
    Unsynchronized,
    Selected(Vec<(String, String)>),
    FollowModel,
    SignIn { user: String, password: String },
    CallAction { name: String, parameters: serde_json::Map<String, serde_json::Value> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FactsLine {
    #[serde(default)]
    held: bool,
    #[serde(default)]
    created_here: bool,
    #[serde(default)]
    removed: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntityLine {
    checkpoint: Option<String>,
    holds_objects: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommittedLine {
    #[serde(default)]
    downloaded: BTreeMap<String, usize>,
    #[serde(default)]
    removed: BTreeMap<String, usize>,
}

fn json<'a, T: Deserialize<'a>>(text: &'a str, what: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| format!("`{what} {text}`: {e}"))
}

fn id(text: &str) -> Result<ObjectId, String> {
    ObjectId::parse(text).ok_or_else(|| format!("`{text}` is not an object id"))
}

/// The event of a transcript's `> ` line (without the prefix). `model_text` is the text of
/// `model` (for `$MODEL`), `upgrade` the model text of the last upgrade the machine asked for.
pub fn event(
    line: &str,
    model: &Arc<Model>,
    model_text: &str,
    upgrade: Option<&str>,
) -> Result<Event, String> {
    let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
    Ok(match kind {
        "start" => start(rest, model)?,
        "answer" => {
            let (status, body) = rest.split_once(' ').unwrap_or((rest, ""));
            let model_text = serde_json::Value::String(model_text.to_owned()).to_string();
            let body = body
                .replace("$VERSION", &model.version().to_string())
                .replace("$MODEL", &model_text);
            let status = status.parse().map_err(|e| format!("status `{status}`: {e}"))?;
            Event::Answer(Answer { status, body: body.into_bytes() })
        }
        "unreachable" => Event::Unreachable { reason: rest.to_owned() },
        "looked-up" => {
            let facts: Vec<FactsLine> = json(rest, kind)?;
            Event::LookedUp(
                facts
                    .into_iter()
                    .map(|f| TargetFacts {
                        held: f.held,
                        created_here: f.created_here,
                        removed: f.removed,
                    })
                    .collect(),
            )
        }
        "entity-state" => {
            let state: EntityLine = json(rest, kind)?;
            Event::EntityState { checkpoint: state.checkpoint, holds_objects: state.holds_objects }
        }
        "revisions" => {
            let held: BTreeMap<String, i64> = json(rest, kind)?;
            let held = held.into_iter().map(|(text, rev)| Ok((id(&text)?, rev)));
            Event::Revisions(held.collect::<Result<_, String>>()?)
        }
        "contents-held" => Event::ContentsHeld(json(rest, kind)?),
        "model-upgraded" => match rest {
            "changed" => {
                let text = upgrade.ok_or("`model-upgraded changed` before any upgrade")?;
                let model = Model::parse(text).map_err(|e| format!("the upgraded model: {e:?}"))?;
                Event::ModelUpgraded { model: Some(Arc::new(model)) }
            }
            "unchanged" => Event::ModelUpgraded { model: None },
            other => {
                return Err(format!(
                    "model-upgraded takes `changed` or `unchanged`, not `{other}`"
                ));
            }
        },
        "committed" => {
            let committed: CommittedLine = json(rest, kind)?;
            Event::Committed { downloaded: committed.downloaded, removed: committed.removed }
        }
        "clock" => Event::Clock(Timestamp::parse(rest).ok_or(format!("`{rest}` is no time"))?),
        "journal" => Event::Journal(json(rest, kind)?),
        "dirty" => Event::Dirty(json(rest, kind)?),
        "timer" => Event::Timer,
        "cancel" => Event::Cancel,
        other => return Err(format!("no event `{other}`")),
    })
}

/// The event of a `start` line.
fn start(rest: &str, model: &Arc<Model>) -> Result<Event, String> {
    let start: StartLine = json(rest, "start")?;
    let job = match start.job {
        JobLine::All => Job::Sync(Mode::All),
        JobLine::Unsynchronized => Job::Sync(Mode::Unsynchronized),
        JobLine::Selected(objects) => Job::Sync(Mode::Selected(
            objects
                .into_iter()
                .map(|(entity, text)| Ok((entity, id(&text)?)))
                .collect::<Result<_, String>>()?,
        )),
        JobLine::FollowModel => Job::FollowModel,
        JobLine::SignIn { user, password } => Job::SignIn { user, password },
        JobLine::CallAction { name, parameters } => Job::CallAction { name, parameters },
    };
    let user = start.user.as_deref().map(id).transpose()?;
    Ok(Event::Start(Box::new(Start {
        job,
        model: Arc::clone(model),
        device: "device-1".to_owned(),
        upload_id: "upload-1".to_owned(),
        seed: start.seed,
        started: Timestamp::parse(STARTED).ok_or("the start time")?,
        user,
        refresh_token: start.refresh_token,
        pending: start.pending,
        dirty: start.dirty,
        server_epoch: start.server_epoch,
    })))
}

/// An action as a transcript's `< ` line shows it (without the prefix).
pub fn render(action: &Action) -> String {
    match action {
        Action::Send(outgoing) => {
            let anonymous = if outgoing.anonymous { " without a token" } else { "" };
            let head =
                format!("send{anonymous} {} {}", outgoing.route.method.as_str(), outgoing.path);
            match &outgoing.body {
                Body::Empty => head,
                Body::Json(bytes) => format!("{head} {}", String::from_utf8_lossy(bytes)),
                Body::Content { entity, id, .. } => format!("{head} content of {entity} {id}"),
                Body::IntoStore { .. } => format!("{head} into the file store"),
            }
        }
        Action::Wait { ms } => format!("wait {ms} ms"),
        Action::LookUp(targets) => {
            let named: Vec<String> = targets.iter().map(|(e, id)| format!("{e} {id}")).collect();
            format!("look-up {}", named.join(", "))
        }
        Action::ReadEntity { entity } => format!("read-entity {entity}"),
        Action::ReadRevisions { entity, ids } => {
            format!("read-revisions {entity} {}", ids.join(", "))
        }
        Action::LookUpContents(hashes) => format!("look-up-contents {}", hashes.join(", ")),
        Action::UpgradeModel { text } => {
            let version = Model::parse(text).map(|m| m.version().to_string());
            format!("upgrade-model to {}", version.unwrap_or_else(|_| "an invalid model".into()))
        }
        Action::Store(store) => format!("store {}", render_store(store)),
        Action::BeginDownload => "begin-download".to_owned(),
        Action::Download(step) => format!("download {}", render_step(step)),
        Action::CommitDownload => "commit-download".to_owned(),
        Action::Progress(progress) => format!("progress {}", render_progress(progress)),
        Action::ReadClock => "read-clock".to_owned(),
        Action::ReadJournal { except_epoch } => {
            format!("read-journal except epoch `{except_epoch}`")
        }
        Action::ReadDirty => "read-dirty".to_owned(),
        Action::Finish(Ok(Done::ModelFollowed)) => "finish: the model is followed".to_owned(),
        Action::Finish(Ok(Done::SignedIn(user))) => format!("finish: {user} is signed in"),
        Action::Finish(Ok(Done::Synced(report))) => format!("finish {report:?}"),
        Action::Finish(Ok(Done::Acted(acted))) => format!("finish {acted:?}"),
        Action::ApplySynced { synced, removed } => {
            let synced: Vec<String> =
                synced.iter().map(|o| format!("{} {}@{}", o.entity, o.id, o.revision)).collect();
            let removed: Vec<String> =
                removed.iter().map(|k| format!("{} {}", k.entity, k.id)).collect();
            format!("apply-synced [{}] removing [{}]", synced.join(", "), removed.join(", "))
        }
        Action::Finish(Err(error)) => format!("finish with error {error:?}"),
    }
}

fn render_store(store: &Store) -> String {
    match store {
        Store::PendingUpload(request) => {
            let text = serde_json::to_string(request).unwrap_or_default();
            format!("pending-upload {text}")
        }
        Store::UploadAnswered { request, response } => format!(
            "upload-answered {} with {} outcomes",
            request.upload_id,
            response.outcomes.len()
        ),
        Store::FullSyncDue => "full-sync-due".to_owned(),
        Store::SignedIn { token, refresh_token, user, roles, forget_previous } => format!(
            "signed-in {user} with token {token}{}, roles [{}]{}",
            refresh(refresh_token),
            roles.join(", "),
            if *forget_previous { ", the previous user's data leaving the device" } else { "" }
        ),
        Store::Refreshed { token, refresh_token, roles } => {
            format!(
                "refreshed with token {token}{}, roles [{}]",
                refresh(refresh_token),
                roles.join(", ")
            )
        }
        Store::Restored { epoch, lost, forget } => {
            let lost: Vec<String> = lost
                .iter()
                .map(|l| {
                    let base = l.base_revision.map(|b| format!("@{b}")).unwrap_or_default();
                    format!("{} {} {:?} [{}]{base}", l.entity, l.id, l.kind, l.members.join(", "))
                })
                .collect();
            let forget: Vec<String> = forget.iter().map(i64::to_string).collect();
            format!(
                "restored to epoch `{epoch}`, dirty again [{}], forgetting journal rows [{}]",
                lost.join("; "),
                forget.join(", ")
            )
        }
        Store::FullSyncDone => "full-sync-done".to_owned(),
        Store::LastSync { at, mode } => format!("last-sync {at} {mode}"),
    }
}

fn refresh(refresh_token: &Option<String>) -> String {
    refresh_token.as_ref().map(|r| format!(" and refresh token {r}")).unwrap_or_default()
}

fn render_step(step: &Step) -> String {
    match step {
        Step::Begin { entity, full } => {
            format!("begin {entity} {}", if *full { "full" } else { "incremental" })
        }
        Step::Page { objects, removed, unchanged } => {
            let objects: Vec<String> =
                objects.iter().map(|o| format!("{}@{}", o.id, o.revision)).collect();
            let unchanged: Vec<String> = unchanged.iter().map(ObjectId::to_string).collect();
            format!(
                "page objects [{}] removed [{}] unchanged [{}]",
                objects.join(", "),
                removed.join(", "),
                unchanged.join(", ")
            )
        }
        Step::End { checkpoint } => {
            format!("end at {}", checkpoint.as_deref().unwrap_or("no checkpoint"))
        }
    }
}

fn render_progress(progress: &Progress) -> String {
    let count = |n: Option<usize>| n.map_or("?".to_owned(), |n| n.to_string());
    format!(
        "{:?}{} objects {}/{} bytes {}/{}",
        progress.phase,
        progress.entity.as_ref().map(|e| format!(" {e}")).unwrap_or_default(),
        progress.objects_done,
        count(progress.objects_total),
        progress.bytes_done,
        count(progress.bytes_total),
    )
}
