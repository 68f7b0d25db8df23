//! The channel between the machine's logic and its shell. The logic emits actions and, where
//! it needs an answer, awaits the next event; [`crate::SyncMachine::handle`] puts each event
//! here and polls the logic until it waits again.

use std::future::poll_fn;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use crate::error::Error;
use crate::event::{Action, Event};

#[derive(Default)]
pub(crate) struct Io {
    actions: Mutex<Vec<Action>>,
    event: Mutex<Option<Event>>,
    cancelled: AtomicBool,
}

impl Io {
    /// An action that needs no answer.
    pub(crate) fn emit(&self, action: Action) {
        self.actions.lock().expect("never poisoned").push(action);
    }

    /// An action the shell answers with one event, and that event.
    pub(crate) async fn ask(&self, action: Action) -> Event {
        self.emit(action);
        poll_fn(|_| match self.event.lock().expect("never poisoned").take() {
            Some(event) => Poll::Ready(event),
            None => Poll::Pending,
        })
        .await
    }

    /// Stops the job when a cancellation came: at the steps where stopping leaves the device
    /// as a whole phase would (nothing of an unfinished download is kept).
    pub(crate) fn check_cancel(&self) -> Result<(), Error> {
        match self.cancelled.load(Ordering::Acquire) {
            true => Err(Error::Cancelled),
            false => Ok(()),
        }
    }

    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    pub(crate) fn answer(&self, event: Event) {
        *self.event.lock().expect("never poisoned") = Some(event);
    }

    /// The name of an event the logic did not take (it was not waiting for one).
    pub(crate) fn unanswered(&self) -> Option<String> {
        self.event.lock().expect("never poisoned").take().map(|e| e.name().to_owned())
    }

    pub(crate) fn take_actions(&self) -> Vec<Action> {
        std::mem::take(&mut *self.actions.lock().expect("never poisoned"))
    }
}
