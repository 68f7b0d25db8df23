//! The wire protocol between devices and the server: every request and response body, as JSON.
//!
//! Only this crate derives `Serialize`/`Deserialize` for the wire, because a serializable type is
//! a promise to devices in the field. Values travel in the JSON form of [`value`]; wire input
//! becomes domain values only through validating conversions there.
//!
//! Endpoints (all under `/v1`, JSON bodies, `Authorization: Bearer <token>` except sign-in and health):
//! - `POST /v1/sign-in` [`SignInRequest`] → [`SignInResponse`]
//! - `POST /v1/sign-in/token` [`TokenSignInRequest`] → [`SignInResponse`]
//! - `POST /v1/sign-in/refresh` [`RefreshRequest`] → [`SignInResponse`]
//! - `GET /v1/model` → [`ModelResponse`]
//! - `POST /v1/upload` [`UploadRequest`] → [`UploadResponse`]
//! - `GET /v1/download/{entity}?after=…&limit=…&index=…&count=…` → [`DownloadPage`]
//! - `POST /v1/download/{entity}/objects` [`ObjectsRequest`] → [`ObjectsResponse`]
//! - `POST /v1/actions/{name}` [`ActionRequest`] → [`ActionResponse`]
//! - `POST /v1/files/missing` [`FilesMissingRequest`] → [`FilesMissingResponse`]
//! - `PUT /v1/files/{sha256}` (the content, streamed) → [`FileStored`]
//! - `GET /v1/files/{entity}/{id}?hash=…` → the content of a file object, streamed
//! - `GET /v1/failures`, `GET /v1/failures/{id}`, `POST /v1/failures/{id}/replay`,
//!   `GET /v1/failures/{id}/file` (administrators)
//! - `GET /v1/users` → [`UserList`], `POST /v1/users` [`NewUser`] → [`UserInfo`],
//!   `PUT /v1/users/{name}/roles` [`RolesUpdate`] → [`UserInfo`], `GET /v1/devices` →
//!   [`DeviceList`] (administrators)
//! - `POST /v1/sync-report` [`SyncRecord`] → 204; `GET /v1/history` (administrators), `GET /health`, `GET /metrics` (Prometheus text)
//!
//! Every error is an [`ErrorBody`] with an HTTP status that says who must act.

pub mod endpoint;
pub mod value;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Bumped when a change would break devices already in the field.
pub const PROTOCOL_VERSION: u32 = 1;

/// The deepest nesting of arrays and objects a request or an answer may have: serde_json's own
/// recursion limit, under which every decoder of Ferry's wire runs (none lifts it), so no body
/// can drive a decoder's stack deeper. Ferry's documents nest three or four levels.
pub const JSON_DEPTH_MAX: usize = 128;

/// The JSON of one object's members: member name to value (`null` for empty).
pub type Members = BTreeMap<String, serde_json::Value>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    pub user: String,
    pub password: String,
}

/// Signing in with a token of the server's identity provider (a JWT).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSignInRequest {
    pub token: String,
}

/// A new access token for a session, in exchange for its refresh token (which is then spent:
/// the answer carries the next one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// A session: a short-lived access token for every request, and the refresh token that gets
/// the next one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignInResponse {
    /// The access token, sent as `Authorization: Bearer <token>`.
    pub token: String,
    pub user_id: String,
    pub roles: Vec<String>,
    /// When the access token expires: UTC, as `2026-11-23T10:00:00Z`.
    pub expires_at: String,
    /// Spent once at `POST /v1/sign-in/refresh` for the next access token; absent from servers
    /// that issue no refresh tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the refresh token expires unless spent before (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelResponse {
    pub version: String,
    /// The model file text, as the server loaded it.
    pub text: String,
    pub protocol_version: u32,
    /// The server's epoch: empty until the server's data is first restored from a backup, a
    /// new random one at each restore (see [`RestorePoint`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub epoch: String,
    /// The backups the server's data was restored from, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restored: Vec<RestorePoint>,
}

/// A restore of the server's data from a backup: every change the server applied in `epoch`
/// up to position `through` of its change sequence is in the restored data; later ones of
/// that epoch are not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePoint {
    pub epoch: String,
    pub through: i64,
}

