//! Reading, running and writing transcripts.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use ferry_model::Model;
use ferry_sync::{Action, SyncMachine, transcript};

fn directory() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("transcripts")
}

fn model() -> Arc<Model> {
    let text = std::fs::read_to_string(directory().join("model.toml")).unwrap();
    Arc::new(Model::parse(&text).unwrap())
}

/// Runs one transcript and compares, or rewrites it under `UPDATE_EXPECT=1`.
pub(crate) fn check(name: &str) {
    let path = directory().join(format!("{name}.txt"));
    let written = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (make it with the events it feeds)", path.display()));
    let actual = run(&written);
    if actual == written {
        return;
    }
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    panic!(
        "{} differs from what the machine does; run with UPDATE_EXPECT=1 to see the change in the diff\n\n--- the machine now ---\n{actual}",
        path.display()
    );
}

/// Every `.txt` file is one of the listed transcripts.
pub(crate) fn every_file_is_listed(listed: &[&str]) {
    let mut unlisted = Vec::new();
    for entry in std::fs::read_dir(directory()).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.extension().is_some_and(|e| e == "txt") && !listed.contains(&stem.as_str()) {
            unlisted.push(stem);
        }
    }
    assert!(unlisted.is_empty(), "transcripts no test runs: {unlisted:?}");
}

/// The transcript as the machine plays it: the comments and events as written, each event's
/// actions after it as the machine gives them now.
fn run(written: &str) -> String {
    let model = model();
    let text = model_text();
    let mut machine = SyncMachine::new();
    let mut out = String::new();
    let mut last_upgrade: Option<String> = None;
    for line in written.lines() {
        if line.starts_with("< ") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        let Some(event) = line.strip_prefix("> ") else { continue };
        let event = transcript::event(event, &model, &text, last_upgrade.as_deref()).unwrap();
        for action in machine.handle(event) {
            if let Action::UpgradeModel { text } = &action {
                last_upgrade = Some(text.clone());
            }
            writeln!(out, "< {}", transcript::render(&action)).unwrap();
        }
    }
    out
}

fn model_text() -> String {
    std::fs::read_to_string(directory().join("model.toml")).unwrap()
}
