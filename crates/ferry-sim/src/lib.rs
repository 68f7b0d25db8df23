//! Where the server and the device SDK meet: end-to-end tests over real HTTP on 127.0.0.1, on
//! both server backends. [`TestWorld`] starts a server on a fresh database and opens devices.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferry_client::{Database, SyncEngine};
use ferry_server::{Config, Handlers, Limits, Server, SystemClock};

mod proxy;
pub mod sim;

pub use proxy::FaultProxy;

/// The password of every user a [`TestWorld`] makes.
pub const PASSWORD: &str = "device password";

/// Which database the server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends this run can test: SQLite, and PostgreSQL when `FERRY_TEST_POSTGRES` is set.
pub fn backends() -> Vec<Backend> {
    if std::env::var("FERRY_TEST_POSTGRES").is_ok() {
        vec![Backend::Sqlite, Backend::Postgres]
    } else {
        eprintln!("skipped: FERRY_TEST_POSTGRES unset");
        vec![Backend::Sqlite]
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A server on a fresh database serving on 127.0.0.1, and a directory for device databases.
pub struct TestWorld {
    pub server: Server,
    pub address: SocketAddr,
    pub model_text: String,
    database: ferry_server::Database,
    limits: Limits,
    handlers: fn() -> Handlers,
    directory: std::path::PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestWorld {
    /// Starts a server for `model_text` on `backend`; the caller's runtime runs it.
    pub async fn start(backend: Backend, model_text: &str) -> TestWorld {
        TestWorld::start_with(backend, model_text, Limits::default()).await
    }

    /// Starts a server with these limits (a small page size, say).
    pub async fn start_with(backend: Backend, model_text: &str, limits: Limits) -> TestWorld {
        TestWorld::start_with_handlers(backend, model_text, limits, Handlers::default).await
    }

    /// Starts a server with these limits, and the handlers and actions `handlers` makes (again
    /// on each restart).
    pub async fn start_with_handlers(
        backend: Backend,
        model_text: &str,
        limits: Limits,
        handlers: fn() -> Handlers,
    ) -> TestWorld {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let directory = std::env::temp_dir().join(format!("ferry-sim-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).expect("a temporary directory");
        let database = match backend {
            Backend::Sqlite => ferry_server::Database::Sqlite(directory.join("server.db")),
            Backend::Postgres => {
                let url = std::env::var("FERRY_TEST_POSTGRES").expect("backends() checked it");
                let name = format!("ferry_sim_{}_{n}", std::process::id());
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .expect("PostgreSQL for tests");
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
                    .await
                    .expect("drop the test database");
                client
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create the test database");
                ferry_server::Database::Postgres(format!(
                    "{}/{name}",
                    url.rsplit_once('/').expect("a database URL").0
                ))
            }
        };
        let (server, address, stop) =
            serve(&database, model_text, &directory.join("server-files"), &limits, handlers())
                .await;
        TestWorld {
            server,
            address,
            model_text: model_text.to_owned(),
            database,
            limits,
            handlers,
            directory,
            stop: Some(stop),
        }
    }

    /// The directory of the device databases (each `<user>.db`, its contents in `<user>.db.files`).
    pub fn directory(&self) -> &std::path::Path {
        &self.directory
    }

    /// Stops serving: devices can no longer reach the server.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Starts the server again on the same database (on a new port).
    pub async fn restart(&mut self) {
        self.stop();
        let (server, address, stop) = serve(
            &self.database,
            &self.model_text,
            &self.directory.join("server-files"),
            &self.limits,
            (self.handlers)(),
        )
        .await;
        (self.server, self.address, self.stop) = (server, address, Some(stop));
    }

    /// A new device (its own database file) signed in as a new user with these roles.
    pub async fn device(&self, user: &str, roles: &[&str]) -> Device {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        self.server.add_user(user, &roles, PASSWORD).await.expect("the user is added");
        self.another_device(user, user).await
    }

    /// A new device, with the database file `file`, signed in as the existing `user`.
    pub async fn another_device(&self, user: &str, file: &str) -> Device {
        self.device_at(self.address, user, file).await
    }

    /// A new device signed in as a new user with these roles, reaching the server through
    /// `proxy`.
    pub async fn device_through(&self, proxy: &FaultProxy, user: &str, roles: &[&str]) -> Device {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        self.server.add_user(user, &roles, PASSWORD).await.expect("the user is added");
        self.device_at(proxy.address, user, user).await
    }

    async fn device_at(&self, address: SocketAddr, user: &str, file: &str) -> Device {
        let password = PASSWORD;
        let database = Arc::new(
            Database::open(self.directory.join(format!("{file}.db")), &self.model_text)
                .expect("the device database opens"),
        );
        let engine = SyncEngine::new(Arc::clone(&database), &format!("http://{address}"))
            .expect("a server address");
        let id = engine.sign_in(user, password).await.expect("the user signs in");
        Device { database, engine, user: id }
    }
}

async fn serve(
    database: &ferry_server::Database,
    model_text: &str,
    files: &std::path::Path,
    limits: &Limits,
    handlers: Handlers,
) -> (Server, SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let config = Config {
        model_text: model_text.to_owned(),
        database: database.clone(),
        files: files.to_owned(),
        limits: limits.clone(),
        handlers,
        clock: Arc::new(SystemClock),
        identity: None,
        app: None,
    };
    let server = Server::open(config).await.expect("the server opens");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port on 127.0.0.1");
    let address = listener.local_addr().expect("a bound address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(ferry_server::serve(listener, server.clone(), async {
        let _ = stopped.await;
    }));
    (server, address, stop)
}

impl Drop for TestWorld {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// A device: its database, its sync engine, and the signed-in user's id.
pub struct Device {
    pub database: Arc<Database>,
    pub engine: SyncEngine,
    pub user: ferry_model::ObjectId,
}
