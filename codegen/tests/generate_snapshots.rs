//! Snapshot tests of generated Rust for representative registries: one
//! snapshot per registry in `tests/snapshots/generate_*.rs`. Refresh with
//! `UPDATE_SNAPSHOTS=1 cargo test -p tidings-codegen --test generate_snapshots`
//! and review the diff.
//!
//! Together the registries use every keyword the lint allows that changes
//! the generated type: objects, nested objects, arrays, enums, `const`,
//! `oneOf`/`anyOf`, formats (`uuid`, `date-time`, `date`, `email`),
//! integer and number bounds, string lengths and patterns, nullable
//! types, local `$defs`/`$ref` and cross-file refs into `common/`, and
//! version histories (generated upcasts, JSON upcasts, hand-written ones).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tidings_codegen::generate::{generate, GenerateError, Generated, Options};
use tidings_codegen::registry::Source;

const CONFIG: &str = r#"
shared_dirs = ["common"]
[compatibility]
mode = "FULL_TRANSITIVE"
policy = "lenient"
[streams.AUTH_EVENTS]
subjects = ["auth.>"]
[streams.CATALOG_EVENTS]
subjects = ["catalog.>"]
"#;

/// A registry from `(path, schema)` pairs plus `common/ids.json`.
fn registry(files: &[(&str, Value)]) -> Source {
    let mut map = BTreeMap::new();
    map.insert("tidings.toml".to_string(), CONFIG.to_string());
    map.insert(
        "common/ids.json".to_string(),
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$defs": {
                "UserId": {"description": "User id.", "type": "string", "format": "uuid"},
                "Sku": {"description": "Stock keeping unit.", "type": "string", "pattern": "^[A-Z0-9-]{1,64}$"},
                "Money": {
                    "description": "An amount in a currency.",
                    "type": "object",
                    "properties": {
                        "amount": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$"},
                        "currency": {"type": "string", "minLength": 3, "maxLength": 3}
                    },
                    "required": ["amount", "currency"]
                }
            }
        })
        .to_string(),
    );
    for (p, v) in files {
        map.insert((*p).to_string(), serde_json::to_string_pretty(v).unwrap());
    }
    Source {
        files: map,
        ..Default::default()
    }
}

/// An event schema for `ty` version `v` with `body` merged in.
fn event(ty: &str, v: u32, body: Value) -> Value {
    let service = ty.split('.').next().unwrap();
    let mut s = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("https://schemas.example/{service}/{}.v{v}.json", ty.split_once('.').unwrap().1),
        "description": format!("The {ty} event, version {v}."),
        "x-event-type": ty,
        "x-schema-version": v,
        "x-stream": format!("{}_EVENTS", service.to_ascii_uppercase()),
        "type": "object"
    });
    for (k, val) in body.as_object().unwrap() {
        s[k] = val.clone();
    }
    s
}

/// Where the snapshots live: `generate_<name>.rs` and, under
/// `registries/<name>/`, the registry each was generated from.
fn snapshots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

/// Compares `actual` with the file at `path` (or writes it with
/// `UPDATE_SNAPSHOTS=1`), naming the first differing line.
fn compare(path: &Path, actual: &str) {
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path)
        .unwrap_or_else(|_| panic!("{} is missing: run with UPDATE_SNAPSHOTS=1", path.display()));
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs at line {}:\n expected: {:?}\n      got: {:?}\nrun with UPDATE_SNAPSHOTS=1 and review the diff",
            path.display(),
            line + 1,
            expected.lines().nth(line).unwrap_or_default(),
            actual.lines().nth(line).unwrap_or_default()
        );
    }
}

/// Generates the registry of `files` as snapshot `name`: the code is
/// compared with `tests/snapshots/generate_<name>.rs` and the registry with
/// `tests/snapshots/registries/<name>/`. The code names its schema files
/// relative to the workspace root, where `tests/generated_snapshots.rs`
/// (package `events`) compiles every snapshot and round-trips its examples.
fn gen(name: &str, files: &[(&str, Value)]) -> Generated {
    gen_source(name, registry(files))
}

/// [`gen`] for a registry already assembled.
fn gen_source(name: &str, source: Source) -> Generated {
    let dir = snapshots_dir().join("registries").join(name);
    for (p, text) in &source.files {
        compare(&dir.join(p), text);
    }
    let options = Options {
        schemas_from_manifest: format!("codegen/tests/snapshots/registries/{name}"),
    };
    let g = generate(&source, &options).unwrap_or_else(|e| panic!("{e}"));
    compare(
        &snapshots_dir().join(format!("generate_{name}.rs")),
        &g.code,
    );
    g
}

fn gen_err(files: &[(&str, Value)]) -> GenerateError {
    match generate(&registry(files), &Options::default()) {
        Ok(g) => panic!("expected an error, got:\n{}", g.code),
        Err(e) => e,
    }
}

