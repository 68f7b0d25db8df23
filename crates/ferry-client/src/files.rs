//! File contents on the device: a directory beside the database file (`<database>.files`),
//! content-addressed by SHA-256 like the server's. A content is written to `incoming/` while it
//! is hashed, synced to disk, and renamed under its hash only whole: a crash never leaves a half
//! file visible (and `incoming/` is emptied when the database opens). Contents stream through
//! in pieces of [`FILE_CHUNK_BYTES`]; a file is never whole in memory. The store of an
//! encrypted database seals its contents too (`sealed`), with a key of the same [`DeviceKey`].

mod sealed;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealed::{ContentCipher, Opener, Sealer};

use ferry_model::{Entity, EntityKind, Value};
use sha2::{Digest, Sha256};

use crate::{ClientError, Database, DeviceKey, Object};

/// The largest file content a device attaches or receives, in bytes.
pub const FILE_BYTES_MAX: u64 = 2 * 1024 * 1024 * 1024;
/// Contents are read and written in pieces of this many bytes.
pub const FILE_CHUNK_BYTES: usize = 256 * 1024;
/// How long a content no file object on the device refers to stays in its store after it
/// arrived, in hours: an attached file waits that long for its object's commit. A sync removes
/// older ones ([`Database::collect_files`]).
pub const DEVICE_FILE_GRACE_HOURS: u64 = 24;

/// The directory of contents.
pub(crate) struct FileStore {
    root: PathBuf,
    /// Seals contents, in the store of an encrypted database.
    cipher: Option<Arc<ContentCipher>>,
}

impl FileStore {
    /// The store of the database at `database`; contents half-received before a crash are removed.
    pub(crate) fn open(database: &Path, key: Option<&DeviceKey>) -> std::io::Result<FileStore> {
        let mut root = database.as_os_str().to_owned();
        root.push(".files");
        let root = PathBuf::from(root);
        let incoming = root.join("incoming");
        let _ = std::fs::remove_dir_all(&incoming);
        std::fs::create_dir_all(&incoming)?;
        let cipher = key.map(|key| Arc::new(ContentCipher::new(key.files_key())));
        Ok(FileStore { root, cipher })
    }

    /// The content with this hash, as the store holds it (whether it is there or not).
    pub(crate) fn content(&self, hash: &str) -> Content {
        Content { path: self.path(hash), cipher: self.cipher.clone() }
    }

    /// Where the content with this hash lies when the device holds it.
    pub(crate) fn path(&self, hash: &str) -> PathBuf {
        self.root.join(hash.get(..2).unwrap_or("__")).join(hash)
    }

    /// Every content the store holds, with when it arrived (its file's modification time).
    fn held(&self) -> std::io::Result<Vec<(String, std::time::SystemTime)>> {
        let mut held = Vec::new();
        let shards = match std::fs::read_dir(&self.root) {
            Ok(shards) => shards,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(held),
            Err(error) => return Err(error),
        };
        for shard in shards {
            let shard = shard?;
            if shard.file_name() == "incoming" || !shard.file_type()?.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(shard.path())? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                    held.push((name, entry.metadata()?.modified()?));
                }
            }
        }
        Ok(held)
    }

    /// True when the device holds the content with this hash.
    pub(crate) fn holds(&self, hash: &str) -> bool {
        self.path(hash).is_file()
    }

    /// A new content being received, of at most [`FILE_BYTES_MAX`] bytes.
    pub(crate) fn incoming(&self) -> std::io::Result<Incoming> {
        self.incoming_at_most(FILE_BYTES_MAX)
    }

    fn incoming_at_most(&self, limit: u64) -> std::io::Result<Incoming> {
        let mut name = [0u8; 16];
        getrandom::fill(&mut name).map_err(|e| std::io::Error::other(e.to_string()))?;
        let name: String = name.iter().map(|b| format!("{b:02x}")).collect();
        let path = self.root.join("incoming").join(format!("{name}.part"));
        let file =
            std::io::BufWriter::with_capacity(FILE_CHUNK_BYTES, std::fs::File::create(&path)?);
        let writer = match &self.cipher {
            None => Writer::Plain(file),
            Some(cipher) => Writer::Sealed(Sealer::new(file)?, Arc::clone(cipher)),
        };
        Ok(Incoming { path, writer: Some(writer), hasher: Sha256::new(), size: 0, limit })
    }
}

