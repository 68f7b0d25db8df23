//! The shell around the sync core: runs a [`SyncMachine`] by performing its actions with the
//! engine's transport, the local store, the download's writer thread, the clock and the app's
//! progress callback and cancel token, and feeding their results back as events.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferry_sync::{
    Action, Answer, Body, Done, Event, Job, Outcome, Outgoing, Start, Step, Store, SyncMachine,
};
use tokio::sync::mpsc::Sender;

use super::apply::{Applied, DownloadWriter, Feed, PAGES_IN_FLIGHT, apply_download};
use super::store::LocalStore;
use super::{Payload, Request, SyncEngine, SyncError, SyncOptions};
use crate::database::{Database, Meta, meta};
use crate::{ClientError, effects};

/// The download's writer: by default a blocking thread that writes the steps it is handed into
/// one local transaction (so fetching and writing overlap), committed when told, rolled back
/// when the sending side goes away; or, for a simulation, the same writer on the syncing task.
enum Writer {
    Thread {
        steps: Sender<Feed>,
        applier: tokio::task::JoinHandle<Result<Option<Applied>, SyncError>>,
    },
    Inline(Box<DownloadWriter>),
}

impl Writer {
    fn start(database: &Arc<Database>, inline: bool) -> Result<Writer, SyncError> {
        if inline {
            return Ok(Writer::Inline(Box::new(DownloadWriter::begin(database)?)));
        }
        let (steps, received) = tokio::sync::mpsc::channel(PAGES_IN_FLIGHT);
        let database = Arc::clone(database);
        let applier = tokio::task::spawn_blocking(move || apply_download(&database, received));
        Ok(Writer::Thread { steps, applier })
    }

    /// Hands over a step; a thread's writer makes this wait while [`PAGES_IN_FLIGHT`] are
    /// queued. A writer that stopped is waited for, and its own error returned.
    async fn write(self, step: Step) -> Result<Writer, SyncError> {
        match self {
            Writer::Inline(mut writer) => {
                writer.write(step)?;
                Ok(Writer::Inline(writer))
            }
            Writer::Thread { steps, applier } => match steps.send(Feed::Step(step)).await {
                Ok(()) => Ok(Writer::Thread { steps, applier }),
                Err(_) => Err(failure(Writer::Thread { steps, applier }).await),
            },
        }
    }

    /// Commits, and gives what was written.
    async fn commit(self) -> Result<Applied, SyncError> {
        match self {
            Writer::Inline(writer) => writer.commit(),
            Writer::Thread { steps, applier } => {
                if steps.send(Feed::Commit).await.is_err() {
                    return Err(failure(Writer::Thread { steps, applier }).await);
                }
                let committed = Writer::Thread { steps, applier }.finish().await?;
                committed.ok_or(SyncError::Local(ClientError::WriterStopped))
            }
        }
    }

    /// Lets the writer end: it commits when it was told to, and rolls back otherwise.
    async fn finish(self) -> Result<Option<Applied>, SyncError> {
        match self {
            Writer::Inline(writer) => {
                drop(writer);
                Ok(None)
            }
            Writer::Thread { steps, applier } => {
                drop(steps);
                // A writer whose thread ended without an answer (it panicked) stopped: its
                // transaction went with its connection, and the database is as it was.
                applier.await.map_err(|_| SyncError::Local(ClientError::WriterStopped))?
            }
        }
    }
}

/// Why a writer that stopped did.
async fn failure(writer: Writer) -> SyncError {
    writer.finish().await.err().unwrap_or(SyncError::Local(ClientError::WriterStopped))
}

/// One job of the sync core, run to its end. An unfinished download is rolled back before this
/// returns; the writer's own failure comes before what stopped the job (it is why sending
/// stopped).
pub(super) async fn drive(
    engine: &SyncEngine,
    job: Job,
    options: &SyncOptions,
) -> Result<Done, SyncError> {
    // Only a sign-in goes without a token.
    let token = match &job {
        Job::SignIn { .. } => String::new(),
        _ => engine.token()?,
    };
    let store = LocalStore { database: &engine.database, server: engine.transport.server() };
    let start = start(&store, engine, job)?;
    let mut shell =
        Shell { engine, store, token, options, writer: None, renewed: None, server: None };
    let outcome = shell.run(start).await;
    let finished = match shell.writer.take() {
        Some(writer) => writer.finish().await.map(drop),
        None => Ok(()),
    };
    if let Some(renewed) = shell.renewed.take() {
        shell.store.write(renewed)?;
    }
    finished?;
    let server = shell.server.unwrap_or_else(|| engine.transport.server());
    outcome.map_err(|error| error.into_sync_error(server))
}

