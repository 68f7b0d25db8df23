//! File contents: stored by hash before the upload that references them, linked at commit,
//! read back by those who may read the object, and kept with the failure of a rejected object.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use ferry_server::{Handlers, Limits};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};

use crate::harness::{SignedIn, TestServer, backends, create, fixture, id, outcomes, update};

pub(crate) fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

impl TestServer {
    pub(crate) async fn put_file(
        &self,
        who: &SignedIn,
        hash: &str,
        content: &[u8],
    ) -> (StatusCode, Json) {
        let path = format!("/v1/files/{hash}");
        self.raw(Method::PUT, &path, Some(&who.token), Body::from(content.to_vec())).await
    }

    async fn missing(&self, who: &SignedIn, hashes: &[&str]) -> Json {
        let body = json!({ "hashes": hashes });
        let (status, answer) =
            self.call(Method::POST, "/v1/files/missing", Some(&who.token), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["missing"].clone()
    }
}

/// A technician's visit to one of their work orders, for photos to hang on.
async fn visit(server: &TestServer, technician: &SignedIn, order: &str, n: u128) -> String {
    let visit = id(n);
    let values = json!({
        "StartedAt": "2026-11-23T09:00:00Z",
        "Field.Visit_WorkOrder": order,
        "Field.Visit_Technician": technician.id.to_string(),
    });
    let (_, response) = server
        .upload(technician, &format!("v{n}"), json!([create("Field.Visit", &visit, values)]))
        .await;
    assert_eq!(outcomes(&response), ["applied"], "{response}");
    visit
}

fn photo(content: &[u8], visit: &str) -> Json {
    json!({
        "FileName": "pump.jpg",
        "FileSize": content.len(),
        "ContentHash": sha256(content),
        "Field.Photo_Visit": visit,
    })
}

#[tokio::test]
async fn contents_are_stored_by_hash_and_linked_at_commit() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let f = fixture(&server).await;
        let visit = visit(&server, &f.alice, &f.orders[0], 700).await;
        let content = b"a photo of the pump".as_slice();
        let hash = sha256(content);
        let other = sha256(b"never sent");
        assert_eq!(server.missing(&f.alice, &[&hash, &other]).await, json!([hash, other]));

        // Without the content, the object is rejected and names what is missing.
        let (_, early) = server
            .upload(
                &f.alice,
                "p0",
                json!([create("Field.Photo", &id(800), photo(content, &visit))]),
            )
            .await;
        assert!(outcomes(&early)[0].contains("was never uploaded"), "{early}");

        let (status, stored) = server.put_file(&f.alice, &hash, content).await;
        assert_eq!((status, &stored["size"]), (StatusCode::OK, &json!(content.len())), "{stored}");
        assert_eq!(server.missing(&f.alice, &[&hash, &other]).await, json!([other]));
        // Sending it again changes nothing.
        assert_eq!(server.put_file(&f.alice, &hash, content).await.0, StatusCode::OK);

        let mut wrong_size = photo(content, &visit);
        wrong_size["FileSize"] = json!(3);
        let (_, response) = server
            .upload(
                &f.alice,
                "p1",
                json!([
                    create("Field.Photo", &id(801), photo(content, &visit)),
                    create("Field.Photo", &id(802), wrong_size),
                ]),
            )
            .await;
        let results = outcomes(&response);
        assert_eq!(results[0], "applied", "{response}");
        assert!(results[1].contains("`FileSize`") && results[1].contains("19 bytes"), "{response}");

        // The content is read back by those who may read the object, as it was stored.
        let path = format!("/v1/files/Field.Photo/{}", id(801));
        let (status, body) =
            server.raw(Method::GET, &path, Some(&f.alice.token), Body::empty()).await;
        assert_eq!((status, body), (StatusCode::OK, json!("a photo of the pump")));
        let (status, _) =
            server.raw(Method::GET, &path, Some(&f.planner.token), Body::empty()).await;
        assert_eq!(status, StatusCode::OK, "planners read photos");
        let (status, _) = server.raw(Method::GET, &path, Some(&f.bob.token), Body::empty()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "not bob's visit");
        let stale = format!("{path}?hash={other}");
        let (status, body) =
            server.raw(Method::GET, &stale, Some(&f.alice.token), Body::empty()).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");

