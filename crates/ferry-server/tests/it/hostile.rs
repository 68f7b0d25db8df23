//! The bad-input catalogue: malformed and hostile requests, each answered with the right 4xx
//! (or, for objects a user may not write, rejected into `SynchronizationError` with the data
//! untouched), and the database checked unchanged after every one, on both backends.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use ferry_model::samples;
use ferry_server::{Database, Handlers, Limits};
use serde_json::{Value as Json, json};

use crate::harness::{TestServer, backends, create, fixture, id, update};

/// Who sends a request.
#[derive(Clone, Copy)]
enum Who {
    Nobody,
    Raw(&'static str),
    Planner,
    Alice,
    Admin,
}

/// What a case expects: the status, and whether objects may be rejected into failures (the
/// data itself never changes).
struct Case {
    name: &'static str,
    method: Method,
    path: String,
    who: Who,
    body: Body,
    status: StatusCode,
}

fn case(name: &'static str, method: Method, path: &str, who: Who, body: &str, status: u16) -> Case {
    Case {
        name,
        method,
        path: path.to_owned(),
        who,
        body: Body::from(body.to_owned()),
        status: StatusCode::from_u16(status).unwrap(),
    }
}

fn upload(changes: Json) -> String {
    json!({ "upload_id": "hostile", "device": "d", "changes": changes }).to_string()
}

/// Every row of the server's tables that a refused request must leave alone.
async fn digest(database: &Database) -> Vec<String> {
    let tables = [
        "SELECT id, _rev FROM \"Field.Site\" ORDER BY id",
        "SELECT id, _rev FROM \"Field.WorkOrder\" ORDER BY id",
        "SELECT id, _rev FROM \"Field.Visit\" ORDER BY id",
        "SELECT id, _rev FROM \"Field.Photo\" ORDER BY id",
        "SELECT id, _rev FROM \"Field.Feedback\" ORDER BY id",
        "SELECT user_id, roles FROM ferry_credentials ORDER BY name",
        "SELECT entity, object_id FROM ferry_tombstones ORDER BY entity, object_id",
        "SELECT upload_id FROM ferry_uploads ORDER BY upload_id",
        "SELECT id, entity, object_id FROM ferry_failures ORDER BY id",
        "SELECT value FROM ferry_sequence",
    ];
    let mut rows = Vec::new();
    match database {
        Database::Sqlite(path) => {
            let connection = rusqlite::Connection::open(path).unwrap();
            for sql in tables {
                let mut statement = connection.prepare(sql).unwrap();
                let width = statement.column_count();
                let found = statement
                    .query_map([], |row| {
                        Ok((0..width)
                            .map(|i| {
                                format!("{:?}", row.get::<_, rusqlite::types::Value>(i).unwrap())
                            })
                            .collect::<Vec<_>>()
                            .join("|"))
                    })
                    .unwrap();
                rows.extend(found.map(|r| format!("{sql}: {}", r.unwrap())));
            }
        }
        Database::Postgres(url) => {
            let (client, connection) =
                tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            for sql in tables {
                for row in client.simple_query(sql).await.unwrap() {
                    if let tokio_postgres::SimpleQueryMessage::Row(row) = row {
                        let values: Vec<&str> =
                            (0..row.len()).map(|i| row.get(i).unwrap_or("null")).collect();
                        rows.push(format!("{sql}: {}", values.join("|")));
                    }
                }
            }
        }
    }
    rows
}

fn catalogue(f: &crate::harness::Fixture, photo_of_bob: &str) -> Vec<Case> {
    use Who::*;
    let order = &f.orders[0];
    let bobs_order = &f.orders[2];
    let long = "x".repeat(300);
    let hash = "ab".repeat(32);
    let mut cases = vec![
        // Who is asking.
        case("no token", Method::POST, "/v1/upload", Nobody, &upload(json!([])), 401),
        case(
            "a forged token",
            Method::POST,
            "/v1/upload",
            Raw("Bearer 0123456789abcdef"),
            &upload(json!([])),
            401,
        ),
        case("an empty bearer", Method::GET, "/v1/model", Raw("Bearer "), "", 401),
        case("another scheme", Method::GET, "/v1/model", Raw("Basic cGF0OnB3"), "", 401),
        case(
            "a token with spaces and quotes",
            Method::GET,
            "/v1/model",
            Raw("Bearer ' OR '1'='1"),
            "",
            401,
        ),
        case(
            "a wrong password",
            Method::POST,
            "/v1/sign-in",
            Nobody,
            r#"{"user":"pat","password":"not it at all"}"#,
            401,
        ),
        case(
            "an unknown user",
            Method::POST,
            "/v1/sign-in",
            Nobody,
            r#"{"user":"mallory","password":"whatever12"}"#,
            401,
        ),
        case(
            "sign-in without a password",
            Method::POST,
            "/v1/sign-in",
            Nobody,
            r#"{"user":"pat"}"#,
            400,
        ),
        case("sign-in that is not JSON", Method::POST, "/v1/sign-in", Nobody, "user=pat", 400),
        case(
            "sign-in with an extra field",
            Method::POST,
            "/v1/sign-in",
            Nobody,
            r#"{"user":"pat","password":"x","admin":true}"#,
            400,
        ),
        case(
            "a password too long",
            Method::POST,
            "/v1/sign-in",
            Nobody,
            &json!({ "user": "pat", "password": "p".repeat(2000) }).to_string(),
            401,
        ),
        // Malformed uploads: refused whole.
        case("an upload that is not JSON", Method::POST, "/v1/upload", Planner, "{not json", 400),
        case("an upload that is an array", Method::POST, "/v1/upload", Planner, "[]", 400),
        case(
            "an upload without an id",
            Method::POST,
            "/v1/upload",
            Planner,
            r#"{"device":"d","changes":[]}"#,
            400,
        ),
        case(
            "an upload with an unknown field",
            Method::POST,
            "/v1/upload",
            Planner,
            r#"{"upload_id":"u","device":"d","changes":[],"force":true}"#,
            400,
        ),
        case(
            "an empty upload id",
            Method::POST,
            "/v1/upload",
            Planner,
            r#"{"upload_id":"","device":"d","changes":[]}"#,
            400,
        ),
        case(
            "an upload id too long",
            Method::POST,
            "/v1/upload",
            Planner,
            &json!({ "upload_id": long, "device": "d", "changes": [] }).to_string(),
            400,
        ),
        case(
            "a device name too long",
            Method::POST,
            "/v1/upload",
            Planner,
            &json!({ "upload_id": "u", "device": "d".repeat(300), "changes": [] }).to_string(),
            400,
        ),
        case(
            "an unknown entity",
            Method::POST,
            "/v1/upload",
            Planner,
            &upload(json!([create("Field.Nope", &id(900), json!({}))])),
            400,
        ),
        case(
            "writing users",
            Method::POST,
            "/v1/upload",
            Planner,
            &upload(json!([create("System.User", &id(901), json!({ "Name": "eve" }))])),
            400,
        ),
        case(
            "an id that is not an id",
            Method::POST,
            "/v1/upload",
            Planner,
            &upload(json!([create("Field.Site", "42", json!({ "Name": "x" }))])),
            400,
        ),
        case(
            "an unknown member",
            Method::POST,
            "/v1/upload",
            Planner,
            &upload(json!([create("Field.Site", &id(902), json!({ "Name": "x", "Owner": "me" }))])),
            400,
        ),
        case(
            "an integer as text",
            Method::POST,
            "/v1/upload",
            Planner,
            &upload(json!([create(
                "Field.WorkOrder",
                &id(903),
                json!({ "Number": "seven", "Title": "t" })
            )])),
            400,
        ),
        case(
            "a float for an integer",
            Method::POST,
            "/v1/upload",
            Planner,
            &upload(json!([create(
                "Field.WorkOrder",
                &id(904),
                json!({ "Number": 7.5, "Title": "t" })
            )])),
            400,
        ),
        case(
            "a decimal with too many digits",
            Method::POST,
            "/v1/upload",
            Planner,
            &upload(json!([update("Field.WorkOrder", order, json!({ "Amount": "1.234" }))])),
            400,
        ),
        case(
            "a decimal as a float",
            Method::POST,
            "/v1/upload",
            Planner,
            &upload(json!([update("Field.WorkOrder", order, json!({ "Amount": 1.25 }))])),
            400,
        ),
        case(
            "a date that is not a date",
            Method::POST,
            "/v1/upload",
            Planner,
            &upload(json!([update("Field.WorkOrder", order, json!({ "DueDate": "tomorrow" }))])),
            400,
        ),
        case(
            "an unknown enumeration value",
            Method::POST,
            "/v1/upload",
            Planner,
            &upload(json!([update("Field.WorkOrder", order, json!({ "Status": "Hacked" }))])),
            400,
        ),
        case(
            "a reference that is not an id",
            Method::POST,
            "/v1/upload",
            Planner,
            &upload(json!([update(
                "Field.WorkOrder",
                order,
                json!({ "Field.WorkOrder_Site": "DROP TABLE" })
            )])),
            400,
        ),
        case(
            "a boolean as text",
            Method::POST,
            "/v1/upload",
            Planner,
            &upload(json!([update("Field.WorkOrder", order, json!({ "Completed": "yes" }))])),
            400,
        ),
        case(
            "an unknown kind of change",
            Method::POST,
            "/v1/upload",
            Planner,
            &upload(
                json!([{ "entity": "Field.Site", "id": id(905), "kind": "upsert", "values": {} }]),
            ),
            400,
        ),
        case(
            "values as an array",
            Method::POST,
            "/v1/upload",
            Planner,
            &upload(
                json!([{ "entity": "Field.Site", "id": id(906), "kind": "create", "values": ["x"] }]),
            ),
            400,
        ),
        case(
            "a revision that is text",
            Method::POST,
            "/v1/upload",
            Planner,
            &upload(
                json!([{ "entity": "Field.Site", "id": f.site, "kind": "update", "base_revision": "1", "values": {} }]),
            ),
            400,
        ),
        case(
            "one object twice in an upload",
            Method::POST,
            "/v1/upload",
            Planner,
            &upload(json!([
                update("Field.Site", &f.site, json!({ "Name": "a" })),
                update("Field.Site", &f.site, json!({ "Name": "b" }))
            ])),
            400,
        ),
        case(
            "a string with a NUL",
            Method::POST,
            "/v1/upload",
            Planner,
            &upload(json!([update("Field.Site", &f.site, json!({ "Name": "a\u{0}b" }))])),
            400,
        ),
        // Downloads.
        case(
            "downloading an unknown entity",
            Method::GET,
            "/v1/download/Field.Nope",
            Planner,
            "",
            404,
        ),
        case("downloading users", Method::GET, "/v1/download/System.User", Planner, "", 404),
        case(
            "a checkpoint the server never gave",
            Method::GET,
            "/v1/download/Field.Site?after=I.abc.xyz",
            Planner,
            "",
            400,
        ),
        case(
            "a negative checkpoint",
            Method::GET,
            "/v1/download/Field.Site?after=I.abc.-5",
            Planner,
            "",
            400,
        ),
        case("a limit of zero", Method::GET, "/v1/download/Field.Site?limit=0", Planner, "", 400),
        case(
            "a limit over the maximum",
            Method::GET,
            "/v1/download/Field.Site?limit=1000000",
            Planner,
            "",
            400,
        ),
        case(
            "a limit that is not a number",
            Method::GET,
            "/v1/download/Field.Site?limit=all",
            Planner,
            "",
            400,
        ),
        case(
            "an unknown download option",
            Method::GET,
            "/v1/download/Field.Site?where=1%3D1",
            Planner,
            "",
            400,
        ),
        case(
            "an index that is not a flag",
            Method::GET,
            "/v1/download/Field.Site?index=maybe",
            Planner,
            "",
            400,
        ),
        case(
            "objects asked by a bad id",
            Method::POST,
            "/v1/download/Field.Site/objects",
            Planner,
            r#"{"ids":["1 OR 1=1"]}"#,
            400,
        ),
        case(
            "objects asked without JSON",
            Method::POST,
            "/v1/download/Field.Site/objects",
            Planner,
            "ids=1",
            400,
        ),
        case(
            "objects asked beyond the page size",
            Method::POST,
            "/v1/download/Field.Site/objects",
            Planner,
            &json!({ "ids": vec![id(1); 10_001] }).to_string(),
            413,
        ),
        // Files.
        case(
            "a content under a name that is not a hash",
            Method::PUT,
            "/v1/files/..%2F..%2Fetc%2Fpasswd",
            Planner,
            "x",
            400,
        ),
        case(
            "a content that is not its hash",
            Method::PUT,
            &format!("/v1/files/{hash}"),
            Planner,
            "other bytes",
            400,
        ),
        case(
            "asking about a non-hash",
            Method::POST,
            "/v1/files/missing",
            Planner,
            r#"{"hashes":["../x"]}"#,
            400,
        ),
        case(
            "asking about too many contents",
            Method::POST,
            "/v1/files/missing",
            Planner,
            &json!({ "hashes": vec![hash; 10_001] }).to_string(),
            413,
        ),
        case(
            "a content of a plain entity",
            Method::GET,
            &format!("/v1/files/Field.Site/{}", f.site),
            Planner,
            "",
            400,
        ),
        case("a content by a bad id", Method::GET, "/v1/files/Field.Photo/x", Alice, "", 400),
        case(
            "another technician's photo",
            Method::GET,
            &format!("/v1/files/Field.Photo/{photo_of_bob}"),
            Alice,
            "",
            404,
        ),
        case(
            "a content of an unknown entity",
            Method::GET,
            &format!("/v1/files/Field.Nope/{}", id(1)),
            Alice,
            "",
            404,
        ),
        // Actions.
        case("an unknown action", Method::POST, "/v1/actions/Nope", Alice, "{}", 404),
        case(
            "an action name too long",
            Method::POST,
            &format!("/v1/actions/{}", "a".repeat(200)),
            Alice,
            "{}",
            400,
        ),
        case(
            "a persistable object as a parameter",
            Method::POST,
            "/v1/actions/MyWorkOrdersIn",
            Alice,
            &json!({ "parameters": { "Status": { "entity": "Field.WorkOrder", "id": order } } })
                .to_string(),
            400,
        ),
        case(
            "a parameter of the wrong type",
            Method::POST,
            "/v1/actions/MyWorkOrdersIn",
            Alice,
            r#"{"parameters":{"Status":3}}"#,
            400,
        ),
        case(
            "an undeclared parameter",
            Method::POST,
            "/v1/actions/MyWorkOrdersIn",
            Alice,
            r#"{"parameters":{"Status":"Open","Constraint":"[1=1]"}}"#,
            400,
        ),
        case(
            "an action of another role",
            Method::POST,
            "/v1/actions/SitesOfCustomer",
            Alice,
            &json!({ "parameters": { "Customer": id(1) } }).to_string(),
            403,
        ),
        case(
            "a constraint smuggled into a string parameter",
            Method::POST,
            "/v1/actions/MyWorkOrdersIn",
            Alice,
            r#"{"parameters":{"Status":"Open' or '1'='1"}}"#,
            200,
        ),
        case(
            "action parameters that are not JSON",
            Method::POST,
            "/v1/actions/MyWorkOrdersIn",
            Alice,
            "Status=Open",
            400,
        ),
        case(
            "an id parameter that is not an id",
            Method::POST,
            "/v1/actions/SitesOfCustomer",
            Planner,
            r#"{"parameters":{"Customer":"' or 1=1"}}"#,
            400,
        ),
        // Administration.
        case("failures for a non-administrator", Method::GET, "/v1/failures", Planner, "", 403),
        case(
            "a replay by a non-administrator",
            Method::POST,
            "/v1/failures/1/replay",
            Alice,
            "",
            403,
        ),
        case("the history for a non-administrator", Method::GET, "/v1/history", Alice, "", 403),
        case("users for a non-administrator", Method::GET, "/v1/users", Planner, "", 403),
        case(
            "a user made by a non-administrator",
            Method::POST,
            "/v1/users",
            Alice,
            r#"{"name":"eve","password":"long enough","roles":["Admin"]}"#,
            403,
        ),
        case(
            "roles given by a non-administrator",
            Method::PUT,
            "/v1/users/alice/roles",
            Alice,
            r#"{"roles":["Admin"]}"#,
            403,
        ),
        case("a failure id that is not a number", Method::GET, "/v1/failures/one", Admin, "", 400),
        case("an unknown failure", Method::GET, "/v1/failures/999999", Admin, "", 404),
        case(
            "a user with an unknown role",
            Method::POST,
            "/v1/users",
            Admin,
            r#"{"name":"eve","password":"long enough","roles":["Wizard"]}"#,
            400,
        ),
        case(
            "a user that exists",
            Method::POST,
            "/v1/users",
            Admin,
            r#"{"name":"pat","password":"long enough","roles":["Planner"]}"#,
            409,
        ),
        case(
            "a user with a short password",
            Method::POST,
            "/v1/users",
            Admin,
            r#"{"name":"eve","password":"short","roles":["Planner"]}"#,
            400,
        ),
        case(
            "roles of an unknown user",
            Method::PUT,
            "/v1/users/nobody/roles",
            Admin,
            r#"{"roles":["Planner"]}"#,
            404,
        ),
        case(
            "a sync report of an unknown mode",
            Method::POST,
            "/v1/sync-report",
            Planner,
            r#"{"device":"d","mode":"turbo","upload_id":"","duration_ms":1,"objects_up":0,"objects_down":0,"errors":0}"#,
            400,
        ),
        case(
            "a sync report with negative counts",
            Method::POST,
            "/v1/sync-report",
            Planner,
            r#"{"device":"d","mode":"all","upload_id":"","duration_ms":-1,"objects_up":-5,"objects_down":0,"errors":0}"#,
            400,
        ),
        case(
            "an upload id used before for other changes",
            Method::POST,
            "/v1/upload",
            Planner,
            &json!({ "upload_id": "fixture", "device": "test", "changes": [create("Field.Site", &id(908), json!({ "Name": "Other" }))] }).to_string(),
            409,
        ),
        case(
            "an upload value nested 100,000 deep",
            Method::POST,
            "/v1/upload",
            Planner,
            &upload(json!([create("Field.Site", &id(909), json!({ "Name": "deep" }))]))
                .replace("\"deep\"", &format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000))),
            400,
        ),
        case(
            "action parameters nested 100,000 deep",
            Method::POST,
            "/v1/actions/MyWorkOrdersIn",
            Alice,
            &format!(r#"{{"parameters":{{"Status":{}1{}}}}}"#, "[".repeat(100_000), "]".repeat(100_000)),
            400,
        ),
        // Paths and methods.
        case("an unknown path", Method::GET, "/v1/admin/drop", Planner, "", 404),
        case("a method an endpoint does not take", Method::DELETE, "/v1/upload", Planner, "", 405),
    ];
    // Objects the user may not write: each is rejected into SynchronizationError, the data untouched.
    for (name, changes) in [
        (
            "a forged id of another technician's work order",
            json!([update("Field.WorkOrder", bobs_order, json!({ "Notes": "mine now" }))]),
        ),
        (
            "a member the role may not write",
            json!([update("Field.WorkOrder", order, json!({ "Title": "renamed" }))]),
        ),
        (
            "deleting what the role may not delete",
            json!([{ "entity": "Field.WorkOrder", "id": order, "kind": "delete" }]),
        ),
        (
            "creating what the role may not create",
            json!([create("Field.Site", &id(907), json!({ "Name": "mine" }))]),
        ),
        (
            "reassigning a work order to oneself",
            json!([update(
                "Field.WorkOrder",
                bobs_order,
                json!({ "Field.WorkOrder_AssignedTo": f.alice.id.to_string() })
            )]),
        ),
    ] {
        let mut rejected = case(name, Method::POST, "/v1/upload", Alice, &upload(changes), 200);
        rejected.path = "/v1/upload#rejected".to_owned();
        cases.push(rejected);
    }
    cases
}

