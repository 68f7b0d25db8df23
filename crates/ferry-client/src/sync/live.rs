//! Live mode: the engine keeps the server's live stream open and syncs when the server says
//! that something the user downloads changed, and shortly after each local commit. The hints
//! carry no data; every change still comes by an incremental sync, so a hint lost, late or
//! given twice changes nothing of what the device ends with. Offline it waits and connects
//! again with a jittered, growing delay; the app's own syncs go on as before (one at a time:
//! a sync asked while live mode's runs gets [`SyncError::AlreadyRunning`]).

use std::sync::Arc;
use std::time::Duration;

use ferry_protocol::endpoint;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use super::{CancelToken, Payload, Request, SyncEngine, SyncError, SyncMode, SyncOptions};
use crate::ClientError;

/// How long live mode waits after a local commit for the ones that follow it before it
/// syncs, in milliseconds.
pub const LIVE_DEBOUNCE_MS: u64 = 20;
/// The first wait before connecting again after the stream was lost, in milliseconds; it
/// doubles with each failure, jittered, up to [`LIVE_RETRY_MS_MAX`].
pub const LIVE_RETRY_MS_MIN: u64 = 500;
/// The longest wait before connecting again, in milliseconds.
pub const LIVE_RETRY_MS_MAX: u64 = 30_000;
/// The longest event the live stream may send, in bytes.
pub const LIVE_EVENT_BYTES_MAX: usize = 64 * 1024;
/// How long live mode waits before it tries again when the app's own sync is running, in ms.
const BUSY_RETRY_MS: u64 = 100;

/// What live mode tells the app.
#[derive(Debug)]
pub enum LiveEvent {
    /// The stream is open: the server will say when something changes.
    Connected,
    /// The stream was lost (the network, the server); live mode connects again after `retry_in`.
    Disconnected {
        /// What happened.
        reason: String,
        /// How long until the next attempt.
        retry_in: Duration,
    },
    /// A sync of live mode completed.
    Synced(super::SyncReport),
    /// A sync of live mode failed; live mode tries again after a jittered, growing wait
    /// (as when connecting again), or at the next hint or local commit.
    SyncFailed(SyncError),
}

/// Called with each [`LiveEvent`], on the live task: keep it short.
pub type LiveCallback = Arc<dyn Fn(&LiveEvent) + Send + Sync>;

/// How live mode runs: where its events go, the token that stops it, and the options of its
/// syncs (their progress reports).
#[derive(Clone, Default)]
pub struct LiveOptions {
    /// Told of each connection, disconnection and sync.
    pub events: Option<LiveCallback>,
    /// Live mode returns once this is cancelled.
    pub stop: CancelToken,
    /// The options of each sync (a cancel token there cancels only that sync).
    pub sync: SyncOptions,
}

impl LiveOptions {
    fn tell(&self, event: LiveEvent) {
        if let Some(events) = &self.events {
            events(&event);
        }
    }
}

/// What the stream said.
enum Wake {
    Ready,
    Changed,
}

/// How one stream ended.
enum Ended {
    /// Live mode was stopped.
    Stopped,
    /// The server closed it (its streams last a while): connect again at once.
    Closed,
    /// The server refused the access token: a sync renews it, then connect again.
    Refused,
    /// The stream failed; connect again after a wait.
    Failed(String),
}

