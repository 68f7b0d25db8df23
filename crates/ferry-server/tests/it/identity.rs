//! Sign-in through an identity provider: a key set served by the test on 127.0.0.1, with RSA,
//! P-256 and Ed25519 keys made at run time, and tokens signed with them.

use axum::http::{Method, StatusCode};
use ferry_server::{Handlers, IdentityProvider, JWKS_REFETCH_MIN_SECONDS, Limits};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value as Json, json};

use crate::harness::{Backend, TestServer, backends};
use crate::provider::{AUDIENCE, ISSUER, KeySet, Signer};

async fn start(backend: Backend, jwks_url: &str) -> TestServer {
    let provider = IdentityProvider::new(jwks_url, ISSUER, AUDIENCE);
    let model = ferry_model::samples::FIELD_SERVICE;
    let (handlers, limits) = (Handlers::default(), Limits::default());
    TestServer::start_trusting(backend, model, handlers, limits, Some(provider)).await
}

/// Claims for `user` valid for an hour from the server's clock.
fn claims(server: &TestServer, user: &str, roles: &[&str]) -> Json {
    let now = server.clock.0.lock().unwrap().unix_micros() / 1_000_000;
    json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": user, "roles": roles, "iat": now, "exp": now + 3600 })
}

async fn token_sign_in(server: &TestServer, token: &str) -> (StatusCode, Json) {
    server.call(Method::POST, "/v1/sign-in/token", None, Some(json!({ "token": token }))).await
}

/// The names of the server's users, as an administrator lists them.
async fn user_names(server: &TestServer, admin: &str) -> Vec<String> {
    let (status, body) = server.call(Method::GET, "/v1/users", Some(admin), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["users"].as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap().into()).collect()
}

#[tokio::test]
async fn tokens_of_each_algorithm_sign_a_user_in_who_is_made_on_the_first_sign_in() {
    let set = KeySet::default();
    let signers = [
        Signer::new("rsa-1", Algorithm::RS256),
        Signer::new("p256-1", Algorithm::ES256),
        Signer::new("ed-1", Algorithm::EdDSA),
    ];
    set.publish(&signers.iter().collect::<Vec<_>>());
    let url = set.serve().await;
    for backend in backends() {
        let server = start(backend, &url).await;
        let admin = server.user("root", &["Admin"]).await;
        for signer in &signers {
            let user = format!("ida-{}", signer.kid);
            let token = signer.sign(&claims(&server, &user, &["Technician", "Astronaut"]));
            let (status, first) = token_sign_in(&server, &token).await;
            assert_eq!(status, StatusCode::OK, "{:?}: {first}", signer.algorithm);
            // Roles the model lacks are the provider's business, not the app's.
            assert_eq!(first["roles"], json!(["Technician"]));
            let session = first["token"].as_str().unwrap();
            let (status, _) = server.call(Method::GET, "/v1/model", Some(session), None).await;
            assert_eq!(status, StatusCode::OK);
            // The provider's token is a bearer token too.
            let (status, _) = server.call(Method::GET, "/v1/model", Some(&token), None).await;
            assert_eq!(status, StatusCode::OK);
            let (status, again) = token_sign_in(&server, &token).await;
            assert_eq!(status, StatusCode::OK, "{again}");
            assert_eq!(again["user_id"], first["user_id"], "one user, however often they sign in");
        }
        let mut expected = vec!["ida-ed-1", "ida-p256-1", "ida-rsa-1", "root"];
        expected.sort_unstable();
        assert_eq!(user_names(&server, &admin.token).await, expected);
        // A provider's user has no password to sign in with.
        let body = json!({ "user": "ida-rsa-1", "password": "" });
        let (status, _) = server.call(Method::POST, "/v1/sign-in", None, Some(body)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // Nor can an administrator give them one.
        let new = Some(json!({ "password": "a long new password" }));
        let path = "/v1/users/ida-rsa-1/password";
        let (status, body) = server.call(Method::PUT, path, Some(&admin.token), new).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["message"].as_str().unwrap().contains("identity provider"), "{body}");
    }
}

