//! Uploads as DESIGN.md describes them: one transaction, access rules, handlers, validation,
//! only changed members, failures recorded with their reasons, dangling references,
//! revision checks, and idempotency by upload id.

use axum::http::{Method, StatusCode};
use ferry_model::Value;
use ferry_server::{Handlers, Limits};
use serde_json::json;

use crate::harness::{TestServer, backends, create, delete, fixture, id, outcomes, update};

#[tokio::test]
async fn a_rejected_object_is_skipped_into_failures_and_the_others_commit() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let f = fixture(&server).await;
        let changes = json!([
            update("Field.WorkOrder", &f.orders[0], json!({ "Status": "Done", "Notes": "fixed" })),
            update("Field.WorkOrder", &f.orders[1], json!({ "Title": "renamed" })),
            update("Field.WorkOrder", &f.orders[2], json!({ "Notes": "not mine" })),
        ]);
        let (status, response) = server.upload(&f.alice, "u1", changes).await;
        assert_eq!(status, StatusCode::OK, "{response}");
        assert_eq!(
            outcomes(&response),
            [
                "applied",
                "failed: access: role(s) Technician may not write member `Title` of `Field.WorkOrder`",
                &format!(
                    "failed: access: `Field.WorkOrder` {} is not accessible to role(s) Technician",
                    f.orders[2]
                ),
            ]
        );
        assert_eq!(response["outcomes"][0]["values"]["Notes"], "fixed");
        assert_eq!(response["outcomes"][0]["revision"], 2);
        // The failures are on the server, with the attempted values, for administrators.
        let (status, list) =
            server.call(Method::GET, "/v1/failures", Some(&f.admin.token), None).await;
        assert_eq!(status, StatusCode::OK);
        let failures = list["failures"].as_array().unwrap();
        assert_eq!(failures.len(), 2);
        assert_eq!(failures[1]["attempted"], json!({ "Title": "renamed" }));
        assert_eq!(failures[1]["user"], "alice");
        assert_eq!(failures[1]["upload_id"], "u1");
        let (status, _) =
            server.call(Method::GET, "/v1/failures", Some(&f.alice.token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn only_changed_members_are_applied_so_the_last_writer_wins_per_member() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let f = fixture(&server).await;
        let (_, first) = server
            .upload(
                &f.alice,
                "a",
                json!([update("Field.WorkOrder", &f.orders[0], json!({ "Notes": "from alice" }))]),
            )
            .await;
        assert_eq!(outcomes(&first), ["applied"]);
        let (_, second) = server
            .upload(
                &f.planner,
                "p",
                json!([update("Field.WorkOrder", &f.orders[0], json!({ "Priority": 5 }))]),
            )
            .await;
        let values = &second["outcomes"][0]["values"];
        assert_eq!(
            (values["Notes"].as_str(), values["Priority"].as_i64()),
            (Some("from alice"), Some(5))
        );
    }
}

#[tokio::test]
async fn validation_rules_reject_with_the_rule_named() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let f = fixture(&server).await;
        let changes = json!([
            create("Field.WorkOrder", &id(301), json!({ "Number": 9, "Title": null })),
            create(
                "Field.WorkOrder",
                &id(302),
                json!({ "Number": 10, "Title": "x", "Priority": 9 })
            ),
            create(
                "Field.WorkOrder",
                &id(303),
                json!({ "Number": 1, "Title": "duplicate number" })
            ),
            create("Field.Customer", &id(304), json!({ "Name": "C", "Email": "not an email" })),
            create("Field.WorkOrder", &id(305), json!({ "Number": 11, "Title": "t".repeat(201) })),
            create("Field.WorkOrder", &id(306), json!({ "Number": 12, "Title": "fine" })),
        ]);
        let (_, response) = server.upload(&f.planner, "v", changes).await;
        assert_eq!(
            outcomes(&response),
            [
                "failed: validation: `Title` is required",
                "failed: validation: `Priority` is 9, above its maximum 5",
                "failed: validation: `Number` must be unique, and another `Field.WorkOrder` has 1",
                "failed: validation: `Email` does not match the pattern [^@ ]+@[^@ ]+",
                "failed: validation: `Title` is longer than its max length of 200 characters",
                "applied",
            ]
        );
        // Model defaults apply to members a new object does not set.
        let values = &response["outcomes"][5]["values"];
        assert_eq!(
            (values["Status"].as_str(), values["Priority"].as_i64(), values["Amount"].as_str()),
            (Some("Open"), Some(3), Some("0.00"))
        );
    }
}

