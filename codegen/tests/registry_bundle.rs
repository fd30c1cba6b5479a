//! Tests of the cross-file `$ref` bundler.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tidings_codegen::bundle::{bundle_file, bundle_with, BundleErrorKind};

fn mem(files: &[(&str, Value)]) -> impl Fn(&Path) -> io::Result<String> {
    let files: HashMap<PathBuf, String> = files
        .iter()
        .map(|(p, v)| (PathBuf::from(p), v.to_string()))
        .collect();
    move |p: &Path| {
        files
            .get(p)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }
}

#[test]
fn local_refs_stay_and_files_without_refs_are_unchanged() {
    let doc =
        json!({"$defs": {"A": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/A"}}});
    let loader = mem(&[("a.json", doc.clone())]);
    assert_eq!(bundle_with(&loader, Path::new("a.json")).unwrap(), doc);
}

#[test]
fn whole_file_ref_uses_the_file_stem_and_drops_its_id() {
    let loader = mem(&[
        (
            "s/x/a.json",
            json!({"properties": {"amount": {"$ref": "../common/money.json"}}}),
        ),
        (
            "s/common/money.json",
            json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "https://e/money.json",
                   "type": "object", "properties": {"currency": {"$ref": "#/$defs/Currency"}},
                   "$defs": {"Currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}}),
        ),
    ]);
    let v = bundle_with(&loader, Path::new("s/x/a.json")).unwrap();
    assert_eq!(v["properties"]["amount"]["$ref"], "#/$defs/Money");
    let money = &v["$defs"]["Money"];
    assert!(
        money.get("$id").is_none()
            && money.get("$schema").is_none()
            && money.get("$defs").is_none()
    );
    // The local ref inside the copied file now points at its own copied piece.
    assert_eq!(money["properties"]["currency"]["$ref"], "#/$defs/Currency");
    assert_eq!(v["$defs"]["Currency"]["pattern"], "^[A-Z]{3}$");
}

#[test]
fn name_collisions_get_the_file_stem_prefix() {
    let loader = mem(&[
        (
            "a.json",
            json!({"$defs": {"UserId": {"type": "integer"}},
                   "properties": {"u": {"$ref": "ids.json#/$defs/UserId"}, "v": {"$ref": "#/$defs/UserId"}}}),
        ),
        ("ids.json", json!({"$defs": {"UserId": {"type": "string"}}})),
    ]);
    let v = bundle_with(&loader, Path::new("a.json")).unwrap();
    assert_eq!(v["properties"]["u"]["$ref"], "#/$defs/IdsUserId");
    assert_eq!(v["properties"]["v"]["$ref"], "#/$defs/UserId");
    assert_eq!(v["$defs"]["UserId"]["type"], "integer");
    assert_eq!(v["$defs"]["IdsUserId"]["type"], "string");
}

#[test]
fn cycles_between_files_with_content_are_fine() {
    let loader = mem(&[
        (
            "a.json",
            json!({"type": "object", "properties": {"b": {"$ref": "b.json#/$defs/B"}}, "$defs": {"A": {"type": "object", "properties": {"next": {"$ref": "b.json#/$defs/B"}}}}}),
        ),
        (
            "b.json",
            json!({"$defs": {"B": {"type": "object", "properties": {"a": {"$ref": "a.json#/$defs/A"}, "self": {"$ref": "#/$defs/B"}}}}}),
        ),
    ]);
    let v = bundle_with(&loader, Path::new("a.json")).unwrap();
    assert_eq!(v["properties"]["b"]["$ref"], "#/$defs/B");
    assert_eq!(v["$defs"]["B"]["properties"]["a"]["$ref"], "#/$defs/A");
    assert_eq!(v["$defs"]["B"]["properties"]["self"]["$ref"], "#/$defs/B");
    // And the result validates documents through the refs.
    let validator = jsonschema::validator_for(&v).unwrap();
    assert!(validator.is_valid(&json!({"b": {"a": {"next": {}}}})));
}

#[test]
fn pure_ref_cycle_is_refused() {
    let loader = mem(&[
        (
            "a.json",
            json!({"properties": {"x": {"$ref": "b.json#/$defs/B"}}, "$defs": {}}),
        ),
        (
            "b.json",
            json!({"$defs": {"B": {"$ref": "c.json#/$defs/C"}}}),
        ),
        (
            "c.json",
            json!({"$defs": {"C": {"$ref": "b.json#/$defs/B", "description": "loops"}}}),
        ),
    ]);
    let err = bundle_with(&loader, Path::new("a.json")).unwrap_err();
    assert!(matches!(err.kind, BundleErrorKind::Cycle { .. }), "{err}");
    assert!(err.to_string().contains("cycle"), "{err}");
}

#[test]
fn missing_file_names_the_ref_site() {
    let loader = mem(&[(
        "s/a.json",
        json!({"properties": {"x": {"$ref": "nope.json#/$defs/X"}}}),
    )]);
    let err = bundle_with(&loader, Path::new("s/a.json")).unwrap_err();
    assert_eq!(err.file, PathBuf::from("s/a.json"));
    assert_eq!(err.pointer, "/properties/x");
    match err.kind {
        BundleErrorKind::Read { target, .. } => assert_eq!(target, PathBuf::from("s/nope.json")),
        other => panic!("{other}"),
    }
}

#[test]
fn missing_pointer_target() {
    let loader = mem(&[
        ("a.json", json!({"items": [{"$ref": "b.json#/$defs/Nope"}]})),
        ("b.json", json!({"$defs": {}})),
    ]);
    let err = bundle_with(&loader, Path::new("a.json")).unwrap_err();
    assert_eq!(err.pointer, "/items/0");
    assert!(
        matches!(err.kind, BundleErrorKind::MissingTarget { .. }),
        "{err}"
    );
}

#[test]
fn urls_are_refused_offline() {
    for r in ["https://example.com/x.json", "urn:x:y", "//host/x.json"] {
        let loader = mem(&[("a.json", json!({"properties": {"x": {"$ref": r}}}))]);
        let err = bundle_with(&loader, Path::new("a.json")).unwrap_err();
        assert!(
            matches!(err.kind, BundleErrorKind::NotRelative { .. }),
            "{r}: {err}"
        );
    }
}

#[test]
fn refs_inside_data_and_property_names_are_handled() {
    let loader = mem(&[
        (
            "a.json",
            json!({"examples": [{"$ref": "nope.json"}], "const": {"$ref": 1},
                   "properties": {"default": {"$ref": "b.json#/$defs/B"}, "enum": {"type": "string"}}}),
        ),
        ("b.json", json!({"$defs": {"B": {"type": "boolean"}}})),
    ]);
    let v = bundle_with(&loader, Path::new("a.json")).unwrap();
    assert_eq!(v["examples"][0]["$ref"], "nope.json");
    assert_eq!(v["properties"]["default"]["$ref"], "#/$defs/B");
}

#[test]
fn draft07_roots_use_definitions() {
    let loader = mem(&[
        (
            "a.json",
            json!({"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"L": {"type": "string"}}, "properties": {"b": {"$ref": "b.json#/definitions/B"}}}),
        ),
        ("b.json", json!({"definitions": {"B": {"type": "boolean"}}})),
    ]);
    let v = bundle_with(&loader, Path::new("a.json")).unwrap();
    assert_eq!(v["properties"]["b"]["$ref"], "#/definitions/B");
    assert!(v.get("$defs").is_none());
}

#[test]
fn invalid_json_reports_line_and_column() {
    let loader = |_: &Path| Ok::<_, io::Error>("{\n  \"a\": ,\n}".to_string());
    let err = bundle_with(&loader, Path::new("a.json")).unwrap_err();
    match err.kind {
        BundleErrorKind::Json { line, .. } => assert_eq!(line, 2),
        other => panic!("{other}"),
    }
}

#[test]
fn bundles_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("common")).unwrap();
    std::fs::write(
        dir.path().join("common/ids.json"),
        r#"{"$defs":{"Id":{"type":"string"}}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("e.json"),
        r#"{"properties":{"id":{"$ref":"./common/ids.json#/$defs/Id"}}}"#,
    )
    .unwrap();
    let v = bundle_file(&dir.path().join("e.json")).unwrap();
    assert_eq!(v["$defs"]["Id"]["type"], "string");
}

#[test]
fn bundled_pointers_map_back_to_the_root_ref() {
    let loader = mem(&[
        (
            "s/a.json",
            json!({"properties": {"m": {"$ref": "../c/money.json#/$defs/Money"}}}),
        ),
        (
            "c/money.json",
            json!({"$defs": {"Money": {"properties": {"cur": {"$ref": "#/$defs/Cur"}}}, "Cur": {"type": "string"}}}),
        ),
    ]);
    let mut b = tidings_codegen::bundle::Bundler::new(&loader);
    let bundled = b.bundle_detailed(Path::new("s/a.json")).unwrap();
    let (site, def) = bundled
        .root_site(Path::new("s/a.json"), "/$defs/Cur/type")
        .unwrap();
    assert_eq!(site, "/properties/m/$ref");
    assert_eq!(def, "c/money.json#/$defs/Cur");
    assert!(bundled
        .root_site(Path::new("s/a.json"), "/properties/m")
        .is_none());
}
