//! `tidings new`: next versions and first versions.
#![allow(clippy::unwrap_used)]

mod registry_support;

use registry_support::{check, event, registry, rules};
use serde_json::{json, Value};
use tidings_codegen::registry::{scaffold, updated_lock, ScaffoldError};

#[test]
fn next_version_copies_the_latest() {
    let mut s = registry(&[(
        "auth/user.created.v1.json",
        event("auth.user.created", 1, json!({})),
    )]);
    let new = scaffold(&s, "auth.user.created").unwrap();
    assert_eq!(new.path, "auth/user.created.v2.json");
    assert_eq!(new.version, 2);
    assert_eq!(
        new.copied_from.as_deref(),
        Some("auth/user.created.v1.json")
    );
    let v: Value = serde_json::from_str(&new.text).unwrap();
    assert_eq!(v["x-schema-version"], 2);
    // The scaffold passes the check once locked.
    s.files.insert(new.path.clone(), new.text);
    s.files.insert(
        "registry.lock".into(),
        updated_lock(&s, None).unwrap().to_text(),
    );
    assert!(rules(&check(&s)).is_empty(), "{:?}", check(&s).findings);
}

#[test]
fn keeps_layout_and_bumps_id() {
    let mut s = registry(&[]);
    s.files.insert(
        "auth/user.created.v1.json".into(),
        "{\n  \"$id\": \"https://s.example/auth/user.created.v1.json\",\n  \"x-schema-version\": 1,\n  \"x-event-type\": \"auth.user.created\"\n}\n".into(),
    );
    let new = scaffold(&s, "auth.user.created").unwrap();
    assert_eq!(new.text, "{\n  \"$id\": \"https://s.example/auth/user.created.v2.json\",\n  \"x-schema-version\": 2,\n  \"x-event-type\": \"auth.user.created\"\n}\n");
}

#[test]
fn first_version_template_passes_the_check() {
    let mut s = registry(&[]);
    let new = scaffold(&s, "catalog.product.created").unwrap();
    assert_eq!(new.path, "catalog/product.created.v1.json");
    let v: Value = serde_json::from_str(&new.text).unwrap();
    assert_eq!(v["x-stream"], "CATALOG_EVENTS");
    s.files.insert(new.path, new.text);
    s.files.insert(
        "registry.lock".into(),
        updated_lock(&s, None).unwrap().to_text(),
    );
    assert!(rules(&check(&s)).is_empty(), "{:?}", check(&s).findings);
}

#[test]
fn refuses_invalid_event_types() {
    let s = registry(&[]);
    for bad in [
        "auth.user",
        "Auth.user.created",
        "auth.user.created.x",
        "auth.us er.created",
    ] {
        match scaffold(&s, bad) {
            Err(ScaffoldError::InvalidEventType(e)) => {
                assert!(e.to_string().contains("service.entity.action"), "{e}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
}
