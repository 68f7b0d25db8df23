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
