//! Downloads: what each user may read, under each entity's download behaviour, incrementally
//! from checkpoints that never miss a change, with removals for what left the user's view.

use axum::http::{Method, StatusCode};
use ferry_model::samples;
use ferry_server::{Handlers, Limits};
use serde_json::json;

use crate::harness::{
    Backend, TestServer, backends, create, delete, fixture, id, outcomes, update,
};

#[tokio::test]
async fn each_user_downloads_what_their_rules_let_them_read() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let f = fixture(&server).await;
        let alice = server.download_all(&f.alice, "Field.WorkOrder", None).await;
        let mut expected = vec![f.orders[0].clone(), f.orders[1].clone()];
        expected.sort();
        assert_eq!(alice.objects.keys().cloned().collect::<Vec<_>>(), expected);
        assert_eq!(alice.mode, "full");
        let planner = server.download_all(&f.planner, "Field.WorkOrder", None).await;
        assert_eq!(planner.objects.len(), 4);
        // Readable members only: technicians do not read customers' email.
        let customer = id(900);
        let (_, created) = server
            .upload(
                &f.planner,
                "c",
                json!([create(
                    "Field.Customer",
                    &customer,
                    json!({ "Name": "Acme", "Email": "a@b.c" })
                )]),
            )
            .await;
        assert_eq!(outcomes(&created), ["applied"]);
        let seen = server.download_all(&f.alice, "Field.Customer", None).await;
        let values = seen.objects[&customer]["values"].as_object().unwrap();
        assert!(values.contains_key("Name") && !values.contains_key("Email"), "{values:?}");
        let planner_view = server.download_all(&f.planner, "Field.Customer", None).await;
        assert_eq!(planner_view.objects[&customer]["values"]["Email"], "a@b.c");
    }
}

#[tokio::test]
async fn incremental_downloads_send_changes_and_removals_only() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let f = fixture(&server).await;
        let first = server.download_all(&f.planner, "Field.Site", None).await;
        assert_eq!(first.objects.len(), 1);
        let (_, changed) = server
            .upload(
                &f.planner,
                "i1",
                json!([
                    update("Field.Site", &f.site, json!({ "Address": "Main 1" })),
                    create("Field.Site", &id(902), json!({ "Name": "Yard" }))
                ]),
            )
            .await;
        assert_eq!(outcomes(&changed), ["applied", "applied"]);
        let second = server.download_all(&f.planner, "Field.Site", Some(&first.checkpoint)).await;
        assert_eq!(second.mode, "incremental");
        assert_eq!(second.objects.len(), 2);
        assert_eq!(second.objects[&f.site]["values"]["Address"], "Main 1");
        let (_, deleted) =
            server.upload(&f.planner, "i2", json!([delete("Field.Site", &id(902))])).await;
        assert_eq!(outcomes(&deleted), ["deleted"]);
        let third = server.download_all(&f.planner, "Field.Site", Some(&second.checkpoint)).await;
        assert_eq!((third.objects.len(), third.removed.clone()), (0, vec![id(902)]));
        let nothing = server.download_all(&f.planner, "Field.Site", Some(&third.checkpoint)).await;
        assert_eq!((nothing.objects.len(), nothing.removed.len()), (0, 0));
    }
}

