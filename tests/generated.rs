//! The generated catalogs against their registries' own documents: the
//! seed registry (`events`) and every generator snapshot
//! (`codegen/tests/snapshots/generate_*.rs`, compiled here under
//! `deny(warnings)`). Every `examples` entry of every schema round-trips
//! through its generated type and validates, and every older version's
//! examples upcast to the latest version and validate against it.
#![allow(clippy::unwrap_used)]

use serde_json::Value;

#[path = "generated/instances.rs"]
mod instances;

/// The generator's snapshots, compiled: each is the code `tidings-codegen`
/// writes for a small registry under `codegen/tests/snapshots/registries/`
/// (the snapshot test keeps both up to date). A warning here (a deprecated
/// type named without `allow`, or a clippy lint under `cargo clippy
/// --all-targets -- -D warnings`) fails the build.
#[deny(warnings)]
// A test binary uses only part of each catalog (in a library the unused
// items are its exports): re-exports, aliases, constants.
#[allow(unused_imports, dead_code)]
mod snapshots {
    macro_rules! snapshot {
        ($module:ident, $name:literal) => {
            pub mod $module {
                include!(concat!(
                    "../codegen/tests/snapshots/generate_",
                    $name,
                    ".rs"
                ));
            }
        };
    }
    snapshot!(objects, "objects");
    snapshot!(one_of, "one_of");
    // Not `upcast`: the generated code has a module of that name.
    snapshot!(upcasts, "upcast");
    snapshot!(reencode, "reencode");
    snapshot!(hand_written, "hand_written");
    snapshot!(closed, "closed");
    snapshot!(corpus, "corpus");
    snapshot!(shared, "shared");
    snapshot!(webhooks, "webhooks");

    /// The upcast the hand-written snapshot leaves to the including crate
    /// (mode NONE, `qty` became required, `sku` got a longer `maxLength`).
    impl From<hand_written::catalog::StockCountedV1> for hand_written::catalog::StockCountedV2 {
        fn from(v: hand_written::catalog::StockCountedV1) -> Self {
            Self {
                sku: v.sku.parse().unwrap(),
                qty: v.qty.unwrap_or(0),
            }
        }
    }
}

/// One payload type of a catalog (each generated catalog has its own
/// `payloads::Payload` with these fields).
#[derive(Clone, Copy)]
struct Payload {
    event_type: &'static str,
    version: u32,
    file: &'static str,
    schema: &'static str,
    roundtrip: fn(Value) -> Result<Value, serde_json::Error>,
    read_as_latest: fn(Value) -> Result<Value, tidings::upcast::ReadError>,
    violations: events::payloads::Violations,
}

macro_rules! catalog {
    ($($path:ident)::+) => {
        $($path)::+::payloads::PAYLOADS.iter().map(|p| Payload {
            event_type: p.event_type,
            version: p.version,
            file: p.file,
            schema: p.schema,
            roundtrip: p.roundtrip,
            read_as_latest: p.read_as_latest,
            violations: p.violations,
        })
    };
}

/// Every payload type of every catalog.
fn catalogs() -> Vec<(&'static str, Vec<Payload>)> {
    vec![
        ("events", catalog!(events).collect()),
        ("objects", catalog!(snapshots::objects).collect()),
        ("one_of", catalog!(snapshots::one_of).collect()),
        ("upcast", catalog!(snapshots::upcasts).collect()),
        ("reencode", catalog!(snapshots::reencode).collect()),
        ("hand_written", catalog!(snapshots::hand_written).collect()),
        ("closed", catalog!(snapshots::closed).collect()),
        ("corpus", catalog!(snapshots::corpus).collect()),
        ("shared", catalog!(snapshots::shared).collect()),
        ("webhooks", catalog!(snapshots::webhooks).collect()),
    ]
}

