//! End-to-end tests of `tidings compat`: exit codes, both formats, modes,
//! policies and cross-file `$ref`s.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Files {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")),
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir: {e}"));
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {name}: {e}"));
        path
    }

    fn json(&self, name: &str, v: &Value) -> PathBuf {
        self.write(name, &v.to_string())
    }
}

fn tidings(args: &[&str], old: &Path, new: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("compat")
        .arg(old)
        .arg(new)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run tidings: {e}"))
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn user(extra: Value, required: &[&str]) -> Value {
    let mut props = json!({"id": {"type": "string"}, "name": {"type": "string", "maxLength": 10}});
    if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            p.insert(k.clone(), v.clone());
        }
    }
    json!({"type": "object", "properties": props, "required": required})
}

#[test]
fn compatible_change_exits_zero_with_a_verdict_line() {
    let f = Files::new();
    let old = f.json("old.json", &user(json!({}), &["id"]));
    let new = f.json("new.json", &json!({"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string", "maxLength": 20}}, "required": ["id"]}));
    let out = tidings(&["--mode", "backward"], &old, &new);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("compatible under BACKWARD (strict)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn incompatible_change_exits_one_and_explains_in_text() {
    let f = Files::new();
    let old = f.json("old.json", &user(json!({}), &["id"]));
    let new = f.json("new.json", &user(json!({}), &["id", "name"]));
    let out = tidings(&["--mode", "backward"], &old, &new);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("[1] required_property_added (breaks readers)"),
        "{text}"
    );
    assert!(
        text.contains("old: ") && text.contains("/required"),
        "{text}"
    );
    assert!(text.contains("example: {\"id\":"), "{text}");
    assert!(
        text.contains("incompatible under BACKWARD (strict): 1 breaking change"),
        "{text}"
    );
}

#[test]
fn json_output_has_the_documented_shape_and_order() {
    let f = Files::new();
    let old = f.json("old.json", &user(json!({}), &["id"]));
    let new = f.json("new.json", &json!({"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string", "maxLength": 5}}, "required": ["id"]}));
    let out = tidings(&["--format", "json", "--mode", "full"], &old, &new);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let text = stdout(&out);
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(v["compatible"], json!(false));
    assert_eq!(v["mode"], json!("FULL"));
    assert_eq!(v["policy"], json!("strict"));
    let changes = v["changes"].as_array().cloned().unwrap_or_default();
    assert_eq!(changes.len(), 1, "{text}");
    let c = &changes[0];
    assert_eq!(c["kind"], json!("max_length_decreased"));
    assert_eq!(c["old_path"], json!("/properties/name/maxLength"));
    assert_eq!(c["new_path"], json!("/properties/name/maxLength"));
    assert_eq!(c["breaks"], json!("readers"));
    assert!(c["message"].as_str().is_some_and(|m| !m.contains('\n')));
    let name = c["example"]["name"].as_str().unwrap_or_default();
    assert!(
        name.chars().count() > 5 && name.chars().count() <= 10,
        "{text}"
    );
    let order = [
        "\"compatible\"",
        "\"mode\"",
        "\"policy\"",
        "\"changes\"",
        "\"kind\"",
        "\"old_path\"",
        "\"new_path\"",
        "\"breaks\"",
        "\"message\"",
        "\"example\"",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|k| text.find(k).unwrap_or(usize::MAX))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "keys out of order: {text}"
    );
}

#[test]
fn compatible_json_lists_no_changes() {
    let f = Files::new();
    let s = f.json("s.json", &user(json!({}), &["id"]));
    let out = tidings(&["--format", "json"], &s, &s);
    assert_eq!(code(&out), 0);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
    assert_eq!(
        v,
        json!({"compatible": true, "mode": "FULL_TRANSITIVE", "policy": "strict", "changes": []})
    );
}

