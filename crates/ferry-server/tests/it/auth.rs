//! Sign-in, tokens and the limits around them.

use axum::http::{Method, StatusCode};
use ferry_server::Limits;
use serde_json::json;

use crate::harness::{PASSWORD, TestServer, backends};

#[tokio::test]
async fn sign_in_gives_a_token_that_opens_the_api() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let alice = server.user("alice", &["Technician"]).await;
        let (status, model) = server.call(Method::GET, "/v1/model", Some(&alice.token), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(model["version"], server.server.model().version().to_string());
        assert!(model["text"].as_str().unwrap().contains("Field.WorkOrder"));
    }
}

#[tokio::test]
async fn wrong_password_unknown_user_and_missing_token_are_refused_alike() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.user("alice", &["Technician"]).await;
        for (user, password) in [("alice", "wrong password"), ("nobody", PASSWORD)] {
            let (status, mut body) = sign_in(&server, user, password).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            // Alike but for the request's own id, which every error body names.
            let id = body.as_object_mut().unwrap().remove("request_id");
            assert!(id.as_ref().and_then(|id| id.as_str()).is_some_and(|id| id.len() == 16));
            assert_eq!(
                body,
                json!({ "code": "unauthorized", "message": "wrong user name or password", "details": null })
            );
        }
        let (status, body) = server.call(Method::GET, "/v1/model", None, None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized"))
        );
        let (status, _) = server.call(Method::GET, "/v1/model", Some("forged-token"), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn tokens_expire() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let alice = server.user("alice", &["Technician"]).await;
        let later = server.clock.now_plus_days(31);
        *server.clock.0.lock().unwrap() = later;
        let (status, body) = server.call(Method::GET, "/v1/model", Some(&alice.token), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["message"], "the token has expired: sign in again");
    }
}

/// Spends a refresh token; the answer's status and body.
async fn sign_in(
    server: &TestServer,
    user: &str,
    password: &str,
) -> (StatusCode, serde_json::Value) {
    let body = json!({ "user": user, "password": password });
    server.call(Method::POST, "/v1/sign-in", None, Some(body)).await
}

async fn refresh(server: &TestServer, refresh_token: &str) -> (StatusCode, serde_json::Value) {
    let body = json!({ "refresh_token": refresh_token });
    server.call(Method::POST, "/v1/sign-in/refresh", None, Some(body)).await
}

fn field(body: &serde_json::Value, key: &str) -> String {
    body[key].as_str().unwrap_or_else(|| panic!("no `{key}` in {body}")).to_owned()
}

/// Moves the test clock on by `seconds`.
fn wait(server: &TestServer, seconds: i64) {
    let later = server.clock.now_plus_seconds(seconds);
    *server.clock.0.lock().unwrap() = later;
}

