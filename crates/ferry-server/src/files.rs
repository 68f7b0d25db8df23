//! File contents: a blob store in a directory beside the database, content-addressed by SHA-256
//! (`<root>/<first two hex digits>/<hash>`), never in database rows.
//!
//! A device sends each content it is about to reference before its upload, one request per file
//! (`PUT /v1/files/{sha256}`), after asking which the server lacks: a content the server holds
//! costs no transfer. A content arrives in a temporary file, streamed and hashed as it comes; it
//! becomes visible under its hash only whole, checked and synced to disk (a rename). Disk work
//! runs on a blocking task per transfer, a few pieces ahead of or behind the network. An upload
//! links contents to objects by the file entity's `ContentHash`; the server refuses a hash it
//! does not hold, or a `FileSize` that is not the content's. Contents nothing needs any longer
//! are removed by the lifecycle's jobs (`lifecycle`); those of rejected objects stay readable
//! with their `SynchronizationError`.

use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};
use ferry_model::{Entity, EntityKind, ObjectId, Slot, Value};
use ferry_protocol::{FileStored, FilesMissingRequest, FilesMissingResponse};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::io::{Read as _, Write as _};

use crate::State;
use crate::access::{context, user_rules};
use crate::auth::User;
use crate::effects::hex;
use crate::failures::FailureError;
use crate::store::{StoreError, Tx};
use crate::upload::{CheckedChange, read_covered};
use ferry_sql::Param;

/// The most hashes one `POST /v1/files/missing` may ask about.
pub const HASHES_PER_CHECK_MAX: usize = 10_000;
/// Contents are read in pieces of this many bytes.
const CHUNK_BYTES: usize = 64 * 1024;
/// Pieces of one content on their way between the network and the disk.
const CHUNKS_IN_FLIGHT: usize = 4;

/// The directory of contents.
pub(crate) struct BlobStore {
    root: PathBuf,
}

/// A stored content opened for reading.
pub(crate) struct Content {
    pub(crate) hash: String,
    pub(crate) size: u64,
    pub(crate) file: std::fs::File,
}

impl BlobStore {
    /// Opens (and makes) the store at `root`. Contents left half-received by a crash are removed.
    pub(crate) fn open(root: &Path) -> std::io::Result<BlobStore> {
        let incoming = root.join("incoming");
        let _ = std::fs::remove_dir_all(&incoming);
        std::fs::create_dir_all(&incoming)?;
        Ok(BlobStore { root: root.to_owned() })
    }

    fn path(&self, hash: &str) -> PathBuf {
        self.root.join(&hash[..2]).join(hash)
    }

    /// The hashes of every content the store holds.
    pub(crate) fn hashes(&self) -> std::io::Result<Vec<String>> {
        let mut hashes = Vec::new();
        for shard in std::fs::read_dir(&self.root)? {
            let shard = shard?;
            if shard.file_name() == "incoming" || !shard.file_type()?.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(shard.path())? {
                let name = entry?.file_name().to_string_lossy().into_owned();
                if is_hash(&name) {
                    hashes.push(name);
                }
            }
        }
        hashes.sort();
        Ok(hashes)
    }

