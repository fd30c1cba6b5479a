//! `tidings check` and `tidings new` as CI runs them: exit codes and output.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tidings(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn repo_schemas() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A temp dir holding a copy of the repository's registry at `schemas/`.
fn copy_of_registry() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_schemas(), &dir.path().join("schemas"));
    dir
}

/// Adds auth.user.created v3 that makes `locale` required.
fn add_breaking_v3(schemas: &Path) {
    let v2 = std::fs::read_to_string(schemas.join("auth/user.created.v2.json")).unwrap();
    let mut v3: serde_json::Value = serde_json::from_str(&v2).unwrap();
    v3["x-schema-version"] = 3.into();
    v3["$id"] = "https://schemas.tidings.dev/auth/user.created.v3.json".into();
    v3["required"].as_array_mut().unwrap().push("locale".into());
    v3["examples"] = serde_json::json!([v3["examples"][0].clone()]);
    std::fs::write(
        schemas.join("auth/user.created.v3.json"),
        serde_json::to_string_pretty(&v3).unwrap(),
    )
    .unwrap();
}

#[test]
fn the_repository_registry_is_clean() {
    let o = tidings(
        &["check", "--schemas", repo_schemas().to_str().unwrap()],
        Path::new("."),
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("0 errors"), "{}", stdout(&o));
}

#[test]
fn incompatible_version_exits_1_with_file_line_rule_and_help() {
    let dir = copy_of_registry();
    add_breaking_v3(&dir.path().join("schemas"));
    let o = tidings(&["check", "--update-lock"], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.contains("compat/required_property_added"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.starts_with("schemas/auth/user.created.v3.json:"),
        "{line}"
    );
    assert!(out.contains("  help: "), "{out}");
    assert!(out.contains("example: v1 accepts, v3 rejects"), "{out}");

    let o = tidings(&["check", "--format", "json"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["ok"], false);
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "compat/required_property_added")
        .unwrap();
    assert_eq!(f["compat"]["breaks"], "readers");
    assert_eq!(f["path"], "schemas/auth/user.created.v3.json");

    let o = tidings(&["check", "--format", "github"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).lines().any(|l| l
            .starts_with("::error file=schemas/auth/user.created.v3.json,line=")
            && l.contains("title=compat/required_property_added::")),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_work_queue_stream_with_two_groups_on_a_type_names_them_where_and_the_fix() {
    let dir = copy_of_registry();
    let config = dir.path().join("schemas/tidings.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replacen(
        "subjects = [\"auth.>\"]",
        "subjects = [\"auth.>\"]\nretention = \"workqueue\"",
        1,
    );
    std::fs::write(&config, &text).unwrap();
    let group_line = text
        .lines()
        .position(|l| l.starts_with("tour-analytics ="))
        .unwrap()
        + 1;
    let o = tidings(&["check"], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let found: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("config/workqueue-shared"))
        .collect();
    // analytics, tour-analytics and tour-billing all handle auth.user.created.
    assert_eq!(found.len(), 2, "{out}");
    assert!(
        found[0].starts_with(&format!("schemas/tidings.toml:{group_line}:")),
        "{out}"
    );
    assert!(
        found[0].contains("groups analytics (service analytics) and tour-analytics (service tour) both handle auth.user.created"),
        "{out}"
    );
    assert!(
        out.contains("set retention = \"interest\" in [streams.AUTH_EVENTS]"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("config/workqueue-reader") && l.contains("reader dashboard")),
        "{out}"
    );
}

#[test]
fn usage_and_io_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = tidings(&["check", "--schemas", "nope"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nope"), "{}", stderr(&o));
    let o = tidings(&["check", "--format", "xml"], dir.path());
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn bad_git_ref_exits_2_and_says_so() {
    let dir = copy_of_registry();
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "base"]);
    let o = tidings(&["check", "--against", "origin/nope"], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("unknown git ref \"origin/nope\""),
        "{}",
        stderr(&o)
    );
}

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
}

#[test]
fn against_a_ref_flags_edited_published_versions() {
    let dir = copy_of_registry();
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "base"]);
    let o = tidings(&["check", "--against", "HEAD"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // Edit a published version, then try to launder it through the lock.
    let p = dir.path().join("schemas/catalog/product.created.v1.json");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("\"maxLength\": 200", "\"maxLength\": 100");
    std::fs::write(&p, text).unwrap();
    let o = tidings(&["check", "--against", "HEAD", "--update-lock"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("against/edited"), "{out}");
    assert!(out.contains("lock/edited-published"), "{out}");
}

#[test]
fn new_scaffolds_the_next_version_and_refuses_bad_types() {
    let dir = copy_of_registry();
    let o = tidings(&["new", "auth.user.created"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v3 = dir.path().join("schemas/auth/user.created.v3.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(v3).unwrap()).unwrap();
    assert_eq!(v["x-schema-version"], 3);
    let o = tidings(&["check", "--update-lock"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));

    let o = tidings(&["new", "ai_agent.plan.drafted"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(dir
        .path()
        .join("schemas/ai_agent/plan.drafted.v1.json")
        .is_file());

    let o = tidings(&["new", "Auth.User"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("service.entity.action"),
        "{}",
        stderr(&o)
    );
}

/// Issue 12 item 1: a draft with errors is not locked, so fixing it is not
/// an edit of a published version, here or against the base branch.
#[test]
fn update_lock_leaves_broken_drafts_unlocked_so_they_can_be_fixed() {
    let dir = copy_of_registry();
    let schemas = dir.path().join("schemas");
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "base"]);
    let o = tidings(&["new", "catalog.product.updated"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let new_out = stdout(&o);
    let v3_path = schemas.join("catalog/product.updated.v3.json");
    let draft = std::fs::read_to_string(&v3_path).unwrap();
    let mut v3: serde_json::Value = serde_json::from_str(&draft).unwrap();
    v3["properties"]["barcode"] = serde_json::json!({"type": "string"});
    v3["required"]
        .as_array_mut()
        .unwrap()
        .push("barcode".into());
    std::fs::write(&v3_path, serde_json::to_string_pretty(&v3).unwrap()).unwrap();

    let o = tidings(&["check", "--update-lock"], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let lock = std::fs::read_to_string(schemas.join("registry.lock")).unwrap();
    assert!(
        !lock.contains("product.updated.v3.json"),
        "the lock records the broken draft:\n{lock}"
    );
    assert!(stdout(&o).contains("lock/unlocked"), "{}", stdout(&o));
    // The broken draft is committed on the base branch, still unlocked.
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "draft v3"]);

    // Fix the draft: the new property is optional.
    v3["required"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r != "barcode");
    std::fs::write(&v3_path, serde_json::to_string_pretty(&v3).unwrap()).unwrap();
    let o = tidings(&["check", "--against", "HEAD", "--update-lock"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(!out.contains("lock/edited-published"), "{out}");
    assert!(!out.contains("against/edited"), "{out}");
    let lock = std::fs::read_to_string(schemas.join("registry.lock")).unwrap();
    assert!(lock.contains("product.updated.v3.json"), "{lock}");
    let o = tidings(&["check"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));

    // Once locked, v3 is published: editing it is an error again.
    let edited = std::fs::read_to_string(&v3_path)
        .unwrap()
        .replace("\"barcode\": {", "\"barcode\": {\n      \"maxLength\": 20,");
    std::fs::write(&v3_path, edited).unwrap();
    let o = tidings(&["check"], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("lock/edited-published"),
        "{}",
        stdout(&o)
    );
    // `tidings new` says so.
    assert!(new_out.contains("draft"), "{new_out}");
}