#[tokio::test]
async fn objects_that_leave_the_view_are_removed() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let f = fixture(&server).await;
        let before = server.download_all(&f.alice, "Field.WorkOrder", None).await;
        assert_eq!(before.objects.len(), 2);
        // Reassigned to Bob: Alice may no longer read it, and it arrives as a removal.
        let (_, moved) = server
            .upload(
                &f.planner,
                "m",
                json!([update(
                    "Field.WorkOrder",
                    &f.orders[0],
                    json!({ "Field.WorkOrder_AssignedTo": f.bob.id.to_string() })
                )]),
            )
            .await;
        assert_eq!(outcomes(&moved), ["applied"]);
        let after =
            server.download_all(&f.alice, "Field.WorkOrder", Some(&before.checkpoint)).await;
        assert_eq!(
            (after.mode.as_str(), after.objects.len(), after.removed.clone()),
            ("incremental", 0, vec![f.orders[0].clone()])
        );
        let bob = server.download_all(&f.bob, "Field.WorkOrder", None).await;
        assert_eq!(bob.objects.len(), 3);

        // Sales customers download incrementally (the rule depends only on the object and the
        // user): one given to another sales person arrives as a removal.
        let server =
            TestServer::start_with(backend, samples::SALES, Default::default(), Default::default())
                .await;
        let sam = server.user("sam", &["SalesPerson"]).await;
        let sue = server.user("sue", &["SalesPerson"]).await;
        let boss = server.user("boss", &["Manager"]).await;
        let customer = id(920);
        let (_, created) = server
            .upload(
                &sam,
                "s1",
                json!([create(
                    "Sales.Customer",
                    &customer,
                    json!({ "Name": "Acme", "Sales.Customer_Owner": sam.id.to_string() })
                )]),
            )
            .await;
        assert_eq!(outcomes(&created), ["applied"]);
        let first = server.download_all(&sam, "Sales.Customer", None).await;
        assert_eq!(first.objects.len(), 1);
        let (_, handed) = server
            .upload(
                &boss,
                "s2",
                json!([update(
                    "Sales.Customer",
                    &customer,
                    json!({ "Sales.Customer_Owner": sue.id.to_string() })
                )]),
            )
            .await;
        assert_eq!(outcomes(&handed), ["applied"]);
        let second = server.download_all(&sam, "Sales.Customer", Some(&first.checkpoint)).await;
        assert_eq!(
            (second.mode.as_str(), second.objects.len(), second.removed.clone()),
            ("incremental", 0, vec![customer.clone()])
        );
        let sue_view = server.download_all(&sue, "Sales.Customer", Some(&first.checkpoint)).await;
        assert_eq!(sue_view.mode, "full", "a checkpoint made for another user starts over");
        assert_eq!(sue_view.objects.len(), 1);
    }
}

#[tokio::test]
async fn download_behaviours_clear_preserve_and_constrain() {
    for backend in backends() {
        let server = server_with_day_long_tokens(backend).await;
        let f = fixture(&server).await;
        let (_, sent) = server
            .upload(
                &f.alice,
                "fb",
                json!([create("Field.Feedback", &id(910), json!({ "Message": "hi" }))]),
            )
            .await;
        assert_eq!(outcomes(&sent), ["applied"]);
        let feedback = server.download_all(&f.alice, "Field.Feedback", None).await;
        assert_eq!((feedback.mode.as_str(), feedback.objects.len()), ("full", 0));
        let photos = server.download_all(&f.alice, "Field.Photo", None).await;
        assert_eq!((photos.mode.as_str(), photos.objects.len()), ("incremental", 0));
        // Closed and overdue work orders leave every planner's download. The constraint uses
        // `BeginOfCurrentDay`: within a day only changed objects can enter or leave the view, so
        // downloads stay incremental; a checkpoint of another day starts over in full.
        let (_, closed) = server
            .upload(
                &f.planner,
                "cl",
                json!([update(
                    "Field.WorkOrder",
                    &f.orders[3],
                    json!({ "Status": "Closed", "DueDate": "2026-11-01T00:00:00Z" })
                )]),
            )
            .await;
        assert_eq!(outcomes(&closed), ["applied"]);
        let planner = server.download_all(&f.planner, "Field.WorkOrder", None).await;
        assert_eq!((planner.mode.as_str(), planner.objects.len()), ("full", 3));
        let (_, reopened) = server
            .upload(
                &f.planner,
                "ro",
                json!([
                    update("Field.WorkOrder", &f.orders[3], json!({ "Status": "Open" })),
                    update("Field.WorkOrder", &f.orders[0], json!({ "Status": "Closed" }))
                ]),
            )
            .await;
        assert_eq!(outcomes(&reopened), ["applied", "applied"]);
        let again =
            server.download_all(&f.planner, "Field.WorkOrder", Some(&planner.checkpoint)).await;
        assert_eq!(again.mode, "incremental");
        // Order 3 is open again, order 0 closed without a due date leaves the view.
        assert_eq!(again.objects.keys().collect::<Vec<_>>(), [&f.orders[3]]);
        assert_eq!(again.removed, [f.orders[0].clone()]);
        let tomorrow = server.clock.now_plus_days(1);
        *server.clock.0.lock().unwrap() = tomorrow;
        let tomorrow =
            server.download_all(&f.planner, "Field.WorkOrder", Some(&again.checkpoint)).await;
        assert_eq!(tomorrow.mode, "full");
    }
}

