//! Hints that entities changed, given after each commit that took positions in the change
//! sequence. A hint carries no data: a device told of one runs an incremental sync, which
//! stays the only source of truth, so a hint lost, late or given twice loses nothing.
//!
//! On SQLite the committing process hints its own listeners. On PostgreSQL the transaction
//! sends `NOTIFY ferry_changes` (delivered at commit, to every server process on the
//! database), and each process's listener connection turns it into a hint; after the listener
//! (re)connects, it hints that everything may have changed, since notifications sent while it
//! was away are lost.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::broadcast;

/// The PostgreSQL channel commits notify.
pub(crate) const HINT_CHANNEL: &str = "ferry_changes";
/// Hints a listener may fall behind by before it is told that everything may have changed.
pub const HINTS_QUEUED_MAX: usize = 256;
/// How long the PostgreSQL listener waits before connecting again, in milliseconds.
pub const HINT_LISTENER_RETRY_MS: u64 = 1_000;

/// What changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Hint {
    /// These entities.
    Entities(Arc<BTreeSet<String>>),
    /// Anything: hints were missed.
    Everything,
}

impl Hint {
    /// The hint a notification's payload (entity names, comma separated) gives.
    pub(crate) fn from_payload(payload: &str) -> Hint {
        let names: BTreeSet<String> =
            payload.split(',').filter(|n| !n.is_empty()).map(str::to_owned).collect();
        if names.is_empty() { Hint::Everything } else { Hint::Entities(Arc::new(names)) }
    }

    /// The payload of a notification for these entities.
    pub(crate) fn payload(entities: &BTreeSet<String>) -> String {
        entities.iter().map(String::as_str).collect::<Vec<_>>().join(",")
    }
}

/// Where hints go: every listener of this server process.
#[derive(Clone)]
pub(crate) struct Hints(broadcast::Sender<Hint>);

impl Hints {
    pub(crate) fn new() -> Hints {
        Hints(broadcast::channel(HINTS_QUEUED_MAX).0)
    }

    /// Tells every listener; nobody listening is fine.
    pub(crate) fn publish(&self, hint: Hint) {
        let _ = self.0.send(hint);
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Hint> {
        self.0.subscribe()
    }

    /// Listeners right now.
    pub(crate) fn listeners(&self) -> usize {
        self.0.receiver_count()
    }
}

/// Keeps a PostgreSQL connection listening on [`HINT_CHANNEL`], connecting again whenever it
/// is lost, until the task is aborted.
pub(crate) async fn listen<T>(config: tokio_postgres::Config, tls: T, hints: Hints)
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket> + Clone + Send + 'static,
    T::Stream: Send,
    T::TlsConnect: Send,
    <T::TlsConnect as tokio_postgres::tls::TlsConnect<tokio_postgres::Socket>>::Future: Send,
{
    let retry = std::time::Duration::from_millis(HINT_LISTENER_RETRY_MS);
    loop {
        if let Ok((client, mut connection)) = config.connect(tls.clone()).await {
            let forwarded = hints.clone();
            let driver = tokio::spawn(async move {
                while let Some(Ok(message)) =
                    std::future::poll_fn(|cx| connection.poll_message(cx)).await
                {
                    if let tokio_postgres::AsyncMessage::Notification(notification) = message {
                        forwarded.publish(Hint::from_payload(notification.payload()));
                    }
                }
            });
            if client.batch_execute(&format!("LISTEN {HINT_CHANNEL}")).await.is_ok() {
                hints.publish(Hint::Everything);
                let _ = driver.await;
            } else {
                driver.abort();
            }
        }
        tokio::time::sleep(retry).await;
    }
}