    /// Removes the content with this hash; its size, when the store held it.
    pub(crate) fn remove(&self, hash: &str) -> std::io::Result<Option<u64>> {
        let size = self.size(hash)?;
        match std::fs::remove_file(self.path(hash)) {
            Ok(()) => Ok(size),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The size of the content with this hash, when the store holds it.
    pub(crate) fn size(&self, hash: &str) -> std::io::Result<Option<u64>> {
        match std::fs::metadata(self.path(hash)) {
            Ok(metadata) => Ok(Some(metadata.len())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn open_content(&self, hash: &str) -> Result<Content, FileError> {
        self.read_content(hash).map_err(io)
    }

    fn read_content(&self, hash: &str) -> std::io::Result<Content> {
        let file = std::fs::File::open(self.path(hash))?;
        let size = file.metadata()?.len();
        Ok(Content { hash: hash.to_owned(), size, file })
    }

    /// Streams `body` into the store under `hash`, refusing more than `limit` bytes or bytes
    /// whose hash is another. A blocking task writes and hashes the pieces as they come, a few
    /// at a time, so memory holds a few pieces whatever the size.
    async fn receive(
        &self,
        hash: &str,
        body: Body,
        limit: u64,
        idle_timeout_ms: u64,
    ) -> Result<u64, FileError> {
        let temporary = Temporary(self.root.join("incoming").join(random_name()?));
        let (pieces, mut received) = tokio::sync::mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
        let path = temporary.0.clone();
        let writer = tokio::task::spawn_blocking(move || -> std::io::Result<(String, u64)> {
            let mut file = std::fs::File::create(&path)?;
            let (mut hasher, mut size) = (Sha256::new(), 0u64);
            while let Some(piece) = received.blocking_recv() {
                hasher.update(&piece);
                file.write_all(&piece)?;
                size += piece.len() as u64;
            }
            file.sync_all()?;
            Ok((hex(&hasher.finalize()), size))
        });
        let mut size = 0u64;
        let mut stream = body.into_data_stream();
        let mut refused = None;
        let idle = std::time::Duration::from_millis(idle_timeout_ms);
        loop {
            let Ok(next) = tokio::time::timeout(idle, stream.next()).await else {
                refused = Some(FileError::Slow(format!(
                    "the content paused for more than {idle_timeout_ms} ms; send it again"
                )));
                break;
            };
            let Some(chunk) = next else { break };
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    refused = Some(FileError::Bad {
                        message: format!("the content ended before its end: {e}"),
                        details: serde_json::json!({ "hash": hash, "received": size }),
                    });
                    break;
                }
            };
            size += chunk.len() as u64;
            if size > limit {
                refused = Some(too_large(limit));
                break;
            }
            if pieces.send(chunk).await.is_err() {
                break;
            }
        }
        drop(pieces);
        let written = writer.await.map_err(|e| io(std::io::Error::other(e.to_string())))?;
        if let Some(refused) = refused {
            return Err(refused);
        }
        let (received, size) = written.map_err(io)?;
        if received != hash {
            return Err(FileError::Bad {
                message: format!("the content's SHA-256 is {received}, not {hash}"),
                details: serde_json::json!({ "hash": hash, "received": received }),
            });
        }
        let path = self.path(hash);
        std::fs::create_dir_all(path.parent().expect("contents lie in a directory")).map_err(io)?;
        std::fs::rename(&temporary.0, &path).map_err(io)?;
        Ok(size)
    }
}

/// A file in `incoming`, removed when dropped unless it was renamed into place.
struct Temporary(PathBuf);

impl Drop for Temporary {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn random_name() -> Result<String, FileError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| io(std::io::Error::other(format!("no randomness: {e}"))))?;
    Ok(format!("{}.part", hex(&bytes)))
}

fn io(error: std::io::Error) -> FileError {
    FileError::Store(StoreError::Files(error))
}

fn too_large(limit: u64) -> FileError {
    FileError::TooLarge(format!("a file content may hold at most {limit} bytes"))
}

/// True for a SHA-256 in lowercase hex.
pub(crate) fn is_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_hash(hash: &str) -> Result<(), FileError> {
    if is_hash(hash) {
        return Ok(());
    }
    Err(FileError::Bad {
        message: format!("`{hash}` is not a SHA-256 in lowercase hex"),
        details: serde_json::json!({ "hash": hash }),
    })
}

/// The hashes of `request` the store does not hold.
/// Which of the contents asked about the device must send: every one this user has not sent
/// before, whether or not the server holds it (sent by someone else, it is no business of this
/// user's), so the answer tells nothing about other users' files.
pub(crate) async fn missing(
    state: &State,
    user: &User,
    request: FilesMissingRequest,
) -> Result<FilesMissingResponse, FileError> {
    if request.hashes.len() > HASHES_PER_CHECK_MAX {
        return Err(FileError::TooLarge(format!(
            "ask about at most {HASHES_PER_CHECK_MAX} contents at once"
        )));
    }
    let mut missing = Vec::new();
    let mut tx = state.store.begin().await?;
    for hash in request.hashes {
        check_hash(&hash)?;
        if sent_size(state, &mut tx, user, &hash).await?.is_none() {
            missing.push(hash);
        }
    }
    tx.commit().await?;
    Ok(FilesMissingResponse { missing })
}

/// The size of the content when the store holds it and `user` sent it. Asking counts as sending
/// again for the lifecycle's grace period: the upload naming the content is on its way.
async fn sent_size(
    state: &State,
    tx: &mut Tx<'_>,
    user: &User,
    hash: &str,
) -> Result<Option<u64>, StoreError> {
    let Some(size) = state.blobs.size(hash).map_err(StoreError::Files)? else {
        return Ok(None);
    };
    let touched = tx
        .execute(
            "UPDATE ferry_content_senders SET at = $1 WHERE hash = $2 AND user_id = $3",
            &[
                Param::Int(state.clock.now().unix_micros()),
                Param::Text(hash.to_owned()),
                state.store.id_param(user.id),
            ],
        )
        .await?;
    Ok((touched > 0).then_some(size))
}

/// Records that `user` sent the content `hash` (whole, its hash checked).
async fn record_sender(state: &State, user: &User, hash: &str) -> Result<(), StoreError> {
    let mut tx = state.store.begin().await?;
    tx.execute(
        "INSERT INTO ferry_content_senders (hash, user_id, at) VALUES ($1, $2, $3) ON CONFLICT (hash, user_id) DO UPDATE SET at = excluded.at",
        &[
            Param::Text(hash.to_owned()),
            state.store.id_param(user.id),
            Param::Int(state.clock.now().unix_micros()),
        ],
    )
    .await?;
    tx.commit().await
}

/// Stores a content sent with `PUT /v1/files/{hash}`; `declared` is its `Content-Length`.
pub(crate) async fn store(
    state: &State,
    user: &User,
    hash: &str,
    declared: Option<u64>,
    body: Body,
) -> Result<FileStored, FileError> {
    check_hash(hash)?;
    let limit = state.limits.file_bytes_max;
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large(limit));
    }
    let mut tx = state.store.begin().await?;
    let sent_before = sent_size(state, &mut tx, user, hash).await?;
    tx.commit().await?;
    if let Some(size) = sent_before {
        return Ok(FileStored { hash: hash.to_owned(), size });
    }
    // Held or not, the content is received whole and its hash checked: sending it proves
    // holding it, and the answer is the same either way.
    let idle_timeout_ms = state.limits.request_body_idle_timeout_ms;
    let size = state.blobs.receive(hash, body, limit, idle_timeout_ms).await?;
    record_sender(state, user, hash).await?;
    state.metrics.file_bytes_received.increment(size);
    Ok(FileStored { hash: hash.to_owned(), size })
}

