//! The live stream: a device's hints that entities it downloads changed.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use ferry_model::samples;
use http_body_util::BodyExt as _;
use serde_json::json;
use tower::ServiceExt as _;

use crate::harness::{Backend, SignedIn, TestServer, backends, create, id};

/// An open stream: its body, and the text read from it not yet taken as events.
struct Stream {
    body: Body,
    pending: String,
}

impl Stream {
    async fn open(server: &ferry_server::Server, who: &SignedIn) -> Stream {
        let request = Request::builder()
            .method(Method::GET)
            .uri("/v1/live")
            .header("authorization", format!("Bearer {}", who.token))
            .body(Body::empty())
            .unwrap();
        let response = server.router().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(kind, "text/event-stream");
        Stream { body: response.into_body(), pending: String::new() }
    }

    /// The next event's name and data (comments skipped); `None` when none comes in 5 s.
    async fn next(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                let field = |name: &str| {
                    block.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned())
                };
                if let Some(event) = field("event:") {
                    return Some((event, field("data:").unwrap_or_default()));
                }
                continue;
            }
            let frame = tokio::time::timeout(Duration::from_secs(5), self.body.frame()).await;
            let frame = frame.ok()??.unwrap();
            if let Ok(data) = frame.into_data() {
                self.pending.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
    }

    /// The entities of the next `changed` event that names `entity`, skipping others (a
    /// listener that just connected may say everything changed).
    async fn changed_with(&mut self, entity: &str) -> Vec<String> {
        loop {
            let (event, data) = self.next().await.expect("a hint");
            if event != "changed" {
                continue;
            }
            let hint: ferry_protocol::LiveHint = serde_json::from_str(&data).unwrap();
            if hint.entities.iter().any(|e| e == entity) {
                return hint.entities;
            }
        }
    }
}

#[tokio::test]
async fn a_commit_hints_the_streams_of_users_who_download_what_changed() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let planner = server.user("pia", &["Planner"]).await;
        let tech = server.user("tom", &["Technician"]).await;
        let mut stream = Stream::open(&server.server, &planner).await;
        assert_eq!(stream.next().await.unwrap().0, "ready");

        // A technician's feedback is never downloaded: the planner hears nothing of it. The
        // planner's own work order comes next, and alone.
        let feedback = create("Field.Feedback", &id(1), json!({ "Message": "Pump fixed" }));
        let (status, body) = server.upload(&tech, "u-1", json!([feedback])).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let order = create("Field.WorkOrder", &id(2), json!({ "Number": 1, "Title": "Pump" }));
        let (status, body) = server.upload(&planner, "u-2", json!([order])).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let entities = stream.changed_with("Field.WorkOrder").await;
        assert!(!entities.iter().any(|e| e == "Field.Feedback"), "{entities:?}");

        // Without a token, no stream.
        let (status, _) = server.call(Method::GET, "/v1/live", None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, metrics) = server.call(Method::GET, "/metrics", None, None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(metrics.as_str().unwrap().contains("ferry_live_devices 1"), "{metrics}");
    }
}

/// Two server processes on one PostgreSQL: a commit in one wakes the devices of the other.
#[tokio::test]
async fn a_commit_in_one_server_process_wakes_streams_on_another() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let server = TestServer::start(Backend::Postgres).await;
    let planner = server.user("pia", &["Planner"]).await;
    let other = ferry_server::Server::open(ferry_server::Config {
        model_text: samples::FIELD_SERVICE.to_owned(),
        database: server.database.clone(),
        files: server.files.clone(),
        limits: Default::default(),
        handlers: Default::default(),
        clock: server.clock.clone(),
        identity: None,
        app: None,
    })
    .await
    .unwrap();
    let mut stream = Stream::open(&other, &planner).await;
    assert_eq!(stream.next().await.unwrap().0, "ready");
    let site = create("Field.Site", &id(3), json!({ "Name": "Depot" }));
    let (status, body) = server.upload(&planner, "u-3", json!([site])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A hint naming the site (or everything, from a listener that connected just now).
    stream.changed_with("Field.Site").await;
}
