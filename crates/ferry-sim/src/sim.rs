//! The deterministic simulation: a run is a function of its seed. A server (SQLite) and devices
//! of two planners and two technicians live in one process; every request goes through a
//! [`SimTransport`] that hands it to the server's router in-process and plays the network's
//! faults. Devices create, change, commit, roll back, delete and sync in every mode; work orders
//! are reassigned, so what a technician may read changes. After each quiet full sync the
//! checkers assert the promises of DESIGN.md §5: queues drain, every device equals a fresh device
//! of its user, no technician holds another's work order, and no committed object is lost (it is
//! on the server, or in `SynchronizationError`). A failure names its replay command.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash as _, Hasher as _};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use ferry_client::{
    Answer, CancelToken, ClearMode, ClientError, Database, IdSource, LiveOptions, Payload, Query,
    Request, Response, Sink, SyncEngine, SyncError, SyncMode, Transport,
};
use ferry_model::arbitrary::SplitMix64 as Rng;
use ferry_model::{ObjectId, Timestamp, Value, samples};
use ferry_protocol::endpoint::{self, Endpoint, Route};
use ferry_server::{Config, Handlers, Limits, Server};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use crate::PASSWORD;

/// Virtual time, shared by the server and the devices; it moves only when the simulation says.
pub struct SimClock(Mutex<Timestamp>);

impl SimClock {
    fn advance(&self, millis: i64) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(later) = Timestamp::from_unix_micros(now.unix_micros() + millis * 1000) {
            *now = later;
        }
    }

    fn read(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ferry_server::Clock for SimClock {
    fn now(&self) -> Timestamp {
        self.read()
    }
}

impl ferry_client::Clock for SimClock {
    fn now(&self) -> Timestamp {
        self.read()
    }
}

/// Ids from the simulation's randomness.
struct SimIds(Mutex<Rng>);

impl IdSource for SimIds {
    fn new_id(&self, now: Timestamp) -> ObjectId {
        let random = self.0.lock().unwrap_or_else(|p| p.into_inner()).next_u64();
        let millis = u64::try_from(now.unix_micros() / 1000).unwrap_or(0);
        ObjectId::from_parts(millis, u128::from(random))
    }
}

/// A fault the network plays on one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// The request never reaches the server.
    FailBeforeSend,
    /// The server handles the request; the answer is lost.
    LoseResponse,
    /// The request reaches the server twice; the device hears the second answer.
    Duplicate,
    /// The answer comes late (virtual time).
    Delay,
    /// The device stops after this request fails, and starts again from its database.
    CrashDevice,
    /// The server stops in the middle of an upload and starts again on its database: before
    /// the upload's transaction commits (nothing of it applied) or after (applied, unanswered).
    RestartServerMidUpload,
}

/// Which faults happen, decided by the simulation's randomness, and how many of each so far.
pub struct FaultPlan {
    rng: Rng,
    /// Faults per 100 requests; 0 when the network is quiet.
    rate: usize,
    pub injected: BTreeMap<Fault, usize>,
    /// Devices that crashed and must start again.
    crashed: BTreeSet<usize>,
    /// Requests for a session's next access token (refresh token spent), faults or not.
    refreshes: usize,
}

impl FaultPlan {
    fn next(&mut self, device: usize, route: Option<Route>) -> Option<Fault> {
        if self.rate == 0 || !self.rng.chance(self.rate, 100) {
            return None;
        }
        let fault = match self.rng.below(6) {
            0 => Fault::FailBeforeSend,
            1 => Fault::LoseResponse,
            2 => Fault::Duplicate,
            3 => Fault::Delay,
            4 | 5 if route == Some(endpoint::Upload::ROUTE) => Fault::RestartServerMidUpload,
            _ => Fault::CrashDevice,
        };
        *self.injected.entry(fault).or_default() += 1;
        if fault == Fault::CrashDevice {
            self.crashed.insert(device);
        }
        Some(fault)
    }
}

/// A device's network: requests go to the server's router in-process, with the plan's faults.
pub struct SimTransport {
    /// The running server; a restart puts a new one there.
    slot: Arc<ServerSlot>,
    plan: Arc<Mutex<FaultPlan>>,
    clock: Arc<SimClock>,
    device: usize,
}

impl SimTransport {
    async fn send(&self, request: Request<'_>) -> Result<(u16, Vec<u8>), SyncError> {
        read_whole(self.answer(request).await?).await
    }

