//! `tidings generate` end to end on the repository's registry.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn schemas() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

fn run(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn writes_checks_and_detects_stale_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
    let schemas = std::fs::canonicalize(schemas()).unwrap();
    let schemas = schemas.to_str().unwrap();

    // Missing file: --check fails and writes nothing.
    let o = run(
        &["generate", "--out", "src", "--schemas", schemas, "--check"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!dir.path().join("src/events.rs").exists());

    let o = run(
        &["generate", "--out", "src", "--schemas", schemas],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let code = std::fs::read_to_string(dir.path().join("src/events.rs")).unwrap();
    assert!(code.starts_with("// @generated"));
    assert!(code.contains("pub type UserCreated = UserCreatedV2;"));
    // Schema paths are relative to the crate that owns --out.
    let rel = pathdiff(dir.path(), Path::new(schemas));
    assert!(
        code.contains(&format!("schema = \"{rel}/auth/user.created.v1.json\"")),
        "{rel}"
    );

    let o = run(
        &["generate", "--out", "src", "--schemas", schemas, "--check"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    std::fs::write(dir.path().join("src/events.rs"), "// stale\n").unwrap();
    let o = run(
        &["generate", "--out", "src", "--schemas", schemas, "--check"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("out of date"));
}

#[test]
fn registry_problems_exit_1_with_file_and_pointer() {
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().join("schemas");
    std::fs::create_dir_all(reg.join("auth")).unwrap();
    std::fs::write(
        reg.join("tidings.toml"),
        "[streams.AUTH_EVENTS]\nsubjects = [\"auth.>\"]\n",
    )
    .unwrap();
    std::fs::write(
        reg.join("auth/user.created.v1.json"),
        r#"{"$schema": "https://json-schema.org/draft/2020-12/schema", "description": "x",
            "x-event-type": "auth.user.created", "x-schema-version": 1, "x-stream": "AUTH_EVENTS",
            "type": "object", "properties": {"a": {"type": "string", "pattern": "(?<"}}}"#,
    )
    .unwrap();
    let o = run(
        &[
            "generate",
            "--out",
            "out",
            "--schemas",
            "schemas",
            "--manifest-dir",
            ".",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("schemas/auth/user.created.v1.json:3 at /properties/a/pattern"),
        "{}",
        text(&o)
    );
    assert!(!dir.path().join("out/events.rs").exists());
}

#[test]
fn missing_registry_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        &["generate", "--out", "out", "--schemas", "nope"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// `to` relative to `from` (both absolute).
fn pathdiff(from: &Path, to: &Path) -> String {
    let from = std::fs::canonicalize(from).unwrap();
    let f: Vec<_> = from.components().collect();
    let t: Vec<_> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts = vec!["..".to_string(); f.len() - common];
    parts.extend(
        t[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().to_string()),
    );
    parts.join("/")
}
