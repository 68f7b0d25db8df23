//! `ferry model check` and `ferry model diff`: the model file as an app developer sees it.

use std::process::ExitCode;

use anyhow::Context as _;
use ferry_model::{DownloadBehaviour, EntityKind, Model, ModelError};
use ferry_sql::{Dialect, Side, plan_migration};

use crate::{EXIT_BREAKING, EXIT_INVALID, EXIT_IO};

/// A model file read and fully checked, constraints included.
enum Loaded {
    Valid(Model, ferry_constraint::ModelConstraints),
    Invalid(Vec<ModelError>),
}

fn load(path: &str) -> anyhow::Result<Loaded> {
    let source =
        std::fs::read_to_string(path).with_context(|| format!("read model file {path}"))?;
    let model = match Model::parse(&source) {
        Ok(model) => model,
        Err(errors) => return Ok(Loaded::Invalid(errors)),
    };
    Ok(match ferry_constraint::check_model(&model) {
        Ok(constraints) => Loaded::Valid(model, constraints),
        Err(errors) => Loaded::Invalid(errors),
    })
}

/// Loads a model, printing why when it cannot be used; `Err` holds the exit code.
fn load_or_report(path: &str) -> Result<(Model, ferry_constraint::ModelConstraints), ExitCode> {
    match load(path) {
        Ok(Loaded::Valid(model, constraints)) => Ok((model, constraints)),
        Ok(Loaded::Invalid(errors)) => {
            for error in &errors {
                eprintln!("{path}:{error}");
            }
            let plural = if errors.len() == 1 { "" } else { "s" };
            eprintln!("{path}: {} error{plural}; the model is refused", errors.len());
            Err(ExitCode::from(EXIT_INVALID))
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            Err(ExitCode::from(EXIT_IO))
        }
    }
}

pub(crate) fn check(path: &str) -> ExitCode {
    let (model, constraints) = match load_or_report(path) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    println!("{path}: valid");
    println!("version {}", model.version());
    let roles: Vec<String> = model
        .roles()
        .map(|r| if r.admin { format!("{} (admin)", r.name) } else { r.name.to_string() })
        .collect();
    println!("roles: {}", roles.join(", "));
    println!("entities:");
    for entity in model.entities() {
        let kind = match entity.kind {
            EntityKind::Plain => "",
            EntityKind::File => " file",
            EntityKind::System => " system",
        };
        let download = match &entity.download {
            DownloadBehaviour::Constraint(source) => format!("constraint {}", source.text),
            other => other.keyword().to_owned(),
        };
        println!(
            "  {:<24}{kind} {} attributes, {} associations, {} access rules, download {download}",
            entity.name.as_str(),
            entity.attributes.len(),
            entity.associations.len(),
            entity.access.len(),
        );
    }
    let actions: Vec<&ferry_model::DeclaredAction> = model.actions().collect();
    if !actions.is_empty() {
        println!("actions:");
    }
    for action in actions {
        let roles: Vec<&str> = action.roles.iter().map(|r| r.as_str()).collect();
        let parameters: Vec<String> =
            action.parameters.iter().map(|p| format!("${} {}", p.name, p.value_type)).collect();
        let follow = match action.follow.is_empty() {
            true => String::new(),
            false => format!(", following {}", action.follow.join(", ")),
        };
        println!(
            "  {:<24} {} objects to the device{follow}; parameters [{}]; for {}",
            action.name,
            action.entity,
            parameters.join(", "),
            roles.join(", ")
        );
    }
    println!(
        "constraints: {} access, {} download, {} action, all checked",
        constraints.access.len(),
        constraints.download.len(),
        constraints.actions.len()
    );
    ExitCode::SUCCESS
}

pub(crate) fn diff(old_path: &str, new_path: &str, dialect: Option<&str>) -> ExitCode {
    let dialect = match dialect {
        None => None,
        Some("sqlite") => Some(Dialect::Sqlite),
        Some("postgres") => Some(Dialect::Postgres),
        Some(other) => {
            eprintln!("error: unknown SQL dialect `{other}` (expected sqlite or postgres)");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let (old, _) = match load_or_report(old_path) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let (new, _) = match load_or_report(new_path) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    println!("from version {} ({old_path})", old.version());
    println!("to   version {} ({new_path})", new.version());
    let plan = plan_migration(&old, &new);
    print!("{plan}");
    if plan.is_breaking() {
        eprintln!("the migration has breaking changes; a server refuses to start with this model");
        return ExitCode::from(EXIT_BREAKING);
    }
    if let Some(dialect) = dialect {
        println!("statements (server database):");
        for statement in plan.statements(&new, dialect, Side::Server) {
            println!("{statement};");
        }
    }
    ExitCode::SUCCESS
}
