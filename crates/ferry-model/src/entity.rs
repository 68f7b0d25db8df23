//! Entities, their attributes and associations, as a validated `Model` holds them.
//! Members of an entity are numbered by slot: attributes first, then owned associations, both by name.

use std::fmt;

use crate::access::{AccessRule, DownloadBehaviour};
use crate::error::Position;
use crate::value::{Value, ValueType};

/// A qualified entity name, `Module.Name`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct EntityName(String);

impl EntityName {
    /// Wraps an already validated name; see `Model::entity` for lookups from input.
    pub(crate) fn new(name: String) -> Self {
        EntityName(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The module part: `Field` of `Field.WorkOrder`.
    pub fn module(&self) -> &str {
        self.0.split_once('.').map_or("", |(module, _)| module)
    }
}

impl fmt::Display for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The built-in entity of signed-in users; associations may point at it and `[%CurrentUser%]` is one.
pub const USER_ENTITY: &str = "System.User";

/// One entity of the model.
#[derive(Clone, Debug)]
pub struct Entity {
    pub name: EntityName,
    /// Sorted by name.
    pub attributes: Vec<Attribute>,
    /// Associations stored on this entity (it is their owner), sorted by name.
    pub associations: Vec<Association>,
    pub kind: EntityKind,
    pub download: DownloadBehaviour,
    pub conflict: ConflictPolicy,
    pub access: Vec<AccessRule>,
    pub at: Position,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EntityKind {
    /// Plain data.
    Plain,
    /// Objects carry file contents in the blob store; the file attributes are built in.
    File,
    /// Built into every model (`System.User`); managed by the server.
    System,
}

/// What happens when a device changes an object that changed on the server since the device read it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ConflictPolicy {
    /// Each attribute keeps the last value uploaded for it.
    LastWriterWins,
    /// A change based on an outdated revision is rejected.
    RevisionCheck,
}

/// The built-in attributes of a file entity.
pub const FILE_ATTRIBUTES: [(&str, AttributeType); 4] = [
    ("ContentChanged", AttributeType::DateTime),
    ("ContentHash", AttributeType::String { max_length: Some(64) }),
    ("FileName", AttributeType::String { max_length: Some(400) }),
    ("FileSize", AttributeType::Integer),
];

/// The position of a member in an entity, and in every object of that entity.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Slot(pub usize);

/// A member of an entity found by name.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MemberRef {
    Attribute(usize),
    Association(usize),
}

impl Entity {
    pub fn member_count(&self) -> usize {
        self.attributes.len() + self.associations.len()
    }

    pub fn slot(&self, member: MemberRef) -> Slot {
        match member {
            MemberRef::Attribute(index) => Slot(index),
            MemberRef::Association(index) => Slot(self.attributes.len() + index),
        }
    }

    pub fn member_at(&self, slot: Slot) -> MemberRef {
        if slot.0 < self.attributes.len() {
            MemberRef::Attribute(slot.0)
        } else {
            MemberRef::Association(slot.0 - self.attributes.len())
        }
    }

    /// The member's name as rules and messages use it: the attribute name or the qualified association name.
    pub fn member_name(&self, slot: Slot) -> &str {
        match self.member_at(slot) {
            MemberRef::Attribute(index) => &self.attributes[index].name,
            MemberRef::Association(index) => &self.associations[index].name,
        }
    }

    pub fn attribute(&self, name: &str) -> Option<(usize, &Attribute)> {
        let index = self.attributes.binary_search_by(|a| a.name.as_str().cmp(name)).ok()?;
        Some((index, &self.attributes[index]))
    }

    /// An owned association by qualified name, or by its name without the module.
    pub fn association(&self, name: &str) -> Option<(usize, &Association)> {
        self.associations
            .iter()
            .enumerate()
            .find(|(_, a)| a.name == name || a.short_name() == name && !name.contains('.'))
    }

    /// The type of a member when it is an attribute; `None` for an association (a reference).
    pub fn attribute_type_of(&self, member: MemberRef) -> Option<&AttributeType> {
        match member {
            MemberRef::Attribute(index) => Some(&self.attributes[index].attribute_type),
            MemberRef::Association(_) => None,
        }
    }

