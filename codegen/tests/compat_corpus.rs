//! The compatibility corpus: data-driven cases under `compat_corpus/`.
//!
//! Each pair case (`compat_corpus/pairs/*.json`) gives an old and a new
//! schema and the expected verdict per policy: `"full"` (both BACKWARD and
//! FORWARD hold), `"backward"` (only BACKWARD), `"forward"` (only FORWARD)
//! or `"none"` (or the long form `{"backward": bool, "forward": bool}`);
//! `expect` is either one verdict for both policies or
//! `{"strict": .., "lenient": ..}`. From it every mode's verdict is derived and checked through
//! [`check_versions`]; `kinds` (optional) is the exact set of change kinds
//! reported under the strict policy. Every example the engine reports is
//! validated here, independently, against both schemas: the version the
//! change's direction names must accept it and the other must reject it.
//! A breaking change without an example fails unless the case says
//! `"allow_missing_example": true`.
//!
//! Histories (`compat_corpus/histories.json`) check the transitive modes
//! over three versions. A random-pair test checks soundness against a
//! validator: every sample document that separates two versions must be
//! matched by a reported change in that direction.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tidings_codegen::compat::{check_versions, diff, Breaks, Change, Mode, Policy};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat_corpus")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn validator(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| format!("schema does not compile: {e}"))
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Verdict {
    backward: bool,
    forward: bool,
}

fn parse_verdict(v: &Value) -> Result<Verdict, String> {
    if let (Some(backward), Some(forward)) = (v["backward"].as_bool(), v["forward"].as_bool()) {
        return Ok(Verdict { backward, forward });
    }
    match v.as_str() {
        Some("full") => Ok(Verdict {
            backward: true,
            forward: true,
        }),
        Some("backward") => Ok(Verdict {
            backward: true,
            forward: false,
        }),
        Some("forward") => Ok(Verdict {
            backward: false,
            forward: true,
        }),
        Some("none") => Ok(Verdict {
            backward: false,
            forward: false,
        }),
        _ => Err(format!("bad verdict {v}")),
    }
}

fn expected_for_mode(v: Verdict, mode: Mode) -> bool {
    (!mode.checks_backward() || v.backward) && (!mode.checks_forward() || v.forward)
}

fn check_examples(
    changes: &[Change],
    old: &Value,
    new: &Value,
    allow_missing: bool,
) -> Vec<String> {
    let mut errors = Vec::new();
    let (ov, nv) = match (validator(old), validator(new)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) | (_, Err(e)) => return vec![e],
    };
    for c in changes {
        match (&c.example, c.breaks) {
            (Some(ex), Breaks::Readers) if !ov.is_valid(ex) || nv.is_valid(ex) => {
                errors.push(format!(
                    "{} example {ex} is not accepted by old and rejected by new",
                    c.kind.as_str()
                ))
            }
            (Some(ex), Breaks::Writers) if !nv.is_valid(ex) || ov.is_valid(ex) => {
                errors.push(format!(
                    "{} example {ex} is not accepted by new and rejected by old",
                    c.kind.as_str()
                ))
            }
            (Some(ex), Breaks::None) => errors.push(format!(
                "{} is informational but has example {ex}",
                c.kind.as_str()
            )),
            (None, Breaks::Readers | Breaks::Writers) if !allow_missing => errors.push(format!(
                "{} ({:?}, {} -> {}) has no example",
                c.kind.as_str(),
                c.breaks,
                c.old_path,
                c.new_path
            )),
            _ => {}
        }
        if c.message.contains('\n') || c.message.is_empty() {
            errors.push(format!("{} message is not one line", c.kind.as_str()));
        }
    }
    errors
}

