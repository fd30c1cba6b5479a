//! `tidings check` and the generator agree: whatever the check accepts
//! generates, and every reason the generator (build.rs) refuses a registry
//! is a check finding at the same file and JSON pointer.
//!
//! One small registry per shape that used to pass the check and break the
//! build (or the reverse).
#![allow(clippy::unwrap_used)]

mod registry_support;

use registry_support::{check, event, registry};
use serde_json::{json, Value};
use tidings_codegen::generate::{generate, Options};
use tidings_codegen::registry::{Finding, Report, Severity, Source};

const FILE: &str = "auth/user.created.v1.json";

/// A registry whose only event is `auth.user.created` v1 with `props`
/// added to the test event's properties.
fn with_props(props: Value) -> Source {
    registry(&[(FILE, event("auth.user.created", 1, props))])
}

/// A registry whose only event is `schema` (a whole document).
fn with_schema(schema: Value) -> Source {
    registry(&[(FILE, schema)])
}

fn errors(r: &Report) -> Vec<&Finding> {
    r.findings
        .iter()
        .filter(|f| f.severity == Severity::Error && !f.rule.starts_with("lock/"))
        .collect()
}

/// The check reports an error at `pointer` of `file`, and every problem
/// the generator reports is a check error at the same file and pointer.
fn assert_finding(s: &Source, file: &str, pointer: &str) -> Finding {
    let r = check(s);
    let found = errors(&r)
        .into_iter()
        .find(|f| f.file == file && f.pointer == pointer)
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "no check error at {file} {pointer}; findings: {:#?}",
                r.findings
            )
        });
    assert!(found.line >= 1, "{found:?}");
    if let Err(e) = generate(s, &Options::default()) {
        for d in e.diagnostics() {
            assert!(
                r.findings.iter().any(|f| f.severity == Severity::Error
                    && f.file == d.file
                    && f.pointer == d.pointer),
                "the generator reports {d} but the check has no error there: {:#?}",
                r.findings
            );
        }
    }
    found
}

/// The check has no errors and the registry generates (parsed Rust).
fn assert_generates(s: &Source) -> String {
    let r = check(s);
    assert!(
        r.findings.iter().all(|f| f.severity != Severity::Error),
        "{:#?}",
        r.findings
    );
    let g = generate(s, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    syn::parse_file(&g.code).unwrap();
    g.code
}

#[test]
fn not_is_a_finding_at_the_keyword() {
    let s = with_props(json!({"code": {"type": "string", "not": {"pattern": "^x"}}}));
    let f = assert_finding(&s, FILE, "/properties/code/not");
    assert_eq!(f.rule, "schema/unsupported-keyword");
}

#[test]
fn untyped_enum_of_mixed_types_is_a_finding_at_the_enum() {
    let s = with_props(json!({"level": {"enum": [1, "one"]}}));
    let f = assert_finding(&s, FILE, "/properties/level/enum");
    assert_eq!(f.rule, "schema/unsupported-keyword");
}

#[test]
fn payload_roots_without_named_fields_are_findings() {
    let mut one_of = event("auth.user.created", 1, json!({}));
    let obj = one_of.as_object_mut().unwrap();
    obj.remove("properties");
    obj.remove("required");
    obj.remove("type");
    obj.insert(
        "oneOf".into(),
        json!([
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"type": "object", "properties": {"b": {"type": "string"}}, "required": ["b"]}
        ]),
    );
    obj.insert("examples".into(), json!([{"a": "x"}]));
    let f = assert_finding(&with_schema(one_of.clone()), FILE, "/oneOf");
    assert_eq!(f.rule, "schema/payload-shape");

    let mut typed = one_of.clone();
    typed["type"] = json!("object");
    assert_finding(&with_schema(typed), FILE, "/oneOf");

    let mut map = one_of;
    let obj = map.as_object_mut().unwrap();
    obj.remove("oneOf");
    obj.insert("type".into(), json!("object"));
    obj.insert("additionalProperties".into(), json!({"type": "string"}));
    obj.insert("examples".into(), json!([{"a": "x"}]));
    let f = assert_finding(&with_schema(map), FILE, "");
    assert_eq!(f.rule, "schema/payload-shape");
}