        // A new content replaces the old one on the object.
        let newer = b"a sharper photo".as_slice();
        assert_eq!(server.put_file(&f.alice, &sha256(newer), newer).await.0, StatusCode::OK);
        let change = json!({ "ContentHash": sha256(newer), "FileSize": newer.len() });
        let (_, response) =
            server.upload(&f.alice, "p2", json!([update("Field.Photo", &id(801), change)])).await;
        assert_eq!(outcomes(&response), ["applied"]);
        let (_, body) = server.raw(Method::GET, &path, Some(&f.alice.token), Body::empty()).await;
        assert_eq!(body, json!("a sharper photo"));
    }
}

#[tokio::test]
async fn bad_contents_are_refused_and_change_nothing() {
    for backend in backends() {
        let limits = Limits { file_bytes_max: 16, ..Limits::default() };
        let server = TestServer::start_with(
            backend,
            ferry_model::samples::FIELD_SERVICE,
            Handlers::default(),
            limits,
        )
        .await;
        let f = fixture(&server).await;
        let content = b"sixteen bytes ok".as_slice();
        let (status, body) = server.put_file(&f.alice, &sha256(b"other bytes"), content).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["message"].as_str().unwrap().contains(&sha256(content)), "{body}");
        let (status, body) = server.put_file(&f.alice, "not-a-hash", content).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let large = b"seventeen bytes!!".as_slice();
        let (status, body) = server.put_file(&f.alice, &sha256(large), large).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        assert_eq!(
            server.missing(&f.alice, &[&sha256(content), &sha256(large)]).await,
            json!([sha256(content), sha256(large)]),
            "nothing was stored"
        );
        let (status, _) = server.put_file(&f.alice, &sha256(content), content).await;
        assert_eq!(status, StatusCode::OK, "exactly the limit is allowed");
        let (status, _) = server
            .raw(Method::PUT, &format!("/v1/files/{}", sha256(content)), None, Body::empty())
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, body) = server
            .raw(
                Method::GET,
                &format!("/v1/files/Field.Site/{}", f.site),
                Some(&f.alice.token),
                Body::empty(),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["message"].as_str().unwrap().contains("not a file entity"), "{body}");
        let (status, _) = server
            .call(
                Method::POST,
                "/v1/files/missing",
                Some(&f.alice.token),
                Some(json!({ "hashes": ["x"] })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}

/// A rejected file object's content stays on the server with its `SynchronizationError`, for
/// administrators to read and for a replay.
#[tokio::test]
async fn the_content_of_a_rejected_file_object_is_kept_with_its_failure() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let f = fixture(&server).await;
        let bobs_visit = visit(&server, &f.bob, &f.orders[2], 701).await;
        let content = b"a photo for a visit that is not alice's".as_slice();
        assert_eq!(server.put_file(&f.alice, &sha256(content), content).await.0, StatusCode::OK);
        let (_, response) = server
            .upload(
                &f.alice,
                "p3",
                json!([create("Field.Photo", &id(803), photo(content, &bobs_visit))]),
            )
            .await;
        assert_eq!(response["outcomes"][0]["outcome"], "failed", "{response}");
        let failure = response["outcomes"][0]["failure_id"].as_i64().unwrap();
        let path = format!("/v1/failures/{failure}/file");
        let (status, body) =
            server.raw(Method::GET, &path, Some(&f.admin.token), Body::empty()).await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, json!("a photo for a visit that is not alice's"))
        );
        let (status, _) = server.raw(Method::GET, &path, Some(&f.alice.token), Body::empty()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn whether_the_server_holds_another_users_content_is_never_told() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let f = fixture(&server).await;
        let secret = b"the contract scan alice took";
        let hash = sha256(secret);
        assert_eq!(server.put_file(&f.alice, &hash, secret).await.0, StatusCode::OK);
        assert_eq!(server.missing(&f.alice, &[&hash]).await, json!([]));
        // Bob asks: the server holds it, but he never sent it, so he is told to send it, as
        // for a content the server never saw.
        let unknown = sha256(b"never sent by anyone");
        assert_eq!(server.missing(&f.bob, &[&hash, &unknown]).await, json!([hash, unknown]));
        // Claiming it without its bytes is refused as a content that does not match.
        let (status, answer) = server.put_file(&f.bob, &hash, b"guess").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        // Naming it in an object is refused exactly as naming a content never uploaded.
        let visit_of_bob = visit(&server, &f.bob, &f.orders[2], 920).await;
        let (_, response) = server
            .upload(
                &f.bob,
                "claims",
                json!([
                    create("Field.Photo", &id(921), photo(secret, &visit_of_bob)),
                    create("Field.Photo", &id(922), photo(b"never sent by anyone", &visit_of_bob)),
                ]),
            )
            .await;
        let reasons = outcomes(&response);
        let shape = |reason: &str, photo: u128, content: &str| {
            reason.replace(&id(photo), "ID").replace(content, "HASH")
        };
        assert!(reasons[0].contains("was never uploaded"), "{response}");
        assert_eq!(shape(&reasons[0], 921, &hash), shape(&reasons[1], 922, &unknown));
        // Once he sends the bytes himself, it is his to name.
        assert_eq!(server.put_file(&f.bob, &hash, secret).await.0, StatusCode::OK);
        assert_eq!(server.missing(&f.bob, &[&hash]).await, json!([]));
    }
}