#[tokio::test]
async fn new_objects_apply_in_reference_order_and_dangling_references_fail() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let f = fixture(&server).await;
        let (city, country, customer) = (id(401), id(402), id(403));
        // Listed before what they reference: the server reorders.
        let changes = json!([
            create(
                "Field.Customer",
                &customer,
                json!({ "Name": "Acme", "Field.Customer_City": city })
            ),
            create("Field.City", &city, json!({ "Name": "Delft", "Field.City_Country": country })),
            create(
                "Field.Site",
                &id(404),
                json!({ "Name": "Nowhere", "Field.Site_City": id(999) })
            ),
        ]);
        let (_, response) = server.upload(&f.planner, "r1", changes).await;
        let results = outcomes(&response);
        let dangling = |entity: &str, id: &str, association: &str, target: &str| {
            format!(
                "failed: dangling reference: `{entity}` {id} refers through `{association}` to {target}, which exists neither on the server nor in the upload"
            )
        };
        assert_eq!(results[0], dangling("Field.Customer", &customer, "Field.Customer_City", &city));
        assert_eq!(results[1], dangling("Field.City", &city, "Field.City_Country", &country));
        let (_, response) = server
            .upload(
                &f.admin,
                "r2",
                json!([
                    create(
                        "Field.City",
                        &city,
                        json!({ "Name": "Delft", "Field.City_Country": country })
                    ),
                    create(
                        "Field.Country",
                        &country,
                        json!({ "Code": "NL", "Name": "Netherlands" })
                    ),
                    create(
                        "Field.Customer",
                        &customer,
                        json!({ "Name": "Acme", "Field.Customer_City": city })
                    ),
                    create(
                        "Field.Site",
                        &id(404),
                        json!({ "Name": "Nowhere", "Field.Site_City": id(999) })
                    ),
                ]),
            )
            .await;
        let results = outcomes(&response);
        assert_eq!(results[..3], ["applied", "applied", "applied"]);
        assert_eq!(
            results[3],
            format!(
                "failed: dangling reference: `Field.Site` {} refers through `Field.Site_City` to {}, which exists neither on the server nor in the upload",
                id(404),
                id(999)
            )
        );
    }
}

#[tokio::test]
async fn a_retried_upload_returns_the_first_result_and_applies_nothing_twice() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let f = fixture(&server).await;
        let changes = json!([
            update("Field.WorkOrder", &f.orders[0], json!({ "Notes": "once" })),
            create("Field.Feedback", &id(501), json!({ "Message": "great" })),
        ]);
        let (_, first) = server.upload(&f.alice, "retry-me", changes.clone()).await;
        // The response was lost; the device sends the same upload again.
        let (status, second) = server.upload(&f.alice, "retry-me", changes).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(first, second);
        assert_eq!(first["outcomes"][0]["revision"], 2);
        let downloaded = server.download_all(&f.planner, "Field.WorkOrder", None).await;
        assert_eq!(downloaded.objects[&f.orders[0]]["revision"], 2);
        // Another user cannot reuse the id.
        let (status, body) = server.upload(&f.bob, "retry-me", json!([])).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
    }
}

/// A device that reused an upload id for new changes must not be told they were applied: the
/// id answers only the request it was first used for.
#[tokio::test]
async fn an_upload_id_reused_with_other_changes_is_refused_and_applies_nothing() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let f = fixture(&server).await;
        let site_a = create("Field.Site", &id(601), json!({ "Name": "A" }));
        let site_b = create("Field.Site", &id(602), json!({ "Name": "B" }));
        let (status, first) = server.upload(&f.planner, "u1", json!([site_a.clone()])).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        let (status, body) = server.upload(&f.planner, "u1", json!([site_b])).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(
            body["message"],
            "upload id `u1` was already used for other changes; a new upload needs a new id"
        );
        let sites = server.download_all(&f.planner, "Field.Site", None).await;
        assert!(sites.objects.contains_key(&id(601)) && !sites.objects.contains_key(&id(602)));
        // The same changes, with their members in another order, are the same request.
        let (status, again) = server.upload(&f.planner, "u1", json!([site_a])).await;
        assert_eq!((status, &again), (StatusCode::OK, &first));
        let reordered = json!([{ "values": { "Name": "A" }, "kind": "create", "id": id(601), "entity": "Field.Site" }]);
        let (status, again) = server.upload(&f.planner, "u1", reordered).await;
        assert_eq!((status, &again), (StatusCode::OK, &first));
    }
}

