//! File contents: which an upload must send first, and which a download must fetch.

use std::collections::{BTreeMap, BTreeSet};

use ferry_model::{Entity, EntityKind};
use ferry_protocol::endpoint::{self, Endpoint};
use ferry_protocol::{DownloadedObject, FilesMissingRequest, FilesMissingResponse, Members};

use crate::answer::refusal;
use crate::error::Error;
use crate::event::{Action, Body, Event, Outgoing};
use crate::run::{Cx, unexpected};

/// Attempts to send one file content, the first included: a failed send is retried once.
pub const FILE_SEND_ATTEMPTS: u32 = 2;
/// Contents asked about in one `POST /v1/files/missing`.
pub const HASHES_PER_CHECK: usize = 1_000;
/// Answers of a gateway in front of the server that says the server could not be reached
/// (bad gateway, unavailable, gateway timeout): for a file's content, a failed attempt.
pub const GATEWAY_FAILURES: [u16; 3] = [502, 503, 504];

/// The content a file object's members name, by its SHA-256.
pub fn named_hash(values: &Members) -> Option<&str> {
    values.get("ContentHash").and_then(|hash| hash.as_str())
}

/// Sends the contents the upload names and the server lacks, one request per content, before
/// the upload itself. A failed send is tried again once; a second failure ends the sync before
/// the upload, every change kept. Gives how many contents were sent.
pub(crate) async fn send_contents(
    cx: &mut Cx,
    request: &ferry_protocol::UploadRequest,
) -> Result<usize, Error> {
    let mut named: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for change in &request.changes {
        let file = cx.model.entity(&change.entity).is_some_and(|e| e.kind == EntityKind::File);
        if let (true, Some(hash)) = (file, named_hash(&change.values)) {
            named.entry(hash).or_insert((&change.entity, &change.id));
        }
    }
    let hashes: Vec<&str> = named.keys().copied().collect();
    let mut sent = 0;
    for chunk in hashes.chunks(HASHES_PER_CHECK) {
        let ask = FilesMissingRequest { hashes: chunk.iter().map(|h| (*h).to_owned()).collect() };
        let path = endpoint::FilesMissing::ROUTE.path(&[]);
        let (answer, _): (FilesMissingResponse, _) =
            cx.json::<endpoint::FilesMissing>(path, Some(&ask)).await?;
        for hash in &answer.missing {
            let Some((entity, id)) = named.get(hash.as_str()) else { continue };
            send_content(cx, hash, entity, id).await?;
            sent += 1;
        }
    }
    Ok(sent)
}

/// One content, tried at most [`FILE_SEND_ATTEMPTS`] times; a gateway that cannot reach the
/// server fails an attempt as the network does.
async fn send_content(cx: &mut Cx, hash: &str, entity: &str, id: &str) -> Result<(), Error> {
    let outgoing = Outgoing {
        anonymous: false,
        route: endpoint::FILE_PUT,
        path: endpoint::FILE_PUT.path(&[hash]),
        body: Body::Content { hash: hash.to_owned(), entity: entity.to_owned(), id: id.to_owned() },
    };
    let mut attempt = 1;
    loop {
        let failed = match cx.io.ask(Action::Send(outgoing.clone())).await {
            Event::Answer(answer) if answer.status == 200 => return Ok(()),
            Event::Answer(answer) if GATEWAY_FAILURES.contains(&answer.status) => {
                format!("the server's gateway answered {}", answer.status)
            }
            Event::Answer(answer) => return Err(refusal(&answer)),
            Event::Unreachable { reason } => reason,
            other => return Err(unexpected(&other)),
        };
        if attempt == FILE_SEND_ATTEMPTS {
            return Err(Error::FileUpload {
                entity: entity.to_owned(),
                id: id.to_owned(),
                reason: failed,
            });
        }
        attempt += 1;
    }
}

/// Brings the contents of downloaded file objects the store lacks, streamed into it. A content
/// that changed on the server since the page was read (409), or whose object the user can no
/// longer read (404), is left for the next sync, which brings the object again. Gives how many
/// contents were fetched.
pub(crate) async fn fetch_contents(
    cx: &mut Cx,
    entity: &Entity,
    objects: &[DownloadedObject],
) -> Result<usize, Error> {
    if entity.kind != EntityKind::File {
        return Ok(0);
    }
    let named: Vec<(&str, &str)> = objects
        .iter()
        .filter_map(|object| named_hash(&object.values).map(|hash| (object.id.as_str(), hash)))
        .collect();
    if named.is_empty() {
        return Ok(0);
    }
    let asked: Vec<String> = named.iter().map(|(_, hash)| (*hash).to_owned()).collect();
    let mut held: BTreeSet<String> = match cx.io.ask(Action::LookUpContents(asked)).await {
        Event::ContentsHeld(held) => held.into_iter().collect(),
        other => return Err(unexpected(&other)),
    };
    let mut fetched = 0;
    for (id, hash) in named {
        if held.contains(hash) {
            continue;
        }
        let path = format!("{}?hash={hash}", endpoint::FILE_GET.path(&[entity.name.as_str(), id]));
        let body = Body::IntoStore { hash: hash.to_owned() };
        let answer =
            cx.send(Outgoing { anonymous: false, route: endpoint::FILE_GET, path, body }).await?;
        match answer.status {
            200 => {
                fetched += 1;
                held.insert(hash.to_owned());
            }
            404 | 409 => {}
            _ => return Err(refusal(&answer)),
        }
    }
    Ok(fetched)
}
