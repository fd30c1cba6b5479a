//! One test (or more) per lint rule of `tidings check`.
#![allow(clippy::unwrap_used)]

mod registry_support;

use registry_support::{check, event, registry, rules};
use serde_json::json;

#[test]
fn a_clean_registry_has_no_findings() {
    let s = registry(&[
        (
            "auth/user.created.v1.json",
            event("auth.user.created", 1, json!({})),
        ),
        (
            "auth/user.created.v2.json",
            event(
                "auth.user.created",
                2,
                json!({"locale": {"type": "string"}}),
            ),
        ),
    ]);
    let r = check(&s);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.summary.event_types, 1);
    assert_eq!(r.summary.versions, 2);
}

#[test]
fn invalid_json_has_line() {
    let mut s = registry(&[]);
    s.files.insert(
        "auth/user.created.v1.json".into(),
        "{\n  \"a\": 1,\n  \"b\" 2\n}".into(),
    );
    let r = check(&s);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "json/invalid")
        .unwrap();
    assert_eq!(f.line, 3);
    assert!(f.help.contains("line 3"), "{}", f.help);
}

#[test]
fn metaschema_violation_points_at_the_keyword() {
    let mut e = event("auth.user.created", 1, json!({"age": {"type": "integr"}}));
    e["examples"] = json!([]);
    let s = registry(&[("auth/user.created.v1.json", e)]);
    let r = check(&s);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "schema/metaschema")
        .unwrap();
    assert!(
        f.pointer.starts_with("/properties/age/type"),
        "{}",
        f.pointer
    );
    assert!(f.line > 1);
}

#[test]
fn unsupported_draft_is_refused() {
    let mut e = event("auth.user.created", 1, json!({}));
    e["$schema"] = json!("http://json-schema.org/draft-04/schema#");
    let r = check(&registry(&[("auth/user.created.v1.json", e)]));
    assert!(
        rules(&r).contains(&"schema/draft".to_string()),
        "{:?}",
        rules(&r)
    );
}

#[test]
fn draft07_is_accepted() {
    let mut e = event("auth.user.created", 1, json!({}));
    e["$schema"] = json!("http://json-schema.org/draft-07/schema#");
    let r = check(&registry(&[("auth/user.created.v1.json", e)]));
    assert!(rules(&r).is_empty(), "{:?}", r.findings);
}

#[test]
fn event_type_token_rules() {
    for bad in [
        "auth.User.created",
        "auth.user",
        "auth.user-x.created",
        "auth.user.created.now",
        "9auth.user.created",
    ] {
        let mut e = event("auth.user.created", 1, json!({}));
        e["x-event-type"] = json!(bad);
        let r = check(&registry(&[("auth/user.created.v1.json", e)]));
        let f = r
            .findings
            .iter()
            .find(|f| f.rule == "schema/event-type")
            .unwrap_or_else(|| panic!("{bad}: {:?}", r.findings));
        assert_eq!(f.pointer, "/x-event-type");
    }
    let mut e = event("auth.user.created", 1, json!({}));
    e.as_object_mut().unwrap().remove("x-event-type");
    assert!(
        rules(&check(&registry(&[("auth/user.created.v1.json", e)])))
            .contains(&"schema/event-type".to_string())
    );
}

#[test]
fn underscores_are_legal_tokens() {
    let mut s = registry(&[]);
    s.files.insert(
        "tidings.toml".into(),
        format!(
            "{}\n[streams.AI_AGENT_EVENTS]\nsubjects = [\"ai_agent.>\"]\n",
            registry_support::CONFIG
        ),
    );
    s.files.insert(
        "ai_agent/recommendation.zone_changed.v1.json".into(),
        event("ai_agent.recommendation.zone_changed", 1, json!({})).to_string(),
    );
    s.files.insert(
        "registry.lock".into(),
        tidings_codegen::registry::updated_lock(&s, None)
            .unwrap()
            .to_text(),
    );
    let r = check(&s);
    assert!(rules(&r).is_empty(), "{:?}", r.findings);
}

#[test]
fn file_name_must_match_type_and_version() {
    let s = registry(&[(
        "auth/user.created.v1.json",
        event("auth.user.created", 2, json!({})),
    )]);
    let r = check(&s);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "schema/file-name")
        .unwrap();
    assert!(
        f.message.contains("auth/user.created.v2.json"),
        "{}",
        f.message
    );
    let s = registry(&[(
        "auth/user.deleted.v1.json",
        event("auth.user.created", 1, json!({})),
    )]);
    assert!(rules(&check(&s)).contains(&"schema/file-name".to_string()));
}