#[test]
fn objects_arrays_formats_bounds() {
    let g = gen(
        "objects",
        &[(
            "auth/user.registered.v1.json",
            event(
                "auth.user.registered",
                1,
                json!({
                    "x-entity-key": "user_id",
                    "properties": {
                        "user_id": {"$ref": "../common/ids.json#/$defs/UserId"},
                        "email": {"description": "Login address.", "type": "string", "format": "email"},
                        "registered_at": {"type": "string", "format": "date-time"},
                        "birthday": {"type": "string", "format": "date"},
                        "age": {"type": "integer", "minimum": 0, "maximum": 150},
                        "logins": {"type": "integer", "minimum": 1},
                        "score": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                        "verified": {"type": "boolean"},
                        "nickname": {"type": ["string", "null"], "maxLength": 40},
                        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true, "maxItems": 10},
                        "address": {
                            "description": "Postal address.",
                            "type": "object",
                            "properties": {
                                "street": {"type": "string"},
                                "city": {"type": "string", "minLength": 1},
                                "geo": {
                                    "type": "object",
                                    "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
                                    "required": ["lat", "lon"]
                                }
                            },
                            "required": ["city"]
                        },
                        "devices": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"id": {"type": "string", "format": "uuid"}, "kind": {"enum": ["phone", "laptop"]}},
                                "required": ["id"]
                            }
                        },
                        "plan": {"description": "Billing plan.", "type": "string", "enum": ["free", "team", "enterprise"]},
                        "source": {"const": "signup-form"}
                    },
                    "required": ["user_id", "email", "registered_at", "verified", "plan"],
                    "examples": [{"user_id": "0190f3a5-1111-7abc-8def-000000000001", "email": "a@example.com", "registered_at": "2025-01-01T00:00:00Z", "verified": true, "plan": "free"}]
                }),
            ),
        )],
    );
    assert_eq!((g.event_types, g.versions), (1, 1));
    assert!(g.code.contains("pub struct UserRegisteredV1"));
    assert!(g
        .code
        .contains("pub type UserRegistered = UserRegisteredV1;"));
}

#[test]
fn one_of_any_of_and_local_defs() {
    let g = gen(
        "one_of",
        &[(
            "catalog/price.changed.v1.json",
            event(
                "catalog.price.changed",
                1,
                json!({
                    "$defs": {
                        "Percent": {"description": "A percentage.", "type": "number", "minimum": 0, "maximum": 100},
                        "Fixed": {
                            "type": "object",
                            "properties": {"kind": {"const": "fixed"}, "price": {"$ref": "../common/ids.json#/$defs/Money"}},
                            "required": ["kind", "price"]
                        },
                        "Discount": {
                            "type": "object",
                            "properties": {"kind": {"const": "discount"}, "percent": {"$ref": "#/$defs/Percent"}},
                            "required": ["kind", "percent"]
                        }
                    },
                    "properties": {
                        "sku": {"$ref": "../common/ids.json#/$defs/Sku"},
                        "rule": {"description": "How the price is set.", "oneOf": [{"$ref": "#/$defs/Fixed"}, {"$ref": "#/$defs/Discount"}]},
                        "note": {"anyOf": [{"type": "string", "maxLength": 200}, {"type": "integer"}]}
                    },
                    "required": ["sku", "rule"],
                    "examples": [
                        {"sku": "A-1", "rule": {"kind": "fixed", "price": {"amount": "9.50", "currency": "EUR"}}},
                        {"sku": "A-1", "rule": {"kind": "discount", "percent": 12.5}, "note": 7}
                    ]
                }),
            ),
        )],
    );
    assert!(g.code.contains("pub struct Money"));
    // A `oneOf` of `$ref`s told apart by a `const` member is read by that
    // member (a tagged enum), not by trying each variant in turn.
    let rule = item(
        &g.code,
        "impl<'de> ::serde::Deserialize<'de> for PriceChangedV1Rule",
    );
    assert!(rule.contains("\"kind\""), "{rule}");
    assert!(!item(&g.code, "pub enum PriceChangedV1Rule").contains("Deserialize"));
    // Its variants no longer need `deny_unknown_fields` to be told apart.
    assert!(!g.code.contains("deny_unknown_fields"), "{}", g.code);
}

/// The line containing `start` with the attribute and doc lines above it.
fn with_attrs<'c>(code: &'c str, start: &str) -> &'c str {
    let Some(at) = code.find(start) else {
        panic!("no `{start}` in:\n{code}")
    };
    let mut from = code[..at].rfind('\n').map_or(0, |i| i + 1);
    while from > 0 {
        let prev = code[..from - 1].rfind('\n').map_or(0, |i| i + 1);
        let line = code[prev..from - 1].trim_end();
        if line.ends_with('}') || line.ends_with(';') || line.ends_with('{') {
            break;
        }
        from = prev;
    }
    let end = code[at..].find('\n').map_or(code.len(), |e| at + e);
    &code[from..end]
}

