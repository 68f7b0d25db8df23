//! The Ferry device SDK: the library an app embeds to work offline (DESIGN.md §3).
//!
//! A [`Database`] is one SQLite file on the device holding the model's objects. The app
//! [`create`](Database::create)s objects, [`set`](Database::set)s their members, and
//! [`commit`](Database::commit)s them; uncommitted changes live only in the app's [`Object`]s.
//! [`rollback`](Database::rollback) returns an object to its committed state,
//! [`delete`](Database::delete) removes it (recording the deletion when the server knows it),
//! [`clear`](Database::clear) empties an entity on the device only, and [`query`](Database::query)
//! reads committed objects with the constraint language.
//! The database records which committed members are dirty: the sync engine uploads exactly those.
//!
//! ```
//! # let dir = std::env::temp_dir().join(format!("ferry-doc-lib-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir); std::fs::create_dir_all(&dir).unwrap();
//! use ferry_client::{Database, Deletion, Query};
//! use ferry_model::{Value, samples};
//!
//! let db = Database::open(dir.join("device.db"), samples::FIELD_SERVICE)?;
//! let mut site = db.create("Field.Site")?;
//! db.set(&mut site, "Name", Value::String("Depot".to_owned()))?;
//! db.set(&mut site, "Address", Value::String("Main 1".to_owned()))?;
//! db.commit(&mut [&mut site])?;
//! assert_eq!(db.pending_changes()?, 1);
//!
//! db.set(&mut site, "Address", Value::String("Main 2".to_owned()))?;
//! db.rollback(&mut site)?; // back to the committed "Main 1"
//! assert_eq!(db.get_value(&site, "Address")?, &Value::String("Main 1".to_owned()));
//!
//! assert_eq!(db.query(&Query::new("Field.Site").filter("[Name = 'Depot']"))?.len(), 1);
//! assert_eq!(db.delete(&mut site)?, Deletion::Removed); // never uploaded: no trace left
//! assert_eq!(db.pending_changes()?, 0);
//! # Ok::<(), ferry_client::ClientError>(())
//! ```

#![warn(missing_docs)]

mod database;
mod effects;
mod files;
mod key;
mod object;
mod query;
mod sync;
mod watch;

use ferry_model::{ModelError, ObjectId, ValueType};

pub use database::{
    CHANGE_IDS_MAX, CHANGES_QUEUED_MAX, Database, DeviceStatus, FullSyncDue, LOCK_WAIT_MS,
    REMOVED_REMEMBERED_MAX,
};
pub use effects::{Clock, IdSource, RandomIds, SystemClock};
pub use files::{Content, DEVICE_FILE_GRACE_HOURS, FILE_BYTES_MAX, FILE_CHUNK_BYTES, FileContent};
pub use key::{DEVICE_KEY_SECRET_BYTES_MIN, DeviceKey};
pub use object::{ClearMode, Deletion, Object};
pub use query::{Order, Query};
pub use sync::{
    ANSWER_IDLE_TIMEOUT_MS, ANSWER_TIMEOUT_MS, ActionOutcome, Answer, CONNECT_TIMEOUT_MS,
    CancelToken, Credential, FILE_SEND_ATTEMPTS, FILE_SEND_RATE_MIN_BYTES_PER_S, HttpTransport,
    LIVE_DEBOUNCE_MS, LIVE_EVENT_BYTES_MAX, LIVE_RETRY_MS_MAX, LIVE_RETRY_MS_MIN, LiveCallback,
    LiveEvent, LiveOptions, PAGES_IN_FLIGHT, Payload, Phase, Progress, ProgressCallback,
    RESPONSE_BYTES_MAX, RESPONSE_HEAD_BYTES_MAX, RESPONSE_HEADERS_MAX, RETRY_DELAY_MS, Request,
    Response, SEND_ATTEMPTS_MAX, SIMULTANEOUS_SYNC_MESSAGE, Sink, SyncEngine, SyncError, SyncMode,
    SyncOptions, SyncReport, Timeouts, Transport, WAL_TRUNCATE_OBJECTS,
};
pub use watch::{WATCH_DEBOUNCE_MS, Watch};