/// Where an arriving content is written: as it is, or sealed.
enum Writer {
    Plain(std::io::BufWriter<std::fs::File>),
    Sealed(Sealer<std::io::BufWriter<std::fs::File>>, Arc<ContentCipher>),
}

/// A content arriving in `incoming/`, hashed as it comes; removed when dropped unfinished.
pub(crate) struct Incoming {
    path: PathBuf,
    writer: Option<Writer>,
    hasher: Sha256,
    size: u64,
    limit: u64,
}

impl Incoming {
    /// Appends bytes; more than the limit in all is refused.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.size += bytes.len() as u64;
        if self.size > self.limit {
            return Err(ClientError::FileTooLarge { limit: self.limit });
        }
        self.hasher.update(bytes);
        let written = match self.writer.as_mut().expect("written only before finishing") {
            Writer::Plain(file) => file.write_all(bytes),
            Writer::Sealed(sealer, cipher) => sealer.write(cipher, bytes),
        };
        written.map_err(ClientError::Files)
    }

    /// Syncs the content to disk and moves it under its hash; `expected` is checked first.
    /// Gives the hash and the size.
    pub(crate) fn finish(
        mut self,
        store: &FileStore,
        expected: Option<&str>,
    ) -> Result<(String, u64), ClientError> {
        let hash: String =
            self.hasher.clone().finalize().iter().map(|b| format!("{b:02x}")).collect();
        if let Some(expected) = expected
            && expected != hash
        {
            return Err(ClientError::Corrupt(format!(
                "a content arrived with SHA-256 {hash} where {expected} was expected"
            )));
        }
        let writer = match self.writer.take().expect("finished once") {
            Writer::Plain(file) => file,
            Writer::Sealed(sealer, cipher) => sealer.finish(&cipher).map_err(ClientError::Files)?,
        };
        let file = writer.into_inner().map_err(|e| ClientError::Files(e.into_error()))?;
        file.sync_all().map_err(ClientError::Files)?;
        drop(file);
        let path = store.path(&hash);
        std::fs::create_dir_all(path.parent().expect("contents lie in a directory"))
            .map_err(ClientError::Files)?;
        std::fs::rename(&self.path, &path).map_err(ClientError::Files)?;
        Ok((hash, self.size))
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A content in the device's file store, for sending it: its plain length and bytes.
pub struct Content {
    path: PathBuf,
    cipher: Option<Arc<ContentCipher>>,
}

impl Content {
    /// True when the device holds the content.
    pub fn exists(&self) -> bool {
        self.path.is_file()
    }

    /// The content's length and its bytes, opened (and checked) as they are read.
    pub fn open(&self) -> std::io::Result<(u64, FileContent)> {
        let file = std::fs::File::open(&self.path)?;
        let stored = file.metadata()?.len();
        Ok(match &self.cipher {
            None => (stored, FileContent(Reader::Plain(file))),
            Some(cipher) => {
                let reader = std::io::BufReader::with_capacity(FILE_CHUNK_BYTES, file);
                let opener = Opener::new(reader, Arc::clone(cipher))?;
                (sealed::plain_length(stored)?, FileContent(Reader::Sealed(Box::new(opener))))
            }
        })
    }
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sealed = self.cipher.is_some();
        f.debug_struct("Content").field("path", &self.path).field("sealed", &sealed).finish()
    }
}

/// The bytes of a file content, read as the app stored them: an encrypted store's contents are
/// opened chunk by chunk, and a damaged chunk is an `InvalidData` error, never wrong bytes.
pub struct FileContent(Reader);