#[test]
fn version_gaps_and_duplicates() {
    let s = registry(&[
        (
            "auth/user.created.v1.json",
            event("auth.user.created", 1, json!({})),
        ),
        (
            "auth/user.created.v3.json",
            event("auth.user.created", 3, json!({})),
        ),
    ]);
    let r = check(&s);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "registry/version-gap")
        .unwrap();
    assert!(f.message.contains("v2 is missing"), "{}", f.message);
    assert_eq!(f.file, "auth/user.created.v3.json");

    let mut dup = event("auth.user.created", 1, json!({}));
    dup["description"] = json!("a copy");
    let s = registry(&[
        (
            "auth/user.created.v1.json",
            event("auth.user.created", 1, json!({})),
        ),
        ("auth/user.created.copy.json", dup),
    ]);
    assert!(rules(&check(&s)).contains(&"registry/version-duplicate".to_string()));
}

#[test]
fn unresolvable_ref() {
    let s = registry(&[(
        "auth/user.created.v1.json",
        event(
            "auth.user.created",
            1,
            json!({"x": {"$ref": "../common/nope.json#/$defs/X"}}),
        ),
    )]);
    let r = check(&s);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "ref/unresolvable")
        .unwrap();
    assert_eq!(f.pointer, "/properties/x/$ref");
    assert!(f.line > 1);
    let s = registry(&[(
        "auth/user.created.v1.json",
        event(
            "auth.user.created",
            1,
            json!({"x": {"$ref": "../common/ids.json#/$defs/Nope"}}),
        ),
    )]);
    assert!(rules(&check(&s)).contains(&"ref/unresolvable".to_string()));
}

#[test]
fn cyclic_ref() {
    let mut s = registry(&[(
        "auth/user.created.v1.json",
        event(
            "auth.user.created",
            1,
            json!({"x": {"$ref": "../common/a.json#/$defs/A"}}),
        ),
    )]);
    s.files.insert(
        "common/a.json".into(),
        json!({"$defs": {"A": {"$ref": "b.json#/$defs/B"}}}).to_string(),
    );
    s.files.insert(
        "common/b.json".into(),
        json!({"$defs": {"B": {"$ref": "a.json#/$defs/A"}}}).to_string(),
    );
    s.files.insert(
        "registry.lock".into(),
        tidings_codegen::registry::updated_lock(&s, None)
            .unwrap()
            .to_text(),
    );
    assert!(
        rules(&check(&s)).contains(&"ref/cycle".to_string()),
        "{:?}",
        check(&s).findings
    );
}

#[test]
fn remote_ref_is_refused() {
    let s = registry(&[(
        "auth/user.created.v1.json",
        event(
            "auth.user.created",
            1,
            json!({"x": {"$ref": "https://example.com/x.json"}}),
        ),
    )]);
    assert!(rules(&check(&s)).contains(&"ref/not-relative".to_string()));
}

#[test]
fn generator_keywords() {
    let s = registry(&[(
        "auth/user.created.v1.json",
        event(
            "auth.user.created",
            1,
            json!({
                "x": {"type": "object", "if": {"required": ["a"]}, "then": {"required": ["b"]}},
                "t": {"type": "array", "prefixItems": [{"type": "string"}]}
            }),
        ),
    )]);
    let r = check(&s);
    let found: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| f.rule == "schema/unsupported-keyword")
        .map(|f| f.pointer.as_str())
        .collect();
    assert!(found.contains(&"/properties/x/if"), "{found:?}");
    assert!(found.contains(&"/properties/t/prefixItems"), "{found:?}");
}

#[test]
fn undeclared_and_uncovering_streams() {
    let mut e = event("auth.user.created", 1, json!({}));
    e["x-stream"] = json!("USERS");
    let r = check(&registry(&[("auth/user.created.v1.json", e)]));
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "stream/undeclared")
        .unwrap();
    assert!(f.help.contains("AUTH_EVENTS"), "{}", f.help);
    let mut e = event("auth.user.created", 1, json!({}));
    e["x-stream"] = json!("CATALOG_EVENTS");
    assert!(
        rules(&check(&registry(&[("auth/user.created.v1.json", e)])))
            .contains(&"stream/not-covering".to_string())
    );
    let mut e = event("auth.user.created", 1, json!({}));
    e["x-stream"] = json!("DLQ_EVENTS");
    assert!(
        rules(&check(&registry(&[("auth/user.created.v1.json", e)])))
            .contains(&"stream/not-for-events".to_string())
    );
}

