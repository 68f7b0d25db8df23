//! The model at start: a new database gets the schema; a changed model is migrated when the
//! change is additive, and refused with the plan's message when it is breaking.

use ferry_model::samples;
use ferry_server::{Config, Handlers, Limits, OpenError, Server, StoreError};
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