fn file_entity<'m>(state: &'m State, name: &str) -> Result<&'m Entity, FileError> {
    let entity = state
        .model
        .entity(name)
        .ok_or_else(|| FileError::NotFound(format!("unknown entity `{name}`")))?;
    if entity.kind != EntityKind::File {
        return Err(FileError::Bad {
            message: format!("`{name}` is not a file entity: its objects have no contents"),
            details: serde_json::json!({ "entity": name }),
        });
    }
    Ok(entity)
}

fn slot_of(entity: &Entity, attribute: &str) -> Slot {
    Slot(entity.attribute(attribute).expect("file entities have the built-in attributes").0)
}

/// The content of a file object the user may read (its `ContentHash` readable to them);
/// `expected` is the hash the device expects, refused with 409 when the object holds another.
pub(crate) async fn object_content(
    state: &State,
    user: &User,
    entity_name: &str,
    id: &str,
    expected: Option<&str>,
) -> Result<Content, FileError> {
    let entity = file_entity(state, entity_name)?;
    let object_id = ObjectId::parse(id).ok_or_else(|| FileError::Bad {
        message: format!("`{id}` is not an object id"),
        details: serde_json::json!({ "id": id }),
    })?;
    let rules = user_rules(state, entity, user, &context(state, user));
    let mut tx = state.store.begin_snapshot().await?;
    let covered = read_covered(state, &mut tx, entity, &rules, object_id).await?;
    tx.finish().await?;
    let hash_slot = slot_of(entity, "ContentHash");
    let unknown = || FileError::NotFound(format!("`{entity_name}` {id} is not there to read"));
    let covered = covered.ok_or_else(unknown)?;
    if !rules.readable(&covered.coverage).contains(&hash_slot) {
        return Err(unknown());
    }
    let Value::String(hash) = &covered.object.values[hash_slot.0] else {
        return Err(FileError::NotFound(format!("`{entity_name}` {id} has no content")));
    };
    if let Some(expected) = expected
        && expected != hash
    {
        return Err(FileError::Conflict(format!(
            "the content of `{entity_name}` {id} changed: it is now {hash}"
        )));
    }
    let content = state.blobs.open_content(hash)?;
    state.metrics.file_bytes_sent.increment(content.size);
    Ok(content)
}

