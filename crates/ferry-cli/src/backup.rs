//! `ferry backup --to DIR`: a consistent copy of a server's data while it serves.
//!
//! On SQLite the database is copied with `VACUUM INTO`, inside one read transaction: the copy is
//! the database as one moment saw it, whatever the server writes meanwhile (writers go on; WAL
//! lets them). The file contents are copied after it: a content is immutable under its hash,
//! and the lifecycle keeps every content a kept object refers to, so each content the copy's
//! objects name is there to copy. On PostgreSQL the contents are copied and the `pg_dump` to
//! run beside them is printed: PostgreSQL's own tool takes its consistent snapshot.
//!
//! `DIR/backup.json` says what was copied. A server started on `DIR/ferry.db` with
//! `--files DIR/files` serves the data as it was at the backup.
//!
//! `ferry restore --from DIR`, with the server stopped, puts a backup back: the SQLite
//! database where the options name it (which must not exist: a restore replaces the data
//! whole), the file contents into the file directory, and then marks the data restored
//! (`Server::mark_restored`). Devices that synced after the backup then find, at their next
//! sync, the uploads the restore lost in their upload journal and send them again, and
//! download everything afresh. With PostgreSQL, `pg_restore` puts the database back first.

use std::path::Path;
use std::process::ExitCode;

use ferry_server::{Clock as _, Database, SystemClock};
use serde_json::json;

use crate::cli::{BackupArgs, RestoreArgs, ServeArgs};
use crate::{EXIT_INVALID, EXIT_IO};

/// How long the copy waits for the database's lock when a write holds it, in milliseconds.
const BACKUP_BUSY_WAIT_MS: u64 = 30_000;

