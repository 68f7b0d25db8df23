//! Roles, access rules and download behaviour: what each user may read, write, create and delete,
//! and what full sync brings to the device.

use std::collections::BTreeSet;
use std::fmt;

use crate::entity::Slot;
use crate::error::Position;

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct RoleName(String);

impl RoleName {
    pub(crate) fn new(name: String) -> Self {
        RoleName(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug)]
pub struct Role {
    pub name: RoleName,
    /// Administrators read and replay synchronization failures.
    pub admin: bool,
    pub at: Position,
}

/// Constraint text as written in the model file, with where it starts there.
/// `ferry-constraint` checks it against the model.
#[derive(Clone, Debug)]
pub struct ConstraintSource {
    pub text: String,
    pub at: Position,
}

/// What one role may do with one entity. A user with several roles may do what any of them allows.
#[derive(Clone, Debug)]
pub struct AccessRule {
    pub role: RoleName,
    pub create: bool,
    pub delete: bool,
    pub read: BTreeSet<Slot>,
    pub write: BTreeSet<Slot>,
    /// Limits the objects the rule covers; `None` covers all.
    pub constraint: Option<ConstraintSource>,
    pub at: Position,
}

/// What a full sync downloads for an entity.
#[derive(Clone, Debug)]
pub enum DownloadBehaviour {
    /// Everything the user may read.
    All,
    /// Only the readable objects matching the constraint.
    Constraint(ConstraintSource),
    /// Nothing, and the entity is cleared on the device (upload-only data).
    NothingClear,
    /// Nothing, and the device keeps what it has (data pushed by sync-to-device or selected sync).
    NothingPreserve,
}

impl DownloadBehaviour {
    pub fn keyword(&self) -> &'static str {
        match self {
            DownloadBehaviour::All => "all",
            DownloadBehaviour::Constraint(_) => "constraint",
            DownloadBehaviour::NothingClear => "nothing-clear",
            DownloadBehaviour::NothingPreserve => "nothing-preserve",
        }
    }
}