fn examples(p: &Payload) -> Vec<Value> {
    let schema: Value = serde_json::from_str(p.schema).unwrap();
    schema
        .get("examples")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Equal as JSON, where a member absent on one side may be `null` or `[]`
/// on the other (optional members are left out when empty). Numbers
/// compare exactly: `4747967848` is not `4747967848.0`.
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
        _ => a == b,
    }
}

#[test]
fn every_event_type_is_generated() {
    use events::payloads::PAYLOADS;
    assert!(PAYLOADS.len() >= 14, "{}", PAYLOADS.len());
    assert!(PAYLOADS
        .iter()
        .any(|p| p.event_type == "auth.user.created" && p.version == 2));
}

/// Deserializes `doc` as `p`'s type and serializes it again: the problem,
/// if the result is not the same document or not valid.
fn round_trip(p: &Payload, doc: &Value) -> Result<(), String> {
    let out = (p.roundtrip)(doc.clone()).map_err(|e| format!("{e}\n in: {doc}"))?;
    if !same(&with_defaults(p, doc), &out) {
        return Err(format!("changed:\n in: {doc}\nout: {out}"));
    }
    let v = (p.violations)(&out).unwrap();
    if !v.is_empty() {
        return Err(format!(
            "re-serialized payload invalid: {v:?}\n in: {doc}\nout: {out}"
        ));
    }
    Ok(())
}

/// `doc` with the `default` of each absent top-level property filled in,
/// as the generated type writes it back.
fn with_defaults(p: &Payload, doc: &Value) -> Value {
    let schema: Value = serde_json::from_str(p.schema).unwrap();
    let mut doc = doc.clone();
    if let (Some(Value::Object(props)), Value::Object(d)) = (schema.get("properties"), &mut doc) {
        for (name, prop) in props {
            if let Some(default) = prop.get("default") {
                d.entry(name.clone()).or_insert_with(|| default.clone());
            }
        }
    }
    doc
}

