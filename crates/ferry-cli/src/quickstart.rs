//! `ferry quickstart`: a server on embedded SQLite in a temporary directory with the sample
//! field-service model, and devices that go through a real story over HTTP on 127.0.0.1,
//! narrated step by step. Every step checks its outcome; one that is not what it says ends the
//! run with exit code 1.

use std::io::Read as _;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, ensure};
use ferry_client::{HttpTransport, Object, SyncEngine, SyncMode};
use ferry_model::{ObjectId, Timestamp, Value, samples};
use ferry_protocol::endpoint::{self, Endpoint, Route};
use ferry_server::{Config, Database, Handlers, Limits, Server, SystemClock};
use serde_json::json;

use crate::EXIT_IO;

const PASSWORD: &str = "quickstart password";

/// A device of one user.
struct Device {
    name: &'static str,
    db: Arc<ferry_client::Database>,
    engine: SyncEngine,
    user: ObjectId,
}

/// The story's record: each step and what it showed.
struct Story {
    steps: Vec<(&'static str, String)>,
}

impl Story {
    fn step(&mut self, title: &'static str) {
        println!("\n== {}. {title}", self.steps.len() + 1);
    }

    fn say(&self, text: &str) {
        println!("   {text}");
    }

    fn done(&mut self, title: &'static str, outcome: String) {
        println!("   ok: {outcome}");
        self.steps.push((title, outcome));
    }
}

fn text(value: &str) -> Value {
    Value::String(value.to_owned())
}

pub(crate) fn quickstart() -> ExitCode {
    // The server's log would drown the story: only warnings, unless RUST_LOG asks for more.
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned());
    if let Err(message) = crate::logging::init(&filter, crate::logging::LogFormat::Text, None) {
        eprintln!("error: {message}");
        return ExitCode::from(crate::EXIT_INVALID);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: start the runtime: {error}");
            return ExitCode::from(EXIT_IO);
        }
    };
    let directory = std::env::temp_dir().join(format!("ferry-quickstart-{}", std::process::id()));
    let result = runtime.block_on(story(&directory));
    let _ = std::fs::remove_dir_all(&directory);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("\nerror: the quickstart went wrong: {error:#}");
            ExitCode::from(1)
        }
    }
}

async fn device(
    directory: &std::path::Path,
    address: &str,
    name: &'static str,
) -> anyhow::Result<Device> {
    let db = Arc::new(ferry_client::Database::open(
        directory.join(format!("{name}.db")),
        samples::FIELD_SERVICE,
    )?);
    let engine = SyncEngine::new(Arc::clone(&db), &format!("http://{address}"))?;
    let user = engine.sign_in(name, PASSWORD).await?;
    Ok(Device { name, db, engine, user })
}

fn get(device: &Device, object: &Object, member: &str) -> anyhow::Result<Value> {
    let fresh = device.db.get(object.entity().as_str(), object.id())?.with_context(|| {
        format!("{} does not hold {} {}", device.name, object.entity(), object.id())
    })?;
    Ok(device.db.get_value(&fresh, member)?.clone())
}

fn work_order(
    device: &Device,
    number: i64,
    title: &str,
    assignee: ObjectId,
    site: ObjectId,
) -> anyhow::Result<Object> {
    let mut order = device.db.create("Field.WorkOrder")?;
    device.db.set(&mut order, "Number", Value::Integer(number))?;
    device.db.set(&mut order, "Title", text(title))?;
    device.db.set(&mut order, "WorkOrder_AssignedTo", Value::Reference(assignee))?;
    device.db.set(&mut order, "WorkOrder_Site", Value::Reference(site))?;
    Ok(order)
}