/// Why a file content was refused, or cannot be given.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FileError {
    /// A malformed request or content; `details` names what.
    #[error("{message}")]
    Bad { message: String, details: serde_json::Value },
    #[error("{0}")]
    NotFound(String),
    /// The object's content is not the one asked for any more.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    /// The content came too slowly.
    #[error("{0}")]
    Slow(String),
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

/// The content a rejected file object referenced, kept with its `SynchronizationError`.
pub(crate) async fn failure_content(
    state: &State,
    failure_id: i64,
) -> Result<Content, FailureError> {
    let failure = crate::failures::get(state, failure_id).await?;
    let hash = failure.attempted.get("ContentHash").and_then(|h| h.as_str()).filter(|h| is_hash(h));
    let Some(hash) = hash else {
        let missing = format!("failure {failure_id} carries no file content");
        return Err(FailureError::NoContent(missing));
    };
    let files = |error| FailureError::Store(StoreError::Files(error));
    match state.blobs.size(hash).map_err(files)? {
        Some(_) => state.blobs.read_content(hash).map_err(files),
        None => Err(FailureError::NoContent(format!(
            "failure {failure_id} names the content {hash}, which was never uploaded"
        ))),
    }
}

/// Streams a content as a response body: a blocking task reads it in pieces of
/// [`CHUNK_BYTES`], a few ahead of the network.
pub(crate) fn content_stream(
    mut file: std::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send {
    let (pieces, received) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        loop {
            let mut buffer = vec![0u8; CHUNK_BYTES];
            let piece = match file.read(&mut buffer) {
                Ok(0) => return,
                Ok(read) => {
                    buffer.truncate(read);
                    Ok(Bytes::from(buffer))
                }
                Err(error) => Err(error),
            };
            let failed = piece.is_err();
            if pieces.blocking_send(piece).is_err() || failed {
                return;
            }
        }
    });
    futures_util::stream::unfold(received, |mut received| async move {
        received.recv().await.map(|piece| (piece, received))
    })
}

/// For an upload: a change to a file object that sets its content must name a content the
/// store holds, with its size. `Ok(Err(reason))` rejects the object.
pub(crate) async fn check_content(
    state: &State,
    tx: &mut Tx<'_>,
    user: &User,
    change: &CheckedChange<'_>,
    values: &[Value],
) -> Result<Result<(), String>, StoreError> {
    let entity = change.entity;
    if entity.kind != EntityKind::File {
        return Ok(Ok(()));
    }
    let (hash_slot, size_slot) = (slot_of(entity, "ContentHash"), slot_of(entity, "FileSize"));
    if !change.values.iter().any(|(slot, _)| *slot == hash_slot || *slot == size_slot) {
        return Ok(Ok(()));
    }
    let hash = match &values[hash_slot.0] {
        Value::Empty => {
            return Ok(match &values[size_slot.0] {
                Value::Empty | Value::Integer(0) => Ok(()),
                _ => Err(format!(
                    "file: `{}` {} has a `FileSize` but no `ContentHash`",
                    entity.name, change.id
                )),
            });
        }
        Value::String(hash) if is_hash(hash) => hash,
        other => {
            return Ok(Err(format!(
                "file: `ContentHash` of `{}` {} must be a SHA-256 in lowercase hex, not {other}",
                entity.name, change.id
            )));
        }
    };
    // A content the user did not send is, for them, one never uploaded: naming another user's
    // content would otherwise give its bytes to whoever guesses its hash.
    Ok(match sent_size(state, tx, user, hash).await? {
        None => Err(format!(
            "file: the content {hash} of `{}` {} was never uploaded (PUT /v1/files/{hash})",
            entity.name, change.id
        )),
        Some(size) if values[size_slot.0] != Value::Integer(size as i64) => Err(format!(
            "file: `FileSize` of `{}` {} is {}, but its content holds {size} bytes",
            entity.name, change.id, values[size_slot.0]
        )),
        Some(_) => Ok(()),
    })
}
