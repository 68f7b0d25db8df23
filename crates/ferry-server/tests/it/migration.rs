//! The model at start: a new database gets the schema; a changed model is migrated when the
//! change is additive, and refused with the plan's message when it is breaking.

use ferry_model::samples;
use std::sync::Arc;

use ferry_server::{
    Config, Database, Handlers, Limits, OpenError, Server, StoreError, SystemClock,
};
use serde_json::json;

use crate::harness::{TestServer, backends, create, id, outcomes};

fn config(server: &TestServer, model: &str) -> Config {
    Config {
        model_text: model.to_owned(),
        database: server.database.clone(),
        files: server.files.clone(),
        limits: Limits::default(),
        handlers: Handlers::default(),
        clock: server.clock.clone(),
        identity: None,
        app: None,
    }
}

#[tokio::test]
async fn additive_model_changes_are_applied_at_start_and_breaking_ones_refused() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let planner = server.user("pat", &["Planner"]).await;
        let (_, before) = server
            .upload(
                &planner,
                "a",
                json!([create("Field.Site", &id(1), json!({ "Name": "Depot" }))]),
            )
            .await;
        assert_eq!(outcomes(&before), ["applied"]);

        let additive = samples::FIELD_SERVICE.replace(
            "attributes.Address = { type = \"string\", max_length = 400 }",
            "attributes.Address = { type = \"string\", max_length = 400 }\nattributes.Gate = { type = \"string\", default = \"north\" }",
        );
        let migrated = TestServer {
            server: Server::open(config(&server, &additive)).await.unwrap(),
            database: server.database.clone(),
            files: server.files.clone(),
            clock: server.clock.clone(),
        };
        let site = migrated.download_all(&planner, "Field.Site", None).await;
        assert_eq!(
            site.objects[&id(1)]["values"]["Gate"],
            "north",
            "existing objects get the new attribute's default"
        );
        assert_eq!(site.objects[&id(1)]["values"]["Name"], "Depot");

        let breaking =
            additive.replace("attributes.Address = { type = \"string\", max_length = 400 }\n", "");
        let Err(error) = Server::open(config(&server, &breaking)).await else {
            panic!("a breaking model must be refused")
        };
        assert!(matches!(error, OpenError::Store(StoreError::BreakingMigration { .. })));
        assert_eq!(
            error.to_string(),
            "the stored model cannot be migrated to this one:\n! breaking: attribute `Field.Site.Address` was removed; its values would be lost\n"
        );
    }
}

/// The PostgreSQL of the tests serves TLS with a certificate its authority signed
/// (`cargo xtask pg` and `cargo xtask ci` make both and name the authority's file in
/// `FERRY_TEST_POSTGRES_CA`).
#[tokio::test]
async fn a_database_over_tls_is_reached_only_with_a_certificate_that_verifies() {
    use crate::harness::{Backend, fresh_database};
    if std::env::var("FERRY_TEST_POSTGRES").is_err() {
        return; // no PostgreSQL in this run: the SQLite backend has no network to secure
    }
    let authority = std::env::var("FERRY_TEST_POSTGRES_CA").expect(
        "FERRY_TEST_POSTGRES_CA names the test PostgreSQL's authority: `cargo xtask pg` prints it",
    );
    let Database::Postgres(plain) = fresh_database(Backend::Postgres).await else { unreachable!() };
    let open = |url: String| async move {
        let config = Config {
            model_text: samples::FIELD_SERVICE.to_owned(),
            database: Database::Postgres(url),
            files: std::env::temp_dir().join(format!("ferry-tls-files-{}", std::process::id())),
            limits: Limits::default(),
            handlers: Handlers::default(),
            clock: Arc::new(SystemClock),
            identity: None,
            app: None,
        };
        Server::open(config).await
    };
    // Verified against the authority: the server opens, and its connections are TLS.
    let verified = format!("{plain}?sslmode=verify-full&sslrootcert={authority}");
    let server = open(verified).await.unwrap();
    server.add_user("tls-user", &["Planner".to_owned()], "a long password").await.unwrap();
    let (client, connection) =
        tokio_postgres::connect(&plain, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let name = plain.rsplit('/').next().unwrap();
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1 AND s.pid <> pg_backend_pid()",
            &[&name],
        )
        .await
        .unwrap();
    let (encrypted, all): (i64, i64) = (row.get(0), row.get(1));
    assert!(encrypted >= 1 && encrypted == all, "{encrypted} of {all} connections are TLS");
    drop(server);
    // Without the authority the certificate does not verify: refused, never sent in the clear.
    let unverified = open(format!("{plain}?sslmode=require")).await.err().expect("refused");
    assert!(unverified.to_string().contains("certificate"), "{unverified}");
    // A mode that would not check the host name is refused with what to use instead.
    let refused = open(format!("{plain}?sslmode=verify-ca&sslrootcert={authority}")).await.err();
    let refused = refused.expect("refused").to_string();
    assert!(refused.contains("verify-full"), "{refused}");
}
