//! Who the device belongs to: a sign-in of another user takes the previous user's data off the
//! device, which waits until none of their changes is left to upload (DESIGN.md §4).

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