#[test]
fn examples_must_validate_against_the_bundled_schema() {
    let mut e = event("auth.user.created", 1, json!({}));
    e["examples"] = json!([{"user_id": "not-a-uuid"}, {"name": "no id"}]);
    let r = check(&registry(&[("auth/user.created.v1.json", e)]));
    let found: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| f.rule == "schema/example-invalid")
        .map(|f| f.pointer.as_str())
        .collect();
    assert_eq!(
        found,
        vec!["/examples/0", "/examples/1"],
        "{:?}",
        r.findings
    );
}

#[test]
fn invalid_compatibility_mode() {
    let mut e = event("auth.user.created", 1, json!({}));
    e["x-compatibility"] = json!("SIDEWAYS");
    assert!(
        rules(&check(&registry(&[("auth/user.created.v1.json", e)])))
            .contains(&"schema/compatibility".to_string())
    );
}

#[test]
fn config_problems() {
    let mut s = registry(&[]);
    s.files.insert("tidings.toml".into(), "[streams.A]\nsubjects = [\"a.>\"]\n[streams.B]\nsubjects = [\"a.b\"]\n[profiles.p]\nreplicas = 9\n".into());
    let r = rules(&check(&s));
    assert!(r.contains(&"config/stream-overlap".to_string()), "{r:?}");
    assert!(r.contains(&"config/replicas".to_string()), "{r:?}");
    s.files.insert(
        "tidings.toml".into(),
        "[compatibility]\nmode = \"SIDEWAYS\"\npolicy = \"strict\"\n".into(),
    );
    let r = check(&s);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "config/invalid")
        .unwrap();
    assert_eq!(f.line, 2, "{f:?}");
    s.files.remove("tidings.toml");
    assert!(rules(&check(&s)).contains(&"config/missing".to_string()));
}

#[test]
fn findings_are_sorted_and_carry_lines() {
    let mut e = event("auth.user.created", 1, json!({}));
    e["x-stream"] = json!("NOPE");
    let r = check(&registry(&[("auth/user.created.v1.json", e)]));
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "stream/undeclared")
        .unwrap();
    let text = serde_json::to_string_pretty(&{
        let mut e = event("auth.user.created", 1, json!({}));
        e["x-stream"] = json!("NOPE");
        e
    })
    .unwrap();
    let expected = text
        .lines()
        .position(|l| l.contains("\"x-stream\""))
        .unwrap()
        + 1;
    assert_eq!(f.line, expected);
}

#[test]
fn compat_findings_inside_shared_definitions_point_at_the_ref() {
    let mut s = registry(&[(
        "auth/user.created.v1.json",
        event("auth.user.created", 1, json!({})),
    )]);
    s.files.insert(
        "common/ids.json".into(),
        json!({"$defs": {"UserId": {"type": "string", "format": "uuid"}, "LegacyId": {"type": "string", "maxLength": 8}}})
            .to_string(),
    );
    let mut v2 = event(
        "auth.user.created",
        2,
        json!({"user_id": {"$ref": "../common/ids.json#/$defs/LegacyId"}}),
    );
    v2["examples"] = json!([]);
    let text = serde_json::to_string_pretty(&v2).unwrap();
    s.files
        .insert("auth/user.created.v2.json".into(), text.clone());
    s.files.insert(
        "registry.lock".into(),
        tidings_codegen::registry::updated_lock(&s, None)
            .unwrap()
            .to_text(),
    );
    let r = check(&s);
    let f = r
        .findings
        .iter()
        .find(|f| {
            f.rule.starts_with("compat/")
                && f.compat
                    .as_ref()
                    .is_some_and(|c| c.new_path.starts_with("/$defs/LegacyId"))
        })
        .unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert_eq!(f.file, "auth/user.created.v2.json");
    assert_eq!(f.pointer, "/properties/user_id/$ref");
    assert!(
        f.message.contains("common/ids.json#/$defs/LegacyId"),
        "{}",
        f.message
    );
    let expected = text.lines().position(|l| l.contains("LegacyId")).unwrap() + 1;
    assert_eq!(f.line, expected);
}