#[tokio::test]
async fn pages_cover_everything_exactly_once() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let planner = server.user("pat", &["Planner"]).await;
        let sites: Vec<serde_json::Value> = (0..25)
            .map(|n| create("Field.Site", &id(1000 + n), json!({ "Name": format!("Site {n}") })))
            .collect();
        let (_, created) = server.upload(&planner, "many", serde_json::Value::Array(sites)).await;
        assert!(outcomes(&created).iter().all(|o| o == "applied"));
        let mut after: Option<String> = None;
        let mut seen = std::collections::BTreeSet::new();
        let mut pages = 0;
        loop {
            let query = after.as_ref().map(|a| format!("&after={a}")).unwrap_or_default();
            let (status, page) = server
                .call(
                    Method::GET,
                    &format!("/v1/download/Field.Site?limit=7{query}"),
                    Some(&planner.token),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            for object in page["objects"].as_array().unwrap() {
                assert!(seen.insert(object["id"].as_str().unwrap().to_owned()), "sent twice");
            }
            pages += 1;
            after = Some(page["checkpoint"].as_str().unwrap().to_owned());
            if !page["more"].as_bool().unwrap() {
                break;
            }
        }
        assert_eq!((seen.len(), pages), (25, 4));
        let (status, body) = server
            .call(Method::GET, "/v1/download/Field.Site?limit=0", Some(&planner.token), None)
            .await;
        assert_eq!(
            (status, body["message"].as_str()),
            (StatusCode::BAD_REQUEST, Some("limit must be between 1 and 10000"))
        );
        let (status, _) =
            server.call(Method::GET, "/v1/download/Field.Nope", Some(&planner.token), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = server
            .call(Method::GET, "/v1/download/Field.Site?after=garbage", Some(&planner.token), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}

/// Asked with `count=true`, a page says how many entries the download holds from there: the
/// objects of the user's view in a full download, changes and removals in an incremental one.
#[tokio::test]
async fn a_first_page_counts_the_download_it_begins() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let f = fixture(&server).await;
        let page = async |who: &crate::harness::SignedIn, query: &str| {
            let path = format!("/v1/download/Field.WorkOrder?limit=1{query}");
            let (status, page) = server.call(Method::GET, &path, Some(&who.token), None).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            page
        };
        let planner = page(&f.planner, "&count=true").await;
        assert_eq!((planner["mode"].as_str(), planner["total"].as_u64()), (Some("full"), Some(4)));
        let alice = page(&f.alice, "&count=true").await;
        assert_eq!(alice["total"].as_u64(), Some(2), "only her work orders: {alice}");
        let next = format!("&count=false&after={}", alice["checkpoint"].as_str().unwrap());
        assert!(page(&f.alice, &next).await.get("total").is_none(), "counted when asked only");

        let whole = server.download_all(&f.planner, "Field.WorkOrder", None).await;
        let (_, changed) = server
            .upload(
                &f.planner,
                "c1",
                json!([
                    update("Field.WorkOrder", &f.orders[0], json!({ "Notes": "one" })),
                    update("Field.WorkOrder", &f.orders[1], json!({ "Notes": "two" })),
                    delete("Field.WorkOrder", &f.orders[3]),
                ]),
            )
            .await;
        assert_eq!(outcomes(&changed), ["applied", "applied", "deleted"]);
        let after = format!("&count=true&after={}", whole.checkpoint);
        let incremental = page(&f.planner, &after).await;
        assert_eq!(
            (incremental["mode"].as_str(), incremental["total"].as_u64()),
            (Some("incremental"), Some(3))
        );
        let (status, feedback) = server
            .call(Method::GET, "/v1/download/Field.Feedback?count=true", Some(&f.alice.token), None)
            .await;
        assert_eq!((status, feedback["total"].as_u64()), (StatusCode::OK, Some(0)));
    }
}

