//! Why a job did not complete. The device keeps every committed change for the next sync.

use ferry_model::ObjectId;

/// Why a job did not complete.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The app cancelled; the phase under way finished or was rolled back whole.
    #[error(
        "the synchronization was cancelled; committed changes not yet uploaded are kept for the next one"
    )]
    Cancelled,
    /// The server speaks another version of the protocol: nothing was exchanged beyond the
    /// model.
    #[error(
        "the server speaks protocol version {server}, this device version {device}: update the app or the server so they match"
    )]
    Protocol {
        /// The server's protocol version.
        server: u32,
        /// This device's.
        device: u32,
    },
    /// The network failed, on every attempt.
    #[error("cannot reach the server: {reason}; check the connection and sync again")]
    Unreachable {
        /// What failed the last time.
        reason: String,
    },
    /// The server does not know the token (nobody signed in, or the session expired).
    #[error("not signed in, or the session expired: sign in again ({message})")]
    NotSignedIn {
        /// The server's explanation.
        message: String,
    },
    /// The server refused a request, or answered what this device cannot read.
    #[error("the server answered {status} {code}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The error code (`bad-response` for an answer this device cannot read).
        code: String,
        /// The explanation.
        message: String,
    },
    /// A committed object refers to an object neither on the device nor on the server.
    #[error(
        "`{entity}` {id} refers through `{association}` to {target}, which is neither committed on this device nor known to the server"
    )]
    Integrity {
        /// The referring object's entity.
        entity: String,
        /// The referring object.
        id: ObjectId,
        /// The association.
        association: String,
        /// The missing object.
        target: ObjectId,
    },
    /// A selected object refers to an object committed here but not yet on the server.
    #[error(
        "`{entity}` {id} refers through `{association}` to {target}, which is committed on this device but not yet on the server: select it too, or run a full sync"
    )]
    SelectionIntegrity {
        /// The referring object's entity.
        entity: String,
        /// The referring object.
        id: ObjectId,
        /// The association.
        association: String,
        /// The object to select too.
        target: ObjectId,
    },
    /// A file content could not be sent, on any attempt: nothing was uploaded.
    #[error(
        "the content of `{entity}` {id} could not be sent, twice ({reason}); every local change is kept for the next sync"
    )]
    FileUpload {
        /// The file object's entity.
        entity: String,
        /// The file object.
        id: String,
        /// What failed the last time.
        reason: String,
    },
    /// Another user's committed changes are still on the device: nothing changed.
    #[error(
        "{count} changes of the previous user are not uploaded yet: sign in as that user and sync before switching users"
    )]
    AnotherUsersChanges {
        /// How many objects have changes.
        count: usize,
    },
    /// A selection names an entity the model does not have.
    #[error("the model has no entity `{entity}`")]
    UnknownEntity {
        /// The name given.
        entity: String,
    },
    /// The stored pending upload or the dirty records name what the model does not have.
    #[error("the device database is damaged: {what}")]
    Corrupt {
        /// What is wrong.
        what: String,
    },
    /// The shell answered with an event the machine was not waiting for: a bug of the shell.
    #[error("the sync core was given `{event}`, which it was not waiting for")]
    Unexpected {
        /// The event's name.
        event: String,
    },
}

impl Error {
    /// The error for an answer whose body is not what this device expects.
    pub(crate) fn bad_response(status: u16, message: String) -> Error {
        Error::Server { status, code: "bad-response".to_owned(), message }
    }
}
