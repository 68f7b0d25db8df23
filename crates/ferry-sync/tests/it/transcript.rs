//! Reading, running and writing transcripts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use ferry_model::{Model, ObjectId, Timestamp};
use ferry_protocol::{ObjectChange, UploadRequest};
use ferry_sync::{
    Action, Answer, Body, Done, Event, Job, Mode, Progress, Start, Step, Store, SyncMachine,
    TargetFacts,
};
use serde::Deserialize;

fn directory() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("transcripts")
}

fn model() -> Arc<Model> {
    let text = std::fs::read_to_string(directory().join("model.toml")).unwrap();
    Arc::new(Model::parse(&text).unwrap())
}

/// Runs one transcript and compares, or rewrites it under `UPDATE_EXPECT=1`.
pub(crate) fn check(name: &str) {
    let path = directory().join(format!("{name}.txt"));
    let written = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (make it with the events it feeds)", path.display()));
    let actual = run(&written);
    if actual == written {
        return;
    }
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    panic!(
        "{} differs from what the machine does; run with UPDATE_EXPECT=1 to see the change in the diff\n\n--- the machine now ---\n{actual}",
        path.display()
    );
}

/// Every `.txt` file is one of the listed transcripts.
pub(crate) fn every_file_is_listed(listed: &[&str]) {
    let mut unlisted = Vec::new();
    for entry in std::fs::read_dir(directory()).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.extension().is_some_and(|e| e == "txt") && !listed.contains(&stem.as_str()) {
            unlisted.push(stem);
        }
    }
    assert!(unlisted.is_empty(), "transcripts no test runs: {unlisted:?}");
}

/// The transcript as the machine plays it: the comments and events as written, each event's
/// actions after it as the machine gives them now.
fn run(written: &str) -> String {
    let model = model();
    let mut machine = SyncMachine::new();
    let mut out = String::new();
    let mut last_upgrade: Option<String> = None;
    for line in written.lines() {
        if line.starts_with("< ") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        let Some(event) = line.strip_prefix("> ") else { continue };
        let event = parse_event(event, &model, last_upgrade.as_deref());
        for action in machine.handle(event) {
            if let Action::UpgradeModel { text } = &action {
                last_upgrade = Some(text.clone());
            }
            writeln!(out, "< {}", render(&action)).unwrap();
        }
    }
    out
}

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

fn json<'a, T: Deserialize<'a>>(text: &'a str, what: &str) -> T {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("`{what} {text}`: {e}"))
}

fn id(text: &str) -> ObjectId {
    ObjectId::parse(text).unwrap_or_else(|| panic!("`{text}` is not an object id"))
}

fn parse_event(line: &str, model: &Arc<Model>, upgrade: Option<&str>) -> Event {
    let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
    match kind {
        "start" => {
            let start: StartLine = json(rest, kind);
            let job = match start.job {
                JobLine::All => Job::Sync(Mode::All),
                JobLine::Unsynchronized => Job::Sync(Mode::Unsynchronized),
                JobLine::Selected(objects) => Job::Sync(Mode::Selected(
                    objects.into_iter().map(|(entity, text)| (entity, id(&text))).collect(),
                )),
                JobLine::FollowModel => Job::FollowModel,
                JobLine::SignIn { user, password } => Job::SignIn { user, password },
                JobLine::CallAction { name, parameters } => Job::CallAction { name, parameters },
            };
            Event::Start(Box::new(Start {
                job,
                model: Arc::clone(model),
                device: "device-1".to_owned(),
                upload_id: "upload-1".to_owned(),
                seed: start.seed,
                started: Timestamp::parse("2026-12-01T10:00:00Z").unwrap(),
                user: start.user.as_deref().map(id),
                refresh_token: start.refresh_token,
                pending: start.pending,
                dirty: start.dirty,
            }))
        }
        "answer" => {
            let (status, body) = rest.split_once(' ').unwrap_or((rest, ""));
            let model_text = serde_json::to_string(&model_text()).unwrap();
            let body = body
                .replace("$VERSION", &model.version().to_string())
                .replace("$MODEL", &model_text);
            Event::Answer(Answer { status: status.parse().unwrap(), body: body.into_bytes() })
        }
        "unreachable" => Event::Unreachable { reason: rest.to_owned() },
        "looked-up" => {
            let facts: Vec<FactsLine> = json(rest, kind);
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
            let state: EntityLine = json(rest, kind);
            Event::EntityState { checkpoint: state.checkpoint, holds_objects: state.holds_objects }
        }
        "revisions" => {
            let held: BTreeMap<String, i64> = json(rest, kind);
            Event::Revisions(held.into_iter().map(|(text, rev)| (id(&text), rev)).collect())
        }
        "contents-held" => Event::ContentsHeld(json(rest, kind)),
        "model-upgraded" => match rest {
            "changed" => {
                let text = upgrade.expect("an upgrade asked before");
                Event::ModelUpgraded { model: Some(Arc::new(Model::parse(text).unwrap())) }
            }
            "unchanged" => Event::ModelUpgraded { model: None },
            other => panic!("model-upgraded takes `changed` or `unchanged`, not `{other}`"),
        },
        "committed" => {
            let committed: CommittedLine = json(rest, kind);
            Event::Committed { downloaded: committed.downloaded, removed: committed.removed }
        }
        "clock" => Event::Clock(Timestamp::parse(rest).unwrap()),
        "timer" => Event::Timer,
        "cancel" => Event::Cancel,
        other => panic!("no event `{other}`"),
    }
}

fn model_text() -> String {
    std::fs::read_to_string(directory().join("model.toml")).unwrap()
}

fn render(action: &Action) -> String {
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
            format!("pending-upload {}", serde_json::to_string(request).unwrap())
        }
        Store::UploadAnswered { request, response } => format!(
            "upload-answered {} with {} outcomes",
            request.upload_id,
            response.outcomes.len()
        ),
        Store::FullSyncDue => "full-sync-due".to_owned(),
        Store::SignedIn { token, refresh_token, user, forget_previous } => format!(
            "signed-in {user} with token {token}{}{}",
            refresh(refresh_token),
            if *forget_previous { ", the previous user's data leaving the device" } else { "" }
        ),
        Store::Refreshed { token, refresh_token } => {
            format!("refreshed with token {token}{}", refresh(refresh_token))
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