#[test]
fn every_example_round_trips_and_validates() {
    let mut failures = Vec::new();
    for (catalog, payloads) in catalogs() {
        let mut checked = 0;
        for p in &payloads {
            for (i, ex) in examples(p).into_iter().enumerate() {
                if let Err(e) = round_trip(p, &ex) {
                    failures.push(format!("{catalog}: {} example {i}: {e}", p.file));
                }
                checked += 1;
            }
        }
        if catalog == "events" {
            assert!(checked >= payloads.len(), "only {checked} examples");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Property-style: random documents of every payload type (a fixed seed;
/// those its schema accepts) round-trip like the examples.
#[test]
fn random_valid_documents_round_trip() {
    let mut rng = fastrand::Rng::with_seed(19);
    let mut failures = Vec::new();
    for (catalog, payloads) in catalogs() {
        for p in &payloads {
            let schema: Value = serde_json::from_str(p.schema).unwrap();
            let mut valid = 0;
            for i in 0..TRIES {
                let doc = instances::instance(&schema, &schema, &mut rng, 0);
                if !(p.violations)(&doc).unwrap().is_empty() {
                    continue;
                }
                valid += 1;
                if let Err(e) = round_trip(p, &doc) {
                    // The first failure of each payload type is enough.
                    failures.push(format!("{catalog}: {} random document {i}: {e}", p.file));
                    break;
                }
            }
            // The corpus is written for this generator: every type gets some.
            assert!(
                catalog != "corpus" || valid >= MIN_VALID,
                "{catalog}: {}: only {valid} of {TRIES} random documents are valid",
                p.file
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Random documents per payload type, and how many of a corpus type must be
/// valid (the generator does not know `pattern`s: some seed types get none).
const TRIES: usize = 200;
const MIN_VALID: usize = 20;

#[test]
fn older_examples_upcast_to_the_latest_version() {
    let mut upcast = 0;
    for (catalog, payloads) in catalogs() {
        for p in &payloads {
            let latest = payloads
                .iter()
                .filter(|l| l.event_type == p.event_type)
                .max_by_key(|l| l.version)
                .unwrap();
            for (i, ex) in examples(p).into_iter().enumerate() {
                let what = format!("{catalog}: {} example {i} as v{}", p.file, latest.version);
                let out = (p.read_as_latest)(ex.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
                let v = (latest.violations)(&out).unwrap();
                assert!(v.is_empty(), "{what}: invalid: {v:?}");
                // What both versions declare is carried over.
                let (Value::Object(inp), Value::Object(o)) = (&ex, &out) else {
                    panic!("{what}: not objects")
                };
                let latest_schema: Value = serde_json::from_str(latest.schema).unwrap();
                for k in inp.keys() {
                    // Absent and `null` are the same to `same`.
                    let pick = |m: &serde_json::Map<String, Value>| -> Value {
                        m.get(k)
                            .map(|v| (k.clone(), v.clone()))
                            .into_iter()
                            .collect()
                    };
                    if latest_schema["properties"].get(k).is_some() {
                        assert!(same(&pick(inp), &pick(o)), "{what}: lost {k}");
                    }
                }
                if p.version < latest.version {
                    upcast += 1;
                }
            }
        }
    }
    assert!(upcast >= 3, "only {upcast} older examples");
}

#[test]
fn a_builder_sets_each_field_as_the_json_would() {
    use events::auth::UserCreated;

    let built = UserCreated::builder()
        .user_id("0190f3a5-1111-7abc-8def-000000000001")
        .email("ana.garcia@example.com")
        .display_name("Ana García")
        .role("planner")
        .created_at("2025-12-09T10:15:00Z")
        .locale("es-ES")
        .build()
        .unwrap();
    let read: UserCreated = serde_json::from_value(serde_json::json!({
        "user_id": "0190f3a5-1111-7abc-8def-000000000001",
        "email": "ana.garcia@example.com",
        "display_name": "Ana García",
        "role": "planner",
        "created_at": "2025-12-09T10:15:00Z",
        "locale": "es-ES"
    }))
    .unwrap();
    assert_eq!(built, read);
    assert_eq!(built.time_zone, None, "an optional field left unset");
    // A built value goes back to a builder, to change one field.
    let renamed = events::auth::user_created::builder::UserCreatedV2::from(built.clone())
        .display_name("Ana G.")
        .build()
        .unwrap();
    assert_eq!(*renamed.display_name, "Ana G.");
    assert_eq!(renamed.email, built.email);
}

#[test]
fn a_builder_names_the_field_it_cannot_fill_and_why() {
    use events::auth::UserCreated;
    use tidings::builder::{BuildError, FieldProblem};

    let complete = || {
        UserCreated::builder()
            .user_id("0190f3a5-1111-7abc-8def-000000000001")
            .email("ana.garcia@example.com")
            .display_name("Ana García")
            .role("planner")
            .created_at("2025-12-09T10:15:00Z")
    };
    // The schema's constraints, checked by the setter's conversion.
    let err = complete().display_name("").build().unwrap_err();
    assert_eq!(
        (err.type_name, err.field),
        ("UserCreatedV2", "display_name")
    );
    assert!(
        matches!(&err.problem, FieldProblem::Invalid(why) if why.contains("shorter than 1")),
        "{err}"
    );
    let err = complete().locale("Spanish").build().unwrap_err();
    assert_eq!(err.field, "locale");
    assert!(err.to_string().contains("locale"), "{err}");
    let err = complete().role("superuser").build().unwrap_err();
    assert_eq!(err.field, "role");
    let err = complete().user_id("not a uuid").build().unwrap_err();
    assert_eq!(err.field, "user_id");
    // A required field never set.
    let err = UserCreated::builder()
        .user_id("0190f3a5-1111-7abc-8def-000000000001")
        .email("ana.garcia@example.com")
        .role("planner")
        .created_at("2025-12-09T10:15:00Z")
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        BuildError {
            type_name: "UserCreatedV2",
            field: "display_name",
            problem: FieldProblem::Missing,
        }
    );
    assert_eq!(
        err.to_string(),
        "cannot build `UserCreatedV2`: field `display_name`: required, but its setter was not called"
    );
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

/// The first example of the latest version of `event_type` in the seed registry.
fn seed_example(event_type: &str) -> Value {
    let p = catalog!(events)
        .filter(|p| p.event_type == event_type)
        .max_by_key(|p| p.version)
        .unwrap();
    examples(&p).remove(0)
}

/// One Rust type per shared definition (issue 12.6): `common/ids.json#UserId`
/// is `events::common::UserId` in every service, a map key, copied from
/// one service's event into another's.
#[test]
fn a_shared_definition_is_one_type_in_every_service() {
    use events::analytics::ReportGenerated;
    use events::common::UserId;
    use events::execution::OrderReleased;
    use std::collections::HashMap;

    let ana: UserId = "0190f3a5-1111-7abc-8def-0000000000aa".parse().unwrap();
    let mut order: OrderReleased =
        serde_json::from_value(seed_example("execution.order.released")).unwrap();
    let mut report: ReportGenerated =
        serde_json::from_value(seed_example("analytics.report.generated")).unwrap();
    order.released_by = ana;
    report.requested_by = Some(order.released_by);
    let mut events_by_user: HashMap<UserId, Vec<&str>> = HashMap::new();
    events_by_user
        .entry(order.released_by)
        .or_default()
        .push("execution.order.released");
    if let Some(user) = report.requested_by {
        events_by_user
            .entry(user)
            .or_default()
            .push("analytics.report.generated");
    }
    assert_eq!(events_by_user.len(), 1);
    assert_eq!(events_by_user[&ana].len(), 2);
    assert_eq!(ana.to_string(), "0190f3a5-1111-7abc-8def-0000000000aa");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["requested_by"], "0190f3a5-1111-7abc-8def-0000000000aa");
    // Other shared definitions too: one timestamp type for both services.
    let _: events::common::Timestamp = order.released_at;
    report.generated_at = order.released_at;
}

/// The first example of `event_type` version `version` in catalog `catalog`.
fn example_of(catalog: &str, event_type: &str, version: u32) -> Value {
    let (_, payloads) = catalogs().into_iter().find(|(c, _)| *c == catalog).unwrap();
    let p = payloads
        .iter()
        .find(|p| p.event_type == event_type && p.version == version)
        .unwrap();
    examples(p).remove(0)
}

/// The snapshot registry `shared`: the same shared types in two services
/// and across versions (v2 replaced the shared `Money` with its own, so
/// its upcast goes through JSON, and `set_by` is the same type in both).
#[test]
fn snapshot_shared_types_cross_services_and_versions() {
    use events::upcast::ReadAnyVersion;
    use snapshots::shared::{auth::UserInvitedV1, catalog, common};

    let invited: UserInvitedV1 =
        serde_json::from_value(example_of("shared", "auth.user.invited", 1)).unwrap();
    let mut price: catalog::PriceSetV1 =
        serde_json::from_value(example_of("shared", "catalog.price.set", 1)).unwrap();
    price.set_by = invited.invited_by;
    let v2 =
        catalog::PriceSetV2::read_any_version(1, serde_json::to_value(&price).unwrap()).unwrap();
    let by: common::UserId = v2.set_by;
    assert_eq!(by, invited.invited_by);
    let _: &common::Money = &price.price;
    let _: &catalog::price_set::MoneyV2 = &v2.price;
}

/// The snapshot registry `webhooks`: event files that each carry their own
/// identical `User` and `Repository` share one type, so a value read from
/// one event moves into another without conversion, under the path each
/// event module re-exports; `star.created`'s differing `User` is its own.
#[test]
fn snapshot_identical_definitions_are_one_type_across_event_types() {
    use snapshots::webhooks::github::{issue_opened, push_received, star_created};
    use snapshots::webhooks::github::{IssueOpenedV1, PushReceivedV1, StarCreatedV1};

    let issue: IssueOpenedV1 =
        serde_json::from_value(example_of("webhooks", "github.issue.opened", 1)).unwrap();
    let mut push: PushReceivedV1 =
        serde_json::from_value(example_of("webhooks", "github.push.received", 1)).unwrap();
    let author: push_received::User = issue.issue.user.clone();
    push.pusher = author;
    push.repository = issue.repository.clone();
    let _: &issue_opened::Repository = &push.repository;
    let _: &snapshots::webhooks::common::License = push.repository.license.as_ref().unwrap();
    assert_eq!(push.pusher, issue.sender);
    let star: StarCreatedV1 =
        serde_json::from_value(example_of("webhooks", "github.star.created", 1)).unwrap();
    let _: &star_created::User = &star.sender;
    assert_eq!(star.sender.email.as_deref(), Some("octocat@github.com"));
}

/// A `oneOf` of `$ref`s told apart by a `const` member (`kind`) is read by
/// that member: the variant it names or an error naming it, never another
/// variant; members a variant does not declare are accepted.
#[test]
fn a_const_discriminated_one_of_is_read_by_its_discriminator() {
    use serde_json::json;
    use snapshots::one_of::catalog::price_changed::PriceChangedV1Rule as Rule;

    let fixed: Rule = serde_json::from_value(
        json!({"kind": "fixed", "price": {"amount": "1.00", "currency": "EUR"}}),
    )
    .unwrap();
    assert!(matches!(fixed, Rule::Fixed(_)), "{fixed:?}");
    let open: Rule =
        serde_json::from_value(json!({"kind": "discount", "percent": 5, "since": "today"}))
            .unwrap();
    assert!(matches!(open, Rule::Discount(_)), "{open:?}");
    // A fixed rule missing its price is not read as a discount.
    let e = serde_json::from_value::<Rule>(json!({"kind": "fixed", "percent": 5})).unwrap_err();
    assert!(e.to_string().contains("price"), "{e}");
    let e = serde_json::from_value::<Rule>(json!({"kind": "free"})).unwrap_err();
    assert!(
        e.to_string().contains("kind") && e.to_string().contains("discount"),
        "{e}"
    );
    assert_eq!(
        serde_json::to_value(&fixed).unwrap(),
        json!({"kind": "fixed", "price": {"amount": "1.00", "currency": "EUR"}})
    );
}

/// Every seed event type names its entity (`x-entity-key`), so generated
/// types publish on subjects ending in the entity's id, never in `_`.
#[test]
fn generated_types_key_subjects_by_their_entity() {
    use events::payloads::PAYLOADS;
    use tidings::DomainEvent;

    for p in PAYLOADS {
        let schema: Value = serde_json::from_str(p.schema).unwrap();
        assert!(
            schema["x-entity-key"].is_string(),
            "{} v{} has no x-entity-key",
            p.event_type,
            p.version
        );
    }
    let user: events::auth::UserCreatedV1 = serde_json::from_value(serde_json::json!({
        "user_id": "0190f3a5-1111-7abc-8def-000000000001",
        "email": "ana.garcia@example.com",
        "display_name": "Ana García",
        "role": "planner",
        "created_at": "2025-12-09T10:15:00Z"
    }))
    .unwrap();
    assert_eq!(events::auth::UserCreatedV1::KEY_FIELD, Some("user_id"));
    // The key refers to the shared `UserId`, and is that type.
    let key: events::common::UserId = user.user_id;
    assert_eq!(key.to_string(), "0190f3a5-1111-7abc-8def-000000000001");
    let org = tidings::OrganizationId::new("org-42").unwrap();
    assert_eq!(
        tidings::subject::subject_of(&org, &user).unwrap(),
        "auth.user.created.org-42.0190f3a5-1111-7abc-8def-000000000001"
    );
    assert_eq!(
        events::execution::OrderReleased::KEY_FIELD,
        Some("order_id")
    );
}