    /// An attribute or owned association by name.
    pub fn member(&self, name: &str) -> Option<MemberRef> {
        if let Some((index, _)) = self.attribute(name) {
            return Some(MemberRef::Attribute(index));
        }
        self.association(name).map(|(index, _)| MemberRef::Association(index))
    }

    /// The model's default for each slot: the attribute default, or empty.
    pub fn default_values(&self) -> Vec<Value> {
        let attributes = self.attributes.iter().map(|a| a.default.clone().unwrap_or(Value::Empty));
        attributes.chain(self.associations.iter().map(|_| Value::Empty)).collect()
    }
}

#[derive(Clone, Debug)]
pub struct Attribute {
    pub name: String,
    pub attribute_type: AttributeType,
    pub default: Option<Value>,
    pub rules: ValidationRules,
    pub at: Position,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum AttributeType {
    String {
        max_length: Option<u32>,
    },
    Integer,
    /// Exact, with this many fractional digits.
    Decimal {
        scale: u32,
    },
    Boolean,
    DateTime,
    Enumeration {
        values: Vec<String>,
    },
    Binary,
}

impl AttributeType {
    pub fn value_type(&self) -> ValueType {
        match self {
            AttributeType::String { .. } => ValueType::String,
            AttributeType::Integer => ValueType::Integer,
            AttributeType::Decimal { .. } => ValueType::Decimal,
            AttributeType::Boolean => ValueType::Boolean,
            AttributeType::DateTime => ValueType::DateTime,
            AttributeType::Enumeration { .. } => ValueType::Enumeration,
            AttributeType::Binary => ValueType::Binary,
        }
    }
}

impl fmt::Display for AttributeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttributeType::String { max_length: Some(max) } => write!(f, "string({max})"),
            AttributeType::Decimal { scale } => write!(f, "decimal(scale {scale})"),
            AttributeType::Enumeration { values } => write!(f, "enumeration({})", values.join("|")),
            other => write!(f, "{}", other.value_type()),
        }
    }
}

/// Validation rules of one attribute, checked by the server on every applied change.
#[derive(Clone, Debug, Default)]
pub struct ValidationRules {
    pub required: bool,
    pub unique: bool,
    /// Inclusive bounds, of the attribute's own type.
    pub min: Option<Value>,
    pub max: Option<Value>,
    /// A regular expression the whole value must match.
    pub pattern: Option<Pattern>,
}

/// A compiled validation pattern; the whole value must match.
#[derive(Clone, Debug)]
pub struct Pattern {
    source: String,
    regex: regex_lite::Regex,
}

impl Pattern {
    pub(crate) fn new(source: &str) -> Result<Self, regex_lite::Error> {
        let regex = regex_lite::Regex::new(&format!("^(?:{source})$"))?;
        Ok(Pattern { source: source.to_owned(), regex })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn matches(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

/// A reference from the owner entity to the target entity, stored on the owner.
#[derive(Clone, Debug)]
pub struct Association {
    /// Qualified: `Field.WorkOrder_Site`.
    pub name: String,
    pub owner: EntityName,
    pub target: EntityName,
    pub kind: AssociationKind,
    /// What deleting a target does to the owners that refer to it.
    pub on_delete: DeleteBehaviour,
    pub at: Position,
}

/// The most objects one deletion may take with it through associations that delete their
/// referring objects; a deletion that would take more is refused.
pub const DELETE_CASCADE_OBJECTS_MAX: usize = 10_000;

/// What deleting an object does to the objects referring to it through an association: the
/// server applies it at upload (with the server's rights: the model says what goes with an
/// object), the device at delete, so both hold the same objects afterwards.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DeleteBehaviour {
    /// The referring objects keep existing with the reference emptied (the default).
    Clear,
    /// The referring objects are deleted too (and what refers to them, by their associations).
    Delete,
    /// The deletion is refused while any object refers to the target.
    Refuse,
}

impl DeleteBehaviour {
    /// The name the model file uses.
    pub fn name(self) -> &'static str {
        match self {
            DeleteBehaviour::Clear => "clear",
            DeleteBehaviour::Delete => "delete",
            DeleteBehaviour::Refuse => "refuse",
        }
    }
}

impl Association {
    pub fn short_name(&self) -> &str {
        self.name.split_once('.').map_or(&self.name, |(_, short)| short)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AssociationKind {
    /// Many owners may point at one target.
    Reference,
    /// At most one owner points at each target.
    OneToOne,
}