#[tokio::test]
async fn the_bad_input_catalogue_is_refused_and_changes_nothing() {
    for backend in backends() {
        let limits = Limits { body_bytes_max: 1024 * 1024, ..Limits::default() };
        let server =
            TestServer::start_with(backend, samples::FIELD_SERVICE, Handlers::default(), limits)
                .await;
        let f = fixture(&server).await;
        let token = |who: Who| -> Option<String> {
            match who {
                Who::Nobody => None,
                Who::Raw(header) => Some(header.to_owned()),
                Who::Planner => Some(format!("Bearer {}", f.planner.token)),
                Who::Alice => Some(format!("Bearer {}", f.alice.token)),
                Who::Admin => Some(format!("Bearer {}", f.admin.token)),
            }
        };
        let photo_of_bob = id(950);
        let cases = catalogue(&f, &photo_of_bob);
        assert!(cases.len() >= 60, "{} cases", cases.len());
        let mut tried = 0;
        for (n, case) in cases.into_iter().enumerate() {
            let before = digest(&server.database).await;
            let rejected_objects = case.path.ends_with("#rejected");
            let path = case.path.trim_end_matches("#rejected").to_owned();
            let mut request = axum::http::Request::builder()
                .method(case.method.clone())
                .uri(&path)
                .header("content-type", "application/json");
            if let Some(header) = token(case.who) {
                request = request.header("authorization", header);
            }
            let body = match rejected_objects {
                // A fresh upload id per case, so each is applied (and refused) on its own.
                true => {
                    let bytes = axum::body::to_bytes(case.body, usize::MAX).await.unwrap();
                    let text = String::from_utf8(bytes.to_vec())
                        .unwrap()
                        .replace("\"hostile\"", &format!("\"hostile-{n}\""));
                    Body::from(text)
                }
                false => case.body,
            };
            let response = server.send(request.body(body).unwrap()).await;
            let (status, answer) = response;
            assert_eq!(status, case.status, "{}: {answer}", case.name);
            if case.name.contains("smuggled") {
                // The text is compared as a value: it matches no status, and nothing leaks.
                assert!(
                    answer.contains(r#""result":{"objects":0}"#)
                        && answer.contains(r#""synced":[]"#),
                    "{answer}"
                );
            }
            let after = digest(&server.database).await;
            if rejected_objects {
                assert!(answer.contains("\"outcome\":\"failed\""), "{}: {answer}", case.name);
                // Only the failure record, the sequence and the upload record may move.
                let data = |rows: &[String]| -> Vec<String> {
                    rows.iter()
                        .filter(|r| {
                            !r.contains("ferry_failures")
                                && !r.contains("ferry_sequence")
                                && !r.contains("ferry_uploads")
                        })
                        .cloned()
                        .collect()
                };
                assert_eq!(data(&before), data(&after), "{} changed data", case.name);
            } else {
                assert_eq!(before, after, "{} changed the database", case.name);
            }
            tried += 1;
        }
        eprintln!("{backend:?}: {tried} bad inputs refused, the database unchanged after each");
    }
}

impl TestServer {
    /// Sends a built request; the status and the body as text.
    async fn send(&self, request: axum::http::Request<Body>) -> (StatusCode, String) {
        use tower::ServiceExt as _;
        let response = self.server.router().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// A model whose entity refers to itself: a chain of new objects is as deep as the upload is long.
const SELF_REFERENCING: &str = r#"
[roles.Planner]

[entities."Org.Node"]
attributes.Name = { type = "string", max_length = 100 }
associations.Node_Parent = { target = "Org.Node" }
access = [{ role = "Planner", create = true, delete = true, read = ["*"], write = ["*"] }]
"#;

/// Links in the chain: deep enough that a walk with a stack frame per link overflows a thread.
const CHAIN_LINKS: u128 = 60_000;

#[tokio::test]
async fn a_chain_of_new_self_referencing_objects_is_applied_without_exhausting_the_stack() {
    for backend in backends() {
        let server = TestServer::start_with(
            backend,
            SELF_REFERENCING,
            Handlers::default(),
            Limits::default(),
        )
        .await;
        let planner = server.user("pat", &["Planner"]).await;
        // Node n points at node n + 1, so node 1 can only be applied after all the others.
        let changes: Vec<Json> = (1..=CHAIN_LINKS)
            .map(|n| {
                let mut values = json!({ "Name": format!("node {n}") });
                if n < CHAIN_LINKS {
                    values["Org.Node_Parent"] = json!(id(n + 1));
                }
                create("Org.Node", &id(n), values)
            })
            .collect();
        let (status, response) = server.upload(&planner, "chain", Json::Array(changes)).await;
        assert_eq!(status, StatusCode::OK, "{backend:?}");
        let applied = crate::harness::outcomes(&response);
        assert_eq!(applied.len(), CHAIN_LINKS as usize);
        assert!(applied.iter().all(|o| o == "applied"), "{backend:?}: {:?}", &applied[..3]);
        let downloaded = server.download_all(&planner, "Org.Node", None).await;
        assert_eq!(downloaded.objects.len(), CHAIN_LINKS as usize, "{backend:?}");
    }
}

#[tokio::test]
async fn forged_expired_replayed_and_disabled_tokens_are_refused_and_change_nothing() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let f = fixture(&server).await;
        let changes = json!([create("Field.Site", &id(990), json!({ "Name": "Sneaky" }))]);
        let attempt = |token: String, n: usize| {
            let (server, changes) = (&server, changes.clone());
            async move {
                let body =
                    json!({ "upload_id": format!("token-{n}"), "device": "d", "changes": changes });
                let (status, _) =
                    server.call(Method::POST, "/v1/upload", Some(&token), Some(body)).await;
                status
            }
        };
        let tess = server.user("tess", &["Planner"]).await;
        let dora = server.user("dora", &["Planner"]).await;
        let rhea = server.user("rhea", &["Planner"]).await;
        let before = digest(&server.database).await;
        // Forged: the planner's token with one character changed.
        let mut forged = f.planner.token.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == '0' { '1' } else { '0' });
        assert_eq!(attempt(forged, 1).await, StatusCode::UNAUTHORIZED, "forged");
        // Replayed: a token from before the user's password changed.
        let body = json!({ "password": "another long one" });
        let (status, _) = server
            .call(Method::PUT, "/v1/users/tess/password", Some(&f.admin.token), Some(body))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(attempt(tess.token.clone(), 2).await, StatusCode::UNAUTHORIZED, "replayed");
        // Replayed: a refresh token spent already, and the one it gave spent too, ends the
        // session it belongs to, and gets no access token.
        let refresh = |refresh_token: String| {
            let server = &server;
            async move {
                let body = json!({ "refresh_token": refresh_token });
                server.call(Method::POST, "/v1/sign-in/refresh", None, Some(body)).await
            }
        };
        let (status, given) = refresh(rhea.refresh.clone()).await;
        assert_eq!(status, StatusCode::OK, "{given}");
        let (status, spent) = refresh(given["refresh_token"].as_str().unwrap().to_owned()).await;
        assert_eq!(status, StatusCode::OK, "{spent}");
        let (status, body) = refresh(rhea.refresh.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "replayed refresh: {body}");
        let token = spent["token"].as_str().unwrap().to_owned();
        assert_eq!(attempt(token, 5).await, StatusCode::UNAUTHORIZED, "the replayed session");
        // Of a disabled user.
        let body = json!({ "disabled": true });
        server.call(Method::PUT, "/v1/users/dora/disabled", Some(&f.admin.token), Some(body)).await;
        assert_eq!(attempt(dora.token.clone(), 3).await, StatusCode::UNAUTHORIZED, "disabled");
        assert_eq!(refresh(dora.refresh.clone()).await.0, StatusCode::UNAUTHORIZED, "disabled");
        // Expired: the planner's own token, once its lifetime has passed.
        let later = server.clock.now_plus_days(400);
        *server.clock.0.lock().unwrap() = later;
        assert_eq!(attempt(f.planner.token.clone(), 4).await, StatusCode::UNAUTHORIZED, "expired");
        // Only the two users' credentials moved; no object, upload, failure or position.
        let data = |rows: &[String]| -> Vec<String> {
            rows.iter().filter(|r| !r.contains("ferry_credentials")).cloned().collect()
        };
        assert_eq!(data(&before), data(&digest(&server.database).await));
    }
}