pub(crate) fn backup(args: BackupArgs) -> ExitCode {
    let target = args.to.clone();
    let storage = crate::serve::given(args.serve).and_then(|given| crate::serve::storage(&given));
    let (database, files) = match storage {
        Ok(storage) => storage,
        Err(message) => {
            eprintln!("error: {message} (see `ferry backup --help`)");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    match run(&database, &files, &target) {
        Ok(said) => {
            println!("{said}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_IO)
        }
    }
}

fn run(database: &Database, files: &Path, target: &Path) -> Result<String, String> {
    let empty = match std::fs::read_dir(target) {
        Ok(mut entries) => entries.next().is_none(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => true,
        Err(error) => return Err(format!("--to {}: {error}", target.display())),
    };
    if !empty {
        return Err(format!("--to {}: the directory holds something already", target.display()));
    }
    std::fs::create_dir_all(target).map_err(|e| format!("--to {}: {e}", target.display()))?;
    let copied = match database {
        Database::Sqlite(path) => copy_sqlite(path, &target.join("ferry.db"))?,
        Database::Postgres(_) => None,
    };
    let (contents, bytes) = copy_contents(files, &target.join("files"), false)?;
    let manifest = json!({
        "made_at": SystemClock.now().to_string(),
        "database": if copied.is_some() { "sqlite: ferry.db" } else { "postgres: run pg_dump" },
        "contents": contents,
        "content_bytes": bytes,
    });
    let text = serde_json::to_string_pretty(&manifest).expect("JSON serialises");
    std::fs::write(target.join("backup.json"), text).map_err(|e| format!("backup.json: {e}"))?;
    let base =
        format!("{contents} file contents ({bytes} bytes) in {}", target.join("files").display());
    Ok(match (database, copied) {
        (Database::Postgres(url), _) => format!(
            "backup: {base}; now run\n  pg_dump --format=custom --file {} '{url}'\nand restore it with pg_restore into an empty database",
            target.join("ferry.pgdump").display()
        ),
        (_, Some(size)) => format!(
            "backup: the database ({size} bytes) in {}, {base}",
            target.join("ferry.db").display()
        ),
        (_, None) => base,
    })
}

/// Copies the SQLite database at `path` to `to` as one moment saw it; gives the copy's size.
fn copy_sqlite(path: &Path, to: &Path) -> Result<Option<u64>, String> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI;
    let connection = rusqlite::Connection::open_with_flags(path, flags)
        .map_err(|e| format!("open {}: {e}", path.display()))?;
    connection
        .busy_timeout(std::time::Duration::from_millis(BACKUP_BUSY_WAIT_MS))
        .map_err(|e| e.to_string())?;
    let target = to.to_str().ok_or_else(|| format!("{} is not a UTF-8 path", to.display()))?;
    connection
        .execute("VACUUM INTO ?1", [target])
        .map_err(|e| format!("copy {}: {e}", path.display()))?;
    let size = std::fs::metadata(to).map_err(|e| format!("{}: {e}", to.display()))?.len();
    Ok(Some(size))
}

/// Copies every content of the file store at `from` (`<2 hex>/<sha-256>`; not `incoming/`),
/// but for those `to` holds already when `keep_present`. Gives the contents and bytes copied.
fn copy_contents(from: &Path, to: &Path, keep_present: bool) -> Result<(u64, u64), String> {
    let (mut contents, mut bytes) = (0, 0);
    let shards = match std::fs::read_dir(from) {
        Ok(shards) => shards,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(error) => return Err(format!("{}: {error}", from.display())),
    };
    for shard in shards {
        let shard = shard.map_err(|e| e.to_string())?;
        let name = shard.file_name().to_string_lossy().into_owned();
        if name == "incoming" || name.len() != 2 || !shard.path().is_dir() {
            continue;
        }
        std::fs::create_dir_all(to.join(&name)).map_err(|e| format!("{}: {e}", to.display()))?;
        for entry in std::fs::read_dir(shard.path()).map_err(|e| e.to_string())? {
            let entry = entry.map_err(|e| e.to_string())?;
            let target = to.join(&name).join(entry.file_name());
            if keep_present && target.exists() {
                continue;
            }
            bytes += std::fs::copy(entry.path(), &target)
                .map_err(|e| format!("copy {}: {e}", entry.path().display()))?;
            contents += 1;
        }
    }
    Ok((contents, bytes))
}

pub(crate) fn restore(args: RestoreArgs) -> ExitCode {
    let RestoreArgs { from, serve } = args;
    let given = match crate::serve::given(serve) {
        Ok(given) => given,
        Err(message) => {
            eprintln!("error: {message} (see `ferry restore --help`)");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let copied = crate::serve::storage(&given)
        .and_then(|(database, files)| put_back(&from, &database, &files));
    let said = match copied {
        Ok(said) => said,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_IO);
        }
    };
    let (epoch, restored) =
        match crate::serve::mark_restored(ServeArgs { config: None, options: given }) {
            Ok(marked) => marked,
            Err(code) => return code,
        };
    let through = restored.last().map_or(0, |point| point.through);
    println!(
        "restore: {said}; the data is in epoch {epoch} now, restored through change {through}: each device's next sync sends again what it uploaded after the backup, then downloads everything"
    );
    ExitCode::SUCCESS
}

/// Copies the backup in `from` back: the SQLite database (which must not exist) and the file
/// contents the file directory lacks. Says what it copied.
fn put_back(from: &Path, database: &Database, files: &Path) -> Result<String, String> {
    let manifest = from.join("backup.json");
    let text = std::fs::read_to_string(&manifest).map_err(|e| {
        format!("--from {}: no backup there ({}: {e})", from.display(), manifest.display())
    })?;
    let manifest: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a backup's manifest: {e}", manifest.display()))?;
    let made_at = manifest["made_at"].as_str().unwrap_or("an unknown time").to_owned();
    let database_said = match database {
        Database::Sqlite(path) => {
            let copy = from.join("ferry.db");
            if !copy.is_file() {
                return Err(format!(
                    "--from {}: the backup holds no ferry.db (a PostgreSQL backup is restored with pg_restore, then `ferry restore` with --database postgres://…)",
                    from.display()
                ));
            }
            let taken =
                ["", "-wal", "-shm"].iter().map(|end| with_suffix(path, end)).find(|p| p.exists());
            if let Some(taken) = taken {
                return Err(format!(
                    "{} exists: a restore replaces the data whole, so move the old database (and its -wal and -shm files) away first",
                    taken.display()
                ));
            }
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            std::fs::copy(&copy, path)
                .map_err(|e| format!("copy {} to {}: {e}", copy.display(), path.display()))?;
            format!("the database of {made_at} in {}", path.display())
        }
        Database::Postgres(_) => {
            format!("the PostgreSQL database as pg_restore put back the backup of {made_at}")
        }
    };
    // A content is immutable under its hash: one the directory holds already is the same.
    let (contents, bytes) = copy_contents(&from.join("files"), files, true)?;
    Ok(format!(
        "{database_said}, {contents} file contents ({bytes} bytes) into {}",
        files.display()
    ))
}

fn with_suffix(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut text = path.as_os_str().to_owned();
    text.push(suffix);
    std::path::PathBuf::from(text)
}
