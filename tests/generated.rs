//! The generated catalog against the registry's own documents: every
//! `examples` entry of every schema round-trips through its generated type
//! and validates, and every older version's examples upcast to the latest
//! version and validate against it.
#![allow(clippy::unwrap_used)]

use events::payloads::{Payload, PAYLOADS};
use serde_json::Value;

fn examples(p: &Payload) -> Vec<Value> {
    let schema: Value = serde_json::from_str(p.schema).unwrap();
    schema
        .get("examples")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Equal as JSON, where a member absent on one side may be `null` or `[]`
/// on the other (optional members are left out when empty) and numbers
/// compare by value.
fn same(a: &Value, b: &Value) -> bool {
    let empty = |v: Option<&Value>| match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.keys()
                .chain(y.keys())
                .all(|k| match (x.get(k), y.get(k)) {
                    (Some(l), Some(r)) => same(l, r),
                    (l, r) => empty(l) && empty(r),
                })
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(l, r)| same(l, r))
        }
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

#[test]
fn every_event_type_is_generated() {
    assert!(PAYLOADS.len() >= 14, "{}", PAYLOADS.len());
    assert!(PAYLOADS
        .iter()
        .any(|p| p.event_type == "auth.user.created" && p.version == 2));
}

#[test]
fn every_example_round_trips_and_validates() {
    let mut checked = 0;
    for p in PAYLOADS {
        for (i, ex) in examples(p).into_iter().enumerate() {
            let what = format!("{} example {i}", p.file);
            let out = (p.roundtrip)(ex.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(same(&ex, &out), "{what} changed:\n in: {ex}\nout: {out}");
            let v = (p.violations)(&out).unwrap();
            assert!(v.is_empty(), "{what}: re-serialized payload invalid: {v:?}");
            checked += 1;
        }
    }
    assert!(checked >= PAYLOADS.len(), "only {checked} examples");
}

#[test]
fn older_examples_upcast_to_the_latest_version() {
    let mut upcast = 0;
    for p in PAYLOADS {
        let latest = PAYLOADS
            .iter()
            .filter(|l| l.event_type == p.event_type)
            .max_by_key(|l| l.version)
            .unwrap();
        for (i, ex) in examples(p).into_iter().enumerate() {
            let what = format!("{} example {i} as v{}", p.file, latest.version);
            let out = (p.read_as_latest)(ex.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
            let v = (latest.violations)(&out).unwrap();
            assert!(v.is_empty(), "{what}: invalid: {v:?}");
            // What both versions declare is carried over.
            let (Value::Object(inp), Value::Object(o)) = (&ex, &out) else {
                panic!("{what}: not objects")
            };
            let latest_schema: Value = serde_json::from_str(latest.schema).unwrap();
            for (k, val) in inp {
                if latest_schema["properties"].get(k).is_some() {
                    assert!(o.get(k).is_some_and(|x| same(x, val)), "{what}: lost {k}");
                }
            }
            if p.version < latest.version {
                upcast += 1;
            }
        }
    }
    assert!(upcast >= 2, "only {upcast} older examples");
}

#[test]
fn a_v1_payload_reads_as_the_v2_alias() {
    use events::auth::{UserCreated, UserCreatedV1};
    use events::upcast::ReadAnyVersion;
    use tidings::DomainEvent;

    let v1 = serde_json::json!({
        "user_id": "0190f3a5-1111-7abc-8def-000000000001",
        "email": "ana.garcia@example.com",
        "display_name": "Ana García",
        "role": "planner",
        "created_at": "2025-12-09T10:15:00Z",
        "from_a_newer_producer": true
    });
    let typed: UserCreatedV1 = serde_json::from_value(v1.clone()).unwrap();
    let upcast: UserCreated = typed.clone().into();
    assert_eq!(UserCreated::read_any_version(1, v1).unwrap(), upcast);
    assert_eq!(upcast.locale, None);
    assert_eq!(upcast.user_id, typed.user_id);
    assert_eq!(UserCreated::SCHEMA_VERSION, 2);
    assert_eq!(UserCreated::STREAM, "AUTH_EVENTS");
    assert!(matches!(
        UserCreated::read_any_version(0, serde_json::json!({})),
        Err(events::upcast::ReadError::UnknownVersion { version: 0, .. })
    ));
    assert!(UserCreated::read_any_version(2, serde_json::json!({"user_id": 1})).is_err());
}

#[test]
fn an_older_payload_is_checked_against_the_schema_of_its_own_version() {
    use events::auth::UserCreated;
    use events::upcast::{ReadAnyVersion, ReadError};

    // Fits the v1 Rust type (the email is a String) but breaks the v1 schema.
    let v1 = serde_json::json!({
        "user_id": "0190f3a5-1111-7abc-8def-000000000001",
        "email": "not an email",
        "display_name": "Ana García",
        "role": "planner",
        "created_at": "2025-12-09T10:15:00Z"
    });
    match UserCreated::read_any_version(1, v1) {
        Err(ReadError::Violations {
            event_type,
            version,
            violations,
        }) => {
            assert_eq!((event_type, version), ("auth.user.created", 1));
            assert!(
                violations.iter().any(|v| v.instance_path == "/email"),
                "{violations:?}"
            );
        }
        other => panic!("expected the v1 schema's violations, got {other:?}"),
    }
}