#[tokio::test]
async fn an_access_token_lasts_minutes_and_its_refresh_token_gets_the_next_one_once() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let limits = Limits::default();
        let reads = |token: String| {
            let server = &server;
            async move { server.call(Method::GET, "/v1/model", Some(&token), None).await.0 }
        };
        let signed_at = server.clock.now_plus_seconds(0);
        let tess = server.user("tess", &["Technician"]).await;
        let (status, _) = refresh(&server, &tess.refresh).await;
        assert_eq!(status, StatusCode::OK, "a refresh token is good before the access token ends");
        // That refresh replaced tess's session's tokens; sign in again for a session to watch.
        let (_, signed) = sign_in(&server, "tess", PASSWORD).await;
        let expires = ferry_model::Timestamp::parse(&field(&signed, "expires_at")).unwrap();
        let lifetime = expires.unix_micros() - signed_at.unix_micros();
        assert_eq!(lifetime / 1_000_000, limits.access_token_lifetime_seconds, "{signed}");
        let refresh_expires =
            ferry_model::Timestamp::parse(&field(&signed, "refresh_expires_at")).unwrap();
        let lifetime = refresh_expires.unix_micros() - signed_at.unix_micros();
        assert_eq!(lifetime / 1_000_000, limits.refresh_token_lifetime_seconds);

        // Past its lifetime the access token is refused; the refresh token gets the next one.
        let (first, first_refresh) = (field(&signed, "token"), field(&signed, "refresh_token"));
        wait(&server, limits.access_token_lifetime_seconds + 1);
        assert_eq!(reads(first.clone()).await, StatusCode::UNAUTHORIZED);
        let (status, second) = refresh(&server, &first_refresh).await;
        assert_eq!(status, StatusCode::OK, "{second}");
        assert_eq!(field(&second, "user_id"), tess.id.to_string());
        assert_ne!(field(&second, "refresh_token"), first_refresh, "the refresh token rotates");
        assert_eq!(reads(field(&second, "token")).await, StatusCode::OK);

        // Its answer lost, the device spends the same refresh token again, even an hour later:
        // it gets a new pair, and the pair of the lost answer is no longer good.
        wait(&server, 3_600);
        let (status, third) = refresh(&server, &first_refresh).await;
        assert_eq!(status, StatusCode::OK, "{third}");
        assert_eq!(reads(field(&second, "token")).await, StatusCode::UNAUTHORIZED);
        assert_eq!(reads(field(&third, "token")).await, StatusCode::OK);

        // The newest refresh token goes on; once it is spent, the one spent before it is a
        // replay.
        let (status, fourth) = refresh(&server, &field(&third, "refresh_token")).await;
        assert_eq!(status, StatusCode::OK, "{fourth}");
        let (status, body) = refresh(&server, &first_refresh).await;
        assert_eq!(
            (status, field(&body, "message")),
            (
                StatusCode::UNAUTHORIZED,
                "the refresh token was already spent: the session is ended, sign in again"
                    .to_owned()
            )
        );
        // The replay ended the session for whoever held it.
        assert_eq!(reads(field(&fourth, "token")).await, StatusCode::UNAUTHORIZED);
        let (status, body) = refresh(&server, &field(&fourth, "refresh_token")).await;
        assert_eq!(
            (status, field(&body, "message")),
            (StatusCode::UNAUTHORIZED, "unknown token: sign in again".to_owned())
        );

        // A session unused past the refresh token's lifetime has ended.
        let (_, signed) = sign_in(&server, "tess", PASSWORD).await;
        wait(&server, limits.refresh_token_lifetime_seconds + 1);
        let (status, body) = refresh(&server, &field(&signed, "refresh_token")).await;
        assert_eq!(
            (status, field(&body, "message")),
            (StatusCode::UNAUTHORIZED, "the token has expired: sign in again".to_owned())
        );
    }
}

#[tokio::test]
async fn a_refresh_token_copied_and_spent_elsewhere_ends_the_session_for_both() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let tess = server.user("tess", &["Technician"]).await;
        // A thief copies the refresh token and spends it first.
        let (status, thief) = refresh(&server, &tess.refresh).await;
        assert_eq!(status, StatusCode::OK);
        let (status, thief_next) = refresh(&server, &field(&thief, "refresh_token")).await;
        assert_eq!(status, StatusCode::OK);
        // The device spends the token it holds: spent, and its successor spent too: a replay.
        let (status, _) = refresh(&server, &tess.refresh).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let token = field(&thief_next, "token");
        let (status, _) = server.call(Method::GET, "/v1/model", Some(&token), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "the thief's session ended too");
        let (status, _) = refresh(&server, &field(&thief_next, "refresh_token")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // Forged refresh tokens: a changed secret under a real session ends it as a replay;
        // shapes that name no session are unknown. None gets an access token.
        let (_, signed) = sign_in(&server, "tess", PASSWORD).await;
        let genuine = field(&signed, "refresh_token");
        let (session, _) = genuine.split_once('_').unwrap();
        for forged in [
            format!("{session}_00"),
            "".to_owned(),
            "abc".to_owned(),
            "zz_zz".to_owned(),
            format!("{session}_"),
        ] {
            let (status, _) = refresh(&server, &forged).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "`{forged}`");
        }
        assert_eq!(refresh(&server, &genuine).await.0, StatusCode::UNAUTHORIZED);
        // A body that is not a refresh request is refused as bad input.
        let (status, _) = server
            .call(Method::POST, "/v1/sign-in/refresh", None, Some(json!({ "token": genuine })))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // Disabled, or a new password: no refresh token of the user gets an access token.
        let admin = server.user("root", &["Admin"]).await;
        for (path, body) in [
            ("/v1/users/tess/disabled", json!({ "disabled": true })),
            ("/v1/users/tess/password", json!({ "password": "a new password" })),
        ] {
            admin_sets(
                &server,
                &admin.token,
                "/v1/users/tess/disabled",
                json!({ "disabled": false }),
            )
            .await;
            let (_, signed) = sign_in(&server, "tess", PASSWORD).await;
            admin_sets(&server, &admin.token, path, body).await;
            let (status, _) = refresh(&server, &field(&signed, "refresh_token")).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "after {path}");
        }
    }
}