/// The text of the item starting at the line containing `start`, up to the
/// next line with the same indentation that closes it.
fn item<'c>(code: &'c str, start: &str) -> &'c str {
    let Some(at) = code.find(start) else {
        panic!("no `{start}` in:\n{code}")
    };
    let line_start = code[..at].rfind('\n').map_or(0, |i| i + 1);
    let indent = &code[line_start..at];
    let close = format!("\n{indent}}}");
    let end = code[at..]
        .find(&close)
        .map_or(code.len(), |e| at + e + close.len());
    &code[line_start..end]
}

/// `code` without its `pub mod builder { .. }` items.
fn without_builders(code: &str) -> String {
    let mut rest = code.to_string();
    while rest.contains("pub mod builder {") {
        let builders = item(&rest, "pub mod builder {").to_string();
        rest = rest.replacen(&builders, "", 1);
    }
    rest
}

#[test]
fn versions_with_generated_upcast() {
    let v1 = json!({
        "properties": {
            "user_id": {"$ref": "../common/ids.json#/$defs/UserId"},
            "role": {"type": "string", "enum": ["admin", "viewer"]},
            "name": {"type": "string", "maxLength": 100},
            "legacy": {"type": "string"}
        },
        "required": ["user_id", "role", "name"]
    });
    let mut v2 = v1.clone();
    v2["properties"]["locale"] = json!({"description": "Added in v2.", "type": "string"});
    v2["properties"]["name"]["description"] = json!("Now documented.");
    v2["properties"].as_object_mut().unwrap().remove("legacy");
    let mut v3 = v2.clone();
    v3["properties"]["labels"] = json!({"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}}}});
    // The documented deprecation step: the generated code that names the
    // deprecated type (upcast, reader, catalog, re-export) must still
    // compile under `-D warnings` (tests/generated_snapshots.rs).
    let mut v1 = v1;
    v1["x-deprecated"] = json!(true);
    v1["examples"] = json!([{"user_id": "0190f3a5-1111-7abc-8def-000000000001", "role": "admin", "name": "Ana", "legacy": "x"}]);
    let g = gen(
        "upcast",
        &[
            (
                "auth/user.created.v1.json",
                event("auth.user.created", 1, v1),
            ),
            (
                "auth/user.created.v2.json",
                event("auth.user.created", 2, v2),
            ),
            (
                "auth/user.created.v3.json",
                event("auth.user.created", 3, v3),
            ),
        ],
    );
    assert_eq!(
        g.upcasts,
        vec![
            ("UserCreatedV1".to_string(), "UserCreatedV2".to_string()),
            ("UserCreatedV2".to_string(), "UserCreatedV3".to_string())
        ]
    );
    // Unchanged inline types are shared by the versions.
    assert!(g.code.contains("pub enum UserCreatedRole"));
    assert!(!g.code.contains("UserCreatedV1Role"));
    assert!(g
        .code
        .contains("impl ::core::convert::From<UserCreatedV1> for UserCreatedV2"));
    assert!(g.code.contains("pub type UserCreated = UserCreatedV3;"));
    assert!(g.code.contains("#[deprecated"));
}

#[test]
fn changed_property_upcasts_through_json_or_by_hand() {
    let v1 = json!({
        "properties": {"sku": {"type": "string", "maxLength": 10}, "qty": {"type": "integer"}},
        "required": ["sku"]
    });
    let mut v2 = v1.clone();
    v2["properties"]["sku"]["maxLength"] = json!(20);
    // FULL_TRANSITIVE (the default): the check proves v2 reads v1 documents.
    let g = gen(
        "reencode",
        &[
            (
                "catalog/stock.counted.v1.json",
                event("catalog.stock.counted", 1, v1.clone()),
            ),
            (
                "catalog/stock.counted.v2.json",
                event("catalog.stock.counted", 2, v2.clone()),
            ),
        ],
    );
    assert!(g.upcasts.is_empty() && g.hand_written.is_empty());
    assert_eq!(g.reencoded.len(), 1, "{:?}", g.reencoded);
    assert!(g.code.contains("upcast::reencode"));

    // Mode NONE: nothing is proven; the user writes the upcast.
    let mut v2_none = v2;
    v2_none["x-compatibility"] = json!("NONE");
    v2_none["required"] = json!(["sku", "qty"]);
    let g = gen(
        "hand_written",
        &[
            (
                "catalog/stock.counted.v1.json",
                event("catalog.stock.counted", 1, v1),
            ),
            (
                "catalog/stock.counted.v2.json",
                event("catalog.stock.counted", 2, v2_none),
            ),
        ],
    );
    assert_eq!(g.hand_written.len(), 1, "{:?}", g.hand_written);
    assert!(g.code.contains("is not generated"));
    // The reason prints Rust types as written, not token by token.
    assert_eq!(
        g.hand_written[0].2,
        "property `qty` has Rust type `Option<i64>` in StockCountedV1 but `i64` in StockCountedV2"
    );
    // Docs say only what is true: `qty` and `sku` have no description
    // (so no doc comment, and an allow for `missing_docs`), and one older
    // version is "version 1", not "versions 1 to 1".
    assert!(!g.code.contains("does not describe"), "{}", g.code);
    assert!(g
        .code
        .contains("#[allow(missing_docs)]\n            pub qty: i64,"));
    assert!(g.code.contains("a payload of version 1 upcast to it"));
    // The reader calls the user's `From` impl through the trait whose
    // error names the impl to write (derive/tests/ui/missing_upcast.rs).
    assert!(g
        .code
        .contains("let value: StockCountedV2 = ::tidings::upcast::UpcastFrom::upcast_from("));
}

/// Shapes of real-world schemas (SchemaStore's JSON Patch, GitHub's
/// webhooks, CloudEvents) that generated readers got wrong, each with valid
/// example documents. `tests/generated.rs` compiles the snapshot and
/// round-trips every example (and random valid documents) through it.
#[test]
fn real_world_shapes() {
    let path = json!({"type": "string"});
    let closed = |op: Value, props: Value, required: Value| {
        let mut p = props;
        p["op"] = op;
        p["path"] = path.clone();
        json!({"type": "object", "additionalProperties": false, "properties": p, "required": required})
    };
    // JSON Patch (RFC 6902): closed variants told apart by a `const` (or
    // one-of-several `enum`) discriminator, `remove` before `move`.
    let patch = event(
        "catalog.document.patched",
        1,
        json!({
            "$defs": {
                "Operation": {
                    "description": "One JSON Patch operation.",
                    "oneOf": [
                        closed(json!({"const": "add"}), json!({"value": {}}), json!(["op", "path", "value"])),
                        closed(json!({"const": "remove"}), json!({}), json!(["op", "path"])),
                        closed(json!({"const": "move"}), json!({"from": {"type": "string"}}), json!(["op", "path", "from"])),
                        closed(json!({"type": "string", "const": "copy"}), json!({"from": {"type": "string"}}), json!(["op", "path", "from"])),
                        closed(json!({"type": "string", "enum": ["replace", "test"]}), json!({"value": {}}), json!(["op", "path", "value"]))
                    ]
                },
                "Target": {
                    "description": "Closed variants told apart by their members only.",
                    "oneOf": [
                        {"type": "object", "additionalProperties": false, "properties": {"id": {"type": "string"}}, "required": ["id"]},
                        {"type": "object", "additionalProperties": false, "properties": {"id": {"type": "string"}, "rev": {"type": "integer"}}, "required": ["id", "rev"]}
                    ]
                }
            },
            "properties": {
                "document": {"$ref": "#/$defs/Target"},
                "patch": {"type": "array", "items": {"$ref": "#/$defs/Operation"}}
            },
            "required": ["document", "patch"],
            "examples": [
                {"document": {"id": "d1"}, "patch": [{"op": "move", "from": "/a", "path": "/b"}]},
                {"document": {"id": "d1", "rev": 7}, "patch": [
                    {"op": "add", "path": "/a", "value": {"x": [1, 2]}},
                    {"op": "remove", "path": "/a"},
                    {"op": "copy", "from": "/b", "path": "/c"},
                    {"op": "replace", "path": "/c", "value": 3},
                    {"op": "test", "path": "/c", "value": null}
                ]}
            ]
        }),
    );
    // GitHub: integers in `type: number` (a run id beyond 2^32).
    let build = event(
        "catalog.build.completed",
        1,
        json!({
            "properties": {
                "run_id": {"type": "number"},
                "duration_s": {"type": "number", "minimum": 0},
                "attempt": {"type": "integer"}
            },
            "required": ["run_id"],
            "examples": [
                {"run_id": 4747967848_u64, "duration_s": 12.5, "attempt": 1},
                {"run_id": 9007199254740993_u64, "duration_s": 3}
            ]
        }),
    );
    // CloudEvents: an open object whose extension attributes are data.
    let envelope = event(
        "auth.envelope.received",
        1,
        json!({
            "properties": {
                "id": {"type": "string"},
                "specversion": {"type": "string"},
                "source": {"type": "string"},
                "type": {"type": "string"},
                "data": {
                    "type": "object",
                    "properties": {"user": {"type": "string"}},
                    "additionalProperties": true
                }
            },
            "required": ["id", "specversion", "source", "type"],
            "additionalProperties": true,
            "examples": [
                {"id": "1", "specversion": "1.0", "source": "/a", "type": "t", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "data": {"user": "u", "tenant": 9}}
            ]
        }),
    );
    // Nullable enums and nullable references; an enum with a default.
    let ticket = event(
        "auth.ticket.updated",
        1,
        json!({
            "$defs": {
                "Ref": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}
            },
            "properties": {
                "status": {"enum": ["open", "closed", null]},
                "priority": {"type": ["string", "null"], "enum": ["low", "high", null]},
                "parent": {"anyOf": [{"$ref": "#/$defs/Ref"}, {"type": "null"}]},
                "level": {"type": "string", "enum": ["normal", "urgent"], "default": "normal"}
            },
            "examples": [
                {"status": "open", "priority": "low", "parent": {"id": "p"}, "level": "urgent"},
                {"status": "closed"},
                {"status": null, "priority": null, "parent": null},
                {}
            ]
        }),
    );
    let g = gen(
        "corpus",
        &[
            ("catalog/document.patched.v1.json", patch),
            ("catalog/build.completed.v1.json", build),
            ("auth/envelope.received.v1.json", envelope),
            ("auth/ticket.updated.v1.json", ticket),
        ],
    );
    assert_eq!(g.event_types, 4);
}

#[test]
fn closed_models_accept_unknown_fields() {
    let g = gen(
        "closed",
        &[(
            "auth/session.opened.v1.json",
            event(
                "auth.session.opened",
                1,
                json!({
                    "additionalProperties": false,
                    "properties": {
                        "user_id": {"$ref": "../common/ids.json#/$defs/UserId"},
                        "device": {"type": "object", "additionalProperties": false, "properties": {"os": {"type": "string"}}}
                    },
                    "required": ["user_id"]
                }),
            ),
        )],
    );
    assert!(!g.code.contains("deny_unknown_fields"), "{}", g.code);
}

/// One Rust type per shared definition (issues 12.6, 19.5): a definition
/// of `common/` is one type in `common`, whatever service or version uses
/// it; a local `$defs` entry used three times is one type; a version that
/// replaces a shared definition with its own gets a distinct type; two
/// shared files defining the same name get the file stem as prefix.
#[test]
fn shared_definitions_are_one_type() {
    let orders = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": {
            "Sku": {"description": "An order line code (not the catalog's SKU).", "type": "string", "maxLength": 12},
            "OrderRef": {
                "description": "An order line and who placed it.",
                "type": "object",
                "properties": {"sku": {"$ref": "#/$defs/Sku"}, "user": {"$ref": "ids.json#/$defs/UserId"}},
                "required": ["sku"]
            }
        }
    });
    // Written as text: the properties are in schema order, not sorted.
    let invited = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://schemas.example/auth/user.invited.v1.json",
  "description": "The auth.user.invited event, version 1.",
  "x-event-type": "auth.user.invited",
  "x-schema-version": 1,
  "x-stream": "AUTH_EVENTS",
  "x-entity-key": "user_id",
  "type": "object",
  "$defs": {
    "Address": {
      "description": "A postal address.",
      "type": "object",
      "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
      "required": ["city"]
    }
  },
  "properties": {
    "user_id": {"$ref": "../common/ids.json#/$defs/UserId"},
    "invited_by": {"$ref": "../common/ids.json#/$defs/UserId"},
    "email": {"type": "string", "format": "email"},
    "source": {"const": "signup-form"},
    "form_rev": {"const": 3},
    "beta": {"const": true},
    "home": {"$ref": "#/$defs/Address"},
    "work": {"$ref": "#/$defs/Address"},
    "previous": {"type": "array", "items": {"$ref": "#/$defs/Address"}}
  },
  "required": ["user_id", "invited_by", "email"],
  "examples": [
    {"user_id": "0190f3a5-1111-7abc-8def-000000000001", "invited_by": "0190f3a5-1111-7abc-8def-000000000002", "email": "a@example.com",
     "source": "signup-form", "form_rev": 3, "beta": true, "home": {"city": "Lyon"}, "previous": [{"street": "Rue 1", "city": "Nice"}]}
  ]
}
"##;
    let price_v1 = event(
        "catalog.price.set",
        1,
        json!({
            "properties": {
                "sku": {"$ref": "../common/ids.json#/$defs/Sku"},
                "line": {"$ref": "../common/orders.json#/$defs/OrderRef"},
                "price": {"$ref": "../common/ids.json#/$defs/Money"},
                "set_by": {"$ref": "../common/ids.json#/$defs/UserId"}
            },
            "required": ["sku", "price", "set_by"],
            "examples": [{"sku": "A-1", "line": {"sku": "L1", "user": "0190f3a5-1111-7abc-8def-000000000002"},
                          "price": {"amount": "9.50", "currency": "EUR"}, "set_by": "0190f3a5-1111-7abc-8def-000000000002"}]
        }),
    );
    // v2 replaces the shared Money with its own (a `precision` added).
    let mut price_v2 = price_v1.clone();
    price_v2["$defs"] = json!({"Money": {
        "description": "An amount in a currency, with its precision.",
        "type": "object",
        "properties": {"amount": {"type": "string"}, "currency": {"type": "string"}, "precision": {"type": "integer"}},
        "required": ["amount", "currency"]
    }});
    price_v2["properties"]["price"] = json!({"$ref": "#/$defs/Money"});
    price_v2["x-schema-version"] = json!(2);
    price_v2["$id"] = json!("https://schemas.example/catalog/price.set.v2.json");
    price_v2["description"] = json!("The catalog.price.set event, version 2.");
    let mut source = registry(&[
        ("common/orders.json", orders),
        ("catalog/price.set.v1.json", price_v1),
        ("catalog/price.set.v2.json", price_v2),
    ]);
    source
        .files
        .insert("auth/user.invited.v1.json".into(), invited.into());
    let g = gen_source("shared", source);
    let code = &g.code;
    // Counted without the builder modules, whose builder types share the
    // names of the types they build.
    let types = without_builders(code);
    let count = |needle: &str| types.matches(needle).count();
    // `common` holds each shared definition once; the event modules use it.
    let common = item(code, "pub mod common {");
    for ty in ["UserId", "Money", "IdsSku", "OrdersSku", "OrderRef"] {
        assert_eq!(
            count(&format!("pub struct {ty} ")) + count(&format!("pub struct {ty}(")),
            1,
            "{ty}:\n{code}"
        );
        assert!(
            common.contains(&format!("pub struct {ty}")),
            "{ty} not in common"
        );
    }
    assert!(!code.contains("pub struct Sku"), "{code}");
    assert_eq!(
        count("pub set_by: super::super::common::UserId,"),
        2,
        "{code}"
    );
    assert!(
        code.contains("pub invited_by: super::super::common::UserId,"),
        "{code}"
    );
    // The entity key (`x-entity-key`) refers to the shared `UserId`: it is
    // that newtype too, which the derive takes as a key through
    // `tidings::EntityKey`.
    assert!(
        code.contains("pub user_id: super::super::common::UserId,"),
        "{code}"
    );
    assert!(
        item(code, "pub mod common {").contains("impl ::tidings::EntityKey for UserId {"),
        "{code}"
    );
    // Scalar newtypes can be map keys and are copied.
    let user_id = with_attrs(common, "pub struct UserId(");
    for d in ["Copy", "Eq", "Hash"] {
        assert!(user_id.contains(d), "UserId lacks {d}: {user_id}");
    }
    // A local `$defs` entry used three times is one type.
    assert_eq!(count("pub struct Address {"), 1, "{code}");
    assert!(!code.contains("Address2"), "{code}");
    // v1 keeps the shared Money; v2's own Money is a distinct, versioned type.
    assert!(
        code.contains("pub price: super::super::common::Money,"),
        "{code}"
    );
    assert!(code.contains("pub price: MoneyV2,"), "{code}");
    // `const`s keep their type.
    let invited = item(code, "pub struct UserInvitedV1 {");
    assert!(!invited.contains("serde_json::Value"), "{invited}");
    // Fields follow the schema's order.
    let order: Vec<&str> = invited
        .lines()
        .skip(1)
        .filter_map(|l| l.trim().strip_prefix("pub "))
        .filter_map(|l| l.split(':').next())
        .collect();
    assert_eq!(
        order,
        [
            "user_id",
            "invited_by",
            "email",
            "source",
            "form_rev",
            "beta",
            "home",
            "work",
            "previous"
        ],
        "{invited}"
    );
}

