//! Tidy: project rules that no compiler checks, run as an ordinary test everywhere.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace root")
        .to_owned()
}

fn files(dir: &Path, extension: &str, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir()
            && name != "target"
            && name != ".git"
            && name != "corpus"
            && name != "artifacts"
        {
            files(&path, extension, found);
        } else if path.extension().is_some_and(|e| e == extension) {
            found.push(path);
        }
    }
}

fn sources() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in ["crates", "xtask", "fuzz"] {
        files(&root().join(dir), "rs", &mut found);
    }
    found
}

#[test]
fn every_source_file_opens_with_a_module_doc() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|path| !std::fs::read_to_string(path).unwrap().starts_with("//!"))
        .map(|path| path.display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a `//!` opening: {missing:#?}");
}

#[test]
fn no_ignored_tests_panicking_tests_or_debug_macros() {
    let banned = [concat!("#[", "ignore"), concat!("#[", "should_panic"), concat!("dbg", "!(")];
    let mut found = Vec::new();
    for path in sources() {
        let text = std::fs::read_to_string(&path).unwrap();
        for pattern in banned {
            if text.contains(pattern) {
                found.push(format!("{}: {pattern}", path.display()));
            }
        }
    }
    assert!(found.is_empty(), "banned patterns: {found:#?}");
}

#[test]
fn no_mod_rs_files() {
    let found: Vec<PathBuf> = sources().into_iter().filter(|p| p.ends_with("mod.rs")).collect();
    assert!(found.is_empty(), "use foo.rs beside foo/, not foo/mod.rs: {found:#?}");
}

#[test]
fn every_crate_has_an_architecture_section() {
    let architecture = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root().join("crates")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !architecture.contains(&format!("### {name}")) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "crates without a `### name` section in ARCHITECTURE.md: {missing:?}"
    );
}

#[test]
fn every_dependency_comes_from_the_workspace() {
    let mut manifests = Vec::new();
    files(&root().join("crates"), "toml", &mut manifests);
    manifests.push(root().join("xtask/Cargo.toml"));
    let mut loose = Vec::new();
    for manifest in manifests.iter().filter(|p| p.ends_with("Cargo.toml")) {
        let text = std::fs::read_to_string(manifest).unwrap();
        let mut in_dependencies = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_dependencies = line.ends_with("dependencies]");
                continue;
            }
            if in_dependencies
                && !line.is_empty()
                && !line.starts_with('#')
                && !line.contains("workspace = true")
            {
                loose.push(format!("{}: {line}", manifest.display()));
            }
        }
    }
    assert!(loose.is_empty(), "dependencies must use `name.workspace = true`: {loose:#?}");
}

#[test]
fn the_readme_embedding_example_is_the_example_that_compiles() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let example =
        std::fs::read_to_string(root().join("crates/ferry-sim/examples/embed.rs")).unwrap();
    assert!(
        readme.contains(&format!("```rust\n{example}```")),
        "README.md must show crates/ferry-sim/examples/embed.rs as it is"
    );
}

/// A function that no longer fits on a screen is asking to be split.
const FUNCTION_LINES_MAX: usize = 70;

/// Functions longer than [`FUNCTION_LINES_MAX`] lines that stand as they are for now, as
/// `path function`. The list only shrinks: an entry that is short enough now fails the test
/// until it is taken off.
const LONG_FUNCTIONS_ALLOWED: [&str; 16] = [
    "crates/ferry-cli/src/bench/device.rs device_at",
    "crates/ferry-cli/src/bench/device.rs floor",
    "crates/ferry-cli/src/bench/files.rs files",
    "crates/ferry-cli/src/bench/load.rs load",
    "crates/ferry-cli/src/bench/server.rs raw_inserts",
    "crates/ferry-cli/src/quickstart.rs story",
    "crates/ferry-constraint/src/check.rs operand",
    "crates/ferry-constraint/src/syntax.rs lex",
    "crates/ferry-model/src/load.rs actions",
    "crates/ferry-model/src/load.rs attribute",
    "crates/ferry-model/src/load.rs attribute_type",
    "crates/ferry-model/src/version.rs canonical_text",
    "crates/ferry-server/src/upload.rs check_request",
    "crates/ferry-server/src/upload.rs upload",
    "crates/ferry-server/src/upload/batch.rs prefetch",
    "crates/ferry-sim/src/sim.rs quiet_and_check",
];

/// Each function outside tests, as `path function`, with its length in lines (from its `fn`
/// line to the closing brace at the same indentation, as rustfmt writes it).
fn function_lengths() -> Vec<(String, usize)> {
    let root = root();
    let mut lengths = Vec::new();
    for path in sources() {
        let relative = path.strip_prefix(&root).unwrap().display().to_string();
        if relative.contains("/tests/") || relative.ends_with("/tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (start, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            let declared = ["pub(crate) ", "pub(super) ", "pub "]
                .iter()
                .fold(trimmed, |rest, prefix| rest.strip_prefix(prefix).unwrap_or(rest));
            let declared = declared.strip_prefix("const ").unwrap_or(declared);
            let declared = declared.strip_prefix("async ").unwrap_or(declared);
            let Some(name) = declared.strip_prefix("fn ") else { continue };
            if trimmed.ends_with(';') || start > 0 && lines[start - 1].contains("test]") {
                continue;
            }
            let name: String =
                name.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let close = format!("{indent}}}");
            let end = (start..lines.len()).find(|&i| lines[i] == close).unwrap_or(start);
            lengths.push((format!("{relative} {name}"), end - start + 1));
        }
    }
    lengths
}

#[test]
fn functions_fit_on_a_screen() {
    let lengths = function_lengths();
    let long: Vec<String> = lengths
        .iter()
        .filter(|(name, lines)| {
            *lines > FUNCTION_LINES_MAX && !LONG_FUNCTIONS_ALLOWED.contains(&name.as_str())
        })
        .map(|(name, lines)| format!("{name}: {lines} lines"))
        .collect();
    assert!(long.is_empty(), "functions over {FUNCTION_LINES_MAX} lines: {long:#?}");
    let fixed: Vec<&str> = LONG_FUNCTIONS_ALLOWED
        .iter()
        .copied()
        .filter(|allowed| {
            !lengths.iter().any(|(name, lines)| name == allowed && *lines > FUNCTION_LINES_MAX)
        })
        .collect();
    assert!(fixed.is_empty(), "short enough now, take them off the list: {fixed:#?}");
}