#[tokio::test]
async fn revision_checks_reject_outdated_changes() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let f = fixture(&server).await;
        let visit = id(601);
        let (_, created) = server
            .upload(&f.alice, "v1", json!([create("Field.Visit", &visit, json!({ "StartedAt": "2026-11-23T08:00:00Z", "Field.Visit_WorkOrder": f.orders[0] }))]))
            .await;
        assert_eq!(outcomes(&created), ["applied"]);
        let change = |summary: &str, base: i64| json!([{ "entity": "Field.Visit", "id": visit, "kind": "update", "base_revision": base, "values": { "Summary": summary } }]);
        let (_, first) = server.upload(&f.alice, "v2", change("first", 1)).await;
        assert_eq!(outcomes(&first), ["applied"]);
        let (_, stale) = server.upload(&f.alice, "v3", change("stale", 1)).await;
        assert_eq!(
            outcomes(&stale),
            [format!(
                "failed: conflict: the change is based on revision 1 of `Field.Visit` {visit}, but the server has revision 2"
            )]
        );
    }
}

#[tokio::test]
async fn handlers_change_or_reject_objects() {
    for backend in backends() {
        let handlers = Handlers::default().before_apply(
            "Field.Feedback",
            Box::new(|object| {
                if matches!(object.get("Message"), Some(Value::String(m)) if m.contains("spam")) {
                    return Err("looks like spam".to_owned());
                }
                object.set("Rating", Value::Integer(5))
            }),
        );
        let server = TestServer::start_with(
            backend,
            ferry_model::samples::FIELD_SERVICE,
            handlers,
            Limits::default(),
        )
        .await;
        let f = fixture(&server).await;
        let (_, response) = server
            .upload(
                &f.alice,
                "h",
                json!([
                    create("Field.Feedback", &id(701), json!({ "Message": "buy spam" })),
                    create("Field.Feedback", &id(702), json!({ "Message": "ok" }))
                ]),
            )
            .await;
        assert_eq!(
            outcomes(&response),
            ["failed: rejected by a before-apply handler: looks like spam", "applied"]
        );
        assert_eq!(response["outcomes"][1]["values"]["Rating"], 5);
    }
}

#[tokio::test]
async fn deletions_follow_the_rules_and_are_idempotent() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let f = fixture(&server).await;
        let (_, refused) =
            server.upload(&f.alice, "d1", json!([delete("Field.WorkOrder", &f.orders[0])])).await;
        assert_eq!(
            outcomes(&refused),
            ["failed: access: no role of the user may delete this `Field.WorkOrder`"]
        );
        let (_, deleted) =
            server.upload(&f.planner, "d2", json!([delete("Field.WorkOrder", &f.orders[0])])).await;
        assert_eq!(outcomes(&deleted), ["deleted"]);
        let (_, again) =
            server.upload(&f.planner, "d3", json!([delete("Field.WorkOrder", &f.orders[0])])).await;
        assert_eq!(outcomes(&again), ["deleted"]);
        let (_, update) = server
            .upload(
                &f.planner,
                "d4",
                json!([update("Field.WorkOrder", &f.orders[0], json!({ "Notes": "late" }))]),
            )
            .await;
        assert_eq!(
            outcomes(&update),
            [format!("failed: `Field.WorkOrder` {} was deleted on the server", f.orders[0])]
        );
    }
}

