//! What the web console stands on: the overview, a failure beside the object's current state,
//! a replay with corrected values, users' disabled flag, and the console's own files.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::harness::{TestServer, backends, create, id};

#[tokio::test]
async fn the_overview_counts_users_devices_failures_and_syncs_per_minute() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let admin = server.user("ada", &["Admin"]).await;
        let planner = server.user("pia", &["Planner"]).await;
        let record = json!({ "device": "d1", "mode": "all", "upload_id": "", "duration_ms": 5, "objects_up": 0, "objects_down": 0, "errors": 0 });
        for _ in 0..2 {
            let (status, _) = server
                .call(Method::POST, "/v1/sync-report", Some(&planner.token), Some(record.clone()))
                .await;
            assert_eq!(status, StatusCode::NO_CONTENT);
        }
        let (status, overview) =
            server.call(Method::GET, "/v1/overview", Some(&admin.token), None).await;
        assert_eq!(status, StatusCode::OK, "{overview}");
        assert_eq!(overview["users"], 2, "{overview}");
        assert_eq!(overview["devices"], 1, "{overview}");
        assert_eq!(overview["failures_waiting"], 0, "{overview}");
        assert_eq!(overview["model_version"], server.server.model().version().to_string());
        assert!(overview["roles"].as_array().unwrap().contains(&json!("Planner")), "{overview}");
        let minutes = overview["syncs_per_minute"].as_array().unwrap();
        assert_eq!(minutes.len(), ferry_server::OVERVIEW_MINUTES as usize);
        assert_eq!(minutes.last().unwrap()[1], 2, "this minute's syncs: {overview}");
        let (status, _) =
            server.call(Method::GET, "/v1/overview", Some(&planner.token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "administrators only");
    }
}

#[tokio::test]
async fn a_failure_shows_the_current_object_and_replays_with_corrected_values() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let admin = server.user("ada", &["Admin"]).await;
        let planner = server.user("pia", &["Planner"]).await;
        let order = |n: u128, number: i64| {
            create("Field.WorkOrder", &id(n), json!({ "Number": number, "Title": "Pump" }))
        };
        server.upload(&planner, "u-1", json!([order(1, 7)])).await;
        let (_, answer) = server.upload(&planner, "u-2", json!([order(2, 7)])).await;
        let failure = answer["outcomes"][0]["failure_id"].as_i64().expect("a duplicate number");
        let path = format!("/v1/failures/{failure}");
        let (status, shown) = server.call(Method::GET, &path, Some(&admin.token), None).await;
        assert_eq!(status, StatusCode::OK, "{shown}");
        assert_eq!(shown["attempted"]["Number"], 7);
        assert!(shown.get("current").is_none(), "the object was never created: {shown}");
        // An edit the rules still refuse changes nothing; a good one applies.
        let replay = format!("{path}/replay");
        let again = json!({ "values": { "Number": 7 } });
        let (_, refused) =
            server.call(Method::POST, &replay, Some(&admin.token), Some(again)).await;
        assert_eq!(refused["outcome"]["outcome"], "failed", "{refused}");
        let (status, bad) = server
            .call(Method::POST, &replay, Some(&admin.token), Some(json!({ "vals": {} })))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        let fixed = json!({ "values": { "Number": 8 } });
        let (_, applied) =
            server.call(Method::POST, &replay, Some(&admin.token), Some(fixed)).await;
        assert_eq!(applied["outcome"]["outcome"], "applied", "{applied}");
        let (_, shown) = server.call(Method::GET, &path, Some(&admin.token), None).await;
        assert!(shown["replayed_at"].is_string(), "{shown}");
        assert_eq!(shown["current"]["Number"], 8, "{shown}");
        assert_eq!(shown["current"]["Title"], "Pump", "{shown}");
        assert_eq!(shown["replayed_by"], "ada", "{shown}");
        assert_eq!(shown["replayed_values"], json!({ "Number": 8 }), "{shown}");
        assert_eq!(shown["attempted"]["Number"], 7, "what the device attempted stays as it was");
        let (_, overview) =
            server.call(Method::GET, "/v1/overview", Some(&admin.token), None).await;
        assert_eq!(overview["failures_waiting"], 0, "{overview}");
        // The planner's next download has it.
        let orders = server.download_all(&planner, "Field.WorkOrder", None).await;
        assert!(orders.objects.contains_key(&id(2)), "{:?}", orders.objects.keys());
    }
}

#[tokio::test]
async fn users_show_whether_they_are_disabled() {
    let server = TestServer::start(crate::harness::Backend::Sqlite).await;
    let admin = server.user("ada", &["Admin"]).await;
    server.user("tom", &["Technician"]).await;
    let (status, _) = server
        .call(
            Method::PUT,
            "/v1/users/tom/disabled",
            Some(&admin.token),
            Some(json!({ "disabled": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, users) = server.call(Method::GET, "/v1/users", Some(&admin.token), None).await;
    let tom = users["users"].as_array().unwrap().iter().find(|u| u["name"] == "tom").unwrap();
    assert_eq!(tom["disabled"], true, "{users}");
    let ada = users["users"].as_array().unwrap().iter().find(|u| u["name"] == "ada").unwrap();
    assert_eq!(ada["disabled"], false, "{users}");
}

#[tokio::test]
async fn the_console_is_served_with_the_server() {
    let server = TestServer::start(crate::harness::Backend::Sqlite).await;
    let request = axum::http::Request::get("/console").body(axum::body::Body::empty()).unwrap();
    let answer = tower::ServiceExt::oneshot(server.server.router(), request).await.unwrap();
    let policy = answer.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"));
    let (status, page) = server.call(Method::GET, "/console", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.as_str().unwrap().contains("<title>Ferry console</title>"), "{page}");
    let (status, _) = server.call(Method::GET, "/console/console.js", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server.call(Method::GET, "/console/secrets.txt", None, None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not-found")));
}
