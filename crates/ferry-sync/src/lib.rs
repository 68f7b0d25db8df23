//! The device's sync core: every decision of a sync (DESIGN.md §3–4), with no IO inside.
//!
//! A [`SyncMachine`] takes [`Event`]s (the start of a sync with what the local store holds, an
//! answer from the server, a network failure, a read of the local store, a timer, a
//! cancellation) and gives [`Action`]s (send this request, wait, read this, write that, report
//! progress, finish). The shell of each platform (the Rust SDK in `ferry-client`, a browser's
//! in TypeScript) performs the actions with its own network, database and clock, and feeds the
//! results back. The core has no sockets, no database, no clock and no randomness of its own,
//! so it builds for `wasm32-unknown-unknown` and a run is a function of its events: the golden
//! transcripts in `transcripts/` are its specification, checked by `tests/it`.
//!
//! The machine's logic is written as straight-line async code over a channel to the shell
//! ([`io`]): each `await` on the shell is a point where the machine stops and hands over its
//! actions. It is polled by hand, never by an executor.
//!
//! Modules: [`upload`] plans the upload (selection, integrity check) and applies its answer;
//! [`download`] runs the page loop per entity with checkpoints, full and incremental pages,
//! index reconciliation and the fresh state of rejected or selected objects; [`files`] decides
//! the contents to send and to fetch; [`restore`] finds the uploads a restore of the server's
//! data lost; [`retry`] the retry policy with jitter; [`progress`] and [`report`] what the app
//! is told; [`error`] why a sync did not complete.

pub mod action;
mod answer;
pub mod download;
pub mod error;
pub mod event;
pub mod files;
mod io;
pub mod progress;
pub mod report;
pub mod restore;
pub mod retry;
mod run;
pub mod transcript;
pub mod upload;
pub mod user;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

pub use answer::{check_protocol, decode, refusal};
pub use error::Error;
pub use event::{Action, Answer, Body, Event, Outgoing, Start, Step, Store, TargetFacts};
pub use progress::{Phase, Progress};
pub use report::SyncReport;
pub use retry::{BUSY_STATUS, RETRY_DELAY_MS, Retry, SEND_ATTEMPTS_MAX};
pub use upload::check_outcomes;
pub use user::{FullSyncDue, full_sync_due, switching};

use io::Io;

/// What a sync uploads and downloads (DESIGN.md §4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every committed change up; every entity down per its download behaviour.
    All,
    /// Every committed change up; the fresh server state of the rejected objects down.
    Unsynchronized,
    /// The committed changes of these objects up (deletions cannot be selected); their fresh
    /// server state down.
    Selected(Vec<(String, ferry_model::ObjectId)>),
}

impl Mode {
    /// The mode's name in the synchronization history.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::All => "all",
            Mode::Unsynchronized => "unsynchronized",
            Mode::Selected(_) => "selected",
        }
    }
}

/// What the machine is started for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Job {
    /// One sync in this mode.
    Sync(Mode),
    /// Only follow the server's model (the check an app makes on start: is a full sync due?).
    FollowModel,
    /// Sign in with a user name and password (DESIGN.md §4: the previous user's data leaves
    /// the device only once their changes are uploaded).
    SignIn {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// Call a server action with plain parameters and apply what it synchronises.
    CallAction {
        /// The action's name.
        name: String,
        /// Its parameters.
        parameters: serde_json::Map<String, serde_json::Value>,
    },
}

/// What a job did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Done {
    /// A sync, and its report.
    Synced(SyncReport),
    /// The device follows the server's model.
    ModelFollowed,
    /// This user signed in.
    SignedIn(ferry_model::ObjectId),
    /// An action ran, and what it synchronised is on the device.
    Acted(action::Acted),
}

/// How a job ended.
pub type Outcome = Result<Done, Error>;

/// One sync, from its start to its report. Feed it events with [`SyncMachine::handle`] and
/// perform the actions it returns, in order.
///
/// Every batch of actions ends with at most one that the shell answers with an event: a
/// [`Action::Send`] (answered by [`Event::Answer`] or [`Event::Unreachable`]), a
/// [`Action::Wait`] ([`Event::Timer`]), a read of the local store, a
/// [`Action::CommitDownload`] ([`Event::Committed`]), or [`Action::ReadClock`]
/// ([`Event::Clock`]); or with [`Action::Finish`]. A cancellation may be fed at any time
/// ([`Event::Cancel`]); the machine acts on it at its next step where stopping is safe.
pub struct SyncMachine {
    io: Arc<Io>,
    running: Option<Pin<Box<dyn Future<Output = Outcome> + Send>>>,
    finished: bool,
}

impl Default for SyncMachine {
    fn default() -> SyncMachine {
        SyncMachine::new()
    }
}

impl SyncMachine {
    /// A machine waiting for [`Event::Start`].
    pub fn new() -> SyncMachine {
        SyncMachine { io: Arc::new(Io::default()), running: None, finished: false }
    }

    /// True once the machine gave [`Action::Finish`].
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Takes one event; gives the actions to perform next, in order.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        if self.finished {
            return Vec::new();
        }
        match event {
            Event::Cancel => {
                self.io.cancel();
                return Vec::new();
            }
            Event::Start(start) if self.running.is_none() => {
                let io = Arc::clone(&self.io);
                self.running = Some(Box::pin(run::run(io, *start)));
            }
            Event::Start(_) => {
                return self.finish(Err(Error::Unexpected { event: "start".to_owned() }));
            }
            _ if self.running.is_none() => {
                return self.finish(Err(Error::Unexpected { event: event.name().to_owned() }));
            }
            other => self.io.answer(other),
        }
        let future = self.running.as_mut().expect("started above");
        match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(outcome) => self.finish(outcome),
            Poll::Pending => {
                let actions = self.io.take_actions();
                if let Some(event) = self.io.unanswered() {
                    // The machine waits for one thing; the shell answered with another.
                    return self.finish(Err(Error::Unexpected { event }));
                }
                actions
            }
        }
    }

    fn finish(&mut self, outcome: Outcome) -> Vec<Action> {
        self.finished = true;
        self.running = None;
        let mut actions = self.io.take_actions();
        actions.push(Action::Finish(outcome));
        actions
    }
}