/// A definition or nested title named like a prelude type generates as
/// `<Name>Value` (a warning says so), so real schemas build.
#[test]
fn definitions_named_like_the_prelude_generate_renamed() {
    for (name, rust) in [
        ("String", "StringValue"),
        ("Option", "OptionValue"),
        ("Box", "BoxValue"),
        ("vec", "VecValue"),
        ("Result", "ResultValue"),
    ] {
        let mut e = event(
            "auth.user.created",
            1,
            json!({
                "x": {"$ref": format!("#/$defs/{name}")},
                "y": {"type": "object", "title": "Some", "properties": {"b": {"type": "string"}}}
            }),
        );
        e["$defs"] = json!({name: {"type": "object", "properties": {"a": {"type": "string"}}}});
        let s = with_schema(e);
        let r = check(&s);
        let f = r
            .findings
            .iter()
            .find(|f| f.pointer == format!("/$defs/{name}"))
            .unwrap_or_else(|| panic!("{:#?}", r.findings));
        assert_eq!(f.rule, "schema/reserved-name", "{f:?}");
        assert_eq!(f.severity, Severity::Warning, "{f:?}");
        assert!(f.line > 1 && f.message.contains(rust), "{f:?}");
        let code = assert_generates(&s);
        assert!(code.contains(&format!("pub struct {rust} ")), "{code}");
        assert!(code.contains("pub struct SomeValue "), "{code}");
        for shadow in [name, "Some"] {
            let pascal = format!("{}{}", shadow[..1].to_uppercase(), &shadow[1..]);
            for item in ["struct", "enum", "type"] {
                assert!(
                    !code.contains(&format!("pub {item} {pascal} ")),
                    "{pascal}: {code}"
                );
            }
        }
    }
}

#[test]
fn pattern_properties_with_additional_properties_false_generates_a_map() {
    let s = with_props(json!({"labels": {
        "type": "object",
        "patternProperties": {"^[a-z]+$": {"type": "string"}},
        "additionalProperties": false
    }}));
    let code = assert_generates(&s);
    assert!(code.contains("labels"), "{code}");
}

#[test]
fn https_draft07_is_accepted() {
    let mut e = event("auth.user.created", 1, json!({}));
    e["$schema"] = json!("https://json-schema.org/draft-07/schema");
    assert_generates(&with_schema(e.clone()));
    e["$schema"] = json!("https://json-schema.org/draft-07/schema#");
    assert_generates(&with_schema(e));
}

#[test]
fn every_unresolvable_ref_of_a_file_is_reported() {
    let s = with_props(json!({
        "a": {"$ref": "../common/nope.json#/$defs/X"},
        "b": {"$ref": "../common/ids.json#/$defs/Nope"},
        "c": {"$ref": "#/$defs/Missing"}
    }));
    let r = check(&s);
    let mut at: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| f.rule == "ref/unresolvable")
        .map(|f| f.pointer.as_str())
        .collect();
    at.sort_unstable();
    assert_eq!(
        at,
        [
            "/properties/a/$ref",
            "/properties/b/$ref",
            "/properties/c/$ref"
        ],
        "{:#?}",
        r.findings
    );
}

#[test]
fn patterns_outside_the_shared_regex_dialect_are_findings() {
    // Each is accepted by one engine (the runtime validator or the generated
    // code's regress) and refused or read differently by the other.
    for (pattern, why) in [
        ("(?i)^abc$", "inline flags"),
        ("^\\p{L}+$", "Unicode class without the u flag"),
        (
            "^a{x}$",
            "a brace the runtime's Rust syntax reads as a bad repetition",
        ),
    ] {
        let s = with_props(json!({"code": {"type": "string", "pattern": pattern}}));
        assert_finding(&s, FILE, "/properties/code/pattern");
        let r = check(&s);
        assert!(
            r.findings
                .iter()
                .any(|f| f.rule == "schema/pattern" && f.pointer == "/properties/code/pattern"),
            "{why}: {:#?}",
            r.findings
        );
    }
    let s = with_props(json!({"labels": {
        "type": "object",
        "patternProperties": {"(?i)^x": {"type": "string"}}
    }}));
    let f = assert_finding(&s, FILE, "/properties/labels/patternProperties/(?i)^x");
    assert_eq!(f.rule, "schema/pattern");
}

#[test]
fn ecma_patterns_both_engines_read_alike_pass() {
    let s = with_props(json!({
        "code": {"type": "string", "pattern": "^[A-Z]{3}-\\d{2,4}(?:\\.[a-z]+)?$"},
        "word": {"type": "string", "pattern": "^(?=.*[0-9])\\w+$"}
    }));
    assert_generates(&s);
}

#[test]
fn reserved_service_names_are_findings() {
    let mut config = registry_support::CONFIG.to_string();
    config.push_str("[streams.UPCAST_EVENTS]\nsubjects = [\"upcast.>\"]\n");
    let mut s = registry(&[(
        "upcast/user.created.v1.json",
        event("upcast.user.created", 1, json!({})),
    )]);
    s.files.insert("tidings.toml".into(), config);
    assert_finding(&s, "upcast/user.created.v1.json", "/x-event-type");
}

#[test]
fn an_entity_key_that_is_not_a_property_is_a_finding() {
    let mut e = event("auth.user.created", 1, json!({}));
    e["x-entity-key"] = json!("nope");
    assert_finding(&with_schema(e), FILE, "/x-entity-key");
}