/// The lifecycle's jobs keep what something needs and remove the rest: a content a photo refers
/// to, one a failure names, one sent within the grace period (its upload on the way) stay; one
/// whose photo was deleted goes once the grace period is over. Old history goes; a failure not
/// replayed stays, whatever its age.
#[tokio::test]
async fn the_lifecycle_removes_only_what_nothing_needs() {
    for backend in backends() {
        let limits =
            Limits { file_grace_hours: 24, history_retention_days: 30, ..Limits::default() };
        let server = TestServer::start_with(
            backend,
            ferry_model::samples::FIELD_SERVICE,
            Handlers::default(),
            limits,
        )
        .await;
        let f = fixture(&server).await;
        let visit = visit(&server, &f.alice, &f.orders[0], 710).await;
        let kept = b"a photo that stays".as_slice();
        let gone = b"a photo whose object is deleted".as_slice();
        let rejected = b"a photo of a rejected object".as_slice();
        for content in [kept, gone, rejected] {
            assert_eq!(
                server.put_file(&f.alice, &sha256(content), content).await.0,
                StatusCode::OK
            );
        }
        let photos = json!([
            create("Field.Photo", &id(810), photo(kept, &visit)),
            create("Field.Photo", &id(811), photo(gone, &visit)),
        ]);
        let (_, response) = server.upload(&f.alice, "l1", photos).await;
        assert_eq!(outcomes(&response), ["applied", "applied"], "{response}");
        let bobs_visit = visit_of(&server, &f.bob, &f.orders[2], 711).await;
        let (_, response) = server
            .upload(
                &f.alice,
                "l2",
                json!([create("Field.Photo", &id(812), photo(rejected, &bobs_visit))]),
            )
            .await;
        assert_eq!(response["outcomes"][0]["outcome"], "failed", "{response}");
        let (_, response) = server
            .upload(&f.alice, "l3", json!([crate::harness::delete("Field.Photo", &id(811))]))
            .await;
        assert_eq!(outcomes(&response), ["deleted"], "{response}");
        let held = |content: &[u8]| {
            let hash = sha256(content);
            server.files.join(&hash[..2]).join(&hash).exists()
        };
        // Within the grace period nothing goes.
        let collected = server.server.collect().await.unwrap();
        assert_eq!(collected.contents, 0, "{collected:?}");
        assert!(held(gone));
        // A day and an hour later: the deleted photo's content goes, and only it.
        *server.clock.0.lock().unwrap() = server.clock.now_plus_seconds(25 * 3600);
        let collected = server.server.collect().await.unwrap();
        assert_eq!(
            (collected.contents, collected.content_bytes),
            (1, gone.len() as u64),
            "{backend:?}"
        );
        assert!(!held(gone) && held(kept) && held(rejected), "{backend:?}");
        // Forty days on, the history of those uploads goes; the failure, not replayed, stays.
        *server.clock.0.lock().unwrap() = server.clock.now_plus_days(40);
        let collected = server.server.collect().await.unwrap();
        assert!(collected.history >= 4, "{collected:?}");
        assert_eq!(collected.failures, 0, "{collected:?}");
        let admin = server.user("olga", &["Admin"]).await;
        let (_, failures) =
            server.call(Method::GET, "/v1/failures", Some(&admin.token), None).await;
        assert_eq!(failures["failures"].as_array().map(Vec::len), Some(1), "{failures}");
        let (_, metrics) = server.call(Method::GET, "/metrics", None, None).await;
        let metrics = metrics.as_str().unwrap().to_owned();
        assert!(metrics.contains("ferry_lifecycle_removed_total{job=\"contents\"} 1"), "{metrics}");
    }
}

/// [`visit`] of another technician.
async fn visit_of(server: &TestServer, technician: &SignedIn, order: &str, n: u128) -> String {
    visit(server, technician, order, n).await
}
