//! `x-entity-key` in the registry contract: linted, compared between
//! versions, recorded in the lock (gained once, never changed).
#![allow(clippy::unwrap_used)]

mod registry_support;

use registry_support::{check, event, registry, rules};
use serde_json::{json, Value};
use tidings_codegen::registry::updated_lock;

const V1: &str = "auth/user.created.v1.json";
const V2: &str = "auth/user.created.v2.json";

/// `auth.user.created` version `v` (`user_id` and `name` required), keyed
/// by `key`.
fn keyed(v: u32, key: Option<&str>) -> Value {
    let mut e = event("auth.user.created", v, json!({}));
    e["required"] = json!(["user_id", "name"]);
    if let Some(k) = key {
        e["x-entity-key"] = json!(k);
    }
    e
}

fn finding<'a>(
    report: &'a tidings_codegen::registry::Report,
    rule: &str,
) -> &'a tidings_codegen::registry::Finding {
    report
        .findings
        .iter()
        .find(|f| f.rule == rule)
        .unwrap_or_else(|| panic!("no {rule} in {:#?}", report.findings))
}

#[test]
fn a_key_names_a_required_string_like_property() {
    // `user_id` is a $ref to a uuid string in common/ids.json: fine.
    assert!(rules(&check(&registry(&[(V1, keyed(1, Some("user_id")))]))).is_empty());
    for (key, says) in [
        ("nope", "is not a property"),
        ("note", "optional"),
        ("tags", "not a string"),
    ] {
        let mut e = keyed(1, Some(key));
        e["properties"]["tags"] = json!({"type": "array", "items": {"type": "string"}});
        e["properties"]["note"] = json!({"type": "string"});
        e["required"] = json!(["user_id", "tags"]);
        let report = check(&registry(&[(V1, e)]));
        let f = finding(&report, "schema/entity-key");
        assert_eq!((f.file.as_str(), f.pointer.as_str()), (V1, "/x-entity-key"));
        assert!(f.line > 1, "{f:?}");
        assert!(f.message.contains(says), "{key}: {}", f.message);
    }
}

#[test]
fn versions_of_a_type_share_one_key() {
    for (old, new) in [
        (Some("user_id"), Some("name")),
        (Some("user_id"), None),
        (None, Some("user_id")),
    ] {
        let (v1, v2) = (keyed(1, old), keyed(2, new));
        let report = check(&registry(&[(V1, v1), (V2, v2)]));
        assert_eq!(
            rules(&report),
            vec!["compat/entity-key-changed"],
            "{old:?} -> {new:?}"
        );
        assert_eq!(finding(&report, "compat/entity-key-changed").file, V2);
    }
    let same = check(&registry(&[
        (V1, keyed(1, Some("user_id"))),
        (V2, keyed(2, Some("user_id"))),
    ]));
    assert!(rules(&same).is_empty(), "{:#?}", same.findings);
}

#[test]
fn a_published_version_gains_a_key_once_and_never_changes_it() {
    let mut s = registry(&[(V1, keyed(1, None))]);
    // Gaining a key is not an edit; the lock must record it.
    s.files
        .insert(V1.into(), keyed(1, Some("user_id")).to_string());
    assert_eq!(rules(&check(&s)), vec!["lock/outdated"]);
    let lock = updated_lock(&s, None).unwrap();
    assert_eq!(
        lock.find("auth.user.created", 1)
            .unwrap()
            .entity_key
            .as_deref(),
        Some("user_id")
    );
    s.files.insert("registry.lock".into(), lock.to_text());
    assert!(rules(&check(&s)).is_empty());

    // Changing or dropping it afterwards is refused, and --update-lock
    // does not launder it.
    for edited in [keyed(1, Some("name")), keyed(1, None)] {
        let mut s = s.clone();
        s.files.insert(V1.into(), edited.to_string());
        assert_eq!(rules(&check(&s)), vec!["lock/entity-key-changed"]);
        let lock = updated_lock(&s, None).unwrap().to_text();
        s.files.insert("registry.lock".into(), lock);
        assert_eq!(rules(&check(&s)), vec!["lock/entity-key-changed"]);
    }
}
