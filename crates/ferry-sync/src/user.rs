//! When sync starts by itself (DESIGN.md §4): a full sync is due on a first start, after a new
//! model, and for a new user; a sign-in of another user takes the previous user's data off the
//! device, which waits until none of their changes is left to upload.

use ferry_model::ObjectId;

use crate::error::Error;

/// What a sign-in of `new` does on a device where `previous` was signed in, holding `changes`
/// objects with committed changes and, when `upload_stored`, an upload not yet answered: true
/// when the previous user's data must leave the device.
pub fn switching(
    previous: Option<ObjectId>,
    new: ObjectId,
    changes: usize,
    upload_stored: bool,
) -> Result<bool, Error> {
    match previous {
        Some(previous) if previous != new => {
            if changes > 0 || upload_stored {
                return Err(Error::AnotherUsersChanges { count: changes });
            }
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Why a full sync is due: `SyncEngine::sync_if_needed` runs one, and so does every sync of
/// the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FullSyncDue {
    /// The device never completed a full sync for its user: a first start, a new user.
    FirstSync,
    /// The server's model changed since the last full sync; the device follows it.
    ModelChanged,
}

/// Whether a full sync is due on a device whose model changed since its last full sync
/// (`model_changed`) and which has downloaded before (holds a checkpoint; a new user's
/// sign-in forgets them all).
pub fn full_sync_due(model_changed: bool, downloaded_before: bool) -> Option<FullSyncDue> {
    match (model_changed, downloaded_before) {
        (true, _) => Some(FullSyncDue::ModelChanged),
        (false, false) => Some(FullSyncDue::FirstSync),
        (false, true) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_sync_is_due_first_and_after_a_new_model() {
        assert_eq!(full_sync_due(false, false), Some(FullSyncDue::FirstSync));
        assert_eq!(full_sync_due(true, true), Some(FullSyncDue::ModelChanged));
        assert_eq!(full_sync_due(false, true), None);
    }

    #[test]
    fn another_user_waits_for_the_previous_users_changes() {
        let (alice, bob) = (ObjectId::from_parts(1, 1), ObjectId::from_parts(1, 2));
        assert_eq!(switching(Some(alice), alice, 3, true), Ok(false));
        assert_eq!(switching(None, bob, 0, false), Ok(false));
        assert_eq!(switching(Some(alice), bob, 0, false), Ok(true));
        assert_eq!(
            switching(Some(alice), bob, 2, false),
            Err(Error::AnotherUsersChanges { count: 2 })
        );
        assert_eq!(
            switching(Some(alice), bob, 0, true),
            Err(Error::AnotherUsersChanges { count: 0 })
        );
    }
}