/// A writer that took an earlier position in the change sequence but commits after a download
/// ran: the next download from that download's checkpoint must still see its change. The
/// writer and the reader are two servers on one database, as with two server processes.
#[tokio::test]
async fn a_slow_writer_is_never_skipped_by_a_checkpoint() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let server = TestServer::start(Backend::Postgres).await;
    let f = fixture(&server).await;
    let ferry_server::Database::Postgres(url) = &server.database else {
        unreachable!("a PostgreSQL test")
    };
    let before = server.download_all(&f.planner, "Field.Site", None).await;

    // A second server process on the same database.
    let config = ferry_server::Config {
        model_text: samples::FIELD_SERVICE.to_owned(),
        database: server.database.clone(),
        files: server.files.clone(),
        limits: Default::default(),
        handlers: Default::default(),
        clock: server.clock.clone(),
        identity: None,
        app: None,
    };
    let other = ferry_server::Server::open(config).await.unwrap();

    // The slow writer: a transaction that takes its sequence position and changes the site,
    // then waits before committing.
    let (mut writer, connection) =
        tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let transaction = writer.transaction().await.unwrap();
    let seq: i64 = transaction
        .query_one("UPDATE ferry_sequence SET value = value + 1 WHERE id = 1 RETURNING value", &[])
        .await
        .unwrap()
        .get(0);
    transaction
        .execute("UPDATE \"Field.Site\" SET \"Address\" = 'slow', _rev = _rev + 1, _seq = $1 WHERE id = $2::text::uuid", &[&seq, &f.site])
        .await
        .unwrap();

    // Meanwhile the other server answers a download (and a writer there waits its turn).
    let reader = TestServer {
        server: other,
        database: server.database.clone(),
        files: server.files.clone(),
        clock: server.clock.clone(),
    };
    let during = reader.download_all(&f.planner, "Field.Site", Some(&before.checkpoint)).await;
    assert!(during.objects.is_empty(), "{during:?}");
    transaction.commit().await.unwrap();

    let after = reader.download_all(&f.planner, "Field.Site", Some(&during.checkpoint)).await;
    assert_eq!(after.objects[&f.site]["values"]["Address"], "slow");
}

