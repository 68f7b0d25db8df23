//! One definition per route of the API: its method, its path pattern, and for JSON routes the
//! types of its request and answer. The server's router, the device SDK, the command line and
//! the simulation all name routes through these, never through path literals.

use crate::{
    ActionRequest, ActionResponse, DownloadPage, FilesMissingRequest, FilesMissingResponse,
    ModelResponse, ObjectsRequest, ObjectsResponse, RefreshRequest, SignInRequest, SignInResponse,
    SyncRecord, TokenSignInRequest, UploadRequest, UploadResponse,
};

/// An HTTP method of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
}

impl Method {
    /// The method as it goes on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }
}

/// A route: a method and a path pattern whose `{name}` segments are filled per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    /// The pattern, as the server's router reads it (`/v1/download/{entity}`).
    pub pattern: &'static str,
}

impl Route {
    /// The path with each `{…}` segment replaced, in order, by one of `segments`,
    /// percent-encoded. Panics when the number of segments does not match the pattern: a bug
    /// of the caller, never of input.
    pub fn path(&self, segments: &[&str]) -> String {
        let mut given = segments.iter();
        let path = self
            .pattern
            .split('/')
            .map(|part| match part.starts_with('{') {
                true => percent_encoded(given.next().expect("a segment for each `{…}`")),
                false => part.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/");
        assert!(given.next().is_none(), "more segments than `{}` has", self.pattern);
        path
    }
}

/// A JSON route: what its request body and its answer are.
pub trait Endpoint {
    const ROUTE: Route;
    /// The request body (`()` for none).
    type Request;
    /// The answer of a success.
    type Answer;
}

macro_rules! endpoints {
    ($($(#[$doc:meta])* $name:ident = $method:ident $pattern:literal, $request:ty => $answer:ty;)*) => {
        $(
            $(#[$doc])*
            pub struct $name;
            impl Endpoint for $name {
                const ROUTE: Route = Route { method: Method::$method, pattern: $pattern };
                type Request = $request;
                type Answer = $answer;
            }
        )*
    };
}

endpoints! {
    /// Signing in with a user name and password.
    SignIn = Post "/v1/sign-in", SignInRequest => SignInResponse;
    /// Signing in with a token of the server's identity provider.
    TokenSignIn = Post "/v1/sign-in/token", TokenSignInRequest => SignInResponse;
    /// A session's next access token, for its refresh token.
    Refresh = Post "/v1/sign-in/refresh", RefreshRequest => SignInResponse;
    /// The server's model and protocol version.
    Model = Get "/v1/model", () => ModelResponse;
    /// A device's committed changes.
    Upload = Post "/v1/upload", UploadRequest => UploadResponse;
    /// One page of an entity's download; the query is a [`crate::DownloadQuery`].
    Download = Get "/v1/download/{entity}", () => DownloadPage;
    /// The objects of an entity a device wants in full, by id.
    Objects = Post "/v1/download/{entity}/objects", ObjectsRequest => ObjectsResponse;
    /// A server action.
    Action = Post "/v1/actions/{name}", ActionRequest => ActionResponse;
    /// Which of some file contents the server lacks.
    FilesMissing = Post "/v1/files/missing", FilesMissingRequest => FilesMissingResponse;
    /// A completed sync, for the synchronization history (answered 204).
    SyncReport = Post "/v1/sync-report", SyncRecord => ();
}

/// `GET`: the live stream of an online device, Server-Sent Events: `ready` once it is open,
/// then `changed` (a [`crate::LiveHint`]) after commits that change what the user downloads,
/// with comments between to keep it alive. The server ends it after a while; the device
/// opens it again.
pub const LIVE: Route = Route { method: Method::Get, pattern: "/v1/live" };
/// `PUT`: one file content, streamed, under its SHA-256.
pub const FILE_PUT: Route = Route { method: Method::Put, pattern: "/v1/files/{hash}" };
/// `GET`: the content of a file object, streamed; the query names the hash expected.
pub const FILE_GET: Route = Route { method: Method::Get, pattern: "/v1/files/{entity}/{id}" };
/// `GET`: rejected changes (administrators).
pub const FAILURES: Route = Route { method: Method::Get, pattern: "/v1/failures" };
/// `GET`: one rejected change.
pub const FAILURE: Route = Route { method: Method::Get, pattern: "/v1/failures/{id}" };
/// `POST`: apply a rejected change again.
pub const FAILURE_REPLAY: Route =
    Route { method: Method::Post, pattern: "/v1/failures/{id}/replay" };
/// `GET`: the file content a rejected change named.
pub const FAILURE_FILE: Route = Route { method: Method::Get, pattern: "/v1/failures/{id}/file" };
/// `GET`: the synchronization history.
pub const HISTORY: Route = Route { method: Method::Get, pattern: "/v1/history" };
/// `GET`: the users.
pub const USERS: Route = Route { method: Method::Get, pattern: "/v1/users" };
/// `POST`: a new user.
pub const USER_ADD: Route = Route { method: Method::Post, pattern: "/v1/users" };
/// `PUT`: a user's roles.
pub const USER_ROLES: Route = Route { method: Method::Put, pattern: "/v1/users/{name}/roles" };
/// `PUT`: disable or enable a user ([`crate::UserDisabled`]).
pub const USER_DISABLED: Route =
    Route { method: Method::Put, pattern: "/v1/users/{name}/disabled" };
/// `PUT`: a user's new password ([`crate::PasswordChange`]).
pub const USER_PASSWORD: Route =
    Route { method: Method::Put, pattern: "/v1/users/{name}/password" };
/// `GET`: devices seen.
pub const DEVICES: Route = Route { method: Method::Get, pattern: "/v1/devices" };
/// `GET`: the operator's overview ([`crate::Overview`]).
pub const OVERVIEW: Route = Route { method: Method::Get, pattern: "/v1/overview" };

/// A path segment: unreserved characters as they are, every other byte %-encoded.
pub fn percent_encoded(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_fill_the_segments_of_their_pattern_encoded() {
        assert_eq!(Download::ROUTE.path(&["Field.WorkOrder"]), "/v1/download/Field.WorkOrder");
        assert_eq!(Action::ROUTE.path(&["a b/c"]), "/v1/actions/a%20b%2Fc");
        assert_eq!(FILE_GET.path(&["Field.Photo", "01"]), "/v1/files/Field.Photo/01");
        assert_eq!(Model::ROUTE.path(&[]), "/v1/model");
    }
}
