//! Why a model file was refused, and where: every problem is reported at once, each with line and column.

use std::fmt;

use crate::value::ValueType;

/// A 1-based line and column (in characters) in the model file.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Default)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl Position {
    /// The position `offset` characters further along the same line.
    pub fn shifted(self, offset: usize) -> Position {
        Position { line: self.line, column: self.column + offset as u32 }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Maps byte offsets of a source text to positions.
pub(crate) struct LineIndex<'a> {
    source: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(source: &'a str) -> Self {
        let line_starts =
            std::iter::once(0).chain(source.match_indices('\n').map(|(i, _)| i + 1)).collect();
        LineIndex { source, line_starts }
    }

    pub(crate) fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.source.len());
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let start = self.line_starts[line];
        let column = self.source.get(start..offset).map_or(offset - start, |s| s.chars().count());
        Position { line: line as u32 + 1, column: column as u32 + 1 }
    }
}

/// One problem in a model file.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("{at}: {kind}")]
pub struct ModelError {
    pub at: Position,
    pub kind: ModelErrorKind,
}

#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ModelErrorKind {
    #[error("{message}")]
    Syntax { message: String },
    #[error("{what} name `{name}` is not valid: {rule}")]
    BadName { what: &'static str, name: String, rule: &'static str },
    #[error("{what} `{name}` is declared twice (names differing only in case clash in SQL)")]
    Duplicate { what: &'static str, name: String },
    #[error("{what} name `{name}` is reserved")]
    Reserved { what: &'static str, name: String },
    #[error("the model has more than {max} {what}")]
    TooMany { what: &'static str, max: usize },
    #[error(
        "attribute `{entity}.{attribute}` has unknown type `{type_name}` (expected string, integer, decimal, boolean, datetime, enumeration or binary)"
    )]
    UnknownType { entity: String, attribute: String, type_name: String },
    #[error("attribute `{entity}.{attribute}`: `{option}` does not apply to type {attribute_type}")]
    OptionNotAllowed {
        entity: String,
        attribute: String,
        option: &'static str,
        attribute_type: ValueType,
    },
    #[error("attribute `{entity}.{attribute}`: {problem}")]
    BadAttribute { entity: String, attribute: String, problem: String },
    #[error("attribute `{entity}.{attribute}`: {what}: {problem}")]
    BadValue { entity: String, attribute: String, what: &'static str, problem: String },
    #[error("association `{association}` targets unknown entity `{target}`")]
    UnknownTarget { association: String, target: String },
    #[error(
        "association `{association}`: unknown kind `{kind}` (expected reference, one-to-many or one-to-one)"
    )]
    BadAssociationKind { association: String, kind: String },
    #[error(
        "association `{association}`: unknown delete behaviour `{behaviour}` (expected clear, delete or refuse)"
    )]
    BadDeleteBehaviour { association: String, behaviour: String },
    #[error(
        "entity `{entity}`: unknown download behaviour `{behaviour}` (expected all, constraint, nothing-clear or nothing-preserve)"
    )]
    BadDownload { entity: String, behaviour: String },
    #[error("entity `{entity}`: download = \"constraint\" needs a download_constraint")]
    MissingDownloadConstraint { entity: String },
    #[error(
        "entity `{entity}`: download_constraint is only used with download = \"constraint\", not `{behaviour}`"
    )]
    UnusedDownloadConstraint { entity: String, behaviour: String },
    #[error(
        "entity `{entity}`: unknown conflict policy `{policy}` (expected last-writer-wins or revision-check)"
    )]
    BadConflict { entity: String, policy: String },
    #[error("entity `{entity}`: access rule names unknown role `{role}`")]
    UnknownRole { entity: String, role: String },
    #[error("entity `{entity}`: access rule for role `{role}` names unknown member `{member}`")]
    UnknownMember { entity: String, role: String, member: String },
    #[error("entity `{entity}` has two access rules for role `{role}`")]
    DuplicateRule { entity: String, role: String },
    #[error("entity `{entity}`: {rule} constraint: {problem}")]
    BadConstraint { entity: String, rule: String, problem: String },
    #[error(
        "cannot work offline: entity `{entity}` has no access rule, so no device can read or create it"
    )]
    NoAccess { entity: String },
    #[error(
        "cannot work offline: role `{role}` may write member `{member}` of `{entity}` but not read it, so a device cannot hold the value it writes"
    )]
    WriteWithoutRead { entity: String, role: String, member: String },
    #[error(
        "cannot work offline: role `{role}` may create `{entity}` but not write its required attribute `{attribute}`, which has no default, so every object it creates offline would be rejected"
    )]
    RequiredNotWritable { entity: String, role: String, attribute: String },
    #[error(
        "cannot work offline: association `{association}` points at `{target}`, which is cleared on devices (download = \"nothing-clear\"), so the reference could never be followed there"
    )]
    ReferenceToClearedEntity { association: String, target: String },
    #[error("action `{action}`: {problem}")]
    BadAction { action: String, problem: String },
}
