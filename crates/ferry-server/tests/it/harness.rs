//! A server per test on a fresh database, users of every sample role, and requests sent
//! through the router as a tower service.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use ferry_model::{ObjectId, Timestamp, samples};
use ferry_server::{Clock, Config, Database, Handlers, IdentityProvider, Limits, Server};
use serde_json::{Value as Json, json};
use tower::ServiceExt;

/// A clock tests set by hand.
pub(crate) struct TestClock(pub(crate) std::sync::Mutex<Timestamp>);

impl TestClock {
    pub(crate) fn now_plus_days(&self, days: i64) -> Timestamp {
        self.0.lock().unwrap().add_days(days).unwrap()
    }

    pub(crate) fn now_plus_seconds(&self, seconds: i64) -> Timestamp {
        let now = self.0.lock().unwrap().unix_micros();
        Timestamp::from_unix_micros(now + seconds * 1_000_000).unwrap()
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// The backends this run can test: SQLite, and PostgreSQL when `FERRY_TEST_POSTGRES` is set.
pub(crate) fn backends() -> Vec<Backend> {
    if std::env::var("FERRY_TEST_POSTGRES").is_ok() {
        vec![Backend::Sqlite, Backend::Postgres]
    } else {
        println!("skipped: FERRY_TEST_POSTGRES unset");
        vec![Backend::Sqlite]
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty database for one test.
pub(crate) async fn fresh_database(backend: Backend) -> Database {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("ferry-server-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            Database::Sqlite(dir.join("ferry.db"))
        }
        Backend::Postgres => {
            let url = std::env::var("FERRY_TEST_POSTGRES").unwrap();
            let name = format!("ferry_server_{}_{n}", std::process::id());
            let (client, connection) =
                tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await.unwrap();
            client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
            let root = url.rsplit_once('/').unwrap().0;
            Database::Postgres(format!("{root}/{name}"))
        }
    }
}

pub(crate) struct TestServer {
    pub(crate) server: Server,
    pub(crate) database: Database,
    /// The directory of file contents.
    pub(crate) files: std::path::PathBuf,
    pub(crate) clock: Arc<TestClock>,
}

pub(crate) const PASSWORD: &str = "correct horse battery";

pub(crate) struct SignedIn {
    pub(crate) token: String,
    /// The session's refresh token.
    pub(crate) refresh: String,
    pub(crate) id: ObjectId,
}

impl TestServer {
    pub(crate) async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, samples::FIELD_SERVICE, Handlers::default(), Limits::default())
            .await
    }

    pub(crate) async fn start_with(
        backend: Backend,
        model: &str,
        handlers: Handlers,
        limits: Limits,
    ) -> TestServer {
        Self::start_trusting(backend, model, handlers, limits, None).await
    }

    /// A server that also signs users in with the tokens of `identity`.
    pub(crate) async fn start_trusting(
        backend: Backend,
        model: &str,
        handlers: Handlers,
        limits: Limits,
        identity: Option<IdentityProvider>,
    ) -> TestServer {
        let database = fresh_database(backend).await;
        let clock = Arc::new(TestClock(std::sync::Mutex::new(
            Timestamp::parse("2026-11-23T10:00:00Z").unwrap(),
        )));
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let files = std::env::temp_dir().join(format!("ferry-files-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&files);
        let config = Config {
            model_text: model.to_owned(),
            database: database.clone(),
            files: files.clone(),
            limits,
            handlers,
            clock: clock.clone(),
            identity,
            app: None,
        };
        let server = Server::open(config).await.unwrap();
        TestServer { server, database, files, clock }
    }

    /// Creates a user with the roles and signs them in.
    pub(crate) async fn user(&self, name: &str, roles: &[&str]) -> SignedIn {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        let id = self.server.add_user(name, &roles, PASSWORD).await.unwrap();
        let (status, body) = self
            .call(
                Method::POST,
                "/v1/sign-in",
                None,
                Some(json!({ "user": name, "password": PASSWORD })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let text = |key: &str| body[key].as_str().unwrap().to_owned();
        SignedIn { token: text("token"), refresh: text("refresh_token"), id }
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Json>,
    ) -> (StatusCode, Json) {
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        self.raw(method, path, token, body).await
    }

    pub(crate) async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Body,
    ) -> (StatusCode, Json) {
        let mut request =
            Request::builder().method(method).uri(path).header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = self.server.router().oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Json::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, json)
    }

    pub(crate) async fn upload(
        &self,
        who: &SignedIn,
        upload_id: &str,
        changes: Json,
    ) -> (StatusCode, Json) {
        self.call(
            Method::POST,
            "/v1/upload",
            Some(&who.token),
            Some(json!({ "upload_id": upload_id, "device": "test", "changes": changes })),
        )
        .await
    }

    /// Every page of a download from `after`, merged: objects by id, removals, final checkpoint.
    pub(crate) async fn download_all(
        &self,
        who: &SignedIn,
        entity: &str,
        after: Option<&str>,
    ) -> Downloaded {
        let mut result = Downloaded::default();
        let mut after = after.map(str::to_owned);
        loop {
            let query = after.as_ref().map(|a| format!("?after={a}")).unwrap_or_default();
            let (status, page) = self
                .call(Method::GET, &format!("/v1/download/{entity}{query}"), Some(&who.token), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            result.mode = page["mode"].as_str().unwrap().to_owned();
            for object in page["objects"].as_array().unwrap() {
                result.objects.insert(object["id"].as_str().unwrap().to_owned(), object.clone());
            }
            for id in page["removed"].as_array().unwrap() {
                result.removed.push(id.as_str().unwrap().to_owned());
            }
            result.checkpoint = page["checkpoint"].as_str().unwrap().to_owned();
            result.pages += 1;
            if !page["more"].as_bool().unwrap() {
                return result;
            }
            after = Some(result.checkpoint.clone());
        }
    }
}

#[derive(Default, Debug)]
pub(crate) struct Downloaded {
    pub(crate) mode: String,
    pub(crate) objects: std::collections::BTreeMap<String, Json>,
    pub(crate) removed: Vec<String>,
    pub(crate) checkpoint: String,
    pub(crate) pages: usize,
}

/// A new object id for a test object; `n` keeps them distinct and ordered.
pub(crate) fn id(n: u128) -> String {
    ObjectId::from_parts(1_795_000_000_000, n).to_string()
}

pub(crate) fn create(entity: &str, id: &str, values: Json) -> Json {
    json!({ "entity": entity, "id": id, "kind": "create", "values": values })
}

pub(crate) fn update(entity: &str, id: &str, values: Json) -> Json {
    json!({ "entity": entity, "id": id, "kind": "update", "values": values })
}

pub(crate) fn delete(entity: &str, id: &str) -> Json {
    json!({ "entity": entity, "id": id, "kind": "delete" })
}

/// The outcome names of an upload response, one per change, e.g. `applied`, `failed: reason`.
pub(crate) fn outcomes(response: &Json) -> Vec<String> {
    response["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| match o["outcome"].as_str().unwrap() {
            "failed" => format!("failed: {}", o["reason"].as_str().unwrap()),
            other => other.to_owned(),
        })
        .collect()
}

/// Users of every role and a small field-service world made by the planner: a site and four
/// work orders, two assigned to each technician.
pub(crate) struct Fixture {
    pub(crate) planner: SignedIn,
    pub(crate) alice: SignedIn,
    pub(crate) bob: SignedIn,
    pub(crate) admin: SignedIn,
    pub(crate) site: String,
    /// Work orders 1 and 2 are Alice's, 3 and 4 Bob's.
    pub(crate) orders: Vec<String>,
}

pub(crate) async fn fixture(server: &TestServer) -> Fixture {
    let planner = server.user("pat", &["Planner"]).await;
    let alice = server.user("alice", &["Technician"]).await;
    let bob = server.user("bob", &["Technician"]).await;
    let admin = server.user("ada", &["Admin"]).await;
    let site = id(100);
    let orders: Vec<String> = (1..=4).map(|n| id(200 + n)).collect();
    let mut changes = vec![create("Field.Site", &site, json!({ "Name": "Depot" }))];
    for (n, order) in orders.iter().enumerate() {
        let technician = if n < 2 { alice.id } else { bob.id };
        changes.push(create(
            "Field.WorkOrder",
            order,
            json!({
                "Number": n + 1,
                "Title": format!("Order {}", n + 1),
                "Field.WorkOrder_Site": site,
                "Field.WorkOrder_AssignedTo": technician.to_string(),
                "Amount": "10.50",
            }),
        ));
    }
    let (status, response) = server.upload(&planner, "fixture", Json::Array(changes)).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert!(outcomes(&response).iter().all(|o| o == "applied"), "{response}");
    Fixture { planner, alice, bob, admin, site, orders }
}