/// A webhook-like registry: each event file carries its own copies of the
/// same `$defs` (GitHub's `User`, `Repository`), as schemas written
/// without a shared directory do. `push.received` and `issue.opened` have
/// identical `User`/`Repository`/`License`; `star.created` has a `User`
/// with another member, so its `User` and the `Repository` that refers to
/// it are other types.
fn webhook_registry() -> Source {
    let user = json!({
        "description": "A GitHub account.",
        "type": "object",
        "properties": {
            "login": {"type": "string"},
            "id": {"type": "integer"},
            "type": {"type": "string", "enum": ["User", "Bot", "Organization"]},
            "site_admin": {"type": "boolean"}
        },
        "required": ["login", "id", "type"]
    });
    let mut star_user = user.clone();
    star_user["properties"]["email"] = json!({"type": ["string", "null"]});
    let defs = |user: &Value| {
        json!({
            "User": user,
            "License": {
                "type": "object",
                "properties": {"key": {"type": "string"}, "spdx_id": {"type": "string", "maxLength": 64}},
                "required": ["key"]
            },
            "Repository": {
                "description": "A git repository.",
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "full_name": {"type": "string"},
                    "owner": {"$ref": "#/$defs/User"},
                    "license": {"anyOf": [{"$ref": "#/$defs/License"}, {"type": "null"}]},
                    "private": {"type": "boolean"}
                },
                "required": ["id", "full_name", "owner", "private"]
            }
        })
    };
    let octocat = json!({"login": "octocat", "id": 1, "type": "User", "site_admin": false});
    let repo = json!({"id": 1296269, "full_name": "octocat/Hello-World", "owner": octocat,
                      "license": {"key": "mit", "spdx_id": "MIT"}, "private": false});
    let push = event(
        "github.push.received",
        1,
        json!({
            "$defs": defs(&user),
            "properties": {
                "ref": {"type": "string"},
                "pusher": {"$ref": "#/$defs/User"},
                "repository": {"$ref": "#/$defs/Repository"},
                "sender": {"$ref": "#/$defs/User"}
            },
            "required": ["ref", "pusher", "repository", "sender"],
            "examples": [{"ref": "refs/heads/main", "pusher": octocat, "repository": repo, "sender": octocat}]
        }),
    );
    let issue = event(
        "github.issue.opened",
        1,
        json!({
            "$defs": defs(&user),
            "properties": {
                "issue": {
                    "type": "object",
                    "properties": {"number": {"type": "integer"}, "title": {"type": "string"}, "user": {"$ref": "#/$defs/User"}},
                    "required": ["number", "title", "user"]
                },
                "repository": {"$ref": "#/$defs/Repository"},
                "sender": {"$ref": "#/$defs/User"}
            },
            "required": ["issue", "repository", "sender"],
            "examples": [{"issue": {"number": 1347, "title": "Found a bug", "user": octocat}, "repository": repo, "sender": octocat}]
        }),
    );
    let mut star_octocat = octocat.clone();
    star_octocat["email"] = json!("octocat@github.com");
    let mut star_repo = repo.clone();
    star_repo["owner"] = star_octocat.clone();
    let star = event(
        "github.star.created",
        1,
        json!({
            "$defs": defs(&star_user),
            "properties": {
                "starred_at": {"type": "string", "format": "date-time"},
                "repository": {"$ref": "#/$defs/Repository"},
                "sender": {"$ref": "#/$defs/User"}
            },
            "required": ["starred_at", "repository", "sender"],
            "examples": [{"starred_at": "2025-12-09T10:15:00Z", "repository": star_repo, "sender": star_octocat}]
        }),
    );
    let mut source = registry(&[
        ("github/push.received.v1.json", push),
        ("github/issue.opened.v1.json", issue),
        ("github/star.created.v1.json", star),
    ]);
    source.files.insert(
        "tidings.toml".into(),
        format!("{CONFIG}[streams.GITHUB_EVENTS]\nsubjects = [\"github.>\"]\n"),
    );
    source
}

