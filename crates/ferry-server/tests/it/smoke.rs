//! The server on a real socket: `serve` on 127.0.0.1:0, spoken to in plain HTTP/1.1.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Backend, PASSWORD, TestServer};

async fn http(address: std::net::SocketAddr, request: String) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn serves_http_on_a_socket_and_shuts_down() {
    let server = TestServer::start(Backend::Sqlite).await;
    server.server.add_user("alice", &["Technician".to_owned()], PASSWORD).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(ferry_server::serve(listener, server.server.clone(), async {
        let _ = stopped.await;
    }));
    let health = http(
        address,
        "GET /health HTTP/1.1\r\nHost: ferry\r\nConnection: close\r\n\r\n".to_owned(),
    )
    .await;
    assert!(health.starts_with("HTTP/1.1 200 OK") && health.ends_with("ok\n"), "{health}");
    let body = format!(r#"{{"user":"alice","password":"{PASSWORD}"}}"#);
    let sign_in = http(
        address,
        format!("POST /v1/sign-in HTTP/1.1\r\nHost: ferry\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()),
    )
    .await;
    assert!(sign_in.starts_with("HTTP/1.1 200 OK") && sign_in.contains("\"token\""), "{sign_in}");
    let metrics = http(
        address,
        "GET /metrics HTTP/1.1\r\nHost: ferry\r\nConnection: close\r\n\r\n".to_owned(),
    )
    .await;
    assert!(metrics.contains("ferry_sign_ins_total 1"), "{metrics}");
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn unknown_endpoints_and_methods_answer_in_json() {
    let server = TestServer::start(Backend::Sqlite).await;
    for (method, path, status, code) in [
        (axum::http::Method::GET, "/v1/nowhere", 404, "not-found"),
        (axum::http::Method::GET, "/v1/upload", 405, "method-not-allowed"),
        (axum::http::Method::DELETE, "/v1/sign-in", 405, "method-not-allowed"),
    ] {
        let (got, body) = server.call(method.clone(), path, None, None).await;
        assert_eq!(
            (got.as_u16(), body["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {body}"
        );
    }
}

/// `Config::app`: the web app's files at `/`, the API's paths still the API's.
#[tokio::test]
async fn a_web_app_is_served_beside_the_api() {
    let dir = std::env::temp_dir().join(format!("ferry-app-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("app/assets")).unwrap();
    std::fs::write(dir.join("app/index.html"), "<!doctype html><title>Field</title>").unwrap();
    std::fs::write(dir.join("app/assets/core.wasm"), b"\0asm").unwrap();
    let server = ferry_server::Server::open(ferry_server::Config {
        model_text: ferry_model::samples::FIELD_SERVICE.to_owned(),
        database: ferry_server::Database::parse(&format!("sqlite:{}", dir.join("f.db").display()))
            .unwrap(),
        files: dir.join("files"),
        limits: Default::default(),
        handlers: Default::default(),
        clock: std::sync::Arc::new(ferry_server::SystemClock),
        identity: None,
        app: Some(dir.join("app")),
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(ferry_server::serve(listener, server, async {
        let _ = stopped.await;
    }));
    let get = |path: &str| {
        http(address, format!("GET {path} HTTP/1.1\r\nHost: ferry\r\nConnection: close\r\n\r\n"))
    };
    let index = get("/").await;
    assert!(
        index.starts_with("HTTP/1.1 200 OK") && index.contains("<title>Field</title>"),
        "{index}"
    );
    assert!(index.to_lowercase().contains("content-type: text/html"), "{index}");
    let wasm = get("/assets/core.wasm").await;
    assert!(wasm.to_lowercase().contains("content-type: application/wasm"), "{wasm}");
    let missing = get("/v1/nowhere").await;
    assert!(missing.starts_with("HTTP/1.1 404") && missing.contains("not-found"), "{missing}");
    let model = get("/v1/model").await;
    assert!(model.starts_with("HTTP/1.1 401") && model.contains("unauthorized"), "{model}");
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}

/// `/health/live` answers while the process serves; `/health/ready` only while the database
/// answers (on PostgreSQL, a database refusing connections makes it 503, and it recovers).
#[tokio::test]
async fn liveness_and_readiness_probes() {
    for backend in crate::harness::backends() {
        let server = TestServer::start(backend).await;
        for (path, said) in [("/health/live", "ok\n"), ("/health/ready", "ready\n")] {
            let (status, body) = server.call(axum::http::Method::GET, path, None, None).await;
            assert_eq!((status.as_u16(), body.as_str()), (200, Some(said)), "{backend:?} {path}");
        }
        let ferry_server::Database::Postgres(url) = &server.database else { continue };
        let name = url.rsplit('/').next().unwrap().to_owned();
        let admin_url = std::env::var("FERRY_TEST_POSTGRES").unwrap();
        let (admin, connection) =
            tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        admin
            .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
            .await
            .unwrap();
        admin
            .batch_execute(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            ))
            .await
            .unwrap();
        let (status, body) =
            server.call(axum::http::Method::GET, "/health/ready", None, None).await;
        assert_eq!(status.as_u16(), 503, "{body}");
        let (status, _) = server.call(axum::http::Method::GET, "/health/live", None, None).await;
        assert_eq!(status.as_u16(), 200, "alive while the database is away");
        admin
            .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
            .await
            .unwrap();
        // Ready again once the database takes connections (the pool opens new ones).
        let mut ready = None;
        for _ in 0..100 {
            let (status, body) =
                server.call(axum::http::Method::GET, "/health/ready", None, None).await;
            ready = Some((status.as_u16(), body));
            if status.as_u16() == 200 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(ready.as_ref().map(|r| r.0), Some(200), "{ready:?}");
    }
}

/// `/metrics` after an upload with a rejected change, a download page and a reported sync.
#[tokio::test]
async fn metrics_count_outcomes_and_time_uploads_downloads_and_syncs() {
    use crate::harness::{create, id};
    use axum::http::Method;
    let server = TestServer::start(Backend::Sqlite).await;
    let planner = server.user("pia", &["Planner"]).await;
    let technician = server.user("tom", &["Technician"]).await;
    let site = create("Field.Site", &id(1), serde_json::json!({ "Name": "Depot" }));
    let (status, body) = server.upload(&planner, "u-1", serde_json::json!([site])).await;
    assert_eq!(status.as_u16(), 200, "{body}");
    // A technician may not create sites: rejected into SynchronizationError.
    let other = create("Field.Site", &id(2), serde_json::json!({ "Name": "Shed" }));
    let (status, body) = server.upload(&technician, "u-2", serde_json::json!([other])).await;
    assert_eq!(status.as_u16(), 200, "{body}");
    let (status, _) =
        server.call(Method::GET, "/v1/download/Field.Site", Some(&planner.token), None).await;
    assert_eq!(status.as_u16(), 200);
    let record = serde_json::json!({ "device": "d1", "mode": "all", "upload_id": "u-1", "duration_ms": 40, "objects_up": 1, "objects_down": 1, "errors": 0 });
    let (status, _) =
        server.call(Method::POST, "/v1/sync-report", Some(&planner.token), Some(record)).await;
    assert_eq!(status.as_u16(), 204);
    let (_, metrics) = server.call(Method::GET, "/metrics", None, None).await;
    let text = metrics.as_str().unwrap();
    for line in [
        "ferry_uploads_total 2",
        "ferry_objects_applied_total 1",
        "ferry_objects_failed_total 1",
        "ferry_failures_waiting 1",
        "ferry_upload_seconds_count 2",
        "ferry_upload_objects_bucket{le=\"1\"} 2",
        "ferry_download_page_seconds_count 1",
        "ferry_download_page_objects_count 1",
        "ferry_syncs_total{mode=\"all\"} 1",
        "ferry_sync_seconds_bucket{le=\"0.05\"} 1",
        "ferry_requests_total{route=\"/v1/upload\",status=\"200\"} 2",
        "ferry_request_seconds_count{route=\"/v1/download/{entity}\"} 1",
        "ferry_live_devices 0",
    ] {
        assert!(text.contains(line), "no `{line}` in\n{text}");
    }
}