/// Where an upload's transaction stands in the server's change sequence: the server's epoch
/// and the upload's last position. A restore names the positions it kept (see
/// [`RestorePoint`]), so a device knows which of its uploads the restore lost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequencePosition {
    #[serde(default)]
    pub epoch: String,
    pub seq: i64,
}

/// All committed changes of one device, applied by the server in one transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// Chosen by the device before the first attempt and reused on every retry.
    pub upload_id: String,
    pub device: String,
    pub changes: Vec<ObjectChange>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectChange {
    pub entity: String,
    pub id: String,
    pub kind: ChangeKind,
    /// The revision the device's change is based on (for entities with revision checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_revision: Option<i64>,
    /// Only the members the device changed (all members it set, for a new object).
    #[serde(default)]
    pub values: Members,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    Create,
    Update,
    Delete,
}

impl ChangeKind {
    /// Every kind.
    pub const ALL: [ChangeKind; 3] = [ChangeKind::Create, ChangeKind::Update, ChangeKind::Delete];

    /// The kind's name, as on the wire (and as stores keep it).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
        }
    }

    /// The kind of a name.
    pub fn parse(name: &str) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UploadResponse {
    pub upload_id: String,
    /// One outcome per change, in the order of the request.
    pub outcomes: Vec<ObjectOutcome>,
    /// The upload's place in the change sequence (servers before restores existed give none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<SequencePosition>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectOutcome {
    pub entity: String,
    pub id: String,
    #[serde(flatten)]
    pub result: OutcomeResult,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum OutcomeResult {
    /// Applied; the object's fresh server state (readable members only).
    Applied {
        revision: i64,
        values: Members,
    },
    Deleted,
    /// Skipped into `SynchronizationError`; nothing of it was applied.
    Failed {
        reason: String,
        /// Why, for a program to act on; `reason` says it for a person.
        kind: RejectionKind,
        failure_id: i64,
    },
}

/// Why the server rejected an object, for a program to act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RejectionKind {
    /// The user's roles may not make this change (create, write a member, reach the object).
    Access,
    /// The change meets a server state it cannot apply to: an outdated revision, an object
    /// that exists already, was deleted, does not exist, or that referring objects hold.
    Conflict,
    /// A reference to an object that exists neither on the server nor in the upload.
    DanglingReference,
    /// A validation rule of the model (required, unique, limits, a file's content).
    Validation,
    /// A before-apply handler of the app refused it.
    Handler,
}

impl RejectionKind {
    /// Every kind.
    pub const ALL: [RejectionKind; 5] = [
        RejectionKind::Access,
        RejectionKind::Conflict,
        RejectionKind::DanglingReference,
        RejectionKind::Validation,
        RejectionKind::Handler,
    ];

    /// The kind's name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionKind::Access => "access",
            RejectionKind::Conflict => "conflict",
            RejectionKind::DanglingReference => "dangling-reference",
            RejectionKind::Validation => "validation",
            RejectionKind::Handler => "handler",
        }
    }

    /// The kind of a name.
    pub fn parse(name: &str) -> Option<RejectionKind> {
        RejectionKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// One page of an entity's download.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DownloadPage {
    pub entity: String,
    /// `incremental` (changes since the checkpoint) or `full` (everything the user may read now:
    /// the device removes what it holds beyond `objects` once the last page arrived).
    pub mode: DownloadMode,
    pub objects: Vec<DownloadedObject>,
    /// Ids to remove from the device: deleted, no longer readable or no longer matching.
    pub removed: Vec<String>,
    /// Pass as `after` to get the next page, or the next incremental download.
    pub checkpoint: String,
    /// True when another page follows.
    pub more: bool,
    /// True when `objects` carry ids and revisions only (a full download asked as an index).
    #[serde(default)]
    pub index: bool,
    /// When asked with `count=true`: how many entries (objects and removals) the download holds
    /// from this page on, counted as this page was read. Changes made meanwhile may add some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DownloadMode {
    Incremental,
    Full,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DownloadedObject {
    pub id: String,
    pub revision: i64,
    pub values: Members,
}

/// An applied object's outcome that borrows its values, for the server to write large upload
/// responses without copying them into [`Members`]. Its JSON is exactly that of an
/// [`ObjectOutcome`] with [`OutcomeResult::Applied`].
pub struct AppliedRef<'a> {
    pub entity: &'a str,
    pub id: ferry_model::ObjectId,
    pub revision: i64,
    pub members: Vec<(&'a str, &'a ferry_model::Value)>,
}