#[test]
fn identical_definitions_of_event_files_are_one_type() {
    let g = gen_source("webhooks", webhook_registry());
    let code = &g.code;
    let types = without_builders(code);
    let count = |needle: &str| types.matches(needle).count();
    // Identical in push and issue: generated once, in `common`; star's
    // differing `User` (and its `Repository`, which refers to it) are its own.
    let common = item(code, "pub mod common {");
    for ty in ["User", "Repository"] {
        assert_eq!(count(&format!("pub struct {ty} {{")), 2, "{ty}:\n{code}");
        assert!(
            common.contains(&format!("pub struct {ty} {{")),
            "{ty} not in common:\n{code}"
        );
    }
    assert_eq!(count("pub struct License {"), 1, "{code}");
    assert!(common.contains("pub struct License {"), "{code}");
    // Each module that uses them re-exports them under their schema name,
    // so `github::push_received::User` is still a path.
    for module in ["pub mod push_received {", "pub mod issue_opened {"] {
        let m = item(code, module);
        for ty in ["User", "Repository", "License"] {
            assert!(
                m.contains(&format!("pub use super::super::common::{ty};")),
                "{module} does not re-export {ty}:\n{m}"
            );
            assert!(!m.contains(&format!("pub struct {ty} ")), "{m}");
        }
        assert!(m.contains("pub sender: super::super::common::User,"), "{m}");
    }
    let star = item(code, "pub mod star_created {");
    assert!(star.contains("pub struct User {"), "{star}");
    assert!(star.contains("pub struct Repository {"), "{star}");
    assert!(
        star.contains("pub email: ::std::option::Option<::std::string::String>,"),
        "{star}"
    );
    // An unrelated event type added to the registry renames nothing.
    let mut more = webhook_registry();
    more.files.insert(
        "github/fork.created.v1.json".into(),
        serde_json::to_string_pretty(&event(
            "github.fork.created",
            1,
            json!({"properties": {"forkee": {"type": "string"}}, "required": ["forkee"]}),
        ))
        .unwrap(),
    );
    let more = generate(&more, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let more_common = item(&more.code, "pub mod common {");
    assert_eq!(
        more_common,
        common.replace("codegen/tests/snapshots/registries/webhooks", "schemas")
    );
    // Nested types typify makes for a merged definition are re-exported too.
    assert!(
        item(code, "pub mod push_received {").contains("pub use super::super::common::UserType;")
    );

    // A second event type with star's `User`: now two different `User`s are
    // each shared by two event types. Both get their content hash in
    // `common`, and every module still calls its own `User`.
    let mut clash = webhook_registry();
    let mut watch: Value =
        serde_json::from_str(&clash.files["github/star.created.v1.json"]).unwrap();
    watch["x-event-type"] = json!("github.watch.started");
    watch["$id"] = json!("https://schemas.example/github/watch.started.v1.json");
    clash.files.insert(
        "github/watch.started.v1.json".into(),
        serde_json::to_string_pretty(&watch).unwrap(),
    );
    let clash = generate(&clash, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let clash_types = without_builders(&clash.code);
    let hashed: Vec<&str> = clash_types
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub struct User"))
        .collect();
    assert_eq!(hashed.len(), 2, "{}", clash.code);
    for suffix in &hashed {
        let hex = suffix.trim_end_matches(" {");
        assert!(
            hex.len() == 8 && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "{suffix}"
        );
    }
    for module in [
        "push_received",
        "issue_opened",
        "star_created",
        "watch_started",
    ] {
        let m = item(&clash.code, &format!("pub mod {module} {{"));
        assert!(m.contains(" as User;"), "{m}");
    }
    // The `Repository`s differ too (through their `User`): each is shared
    // by two event types, so they are hashed as well.
    assert!(
        !clash_types.contains("pub struct Repository {"),
        "{}",
        clash.code
    );
    assert!(
        clash_types.contains("pub struct License {"),
        "{}",
        clash.code
    );
}

#[test]
fn schema_problems_name_file_and_pointer() {
    let e = gen_err(&[(
        "auth/user.created.v1.json",
        event(
            "auth.user.created",
            1,
            json!({"properties": {"a": {"type": "string", "if": {"minLength": 1}, "then": {"maxLength": 2}}}}),
        ),
    )]);
    let d = e
        .diagnostics()
        .iter()
        .find(|d| d.pointer == "/properties/a/if")
        .unwrap_or_else(|| panic!("{e}"));
    assert_eq!(d.file, "auth/user.created.v1.json");
    // The line of the keyword in the (pretty-printed) file.
    assert!(d.line > 1, "{d:?}");
    let at = format!("auth/user.created.v1.json:{} at /properties/a/if", d.line);
    assert!(e.to_string().contains(&at), "{e}");
}

#[test]
fn entity_key_must_be_a_property() {
    let e = gen_err(&[(
        "auth/user.created.v1.json",
        event(
            "auth.user.created",
            1,
            json!({"x-entity-key": "nope", "properties": {"a": {"type": "string"}}}),
        ),
    )]);
    assert!(
        e.diagnostics().iter().any(|d| d.pointer == "/x-entity-key"),
        "{e}"
    );
}

#[test]
fn bad_patterns_are_errors_not_panics() {
    let e = gen_err(&[(
        "auth/user.created.v1.json",
        event(
            "auth.user.created",
            1,
            json!({"properties": {"a": {"type": "string", "pattern": "(?<"}}}),
        ),
    )]);
    assert!(
        e.diagnostics()
            .iter()
            .any(|d| d.pointer == "/properties/a/pattern"),
        "{e}"
    );
}

#[test]
fn typify_panics_become_errors_naming_the_file() {
    // A plain-name anchor passes the lint and the bundler, but typify
    // panics on a `$ref` without a `/`.
    let e = gen_err(&[(
        "auth/user.created.v1.json",
        event(
            "auth.user.created",
            1,
            json!({
                "$defs": {"Name": {"$anchor": "name", "type": "string"}},
                "properties": {"a": {"$ref": "#name"}}
            }),
        ),
    )]);
    let d = &e.diagnostics()[0];
    assert_eq!(d.file, "auth/user.created.v1.json", "{e}");
    assert!(d.message.contains("typify"), "{e}");
}

#[test]
fn root_must_be_an_object() {
    let e = gen_err(&[(
        "auth/user.created.v1.json",
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "description": "x",
            "x-event-type": "auth.user.created",
            "x-schema-version": 1,
            "x-stream": "AUTH_EVENTS",
            "type": "string"
        }),
    )]);
    assert!(e.to_string().contains("struct with named fields"), "{e}");
}

#[test]
fn the_seed_registry_generates() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    let g = tidings_codegen::generate::generate_dir(&dir, &Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(g.event_types >= 12, "{}", g.event_types);
    assert!(g.code.contains("pub mod ai_agent"));
    assert!(g.code.contains("pub type UserCreated = UserCreatedV2;"));
    assert!(!g.code.contains("deny_unknown_fields"));
}
