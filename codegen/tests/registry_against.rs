//! `--against REF`: the registry compared with itself at a git ref, in a
//! throw-away git repository.
#![allow(clippy::unwrap_used)]

mod registry_support;

use std::path::Path;
use std::process::Command;

use registry_support::{event, registry, rules};
use serde_json::json;
use tidings_codegen::registry::{self, Against, GitError, Report, Source};

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
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
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(dir: &Path, source: &Source) {
    let schemas = dir.join("schemas");
    let _ = std::fs::remove_dir_all(&schemas);
    for (p, text) in &source.files {
        let path = schemas.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// A repo whose first commit holds `base`, with `head` in the work tree.
fn repo(base: &Source, head: &Source) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    write(dir.path(), base);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "base"]);
    write(dir.path(), head);
    dir
}

fn against(dir: &Path, rev: &str) -> Report {
    let schemas = dir.join("schemas");
    let now = Source::from_dir(&schemas).unwrap();
    let base = Source::from_git(&schemas, rev).unwrap();
    registry::check(
        &now,
        Some(Against {
            name: rev,
            source: &base,
        }),
    )
}

fn relock(s: &mut Source) {
    let lock = registry::updated_lock(s, None).unwrap().to_text();
    s.files.insert("registry.lock".into(), lock);
}

#[test]
fn reads_the_tree_at_a_ref() {
    let base = registry(&[(
        "auth/user.created.v1.json",
        event("auth.user.created", 1, json!({})),
    )]);
    let dir = repo(&base, &base);
    let read = Source::from_git(&dir.path().join("schemas"), "main").unwrap();
    assert_eq!(read, base);
    // From a subdirectory path too, and HEAD works.
    assert_eq!(
        Source::from_git(&dir.path().join("schemas"), "HEAD").unwrap(),
        base
    );
}

#[test]
fn bad_ref_is_an_error_naming_the_ref() {
    let base = registry(&[]);
    let dir = repo(&base, &base);
    match Source::from_git(&dir.path().join("schemas"), "no-such-branch") {
        Err(e @ GitError::BadRef(..)) => assert!(e.to_string().contains("no-such-branch"), "{e}"),
        other => panic!("{other:?}"),
    }
    let plain = tempfile::tempdir().unwrap();
    assert!(matches!(
        Source::from_git(plain.path(), "main"),
        Err(GitError::NotARepo(..))
    ));
}

#[test]
fn unchanged_registry_is_clean() {
    let base = registry(&[(
        "auth/user.created.v1.json",
        event("auth.user.created", 1, json!({})),
    )]);
    let dir = repo(&base, &base);
    assert!(rules(&against(dir.path(), "main")).is_empty());
}

#[test]
fn brand_new_event_type_passes() {
    let base = registry(&[(
        "auth/user.created.v1.json",
        event("auth.user.created", 1, json!({})),
    )]);
    let mut head = base.clone();
    head.files.insert(
        "catalog/product.created.v1.json".into(),
        event("catalog.product.created", 1, json!({})).to_string(),
    );
    relock(&mut head);
    let dir = repo(&base, &head);
    let r = against(dir.path(), "main");
    assert!(rules(&r).is_empty(), "{:?}", r.findings);
}

#[test]
fn edited_published_version_is_flagged_even_with_a_rewritten_lock() {
    let base = registry(&[(
        "auth/user.created.v1.json",
        event("auth.user.created", 1, json!({})),
    )]);
    let mut head = base.clone();
    head.files.insert(
        "auth/user.created.v1.json".into(),
        serde_json::to_string_pretty(&event(
            "auth.user.created",
            1,
            json!({"age": {"type": "integer"}}),
        ))
        .unwrap(),
    );
    // Someone hand-edits the lock to match: --against still catches it.
    let mut lock = registry::Lock::parse(head.get("registry.lock").unwrap()).unwrap();
    lock.events[0].sha256 = registry::lock::fingerprint(
        &serde_json::from_str(head.get("auth/user.created.v1.json").unwrap()).unwrap(),
    );
    head.files.insert("registry.lock".into(), lock.to_text());
    let dir = repo(&base, &head);
    let r = against(dir.path(), "main");
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "against/edited")
        .unwrap();
    assert_eq!(f.pointer, "/properties/age");
    assert!(f.line > 1);
}

