//! A job from its start to its end, and the exchanges with the server every module uses.

use std::sync::Arc;

use ferry_model::{Model, ObjectId, Timestamp};
use ferry_protocol::endpoint::{self, Endpoint};
use ferry_protocol::{RefreshRequest, SignInRequest, SignInResponse, UploadRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::answer::{check_protocol, decode};
use crate::error::Error;
use crate::event::{Action, Answer, Body, Event, Outgoing, Start, Store};
use crate::io::Io;
use crate::report::SyncReport;
use crate::retry::{BUSY_STATUS, Retry};
use crate::{Done, Job, Mode, Outcome, download, upload};

/// What every step of a job works with.
pub(crate) struct Cx {
    pub(crate) io: Arc<Io>,
    retry: Retry,
    /// The device's model, followed to the server's.
    pub(crate) model: Arc<Model>,
    /// The session's refresh token, spent once the server refuses the access token.
    refresh_token: Option<String>,
    /// The server's epoch as the device last saw it.
    pub(crate) server_epoch: String,
}

/// Runs a job (DESIGN.md §4): the upload is planned and stored before anything is sent, the
/// server's model is followed, the upload is sent and its answer applied, then the download of
/// the mode, and the sync's record for the server's history.
pub(crate) async fn run(io: Arc<Io>, start: Start) -> Outcome {
    let Start {
        job,
        model,
        device,
        upload_id,
        seed,
        started,
        user,
        refresh_token,
        pending,
        dirty,
        server_epoch,
    } = start;
    let mut cx = Cx { io, retry: Retry::new(seed), model, refresh_token, server_epoch };
    let mode = match job {
        Job::FollowModel => return follow_model(&mut cx).await.map(|_| Done::ModelFollowed),
        Job::SignIn { user: name, password } => {
            let changes = dirty.len();
            return sign_in(
                &mut cx,
                SignInRequest { user: name, password },
                user,
                changes,
                pending.is_some(),
            )
            .await
            .map(Done::SignedIn);
        }
        Job::CallAction { name, parameters } => {
            return crate::action::call(&mut cx, name, parameters).await.map(Done::Acted);
        }
        Job::Sync(mode) => mode,
    };
    cx.io.check_cancel()?;
    let mut report = SyncReport::default();
    let planned = Planned { pending, dirty, device: device.clone(), upload_id };
    let upload_id = upload_phase(&mut cx, &mode, planned, &mut report).await?;
    cx.io.check_cancel()?;
    match &mode {
        Mode::All => {
            download::all(&mut cx, &mut report).await?;
            cx.io.emit(Action::Store(Store::FullSyncDone));
        }
        Mode::Unsynchronized if !report.rejected.is_empty() => {
            let rejected = report.rejected_objects();
            download::refresh(&mut cx, &rejected, &mut report).await?;
        }
        Mode::Unsynchronized => {}
        Mode::Selected(objects) => download::refresh(&mut cx, objects, &mut report).await?,
    }
    let now = cx.clock().await?;
    let duration_ms = (now.unix_micros() - started.unix_micros()) / 1000;
    cx.io.emit(Action::Store(Store::LastSync { at: now, mode: mode.name().to_owned() }));
    // The record is the operator's view of a sync that is complete: a record the network
    // loses does not fail it.
    let record = report.record(device, mode.name(), upload_id, duration_ms);
    let path = endpoint::SyncReport::ROUTE.path(&[]);
    let _ = cx.json::<endpoint::SyncReport>(path, Some(&record)).await;
    Ok(Done::Synced(report))
}

/// What the upload of a sync starts from.
struct Planned {
    pending: Option<UploadRequest>,
    dirty: Vec<ferry_protocol::ObjectChange>,
    device: String,
    upload_id: String,
}

/// The upload is planned and stored before anything is sent, the server's model and epoch are
/// followed, and the upload is sent; then the changes a restore of the server's data lost, if
/// it lost some. Gives the id of the last upload sent.
async fn upload_phase(
    cx: &mut Cx,
    mode: &Mode,
    planned: Planned,
    report: &mut SyncReport,
) -> Result<Option<String>, Error> {
    let Planned { pending, dirty, device, upload_id } = planned;
    let request = match pending {
        Some(request) => Some(request),
        None => upload::plan(cx, mode, dirty, device.clone(), upload_id.clone()).await?,
    };
    let sent = request.as_ref().map(|request| request.upload_id.clone());
    let restored = follow_model(cx).await?;
    if let Some(request) = request {
        upload::send(cx, request, report).await?;
    }
    if !restored {
        return Ok(sent);
    }
    let again = upload_again(cx, mode, device, format!("{upload_id}.restored"), report).await?;
    Ok(again.or(sent))
}

/// Uploads the changes a restore of the server's data lost, dirty again now, in an upload of
/// their own before the download; gives its id when there was one.
async fn upload_again(
    cx: &mut Cx,
    mode: &Mode,
    device: String,
    upload_id: String,
    report: &mut SyncReport,
) -> Result<Option<String>, Error> {
    let dirty = match cx.io.ask(Action::ReadDirty).await {
        Event::Dirty(dirty) => dirty,
        other => return Err(unexpected(&other)),
    };
    let Some(request) = upload::plan(cx, mode, dirty, device, upload_id).await? else {
        return Ok(None);
    };
    let id = request.upload_id.clone();
    upload::send(cx, request, report).await?;
    Ok(Some(id))
}

/// Signs in; the token and the user are kept, and another user's data leaves the device, which
/// is refused while any of their changes are not uploaded.
async fn sign_in(
    cx: &mut Cx,
    request: SignInRequest,
    previous: Option<ObjectId>,
    changes: usize,
    upload_stored: bool,
) -> Result<ObjectId, Error> {
    let body = Body::Json(serde_json::to_vec(&request).expect("requests serialise"));
    let route = endpoint::SignIn::ROUTE;
    let outgoing = Outgoing { anonymous: true, route, path: route.path(&[]), body };
    let answer = cx.send(outgoing).await?;
    let (response, _): (SignInResponse, _) = decode(&answer)?;
    let user = ObjectId::parse(&response.user_id).ok_or_else(|| {
        Error::bad_response(200, format!("`{}` is not a user id", response.user_id))
    })?;
    let forget_previous = crate::user::switching(previous, user, changes, upload_stored)?;
    let (token, refresh_token, roles) = (response.token, response.refresh_token, response.roles);
    let signed_in = Store::SignedIn { token, refresh_token, user, roles, forget_previous };
    cx.io.emit(Action::Store(signed_in));
    Ok(user)
}

/// Moves the device to the server's model when its version differs (the shell migrates the
/// schema and keeps unsynchronised changes); a changed model makes a full sync due. Then
/// follows the server's epoch ([`crate::restore`]); gives true when changes a restore of the
/// server's data lost were made dirty again.
async fn follow_model(cx: &mut Cx) -> Result<bool, Error> {
    let (server, _) = cx.json::<endpoint::Model>(endpoint::Model::ROUTE.path(&[]), None).await?;
    check_protocol(&server)?;
    if server.version != cx.model.version().to_string() {
        match cx.io.ask(Action::UpgradeModel { text: server.text }).await {
            Event::ModelUpgraded { model: Some(model) } => {
                cx.model = model;
                cx.io.emit(Action::Store(Store::FullSyncDue));
            }
            Event::ModelUpgraded { model: None } => {}
            other => return Err(unexpected(&other)),
        }
    }
    crate::restore::follow(cx, &server.epoch, &server.restored).await
}

impl Cx {
    /// Sends a request until it is answered, retrying after network failures per [`Retry`].
    /// When the server refuses the access token (401) and the session has a refresh token, the
    /// refresh token is spent once for a new access token and the request sent again; a refused
    /// refresh is the answer (the session is over: sign in again).
    pub(crate) async fn send(&mut self, outgoing: Outgoing) -> Result<Answer, Error> {
        let answer = self.deliver(outgoing.clone()).await?;
        if answer.status != 401 || outgoing.anonymous {
            return Ok(answer);
        }
        let Some(refresh_token) = self.refresh_token.take() else {
            return Ok(answer);
        };
        let request = RefreshRequest { refresh_token };
        let body = Body::Json(serde_json::to_vec(&request).expect("requests serialise"));
        let route = endpoint::Refresh::ROUTE;
        let refresh = Outgoing { anonymous: true, route, path: route.path(&[]), body };
        let refreshed = self.deliver(refresh).await?;
        if refreshed.status != 200 {
            // Kept for a later job when the server could not answer; spent or refused, not.
            if refreshed.status >= 500 {
                self.refresh_token = Some(request.refresh_token);
            }
            return Ok(refreshed);
        }
        let (response, _): (SignInResponse, _) = decode(&refreshed)?;
        self.refresh_token = response.refresh_token.clone();
        let (token, refresh_token, roles) =
            (response.token, response.refresh_token, response.roles);
        self.io.emit(Action::Store(Store::Refreshed { token, refresh_token, roles }));
        self.deliver(outgoing).await
    }

    /// Sends a request until it is answered, retrying per [`Retry`] after network failures and
    /// after answers of a server too busy to take the request ([`BUSY_STATUS`]); when no attempt
    /// is left, the last busy answer is the answer.
    async fn deliver(&mut self, outgoing: Outgoing) -> Result<Answer, Error> {
        let mut failed = 0;
        loop {
            match self.io.ask(Action::Send(outgoing.clone())).await {
                Event::Answer(answer) if answer.status == BUSY_STATUS => {
                    failed += 1;
                    let Some(ms) = self.retry.delay_ms(failed) else {
                        return Ok(answer);
                    };
                    self.wait(ms).await?;
                }
                Event::Answer(answer) => return Ok(answer),
                Event::Unreachable { reason } => {
                    failed += 1;
                    let Some(ms) = self.retry.delay_ms(failed) else {
                        return Err(Error::Unreachable { reason });
                    };
                    self.wait(ms).await?;
                }
                other => return Err(unexpected(&other)),
            }
        }
    }

    /// Waits `ms` milliseconds before an attempt again.
    async fn wait(&mut self, ms: u64) -> Result<(), Error> {
        match self.io.ask(Action::Wait { ms }).await {
            Event::Timer => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// One JSON exchange with an endpoint: its typed answer and the answer's size in bytes.
    pub(crate) async fn json<E: Endpoint>(
        &mut self,
        path: String,
        request: Option<&E::Request>,
    ) -> Result<(E::Answer, usize), Error>
    where
        E::Request: Serialize,
        E::Answer: DeserializeOwned,
    {
        let body = match request {
            Some(request) => Body::Json(serde_json::to_vec(request).expect("requests serialise")),
            None => Body::Empty,
        };
        let answer = self.send(Outgoing { anonymous: false, route: E::ROUTE, path, body }).await?;
        decode(&answer)
    }

    async fn clock(&mut self) -> Result<Timestamp, Error> {
        match self.io.ask(Action::ReadClock).await {
            Event::Clock(now) => Ok(now),
            other => Err(unexpected(&other)),
        }
    }
}

/// The error for an event the machine was not waiting for.
pub(crate) fn unexpected(event: &Event) -> Error {
    Error::Unexpected { event: event.name().to_owned() }
}