impl Serialize for AppliedRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(5))?;
        map.serialize_entry("entity", self.entity)?;
        map.serialize_entry("id", &format_args!("{}", self.id))?;
        map.serialize_entry("outcome", "applied")?;
        map.serialize_entry("revision", &self.revision)?;
        map.serialize_entry("values", &MembersRef(&self.members))?;
        map.end()
    }
}

/// Members by name, serialised as a JSON object of values.
struct MembersRef<'a>(&'a [(&'a str, &'a ferry_model::Value)]);

impl Serialize for MembersRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, v)| (*name, value::JsonValue(v))))
    }
}

/// A download page that borrows its objects' values, for the server to serialise large pages
/// without copying them into [`Members`]. Its JSON is exactly that of [`DownloadPage`].
#[derive(Serialize)]
pub struct DownloadPageRef<'a> {
    pub entity: &'a str,
    pub mode: DownloadMode,
    pub objects: Vec<ObjectRef<'a>>,
    pub removed: &'a [String],
    pub checkpoint: &'a str,
    pub more: bool,
    pub index: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// An object of a [`DownloadPageRef`]: its id, revision and readable members by name.
pub struct ObjectRef<'a> {
    pub id: ferry_model::ObjectId,
    pub revision: i64,
    pub members: Vec<(&'a str, &'a ferry_model::Value)>,
}

impl Serialize for ObjectRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut object = serializer.serialize_struct("DownloadedObject", 3)?;
        object.serialize_field("id", &format_args!("{}", self.id))?;
        object.serialize_field("revision", &self.revision)?;
        object.serialize_field("values", &MembersRef(&self.members))?;
        object.end()
    }
}

/// A `SynchronizationError` record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub id: i64,
    pub entity: String,
    pub object_id: String,
    pub kind: ChangeKind,
    pub attempted: Members,
    pub reason: String,
    /// Why, for a program to act on.
    pub rejection: RejectionKind,
    pub user: String,
    pub upload_id: String,
    /// UTC.
    pub at: String,
    /// Set once a replay applied it.
    pub replayed_at: Option<String>,
    /// The administrator whose replay applied it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed_by: Option<String>,
    /// The values the administrator corrected in that replay, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed_values: Option<Members>,
    /// The object's members as the server holds them now (`GET /v1/failures/{id}` only); `None`
    /// in listings, and when the object does not exist on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Members>,
}

/// The body of `POST /v1/failures/{id}/replay`, which may be empty: values that replace those
/// the change attempted (an administrator's correction), by member.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    #[serde(default)]
    pub values: Members,
}

/// `GET /v1/overview`: what an operator looks at first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    /// The server's version.
    pub server_version: String,
    /// The model's version.
    pub model_version: String,
    /// The model's roles.
    pub roles: Vec<String>,
    pub users: i64,
    /// Devices that reported a sync.
    pub devices: i64,
    /// Live streams open on the server process answering.
    pub live_devices: usize,
    /// Rejected changes not replayed yet.
    pub failures_waiting: i64,
    /// Syncs devices reported in each of the last minutes, oldest first: `[minute, syncs]`,
    /// the minute as `2026-12-04T10:15:00Z`.
    pub syncs_per_minute: Vec<(String, i64)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureList {
    pub failures: Vec<Failure>,
}

/// The result of replaying a failure: the object's outcome now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplayResponse {
    pub outcome: ObjectOutcome,
}

/// A `SynchronizationHistory` record: a device's sync as it reported it (`mode` is `all`,
/// `unsynchronized` or `selected`), or an upload as the server applied it (`mode` is `upload`,
/// and `objects_down` 0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub user: String,
    pub device: String,
    pub mode: String,
    /// The upload of the sync; empty when it uploaded nothing.
    pub upload_id: String,
    pub duration_ms: i64,
    pub objects_up: i64,
    pub objects_down: i64,
    pub errors: i64,
    pub at: String,
}

