//! The lock of published versions: immutability, deprecation, tombstones.
#![allow(clippy::unwrap_used)]

mod registry_support;

use registry_support::{check, event, registry, rules, unlocked};
use serde_json::json;
use tidings_codegen::registry::{lock::fingerprint, updated_lock, Lock};

#[test]
fn missing_lock_and_unlocked_versions() {
    let s = unlocked(&[(
        "auth/user.created.v1.json",
        event("auth.user.created", 1, json!({})),
    )]);
    assert_eq!(rules(&check(&s)), vec!["lock/missing"]);
    let mut s = registry(&[(
        "auth/user.created.v1.json",
        event("auth.user.created", 1, json!({})),
    )]);
    s.files.insert(
        "auth/user.created.v2.json".into(),
        event("auth.user.created", 2, json!({})).to_string(),
    );
    assert_eq!(rules(&check(&s)), vec!["lock/unlocked"]);
    let lock = updated_lock(&s, None).unwrap();
    assert!(lock.find("auth.user.created", 2).is_some());
}

#[test]
fn reformatting_is_not_an_edit() {
    let mut s = registry(&[(
        "auth/user.created.v1.json",
        event("auth.user.created", 1, json!({})),
    )]);
    let compact = event("auth.user.created", 1, json!({})).to_string();
    s.files.insert("auth/user.created.v1.json".into(), compact);
    assert!(rules(&check(&s)).is_empty());
}

#[test]
fn editing_a_published_version_fails_and_update_lock_does_not_hide_it() {
    let mut s = registry(&[(
        "auth/user.created.v1.json",
        event("auth.user.created", 1, json!({})),
    )]);
    s.files.insert(
        "auth/user.created.v1.json".into(),
        event("auth.user.created", 1, json!({"age": {"type": "integer"}})).to_string(),
    );
    assert_eq!(rules(&check(&s)), vec!["lock/edited-published"]);
    let lock = updated_lock(&s, None).unwrap().to_text();
    s.files.insert("registry.lock".into(), lock);
    assert_eq!(rules(&check(&s)), vec!["lock/edited-published"]);
}

#[test]
fn deleting_a_published_version_fails() {
    let mut s = registry(&[(
        "auth/user.created.v1.json",
        event("auth.user.created", 1, json!({})),
    )]);
    s.files.remove("auth/user.created.v1.json");
    let r = check(&s);
    assert_eq!(rules(&r), vec!["lock/deleted-published"]);
    assert!(
        r.findings[0].help.contains("deprecate"),
        "{}",
        r.findings[0].help
    );
}

#[test]
fn deprecation_procedure() {
    let mut s = registry(&[
        (
            "auth/user.created.v1.json",
            event("auth.user.created", 1, json!({})),
        ),
        (
            "auth/user.created.v2.json",
            event("auth.user.created", 2, json!({})),
        ),
    ]);
    // 1. Mark deprecated: not an edit, but the lock must record it.
    let mut v1 = event("auth.user.created", 1, json!({}));
    v1["x-deprecated"] = json!(true);
    v1["x-deprecated-reason"] = json!("superseded by v2");
    s.files
        .insert("auth/user.created.v1.json".into(), v1.to_string());
    assert_eq!(rules(&check(&s)), vec!["lock/outdated"]);
    s.files.insert(
        "registry.lock".into(),
        updated_lock(&s, None).unwrap().to_text(),
    );
    assert!(rules(&check(&s)).is_empty());
    let lock = Lock::parse(s.get("registry.lock").unwrap()).unwrap();
    assert!(lock.find("auth.user.created", 1).unwrap().deprecated);
    // 2. Delete it: the lock keeps a tombstone, and v2 without v1 is no gap.
    s.files.remove("auth/user.created.v1.json");
    assert_eq!(rules(&check(&s)), vec!["lock/outdated"]);
    s.files.insert(
        "registry.lock".into(),
        updated_lock(&s, None).unwrap().to_text(),
    );
    assert!(rules(&check(&s)).is_empty(), "{:?}", check(&s).findings);
    assert!(
        Lock::parse(s.get("registry.lock").unwrap())
            .unwrap()
            .find("auth.user.created", 1)
            .unwrap()
            .removed
    );
    // 3. The number is never reused.
    s.files.insert(
        "auth/user.created.v1.json".into(),
        event("auth.user.created", 1, json!({})).to_string(),
    );
    assert!(rules(&check(&s)).contains(&"lock/reused-version".to_string()));
}

#[test]
fn deprecation_cannot_be_undone() {
    let mut v1 = event("auth.user.created", 1, json!({}));
    v1["x-deprecated"] = json!(true);
    let mut s = registry(&[("auth/user.created.v1.json", v1)]);
    s.files.insert(
        "auth/user.created.v1.json".into(),
        event("auth.user.created", 1, json!({})).to_string(),
    );
    assert_eq!(rules(&check(&s)), vec!["lock/undeprecated"]);
}

#[test]
fn shared_file_edits_are_caught_once() {
    let mut s = registry(&[
        (
            "auth/user.created.v1.json",
            event("auth.user.created", 1, json!({})),
        ),
        (
            "auth/user.updated.v1.json",
            event("auth.user.updated", 1, json!({})),
        ),
    ]);
    s.files.insert(
        "common/ids.json".into(),
        json!({"$defs": {"UserId": {"type": "string"}}}).to_string(),
    );
    assert_eq!(rules(&check(&s)), vec!["lock/shared-changed"]);
    s.files.insert(
        "registry.lock".into(),
        updated_lock(&s, None).unwrap().to_text(),
    );
    assert!(rules(&check(&s)).is_empty());
}

#[test]
fn fingerprints_are_stable() {
    let a = json!({"b": [1, 2], "a": {"y": true, "x": null}});
    let b: serde_json::Value =
        serde_json::from_str("{ \"a\": {\"x\": null, \"y\": true}, \"b\": [1,2] }").unwrap();
    assert_eq!(fingerprint(&a), fingerprint(&b));
    assert_eq!(fingerprint(&a).len(), 64);
}

#[test]
fn invalid_lock() {
    let mut s = registry(&[]);
    s.files.insert(
        "registry.lock".into(),
        "{\"lock_version\": 1,\n \"events\": 3}".into(),
    );
    let r = check(&s);
    assert_eq!(rules(&r), vec!["lock/invalid"]);
}

#[test]
fn update_lock_refuses_to_rebuild_an_invalid_lock() {
    let mut s = registry(&[(
        "auth/user.created.v1.json",
        event("auth.user.created", 1, json!({})),
    )]);
    s.files.insert("registry.lock".into(), "not json".into());
    let err = updated_lock(&s, None).unwrap_err();
    assert!(err.to_string().contains("restore it"), "{err}");
}

#[test]
fn broken_refs_in_unused_shared_files_are_reported() {
    let mut s = registry(&[]);
    s.files.insert(
        "common/extra.json".into(),
        json!({"$defs": {"A": {"$ref": "nope.json#/$defs/B"}}}).to_string(),
    );
    s.files.insert(
        "registry.lock".into(),
        updated_lock(&s, None).unwrap().to_text(),
    );
    let r = check(&s);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "ref/unresolvable")
        .unwrap();
    assert_eq!(f.file, "common/extra.json");
    assert_eq!(f.pointer, "/$defs/A/$ref");
}
