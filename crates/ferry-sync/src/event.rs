//! What goes into the machine and what comes out.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_model::{Model, ObjectId, Timestamp};
use ferry_protocol::endpoint::Route;
use ferry_protocol::{
    DownloadedObject, ObjectChange, ObjectKey, SyncedObject, UploadRequest, UploadResponse,
};

use crate::progress::Progress;
use crate::{Job, Outcome};

/// What the shell tells the machine.
#[derive(Clone, Debug)]
pub enum Event {
    /// A job starts, with what the local store holds.
    Start(Box<Start>),
    /// The server answered the request last sent.
    Answer(Answer),
    /// The request last sent failed in the network (nothing came back, or not whole).
    Unreachable {
        /// What failed.
        reason: String,
    },
    /// The facts of the objects asked with [`Action::LookUp`], in the same order.
    LookedUp(Vec<TargetFacts>),
    /// An entity's local state, asked with [`Action::ReadEntity`].
    EntityState {
        /// The checkpoint of the entity's last download, if any.
        checkpoint: Option<String>,
        /// True when the device holds objects of the entity.
        holds_objects: bool,
    },
    /// The revisions the device holds of the objects asked with [`Action::ReadRevisions`]
    /// (objects it does not hold are absent).
    Revisions(BTreeMap<ObjectId, i64>),
    /// Which of the contents asked with [`Action::LookUpContents`] the file store holds.
    ContentsHeld(Vec<String>),
    /// [`Action::UpgradeModel`] is done: the device's model, when it changed (a full sync
    /// becomes due).
    ModelUpgraded {
        /// The device's new model; `None` when nothing changed.
        model: Option<Arc<Model>>,
    },
    /// The download's local transaction committed: what it wrote.
    Committed {
        /// Objects written, per entity.
        downloaded: BTreeMap<String, usize>,
        /// Objects removed, per entity.
        removed: BTreeMap<String, usize>,
    },
    /// The time, asked with [`Action::ReadClock`].
    Clock(Timestamp),
    /// The upload journal's rows asked with [`Action::ReadJournal`], in the order they were
    /// journaled.
    Journal(Vec<crate::restore::JournalRow>),
    /// Every committed change not yet uploaded, asked with [`Action::ReadDirty`] (as
    /// [`Start::dirty`]).
    Dirty(Vec<ObjectChange>),
    /// The wait of [`Action::Wait`] is over.
    Timer,
    /// The app asked the job to stop.
    Cancel,
}

impl Event {
    /// A short name, for errors and transcripts.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Start(_) => "start",
            Event::Answer(_) => "answer",
            Event::Unreachable { .. } => "unreachable",
            Event::LookedUp(_) => "looked-up",
            Event::EntityState { .. } => "entity-state",
            Event::Revisions(_) => "revisions",
            Event::ContentsHeld(_) => "contents-held",
            Event::ModelUpgraded { .. } => "model-upgraded",
            Event::Committed { .. } => "committed",
            Event::Clock(_) => "clock",
            Event::Journal(_) => "journal",
            Event::Dirty(_) => "dirty",
            Event::Timer => "timer",
            Event::Cancel => "cancel",
        }
    }
}

/// The start of a job and what the local store holds.
#[derive(Clone, Debug)]
pub struct Start {
    /// The job.
    pub job: Job,
    /// The device's model.
    pub model: Arc<Model>,
    /// The device's name on the server.
    pub device: String,
    /// A fresh random id, for the upload this sync makes (unused when one is pending).
    pub upload_id: String,
    /// Seeds the jitter of the retry waits.
    pub seed: u64,
    /// When the job started.
    pub started: Timestamp,
    /// The user signed in on the device, if any.
    pub user: Option<ObjectId>,
    /// The session's refresh token, when the server gave one: spent for a new access token
    /// when the server refuses the one the shell sends (401).
    pub refresh_token: Option<String>,
    /// The upload an earlier attempt stored and did not finish: resent unchanged.
    pub pending: Option<UploadRequest>,
    /// Every committed change not yet uploaded (read when nothing is pending), in the order of
    /// entity and id, with the values of the changed members.
    pub dirty: Vec<ObjectChange>,
    /// The server's epoch as the device last saw it (empty: none yet, or a server never
    /// restored); see [`crate::restore`].
    pub server_epoch: String,
}

/// A server's answer: its status and body (empty when the body went into the file store).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// What the device holds of an object a change refers to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TargetFacts {
    /// The device holds the object.
    pub held: bool,
    /// The object was created on this device and not uploaded yet.
    pub created_here: bool,
    /// A download or a clear removed the object from the device lately.
    pub removed: bool,
}

/// A request to send. The shell adds the signed-in user's token, unless `anonymous`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Sent without a token (a sign-in).
    pub anonymous: bool,
    /// The route.
    pub route: Route,
    /// The path, with its query.
    pub path: String,
    /// The body.
    pub body: Body,
}

/// The body of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// None.
    Empty,
    /// JSON.
    Json(Vec<u8>),
    /// A file content from the device's store, streamed; the object named so a content missing
    /// from the store is reported as the object's.
    Content {
        /// The content's SHA-256.
        hash: String,
        /// The file object's entity.
        entity: String,
        /// The file object.
        id: String,
    },
    /// None; the answer's body, when 200, goes into the file store as this content.
    IntoStore {
        /// The content's SHA-256.
        hash: String,
    },
}