async fn story(directory: &std::path::Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(directory);
    std::fs::create_dir_all(directory)?;
    let server = Server::open(Config {
        model_text: samples::FIELD_SERVICE.to_owned(),
        database: Database::Sqlite(directory.join("server").join("ferry.db")),
        files: directory.join("server").join("files"),
        limits: Limits::default(),
        handlers: Handlers::default(),
        clock: Arc::new(SystemClock),
        identity: None,
        app: None,
    })
    .await?;
    for (name, role) in [("pat", "Planner"), ("alice", "Technician"), ("ada", "Admin")] {
        server.add_user(name, &[role.to_owned()], PASSWORD).await?;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    tokio::spawn(ferry_server::serve(listener, server.clone(), std::future::pending()));
    println!(
        "Ferry quickstart: a server on embedded SQLite at http://{address} (in {})",
        directory.display()
    );
    println!("with the field-service model; users pat (planner), alice (technician), ada (admin).");
    let mut story = Story { steps: Vec::new() };

    // 1. First sync.
    story.step("First sync");
    let pat = device(directory, &address, "pat").await?;
    let alice = device(directory, &address, "alice").await?;
    let ada = device(directory, &address, "ada").await?;
    let mut site = pat.db.create("Field.Site")?;
    pat.db.set(&mut site, "Name", text("Riverside pumping station"))?;
    let mut pump = work_order(&pat, 1, "Replace pump", alice.user, site.id())?;
    let mut valves = work_order(&pat, 2, "Inspect valves", alice.user, site.id())?;
    let mut closed = work_order(&pat, 3, "Paint railing", alice.user, site.id())?;
    pat.db.set(&mut closed, "Status", Value::Enumeration("Closed".to_owned()))?;
    pat.db.commit(&mut [&mut site, &mut pump, &mut valves, &mut closed])?;
    let report = pat.engine.sync(SyncMode::All).await?;
    story.say(&format!(
        "pat creates a site and three work orders for alice, and syncs: {} objects uploaded",
        report.uploaded
    ));
    ensure!(report.uploaded == 4, "pat uploaded {} objects, not 4", report.uploaded);
    let report = alice
        .engine
        .sync_if_needed()
        .await?
        .context("alice's empty device should sync by itself")?;
    let orders = report.downloaded.get("Field.WorkOrder").copied().unwrap_or(0);
    story.say(&format!("alice's empty device syncs by itself: {orders} work orders arrive; the closed one stays on the server (the download rule leaves closed work orders out)"));
    ensure!(orders == 2, "alice received {orders} work orders, not 2");
    ada.engine.sync(SyncMode::All).await?;
    story
        .done("First sync", format!("pat uploaded 4 objects; alice received {orders} work orders"));

    // 2. Offline edits on both devices, different attributes.
    story.step("Offline edits on both devices");
    let mut pats_pump = pat.db.get("Field.WorkOrder", pump.id())?.context("pat's pump order")?;
    pat.db.set(&mut pats_pump, "Priority", Value::Integer(1))?;
    pat.db.commit(&mut [&mut pats_pump])?;
    let mut alices_pump =
        alice.db.get("Field.WorkOrder", pump.id())?.context("alice's pump order")?;
    alice.db.set(&mut alices_pump, "Status", Value::Enumeration("InProgress".to_owned()))?;
    alice.db.set(&mut alices_pump, "Notes", text("pump is noisy"))?;
    alice.db.commit(&mut [&mut alices_pump])?;
    story.say(
        "offline, pat raises the pump order's priority; alice marks it in progress and adds a note",
    );
    alice.engine.sync(SyncMode::All).await?;
    pat.engine.sync(SyncMode::All).await?;
    alice.engine.sync(SyncMode::All).await?;
    for device in [&pat, &alice] {
        let (priority, status) = (get(device, &pump, "Priority")?, get(device, &pump, "Status")?);
        story.say(&format!("{} now sees priority {priority}, status {status}", device.name));
        ensure!(
            priority == Value::Integer(1) && status == Value::Enumeration("InProgress".to_owned()),
            "{} lost an edit",
            device.name
        );
    }
    story.done(
        "Offline edits on both devices",
        "both edits kept: a device sends only the attributes it changed".to_owned(),
    );

    // 3. A conflicting edit of one attribute.
    story.step("A conflicting edit");
    let mut alices_pump =
        alice.db.get("Field.WorkOrder", pump.id())?.context("alice's pump order")?;
    alice.db.set(&mut alices_pump, "Notes", text("seal replaced"))?;
    alice.db.commit(&mut [&mut alices_pump])?;
    let mut pats_pump = pat.db.get("Field.WorkOrder", pump.id())?.context("pat's pump order")?;
    pat.db.set(&mut pats_pump, "Notes", text("order a new seal"))?;
    pat.db.commit(&mut [&mut pats_pump])?;
    story.say("both change the pump order's notes offline; alice syncs first, pat second");
    alice.engine.sync(SyncMode::All).await?;
    pat.engine.sync(SyncMode::All).await?;
    alice.engine.sync(SyncMode::All).await?;
    let notes = get(&alice, &pump, "Notes")?;
    story.say(&format!("the notes are now {notes} on both devices"));
    ensure!(
        notes == text("order a new seal") && get(&pat, &pump, "Notes")? == notes,
        "the last writer did not win"
    );
    story.done("A conflicting edit", "the last writer wins, per attribute".to_owned());

    // 4. A change the rules reject, kept in SynchronizationError and replayed by an admin.
    story.step("A rejected change, replayed by an admin");
    let mut adas = work_order(&ada, 4, "Check meters", alice.user, site.id())?;
    ada.db.commit(&mut [&mut adas])?;
    let mut pats = work_order(&pat, 4, "Clean filters", alice.user, site.id())?;
    pat.db.commit(&mut [&mut pats])?;
    story.say("offline, ada and pat both create work order number 4; ada syncs first");
    ada.engine.sync(SyncMode::All).await?;
    let report = pat.engine.sync(SyncMode::All).await?;
    let (_, _, reason) =
        report.rejected.first().context("pat's work order 4 should be rejected")?;
    story.say(&format!("pat's sync: rejected: {reason}"));
    ensure!(
        pat.db.get("Field.WorkOrder", pats.id())?.is_none(),
        "the rejected order should leave pat's device"
    );
    let admin = HttpTransport::new(&format!("http://{address}"))?;
    let token = sign_in(&admin, "ada").await?;
    let failures = call(&admin, endpoint::FAILURES, &[], &token, b"").await?;
    let failure =
        failures["failures"][0]["id"].as_i64().context("a SynchronizationError record")?;
    story.say(&format!(
        "ada lists SynchronizationError: failure {failure}, {} {}",
        failures["failures"][0]["entity"], failures["failures"][0]["object_id"]
    ));
    let mut adas_again = ada.db.get("Field.WorkOrder", adas.id())?.context("ada's order")?;
    ada.db.set(&mut adas_again, "Number", Value::Integer(40))?;
    ada.db.commit(&mut [&mut adas_again])?;
    ada.engine.sync(SyncMode::All).await?;
    let replayed =
        call(&admin, endpoint::FAILURE_REPLAY, &[&failure.to_string()], &token, b"").await?;
    let outcome = replayed["outcome"]["outcome"].as_str().unwrap_or_default().to_owned();
    story.say(&format!("ada renumbers her order to 40 and replays failure {failure}: {outcome}"));
    ensure!(outcome == "applied", "the replay was {outcome}");
    pat.engine.sync(SyncMode::All).await?;
    ensure!(get(&pat, &pats, "Title")? == text("Clean filters"), "pat's order 4 did not come back");
    story.done(
        "A rejected change, replayed by an admin",
        format!("kept as failure {failure}, applied on replay"),
    );

    // 5. A selected-objects sync.
    story.step("A selected-objects sync");
    let mut first = pat.db.get("Field.WorkOrder", valves.id())?.context("pat's valves order")?;
    pat.db.set(&mut first, "Title", text("Inspect and grease valves"))?;
    let mut second = pat.db.get("Field.WorkOrder", pump.id())?.context("pat's pump order")?;
    pat.db.set(
        &mut second,
        "Amount",
        Value::Decimal(ferry_model::Decimal::parse("350.00", 2).context("a decimal")?),
    )?;
    pat.db.commit(&mut [&mut first, &mut second])?;
    let report = pat
        .engine
        .sync(SyncMode::Selected(vec![("Field.WorkOrder".to_owned(), valves.id())]))
        .await?;
    let pending = pat.db.pending_changes()?;
    story.say(&format!(
        "pat changes two work orders and syncs only one: {} uploaded, {pending} still pending",
        report.uploaded
    ));
    ensure!(
        report.uploaded == 1 && pending == 1,
        "the selected sync uploaded {} with {pending} pending",
        report.uploaded
    );
    pat.engine.sync(SyncMode::All).await?;
    story.done(
        "A selected-objects sync",
        "only the selected object went; the other waited".to_owned(),
    );

    // 6. A server action that synchronizes objects to the device.
    story.step("A sync-to-device action");
    let parameters = json!({ "Status": "Closed" }).as_object().cloned().unwrap_or_default();
    let outcome = alice.engine.call_action("MyWorkOrdersIn", parameters).await?;
    story.say(&format!("alice calls the model's action MyWorkOrdersIn with Status = Closed: {} objects synchronized to her device", outcome.synced));
    ensure!(
        get(&alice, &closed, "Title")? == text("Paint railing"),
        "the closed order did not arrive"
    );
    story.done(
        "A sync-to-device action",
        format!("{} objects pushed, the closed work order among them", outcome.synced),
    );

    // 7. A photo.
    story.step("A photo");
    let mut visit = alice.db.create("Field.Visit")?;
    let started = Timestamp::parse("2026-11-23T09:00:00Z").context("a time")?;
    alice.db.set(&mut visit, "StartedAt", Value::DateTime(started))?;
    alice.db.set(&mut visit, "Visit_WorkOrder", Value::Reference(pump.id()))?;
    alice.db.set(&mut visit, "Visit_Technician", Value::Reference(alice.user))?;
    let mut photo = alice.db.create("Field.Photo")?;
    alice.db.set(&mut photo, "Photo_Visit", Value::Reference(visit.id()))?;
    let content = "a photo of the new seal ".repeat(4096);
    alice.db.attach_file(&mut photo, "seal.jpg", content.as_bytes())?;
    alice.db.commit(&mut [&mut visit, &mut photo])?;
    let report = alice.engine.sync(SyncMode::All).await?;
    story.say(&format!(
        "alice takes a photo on her visit and syncs: {} content sent before the objects",
        report.files_uploaded
    ));
    let report =
        pat.engine.sync(SyncMode::Selected(vec![("Field.Photo".to_owned(), photo.id())])).await?;
    let held = pat.db.get("Field.Photo", photo.id())?.context("pat's copy of the photo")?;
    let mut received = String::new();
    pat.db.open_file(&held)?.read_to_string(&mut received)?;
    story.say(&format!(
        "pat fetches it with a selected sync: {} content, {} bytes, the same as alice's",
        report.files_downloaded,
        received.len()
    ));
    ensure!(received == content, "the photo's content differs");
    story.done("A photo", format!("{} bytes up and down, checked", content.len()));

    live_step(&mut story, &pat, &alice, site.id()).await?;

    println!("\n{:<4}{:<44}outcome", "", "step");
    for (n, (title, outcome)) in story.steps.iter().enumerate() {
        println!("{:<4}{title:<44}{outcome}", format!("{}.", n + 1));
    }
    println!(
        "\nEvery step did what it says. Try the device and admin commands next: `ferry help`."
    );
    Ok(())
}

/// The eighth step, live sync: alice's device stays connected and watches her work orders;
/// pat's new one appears there with no sync asked for on her side.
async fn live_step(
    story: &mut Story,
    pat: &Device,
    alice: &Device,
    site: ObjectId,
) -> anyhow::Result<()> {
    story.step("Live sync");
    let query = ferry_client::Query::new("Field.WorkOrder").filter("[Status != 'Closed']");
    let mut watch = alice.db.watch(query)?;
    let before = watch.next().await?.len();
    let live = ferry_client::LiveOptions::default();
    let scenario = async {
        let mut order = work_order(pat, 10, "Flush the tank", alice.user, site)?;
        pat.db.commit(&mut [&mut order])?;
        let report = pat.engine.sync(SyncMode::All).await?;
        ensure!(report.uploaded == 1, "pat's new work order was not applied: {report:?}");
        let synced = tokio::time::Instant::now();
        story
            .say("alice's device is live and watches her open work orders; pat adds one and syncs");
        let waited = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                if watch.next().await?.len() > before {
                    return Ok::<_, ferry_client::ClientError>(());
                }
            }
        });
        waited.await.context("the new work order did not reach alice within 10 s")??;
        Ok::<_, anyhow::Error>(synced.elapsed())
    };
    let scenario = async {
        let shown = scenario.await;
        live.stop.cancel();
        shown
    };
    let (ran, shown) = tokio::join!(alice.engine.run_live(&live), scenario);
    ran?;
    let shown = shown?;
    let ms = shown.as_secs_f64() * 1000.0;
    story.say(&format!(
        "{} ms after pat's sync, alice's screen shows {} open work orders: she synced nothing by hand",
        format_args!("{ms:.0}"),
        before + 1
    ));
    story.done("Live sync", format!("pat's new work order on alice's screen after {ms:.0} ms"));
    Ok(())
}

async fn sign_in(transport: &HttpTransport, user: &str) -> anyhow::Result<String> {
    let body = serde_json::to_vec(&json!({ "user": user, "password": PASSWORD }))?;
    let answer = transport.request("POST", &endpoint::SignIn::ROUTE.path(&[]), None, &body).await?;
    ensure!(answer.status == 200, "sign-in answered {}", answer.status);
    let answer: serde_json::Value = serde_json::from_slice(&answer.body)?;
    answer["token"].as_str().map(str::to_owned).context("a token")
}

async fn call(
    transport: &HttpTransport,
    route: Route,
    segments: &[&str],
    token: &str,
    body: &[u8],
) -> anyhow::Result<serde_json::Value> {
    let (method, path) = (route.method.as_str(), route.path(segments));
    let answer = transport.request(method, &path, Some(token), body).await?;
    ensure!(
        answer.status == 200,
        "{method} {path} answered {}: {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    Ok(serde_json::from_slice(&answer.body)?)
}