async fn admin_sets(server: &TestServer, token: &str, path: &str, body: serde_json::Value) {
    let (status, answer) = server.call(Method::PUT, path, Some(token), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{path}: {answer}");
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_minute() {
    for backend in backends() {
        let limits = Limits { sign_in_attempts_per_minute: 3, ..Limits::default() };
        let server = TestServer::start_with(
            backend,
            ferry_model::samples::FIELD_SERVICE,
            Default::default(),
            limits,
        )
        .await;
        server.user("alice", &["Technician"]).await; // one attempt
        for _ in 0..2 {
            let (status, _) = sign_in(&server, "alice", "nope").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        let (status, body) = sign_in(&server, "alice", PASSWORD).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    }
}

#[tokio::test]
async fn bad_user_input_is_refused() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let roles = vec!["Wizard".to_owned()];
        let error = server.server.add_user("merlin", &roles, PASSWORD).await.unwrap_err();
        assert_eq!(error.to_string(), "unknown role `Wizard`");
        let error = server.server.add_user("merlin", &[], "short").await.unwrap_err();
        assert_eq!(error.to_string(), "password must be 8 to 1024 bytes");
        server.user("alice", &["Technician"]).await;
        let error = server.server.add_user("alice", &[], PASSWORD).await.unwrap_err();
        assert_eq!(error.to_string(), "user `alice` already exists");
    }
}

#[tokio::test]
async fn roles_for_an_unknown_user_are_refused_as_not_found_not_as_a_damaged_database() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let refused = server.server.set_roles("nobody", &["Planner".to_owned()]).await;
        assert!(
            matches!(&refused, Err(ferry_server::UserError::NotFound(name)) if name == "nobody"),
            "{refused:?}"
        );
        let admin = server.user("root", &["Admin"]).await;
        let (status, body) = server
            .call(
                Method::PUT,
                "/v1/users/nobody/roles",
                Some(&admin.token),
                Some(json!({ "roles": ["Planner"] })),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["message"], "no user `nobody`");
    }
}

#[tokio::test]
async fn disabling_a_user_or_changing_their_password_or_last_role_ends_their_sessions() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let admin = server.user("root", &["Admin"]).await;
        let sign_in = |password: &'static str| {
            let server = &server;
            async move { sign_in(server, "tess", password).await }
        };
        let reads = |token: String| {
            let server = &server;
            async move { server.call(Method::GET, "/v1/model", Some(&token), None).await.0 }
        };
        let admin_put = |path: &'static str, body: serde_json::Value| {
            let (server, token) = (&server, admin.token.clone());
            async move { server.call(Method::PUT, path, Some(&token), Some(body)).await }
        };
        let tess = server.user("tess", &["Technician"]).await;
        assert_eq!(reads(tess.token.clone()).await, StatusCode::OK);

        // Disabled: the session ends at once, and no sign-in works, not even the right one.
        let (status, body) =
            admin_put("/v1/users/tess/disabled", json!({ "disabled": true })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(reads(tess.token.clone()).await, StatusCode::UNAUTHORIZED);
        let (status, body) = sign_in(PASSWORD).await;
        assert_eq!(
            (status, body["message"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("the user is disabled: ask an administrator"))
        );
        // Enabled again: a new sign-in works.
        admin_put("/v1/users/tess/disabled", json!({ "disabled": false })).await;
        let (status, signed) = sign_in(PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{signed}");
        let token = signed["token"].as_str().unwrap().to_owned();
        assert_eq!(reads(token.clone()).await, StatusCode::OK);

        // A new password: the session ends, the old password no longer signs in.
        let (status, _) =
            admin_put("/v1/users/tess/password", json!({ "password": "a new password" })).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(reads(token).await, StatusCode::UNAUTHORIZED);
        assert_eq!(sign_in(PASSWORD).await.0, StatusCode::UNAUTHORIZED);
        let (status, signed) = sign_in("a new password").await;
        assert_eq!(status, StatusCode::OK, "{signed}");
        let token = signed["token"].as_str().unwrap().to_owned();

        // The last role taken: the session ends too.
        let (status, _) = admin_put("/v1/users/tess/roles", json!({ "roles": [] })).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(reads(token).await, StatusCode::UNAUTHORIZED);

        // An unknown user is not found; a short password is refused.
        let (status, _) = admin_put("/v1/users/nobody/disabled", json!({ "disabled": true })).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) =
            admin_put("/v1/users/tess/password", json!({ "password": "short" })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        // Only administrators may do any of it.
        let other = server.user("pete", &["Planner"]).await;
        let body = json!({ "disabled": true });
        let (status, _) = server
            .call(Method::PUT, "/v1/users/root/disabled", Some(&other.token), Some(body))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}
