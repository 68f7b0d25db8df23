//! Live devices: each online device holds one stream of Server-Sent Events (`GET /v1/live`)
//! and is told, right after a commit, which entities it downloads changed. The hint carries no
//! data: the device runs an incremental sync, the only source of truth, so a hint lost or
//! given twice loses and duplicates nothing. A stream that fell behind is told that every
//! entity it downloads may have changed.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use ferry_protocol::LiveHint;
use futures_util::Stream;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::State;
use crate::auth::User;
use crate::store::Hint;

/// Seconds between the comments that keep an idle stream open through proxies and the
/// device's own idle timeout.
pub const LIVE_KEEPALIVE_SECONDS: u64 = 10;
/// How long one stream lasts, in seconds: then the device opens a new one, signing in again
/// (so a disabled user's stream ends within this time).
pub const LIVE_STREAM_SECONDS_MAX: u64 = 300;

/// One device's stream.
struct Listener {
    hints: broadcast::Receiver<Hint>,
    /// The entities the user's devices download: the only ones hinted.
    readable: Arc<BTreeSet<String>>,
    ready: bool,
    until: tokio::time::Instant,
    /// True once the server stops serving.
    closing: tokio::sync::watch::Receiver<bool>,
}

/// The entities a user's devices download: those their roles may read, unless the entity is
/// never downloaded.
fn readable(state: &State, user: &User) -> BTreeSet<String> {
    use ferry_model::DownloadBehaviour::{NothingClear, NothingPreserve};
    state
        .model
        .entities()
        .filter(|entity| !matches!(entity.download, NothingClear | NothingPreserve))
        .filter(|entity| {
            entity.access.iter().any(|rule| user.roles.iter().any(|r| r == rule.role.as_str()))
        })
        .map(|entity| entity.name.to_string())
        .collect()
}

/// The stream of a signed-in user's device.
pub(crate) fn stream(
    state: &Arc<State>,
    user: &User,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
    let listener = Listener {
        hints: state.store.hints().subscribe(),
        readable: Arc::new(readable(state, user)),
        ready: false,
        until: tokio::time::Instant::now() + Duration::from_secs(LIVE_STREAM_SECONDS_MAX),
        closing: state.closing.subscribe(),
    };
    let events = futures_util::stream::unfold(listener, |mut listener| async move {
        if !listener.ready {
            listener.ready = true;
            return Some((Ok(Event::default().event("ready").data("{}")), listener));
        }
        let entities = next_hint(&mut listener).await?;
        let data = serde_json::to_string(&LiveHint { entities }).expect("hints serialise");
        Some((Ok(Event::default().event("changed").data(data)), listener))
    });
    let keep_alive = KeepAlive::new().interval(Duration::from_secs(LIVE_KEEPALIVE_SECONDS));
    Sse::new(events).keep_alive(keep_alive)
}

/// The readable entities of the next hint that names any; `None` when the stream is over
/// (its time is up, or the server stops serving).
async fn next_hint(listener: &mut Listener) -> Option<Vec<String>> {
    loop {
        let hint = tokio::time::timeout_at(listener.until, listener.hints.recv());
        let received = tokio::select! {
            received = hint => received,
            _ = listener.closing.wait_for(|closing| *closing) => return None,
        };
        let hint = match received {
            Err(_) | Ok(Err(RecvError::Closed)) => return None,
            Ok(Err(RecvError::Lagged(_))) => Hint::Everything,
            Ok(Ok(hint)) => hint,
        };
        let entities: Vec<String> = match &hint {
            Hint::Everything => listener.readable.iter().cloned().collect(),
            Hint::Entities(changed) => listener.readable.intersection(changed).cloned().collect(),
        };
        if !entities.is_empty() {
            return Some(entities);
        }
    }
}