    /// The server's answer to `request`, its body not yet read.
    async fn answer(&self, request: Request<'_>) -> Result<axum::http::Response<Body>, SyncError> {
        let body = match request.payload {
            Payload::Bytes(bytes) => bytes.to_vec(),
            Payload::File(content) => {
                let (_, mut opened) = content.open().map_err(ClientError::Files)?;
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut opened, &mut bytes).map_err(ClientError::Files)?;
                bytes
            }
        };
        let mut http = axum::http::Request::builder()
            .method(request.method)
            .uri(request.path)
            .header("content-type", "application/json");
        if let Some(token) = request.token {
            http = http.header("authorization", format!("Bearer {token}"));
        }
        let http = http.body(Body::from(body)).map_err(|e| unreachable(&e.to_string()))?;
        self.slot.router().oneshot(http).await.map_err(|e| unreachable(&e.to_string()))
    }

    /// A live stream: its events go to `sink` as they come (each twice when `twice`), until the
    /// stream ends, the server restarts, or the network's fault cuts it (after `cut_after`
    /// events, when given).
    async fn stream(
        &self,
        request: Request<'_>,
        sink: &mut Sink<'_>,
        (cut_after, twice): (Option<usize>, bool),
    ) -> Result<Response, SyncError> {
        let mut restarted = self.slot.generation.subscribe();
        let response = self.answer(request).await?;
        let status = response.status().as_u16();
        if status != 200 {
            let (status, body) = read_whole(response).await?;
            return Ok(Response { status, body });
        }
        let mut body = response.into_body();
        let mut events = 0;
        loop {
            if cut_after.is_some_and(|cut| events >= cut) {
                return Err(unreachable("the stream was cut"));
            }
            tokio::select! {
                biased;
                _ = restarted.changed() => return Err(unreachable("the server stopped")),
                frame = body.frame() => match frame {
                    None => return Ok(Response { status, body: Vec::new() }),
                    Some(Err(e)) => return Err(unreachable(&e.to_string())),
                    Some(Ok(frame)) => if let Some(data) = frame.data_ref() {
                        sink(data)?;
                        if twice {
                            sink(data)?;
                        }
                        events += 1;
                    },
                },
            }
        }
    }
}

/// An answer's status and its whole body.
async fn read_whole(response: axum::http::Response<Body>) -> Result<(u16, Vec<u8>), SyncError> {
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .map_err(|e| unreachable(&e.to_string()))?;
    Ok((status, bytes.to_vec()))
}

fn unreachable(reason: &str) -> SyncError {
    SyncError::Unreachable { server: "sim".to_owned(), reason: reason.to_owned() }
}

impl Transport for SimTransport {
    fn exchange<'a>(&'a self, request: Request<'a>, sink: Option<&'a mut Sink<'a>>) -> Answer<'a> {
        Box::pin(async move {
            let (fault, committed) = {
                let mut plan = self.plan.lock().unwrap_or_else(|p| p.into_inner());
                let fault = plan.next(self.device, request.route);
                if request.route == Some(endpoint::Refresh::ROUTE) {
                    plan.refreshes += 1;
                }
                (fault, plan.rng.chance(1, 2))
            };
            if matches!(fault, Some(Fault::FailBeforeSend | Fault::CrashDevice)) {
                return Err(unreachable("the request was lost"));
            }
            if request.route == Some(endpoint::LIVE) {
                let sink = sink.ok_or_else(|| unreachable("a live stream needs a sink"))?;
                // A duplicate tells every event twice; any other fault cuts the stream.
                let twice = fault == Some(Fault::Duplicate);
                let cut_after = fault.filter(|_| !twice).map(|_| 1 + usize::from(committed));
                return self.stream(request, sink, (cut_after, twice)).await;
            }
            if fault == Some(Fault::RestartServerMidUpload) {
                // The upload's transaction either committed before the stop or never will: the
                // server applies an upload whole or not at all (the process-kill tests show it).
                if committed {
                    self.send(request).await?;
                }
                self.slot.restart(None).await.map_err(|e| unreachable(&e))?;
                return Err(unreachable("the server stopped during the upload"));
            }
            let (mut status, mut body) = self.send(request).await?;
            match fault {
                Some(Fault::LoseResponse) => return Err(unreachable("the answer was lost")),
                Some(Fault::Duplicate) => (status, body) = self.send(request).await?,
                Some(Fault::Delay) => self.clock.advance(2_000),
                _ => {}
            }
            match sink {
                Some(sink) if status == 200 => {
                    sink(&body)?;
                    Ok(Response { status, body: Vec::new() })
                }
                _ => Ok(Response { status, body }),
            }
        })
    }

    fn server(&self) -> String {
        "http://sim.invalid:1".to_owned()
    }
}