/// One step of a download, in order: an entity begins, its pages, its end; then the commit.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// An entity's download starts. `full`: the server sends everything the user may read now,
    /// so whatever else the device holds of the entity goes once the entity ends.
    Begin {
        /// The entity.
        entity: String,
        /// A full download.
        full: bool,
    },
    /// Objects to write, ids to remove, and ids the server confirmed unchanged (a reconciled
    /// index: they stay as they are).
    Page {
        /// Objects in full.
        objects: Vec<DownloadedObject>,
        /// Ids to remove.
        removed: Vec<String>,
        /// Ids that stay.
        unchanged: Vec<ObjectId>,
    },
    /// The entity is complete; its checkpoint, when the download gave one.
    End {
        /// The checkpoint to keep.
        checkpoint: Option<String>,
    },
}

/// A write to the local store that needs no answer (a failure of it ends the job in the shell).
#[derive(Clone, Debug, PartialEq)]
pub enum Store {
    /// Keep this upload: every retry, in this sync or a later one, sends exactly it.
    PendingUpload(UploadRequest),
    /// The upload was answered: for each change, forget what was sent from the object's dirty
    /// record, write the fresh state of applied objects (keeping members changed again since),
    /// and drop the pending upload; in one local transaction.
    UploadAnswered {
        /// The upload.
        request: UploadRequest,
        /// Its answer, one outcome per change.
        response: UploadResponse,
    },
    /// A full sync is due (the model changed).
    FullSyncDue,
    /// A user signed in: keep their token and id (and the server's address), in one local
    /// transaction with, when `forget_previous`, the removal of the previous user's objects
    /// and checkpoints.
    SignedIn {
        /// The session's access token.
        token: String,
        /// The session's refresh token, when the server gave one.
        refresh_token: Option<String>,
        /// The user.
        user: ObjectId,
        /// The user's roles, as the server answered (which views an app shows).
        roles: Vec<String>,
        /// Another user was signed in: their data leaves the device.
        forget_previous: bool,
    },
    /// The session was refreshed: keep its new access token and refresh token (the refresh
    /// token spent is no longer good), and send the new access token from now on.
    Refreshed {
        /// The new access token.
        token: String,
        /// The new refresh token.
        refresh_token: Option<String>,
        /// The user's roles now (an administrator may have changed them).
        roles: Vec<String>,
    },
    /// The server's data was restored from a backup (or the device meets the server's epoch
    /// for the first time): in one local transaction, make these changes dirty again (joined
    /// with the object's dirty record; a change of an object the device no longer holds is
    /// passed over, unless a deletion), forget the journal rows they came from, keep the epoch,
    /// forget every checkpoint, and have the next downloads full without an index (the
    /// revisions the device holds may be ones the restored server gives again to other
    /// states) until a full sync completes.
    Restored {
        /// The server's epoch.
        epoch: String,
        /// The changes to make dirty again.
        lost: Vec<crate::restore::Lost>,
        /// The journal's rows to forget.
        forget: Vec<i64>,
    },
    /// A full sync completed.
    FullSyncDone,
    /// The last sync, when and in which mode.
    LastSync {
        /// When it ended.
        at: Timestamp,
        /// Its mode's name.
        mode: String,
    },
}

/// What the machine asks the shell to do.
#[derive(Clone, Debug)]
pub enum Action {
    /// Send this request; answer with [`Event::Answer`] or [`Event::Unreachable`].
    Send(Outgoing),
    /// Wait this long; answer with [`Event::Timer`].
    Wait {
        /// Milliseconds.
        ms: u64,
    },
    /// What the device holds of these objects (entity, id); answer with [`Event::LookedUp`].
    LookUp(Vec<(String, ObjectId)>),
    /// An entity's checkpoint and whether the device holds objects of it; answer with
    /// [`Event::EntityState`].
    ReadEntity {
        /// The entity.
        entity: String,
    },
    /// The revisions held of these objects; answer with [`Event::Revisions`].
    ReadRevisions {
        /// The entity.
        entity: String,
        /// The ids.
        ids: Vec<String>,
    },
    /// Which of these contents the file store holds; answer with [`Event::ContentsHeld`].
    LookUpContents(Vec<String>),
    /// Move the device to this model (migrating its schema, keeping its changes); answer with
    /// [`Event::ModelUpgraded`].
    UpgradeModel {
        /// The model file.
        text: String,
    },
    /// Write to the local store.
    Store(Store),
    /// Begin the download's local transaction (taking the write lock).
    BeginDownload,
    /// Write a step of the download inside its transaction.
    Download(Step),
    /// Commit the download; answer with [`Event::Committed`].
    CommitDownload,
    /// In one local transaction: write the objects a server action synchronised, overwriting
    /// the device's copies and dropping their dirty records, and remove the objects it names;
    /// answer with [`Event::Committed`] (the objects removed, per entity).
    ApplySynced {
        /// Objects to write.
        synced: Vec<SyncedObject>,
        /// Objects to remove.
        removed: Vec<ObjectKey>,
    },
    /// Tell the app how far the sync has come.
    Progress(Progress),
    /// Ask the time; answer with [`Event::Clock`].
    ReadClock,
    /// The upload journal's rows of other epochs than this one; answer with
    /// [`Event::Journal`].
    ReadJournal {
        /// The server's epoch now.
        except_epoch: String,
    },
    /// Every committed change not yet uploaded; answer with [`Event::Dirty`].
    ReadDirty,
    /// The job ended; an unfinished download is rolled back.
    Finish(Outcome),
}