impl std::fmt::Debug for FileContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sealed = matches!(self.0, Reader::Sealed(_));
        f.debug_struct("FileContent").field("sealed", &sealed).finish()
    }
}

enum Reader {
    Plain(std::fs::File),
    Sealed(Box<Opener<std::io::BufReader<std::fs::File>>>),
}

impl Read for FileContent {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.0 {
            Reader::Plain(file) => file.read(out),
            Reader::Sealed(opener) => opener.read(out),
        }
    }
}

fn file_entity<'m>(
    model: &'m ferry_model::Model,
    object: &Object,
) -> Result<&'m Entity, ClientError> {
    let entity = model
        .entity(object.entity().as_str())
        .ok_or_else(|| ClientError::UnknownEntity { entity: object.entity().to_string() })?;
    if entity.kind != EntityKind::File {
        return Err(ClientError::NotAFileEntity { entity: entity.name.to_string() });
    }
    Ok(entity)
}

impl Database {
    /// Attaches a file content to an object of a file entity: the content is streamed into the
    /// device's file store and the object's `FileName`, `FileSize`, `ContentHash` and
    /// `ContentChanged` are set. Like every change, it is uncommitted until [`Database::commit`];
    /// a sync sends the content before the objects that reference it.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ferry-doc-attach-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir); std::fs::create_dir_all(&dir).unwrap();
    /// use std::io::Read as _;
    /// use ferry_client::Database;
    /// use ferry_model::{Value, samples};
    ///
    /// let db = Database::open(dir.join("device.db"), samples::FIELD_SERVICE)?;
    /// let mut photo = db.create("Field.Photo")?;
    /// db.attach_file(&mut photo, "pump.jpg", &b"the bytes of a photo"[..])?;
    /// db.commit(&mut [&mut photo])?;
    /// assert_eq!(db.get_value(&photo, "FileSize")?, &Value::Integer(20));
    ///
    /// let mut text = String::new();
    /// db.open_file(&photo)?.read_to_string(&mut text).unwrap();
    /// assert_eq!(text, "the bytes of a photo");
    ///
    /// let mut site = db.create("Field.Site")?;
    /// assert!(db.attach_file(&mut site, "a.txt", &b"no"[..]).is_err()); // not a file entity
    /// # Ok::<(), ferry_client::ClientError>(())
    /// ```
    pub fn attach_file(
        &self,
        object: &mut Object,
        file_name: &str,
        mut content: impl Read,
    ) -> Result<(), ClientError> {
        file_entity(&self.model(), object)?;
        let mut incoming = self.files.incoming().map_err(ClientError::Files)?;
        let mut buffer = vec![0u8; FILE_CHUNK_BYTES];
        loop {
            let read = match content.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(ClientError::Files(error)),
            };
            incoming.write(&buffer[..read])?;
        }
        let (hash, size) = incoming.finish(&self.files, None)?;
        let size = i64::try_from(size).expect("under FILE_BYTES_MAX");
        self.set(object, "FileName", Value::String(file_name.to_owned()))?;
        self.set(object, "FileSize", Value::Integer(size))?;
        self.set(object, "ContentHash", Value::String(hash))?;
        self.set(object, "ContentChanged", Value::DateTime(self.clock.now()))?;
        Ok(())
    }

    /// Removes from the file store the contents no file object on the device refers to (by its
    /// `ContentHash`, committed or being uploaded) that arrived more than `grace` ago: those of
    /// objects deleted, replaced by a download, or left uncommitted. Gives how many went. A sync
    /// that completes runs it with [`DEVICE_FILE_GRACE_HOURS`].
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ferry-doc-collect-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir); std::fs::create_dir_all(&dir).unwrap();
    /// use ferry_client::Database;
    /// let db = Database::open(dir.join("device.db"), ferry_model::samples::FIELD_SERVICE)?;
    /// let mut photo = db.create("Field.Photo")?;
    /// db.attach_file(&mut photo, "pump.jpg", &b"the first photo"[..])?;
    /// db.commit(&mut [&mut photo])?;
    /// db.attach_file(&mut photo, "pump.jpg", &b"a better one"[..])?;
    /// db.commit(&mut [&mut photo])?;
    /// // The first content no longer belongs to any object.
    /// assert_eq!(db.collect_files(std::time::Duration::ZERO)?, 1);
    /// assert!(db.file_path(&photo)?.is_some());
    /// # Ok::<(), ferry_client::ClientError>(())
    /// ```
    pub fn collect_files(&self, grace: std::time::Duration) -> Result<usize, ClientError> {
        let needed = self.needed_contents()?;
        let now = self.clock.now().unix_micros();
        let grace = i64::try_from(grace.as_micros()).unwrap_or(i64::MAX);
        let mut removed = 0;
        for (hash, arrived) in self.files.held().map_err(ClientError::Files)? {
            let arrived = arrived
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
            if needed.contains(&hash) || now.saturating_sub(arrived) < grace {
                continue;
            }
            match std::fs::remove_file(self.files.path(&hash)) {
                Ok(()) => removed += 1,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(ClientError::Files(error)),
            }
        }
        Ok(removed)
    }

    /// The contents file objects on the device refer to, and those the stored upload names.
    fn needed_contents(&self) -> Result<std::collections::BTreeSet<String>, ClientError> {
        let model = self.model();
        let connection = self.lock();
        let mut needed = std::collections::BTreeSet::new();
        for entity in model.entities().filter(|e| e.kind == EntityKind::File) {
            let (index, _) = entity.attribute("ContentHash").expect("file entities have it");
            let column = ferry_sql::column_name(entity, ferry_model::Slot(index));
            let sql = format!(
                "SELECT DISTINCT {column} FROM {} WHERE {column} IS NOT NULL",
                ferry_sql::table_name(entity)
            );
            let mut statement = connection.prepare(&sql)?;
            for hash in statement.query_map([], |row| row.get::<_, String>(0))? {
                needed.insert(hash?);
            }
        }
        if let Some(pending) =
            crate::database::meta(&connection, crate::database::Meta::PendingUpload)?
        {
            let request: ferry_protocol::UploadRequest = serde_json::from_str(&pending)
                .map_err(|e| ClientError::Corrupt(format!("the pending upload: {e}")))?;
            for change in request.changes {
                if let Some(serde_json::Value::String(hash)) = change.values.get("ContentHash") {
                    needed.insert(hash.clone());
                }
            }
        }
        Ok(needed)
    }

    /// The content of a file object the device holds, or `None` when it has no content or its
    /// content is not on the device (yet).
    fn held_content(&self, object: &Object) -> Result<Option<Content>, ClientError> {
        file_entity(&self.model(), object)?;
        Ok(match self.get_value(object, "ContentHash")? {
            Value::String(hash) => Some(self.files.content(hash)).filter(Content::exists),
            _ => None,
        })
    }

    /// Where the content of a file object lies on the device, or `None` when it has no content
    /// or its content is not on the device (yet). In an encrypted database's store the file
    /// there is sealed: read the content with [`Database::open_file`].
    pub fn file_path(&self, object: &Object) -> Result<Option<PathBuf>, ClientError> {
        Ok(self.held_content(object)?.map(|content| content.path))
    }

    /// Opens the content of a file object for reading; refused when the object has no content
    /// on the device.
    pub fn open_file(&self, object: &Object) -> Result<FileContent, ClientError> {
        let content = self.held_content(object)?.ok_or_else(|| ClientError::FileMissing {
            entity: object.entity().to_string(),
            id: object.id(),
        })?;
        Ok(content.open().map_err(ClientError::Files)?.1)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail on any error")]

    use super::*;

    /// A clock the test moves.
    struct Moving(std::sync::Mutex<ferry_model::Timestamp>);

    impl crate::Clock for Moving {
        fn now(&self) -> ferry_model::Timestamp {
            *self.0.lock().unwrap()
        }
    }

    /// Within the grace period an attached, uncommitted content stays; after it, it goes, while
    /// a committed photo's content stays.
    #[test]
    fn collecting_keeps_what_a_committed_object_needs() {
        use ferry_model::{Timestamp, samples};
        let dir = std::env::temp_dir().join(format!("ferry-collect-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let now = Timestamp::from_unix_micros(
            std::time::SystemTime::UNIX_EPOCH.elapsed().unwrap().as_micros() as i64,
        )
        .unwrap();
        let clock = Arc::new(Moving(std::sync::Mutex::new(now)));
        let db = Database::open_with(
            dir.join("device.db"),
            samples::FIELD_SERVICE,
            clock.clone(),
            Arc::new(crate::RandomIds),
        )
        .unwrap();
        let mut kept = db.create("Field.Photo").unwrap();
        db.attach_file(&mut kept, "a.jpg", &b"committed"[..]).unwrap();
        db.commit(&mut [&mut kept]).unwrap();
        let mut draft = db.create("Field.Photo").unwrap();
        db.attach_file(&mut draft, "b.jpg", &b"never committed"[..]).unwrap();
        let grace = std::time::Duration::from_secs(DEVICE_FILE_GRACE_HOURS * 3600);
        assert_eq!(db.collect_files(grace).unwrap(), 0, "within the grace period");
        *clock.0.lock().unwrap() = now.add_days(2).unwrap();
        assert_eq!(db.collect_files(grace).unwrap(), 1);
        assert!(db.file_path(&kept).unwrap().is_some());
        assert!(db.file_path(&draft).unwrap().is_none());
    }

    fn files_under(root: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(root).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() { found.extend(files_under(&path)) } else { found.push(path) }
        }
        found
    }

    /// A content is visible under its hash only whole: one abandoned part way (a failed
    /// download) leaves nothing, one cut off by a crash is removed when the store opens, and
    /// one over the limit is refused.
    #[test]
    fn a_half_written_content_is_never_visible() {
        let dir = std::env::temp_dir().join(format!("ferry-files-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let database = dir.join("device.db");
        let store = FileStore::open(&database, None).unwrap();
        let root = dir.join("device.db.files");

        let mut abandoned = store.incoming().unwrap();
        abandoned.write(b"half of it").unwrap();
        drop(abandoned);
        assert!(files_under(&root).is_empty());

        let mut crashed = store.incoming().unwrap();
        crashed.write(b"half of it").unwrap();
        std::mem::forget(crashed);
        assert_eq!(files_under(&root).len(), 1, "the part lies in incoming/ only");
        let store = FileStore::open(&database, None).unwrap();
        assert!(files_under(&root).is_empty(), "opening the store removes it");

        let mut whole = store.incoming().unwrap();
        whole.write(b"all of it").unwrap();
        let wrong = "0".repeat(64);
        assert!(
            whole.finish(&store, Some(&wrong)).is_err(),
            "a content is checked against its hash"
        );
        assert!(files_under(&root).is_empty());
        let mut whole = store.incoming().unwrap();
        whole.write(b"all of it").unwrap();
        let (hash, size) = whole.finish(&store, None).unwrap();
        assert_eq!((files_under(&root), size), (vec![store.path(&hash)], 9));
        assert_eq!(std::fs::read(store.path(&hash)).unwrap(), b"all of it");

        let mut large = store.incoming_at_most(8).unwrap();
        large.write(b"8 bytes.").unwrap();
        let error = large.write(b"!").unwrap_err();
        assert_eq!(error.to_string(), "a file content may hold at most 8 bytes");
        drop(large);
        assert_eq!(files_under(&root).len(), 1, "nothing of it stays");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
