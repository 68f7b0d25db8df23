//! A server restored from a backup: which of the device's uploads the restore lost.
//!
//! The server's model answer names its epoch (new at each restore) and the restores it came
//! through, each the old epoch and the last position of its change sequence the backup holds.
//! The device keeps a journal of the changes its uploads applied, each with the epoch and the
//! upload's position (`ferry_sql::journal`). When the epoch differs from the one the device
//! last saw, the changes journaled in an epoch the restores do not cover, or after the
//! position a restore kept, are made dirty again ([`Store::Restored`]): the sync uploads them
//! again, and every download after it is full (its checkpoints were made for the old epoch).

use std::collections::BTreeSet;

use ferry_model::ObjectId;
use ferry_protocol::{ChangeKind, RestorePoint};

use crate::error::Error;
use crate::event::{Action, Event, Store};
use crate::run::{Cx, unexpected};

/// A journal row: a change an upload applied, where the upload stood; in the JSON form shells
/// and transcripts write it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalRow {
    /// The row's id in the journal, to forget it.
    pub row: i64,
    /// The object's entity.
    pub entity: String,
    /// The object's id.
    pub id: String,
    /// The change's kind.
    pub kind: ChangeKind,
    /// The members it changed (every member it set, for a creation; none for a deletion).
    #[serde(default)]
    pub members: Vec<String>,
    /// The revision it was based on.
    #[serde(default)]
    pub base_revision: Option<i64>,
    /// The server's epoch when it applied the upload.
    #[serde(default)]
    pub epoch: String,
    /// The upload's position in that epoch's change sequence.
    pub seq: i64,
}

/// A change the restore lost, to make dirty again: per object, the kind and base revision of
/// its first lost change (a deletion if any lost one is), and every member the lost ones
/// changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lost {
    /// The object's entity.
    pub entity: String,
    /// The object.
    pub id: ObjectId,
    /// The change's kind.
    pub kind: ChangeKind,
    /// The members to send again.
    pub members: Vec<String>,
    /// The revision the server's restored data has of the object, as the first lost change
    /// was based on it.
    pub base_revision: Option<i64>,
}

/// The changes of the journal a server in `epoch`, restored through `restored`, does not
/// hold, one per object in the order of their first row; and the rows they came from. A row
/// whose id is not an object id is refused.
pub fn lost(
    journal: &[JournalRow],
    epoch: &str,
    restored: &[RestorePoint],
) -> Result<(Vec<Lost>, Vec<i64>), Error> {
    let kept = |row: &JournalRow| {
        row.epoch == epoch
            || restored.iter().any(|point| point.epoch == row.epoch && row.seq <= point.through)
    };
    let mut changes: Vec<Lost> = Vec::new();
    let mut rows = Vec::new();
    for row in journal.iter().filter(|row| !kept(row)) {
        rows.push(row.row);
        let id = ObjectId::parse(&row.id).ok_or_else(|| Error::Corrupt {
            what: format!("the upload journal names `{}`, not an object id", row.id),
        })?;
        let found = changes.iter_mut().find(|c| c.entity == row.entity && c.id == id);
        let Some(change) = found else {
            changes.push(Lost {
                entity: row.entity.clone(),
                id,
                kind: row.kind,
                members: row.members.clone(),
                base_revision: row.base_revision,
            });
            continue;
        };
        if row.kind == ChangeKind::Delete {
            change.kind = ChangeKind::Delete;
            change.members.clear();
        } else if change.kind != ChangeKind::Delete {
            let members: BTreeSet<String> =
                change.members.drain(..).chain(row.members.iter().cloned()).collect();
            change.members = members.into_iter().collect();
        }
    }
    Ok((changes, rows))
}

/// Follows the server's epoch: when it is not the one the device last saw, the changes the
/// restore lost are made dirty again. Gives true when some were.
pub(crate) async fn follow(
    cx: &mut Cx,
    epoch: &str,
    restored: &[RestorePoint],
) -> Result<bool, Error> {
    if epoch == cx.server_epoch {
        return Ok(false);
    }
    let journal = match cx.io.ask(Action::ReadJournal { except_epoch: epoch.to_owned() }).await {
        Event::Journal(journal) => journal,
        other => return Err(unexpected(&other)),
    };
    let (lost, forget) = lost(&journal, epoch, restored)?;
    let any = !lost.is_empty();
    cx.io.emit(Action::Store(Store::Restored { epoch: epoch.to_owned(), lost, forget }));
    cx.server_epoch = epoch.to_owned();
    Ok(any)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail on any error")]

    use super::*;

    fn row(
        row: i64,
        id: u128,
        kind: ChangeKind,
        members: &[&str],
        epoch: &str,
        seq: i64,
    ) -> JournalRow {
        JournalRow {
            row,
            entity: "Field.Site".to_owned(),
            id: ObjectId::from_parts(1, id).to_string(),
            kind,
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            base_revision: Some(row),
            epoch: epoch.to_owned(),
            seq,
        }
    }

    #[test]
    fn only_changes_after_the_restored_position_or_of_unknown_epochs_are_lost() {
        let journal = [
            row(1, 1, ChangeKind::Update, &["Name"], "", 10),
            row(2, 1, ChangeKind::Update, &["Code"], "", 20),
            row(3, 2, ChangeKind::Create, &["Name", "Code"], "", 21),
            row(4, 2, ChangeKind::Update, &["Area"], "", 22),
            row(5, 3, ChangeKind::Update, &["Name"], "e1", 5),
            row(6, 4, ChangeKind::Update, &["Name"], "e2", 99),
        ];
        let restored = [RestorePoint { epoch: String::new(), through: 15 }];
        let (lost, rows) = lost(&journal, "e2", &restored).unwrap();
        assert_eq!(rows, vec![2, 3, 4, 5]);
        assert_eq!(lost.len(), 3);
        assert_eq!(lost[0].id, ObjectId::from_parts(1, 1));
        assert_eq!(
            (lost[0].kind, lost[0].members.clone()),
            (ChangeKind::Update, vec!["Code".to_owned()])
        );
        assert_eq!(lost[0].base_revision, Some(2));
        assert_eq!(lost[1].kind, ChangeKind::Create);
        assert_eq!(lost[1].members, ["Area", "Code", "Name"]);
        assert_eq!(lost[1].base_revision, Some(3));
        assert_eq!(lost[2].id, ObjectId::from_parts(1, 3));
    }

    #[test]
    fn a_lost_deletion_wins_over_the_changes_before_it() {
        let journal = [
            row(1, 1, ChangeKind::Update, &["Name"], "", 20),
            row(2, 1, ChangeKind::Delete, &[], "", 21),
        ];
        let restored = [RestorePoint { epoch: String::new(), through: 1 }];
        let (lost, _) = lost(&journal, "e1", &restored).unwrap();
        assert_eq!(lost.len(), 1);
        assert_eq!((lost[0].kind, lost[0].members.len()), (ChangeKind::Delete, 0));
        assert_eq!(lost[0].base_revision, Some(1));
    }
}