/// The data of a `changed` event on the live stream (`GET /v1/live`): entities the user
/// downloads that changed since the last event. It carries no objects: the device syncs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveHint {
    pub entities: Vec<String>,
}

/// The body of `POST /v1/sync-report`: what a completed sync did, for `SynchronizationHistory`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRecord {
    pub device: String,
    /// `all`, `unsynchronized` or `selected`.
    pub mode: String,
    /// The upload of the sync; empty when it uploaded nothing.
    pub upload_id: String,
    pub duration_ms: i64,
    pub objects_up: i64,
    pub objects_down: i64,
    pub errors: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryList {
    pub entries: Vec<HistoryEntry>,
}

/// A user as administrators see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserInfo {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
    /// A disabled user cannot sign in.
    #[serde(default)]
    pub disabled: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserList {
    pub users: Vec<UserInfo>,
}

/// The body of `POST /v1/users`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    pub password: String,
    pub roles: Vec<String>,
}

/// The body of `PUT /v1/users/{name}/disabled`: a disabled user cannot sign in, and their
/// sessions end at once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDisabled {
    pub disabled: bool,
}

/// The body of `PUT /v1/users/{name}/password`: the new password; the user's sessions end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub password: String,
}

/// The body of `PUT /v1/users/{name}/roles`: the user's roles from now on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesUpdate {
    pub roles: Vec<String>,
}

/// A device seen by the server: who uses it, and its syncs as it reported them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub user: String,
    pub device: String,
    pub syncs: i64,
    /// UTC, of the last completed sync.
    pub last_sync_at: String,
    pub last_mode: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceList {
    pub devices: Vec<DeviceInfo>,
}

/// The body of every error answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable, machine-readable: `bad-request` (400), `unauthorized` (401), `forbidden` (403),
    /// `not-found` (404), `method-not-allowed` (405), `conflict` (409), `payload-too-large`
    /// (413), `too-many-requests` (429), `unavailable` (503: the database failed; try again).
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub details: serde_json::Value,
    /// The request's id, as in the `x-request-id` header and the server's log: what to quote
    /// to an operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The query of `GET /v1/download/{entity}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadQuery {
    /// A checkpoint from an earlier page; absent for a first download.
    pub after: Option<String>,
    /// The most objects in the page (the server's maximum when absent).
    pub limit: Option<usize>,
    /// In a full download, send each object's id and revision only; the device reconciles them
    /// with what it holds and fetches what it lacks with `POST /v1/download/{entity}/objects`.
    pub index: Option<bool>,
    /// Count the entries (objects and removals) the download holds from here, into the page's
    /// `total`: a device asks on its first page of an entity to report progress against it.
    pub count: Option<bool>,
}

/// The body of `POST /v1/download/{entity}/objects`: the objects a device wants in full.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectsRequest {
    pub ids: Vec<String>,
}

/// The objects asked for that the user may read now; the others are `removed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectsResponse {
    pub objects: Vec<DownloadedObject>,
    pub removed: Vec<String>,
}

/// The body of `POST /v1/actions/{name}`: the action's parameters by name. Plain values only:
/// a persistable object (JSON with the `entity` and `id` of an object of the model) is refused;
/// pass its id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    #[serde(default)]
    pub parameters: serde_json::Map<String, serde_json::Value>,
}

/// What an action answered, and what it synchronised to the calling device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionResponse {
    /// The action's result: plain JSON, never a persistable object.
    pub result: serde_json::Value,
    /// Objects to add to the device or overwrite there (local changes to them are dropped), each
    /// once, in its latest committed state, readable members only.
    pub synced: Vec<SyncedObject>,
    /// Objects to remove from the device: deleted, or no longer readable to the user.
    pub removed: Vec<ObjectKey>,
    /// Objects the action asked to synchronise that were never saved: skipped.
    pub skipped: usize,
}

/// An object an action synchronises to the device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncedObject {
    pub entity: String,
    pub id: String,
    pub revision: i64,
    pub values: Members,
}

/// An object named by entity and id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectKey {
    pub entity: String,
    pub id: String,
}

/// The body of `POST /v1/files/missing`: contents (SHA-256, lowercase hex) a device is about
/// to reference in an upload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesMissingRequest {
    pub hashes: Vec<String>,
}