#[test]
fn examples_with_look_around_patterns_are_still_validated() {
    let mut e = event(
        "auth.user.created",
        1,
        json!({"name": {"type": "string", "pattern": "^(?!admin$).+$"}}),
    );
    e["examples"] = json!([{"user_id": "0190f3a4-8c1e-7b2a-9d4f-1a2b3c4d5e6f", "name": "admin"}]);
    let r = check(&registry(&[("auth/user.created.v1.json", e)]));
    assert_eq!(
        rules(&r),
        vec!["schema/example-invalid"],
        "{:?}",
        r.findings
    );
}

#[test]
fn unresolvable_local_refs_and_anchors() {
    let s = registry(&[(
        "auth/user.created.v1.json",
        event(
            "auth.user.created",
            1,
            json!({"x": {"$ref": "#/$defs/Nope"}}),
        ),
    )]);
    let r = check(&s);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "ref/unresolvable")
        .unwrap();
    assert_eq!(f.pointer, "/properties/x/$ref");
    let s = registry(&[(
        "auth/user.created.v1.json",
        event("auth.user.created", 1, json!({"x": {"$ref": "#nope"}})),
    )]);
    assert!(rules(&check(&s)).contains(&"ref/unresolvable".to_string()));
    // A resolvable anchor: the validator reads it, but the generator
    // (typify) panics on anchor refs, so the check refuses it at the ref.
    let mut e = event("auth.user.created", 1, json!({"x": {"$ref": "#here"}}));
    e["$defs"] = json!({"H": {"$anchor": "here", "type": "string"}});
    let r = check(&registry(&[("auth/user.created.v1.json", e)]));
    assert_eq!(
        rules(&r),
        ["schema/unsupported-keyword"],
        "{:?}",
        r.findings
    );
    assert_eq!(r.findings[0].pointer, "/properties/x/$ref");
}

#[test]
fn local_pure_ref_loops_are_cycles() {
    let mut e = event("auth.user.created", 1, json!({"x": {"$ref": "#/$defs/A"}}));
    e["$defs"] = json!({"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}});
    let r = check(&registry(&[("auth/user.created.v1.json", e)]));
    let f = r.findings.iter().find(|f| f.rule == "ref/cycle").unwrap();
    assert!(
        f.message.contains("#/$defs/A -> #/$defs/B -> #/$defs/A"),
        "{}",
        f.message
    );
}

#[test]
fn schemas_that_cannot_be_compiled() {
    let e = event(
        "auth.user.created",
        1,
        json!({"name": {"type": "string", "pattern": "(unclosed"}}),
    );
    let r = check(&registry(&[("auth/user.created.v1.json", e)]));
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "schema/invalid")
        .unwrap();
    assert_eq!(f.pointer, "/properties/name/pattern");
}

#[test]
fn non_utf8_files_and_missing_examples() {
    let mut e = event("auth.user.created", 1, json!({}));
    e["examples"] = json!([]);
    let mut s = registry(&[("auth/user.created.v1.json", e)]);
    s.not_utf8.push("auth/user.updated.v1.json".into());
    let r = check(&s);
    assert_eq!(rules(&r), vec!["json/invalid"]);
    assert!(r.findings.iter().any(|f| f.rule == "schema/no-examples"
        && f.severity == tidings_codegen::registry::Severity::Warning));
}

#[test]
fn moving_a_type_to_another_stream_is_a_warning() {
    let mut s = registry(&[]);
    s.files.insert(
        "tidings.toml".into(),
        format!(
            "{}\n[streams.AUTH_V2]\nsubjects = [\"auth.user.created.*.*\"]\n",
            registry_support::CONFIG.replace(
                "subjects = [\"auth.>\"]",
                "subjects = [\"auth.user.updated.>\", \"auth.user.created.>\"]"
            )
        ),
    );
    let mut v2 = event("auth.user.created", 2, json!({}));
    v2["x-stream"] = json!("AUTH_V2");
    s.files.insert(
        "auth/user.created.v1.json".into(),
        event("auth.user.created", 1, json!({})).to_string(),
    );
    s.files
        .insert("auth/user.created.v2.json".into(), v2.to_string());
    s.files.insert(
        "registry.lock".into(),
        tidings_codegen::registry::updated_lock(&s, None)
            .unwrap()
            .to_text(),
    );
    let r = check(&s);
    assert!(
        r.findings.iter().any(|f| f.rule == "stream/changed"
            && f.severity == tidings_codegen::registry::Severity::Warning),
        "{:?}",
        r.findings
    );
}
