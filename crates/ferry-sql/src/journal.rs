//! The device's upload journal, `ferry_uploaded`: what each upload the server applied changed,
//! with the server's epoch and the upload's position in its change sequence. When the server's
//! data is restored from a backup, the changes of the uploads the backup does not hold are
//! made dirty again from it (`ferry_sync::restore`), so nothing a device uploaded after the
//! backup is lost. Both SDKs run these statements.

/// How long the journal keeps an upload's changes, in days: a restore from a backup older
/// than that cannot bring back what a device uploaded before the journal's oldest row.
pub const UPLOAD_JOURNAL_DAYS: i64 = 30;

/// The journal's rows older than [`UPLOAD_JOURNAL_DAYS`] before `now` (microseconds) go.
pub fn kept_since(now_micros: i64) -> i64 {
    now_micros.saturating_sub(UPLOAD_JOURNAL_DAYS.saturating_mul(86_400_000_000))
}

/// One applied change: entity, id, kind (`create`, `update`, `delete`), its members
/// (comma-separated), the revision it was based on, the server's epoch, the upload's
/// position, and when the device journaled it (microseconds).
pub const INSERT: &str = "INSERT INTO ferry_uploaded (entity, object_id, kind, members, base_revision, epoch, seq, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// Forgets the rows journaled before `?1` (see [`kept_since`]).
pub const PRUNE: &str = "DELETE FROM ferry_uploaded WHERE at < ?1";

/// The rows of other epochs than `?1`, in the order they were journaled.
pub const READ: &str = "SELECT rowid, entity, object_id, kind, members, base_revision, epoch, seq FROM ferry_uploaded WHERE epoch <> ?1 ORDER BY rowid";

/// Forgets one row, by its `rowid`.
pub const FORGET: &str = "DELETE FROM ferry_uploaded WHERE rowid = ?1";

/// Forgets every row: another user signed in, and what this device uploaded for the previous
/// one is not theirs to send again.
pub const FORGET_ALL: &str = "DELETE FROM ferry_uploaded";
