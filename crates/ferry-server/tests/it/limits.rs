//! The limits a server on a network needs: requests and connections at once, deadlines for a
//! request's head, its handling and a file content's pauses, and sign-ins per client address.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use ferry_model::samples;
use ferry_server::{Handlers, Limits};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tower::ServiceExt as _;

use crate::harness::{Backend, PASSWORD, TestServer, backends};

/// A server whose `wait` action holds its request until the test lets it go.
struct Held {
    started: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
}

fn holding() -> (Held, Handlers) {
    let held = Held {
        started: Arc::new(tokio::sync::Notify::new()),
        release: Arc::new(tokio::sync::Notify::new()),
    };
    let (started, release) = (Arc::clone(&held.started), Arc::clone(&held.release));
    let handlers = Handlers::default().action("wait", move |_call| {
        let (started, release) = (Arc::clone(&started), Arc::clone(&release));
        async move {
            started.notify_one();
            release.notified().await;
            Ok(json!({ "waited": true }))
        }
    });
    (held, handlers)
}

async fn start(backend: Backend, handlers: Handlers, limits: Limits) -> TestServer {
    TestServer::start_with(backend, samples::FIELD_SERVICE, handlers, limits).await
}

#[tokio::test]
async fn requests_beyond_the_limit_in_flight_are_answered_503_at_once() {
    for backend in backends() {
        let (held, handlers) = holding();
        let server =
            start(backend, handlers, Limits { requests_in_flight_max: 1, ..Limits::default() })
                .await;
        let planner = server.user("pat", &["Planner"]).await;
        let router = server.server.router();
        let token = planner.token.clone();
        let waiting = tokio::spawn(async move {
            let request = Request::post("/v1/actions/wait")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Body::from(r#"{"parameters":{}}"#))
                .unwrap();
            router.oneshot(request).await.unwrap().status()
        });
        held.started.notified().await;
        let (status, body) = server.call(Method::GET, "/health", None, None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["message"], "the server is handling 1 requests; try again in a moment");
        held.release.notify_one();
        assert_eq!(waiting.await.unwrap(), StatusCode::OK);
        let (status, _) = server.call(Method::GET, "/health", None, None).await;
        assert_eq!(status, StatusCode::OK, "the place is free again");
    }
}

#[tokio::test]
async fn a_request_past_the_handlers_deadline_is_answered_503() {
    for backend in backends() {
        let (_held, handlers) = holding();
        let server =
            start(backend, handlers, Limits { handler_timeout_ms: 200, ..Limits::default() }).await;
        let planner = server.user("pat", &["Planner"]).await;
        let (status, body) = server
            .call(
                Method::POST,
                "/v1/actions/wait",
                Some(&planner.token),
                Some(json!({ "parameters": {} })),
            )
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body["message"].as_str().unwrap().contains("longer than 200 ms"), "{body}");
    }
}

/// `serve` on 127.0.0.1 with `limits`; the address, and the sender that stops it.
async fn serving(limits: Limits) -> (TestServer, SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let server = start(Backend::Sqlite, Handlers::default(), limits).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(ferry_server::serve(listener, server.server.clone(), async {
        let _ = stopped.await;
    }));
    (server, address, stop)
}

/// Sends `request` on a new connection and reads the answer until the server closes it.
async fn exchange(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(20), stream.read_to_end(&mut answer));
    read.await.expect("the server answers or closes").unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: ferry\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn connections_beyond_the_limit_are_answered_503_and_closed() {
    let (_server, address, stop) =
        serving(Limits { connections_max: 2, ..Limits::default() }).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(address).await.unwrap();
        // A kept-alive request answered: the connection holds its place.
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: ferry\r\n\r\n").await.unwrap();
        let mut answer = [0u8; 1024];
        let read = stream.read(&mut answer).await.unwrap();
        assert!(answer[..read].starts_with(b"HTTP/1.1 200"));
        open.push(stream);
    }
    let refused = exchange(address, HEALTH).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("the server has its 2 connections open"), "{refused}");
    drop(open);
    // The places come free as the server sees the connections close.
    let mut answered = String::new();
    for _ in 0..1_000 {
        answered = exchange(address, HEALTH).await;
        if answered.starts_with("HTTP/1.1 200") {
            break;
        }
    }
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    stop.send(()).unwrap();
}

#[tokio::test]
async fn a_request_head_sent_too_slowly_loses_its_connection() {
    let limits = Limits { request_head_timeout_ms: 300, ..Limits::default() };
    let (_server, address, stop) = serving(limits).await;
    // Half a head, then nothing: the server closes the connection, never answering 200.
    let answer = exchange(address, b"GET /health HTTP/1.1\r\nHost: fe").await;
    assert!(!answer.contains("200 OK"), "{answer}");
    stop.send(()).unwrap();
}

#[tokio::test]
async fn a_file_content_that_pauses_too_long_is_refused() {
    let limits = Limits { request_body_idle_timeout_ms: 300, ..Limits::default() };
    let (server, address, stop) = serving(limits).await;
    let planner = server.user("pat", &["Planner"]).await;
    let hash = "ab".repeat(32);
    let head = format!(
        "PUT /v1/files/{hash} HTTP/1.1\r\nHost: ferry\r\nAuthorization: Bearer {}\r\nContent-Length: 100\r\n\r\nten bytes!",
        planner.token
    );
    let answer = exchange(address, head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("the content paused for more than 300 ms"), "{answer}");
    stop.send(()).unwrap();
}

/// One client address trying many user names is limited as a whole; another address is not.
#[tokio::test]
async fn sign_ins_are_limited_per_client_address_whatever_the_name() {
    for backend in backends() {
        let limits = Limits { sign_in_attempts_per_address_per_minute: 3, ..Limits::default() };
        let server = start(backend, Handlers::default(), limits).await;
        server.server.add_user("alice", &["Technician".to_owned()], PASSWORD).await.unwrap();
        let attempt = |from: [u8; 4], user: String| {
            let router = server.server.router();
            async move {
                let mut request = Request::post("/v1/sign-in")
                    .header("content-type", "application/json")
                    .body(Body::from(json!({ "user": user, "password": "guess" }).to_string()))
                    .unwrap();
                let peer = SocketAddr::from((from, 40_000));
                request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                let response = router.oneshot(request).await.unwrap();
                let status = response.status();
                let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
                (status, String::from_utf8_lossy(&body).into_owned())
            }
        };
        for n in 0..3 {
            let (status, _) = attempt([10, 0, 0, 7], format!("guess{n}")).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        let (status, body) = attempt([10, 0, 0, 7], "alice".to_owned()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert!(body.contains("from this address"), "{body}");
        let (status, _) = attempt([10, 0, 0, 8], "alice".to_owned()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "another address is not limited");
    }
}