#[tokio::test]
async fn failures_replay_after_the_cause_is_fixed() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let f = fixture(&server).await;
        let customer = id(801);
        let city = id(802);
        let (_, response) = server
            .upload(
                &f.planner,
                "f1",
                json!([create(
                    "Field.Customer",
                    &customer,
                    json!({ "Name": "Later", "Field.Customer_City": city })
                )]),
            )
            .await;
        let failure_id = response["outcomes"][0]["failure_id"].as_i64().unwrap();
        let replay = format!("/v1/failures/{failure_id}/replay");
        let (_, still) = server.call(Method::POST, &replay, Some(&f.admin.token), None).await;
        assert_eq!(still["outcome"]["outcome"], "failed");
        // The cause is fixed: the city now exists.
        let (_, fix) = server
            .upload(
                &f.planner,
                "f2",
                json!([create("Field.City", &city, json!({ "Name": "Utrecht" }))]),
            )
            .await;
        assert_eq!(outcomes(&fix), ["applied"]);
        let (status, replayed) =
            server.call(Method::POST, &replay, Some(&f.admin.token), None).await;
        assert_eq!(status, StatusCode::OK, "{replayed}");
        assert_eq!(replayed["outcome"]["outcome"], "applied");
        let (_, record) = server
            .call(Method::GET, &format!("/v1/failures/{failure_id}"), Some(&f.admin.token), None)
            .await;
        assert!(record["replayed_at"].is_string(), "{record}");
        let (status, _) = server.call(Method::POST, &replay, Some(&f.admin.token), None).await;
        assert_eq!(status, StatusCode::CONFLICT);
    }
}