impl SyncEngine {
    /// Runs live mode until `options.stop` is cancelled: keeps the server's live stream open,
    /// syncs ([`SyncMode::All`]) when it opens, when the server says that entities the user
    /// downloads changed, and [`LIVE_DEBOUNCE_MS`] after local commits; reconnects after
    /// network failures. Returns an error only when going on cannot help: the session ended
    /// ([`SyncError::NotSignedIn`]), the server's certificate does not verify, or it speaks
    /// another protocol.
    ///
    /// ```no_run
    /// # async fn run(engine: ferry_client::SyncEngine) -> Result<(), ferry_client::SyncError> {
    /// use std::sync::Arc;
    /// use ferry_client::{LiveEvent, LiveOptions};
    /// let options = LiveOptions {
    ///     events: Some(Arc::new(|event: &LiveEvent| println!("{event:?}"))),
    ///     ..LiveOptions::default()
    /// };
    /// let stop = options.stop.clone(); // stop.cancel() ends it, from anywhere
    /// engine.run_live(&options).await?;
    /// # let _ = stop; Ok(()) }
    /// ```
    pub async fn run_live(&self, options: &LiveOptions) -> Result<(), SyncError> {
        let mut failures = 0u32;
        loop {
            match self.live_stream(options, &mut failures).await? {
                Ended::Stopped => return Ok(()),
                Ended::Closed => {}
                Ended::Refused => {
                    // The sync's first request renews the session (or ends live mode).
                    self.live_sync(options).await?;
                }
                Ended::Failed(reason) => {
                    failures += 1;
                    let retry_in = retry_delay(failures, self.random_seed());
                    options.tell(LiveEvent::Disconnected { reason, retry_in });
                    tokio::select! {
                        biased;
                        () = options.stop.cancelled() => return Ok(()),
                        () = tokio::time::sleep(retry_in) => {}
                    }
                }
            }
        }
    }

    /// Opens the stream once and serves it until it ends.
    async fn live_stream(
        &self,
        options: &LiveOptions,
        failures: &mut u32,
    ) -> Result<Ended, SyncError> {
        let token = self.token()?;
        let (wakes, mut woken) = tokio::sync::mpsc::unbounded_channel();
        let mut sink = events_sink(wakes);
        let path = endpoint::LIVE.path(&[]);
        let request = Request {
            route: Some(endpoint::LIVE),
            method: endpoint::LIVE.method.as_str(),
            path: &path,
            token: Some(&token),
            payload: Payload::Bytes(&[]),
        };
        let mut stream = self.transport.exchange(request, Some(&mut sink));
        let mut local = self.database.subscribe();
        let (mut due, mut local_due): (bool, Option<Instant>) = (false, None);
        let mut sync_failures = 0u32;
        loop {
            if due {
                due = false;
                if let Some(wait) = self.live_sync_again(options, &mut sync_failures).await? {
                    local_due = Some(Instant::now() + wait);
                }
            }
            let debounce = async {
                match local_due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            // Biased: the branches are tried in this order, so a run's course does not hang on
            // the runtime's randomness.
            tokio::select! {
                biased;
                () = options.stop.cancelled() => return Ok(Ended::Stopped),
                ended = &mut stream => return Ok(match ended {
                    Ok(answer) if answer.status == 200 => Ended::Closed,
                    Ok(answer) if answer.status == 401 => Ended::Refused,
                    Ok(answer) => Ended::Failed(format!("the server answered {}", answer.status)),
                    Err(error @ (SyncError::Certificate { .. } | SyncError::NotSignedIn { .. })) => {
                        return Err(error);
                    }
                    Err(error) => Ended::Failed(error.to_string()),
                }),
                Some(wake) = woken.recv() => {
                    if let Wake::Ready = wake {
                        *failures = 0;
                        options.tell(LiveEvent::Connected);
                    }
                    due = true;
                }
                change = local.recv() => match change {
                    Ok(change) if !change.local => {}
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        local_due = Some(Instant::now() + Duration::from_millis(LIVE_DEBOUNCE_MS));
                    }
                    Err(RecvError::Closed) => {}
                },
                () = debounce => {
                    local_due = None;
                    due = true;
                }
            }
        }
    }

    /// One sync of live mode; when it must be tried again, how long to wait first.
    async fn live_sync_again(
        &self,
        options: &LiveOptions,
        sync_failures: &mut u32,
    ) -> Result<Option<Duration>, SyncError> {
        Ok(match self.live_sync(options).await? {
            Synced::Done => {
                *sync_failures = 0;
                None
            }
            Synced::Busy => Some(Duration::from_millis(BUSY_RETRY_MS)),
            Synced::Failed => {
                *sync_failures += 1;
                Some(retry_delay(*sync_failures, self.random_seed()))
            }
        })
    }