/// How a run goes.
#[derive(Clone, Copy, Debug)]
pub struct SimOptions {
    pub seed: u64,
    pub steps: usize,
    /// Steps between quiet full syncs and their checks.
    pub check_every: usize,
    /// Devices go live (`SyncEngine::run_live`) and offline again during the run.
    pub live: bool,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct SimReport {
    pub steps: usize,
    pub checks: usize,
    pub syncs: usize,
    pub failed_syncs: usize,
    pub faults: BTreeMap<Fault, usize>,
    pub restarts: usize,
    pub server_restarts: usize,
    pub model_changes: usize,
    pub role_changes: usize,
    /// Refresh tokens spent (a device's access token expired).
    pub refreshes: usize,
    /// Entities cleared on a device (objects that must come back with the next full sync).
    pub clears: usize,
    /// Objects deleted on a device (work orders, and sites whose work orders lose the reference).
    pub deletions: usize,
    /// Times a device went live.
    pub live_starts: usize,
    /// Syncs live mode ran on its own (woken by the stream or by local commits).
    pub live_syncs: usize,
    /// A digest of what the run did and held: the counts above, each device's data at every
    /// check, and the server's failures. Two runs of a seed must give the same.
    pub digest: u64,
}

/// A device of the simulation.
struct SimDevice {
    user: &'static str,
    planner: bool,
    /// A technician made a planner during the run.
    promoted: bool,
    id: ObjectId,
    path: std::path::PathBuf,
    db: Arc<Database>,
    engine: Arc<SyncEngine>,
    /// Live mode, while the device is in it: its stop and its task.
    live: Option<(CancelToken, tokio::task::JoinHandle<Result<(), SyncError>>)>,
}

struct World {
    directory: std::path::PathBuf,
    slot: Arc<ServerSlot>,
    clock: Arc<SimClock>,
    plan: Arc<Mutex<FaultPlan>>,
    ids: Arc<SimIds>,
    devices: Vec<SimDevice>,
    /// Folds in each device's data and the server's failures at every check.
    digest: std::hash::DefaultHasher,
    /// Objects committed by some device and not deleted by the simulation: each must end on the
    /// server or in `SynchronizationError`.
    committed: BTreeSet<(String, ObjectId)>,
    numbers: i64,
    seed: u64,
    live: bool,
    /// Syncs of live mode so far, on every device.
    live_syncs: Arc<std::sync::atomic::AtomicUsize>,
}

/// The replay command of a run.
pub fn replay_line(options: &SimOptions) -> String {
    let live = if options.live { " --live" } else { "" };
    format!("cargo xtask sim --seed {:#x} --steps {}{live}", options.seed, options.steps)
}

/// Runs the simulation; on a broken promise, the reason with its replay command.
pub async fn simulate(options: SimOptions) -> Result<SimReport, String> {
    let failed = |reason: String| format!("{reason}\nreplay: {}", replay_line(&options));
    let mut world = World::start(options.seed, options.live).await.map_err(failed)?;
    let mut rng = Rng::new(options.seed ^ 0x5EED);
    let mut report = SimReport::default();
    for step in 0..options.steps {
        report.steps += 1;
        if step == options.steps / 2 && options.steps >= 20 {
            world
                .restart_server(Some(extended_model()))
                .await
                .map_err(|e| failed(format!("step {step}: {e}")))?;
            report.model_changes += 1;
        } else if rng.below(80) == 0 {
            world.restart_server(None).await.map_err(|e| failed(format!("step {step}: {e}")))?;
            report.server_restarts += 1;
        } else if rng.below(60) == 0 {
            world.change_roles(&mut rng).await.map_err(|e| failed(format!("step {step}: {e}")))?;
            report.role_changes += 1;
        }
        world.step(&mut rng, &mut report).await.map_err(|e| failed(format!("step {step}: {e}")))?;
        if (step + 1) % options.check_every == 0 || step + 1 == options.steps {
            world
                .quiet_and_check()
                .await
                .map_err(|e| failed(format!("check after step {step}: {e}")))?;
            report.checks += 1;
        }
    }
    {
        let plan = world.plan.lock().unwrap_or_else(|p| p.into_inner());
        (report.faults, report.refreshes) = (plan.injected.clone(), plan.refreshes);
        report.live_syncs = world.live_syncs.load(std::sync::atomic::Ordering::Relaxed);
    }
    format!("{report:?}").hash(&mut world.digest);
    report.digest = world.digest.finish();
    let _ = std::fs::remove_dir_all(&world.directory);
    Ok(report)
}

/// The server of a run, which the simulation or a fault restarts on its database.
pub struct ServerSlot {
    directory: std::path::PathBuf,
    clock: Arc<SimClock>,
    model_text: Mutex<String>,
    server: Mutex<Server>,
    router: Mutex<axum::Router>,
    /// Bumped at each restart: the open live streams end, as their connections would.
    generation: tokio::sync::watch::Sender<u64>,
}

impl ServerSlot {
    async fn open(
        directory: &std::path::Path,
        clock: &Arc<SimClock>,
    ) -> Result<ServerSlot, String> {
        let server = open_server(directory, samples::FIELD_SERVICE, clock).await?;
        Ok(ServerSlot {
            directory: directory.to_owned(),
            clock: Arc::clone(clock),
            model_text: Mutex::new(samples::FIELD_SERVICE.to_owned()),
            router: Mutex::new(server.router()),
            server: Mutex::new(server),
            generation: tokio::sync::watch::Sender::new(0),
        })
    }