/// What the store holds when a job starts.
fn start(store: &LocalStore<'_>, engine: &SyncEngine, job: Job) -> Result<Start, SyncError> {
    let (syncing, signing_in) = (matches!(job, Job::Sync(_)), matches!(job, Job::SignIn { .. }));
    let pending = if syncing || signing_in { store.pending_upload()? } else { None };
    // A sign-in counts every change; a sync that resends a stored upload needs none.
    let dirty = match (syncing && pending.is_none()) || signing_in {
        true => store.dirty_changes()?,
        false => Vec::new(),
    };
    let device = if syncing { store.device_name()? } else { String::new() };
    let (user, refresh_token, server_epoch) = {
        let connection = engine.database.lock();
        (
            engine.database.current_user(&connection)?,
            meta(&connection, Meta::RefreshToken)?,
            meta(&connection, Meta::ServerEpoch)?.unwrap_or_default(),
        )
    };
    Ok(Start {
        job,
        model: engine.database.model(),
        device,
        upload_id: effects::random_token(),
        seed: engine.random_seed(),
        started: engine.database.clock.now(),
        user,
        refresh_token,
        pending,
        dirty,
        server_epoch,
    })
}

/// A job's ending as the engine reports it: the core's error in the SDK's terms.
enum Ended {
    Core(ferry_sync::Error),
    Shell(SyncError),
}

impl Ended {
    fn into_sync_error(self, server: String) -> SyncError {
        match self {
            Ended::Shell(error) => error,
            Ended::Core(error) => SyncError::from_core(error, server),
        }
    }
}

struct Shell<'a> {
    engine: &'a SyncEngine,
    store: LocalStore<'a>,
    token: String,
    options: &'a SyncOptions,
    writer: Option<Writer>,
    /// A session renewed while a download's transaction holds the database's one write lock:
    /// kept once the transaction ends, committed or rolled back.
    renewed: Option<Store>,
    /// The server as the transport named it when the network last failed.
    server: Option<String>,
}