#[tokio::test]
async fn bad_requests_are_refused_whole_and_change_nothing() {
    for backend in backends() {
        let limits = Limits { upload_objects_max: 3, body_bytes_max: 4096, ..Limits::default() };
        let server = TestServer::start_with(
            backend,
            ferry_model::samples::FIELD_SERVICE,
            Handlers::default(),
            limits,
        )
        .await;
        let f = fixture_small(&server).await;
        let good = update("Field.WorkOrder", &f.1, json!({ "Notes": "must not land" }));
        let cases = [
            (
                json!([good, create("Field.Nope", &id(1), json!({}))]),
                "change 1: unknown entity `Field.Nope`".to_owned(),
            ),
            (
                json!([good, update("Field.WorkOrder", &id(3), json!({ "Colour": "red" }))]),
                "change 1: `Field.WorkOrder` has no member `Colour`".to_owned(),
            ),
            (
                json!([good, update("Field.WorkOrder", "not-an-id", json!({}))]),
                "change 1: `not-an-id` is not an object id".to_owned(),
            ),
            (
                json!([good, update("Field.City", &id(2), json!({ "Name": 5 }))]),
                "change 1: `Field.City.Name`: expected a string without NUL characters, found 5"
                    .to_owned(),
            ),
            (
                json!([good, update("Field.WorkOrder", &f.1, json!({ "Priority": 2 }))]),
                format!("change 1: `Field.WorkOrder` {} appears twice in the upload", f.1),
            ),
            (
                json!([good, good, good, good]),
                "an upload holds at most 3 objects, this one 4".to_owned(),
            ),
        ];
        for (changes, message) in cases {
            let (status, body) = server.upload(&f.0, "bad", changes).await;
            assert!(status.is_client_error(), "{status} {body}");
            assert_eq!(body["message"], message);
        }
        let (status, body) = server
            .raw(Method::POST, "/v1/upload", Some(&f.0.token), axum::body::Body::from("{not json"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let huge =
            json!({ "upload_id": "x", "device": "d", "changes": [], "padding": "x".repeat(5000) });
        let (status, body) =
            server.call(Method::POST, "/v1/upload", Some(&f.0.token), Some(huge)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        let after = server.download_all(&f.0, "Field.WorkOrder", None).await;
        assert_eq!(after.objects[&f.1]["values"]["Notes"], serde_json::Value::Null);
        let (_, failures) = server.call(Method::GET, "/v1/failures", Some(&f.0.token), None).await;
        assert_eq!(failures["code"], "forbidden");
    }
}

/// A planner and one work order, for tests that need little.
async fn fixture_small(server: &TestServer) -> (crate::harness::SignedIn, String) {
    let planner = server.user("pat", &["Planner"]).await;
    let order = id(201);
    let (_, response) = server
        .upload(
            &planner,
            "setup",
            json!([create("Field.WorkOrder", &order, json!({ "Number": 1, "Title": "one" }))]),
        )
        .await;
    assert_eq!(outcomes(&response), ["applied"]);
    (planner, order)
}

/// The same upload sent twice at once (a device that timed out and retried while the first
/// attempt was still running): one applies, the other waits and gets the same result.
#[tokio::test]
async fn a_retry_while_the_first_attempt_runs_gets_the_same_result() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let f = fixture(&server).await;
        let changes = json!([
            update("Field.WorkOrder", &f.orders[0], json!({ "Notes": "concurrent" })),
            create("Field.Feedback", &id(950), json!({ "Message": "twice?" })),
        ]);
        let (first, second) = tokio::join!(
            server.upload(&f.alice, "same", changes.clone()),
            server.upload(&f.alice, "same", changes)
        );
        assert_eq!((first.0, second.0), (StatusCode::OK, StatusCode::OK));
        assert_eq!(first.1, second.1);
        assert_eq!(first.1["outcomes"][0]["revision"], 2, "applied once");
        let (_, history) =
            server.call(Method::GET, "/v1/history", Some(&f.admin.token), None).await;
        let same: Vec<&serde_json::Value> = history["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["upload_id"] == "same")
            .collect();
        assert_eq!(same.len(), 1, "{history}");
    }
}

/// Unique values are looked up in lists (one array on PostgreSQL): quotes, backslashes and
/// commas inside them must not break the lookup.
#[tokio::test]
async fn unique_values_with_quotes_and_backslashes_are_checked() {
    for backend in backends() {
        let server = TestServer::start_with(
            backend,
            ferry_model::samples::SALES,
            Handlers::default(),
            Limits::default(),
        )
        .await;
        let boss = server.user("boss", &["Manager"]).await;
        let codes = ["\",", "\\}"];
        let first: Vec<serde_json::Value> = codes
            .iter()
            .enumerate()
            .map(|(n, code)| create("Sales.Country", &id(n as u128), json!({ "Code": code })))
            .collect();
        let (_, response) = server.upload(&boss, "c1", serde_json::Value::Array(first)).await;
        assert_eq!(outcomes(&response), ["applied", "applied"]);
        let again: Vec<serde_json::Value> = codes
            .iter()
            .enumerate()
            .map(|(n, code)| create("Sales.Country", &id(10 + n as u128), json!({ "Code": code })))
            .collect();
        let (_, response) = server.upload(&boss, "c2", serde_json::Value::Array(again)).await;
        assert_eq!(
            outcomes(&response),
            [
                "failed: validation: `Code` must be unique, and another `Sales.Country` has \"\\\",\"",
                "failed: validation: `Code` must be unique, and another `Sales.Country` has \"\\\\}\"",
            ]
        );
    }
}

/// Devices report each completed sync for `SynchronizationHistory`; a report that is not one
/// is refused whole and records nothing.
#[tokio::test]
async fn sync_reports_are_checked_before_they_are_recorded() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let f = fixture(&server).await;
        let report = |mode: &str, objects_down: i64| {
            json!({ "device": "tablet-7", "mode": mode, "upload_id": "", "duration_ms": 12,
                    "objects_up": 0, "objects_down": objects_down, "errors": 0 })
        };
        for (bad, why) in [
            (report("sometimes", 1), "mode must be one of all, unsynchronized, selected"),
            (report("all", -1), "durations and counts cannot be negative"),
        ] {
            let (status, body) =
                server.call(Method::POST, "/v1/sync-report", Some(&f.alice.token), Some(bad)).await;
            assert_eq!((status, body["message"].as_str()), (StatusCode::BAD_REQUEST, Some(why)));
        }
        let (status, _) =
            server.call(Method::POST, "/v1/sync-report", None, Some(report("all", 5))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = server
            .call(Method::POST, "/v1/sync-report", Some(&f.alice.token), Some(report("all", 5)))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, history) =
            server.call(Method::GET, "/v1/history", Some(&f.admin.token), None).await;
        let syncs: Vec<&serde_json::Value> = history["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["mode"] != "upload")
            .collect();
        assert_eq!(syncs.len(), 1, "{history}");
        assert_eq!(
            (syncs[0]["user"].as_str(), syncs[0]["objects_down"].as_i64()),
            (Some("alice"), Some(5))
        );
    }
}

#[tokio::test]
async fn every_rejection_carries_its_kind_on_the_wire_and_in_its_failure() {
    for backend in backends() {
        let handlers = Handlers::default()
            .before_apply("Field.Feedback", Box::new(|_| Err("closed for feedback".to_owned())));
        let server = TestServer::start_with(
            backend,
            ferry_model::samples::FIELD_SERVICE,
            handlers,
            Limits::default(),
        )
        .await;
        let f = fixture(&server).await;
        let changes = json!([
            // Access: a technician may not rename a work order.
            update("Field.WorkOrder", &f.orders[0], json!({ "Title": "renamed" })),
            // Conflict: the object does not exist on the server.
            update("Field.Site", &id(990), json!({ "Name": "nowhere" })),
            // Dangling reference: the site exists neither on the server nor in the upload.
            create(
                "Field.Visit",
                &id(991),
                json!({ "StartedAt": "2026-11-23T08:00:00Z", "Field.Visit_WorkOrder": id(992) })
            ),
            // Validation: a visit must say when it started.
            create("Field.Visit", &id(993), json!({ "Field.Visit_WorkOrder": f.orders[0] })),
            // Handler: the app's before-apply handler refuses.
            create("Field.Feedback", &id(994), json!({ "Message": "hello" })),
        ]);
        let (status, response) = server.upload(&f.alice, "kinds", changes).await;
        assert_eq!(status, StatusCode::OK, "{response}");
        let kinds: Vec<&str> = response["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["kind"].as_str().unwrap_or("none"))
            .collect();
        let expected = ["access", "conflict", "dangling-reference", "validation", "handler"];
        assert_eq!(kinds, expected, "{response}");
        let (_, list) = server.call(Method::GET, "/v1/failures", Some(&f.admin.token), None).await;
        // Each failure, found by its object, records the kind its outcome carried.
        let outcomes = response["outcomes"].as_array().unwrap();
        for failure in list["failures"].as_array().unwrap() {
            let outcome = outcomes.iter().find(|o| o["id"] == failure["object_id"]).unwrap();
            assert_eq!(failure["rejection"], outcome["kind"], "{list}");
        }
        assert_eq!(list["failures"].as_array().unwrap().len(), expected.len());
    }
}

#[tokio::test]
async fn a_retry_after_its_answer_expired_neither_duplicates_nor_overwrites() {
    for backend in backends() {
        let limits = Limits { access_token_lifetime_seconds: 400 * 86_400, ..Limits::default() };
        let server = TestServer::start_with(
            backend,
            ferry_model::samples::FIELD_SERVICE,
            Handlers::default(),
            limits,
        )
        .await;
        let f = fixture(&server).await;
        let site = id(801);
        let order = &f.orders[0];
        let first = json!([
            create("Field.Site", &site, json!({ "Name": "North" })),
            update("Field.WorkOrder", order, json!({ "Notes": "first" })),
        ]);
        let (_, answered) = server.upload(&f.planner, "offline-long", first.clone()).await;
        assert_eq!(outcomes(&answered), ["applied", "applied"]);
        // Someone else changes both; the device never heard its answer.
        let rename = json!([
            update("Field.Site", &site, json!({ "Name": "Renamed" })),
            update("Field.WorkOrder", order, json!({ "Notes": "second" })),
        ]);
        let renamed = server.upload(&f.admin, "rename", rename).await.1;
        assert_eq!(outcomes(&renamed), ["applied", "applied"]);
        // Past the retention, another upload drops the old answer.
        let later = server.clock.now_plus_days(ferry_server::UPLOAD_RETENTION_DAYS + 1);
        *server.clock.0.lock().unwrap() = later;
        let other = json!([create("Field.Site", &id(802), json!({ "Name": "South" }))]);
        assert_eq!(outcomes(&server.upload(&f.planner, "later", other).await.1), ["applied"]);
        // The device comes back and resends the same upload.
        let (status, again) = server.upload(&f.planner, "offline-long", first).await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(outcomes(&again), ["applied", "applied"], "{again}");
        assert_eq!(again["outcomes"][0]["values"]["Name"], "Renamed", "{again}");
        assert_eq!(again["outcomes"][1]["values"]["Notes"], "second", "{again}");
        let (_, page) =
            server.call(Method::GET, "/v1/download/Field.Site", Some(&f.admin.token), None).await;
        let named: Vec<&str> = page["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["id"] == site.as_str())
            .map(|o| o["values"]["Name"].as_str().unwrap())
            .collect();
        assert_eq!(named, ["Renamed"], "not made twice, not overwritten: {page}");
        let (_, orders) = server
            .call(Method::GET, "/v1/download/Field.WorkOrder", Some(&f.admin.token), None)
            .await;
        let notes: Vec<&str> = orders["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["id"] == order.as_str())
            .map(|o| o["values"]["Notes"].as_str().unwrap())
            .collect();
        assert_eq!(notes, ["second"], "the later change stays: {orders}");
    }
}
