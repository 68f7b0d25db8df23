//! Embedding Ferry in a Rust app: a server with a Rust server action, and a device that syncs
//! with it over HTTP. Run with `cargo run -p ferry-sim --example embed`.

#![allow(clippy::print_stdout, reason = "an example shows what happened")]

use std::sync::Arc;

use ferry_client::{Database, SyncEngine, SyncMode};
use ferry_model::{Value, samples};
use ferry_server::{Config, Handlers, Limits, Server, SystemClock};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("ferry-embed-{}", std::process::id()));

    // The server: the model, a database (embedded SQLite here; `Database::Postgres(url)` for
    // PostgreSQL), where file contents go, and the app's handlers and server actions.
    let handlers = Handlers::default()
        .before_apply(
            "Field.Site",
            Box::new(|site| {
                // Server-side logic on every uploaded site: names are stored trimmed.
                if let Some(Value::String(name)) = site.get("Name").cloned() {
                    site.set("Name", Value::String(name.trim().to_owned()))?;
                }
                Ok(())
            }),
        )
        .action("CountSites", |call| async move {
            let sites = call.query("Field.Site", "[Name != empty]").await?;
            Ok(json!({ "sites": sites.len() }))
        });
    let server = Server::open(Config {
        model_text: samples::FIELD_SERVICE.to_owned(),
        database: ferry_server::Database::Sqlite(dir.join("server.db")),
        files: dir.join("server-files"),
        limits: Limits::default(),
        handlers,
        clock: Arc::new(SystemClock),
        identity: None,
        app: None,
    })
    .await?;
    server.add_user("pat", &["Planner".to_owned()], "a long password").await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(ferry_server::serve(listener, server, std::future::pending()));

    // The device: a database file, objects changed offline, and a sync.
    let device = Arc::new(Database::open(dir.join("device.db"), samples::FIELD_SERVICE)?);
    let engine = SyncEngine::new(Arc::clone(&device), &format!("http://{address}"))?;
    engine.sign_in("pat", "a long password").await?;
    let mut site = device.create("Field.Site")?;
    device.set(&mut site, "Name", Value::String("  Depot  ".to_owned()))?;
    device.commit(&mut [&mut site])?;
    let report = engine.sync(SyncMode::All).await?;
    let stored = device.get("Field.Site", site.id())?.ok_or("the site is on the device")?;
    println!(
        "uploaded {}, the server stored {}",
        report.uploaded,
        device.get_value(&stored, "Name")?
    );

    let counted = engine.call_action("CountSites", serde_json::Map::new()).await?;
    println!("CountSites answered {}", counted.result);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