#[tokio::test]
async fn forged_expired_and_misdirected_tokens_are_refused_and_change_nothing() {
    let set = KeySet::default();
    let (known, unknown) =
        (Signer::new("p256-1", Algorithm::ES256), Signer::new("p256-2", Algorithm::ES256));
    set.publish(&[&known]);
    let url = set.serve().await;
    for backend in backends() {
        let server = start(backend, &url).await;
        let admin = server.user("root", &["Admin"]).await;
        server.user("alice", &["Technician"]).await;
        let before = user_names(&server, &admin.token).await;
        let good = claims(&server, "mallory", &["Admin"]);
        let with = |change: Json| {
            let mut claims = good.clone();
            claims.as_object_mut().unwrap().extend(change.as_object().unwrap().clone());
            claims
        };
        let now = good["iat"].as_i64().unwrap();
        let valid = known.sign(&good);
        let (head, rest) = valid.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let raised = base64_url(&with(json!({ "roles": ["Admin"], "sub": "root" })));
        let hmac = {
            // Signed with a secret shaped like the public key: an algorithm the key never allows.
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(known.kid.clone());
            let secret =
                EncodingKey::from_secret(serde_json::to_string(&known.jwk).unwrap().as_bytes())
                    .unwrap();
            jsonwebtoken::encode(&header, &good, &secret).unwrap()
        };
        let refused = [
            ("expired", known.sign(&with(json!({ "exp": now - 3600 })))),
            ("not yet valid", known.sign(&with(json!({ "nbf": now + 3600 })))),
            ("wrong audience", known.sign(&with(json!({ "aud": "another-app" })))),
            ("wrong issuer", known.sign(&with(json!({ "iss": "https://evil.test" })))),
            ("unknown key", unknown.sign(&good)),
            ("tampered claims", format!("{head}.{raised}.{signature}")),
            ("another algorithm", hmac),
            ("no user claim", known.sign(&with(json!({ "sub": "" })))),
            ("a built-in user's name", known.sign(&with(json!({ "sub": "alice" })))),
            ("not a JWT", "a.b.c".to_owned()),
        ];
        for (what, token) in &refused {
            let (status, body) = token_sign_in(&server, token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
            assert_eq!(body["code"], "unauthorized", "{what}");
            let (status, _) = server.call(Method::GET, "/v1/model", Some(token), None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} as a bearer token");
        }
        assert_eq!(user_names(&server, &admin.token).await, before, "no user was made");
    }
}

/// The base64url JSON of claims, as a JWT carries them.
fn base64_url(claims: &Json) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap())
}

#[tokio::test]
async fn rotated_keys_are_fetched_without_a_restart_and_unknown_keys_do_not_flood_the_provider() {
    let set = KeySet::default();
    let (old, new) =
        (Signer::new("ed-old", Algorithm::EdDSA), Signer::new("ed-new", Algorithm::EdDSA));
    let stranger = Signer::new("ed-stranger", Algorithm::EdDSA);
    let url = set.serve().await;
    for backend in backends() {
        set.publish(&[&old]);
        let server = start(backend, &url).await;
        let before = set.fetches();
        let (status, body) =
            token_sign_in(&server, &old.sign(&claims(&server, "ida", &["Technician"]))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // Tokens naming keys nobody publishes: one fetch, however many there are.
        for _ in 0..5 {
            let token = stranger.sign(&claims(&server, "ida", &["Technician"]));
            assert_eq!(token_sign_in(&server, &token).await.0, StatusCode::UNAUTHORIZED);
        }
        assert_eq!(set.fetches() - before, 1, "the set is fetched once, then cached");
        // The provider rotates: the new key is fetched when a token names it.
        set.publish(&[&new]);
        let later = server.clock.now_plus_seconds(JWKS_REFETCH_MIN_SECONDS);
        *server.clock.0.lock().unwrap() = later;
        let (status, body) =
            token_sign_in(&server, &new.sign(&claims(&server, "ida", &["Technician"]))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(set.fetches() - before, 2);
        // The retired key goes with the set it left.
        let (status, _) =
            token_sign_in(&server, &old.sign(&claims(&server, "ida", &["Technician"]))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn the_provider_decides_roles_and_a_token_with_none_ends_the_sessions() {
    let set = KeySet::default();
    let signer = Signer::new("rsa-1", Algorithm::RS256);
    set.publish(&[&signer]);
    let url = set.serve().await;
    for backend in backends() {
        let server = start(backend, &url).await;
        let sign = |roles: &[&str]| signer.sign(&claims(&server, "ida", roles));
        let (status, body) = token_sign_in(&server, &sign(&["Technician"])).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let session = body["token"].as_str().unwrap().to_owned();
        let (status, body) = token_sign_in(&server, &sign(&["Planner", "Technician"])).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["roles"], json!(["Planner", "Technician"]));
        let (status, body) = token_sign_in(&server, &sign(&["Astronaut"])).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["message"], "the identity token gives the user no role of this app");
        let (status, _) = server.call(Method::GET, "/v1/model", Some(&session), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "losing every role ended the session");
    }
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_is_unavailable_not_a_refusal() {
    // A port nothing listens on: bound, then closed.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    for backend in backends() {
        let server = start(backend, &format!("http://{closed}/jwks")).await;
        let token =
            Signer::new("ed-1", Algorithm::EdDSA).sign(&claims(&server, "ida", &["Technician"]));
        let (status, body) = token_sign_in(&server, &token).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body["message"].as_str().unwrap().contains("could not be fetched"), "{body}");
    }
}