#[test]
fn deleted_published_version_is_flagged_unless_deprecated() {
    let base = registry(&[
        (
            "auth/user.created.v1.json",
            event("auth.user.created", 1, json!({})),
        ),
        (
            "auth/user.created.v2.json",
            event("auth.user.created", 2, json!({})),
        ),
    ]);
    let mut head = base.clone();
    head.files.remove("auth/user.created.v1.json");
    let dir = repo(&base, &head);
    assert!(rules(&against(dir.path(), "main")).contains(&"against/deleted".to_string()));

    let mut v1 = event("auth.user.created", 1, json!({}));
    v1["x-deprecated"] = json!(true);
    let mut base = registry(&[
        ("auth/user.created.v1.json", v1),
        (
            "auth/user.created.v2.json",
            event("auth.user.created", 2, json!({})),
        ),
    ]);
    relock(&mut base);
    let mut head = base.clone();
    head.files.remove("auth/user.created.v1.json");
    relock(&mut head);
    let dir = repo(&base, &head);
    let r = against(dir.path(), "main");
    assert!(rules(&r).is_empty(), "{:?}", r.findings);
}

#[test]
fn added_incompatible_version_is_judged_against_the_base() {
    let base = registry(&[(
        "auth/user.created.v1.json",
        event("auth.user.created", 1, json!({})),
    )]);
    let mut head = base.clone();
    let mut v2 = event("auth.user.created", 2, json!({}));
    v2["required"] = json!(["user_id", "name"]);
    head.files
        .insert("auth/user.created.v2.json".into(), v2.to_string());
    relock(&mut head);
    let dir = repo(&base, &head);
    let r = against(dir.path(), "main");
    let f = r
        .findings
        .iter()
        .find(|f| f.rule.starts_with("compat/"))
        .unwrap_or_else(|| panic!("{:?}", r.findings));
    assert_eq!(f.file, "auth/user.created.v2.json");
    let c = f.compat.as_ref().unwrap();
    assert_eq!((c.old_version, c.new_version), (1, 2));
    assert_eq!(c.breaks, "readers");
}

#[test]
fn shared_edit_that_changes_published_meaning_is_judged() {
    let base = registry(&[(
        "auth/user.created.v1.json",
        event("auth.user.created", 1, json!({})),
    )]);
    let mut head = base.clone();
    head.files.insert(
        "common/ids.json".into(),
        json!({"$defs": {"UserId": {"type": "integer"}}}).to_string(),
    );
    relock(&mut head);
    let dir = repo(&base, &head);
    let r = against(dir.path(), "main");
    let f = r
        .findings
        .iter()
        .find(|f| f.rule.starts_with("against/shared-"))
        .unwrap_or_else(|| panic!("{:?}", r.findings));
    assert_eq!(f.file, "auth/user.created.v1.json");
    assert_eq!(f.pointer, "/properties/user_id/$ref");
    assert!(
        f.message.contains("common/ids.json#/$defs/UserId"),
        "{}",
        f.message
    );
}

#[test]
fn a_rebuilt_lock_is_caught() {
    let base = registry(&[(
        "auth/user.created.v1.json",
        event("auth.user.created", 1, json!({})),
    )]);
    let mut head = base.clone();
    // Edit v1, delete the lock and rebuild it from the edited files.
    head.files.insert(
        "auth/user.created.v1.json".into(),
        event("auth.user.created", 1, json!({"age": {"type": "integer"}})).to_string(),
    );
    head.files.remove("registry.lock");
    relock(&mut head);
    let dir = repo(&base, &head);
    let r = against(dir.path(), "main");
    let found = rules(&r);
    assert!(
        found.contains(&"against/lock-rewritten".to_string()),
        "{found:?}"
    );
    assert!(found.contains(&"against/edited".to_string()), "{found:?}");
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "against/lock-rewritten")
        .unwrap();
    assert_eq!(
        (f.file.as_str(), f.pointer.as_str()),
        ("registry.lock", "/events/0")
    );
    assert!(f.line > 1);
}