/// Why a device operation was refused or failed; each names the thing concerned.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The model text is not a valid model.
    #[error("the model is invalid: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Model(Vec<ModelError>),
    /// The database was made for a model this one cannot migrate from.
    #[error("the device database cannot be migrated to this model:\n{plan}")]
    BreakingModel {
        /// The migration plan, with the breaking changes.
        plan: String,
    },
    /// No such entity in the model.
    #[error("unknown entity `{entity}`")]
    UnknownEntity {
        /// The name given.
        entity: String,
    },
    /// No such member of the entity.
    #[error("`{entity}` has no member `{member}`")]
    UnknownMember {
        /// The entity.
        entity: String,
        /// The name given.
        member: String,
    },
    /// A value of the wrong type for the member.
    #[error("`{entity}.{member}` takes values of type {expected}")]
    WrongType {
        /// The entity.
        entity: String,
        /// The member.
        member: String,
        /// The member's type.
        expected: ValueType,
    },
    /// An object with this id is on the device already.
    #[error("`{entity}` {id} is on this device already")]
    Exists {
        /// The entity.
        entity: String,
        /// The object.
        id: ObjectId,
    },
    /// The object was deleted.
    #[error("`{entity}` {id} was deleted")]
    Deleted {
        /// The entity.
        entity: String,
        /// The object.
        id: ObjectId,
    },
    /// A committed object would break a validation rule of the model (the one the server would
    /// reject it for, with the server's message); nothing of the commit was written.
    #[error("`{entity}` {id} cannot be committed: {rule}")]
    Validation {
        /// The entity.
        entity: String,
        /// The object.
        id: ObjectId,
        /// The rule, as the server names it.
        rule: Box<ferry_model::BrokenRule>,
    },
    /// The object cannot be deleted: objects on the device refer to it through an association
    /// whose delete behaviour is `refuse`. Nothing changed.
    #[error(
        "`{entity}` {id} cannot be deleted: {referrers} `{referrer_entity}` objects refer to it through `{association}`, which refuses its deletion while any does"
    )]
    DeleteRefused {
        /// The entity.
        entity: String,
        /// The object.
        id: ObjectId,
        /// How many objects refer to it.
        referrers: usize,
        /// Their entity.
        referrer_entity: String,
        /// The association.
        association: String,
    },
    /// Deleting the object would take more than `max` referring objects with it.
    #[error(
        "`{entity}` {id} cannot be deleted: it would take more than {max} referring objects with it"
    )]
    DeleteTooLarge {
        /// The entity.
        entity: String,
        /// The object.
        id: ObjectId,
        /// The limit.
        max: usize,
    },
    /// `clear` found unsynchronised changes and was told to keep them.
    #[error(
        "`{entity}` has {count} objects with unsynchronised changes; sync first, or clear with ClearMode::DiscardChanges"
    )]
    UnsyncedChanges {
        /// The entity.
        entity: String,
        /// How many objects have changes.
        count: usize,
    },
    /// A query's constraint is not valid for its entity.
    #[error("constraint `{constraint}`: {}", .errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Constraint {
        /// The constraint text.
        constraint: String,
        /// Every problem found.
        errors: Vec<ferry_constraint::ConstraintError>,
    },
    /// The device database cannot be read with the key given: another key, a key for a
    /// database that is not encrypted, or none for one that is. Nothing was changed.
    #[error(
        "the device database `{path}` does not open with this key: give the key it was made with (--key-file or FERRY_DEVICE_KEY)"
    )]
    WrongKey {
        /// The database's path.
        path: String,
    },
    /// A device key's secret is too short to be a key.
    #[error(
        "a device key must be at least {DEVICE_KEY_SECRET_BYTES_MIN} bytes of random secret, not {length}"
    )]
    KeyTooShort {
        /// The secret's length, in bytes.
        length: usize,
    },
    /// No device database at the path (or not one Ferry made).
    #[error("no device database at `{path}`: log in first")]
    NoDatabase {
        /// The path given.
        path: String,
    },
    /// A device database is a file: an in-memory one would lose every change.
    #[error("`{path}` is not a file path: a device database must be a file")]
    NotAFile {
        /// The path given.
        path: String,
    },
    /// File contents belong to objects of file entities only.
    #[error("`{entity}` is not a file entity: its objects carry no file contents")]
    NotAFileEntity {
        /// The entity.
        entity: String,
    },
    /// A file content over [`FILE_BYTES_MAX`].
    #[error("a file content may hold at most {limit} bytes")]
    FileTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The object's content is not on the device: it has none, or it is not downloaded yet.
    #[error("the content of `{entity}` {id} is not on this device")]
    FileMissing {
        /// The entity.
        entity: String,
        /// The object.
        id: ObjectId,
    },
    /// A certificate authority given to trust is not a PEM certificate.
    #[error("the certificate authority given cannot be used: {reason}")]
    Authority {
        /// What is wrong with it.
        reason: String,
    },
    /// The device's file store failed.
    #[error("device file store: {0}")]
    Files(std::io::Error),
    /// The database file failed.
    #[error("device database: {0}")]
    Database(#[from] rusqlite::Error),
    /// The download's writer ended before the download was complete, without an error of its
    /// own; nothing of the download was kept.
    #[error(
        "the download's writer stopped before the download was complete; nothing of it was kept: sync again"
    )]
    WriterStopped,
    /// The database holds something Ferry did not write.
    #[error("the device database is damaged: {0}")]
    Corrupt(String),
}