impl Shell<'_> {
    async fn run(&mut self, start: Start) -> Result<Done, Ended> {
        let mut machine = SyncMachine::new();
        let mut event = Event::Start(Box::new(start));
        let mut cancel_told = false;
        loop {
            let mut answer = None;
            for action in machine.handle(event) {
                if let Action::Finish(outcome) = action {
                    return finished(outcome);
                }
                answer = self.perform(action).await.map_err(Ended::Shell)?.or(answer);
            }
            if !cancel_told && self.options.cancel.as_ref().is_some_and(|t| t.is_cancelled()) {
                cancel_told = true;
                machine.handle(Event::Cancel);
            }
            event = answer.expect("the core's actions end with one it waits on, or its finish");
        }
    }

    /// Performs one action; gives the event that answers it, when it is one that waits.
    async fn perform(&mut self, action: Action) -> Result<Option<Event>, SyncError> {
        let event = match action {
            Action::Send(outgoing) => self.send(outgoing).await?,
            Action::Wait { ms } => {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                Event::Timer
            }
            Action::LookUp(targets) => Event::LookedUp(self.store.look_up(&targets)?),
            Action::ReadEntity { entity } => {
                let (checkpoint, holds_objects) = self.store.entity_state(&entity)?;
                Event::EntityState { checkpoint, holds_objects }
            }
            Action::ReadRevisions { entity, ids } => {
                Event::Revisions(self.store.revisions(&entity, &ids)?)
            }
            Action::LookUpContents(hashes) => Event::ContentsHeld(self.store.contents_held(hashes)),
            Action::UpgradeModel { text } => {
                let changed = self.engine.database.upgrade_model(&text)?;
                Event::ModelUpgraded { model: changed.then(|| self.engine.database.model()) }
            }
            Action::Store(write) => {
                if let Store::Refreshed { token, .. } = &write {
                    self.token = token.clone();
                    if self.writer.is_some() {
                        self.renewed = Some(write);
                        return Ok(None);
                    }
                }
                self.store.write(write)?;
                return Ok(None);
            }
            Action::BeginDownload => {
                let inline = self.engine.inline_writer;
                self.writer = Some(Writer::start(&self.engine.database, inline)?);
                return Ok(None);
            }
            Action::Download(step) => {
                let writer = self.writer.take().expect("a download's steps follow its begin");
                self.writer = Some(writer.write(step).await?);
                return Ok(None);
            }
            Action::CommitDownload => {
                let writer = self.writer.take().expect("a download's commit follows its begin");
                let applied = writer.commit().await?;
                self.engine.database.tell(applied.touched, false);
                if let Some(renewed) = self.renewed.take() {
                    self.store.write(renewed)?;
                }
                Event::Committed { downloaded: applied.downloaded, removed: applied.removed }
            }
            Action::ApplySynced { synced, removed } => {
                let removed =
                    super::action::apply_synced(&self.engine.database, &synced, &removed)?;
                Event::Committed { downloaded: BTreeMap::new(), removed }
            }
            Action::Progress(progress) => {
                self.options.report(progress);
                return Ok(None);
            }
            Action::ReadClock => Event::Clock(self.engine.database.clock.now()),
            Action::ReadJournal { except_epoch } => {
                Event::Journal(super::journal::read(&self.engine.database, &except_epoch)?)
            }
            Action::ReadDirty => Event::Dirty(self.store.dirty_changes()?),
            Action::Finish(_) => unreachable!("the loop ends at a finish"),
        };
        Ok(Some(event))
    }

    /// Sends a request through the transport: a network failure is an event for the core; a
    /// local one (a content missing from the store, the store failing) ends the job.
    async fn send(&mut self, outgoing: Outgoing) -> Result<Event, SyncError> {
        let Outgoing { anonymous, route, path, body } = outgoing;
        let files = &self.engine.database.files;
        let method = route.method.as_str();
        let token = (!anonymous).then_some(self.token.as_str());
        let route = Some(route);
        let sent = match &body {
            Body::Empty | Body::Json(_) => {
                let bytes = match &body {
                    Body::Json(bytes) => bytes.as_slice(),
                    _ => b"",
                };
                let request =
                    Request { route, method, path: &path, token, payload: Payload::Bytes(bytes) };
                self.engine.transport.exchange(request, None).await
            }
            Body::Content { hash, entity, id } => {
                let file = files.content(hash);
                if !file.exists() {
                    let id = ferry_model::ObjectId::parse(id).ok_or_else(|| {
                        ClientError::Corrupt(format!("the pending upload names `{id}`"))
                    })?;
                    return Err(ClientError::FileMissing { entity: entity.clone(), id }.into());
                }
                let payload = Payload::File(&file);
                let request = Request { route, method, path: &path, token, payload };
                self.engine.transport.exchange(request, None).await
            }
            Body::IntoStore { hash } => {
                let mut incoming = files.incoming().map_err(ClientError::Files)?;
                let mut sink = |bytes: &[u8]| incoming.write(bytes);
                let payload = Payload::Bytes(b"");
                let request = Request { route, method, path: &path, token, payload };
                let sent = self.engine.transport.exchange(request, Some(&mut sink)).await;
                if let Ok(response) = &sent
                    && response.status == 200
                {
                    incoming.finish(files, Some(hash))?;
                }
                sent
            }
        };
        match sent {
            Ok(response) => {
                Ok(Event::Answer(Answer { status: response.status, body: response.body }))
            }
            Err(SyncError::Unreachable { server, reason }) => {
                self.server = Some(server);
                Ok(Event::Unreachable { reason })
            }
            Err(other) => Err(other),
        }
    }
}

fn finished(outcome: Outcome) -> Result<Done, Ended> {
    outcome.map_err(Ended::Core)
}