/// A full download asked as an index: ids and revisions only; the device fetches what it lacks
/// or holds outdated, and drops what is not in the index.
#[tokio::test]
async fn full_downloads_reconcile_by_ids_and_revisions() {
    for backend in backends() {
        let server = server_with_day_long_tokens(backend).await;
        let f = fixture(&server).await;
        // Work orders download by a constraint with a day token: a checkpoint of yesterday
        // starts a full download.
        let device = server.download_all(&f.planner, "Field.WorkOrder", None).await;
        let (_, changed) = server
            .upload(
                &f.planner,
                "x",
                json!([update("Field.WorkOrder", &f.orders[1], json!({ "Notes": "changed" }))]),
            )
            .await;
        assert_eq!(outcomes(&changed), ["applied"]);
        let tomorrow = server.clock.now_plus_days(1);
        *server.clock.0.lock().unwrap() = tomorrow;
        let (status, index) = server
            .call(
                Method::GET,
                &format!("/v1/download/Field.WorkOrder?index=true&after={}", device.checkpoint),
                Some(&f.planner.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{index}");
        assert_eq!((index["mode"].as_str(), index["index"].as_bool()), (Some("full"), Some(true)));
        let entries = index["objects"].as_array().unwrap();
        assert_eq!(entries.len(), 4);
        assert!(entries.iter().all(|e| e["values"].as_object().unwrap().is_empty()));
        // The device compares revisions with what it holds and asks for the outdated one.
        let outdated: Vec<String> = entries
            .iter()
            .filter(|e| device.objects[e["id"].as_str().unwrap()]["revision"] != e["revision"])
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(outdated, vec![f.orders[1].clone()]);
        let asked = json!({ "ids": [outdated[0], f.orders[2], id(99_999)] });
        let (status, fetched) = server
            .call(
                Method::POST,
                "/v1/download/Field.WorkOrder/objects",
                Some(&f.alice.token),
                Some(asked),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{fetched}");
        // Alice may read her order but not Bob's; an unknown id is gone too.
        assert_eq!(fetched["objects"].as_array().unwrap().len(), 1);
        assert_eq!(fetched["objects"][0]["values"]["Notes"], "changed");
        assert_eq!(fetched["removed"], json!([f.orders[2], id(99_999)]));
        let (status, body) = server
            .call(
                Method::POST,
                "/v1/download/Field.WorkOrder/objects",
                Some(&f.alice.token),
                Some(json!({ "ids": ["nope"] })),
            )
            .await;
        assert_eq!(
            (status, body["message"].as_str()),
            (StatusCode::BAD_REQUEST, Some("`nope` is not an object id"))
        );
    }
}

/// What a device holds of each entity, and its checkpoint there.
type Device = std::collections::BTreeMap<
    &'static str,
    (std::collections::BTreeMap<String, serde_json::Value>, Option<String>),
>;

/// The convergence invariant: a device that follows every change with incremental downloads
/// (and full ones where the filter demands) holds exactly what a fresh device of the same user
/// gets from its first full sync, after every round of changes.
#[tokio::test]
async fn a_device_following_changes_equals_a_fresh_device() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let f = fixture(&server).await;
        let entities = ["Field.Site", "Field.WorkOrder", "Field.Customer"];
        let mut devices: Vec<(&crate::harness::SignedIn, Device)> =
            vec![(&f.alice, Device::default()), (&f.planner, Device::default())];
        let mut rng = ferry_model::arbitrary::SplitMix64::new(7);
        let mut sites: Vec<String> = vec![f.site.clone()];
        let mut next = 3_000;
        for round in 0..6 {
            // A round of changes by the planner: new sites and orders, edits, reassignments, deletions.
            let mut changes = Vec::new();
            for _ in 0..4 {
                next += 1;
                match rng.below(5) {
                    0 => {
                        let site = id(next);
                        changes.push(create("Field.Site", &site, json!({ "Name": format!("Site {next}") })));
                        sites.push(site);
                    }
                    1 => changes.push(create(
                        "Field.WorkOrder",
                        &id(next),
                        json!({ "Number": next, "Title": "new", "Field.WorkOrder_AssignedTo": if rng.chance(1, 2) { f.alice.id } else { f.bob.id }.to_string() }),
                    )),
                    2 => changes.push(update("Field.Site", rng.pick(sites.as_slice()).as_str(), json!({ "Address": format!("Street {next}") }))),
                    3 => changes.push(update(
                        "Field.WorkOrder",
                        rng.pick(f.orders.as_slice()).as_str(),
                        json!({ "Field.WorkOrder_AssignedTo": if rng.chance(1, 2) { f.alice.id } else { f.bob.id }.to_string(), "Notes": format!("round {round}") }),
                    )),
                    _ if sites.len() > 1 => {
                        let site = sites.remove(1 + rng.below(sites.len() - 1));
                        changes.push(delete("Field.Site", &site));
                    }
                    _ => {}
                }
            }
            let mut seen = std::collections::BTreeSet::new();
            changes.retain(|c| seen.insert(c["id"].as_str().unwrap().to_owned()));
            let (status, response) = server
                .upload(&f.planner, &format!("round-{round}"), serde_json::Value::Array(changes))
                .await;
            assert_eq!(status, StatusCode::OK, "{response}");

            for (user, device) in &mut devices {
                for entity in entities {
                    let (held, checkpoint) = device.entry(entity).or_default();
                    let page = server.download_all(user, entity, checkpoint.as_deref()).await;
                    if page.mode == "full" {
                        held.clear();
                    }
                    for id in &page.removed {
                        held.remove(id);
                    }
                    held.extend(page.objects.clone());
                    *checkpoint = Some(page.checkpoint.clone());
                    let fresh = server.download_all(user, entity, None).await;
                    assert_eq!(
                        held, &fresh.objects,
                        "round {round}: {entity} on an incrementally synced device"
                    );
                }
            }
        }
    }
}

/// A server of the sample model whose access tokens outlast a day: the tests that move the
/// clock a day on stay on downloads.
async fn server_with_day_long_tokens(backend: Backend) -> TestServer {
    let limits = Limits { access_token_lifetime_seconds: 2 * 86_400, ..Limits::default() };
    TestServer::start_with(backend, samples::FIELD_SERVICE, Handlers::default(), limits).await
}

/// Deletion records older than the horizon go; a device whose checkpoint is older gets a full
/// download (what it holds beyond it is removed: nothing missing, nothing resurrected), and one
/// whose checkpoint is newer goes on incrementally.
#[tokio::test]
async fn a_checkpoint_older_than_the_deletion_horizon_gets_a_full_download() {
    for backend in backends() {
        let limits = Limits { deletion_horizon_days: 90, ..Default::default() };
        let server =
            TestServer::start_with(backend, samples::FIELD_SERVICE, Default::default(), limits)
                .await;
        let planner = server.user("pia", &["Planner"]).await;
        let sites = json!([
            create("Field.Site", &id(1), json!({ "Name": "Depot" })),
            create("Field.Site", &id(2), json!({ "Name": "Shed" })),
        ]);
        server.upload(&planner, "h-1", sites).await;
        let before = server.download_all(&planner, "Field.Site", None).await;
        server.upload(&planner, "h-2", json!([delete("Field.Site", &id(1))])).await;
        assert_eq!(server.server.collect().await.unwrap().deletions, 0, "within the horizon");
        let recent = server.download_all(&planner, "Field.Site", Some(&before.checkpoint)).await;
        assert_eq!((recent.mode.as_str(), recent.removed.clone()), ("incremental", vec![id(1)]));

        *server.clock.0.lock().unwrap() = server.clock.now_plus_days(91);
        assert_eq!(server.server.collect().await.unwrap().deletions, 1, "{backend:?}");
        let (status, signed) = server
            .call(
                Method::POST,
                "/v1/sign-in",
                None,
                Some(json!({ "user": "pia", "password": crate::harness::PASSWORD })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{signed}");
        let again = crate::harness::SignedIn {
            token: signed["token"].as_str().unwrap().to_owned(),
            refresh: String::new(),
            id: planner.id,
        };
        let old = server.download_all(&again, "Field.Site", Some(&before.checkpoint)).await;
        assert_eq!(old.mode, "full", "{backend:?}: the deletion record is gone");
        assert_eq!(old.objects.keys().collect::<Vec<_>>(), vec![&id(2)], "{backend:?}");
        let after = server.download_all(&again, "Field.Site", Some(&old.checkpoint)).await;
        assert_eq!(after.mode, "incremental", "{backend:?}");
    }
}