    /// One sync of live mode. A failure that going on cannot mend ends live mode.
    async fn live_sync(&self, options: &LiveOptions) -> Result<Synced, SyncError> {
        match self.sync_with(SyncMode::All, &options.sync).await {
            Ok(report) => options.tell(LiveEvent::Synced(report)),
            Err(SyncError::AlreadyRunning) => return Ok(Synced::Busy),
            Err(
                error @ (SyncError::NotSignedIn { .. }
                | SyncError::Certificate { .. }
                | SyncError::Protocol { .. }),
            ) => return Err(error),
            Err(error) => {
                options.tell(LiveEvent::SyncFailed(error));
                return Ok(Synced::Failed);
            }
        }
        Ok(Synced::Done)
    }
}

/// How a sync of live mode went.
enum Synced {
    Done,
    /// The app's own sync is running: try again soon.
    Busy,
    /// It failed (the network, a busy server): try again after a growing wait.
    Failed,
}

/// The wait before the `failures`-th attempt to connect again: doubling from
/// [`LIVE_RETRY_MS_MIN`] up to [`LIVE_RETRY_MS_MAX`], each between half and all of it (where in
/// between, `random` decides).
fn retry_delay(failures: u32, random: u64) -> Duration {
    let full = LIVE_RETRY_MS_MIN.saturating_mul(1 << failures.saturating_sub(1).min(16));
    let full = full.min(LIVE_RETRY_MS_MAX);
    Duration::from_millis(full / 2 + random % (full / 2 + 1))
}

/// A sink for the live stream's bytes: Server-Sent Events, each told as a [`Wake`].
fn events_sink(
    wakes: UnboundedSender<Wake>,
) -> impl FnMut(&[u8]) -> Result<(), ClientError> + Send {
    let mut pending = String::new();
    move |bytes| {
        pending.push_str(&String::from_utf8_lossy(bytes));
        while let Some(end) = pending.find("\n\n") {
            let block: String = pending.drain(..end + 2).collect();
            let event = block.lines().find_map(|line| line.strip_prefix("event:"));
            let wake = match event.map(str::trim) {
                Some("ready") => Wake::Ready,
                Some("changed") => Wake::Changed,
                _ => continue,
            };
            let _ = wakes.send(wake);
        }
        if pending.len() > LIVE_EVENT_BYTES_MAX {
            return Err(ClientError::Corrupt(format!(
                "the live stream sent an event of more than {LIVE_EVENT_BYTES_MAX} bytes"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail on any error")]
    use std::sync::Arc;

    use super::*;
    use crate::{Database, SyncEngine};

    #[test]
    fn a_reconnection_waits_between_half_and_all_of_its_doubling_ceiling() {
        for failures in 1..24u32 {
            let full = LIVE_RETRY_MS_MIN
                .saturating_mul(1 << failures.saturating_sub(1).min(16))
                .min(LIVE_RETRY_MS_MAX);
            for random in [0, 1, 7, u64::MAX / 3, u64::MAX] {
                let wait = retry_delay(failures, random).as_millis() as u64;
                assert!((full / 2..=full).contains(&wait), "{failures} failures: {wait} ms");
            }
        }
        assert_eq!(retry_delay(1, 0), Duration::from_millis(LIVE_RETRY_MS_MIN / 2));
    }

    #[test]
    fn engines_seeded_alike_draw_the_same_jitter() {
        let dir = std::env::temp_dir().join(format!("ferry-live-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let engine = |name: &str, seed: u64| {
            let db = Database::open(dir.join(name), ferry_model::samples::FIELD_SERVICE).unwrap();
            SyncEngine::new(Arc::new(db), "http://127.0.0.1:1").unwrap().with_random_seed(seed)
        };
        let (a, b, c) = (engine("a.db", 5), engine("b.db", 5), engine("c.db", 6));
        let draws = |e: &SyncEngine| (0..4).map(|_| e.random_seed()).collect::<Vec<_>>();
        assert_eq!(draws(&a), draws(&b));
        assert_ne!(draws(&a), draws(&c));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
