//! HTTPS end to end: a server that terminates TLS with a certificate made here, devices that
//! trust its private authority and sync through it on both backends, and the refusals: a
//! certificate that does not verify, plain HTTP beyond this machine.

use std::sync::Arc;

use ferry_client::{HttpTransport, Query, SyncEngine, SyncError, SyncMode};
use ferry_model::samples;
use ferry_sim::{PASSWORD, TestWorld, backends};

use crate::text;

/// A private certificate authority and a certificate it signed for this machine: the
/// authority's PEM, the server's certificate chain and key (PEM).
fn private_authority() -> (String, String, String) {
    let authority_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, "Ferry test authority");
    let authority = rcgen::CertifiedIssuer::self_signed(params, authority_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let server =
        rcgen::CertificateParams::new(names).unwrap().signed_by(&server_key, &authority).unwrap();
    (authority.pem(), server.pem(), server_key.serialize_pem())
}

/// Serves the world's server over TLS on a port of its own; gives the port.
async fn serve_tls(world: &TestWorld, chain: &str, key: &str) -> u16 {
    let tls = ferry_server::Tls::from_pem(chain.as_bytes(), key.as_bytes()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(ferry_server::serve_with(
        listener,
        world.server.clone(),
        Some(tls),
        std::future::pending(),
    ));
    port
}

#[tokio::test]
async fn devices_sync_over_https_trusting_a_private_authority() {
    let (authority, chain, key) = private_authority();
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let port = serve_tls(&world, &chain, &key).await;
        let server = format!("https://localhost:{port}");
        for user in ["pat", "pam"] {
            world.server.add_user(user, &["Planner".to_owned()], PASSWORD).await.unwrap();
        }
        let path = world.directory().join("pat-tls.db");
        let trusted = Some(authority.as_bytes());
        let (pat, _) =
            SyncEngine::login_trusting(&path, &server, trusted, "pat", PASSWORD).await.unwrap();
        let db = ferry_client::Database::open_existing(&path).unwrap();
        let mut site = db.create("Field.Site").unwrap();
        db.set(&mut site, "Name", text("Over TLS")).unwrap();
        db.commit(&mut [&mut site]).unwrap();
        drop(db);
        let report = pat.sync(SyncMode::All).await.unwrap();
        assert_eq!(report.uploaded, 1, "{report:?}");
        // Another device, then resumed from its database: it keeps trusting the authority.
        let other = world.directory().join("pam-tls.db");
        drop(SyncEngine::login_trusting(&other, &server, trusted, "pam", PASSWORD).await.unwrap());
        let database = Arc::new(ferry_client::Database::open_existing(&other).unwrap());
        let resumed = SyncEngine::resume(Arc::clone(&database)).unwrap();
        resumed.sync(SyncMode::All).await.unwrap();
        let sites = database.query(&Query::new("Field.Site")).unwrap();
        assert_eq!(sites.len(), 1);
        assert_eq!(database.get_value(&sites[0], "Name").unwrap(), &text("Over TLS"));
    }
}

#[tokio::test]
async fn a_certificate_that_does_not_verify_is_refused_and_never_answered_in_the_clear() {
    let (_, chain, key) = private_authority();
    let (other_authority, _, _) = private_authority();
    let world = TestWorld::start(ferry_sim::Backend::Sqlite, samples::FIELD_SERVICE).await;
    let port = serve_tls(&world, &chain, &key).await;
    world.server.add_user("pat", &["Planner".to_owned()], PASSWORD).await.unwrap();
    let server = format!("https://localhost:{port}");
    for trusted in [None, Some(other_authority.as_bytes())] {
        let path = world.directory().join("untrusting.db");
        let refused = SyncEngine::login_trusting(&path, &server, trusted, "pat", PASSWORD).await;
        assert!(
            matches!(&refused, Err(SyncError::Certificate { reason, .. }) if reason.contains("certificate")),
            "{:?}",
            refused.err()
        );
        assert!(!path.exists(), "nothing was made on the device");
    }
    // The TLS port spoken to in plain HTTP answers nothing a device accepts.
    let path = world.directory().join("plain.db");
    let plain =
        SyncEngine::login(&path, &format!("http://127.0.0.1:{port}"), "pat", PASSWORD).await;
    assert!(
        matches!(plain, Err(SyncError::Unreachable { .. } | SyncError::Server { .. })),
        "{:?}",
        plain.err()
    );
}

#[test]
fn plain_http_is_spoken_to_this_machine_only_and_prefixes_are_kept() {
    for refused in [
        "http://sync.example.com",
        "http://10.0.0.5:8750",
        "ftp://localhost",
        "https://",
        "https://host/?x=1",
    ] {
        assert!(
            matches!(HttpTransport::new(refused), Err(SyncError::BadServer { .. })),
            "{refused}"
        );
    }
    for (accepted, named) in [
        ("https://sync.example.com", "https://sync.example.com:443"),
        ("https://example.com/ferry/", "https://example.com:443/ferry"),
        ("http://127.0.0.1:8750", "http://127.0.0.1:8750"),
        ("http://localhost:8750", "http://localhost:8750"),
        ("http://[::1]:8750", "http://[::1]:8750"),
    ] {
        let transport = HttpTransport::new(accepted).unwrap();
        assert_eq!(ferry_client::Transport::server(&transport), named);
    }
}

#[tokio::test]
async fn a_server_behind_a_path_prefix_is_reached_through_it() {
    let world = TestWorld::start(ferry_sim::Backend::Sqlite, samples::FIELD_SERVICE).await;
    world.server.add_user("pat", &["Planner".to_owned()], PASSWORD).await.unwrap();
    // A reverse proxy's view: the API under /ferry.
    let routed = axum::Router::new().nest("/ferry", world.server.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = routed.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });
    let path = world.directory().join("prefixed.db");
    let server = format!("http://{address}/ferry");
    let (engine, _) = SyncEngine::login(&path, &server, "pat", PASSWORD).await.unwrap();
    let report = engine.sync(SyncMode::All).await.unwrap();
    assert!(report.rejected.is_empty(), "{report:?}");
    // The device keeps the address with its prefix, and syncs through it again.
    let database = Arc::new(ferry_client::Database::open_existing(&path).unwrap());
    assert_eq!(database.status().unwrap().server.as_deref(), Some(server.as_str()));
    SyncEngine::resume(database).unwrap().sync(SyncMode::All).await.unwrap();
}
