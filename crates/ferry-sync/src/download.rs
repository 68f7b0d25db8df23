//! The download: per entity a loop of pages from its checkpoint, incremental or full; a full
//! download asked as an index when the device holds objects of the entity, reconciled with the
//! revisions it holds; and the fresh state of objects the server rejected or the app selected.
//! Every step goes to the shell's one local transaction, committed after the last.

use std::collections::BTreeMap;

use ferry_model::{Entity, EntityKind, ObjectId};
use ferry_protocol::endpoint::{self, Endpoint};
use ferry_protocol::{
    DownloadMode, DownloadPage, DownloadedObject, ObjectsRequest, ObjectsResponse,
};

use crate::error::Error;
use crate::event::{Action, Event, Step};
use crate::files::fetch_contents;
use crate::progress::Progress;
use crate::report::SyncReport;
use crate::run::{Cx, unexpected};

/// Every entity per its download behaviour, then the fresh state of the objects the upload had
/// rejected (they may hold values the server does not: a rejected new object leaves the
/// device). A cancellation up to the commit rolls everything back.
pub(crate) async fn all(cx: &mut Cx, report: &mut SyncReport) -> Result<(), Error> {
    let rejected = report.rejected_objects();
    cx.io.emit(Action::BeginDownload);
    let model = std::sync::Arc::clone(&cx.model);
    let mut fetched = 0;
    for entity in model.entities().filter(|e| e.kind != EntityKind::System) {
        fetched += entity_pages(cx, entity).await?;
    }
    fetched += fresh_state(cx, &rejected).await?;
    cx.io.check_cancel()?;
    commit(cx, report).await?;
    report.files_downloaded += fetched;
    Ok(())
}

/// The fresh server state of these objects, in one local transaction.
pub(crate) async fn refresh(
    cx: &mut Cx,
    objects: &[(String, ObjectId)],
    report: &mut SyncReport,
) -> Result<(), Error> {
    cx.io.emit(Action::BeginDownload);
    let fetched = fresh_state(cx, objects).await?;
    commit(cx, report).await?;
    report.files_downloaded += fetched;
    Ok(())
}

async fn commit(cx: &mut Cx, report: &mut SyncReport) -> Result<(), Error> {
    match cx.io.ask(Action::CommitDownload).await {
        Event::Committed { downloaded, removed } => {
            report.downloaded.extend(downloaded);
            report.removed.extend(removed);
            Ok(())
        }
        other => Err(unexpected(&other)),
    }
}

/// One entity's pages, from its checkpoint; the first page also asks the count the progress is
/// reported against. Gives the file contents fetched.
async fn entity_pages(cx: &mut Cx, entity: &Entity) -> Result<usize, Error> {
    let name = entity.name.to_string();
    let (mut after, index) = match cx.io.ask(Action::ReadEntity { entity: name.clone() }).await {
        Event::EntityState { checkpoint, holds_objects } => (checkpoint, holds_objects),
        other => return Err(unexpected(&other)),
    };
    let mut progress = Progress::download(&name);
    let mut begun = false;
    let mut fetched = 0;
    loop {
        cx.io.check_cancel()?;
        let mut path =
            format!("{}?index={index}&count={}", endpoint::Download::ROUTE.path(&[&name]), !begun);
        if let Some(after) = &after {
            path.push_str(&format!("&after={after}"));
        }
        let (page, size): (DownloadPage, usize) = cx.json::<endpoint::Download>(path, None).await?;
        progress.advance(&page, size);
        cx.io.emit(Action::Progress(progress.clone()));
        if !begun {
            let full = page.mode == DownloadMode::Full;
            cx.io.emit(Action::Download(Step::Begin { entity: name.clone(), full }));
            begun = true;
        }
        let more = page.more;
        after = Some(page.checkpoint);
        let step = match page.index {
            true => reconcile(cx, &name, page.objects).await?,
            false => {
                Step::Page { objects: page.objects, removed: page.removed, unchanged: Vec::new() }
            }
        };
        if let Step::Page { objects, .. } = &step {
            fetched += fetch_contents(cx, entity, objects).await?;
        }
        cx.io.emit(Action::Download(step));
        if !more {
            break;
        }
    }
    cx.io.emit(Action::Download(Step::End { checkpoint: after }));
    Ok(fetched)
}

/// Compares an index page with the revisions the device holds; fetches the objects that
/// differ or that it lacks. The others stay as they are.
async fn reconcile(cx: &mut Cx, entity: &str, index: Vec<DownloadedObject>) -> Result<Step, Error> {
    let ids = index.iter().map(|entry| entry.id.clone()).collect();
    let held = match cx.io.ask(Action::ReadRevisions { entity: entity.to_owned(), ids }).await {
        Event::Revisions(held) => held,
        other => return Err(unexpected(&other)),
    };
    let mut unchanged = Vec::new();
    let mut wanted = Vec::new();
    for entry in index {
        let Some(id) = ObjectId::parse(&entry.id) else { continue };
        if held.get(&id) == Some(&entry.revision) {
            unchanged.push(id);
        } else {
            wanted.push(entry.id);
        }
    }
    let (mut objects, mut removed) = (Vec::new(), Vec::new());
    if !wanted.is_empty() {
        let response = fetch_objects(cx, entity, wanted).await?;
        objects = response.objects;
        removed = response.removed;
    }
    Ok(Step::Page { objects, removed, unchanged })
}

/// The server's state of these objects, per entity: removals for those the user can no longer
/// read, or that the server does not hold. Gives the file contents fetched.
async fn fresh_state(cx: &mut Cx, objects: &[(String, ObjectId)]) -> Result<usize, Error> {
    let model = std::sync::Arc::clone(&cx.model);
    let mut by_entity: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (entity, id) in objects {
        if model.entity(entity).is_none() {
            return Err(Error::UnknownEntity { entity: entity.clone() });
        }
        by_entity.entry(entity.as_str()).or_default().push(id.to_string());
    }
    let mut fetched = 0;
    for (entity, ids) in by_entity {
        let response = fetch_objects(cx, entity, ids).await?;
        let described = model.entity(entity).expect("checked above");
        fetched += fetch_contents(cx, described, &response.objects).await?;
        cx.io.emit(Action::Download(Step::Begin { entity: entity.to_owned(), full: false }));
        let page = Step::Page {
            objects: response.objects,
            removed: response.removed,
            unchanged: Vec::new(),
        };
        cx.io.emit(Action::Download(page));
        cx.io.emit(Action::Download(Step::End { checkpoint: None }));
    }
    Ok(fetched)
}

async fn fetch_objects(
    cx: &mut Cx,
    entity: &str,
    ids: Vec<String>,
) -> Result<ObjectsResponse, Error> {
    let path = endpoint::Objects::ROUTE.path(&[entity]);
    let (response, _) = cx.json::<endpoint::Objects>(path, Some(&ObjectsRequest { ids })).await?;
    Ok(response)
}