/// Without flags, `compat` judges like `tidings check`: the new file's
/// `x-compatibility`, else the registry's `[compatibility]`, else
/// FULL_TRANSITIVE strict (the config defaults).
#[test]
fn defaults_are_those_of_check() {
    let f = Files::new();
    let old = f.json("old.json", &user(json!({}), &["id"]));
    // A wider bound: only writers break, so BACKWARD passes and FULL fails.
    let new = f.json("new.json", &json!({"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string", "maxLength": 20}}, "required": ["id"]}));
    let registry = f.dir.path().join("registry");
    let out = tidings(&["--schemas", &registry.to_string_lossy()], &old, &new);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("under FULL_TRANSITIVE (strict)"),
        "{}",
        stdout(&out)
    );
    f.write(
        "registry/tidings.toml",
        "[compatibility]\nmode = \"BACKWARD\"\npolicy = \"lenient\"\n",
    );
    let out = tidings(&["--schemas", &registry.to_string_lossy()], &old, &new);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("compatible under BACKWARD (lenient)"),
        "{}",
        stdout(&out)
    );
    let mut declared: Value =
        serde_json::from_str(&std::fs::read_to_string(&new).unwrap_or_default())
            .unwrap_or_default();
    declared["x-compatibility"] = json!("FORWARD");
    let new = f.json("declared.json", &declared);
    let out = tidings(&["--schemas", &registry.to_string_lossy()], &old, &new);
    assert!(
        stdout(&out).contains("under FORWARD (lenient)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(code(&out), 1);
    // Flags win.
    let out = tidings(
        &["--schemas", &registry.to_string_lossy(), "--mode", "none"],
        &old,
        &new,
    );
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}

#[test]
fn modes_parse_in_any_case_and_decide_the_direction() {
    let f = Files::new();
    // Widening: breaks writers only.
    let old = f.json("old.json", &json!({"type": "integer"}));
    let new = f.json("new.json", &json!({"type": "number"}));
    for (mode, want) in [
        ("backward", 0),
        ("BACKWARD_TRANSITIVE", 0),
        ("forward", 1),
        ("Forward-Transitive", 1),
        ("full", 1),
        ("full_transitive", 1),
        ("none", 0),
        ("NONE", 0),
    ] {
        let out = tidings(&["--mode", mode], &old, &new);
        assert_eq!(
            code(&out),
            want,
            "mode {mode}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    let out = tidings(&["--mode", "sideways"], &old, &new);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("unknown compatibility mode"),
        "{}",
        stderr(&out)
    );
    let out = tidings(&["--mode", "forward", "--format", "json"], &old, &new);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
    assert_eq!(v["mode"], json!("FORWARD"));
    assert_eq!(v["changes"][0]["breaks"], json!("writers"));
    assert_eq!(v["changes"][0]["example"], json!(0.5));
}

#[test]
fn policy_decides_optional_property_additions() {
    let f = Files::new();
    let old = f.json("old.json", &user(json!({}), &["id"]));
    let new = f.json(
        "new.json",
        &user(json!({"email": {"type": "string"}}), &["id"]),
    );
    assert_eq!(code(&tidings(&[], &old, &new)), 1);
    assert_eq!(code(&tidings(&["--policy", "strict"], &old, &new)), 1);
    assert_eq!(code(&tidings(&["--policy", "lenient"], &old, &new)), 0);
    assert_eq!(code(&tidings(&["--policy", "LENIENT"], &old, &new)), 0);
    assert_eq!(code(&tidings(&["--policy", "loose"], &old, &new)), 2);
}

#[test]
fn invalid_input_exits_two() {
    let f = Files::new();
    let good = f.json("good.json", &json!({"type": "string"}));
    let broken = f.write("broken.json", "{\n  \"type\": \"string\",\n  oops\n}\n");
    let out = tidings(&[], &good, &broken);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("line 3") && err.contains("column"), "{err}");

    let missing = f.dir.path().join("missing.json");
    let out = tidings(&[], &missing, &good);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("missing.json"), "{}", stderr(&out));

    let dangling = f.json(
        "dangling.json",
        &json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/Nope"}}}),
    );
    let out = tidings(&[], &good, &dangling);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("#/$defs/Nope"), "{}", stderr(&out));

    let not_schema = f.write("number.json", "42");
    assert_eq!(code(&tidings(&[], &good, &not_schema)), 2);
}

#[test]
fn cross_file_refs_are_bundled() {
    let f = Files::new();
    f.json(
        "common/ids.json",
        &json!({"$defs": {"UserId": {"type": "string", "maxLength": 36}}}),
    );
    let old = f.json("v1.json", &json!({"type": "object", "properties": {"id": {"$ref": "common/ids.json#/$defs/UserId"}}, "required": ["id"]}));
    f.json(
        "common2/ids.json",
        &json!({"$defs": {"UserId": {"type": "string", "maxLength": 8}}}),
    );
    let new = f.json("v2.json", &json!({"type": "object", "properties": {"id": {"$ref": "common2/ids.json#/$defs/UserId"}}, "required": ["id"]}));
    let out = tidings(&["--format", "json"], &old, &new);
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
    assert_eq!(v["changes"][0]["kind"], json!("max_length_decreased"));
    let same = tidings(&[], &old, &old);
    assert_eq!(code(&same), 0, "{}{}", stdout(&same), stderr(&same));
}

#[test]
fn help_documents_exit_codes_and_what_changes_lists() {
    let out = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(["compat", "--help"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = stdout(&out);
    assert!(
        text.contains("0 compatible, 1 incompatible, 2 invalid input"),
        "{text}"
    );
    assert!(text.contains("Informational changes"), "{text}");
}
