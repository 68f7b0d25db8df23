//! The raw shape of a model file (TOML) as written by app developers.
//! Nothing here is validated beyond TOML syntax and known keys; `load` turns it into a `Model`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    #[serde(default)]
    pub roles: BTreeMap<Spanned<String>, RoleFile>,
    #[serde(default)]
    pub entities: BTreeMap<Spanned<String>, EntityFile>,
    #[serde(default)]
    pub actions: BTreeMap<Spanned<String>, ActionFile>,
}

/// A declared server action.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ActionFile {
    /// The roles that may call it.
    #[serde(default)]
    pub roles: Vec<Spanned<String>>,
    /// The entity whose matching objects go to the device.
    pub entity: Spanned<String>,
    #[serde(default)]
    pub parameters: BTreeMap<Spanned<String>, ParameterFile>,
    /// Which objects (may use `$Parameter` and `[%CurrentUser%]`); all when absent.
    pub constraint: Option<Spanned<String>>,
    /// Associations of the entity whose targets go to the device too.
    #[serde(default)]
    pub follow: Vec<Spanned<String>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ParameterFile {
    #[serde(rename = "type")]
    pub type_name: Spanned<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RoleFile {
    /// Administrators read and replay synchronization failures.
    #[serde(default)]
    pub admin: bool,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct EntityFile {
    /// A file entity: its objects carry file contents.
    #[serde(default)]
    pub file: bool,
    /// `all` (the default), `constraint`, `nothing-clear` or `nothing-preserve`.
    pub download: Option<Spanned<String>>,
    pub download_constraint: Option<Spanned<String>>,
    /// `last-writer-wins` (the default) or `revision-check`.
    pub conflict: Option<Spanned<String>>,
    #[serde(default)]
    pub attributes: BTreeMap<Spanned<String>, AttributeFile>,
    #[serde(default)]
    pub associations: BTreeMap<Spanned<String>, AssociationFile>,
    #[serde(default)]
    pub access: Vec<Spanned<AccessFile>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct AttributeFile {
    #[serde(rename = "type")]
    pub type_name: Spanned<String>,
    pub max_length: Option<Spanned<i64>>,
    pub scale: Option<Spanned<i64>>,
    pub values: Option<Vec<Spanned<String>>>,
    pub default: Option<Spanned<Scalar>>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub unique: bool,
    pub min: Option<Spanned<Scalar>>,
    pub max: Option<Spanned<Scalar>>,
    pub pattern: Option<Spanned<String>>,
}

/// A literal in the model file; decimals are written as strings so no float ever touches them.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum Scalar {
    Boolean(bool),
    Integer(i64),
    Float(f64),
    String(String),
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct AssociationFile {
    pub target: Spanned<String>,
    /// `reference` (the default; also written `one-to-many`: many owners per target) or `one-to-one`.
    pub kind: Option<Spanned<String>>,
    /// What deleting a target does to the owners referring to it: `clear` their reference (the
    /// default), `delete` them too, or `refuse` the deletion while any refers to it.
    pub on_delete: Option<Spanned<String>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct AccessFile {
    pub role: Spanned<String>,
    #[serde(default)]
    pub create: bool,
    #[serde(default)]
    pub delete: bool,
    /// Member names, or `["*"]` for every member.
    #[serde(default)]
    pub read: Vec<Spanned<String>>,
    #[serde(default)]
    pub write: Vec<Spanned<String>>,
    pub constraint: Option<Spanned<String>>,
}