/// The contents the server does not hold yet: the device sends each with `PUT /v1/files/{sha256}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FilesMissingResponse {
    pub missing: Vec<String>,
}

/// The answer to `PUT /v1/files/{sha256}`: the content is stored under its hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileStored {
    pub hash: String,
    pub size: u64,
}

/// The query of `GET /v1/files/{entity}/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileQuery {
    /// The content the device expects; when the object holds another one now, the answer is 409.
    pub hash: Option<String>,
}

/// The header of a file content answer that names the content's SHA-256.
pub const CONTENT_HASH_HEADER: &str = "x-ferry-content-hash";

/// The query of `GET /v1/failures`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureQuery {
    pub entity: Option<String>,
    pub user: Option<String>,
}

#[cfg(test)]
mod tests {
    use ferry_model::{Decimal, ObjectId, Timestamp, Value};

    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    /// Every decoder refuses a body nested deeper than [`JSON_DEPTH_MAX`] with an error, never
    /// a crash; under it, nesting decodes (and is then refused by the document's shape).
    #[test]
    fn bodies_nested_deeper_than_the_limit_are_refused_not_followed() {
        for depth in [JSON_DEPTH_MAX + 1, 100_000] {
            let error = serde_json::from_str::<serde_json::Value>(&nested(depth)).unwrap_err();
            assert!(error.to_string().contains("recursion limit exceeded"), "{depth}: {error}");
            let upload = format!(
                r#"{{"upload_id":"u","device":"d","changes":[{{"entity":"E","id":"i","kind":"create","values":{{"Name":{}}}}}]}}"#,
                nested(depth)
            );
            let error = serde_json::from_str::<UploadRequest>(&upload).unwrap_err();
            assert!(error.to_string().contains("recursion limit exceeded"), "{depth}: {error}");
        }
        assert!(serde_json::from_str::<serde_json::Value>(&nested(JSON_DEPTH_MAX - 1)).is_ok());
    }

    /// The borrowing page the server writes reads back as the page devices decode.
    #[test]
    fn a_borrowed_page_is_a_download_page() {
        let values = [
            Value::String("a \"quoted\" line\n".to_owned()),
            Value::Empty,
            Value::Decimal(Decimal::parse("-1.5", 2).unwrap()),
            Value::DateTime(Timestamp::parse("2026-11-23T10:00:00.25Z").unwrap()),
            Value::Binary(vec![1, 2, 3]),
            Value::Reference(ObjectId::from_u128(9)),
            Value::Boolean(true),
            Value::Integer(-7),
        ];
        let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
        let members: Vec<(&str, &Value)> = names.iter().copied().zip(values.iter()).collect();
        let removed = vec![ObjectId::from_u128(3).to_string()];
        let borrowed = DownloadPageRef {
            entity: "Sales.Order",
            mode: DownloadMode::Incremental,
            objects: vec![ObjectRef { id: ObjectId::from_u128(1), revision: 4, members }],
            removed: &removed,
            checkpoint: "I.x.5",
            more: true,
            index: false,
            total: Some(2),
        };
        let owned = DownloadPage {
            entity: "Sales.Order".to_owned(),
            mode: DownloadMode::Incremental,
            objects: vec![DownloadedObject {
                id: ObjectId::from_u128(1).to_string(),
                revision: 4,
                values: names
                    .iter()
                    .zip(&values)
                    .map(|(n, v)| ((*n).to_owned(), value::encode(v)))
                    .collect(),
            }],
            removed: removed.clone(),
            checkpoint: "I.x.5".to_owned(),
            more: true,
            index: false,
            total: Some(2),
        };
        let decoded: DownloadPage =
            serde_json::from_str(&serde_json::to_string(&borrowed).unwrap()).unwrap();
        assert_eq!(decoded, owned);
        // A page without a count (not asked for) has none.
        let uncounted = DownloadPageRef { total: None, ..borrowed };
        let json = serde_json::to_string(&uncounted).unwrap();
        assert!(!json.contains("total"), "{json}");
        let decoded: DownloadPage = serde_json::from_str(&json).unwrap();
        assert_eq!(decoded, DownloadPage { total: None, ..owned });
    }
}