fn run_case(case: &Value) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let old = &case["old"];
    let new = &case["new"];
    let expect = &case["expect"];
    let allow_missing = case["allow_missing_example"].as_bool().unwrap_or(false);
    for policy in [Policy::Strict, Policy::Lenient] {
        let spec = if expect.is_string() || expect.get("backward").is_some() {
            expect
        } else {
            &expect[policy.as_str()]
        };
        let spec = if spec.is_null() {
            &expect["strict"]
        } else {
            spec
        };
        let want = match parse_verdict(spec) {
            Ok(v) => v,
            Err(e) => return Err(vec![e]),
        };
        let changes = match diff(old, new, policy) {
            Ok(c) => c,
            Err(e) => return Err(vec![format!("{policy}: diff failed: {e}")]),
        };
        let got = Verdict {
            backward: !changes.iter().any(|c| c.breaks == Breaks::Readers),
            forward: !changes.iter().any(|c| c.breaks == Breaks::Writers),
        };
        if got != want {
            let listed: Vec<String> = changes
                .iter()
                .map(|c| {
                    format!(
                        "{}({:?} {} -> {})",
                        c.kind.as_str(),
                        c.breaks,
                        c.old_path,
                        c.new_path
                    )
                })
                .collect();
            errors.push(format!(
                "{policy}: expected {want:?}, got {got:?}; changes: {listed:?}"
            ));
        }
        for mode in Mode::ALL {
            let findings = check_versions(&[(1, old), (2, new)], mode, policy);
            match findings {
                Ok(f) => {
                    if f.is_empty() != expected_for_mode(want, mode) {
                        errors.push(format!(
                            "{policy} {mode}: expected compatible={}",
                            expected_for_mode(want, mode)
                        ));
                    }
                    if f.iter().any(|f| f.old_version != 1 || f.new_version != 2) {
                        errors.push(format!("{policy} {mode}: wrong versions in findings"));
                    }
                }
                Err(e) => errors.push(format!("{policy} {mode}: check_versions failed: {e}")),
            }
        }
        for e in check_examples(&changes, old, new, allow_missing) {
            errors.push(format!("{policy}: {e}"));
        }
        if policy == Policy::Strict {
            if let Some(kinds) = case["kinds"].as_array() {
                let want: BTreeSet<&str> = kinds.iter().filter_map(Value::as_str).collect();
                let got: BTreeSet<&str> = changes.iter().map(|c| c.kind.as_str()).collect();
                if want != got {
                    errors.push(format!("strict: expected kinds {want:?}, got {got:?}"));
                }
            }
        }
        // The engine is symmetric: swapping the versions swaps the directions
        // (under the strict policy; lenient defaults are one-way).
        if policy == Policy::Lenient {
            continue;
        }
        if let Ok(swapped) = diff(new, old, policy) {
            let back = !swapped.iter().any(|c| c.breaks == Breaks::Readers);
            let fwd = !swapped.iter().any(|c| c.breaks == Breaks::Writers);
            if (back, fwd) != (got.forward, got.backward) {
                errors.push(format!(
                    "{policy}: swapping old and new does not swap the verdict"
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[test]
fn corpus_pairs() {
    let dir = corpus_dir().join("pairs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let filter = std::env::var("CORPUS_FILTER").unwrap_or_default();
    let mut total = 0;
    let mut names = BTreeSet::new();
    let mut failures = Vec::new();
    for file in &files {
        let cases = read_json(file);
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("?")
            .to_string();
        for case in cases
            .as_array()
            .unwrap_or_else(|| panic!("{}: not an array", file.display()))
        {
            let name = format!("{stem}/{}", case["name"].as_str().unwrap_or("<unnamed>"));
            if !names.insert(name.clone()) {
                failures.push(format!("{name}: duplicate case name"));
            }
            if !name.contains(&filter) {
                continue;
            }
            total += 1;
            if let Err(errors) = run_case(case) {
                for e in errors {
                    failures.push(format!("{name}: {e}"));
                }
            }
        }
    }
    let failed: BTreeSet<&str> = failures
        .iter()
        .filter_map(|f| f.split(": ").next())
        .collect();
    println!(
        "compat corpus: {total} cases, {} passed",
        total - failed.len()
    );
    if !failures.is_empty() {
        panic!(
            "{} corpus failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    if filter.is_empty() {
        assert!(
            total >= 200,
            "the corpus must hold at least 200 cases, found {total}"
        );
    }
}

#[test]
fn corpus_histories() {
    let cases = read_json(&corpus_dir().join("histories.json"));
    let mut failures = Vec::new();
    let mut total = 0;
    for case in cases
        .as_array()
        .unwrap_or_else(|| panic!("histories.json: not an array"))
    {
        total += 1;
        let name = case["name"].as_str().unwrap_or("<unnamed>");
        let policy: Policy = case["policy"]
            .as_str()
            .unwrap_or("strict")
            .parse()
            .unwrap_or_default();
        let versions: Vec<(u32, &Value)> = case["versions"]
            .as_array()
            .map(|a| a.iter().zip(1u32..).map(|(v, i)| (i, v)).collect())
            .unwrap_or_default();
        let Some(expect) = case["expect"].as_object() else {
            failures.push(format!("{name}: no expect"));
            continue;
        };
        for (mode, want) in expect {
            let Ok(mode) = mode.parse::<Mode>() else {
                failures.push(format!("{name}: bad mode {mode}"));
                continue;
            };
            match check_versions(&versions, mode, policy) {
                Ok(f) => {
                    if Some(f.is_empty()) != want.as_bool() {
                        let pairs: Vec<String> = f
                            .iter()
                            .map(|f| {
                                format!(
                                    "v{}->v{} {}",
                                    f.old_version,
                                    f.new_version,
                                    f.change.kind.as_str()
                                )
                            })
                            .collect();
                        failures.push(format!(
                            "{name}: {mode}: expected compatible={want}, findings {pairs:?}"
                        ));
                    }
                }
                Err(e) => failures.push(format!("{name}: {mode}: {e}")),
            }
        }
    }
    println!("compat histories: {total} cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unresolvable_and_non_local_refs_are_errors() {
    use tidings_codegen::compat::CompatError;
    let ok = serde_json::json!({"type": "string"});
    let missing = serde_json::json!({"properties": {"a": {"$ref": "#/$defs/nope"}}});
    match diff(&ok, &missing, Policy::Strict) {
        Err(CompatError::UnresolvableRef {
            side,
            at,
            reference,
        }) => {
            assert_eq!(
                (side, at.as_str(), reference.as_str()),
                ("new", "/properties/a", "#/$defs/nope")
            );
        }
        other => panic!("expected UnresolvableRef, got {other:?}"),
    }
    let remote = serde_json::json!({"$ref": "common.json#/$defs/Id"});
    assert!(matches!(
        diff(&remote, &ok, Policy::Strict),
        Err(CompatError::NonLocalRef { side: "old", .. })
    ));
    let looping = serde_json::json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"});
    assert!(matches!(
        diff(&looping, &ok, Policy::Strict),
        Err(CompatError::RefLoop { .. })
    ));
    assert!(matches!(
        diff(&serde_json::json!(3), &ok, Policy::Strict),
        Err(CompatError::InvalidSchema { .. })
    ));
}

#[test]
fn malformed_keywords_never_panic() {
    let weird = [
        serde_json::json!({"type": 5, "maxLength": "x", "minimum": [], "multipleOf": 0}),
        serde_json::json!({"required": "a", "properties": [], "additionalProperties": 3}),
        serde_json::json!({"items": 3, "prefixItems": {}, "minItems": -1, "uniqueItems": "yes"}),
        serde_json::json!({"enum": "x", "const": null, "anyOf": {}, "oneOf": [3], "allOf": [null]}),
        serde_json::json!({"not": 1, "dependentRequired": {"a": "b"}, "dependencies": [1]}),
        serde_json::json!({"patternProperties": {"([": {"type": "string"}}, "pattern": "(["}),
        serde_json::json!({"$ref": 5}),
        serde_json::json!({"$ref": "#/%zz"}),
        serde_json::json!({"maxLength": 1e300, "maximum": -1e308, "multipleOf": 1e-300}),
        serde_json::json!({"anyOf": [], "allOf": [], "minProperties": 18446744073709551615u64}),
        serde_json::json!({"type": "array", "maxItems": 18446744073709551615u64, "minItems": 18446744073709551615u64}),
        serde_json::json!({"type": "string", "maxLength": 18446744073709551615u64, "minLength": 18446744073709551615u64}),
        serde_json::json!({"type": "object", "maxProperties": 18446744073709551615u64, "required": ["a", 1]}),
        serde_json::json!(false),
        serde_json::json!({}),
    ];
    for a in &weird {
        for b in &weird {
            for policy in [Policy::Strict, Policy::Lenient] {
                // Either result is fine; reaching here without a panic is the point.
                let _ = diff(a, b, policy);
            }
        }
    }
}

#[test]
fn deep_and_wide_schemas_terminate() {
    // Chains of nested objects that differ at the bottom: 200 levels compare,
    // 400 levels are refused with an error (not a stack overflow).
    let chain = |levels: usize, leaf: &str| {
        let mut v = serde_json::json!({ "type": leaf });
        for _ in 0..levels {
            v = serde_json::json!({"type": "object", "properties": {"x": v}});
        }
        v
    };
    let changes = diff(
        &chain(200, "integer"),
        &chain(200, "number"),
        Policy::Strict,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(matches!(
        diff(
            &chain(400, "integer"),
            &chain(400, "number"),
            Policy::Strict
        ),
        Err(tidings_codegen::compat::CompatError::TooDeep(_))
    ));
    let mut defs = serde_json::Map::new();
    for i in 0..8 {
        let props: serde_json::Map<String, Value> = (0..8)
            .map(|j| {
                (
                    format!("p{j}"),
                    serde_json::json!({"$ref": format!("#/$defs/d{j}")}),
                )
            })
            .collect();
        defs.insert(
            format!("d{i}"),
            serde_json::json!({"type": "object", "properties": props}),
        );
    }
    let web = serde_json::json!({"$defs": defs, "$ref": "#/$defs/d0"});
    let mut changed = web.clone();
    changed["$defs"]["d7"]["required"] = serde_json::json!(["p0"]);
    let changes = diff(&web, &changed, Policy::Strict).unwrap_or_else(|e| panic!("{e}"));
    assert!(changes
        .iter()
        .any(|c| c.kind.as_str() == "required_property_added"));
}

#[test]
fn findings_name_the_versions_compared() {
    let v1 = serde_json::json!({"type": "string", "maxLength": 10});
    let v2 = serde_json::json!({"type": "string", "maxLength": 10});
    let v3 = serde_json::json!({"type": "string", "maxLength": 5});
    let versions = [(1, &v1), (2, &v2), (3, &v3)];
    let plain =
        check_versions(&versions, Mode::Backward, Policy::Strict).unwrap_or_else(|e| panic!("{e}"));
    let pairs: Vec<(u32, u32)> = plain
        .iter()
        .map(|f| (f.old_version, f.new_version))
        .collect();
    assert_eq!(pairs, vec![(2, 3)]);
    let transitive = check_versions(&versions, Mode::BackwardTransitive, Policy::Strict)
        .unwrap_or_else(|e| panic!("{e}"));
    let pairs: Vec<(u32, u32)> = transitive
        .iter()
        .map(|f| (f.old_version, f.new_version))
        .collect();
    assert_eq!(pairs, vec![(1, 3), (2, 3)]);
    let json = serde_json::to_value(&transitive[0]).unwrap_or_default();
    assert_eq!(json["change"]["kind"], "max_length_decreased");
    assert_eq!(json["change"]["breaks"], "readers");
    assert_eq!(json["change"]["example"], serde_json::json!("aaaaaaaaaa"));
}

/// A tiny deterministic generator (no extra dependencies).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next()).unwrap_or(0) % n.max(1)
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())].clone()
    }
}

fn random_schema(r: &mut Lcg, depth: usize) -> Value {
    random_schema_at(r, depth, false)
}

/// `refs`: whether this position consumes part of the document (a property,
/// an item), where a recursive `$ref` is meaningful. Left recursion
/// (`anyOf: [{"$ref": "#"}]`) is degenerate and left out.
fn random_schema_at(r: &mut Lcg, depth: usize, refs: bool) -> Value {
    use serde_json::json;
    if r.chance(5) {
        return json!(r.chance(50));
    }
    if refs && depth >= 1 && r.chance(8) {
        return json!({"$ref": r.pick(&["#/$defs/d", "#/$defs/d", "#"])});
    }
    let mut m = serde_json::Map::new();
    if depth == 0 && r.chance(50) {
        m.insert("$defs".into(), json!({"d": random_schema_at(r, 2, false)}));
    }
    let kinds = [
        "string", "integer", "number", "null", "boolean", "object", "array",
    ];
    let shape = if depth >= 2 { r.below(5) } else { r.below(7) };
    if r.chance(85) {
        let t = if r.chance(20) {
            json!([r.pick(&kinds), r.pick(&kinds)])
        } else {
            json!(kinds[shape.min(6)])
        };
        m.insert("type".into(), t);
    }
    match shape {
        0 => {
            if r.chance(40) {
                m.insert("minLength".into(), json!(r.below(4)));
            }
            if r.chance(40) {
                m.insert("maxLength".into(), json!(r.below(6)));
            }
            if r.chance(15) {
                m.insert(
                    "pattern".into(),
                    json!(r.pick(&["^a", "^[a-z]+$", "^[0-9]*$"])),
                );
            }
            if r.chance(10) {
                m.insert("format".into(), json!(r.pick(&["email", "date"])));
            }
        }
        1 | 2 => {
            for k in ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"] {
                if r.chance(25) {
                    m.insert(k.into(), json!(r.pick(&[-1.0, 0.0, 0.5, 1.0, 2.0, 10.0])));
                }
            }
            if r.chance(20) {
                m.insert("multipleOf".into(), json!(r.pick(&[0.5, 1.0, 2.0, 3.0])));
            }
        }
        3 | 4 => {
            if r.chance(10) {
                m.insert(
                    "const".into(),
                    r.pick(&[json!("a"), json!(1), json!(null), json!({"a": 1})]),
                );
            }
            if r.chance(30) {
                let pool = [
                    json!("a"),
                    json!(1),
                    json!(null),
                    json!(true),
                    json!("b"),
                    json!(2.5),
                ];
                let e: Vec<Value> = (0..=r.below(3)).map(|_| r.pick(&pool)).collect();
                m.insert("enum".into(), Value::Array(e));
            }
        }
        5 => {
            let mut props = serde_json::Map::new();
            for name in ["a", "b", "c"] {
                if r.chance(60) {
                    props.insert(name.into(), random_schema_at(r, depth + 1, true));
                }
            }
            let req: Vec<Value> = ["a", "b"]
                .iter()
                .filter(|_| r.chance(30))
                .map(|n| json!(n))
                .collect();
            m.insert("properties".into(), Value::Object(props));
            if !req.is_empty() {
                m.insert("required".into(), Value::Array(req));
            }
            match r.below(4) {
                0 => {
                    m.insert("additionalProperties".into(), json!(false));
                }
                1 => {
                    m.insert(
                        "additionalProperties".into(),
                        random_schema_at(r, depth + 1, true),
                    );
                }
                _ => {}
            }
            if r.chance(10) {
                m.insert("maxProperties".into(), json!(r.below(3)));
            }
            if r.chance(20) {
                m.insert(
                    "patternProperties".into(),
                    json!({"^x": random_schema(r, depth + 1)}),
                );
            }
            if r.chance(15) {
                m.insert(
                    "dependentRequired".into(),
                    json!({"a": [r.pick(&["b", "c"])]}),
                );
            }
            if r.chance(10) {
                m.insert(
                    "dependentSchemas".into(),
                    json!({"b": random_schema(r, depth + 1)}),
                );
            }
            if r.chance(10) {
                m.insert("minProperties".into(), json!(r.below(3)));
            }
            if r.chance(12) {
                let names = r.pick(&[
                    json!({"maxLength": 1}),
                    json!({"maxLength": 2}),
                    json!({"pattern": "^[a-c]+$"}),
                    json!({"type": "string", "minLength": 1}),
                ]);
                m.insert("propertyNames".into(), names);
            }
            if r.chance(15) {
                m.remove("additionalProperties");
                let rest = if r.chance(50) {
                    json!(false)
                } else {
                    random_schema_at(r, depth + 1, true)
                };
                m.insert("unevaluatedProperties".into(), rest);
                if r.chance(40) {
                    m.insert(
                        "allOf".into(),
                        json!([{"properties": {"d": random_schema(r, depth + 1)}}]),
                    );
                }
            }
            if r.chance(12) {
                let then = json!({"required": [r.pick(&["b", "c"])]});
                m.insert(
                    "if".into(),
                    json!({"properties": {"a": {"const": r.pick(&[json!("a"), json!(1)])}}, "required": ["a"]}),
                );
                if r.chance(70) {
                    m.insert("then".into(), then);
                }
                if r.chance(40) {
                    m.insert("else".into(), random_schema(r, depth + 1));
                }
            }
        }
        _ => {
            if r.chance(25) {
                m.insert(
                    "prefixItems".into(),
                    json!([random_schema_at(r, depth + 1, true)]),
                );
            }
            m.insert("items".into(), random_schema_at(r, depth + 1, true));
            if r.chance(30) {
                m.insert("maxItems".into(), json!(r.below(3)));
            }
            if r.chance(20) {
                m.insert("minItems".into(), json!(r.below(2)));
            }
            if r.chance(15) {
                m.insert("uniqueItems".into(), json!(true));
            }
            if r.chance(15) {
                m.insert("contains".into(), random_schema(r, depth + 1));
                if r.chance(40) {
                    m.insert("minContains".into(), json!(r.below(3)));
                }
                if r.chance(30) {
                    m.insert("maxContains".into(), json!(r.below(3)));
                }
            }
            if r.chance(15) {
                m.remove("items");
                m.insert(
                    "unevaluatedItems".into(),
                    random_schema_at(r, depth + 1, true),
                );
            }
        }
    }
    if depth < 2 && r.chance(8) {
        m.insert(
            "anyOf".into(),
            json!([random_schema(r, depth + 1), random_schema(r, depth + 1)]),
        );
    }
    if depth < 2 && r.chance(5) {
        m.insert("not".into(), random_schema(r, depth + 1));
    }
    if depth < 2 && r.chance(5) {
        m.insert(
            "oneOf".into(),
            json!([random_schema(r, depth + 1), random_schema(r, depth + 1)]),
        );
    }
    Value::Object(m)
}

/// Mutates a schema a little, so that most pairs are related.
fn mutate(r: &mut Lcg, v: &Value, depth: usize) -> Value {
    if r.chance(15) {
        return random_schema(r, depth);
    }
    match v {
        Value::Object(m) => {
            let mut m = m.clone();
            let keys: Vec<String> = m.keys().cloned().collect();
            if !keys.is_empty() && r.chance(40) {
                let k = r.pick(&keys);
                m.remove(&k);
            }
            let fresh = random_schema(r, depth);
            if let Value::Object(f) = fresh {
                let fk: Vec<String> = f.keys().cloned().collect();
                if !fk.is_empty() && r.chance(50) {
                    let k = r.pick(&fk);
                    if let Some(x) = f.get(&k) {
                        m.insert(k, x.clone());
                    }
                }
            }
            if let Some(Value::Object(props)) = m.get("properties").cloned() {
                let mut props = props;
                for (_, p) in props.iter_mut() {
                    if r.chance(40) {
                        *p = mutate(r, p, depth + 1);
                    }
                }
                m.insert("properties".into(), Value::Object(props));
            }
            Value::Object(m)
        }
        other => other.clone(),
    }
}

fn documents(r: &mut Lcg) -> Vec<Value> {
    use serde_json::json;
    let scalars = [
        json!(null),
        json!(true),
        json!(0),
        json!(1),
        json!(2),
        json!(-1),
        json!(0.5),
        json!(10),
        json!(3),
        json!(""),
        json!("a"),
        json!("ab"),
        json!("abcdef"),
        json!("12"),
        json!("b"),
        json!(2.5),
        json!("user@example.com"),
        json!("2024-01-02"),
    ];
    let mut out: Vec<Value> = scalars.to_vec();
    for _ in 0..40 {
        let mut m = serde_json::Map::new();
        for name in ["a", "b", "c", "d", "x1"] {
            if r.chance(50) {
                let v = if r.chance(20) {
                    json!([r.pick(&scalars)])
                } else {
                    r.pick(&scalars)
                };
                m.insert(name.into(), v);
            }
        }
        out.push(Value::Object(m));
        let len = r.below(4);
        let a: Vec<Value> = (0..len).map(|_| r.pick(&scalars)).collect();
        out.push(Value::Array(a));
    }
    out.push(json!(["a", "a"]));
    out.push(json!([1, 1]));
    out
}

/// A document guided by `schema` (probably, not certainly, accepted by it):
/// declared properties and items with values from their own subschemas,
/// some undeclared names, items for `contains`, a random `anyOf` branch.
fn sample(r: &mut Lcg, schema: &Value, root: &Value, depth: usize) -> Value {
    use serde_json::json;
    let scalars = [
        json!(null),
        json!(true),
        json!(0),
        json!(1),
        json!(2),
        json!(-1),
        json!(0.5),
        json!(10),
        json!(""),
        json!("a"),
        json!("b"),
        json!("ab"),
        json!("abc"),
        json!("abcdef"),
        json!("A"),
        json!("12"),
        json!("user@example.com"),
        json!("2024-01-02"),
    ];
    let Some(m) = schema.as_object() else {
        return r.pick(&scalars);
    };
    if depth > 6 {
        return r.pick(&scalars);
    }
    if let Some(target) = m.get("$ref").and_then(Value::as_str) {
        let ptr = target.trim_start_matches('#');
        if let Some(t) = root.pointer(ptr) {
            return sample(r, t, root, depth + 1);
        }
    }
    if let Some(c) = m.get("const") {
        return c.clone();
    }
    if let Some(Value::Array(e)) = m.get("enum") {
        if !e.is_empty() && r.chance(80) {
            return r.pick(e);
        }
    }
    for kw in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = m.get(kw) {
            if !branches.is_empty() && r.chance(50) {
                let b = r.pick(branches);
                return sample(r, &b, root, depth + 1);
            }
        }
    }
    let types: Vec<String> = match m.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => ["object", "array", "string", "integer", "null"]
            .iter()
            .map(|s| (*s).to_string())
            .collect(),
    };
    let t = if types.is_empty() {
        "null".to_string()
    } else {
        r.pick(&types)
    };
    match t.as_str() {
        "object" => {
            let mut out = serde_json::Map::new();
            let required: Vec<String> = m
                .get("required")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            let mut declared: Vec<(String, Value)> = Vec::new();
            for key in ["properties"] {
                if let Some(Value::Object(p)) = m.get(key) {
                    declared.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
            if let Some(Value::Array(all)) = m.get("allOf") {
                for sub in all {
                    if let Some(Value::Object(p)) = sub.get("properties") {
                        declared.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                }
            }
            for (name, s) in declared {
                if required.contains(&name) || r.chance(60) {
                    out.insert(name, sample(r, &s, root, depth + 1));
                }
            }
            for name in required {
                if !out.contains_key(&name) {
                    let v = r.pick(&scalars);
                    out.insert(name, v);
                }
            }
            let rest = m
                .get("additionalProperties")
                .or_else(|| m.get("unevaluatedProperties"))
                .cloned()
                .unwrap_or(Value::Bool(true));
            for name in ["x1", "d", "zz", "b"] {
                if !out.contains_key(name) && r.chance(20) {
                    let s = if name == "x1" {
                        m.get("patternProperties")
                            .and_then(|p| p.get("^x"))
                            .cloned()
                            .unwrap_or_else(|| rest.clone())
                    } else {
                        rest.clone()
                    };
                    out.insert(name.into(), sample(r, &s, root, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let prefix: Vec<Value> = m
                .get("prefixItems")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let rest = m
                .get("items")
                .or_else(|| m.get("unevaluatedItems"))
                .cloned()
                .unwrap_or(Value::Bool(true));
            let contains = m.get("contains").cloned();
            let len = r.below(5);
            let mut out = Vec::new();
            for i in 0..len {
                let s = match &contains {
                    Some(c) if r.chance(40) => c.clone(),
                    _ => prefix.get(i).cloned().unwrap_or_else(|| rest.clone()),
                };
                out.push(sample(r, &s, root, depth + 1));
            }
            Value::Array(out)
        }
        "string" => {
            let min = m.get("minLength").and_then(Value::as_u64).unwrap_or(0);
            let max = m.get("maxLength").and_then(Value::as_u64).unwrap_or(6);
            if r.chance(60) && min <= max {
                let len = usize::try_from(min).unwrap_or(0)
                    + r.below(usize::try_from(max - min + 1).unwrap_or(1));
                Value::String("abcdefgh".chars().take(len).collect())
            } else {
                r.pick(&scalars[8..])
            }
        }
        "integer" | "number" => r.pick(&[
            json!(0),
            json!(1),
            json!(2),
            json!(-1),
            json!(3),
            json!(10),
            json!(0.5),
            json!(2.5),
        ]),
        "boolean" => json!(r.chance(50)),
        _ => Value::Null,
    }
}

/// Random schema pairs (including `unevaluated*`, `contains`,
/// `propertyNames` and `if`/`then`/`else`): whenever a document separates
/// the two versions, the engine must have reported a change in that
/// direction (strict policy), and every example it reports must be proven
/// by the validator. The documents are a fixed pool plus documents
/// generated from each of the two schemas. This guards against verdicts of
/// "compatible" that are wrong.
#[test]
fn random_pairs_never_miss_a_separating_document() {
    // COMPAT_FUZZ_SEED / COMPAT_FUZZ_ROUNDS explore further than the default run.
    let seed = std::env::var("COMPAT_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1511);
    let rounds: usize = std::env::var("COMPAT_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(800);
    let mut r = Lcg(seed);
    let mut misses = Vec::new();
    let (mut compared, mut separated, mut flagged) = (0, 0, 0);
    for round in 0..rounds {
        let old = random_schema(&mut r, 0);
        let new = if r.chance(80) {
            mutate(&mut r, &old, 0)
        } else {
            random_schema(&mut r, 0)
        };
        let (Ok(ov), Ok(nv)) = (validator(&old), validator(&new)) else {
            continue;
        };
        let changes = match diff(&old, &new, Policy::Strict) {
            Ok(c) => c,
            Err(e) => {
                misses.push(format!(
                    "round {round}: diff failed: {e}\nold {old}\nnew {new}"
                ));
                continue;
            }
        };
        let readers = changes.iter().any(|c| c.breaks == Breaks::Readers);
        let writers = changes.iter().any(|c| c.breaks == Breaks::Writers);
        if let Ok(swapped) = diff(&new, &old, Policy::Strict) {
            let back = swapped.iter().any(|c| c.breaks == Breaks::Readers);
            let fwd = swapped.iter().any(|c| c.breaks == Breaks::Writers);
            if (back, fwd) != (writers, readers) {
                misses.push(format!(
                    "round {round}: swapping the versions does not swap the directions\nold {old}\nnew {new}"
                ));
            }
        }
        compared += 1;
        flagged += usize::from(readers || writers);
        let mut docs = documents(&mut r);
        for schema in [&old, &new] {
            for _ in 0..24 {
                docs.push(sample(&mut r, schema, schema, 0));
            }
        }
        separated += usize::from(docs.iter().any(|d| ov.is_valid(d) != nv.is_valid(d)));
        for doc in docs {
            let (o, n) = (ov.is_valid(&doc), nv.is_valid(&doc));
            if o && !n && !readers {
                misses.push(format!("round {round}: {doc} old-valid, new-invalid, no readers change\nold {old}\nnew {new}"));
                break;
            }
            if n && !o && !writers {
                misses.push(format!("round {round}: {doc} new-valid, old-invalid, no writers change\nold {old}\nnew {new}"));
                break;
            }
        }
        for e in check_examples(&changes, &old, &new, true) {
            misses.push(format!("round {round}: {e}\nold {old}\nnew {new}"));
        }
    }
    println!(
        "random pairs: {compared} compared, {flagged} with breaking changes, {separated} separated by a sample document"
    );
    assert!(
        compared * 4 > rounds * 3,
        "too few comparable pairs: {compared}"
    );
    assert!(
        misses.is_empty(),
        "{} misses:\n{}",
        misses.len(),
        misses.join("\n\n")
    );
}
