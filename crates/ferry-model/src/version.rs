//! The model version: a SHA-256 of the model's canonical text, so comments, formatting and the
//! order of declarations never change it, while any change of meaning does.

use std::fmt::{self, Write};

use sha2::{Digest, Sha256};

use crate::Model;
use crate::access::DownloadBehaviour;
use crate::entity::{AssociationKind, ConflictPolicy, EntityKind};

/// Identifies a model's content; devices compare it to notice a new model.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ModelVersion([u8; 32]);

impl ModelVersion {
    pub(crate) fn placeholder() -> Self {
        ModelVersion([0; 32])
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for ModelVersion {
    /// The first 16 hex digits, which is what people compare.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0[..8].iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

pub(crate) fn of(model: &Model) -> ModelVersion {
    let digest = Sha256::digest(canonical_text(model).as_bytes());
    let mut bytes = [0; 32];
    bytes.copy_from_slice(&digest);
    ModelVersion(bytes)
}

/// Every meaningful part of the model, in a fixed order, one fact per line.
pub(crate) fn canonical_text(model: &Model) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    for role in model.roles.values() {
        line(format!("role {} admin={}", role.name, role.admin));
    }
    for entity in model.entities.values() {
        let kind = match entity.kind {
            EntityKind::Plain => "plain",
            EntityKind::File => "file",
            EntityKind::System => "system",
        };
        let conflict = match entity.conflict {
            ConflictPolicy::LastWriterWins => "last-writer-wins",
            ConflictPolicy::RevisionCheck => "revision-check",
        };
        line(format!("entity {} {kind} conflict={conflict}", entity.name));
        let download = match &entity.download {
            DownloadBehaviour::Constraint(source) => format!("constraint {:?}", source.text),
            other => other.keyword().to_owned(),
        };
        line(format!("  download {download}"));
        for attribute in &entity.attributes {
            let mut text = format!("  attribute {} {}", attribute.name, attribute.attribute_type);
            let rules = &attribute.rules;
            let _ = write!(text, " required={} unique={}", rules.required, rules.unique);
            for (label, value) in
                [("default", &attribute.default), ("min", &rules.min), ("max", &rules.max)]
            {
                if let Some(value) = value {
                    let _ = write!(text, " {label}={value}");
                }
            }
            if let Some(pattern) = &rules.pattern {
                let _ = write!(text, " pattern={:?}", pattern.source());
            }
            line(text);
        }
        for association in &entity.associations {
            let kind = match association.kind {
                AssociationKind::Reference => "reference",
                AssociationKind::OneToOne => "one-to-one",
            };
            // The default is left out, so models that do not name one keep their version.
            let on_delete = match association.on_delete {
                crate::DeleteBehaviour::Clear => String::new(),
                other => format!(" on_delete={}", other.name()),
            };
            line(format!(
                "  association {} -> {} {kind}{on_delete}",
                association.name, association.target
            ));
        }
        for rule in &entity.access {
            let names = |slots: &std::collections::BTreeSet<crate::Slot>| {
                slots.iter().map(|s| entity.member_name(*s)).collect::<Vec<_>>().join(",")
            };
            line(format!(
                "  access {} create={} delete={} read=[{}] write=[{}] constraint={:?}",
                rule.role,
                rule.create,
                rule.delete,
                names(&rule.read),
                names(&rule.write),
                rule.constraint.as_ref().map(|c| c.text.as_str())
            ));
        }
    }
    for action in model.actions.values() {
        let parameters: Vec<String> =
            action.parameters.iter().map(|p| format!("{}:{}", p.name, p.value_type)).collect();
        let roles: Vec<&str> = action.roles.iter().map(|r| r.as_str()).collect();
        line(format!(
            "action {} roles=[{}] entity={} parameters=[{}] constraint={:?} follow=[{}]",
            action.name,
            roles.join(","),
            action.entity,
            parameters.join(","),
            action.constraint.as_ref().map(|c| c.text.as_str()),
            action.follow.join(",")
        ));
    }
    out
}