    fn server(&self) -> Server {
        self.server.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn router(&self) -> axum::Router {
        self.router.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The model the server runs now.
    fn model_text(&self) -> String {
        self.model_text.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The server stops and starts again on the same database (with another model, when
    /// given): what it held in memory is gone; devices reach the new one.
    async fn restart(&self, model_text: Option<String>) -> Result<(), String> {
        if let Some(model_text) = model_text {
            *self.model_text.lock().unwrap_or_else(|p| p.into_inner()) = model_text;
        }
        let server = open_server(&self.directory, &self.model_text(), &self.clock).await?;
        *self.router.lock().unwrap_or_else(|p| p.into_inner()) = server.router();
        *self.server.lock().unwrap_or_else(|p| p.into_inner()) = server;
        self.generation.send_modify(|g| *g += 1);
        Ok(())
    }
}

/// How long an access token lasts on the simulation's server, in seconds of virtual time: a
/// run's steps take minutes, so devices renew their sessions through the network's faults.
const SIM_ACCESS_TOKEN_SECONDS: i64 = 60;

/// A server on the run's database, for `model_text`.
async fn open_server(
    directory: &std::path::Path,
    model_text: &str,
    clock: &Arc<SimClock>,
) -> Result<Server, String> {
    Server::open(Config {
        model_text: model_text.to_owned(),
        database: ferry_server::Database::Sqlite(directory.join("server.db")),
        files: directory.join("server-files"),
        limits: Limits {
            access_token_lifetime_seconds: SIM_ACCESS_TOKEN_SECONDS,
            ..Limits::default()
        },
        handlers: Handlers::default(),
        clock: clock.clone(),
        identity: None,
        app: None,
    })
    .await
    .map_err(|e| e.to_string())
}

/// The sample model with an attribute added and a technician's read rule widened (they also see
/// every work order of priority 1): the model version and what technicians may read change.
fn extended_model() -> String {
    samples::FIELD_SERVICE
        .replace(
            "attributes.Address = { type = \"string\", max_length = 400 }",
            "attributes.Address = { type = \"string\", max_length = 400 }\nattributes.Gate = { type = \"string\", max_length = 40 }",
        )
        .replace(
            "constraint = \"[Field.WorkOrder_AssignedTo = '[%CurrentUser%]']\" },",
            "constraint = \"[Field.WorkOrder_AssignedTo = '[%CurrentUser%]' or Priority = 1]\" },",
        )
}

impl World {
    async fn restart_server(&mut self, model_text: Option<String>) -> Result<(), String> {
        self.slot.restart(model_text).await
    }

    /// A technician becomes a planner, or a promoted one a technician again (one technician
    /// always stays, for work orders to be assigned to).
    async fn change_roles(&mut self, rng: &mut Rng) -> Result<(), String> {
        let technicians: Vec<usize> =
            (0..self.devices.len()).filter(|d| !self.devices[*d].planner).collect();
        let promoted: Vec<usize> = (0..self.devices.len())
            .filter(|d| self.devices[*d].planner && self.devices[*d].promoted)
            .collect();
        let (device, role) = match (technicians.len() > 1, promoted.is_empty()) {
            (true, _) => (technicians[rng.below(technicians.len())], "Planner"),
            (false, false) => (promoted[rng.below(promoted.len())], "Technician"),
            (false, true) => return Ok(()),
        };
        let user = self.devices[device].user;
        self.slot.server().set_roles(user, &[role.to_owned()]).await.map_err(|e| e.to_string())?;
        let device = &mut self.devices[device];
        device.planner = role == "Planner";
        device.promoted = device.planner;
        Ok(())
    }

    async fn start(seed: u64, live: bool) -> Result<World, String> {
        let directory =
            std::env::temp_dir().join(format!("ferry-sim-run-{}-{seed:x}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).map_err(|e| e.to_string())?;
        let clock = Arc::new(SimClock(Mutex::new(
            Timestamp::parse("2026-11-23T08:00:00Z").expect("a time"),
        )));
        let slot = Arc::new(ServerSlot::open(&directory, &clock).await?);
        let plan = Arc::new(Mutex::new(FaultPlan {
            rng: Rng::new(seed ^ 0xFA17),
            rate: 0,
            injected: BTreeMap::new(),
            crashed: BTreeSet::new(),
            refreshes: 0,
        }));
        let ids = Arc::new(SimIds(Mutex::new(Rng::new(seed ^ 0x1D5))));
        let mut world = World {
            directory,
            slot,
            clock,
            plan,
            ids,
            devices: Vec::new(),
            digest: std::hash::DefaultHasher::new(),
            committed: BTreeSet::new(),
            numbers: 0,
            seed,
            live,
            live_syncs: Arc::default(),
        };
        for (user, role) in
            [("pat", "Planner"), ("pam", "Planner"), ("alice", "Technician"), ("bob", "Technician")]
        {
            world
                .slot
                .server()
                .add_user(user, &[role.to_owned()], PASSWORD)
                .await
                .map_err(|e| e.to_string())?;
            let index = world.devices.len();
            let path = world.directory.join(format!("{user}.db"));
            let device = world.open_device(user, role == "Planner", index, path, true).await?;
            world.devices.push(device);
        }
        Ok(world)
    }

    async fn open_device(
        &self,
        user: &'static str,
        planner: bool,
        index: usize,
        path: std::path::PathBuf,
        sign_in: bool,
    ) -> Result<SimDevice, String> {
        let db = Arc::new(
            Database::open_with(
                &path,
                &self.slot.model_text(),
                self.clock.clone(),
                self.ids.clone(),
            )
            .map_err(|e| e.to_string())?,
        );
        let transport = SimTransport {
            slot: Arc::clone(&self.slot),
            plan: Arc::clone(&self.plan),
            clock: Arc::clone(&self.clock),
            device: index,
        };
        let engine = SyncEngine::with_transport(Arc::clone(&db), Arc::new(transport))
            .writing_downloads_inline()
            .with_random_seed(self.seed ^ 0x11FE ^ index as u64);
        let id = match sign_in {
            true => engine.sign_in(user, PASSWORD).await.map_err(|e| e.to_string())?,
            false => db.status().map_err(|e| e.to_string())?.user.ok_or("no user")?,
        };
        let engine = Arc::new(engine);
        Ok(SimDevice { user, planner, promoted: false, id, path, db, engine, live: None })
    }

    fn technicians(&self) -> Vec<ObjectId> {
        self.devices.iter().filter(|d| !d.planner).map(|d| d.id).collect()
    }

    async fn step(&mut self, rng: &mut Rng, report: &mut SimReport) -> Result<(), String> {
        self.clock.advance(rng.below(5_000) as i64);
        let d = rng.below(self.devices.len());
        // On one thread, an app's write would wait on a live sync's transaction that cannot move
        // meanwhile: the step waits for that sync to end, as an app's write waits on its thread.
        while self.devices[d].engine.is_syncing() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let technicians = self.technicians();
        match rng.below(10) {
            0 => {
                let rate = [0, 10, 30][rng.below(3)];
                self.plan.lock().unwrap_or_else(|p| p.into_inner()).rate = rate;
            }
            1..=3 => self.sync(d, rng, report).await?,
            4 if self.devices[d].planner => self.create_order(d, &technicians, rng)?,
            4 | 5 => {
                let device = &self.devices[d];
                let orders =
                    device.db.query(&Query::new("Field.WorkOrder")).map_err(|e| e.to_string())?;
                if orders.is_empty() {
                    return Ok(());
                }
                let mut order = orders[rng.below(orders.len())].clone();
                let db = &device.db;
                match (device.planner, rng.below(3)) {
                    (true, 0) => {
                        let assignee = technicians[rng.below(technicians.len())];
                        db.set(&mut order, "WorkOrder_AssignedTo", Value::Reference(assignee))
                            .map_err(|e| e.to_string())?;
                    }
                    (true, _) => db
                        .set(&mut order, "Priority", Value::Integer(1 + rng.below(5) as i64))
                        .map_err(|e| e.to_string())?,
                    (false, 0) => db
                        .set(
                            &mut order,
                            "Status",
                            Value::Enumeration(
                                ["Open", "InProgress", "Done"][rng.below(3)].to_owned(),
                            ),
                        )
                        .map_err(|e| e.to_string())?,
                    (false, _) => db
                        .set(
                            &mut order,
                            "Notes",
                            Value::String(format!("note {}", rng.next_u64() % 1000)),
                        )
                        .map_err(|e| e.to_string())?,
                }
                db.commit(&mut [&mut order]).map_err(|e| e.to_string())?;
            }
            6 if self.devices[d].planner => {
                let device = &self.devices[d];
                let mut site = device.db.create("Field.Site").map_err(|e| e.to_string())?;
                device
                    .db
                    .set(&mut site, "Name", Value::String(format!("Site {}", rng.next_u64() % 100)))
                    .map_err(|e| e.to_string())?;
                device.db.commit(&mut [&mut site]).map_err(|e| e.to_string())?;
                self.committed.insert(("Field.Site".to_owned(), site.id()));
            }
            7 if self.devices[d].planner && rng.chance(1, 2) => self.delete(d, rng, report)?,
            8 if rng.chance(1, 4) => self.clear(d, rng, report)?,
            9 if self.live && rng.chance(1, 2) => self.toggle_live(d, report).await?,
            _ => self.sync(d, rng, report).await?,
        }
        self.restart_crashed(report).await
    }

    /// A planner creates a work order for a technician, at a site now and then (deleting the
    /// site later clears the reference), and commits it or thinks better of it.
    fn create_order(
        &mut self,
        d: usize,
        technicians: &[ObjectId],
        rng: &mut Rng,
    ) -> Result<(), String> {
        self.numbers += 1;
        let number = self.numbers;
        let db = &self.devices[d].db;
        let mut order = db.create("Field.WorkOrder").map_err(|e| e.to_string())?;
        db.set(&mut order, "Number", Value::Integer(number)).map_err(|e| e.to_string())?;
        db.set(&mut order, "Title", Value::String(format!("Order {number}")))
            .map_err(|e| e.to_string())?;
        let assignee = technicians[rng.below(technicians.len())];
        db.set(&mut order, "WorkOrder_AssignedTo", Value::Reference(assignee))
            .map_err(|e| e.to_string())?;
        let sites = db.query(&Query::new("Field.Site")).map_err(|e| e.to_string())?;
        if !sites.is_empty() && rng.chance(1, 2) {
            let site = sites[rng.below(sites.len())].id();
            db.set(&mut order, "WorkOrder_Site", Value::Reference(site))
                .map_err(|e| e.to_string())?;
        }
        if rng.chance(1, 5) {
            // Changed, then thought better of: nothing reaches the database.
            db.rollback(&mut order).map_err(|e| e.to_string())?;
        } else {
            db.commit(&mut [&mut order]).map_err(|e| e.to_string())?;
            self.committed.insert(("Field.WorkOrder".to_owned(), order.id()));
        }
        Ok(())
    }

    /// Deletes a work order, or now and then a site, whose work orders keep existing with the
    /// reference cleared (the association's delete behaviour).
    fn delete(&mut self, d: usize, rng: &mut Rng, report: &mut SimReport) -> Result<(), String> {
        let entity = if rng.chance(1, 4) { "Field.Site" } else { "Field.WorkOrder" };
        let device = &self.devices[d];
        let objects = device.db.query(&Query::new(entity)).map_err(|e| e.to_string())?;
        if let Some(object) = objects.get(rng.below(objects.len().max(1))) {
            let mut object = object.clone();
            device.db.delete(&mut object).map_err(|e| e.to_string())?;
            self.committed.remove(&(entity.to_owned(), object.id()));
            report.deletions += 1;
        }
        Ok(())
    }

    /// Clears an entity on a device: local only, so the next full sync must bring it back.
    fn clear(&mut self, d: usize, rng: &mut Rng, report: &mut SimReport) -> Result<(), String> {
        let entity = ["Field.WorkOrder", "Field.Site"][rng.below(2)];
        match self.devices[d].db.clear(entity, ClearMode::KeepChanges) {
            Ok(_) => report.clears += 1,
            Err(ClientError::UnsyncedChanges { .. }) => {}
            Err(error) => return Err(format!("clear {entity}: {error}")),
        }
        Ok(())
    }

    async fn sync(
        &mut self,
        d: usize,
        rng: &mut Rng,
        report: &mut SimReport,
    ) -> Result<(), String> {
        let device = &self.devices[d];
        let mode = match rng.below(4) {
            0 => SyncMode::Unsynchronized,
            1 => {
                let orders =
                    device.db.query(&Query::new("Field.WorkOrder")).map_err(|e| e.to_string())?;
                SyncMode::Selected(
                    orders
                        .iter()
                        .filter(|_| rng.chance(1, 2))
                        .map(|o| ("Field.WorkOrder".to_owned(), o.id()))
                        .collect(),
                )
            }
            _ => SyncMode::All,
        };
        report.syncs += 1;
        match device.engine.sync(mode).await {
            Ok(_) => Ok(()),
            // The network's faults: the sync fails whole and its work waits for the next one.
            Err(SyncError::Unreachable { .. }) => {
                report.failed_syncs += 1;
                Ok(())
            }
            // A selection that leaves out a new site its work order refers to is refused before
            // anything is sent, as it should be; the changes wait for the next sync.
            Err(SyncError::SelectionIntegrity { .. }) => Ok(()),
            // Live mode's own sync is under way: the app's is refused, as it should be.
            Err(SyncError::AlreadyRunning) if device.live.is_some() => Ok(()),
            Err(error) => Err(format!("{} could not sync: {error}", device.user)),
        }
    }

    /// Devices whose request was the last before a crash start again from their database.
    async fn restart_crashed(&mut self, report: &mut SimReport) -> Result<(), String> {
        let crashed: Vec<usize> =
            std::mem::take(&mut self.plan.lock().unwrap_or_else(|p| p.into_inner()).crashed)
                .into_iter()
                .collect();
        for index in crashed {
            let (user, planner, promoted, path) = {
                let device = &self.devices[index];
                (device.user, device.planner, device.promoted, device.path.clone())
            };
            // Dropping the engine and the database is the crash; opening them again the restart.
            if let Some((_, task)) = self.devices[index].live.take() {
                task.abort();
                let _ = task.await;
            }
            let mut reopened = self.open_device(user, planner, index, path, false).await?;
            reopened.promoted = promoted;
            drop(std::mem::replace(&mut self.devices[index], reopened));
            report.restarts += 1;
        }
        Ok(())
    }

    /// A device goes live, or a live one offline again.
    async fn toggle_live(&mut self, d: usize, report: &mut SimReport) -> Result<(), String> {
        let device = &mut self.devices[d];
        if device.live.is_some() {
            return stop_live(device).await;
        }
        let live_syncs = Arc::clone(&self.live_syncs);
        let options = LiveOptions {
            events: Some(Arc::new(move |event: &ferry_client::LiveEvent| {
                if let ferry_client::LiveEvent::Synced(_) = event {
                    live_syncs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })),
            ..LiveOptions::default()
        };
        let engine = Arc::clone(&device.engine);
        let stop = options.stop.clone();
        device.live = Some((stop, tokio::spawn(async move { engine.run_live(&options).await })));
        report.live_starts += 1;
        Ok(())
    }

    /// Faults stop; live devices go offline; every device syncs until nothing moves; then the
    /// checkers.
    async fn quiet_and_check(&mut self) -> Result<(), String> {
        self.plan.lock().unwrap_or_else(|p| p.into_inner()).rate = 0;
        for device in &mut self.devices {
            stop_live(device).await?;
        }
        for _ in 0..3 {
            for device in &self.devices {
                device
                    .engine
                    .sync(SyncMode::All)
                    .await
                    .map_err(|e| format!("{} in a quiet sync: {e}", device.user))?;
            }
        }
        let failures: BTreeSet<(String, String)> = self
            .slot
            .server()
            .failures()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|f| (f.entity, f.object_id))
            .collect();
        for device in &self.devices {
            // Queues drain.
            let pending = device.db.pending_changes().map_err(|e| e.to_string())?;
            if pending > 0 {
                return Err(format!(
                    "{} still has {pending} changes after quiet syncs",
                    device.user
                ));
            }
            // No access leak: a technician holds only the work orders assigned to them (and, once the
            // model widened their rule, those of priority 1).
            if !device.planner {
                for order in
                    device.db.query(&Query::new("Field.WorkOrder")).map_err(|e| e.to_string())?
                {
                    let assignee = device
                        .db
                        .get_value(&order, "WorkOrder_AssignedTo")
                        .map_err(|e| e.to_string())?;
                    let priority =
                        device.db.get_value(&order, "Priority").map_err(|e| e.to_string())?;
                    let widened = self.slot.model_text() != samples::FIELD_SERVICE
                        && priority == &Value::Integer(1);
                    if assignee != &Value::Reference(device.id) && !widened {
                        return Err(format!(
                            "{} holds work order {} assigned to {assignee}",
                            device.user,
                            order.id()
                        ));
                    }
                }
            }
            // Convergence: the device equals a fresh device of its user.
            let fresh_path = self.directory.join(format!(
                "fresh-{}-{}.db",
                device.user,
                self.clock.read().unix_micros()
            ));
            let fresh = self
                .open_device(device.user, device.planner, usize::MAX, fresh_path.clone(), true)
                .await?;
            fresh
                .engine
                .sync(SyncMode::All)
                .await
                .map_err(|e| format!("a fresh device of {}: {e}", device.user))?;
            let (held, expected) = (dump(&device.db)?, dump(&fresh.db)?);
            fold_into_digest(&mut self.digest, &self.devices, format!("{}: {held:?}", device.user));
            if held != expected {
                return Err(format!(
                    "{} differs from a fresh device of its user:\n{}",
                    device.user,
                    difference(&held, &expected)
                ));
            }
            drop(fresh);
            for suffix in ["", "-wal", "-shm", ".sync-lock"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", fresh_path.display()));
            }
            let _ = std::fs::remove_dir_all(format!("{}.files", fresh_path.display()));
        }
        fold_into_digest(&mut self.digest, &self.devices, format!("{failures:?}"));
        // Nothing lost: every committed object is on the server or in SynchronizationError.
        for (entity, id) in &self.committed {
            let known = self.slot.server().holds(entity, *id).await.map_err(|e| e.to_string())?;
            if !known && !failures.contains(&(entity.clone(), id.to_string())) {
                return Err(format!(
                    "{entity} {id} was committed, and is neither on the server nor in SynchronizationError"
                ));
            }
        }
        // Every upload is applied once: its id appears once in the history.
        let mut uploads = BTreeSet::new();
        for entry in self.slot.server().history().await.map_err(|e| e.to_string())? {
            if entry.mode == "upload" && !uploads.insert(entry.upload_id.clone()) {
                return Err(format!("upload {} was applied twice", entry.upload_id));
            }
        }
        Ok(())
    }
}

/// Ends a device's live mode, if it is in it; live mode must end only because it was told to.
async fn stop_live(device: &mut SimDevice) -> Result<(), String> {
    let Some((stop, task)) = device.live.take() else {
        return Ok(());
    };
    stop.cancel();
    match task.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(format!("{}'s live mode ended: {error}", device.user)),
        Err(error) => Err(format!("{}'s live mode panicked: {error}", device.user)),
    }
}

/// Adds what a check saw to the run's digest. Users are named, not given by id: the server makes
/// their ids at random, the one thing of a run its seed does not decide.
fn fold_into_digest(digest: &mut std::hash::DefaultHasher, devices: &[SimDevice], seen: String) {
    let mut seen = seen;
    for device in devices {
        seen = seen.replace(&device.id.to_string(), device.user);
    }
    seen.hash(digest);
}

type Dump = BTreeMap<String, BTreeMap<ObjectId, Vec<String>>>;

/// The sites and work orders a device holds, member by member.
fn dump(db: &Database) -> Result<Dump, String> {
    let model = db.model();
    let mut out = BTreeMap::new();
    for name in ["Field.Site", "Field.WorkOrder"] {
        let entity = model.entity(name).ok_or("the sample model")?;
        let mut objects = BTreeMap::new();
        for object in db.query(&Query::new(name)).map_err(|e| e.to_string())? {
            let values = (0..entity.member_count())
                .map(|slot| {
                    let member = entity.member_name(ferry_model::Slot(slot));
                    db.get_value(&object, member).map(|v| format!("{member}={v}"))
                })
                .collect::<Result<Vec<_>, ClientError>>()
                .map_err(|e| e.to_string())?;
            objects.insert(object.id(), values);
        }
        out.insert(name.to_owned(), objects);
    }
    Ok(out)
}

fn difference(held: &Dump, expected: &Dump) -> String {
    let mut lines = Vec::new();
    for (entity, objects) in expected {
        let empty = BTreeMap::new();
        let mine = held.get(entity).unwrap_or(&empty);
        for (id, values) in objects {
            match mine.get(id) {
                None => lines.push(format!("  missing {entity} {id}: {values:?}")),
                Some(held) if held != values => {
                    lines.push(format!("  {entity} {id}: holds {held:?}, fresh {values:?}"))
                }
                Some(_) => {}
            }
        }
        for id in mine.keys().filter(|id| !objects.contains_key(id)) {
            lines.push(format!("  extra {entity} {id}"));
        }
    }
    lines.join("\n")
}
