//! `tidings::testing::matches_registry`: hand-written `#[derive(DomainEvent,
//! JsonSchema)]` types against the real registry schemas in `schemas/`.
//!
//! `#[derive(DomainEvent)]` already refuses, at compile time, a field of the
//! wrong JSON type, a missing required field or a field a closed schema
//! forbids. Types with those faults are therefore given their registry
//! identity with a hand-written `impl DomainEvent` (the [`same_schema_as!`]
//! macro below borrows the embedded schema of the correct type): the check
//! is what catches them for types that implement the trait by hand. The
//! other failing types do use the derive: they show what it cannot see
//! (enums, newtypes, value constraints, integer widths, an integer where the
//! registry allows any number).
#![allow(missing_docs)]
#![allow(dead_code)]

use std::panic;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tidings::testing::{
    assert_matches_registry, assert_matches_registry_file, matches_registry, matches_registry_file,
    Direction, Incompatibility, Mismatch, RegistryMismatch,
};
use tidings::DomainEvent;
use tidings_codegen::compat::ChangeKind;
use uuid::Uuid;

/// Gives `$ty` the registry identity and embedded (bundled) schema of
/// `$of`, as a hand-written `impl DomainEvent` would.
macro_rules! same_schema_as {
    ($ty:ty => $of:ty) => {
        impl DomainEvent for $ty {
            const EVENT_TYPE: &'static str = <$of as DomainEvent>::EVENT_TYPE;
            const SCHEMA_VERSION: u32 = <$of as DomainEvent>::SCHEMA_VERSION;
            const STREAM: &'static str = <$of as DomainEvent>::STREAM;
            const SCHEMA: &'static str = <$of as DomainEvent>::SCHEMA;
            const SCHEMA_URI: &'static str = <$of as DomainEvent>::SCHEMA_URI;
            const KEY_FIELD: Option<&'static str> = <$of as DomainEvent>::KEY_FIELD;
        }
    };
}

const USER_CREATED_V2: &str = "../schemas/auth/user.created.v2.json";

// ---------------------------------------------------------------------------
// auth.user.created v1, written by hand the right way.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Role {
    Owner,
    Admin,
    Planner,
    Operator,
    Viewer,
}

/// The registry's `auth.user.created` v1, with the constraints schemars
/// attributes express (format, lengths) and an enum for `role`.
#[derive(Debug, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[domain_event(schema = "../schemas/auth/user.created.v1.json", key = "user_id")]
struct UserCreated {
    user_id: Uuid,
    #[schemars(email, length(max = 254))]
    email: String,
    #[schemars(length(min = 1, max = 120))]
    display_name: String,
    role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    invited_by: Option<Uuid>,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
}

fn ana() -> Value {
    json!({
        "user_id": "0190f3a5-1111-7abc-8def-000000000001",
        "email": "ana.garcia@example.com",
        "display_name": "Ana García",
        "role": "planner",
        "created_at": "2025-12-09T10:15:00Z"
    })
}

#[test]
fn a_correct_hand_written_type_matches_its_registry_schema() {
    matches_registry::<UserCreated>().expect("UserCreated matches auth.user.created v1");
    assert_matches_registry::<UserCreated>();
    // And the registry's own example round-trips through it.
    let user: UserCreated = serde_json::from_value(ana()).expect("the example deserializes");
    assert_eq!(serde_json::to_value(&user).expect("serializes"), ana());
}

#[test]
fn a_correct_v1_type_also_reads_and_writes_v2_under_the_lenient_policy() {
    // v2 only adds optional properties: FULL compatible with v1.
    matches_registry_file::<UserCreated>(USER_CREATED_V2).expect("v1 type against v2 schema");
    assert_matches_registry_file::<UserCreated>(USER_CREATED_V2);
}

/// `deny_unknown_fields` is fine against v1 (lenient: v1 documents carry
/// only v1's properties), but such a consumer cannot read v2 events.
#[derive(Debug, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[domain_event(schema = "../schemas/auth/user.created.v1.json")]
#[serde(deny_unknown_fields)]
struct StrictUserCreated {
    user_id: Uuid,
    #[schemars(email, length(max = 254))]
    email: String,
    #[schemars(length(min = 1, max = 120))]
    display_name: String,
    role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    invited_by: Option<Uuid>,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
}

#[test]
fn deny_unknown_fields_matches_v1_but_cannot_read_v2() {
    assert_matches_registry::<StrictUserCreated>();
    let report = incompatibility(matches_registry_file::<StrictUserCreated>(USER_CREATED_V2));
    assert!(report
        .mismatches
        .iter()
        .all(|m| m.direction == Direction::Deserialize));
    for name in ["locale", "time_zone"] {
        let m = find(&report, |m| {
            m.registry_pointer() == format!("/properties/{name}")
                && m.kind() == ChangeKind::PropertyRemovedFromClosedModel
        });
        assert_eq!(m.fields, [format!("/{name}")]);
        // The proven example is a v2 document the type refuses.
        let example = m.change.example.clone().expect("example");
        assert!(example.get(name).is_some(), "{example}");
        assert!(serde_json::from_value::<StrictUserCreated>(example).is_err());
    }
    assert!(report.to_string().contains(USER_CREATED_V2));
}

// ---------------------------------------------------------------------------
// Entity key: `KEY_FIELD` against the registry's `x-entity-key`.

/// The right fields, but a hand-written identity that keys no entity,
/// although the registry keys `auth.user.created` by `user_id`: its events
/// would be published on subjects ending in `_`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct UnkeyedUserCreated {
    user_id: Uuid,
    #[schemars(email, length(max = 254))]
    email: String,
    #[schemars(length(min = 1, max = 120))]
    display_name: String,
    role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    invited_by: Option<Uuid>,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
}
impl DomainEvent for UnkeyedUserCreated {
    const EVENT_TYPE: &'static str = UserCreated::EVENT_TYPE;
    const SCHEMA_VERSION: u32 = UserCreated::SCHEMA_VERSION;
    const STREAM: &'static str = UserCreated::STREAM;
    const SCHEMA: &'static str = UserCreated::SCHEMA;
    const SCHEMA_URI: &'static str = UserCreated::SCHEMA_URI;
}

/// Keyed by the wrong property.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
struct KeyedByEmail(UserCreated);
impl DomainEvent for KeyedByEmail {
    const EVENT_TYPE: &'static str = UserCreated::EVENT_TYPE;
    const SCHEMA_VERSION: u32 = UserCreated::SCHEMA_VERSION;
    const STREAM: &'static str = UserCreated::STREAM;
    const SCHEMA: &'static str = UserCreated::SCHEMA;
    const SCHEMA_URI: &'static str = UserCreated::SCHEMA_URI;
    const KEY_FIELD: Option<&'static str> = Some("email");
}

#[test]
fn a_key_field_that_is_not_the_registry_entity_key_fails() {
    assert_eq!(UserCreated::KEY_FIELD, Some("user_id"));
    let report = incompatibility(matches_registry::<UnkeyedUserCreated>());
    assert!(report.mismatches.is_empty(), "{report}");
    let key = report.entity_key.clone().expect("an entity-key mismatch");
    assert_eq!(key.key_field, None);
    assert_eq!(key.registry.as_deref(), Some("user_id"));
    let text = report.to_string();
    assert!(
        text.contains("x-entity-key") && text.contains("user_id"),
        "{text}"
    );

    let report = incompatibility(matches_registry::<KeyedByEmail>());
    let key = report.entity_key.clone().expect("an entity-key mismatch");
    assert_eq!(key.key_field, Some("email"));
    assert_eq!(key.registry.as_deref(), Some("user_id"));
    // The derive takes its key from the schema: it matches.
    assert_matches_registry::<UserCreated>();
}

// ---------------------------------------------------------------------------
// Wrong field type.

/// `display_name` is a number: the derive refuses this at compile time, so
/// the registry identity is given by hand.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct NumericDisplayName {
    user_id: Uuid,
    #[schemars(email, length(max = 254))]
    email: String,
    display_name: u32,
    role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    invited_by: Option<Uuid>,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
}
same_schema_as!(NumericDisplayName => UserCreated);

#[test]
fn a_wrong_field_type_fails_in_both_directions() {
    let report = incompatibility(matches_registry::<NumericDisplayName>());
    assert_eq!(report.event_type, "auth.user.created");
    assert_eq!(report.version, 1);
    assert_eq!(report.schema, UserCreated::SCHEMA_URI);
    assert_eq!(report.mismatches.len(), 2, "{report}");
    let writes = find(&report, |m| m.direction == Direction::Serialize);
    let reads = find(&report, |m| m.direction == Direction::Deserialize);
    for m in [writes, reads] {
        assert_eq!(m.kind(), ChangeKind::TypeNarrowed, "{report}");
        assert_eq!(m.registry_pointer(), "/properties/display_name/type");
        assert_eq!(m.type_pointer(), "/properties/display_name/type");
        assert_eq!(m.fields, ["/display_name"]);
    }
    // Serialize: a document the type writes that the registry rejects.
    let written = writes.change.example.clone().expect("example");
    assert!(written["display_name"].is_number(), "{written}");
    assert!(!registry_accepts::<UserCreated>(&written));
    // Deserialize: a valid registry document the type cannot read.
    let valid = reads.change.example.clone().expect("example");
    assert!(registry_accepts::<UserCreated>(&valid));
    assert!(serde_json::from_value::<NumericDisplayName>(valid).is_err());

    let text = report.to_string();
    for needle in [
        "`matches_registry::NumericDisplayName` does not match its registry schema, \
         auth.user.created v1 (https://schemas.tidings.dev/auth/user.created.v1.json): 2 mismatches",
        "1. type_narrowed (serialize): the registry schema rejects a document \
         `matches_registry::NumericDisplayName` serialises",
        "2. type_narrowed (deserialize): `matches_registry::NumericDisplayName` cannot \
         deserialize a document the registry schema accepts",
        "field:",
        "registry:",
        "/properties/display_name/type",
        "example: {",
        "FULL, lenient policy",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

/// A newtype of the wrong type: the derive accepts any type it does not know.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct LegacyUserId(u64);

#[derive(Debug, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[domain_event(schema = "../schemas/auth/user.created.v1.json")]
struct LegacyIds {
    user_id: Uuid,
    #[schemars(email, length(max = 254))]
    email: String,
    #[schemars(length(min = 1, max = 120))]
    display_name: String,
    role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    invited_by: Option<LegacyUserId>,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
}

#[test]
fn a_newtype_of_the_wrong_type_fails_although_the_derive_accepts_it() {
    let report = incompatibility(matches_registry::<LegacyIds>());
    assert!(!report.mismatches.is_empty());
    // Every mismatch is about the one wrong field (an `Option`, so
    // schemars writes an `anyOf`: the deserialize side reports the lost
    // branch, the serialize side the narrowed type).
    for m in &report.mismatches {
        assert_eq!(m.fields, ["/invited_by"], "{report}");
    }
    let narrowed = report
        .mismatches
        .iter()
        .find(|m| m.kind() == ChangeKind::TypeNarrowed)
        .unwrap_or_else(|| panic!("no type_narrowed mismatch: {report}"));
    // The schemas point into shared definitions; the field is still named.
    assert_eq!(
        narrowed.registry_pointer(),
        "/$defs/UserId/type",
        "{report}"
    );
    assert_eq!(
        narrowed.type_pointer(),
        "/$defs/LegacyUserId/type",
        "{report}"
    );
}

/// An enum with a value the registry does not have, and missing one it has.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum OldRole {
    Owner,
    Admin,
    Superuser,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[domain_event(schema = "../schemas/auth/user.created.v1.json")]
struct OldRoles {
    user_id: Uuid,
    #[schemars(email, length(max = 254))]
    email: String,
    #[schemars(length(min = 1, max = 120))]
    display_name: String,
    role: OldRole,
    #[serde(skip_serializing_if = "Option::is_none")]
    invited_by: Option<Uuid>,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
}

#[test]
fn enum_values_are_compared_in_both_directions() {
    let report = incompatibility(matches_registry::<OldRoles>());
    let text = report.to_string();
    // "superuser" is written but rejected; "planner" etc. are valid but unreadable.
    assert!(text.contains("superuser"), "{text}");
    assert!(text.contains("planner"), "{text}");
    let writes = find(&report, |m| m.direction == Direction::Serialize);
    assert_eq!(writes.registry_pointer(), "/properties/role/enum", "{text}");
    assert_eq!(writes.type_pointer(), "/$defs/OldRole/enum", "{text}");
    assert_eq!(writes.fields, ["/role"]);
    let reads = find(&report, |m| m.direction == Direction::Deserialize);
    let valid = reads.change.example.clone().expect("example");
    assert!(registry_accepts::<UserCreated>(&valid));
    assert!(serde_json::from_value::<OldRoles>(valid).is_err());
}

/// A plain `String` where the registry constrains the value: the derive
/// leaves value constraints to run time, this check does not.
#[derive(Debug, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[domain_event(schema = "../schemas/auth/user.created.v1.json")]
struct UnconstrainedEmail {
    user_id: Uuid,
    email: String,
    #[schemars(length(min = 1, max = 120))]
    display_name: String,
    role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    invited_by: Option<Uuid>,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
}

#[test]
fn value_constraints_must_be_declared() {
    let report = incompatibility(matches_registry::<UnconstrainedEmail>());
    assert!(report
        .mismatches
        .iter()
        .all(|m| m.direction == Direction::Serialize));
    let kinds: Vec<ChangeKind> = report.mismatches.iter().map(Mismatch::kind).collect();
    assert!(kinds.contains(&ChangeKind::FormatAdded), "{report}");
    assert!(kinds.contains(&ChangeKind::MaxLengthAdded), "{report}");
    for m in &report.mismatches {
        assert!(
            m.registry_pointer().starts_with("/properties/email/"),
            "{report}"
        );
        assert_eq!(m.fields, ["/email"]);
    }
}

// ---------------------------------------------------------------------------
// Missing required field, `null` for a non-nullable property.

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct NoRole {
    user_id: Uuid,
    #[schemars(email, length(max = 254))]
    email: String,
    #[schemars(length(min = 1, max = 120))]
    display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    invited_by: Option<Uuid>,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
}
same_schema_as!(NoRole => UserCreated);

#[test]
fn a_missing_required_field_fails() {
    let report = incompatibility(matches_registry::<NoRole>());
    // The type ignores `role` when reading (lenient, open model): only what
    // it writes is wrong.
    assert_eq!(report.mismatches.len(), 1, "{report}");
    let m = &report.mismatches[0];
    assert_eq!(m.direction, Direction::Serialize);
    assert_eq!(m.kind(), ChangeKind::RequiredPropertyAdded);
    assert_eq!(m.registry_pointer(), "/required");
    assert_eq!(m.fields, ["/role"]);
    assert!(m.change.message.contains("\"role\""), "{report}");
    let written = m.change.example.clone().expect("example");
    assert!(written.get("role").is_none());
    assert!(!registry_accepts::<UserCreated>(&written));
    assert!(report
        .to_string()
        .contains("property \"role\" became required"));
}

/// `invited_by` without `skip_serializing_if`: `None` is written as `null`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct NullInvitedBy {
    user_id: Uuid,
    #[schemars(email, length(max = 254))]
    email: String,
    #[schemars(length(min = 1, max = 120))]
    display_name: String,
    role: Role,
    invited_by: Option<Uuid>,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
}
same_schema_as!(NullInvitedBy => UserCreated);

#[test]
fn an_option_written_as_null_fails_and_a_skipped_one_passes() {
    let report = incompatibility(matches_registry::<NullInvitedBy>());
    assert!(!report.mismatches.is_empty());
    for m in &report.mismatches {
        assert_eq!(m.direction, Direction::Serialize, "{report}");
        // The registry's `invited_by` is a `$ref` to the shared `UserId`.
        assert_eq!(m.registry_pointer(), "/$defs/UserId/type", "{report}");
        assert_eq!(m.type_pointer(), "/properties/invited_by/type", "{report}");
        assert_eq!(m.fields, ["/invited_by"], "{report}");
    }
    let written = report.mismatches[0]
        .change
        .example
        .clone()
        .expect("example");
    assert_eq!(written["invited_by"], Value::Null, "{written}");
    // UserCreated differs only by `skip_serializing_if`.
    assert_matches_registry::<UserCreated>();
}

// ---------------------------------------------------------------------------
// Extra field under a closed schema (fixture: no registry schema is closed).

#[derive(Debug, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[domain_event(schema = "tests/fixtures/profile.renamed.v1.json", key = "profile_id")]
struct ProfileRenamed {
    profile_id: Uuid,
    #[schemars(length(min = 1, max = 120))]
    display_name: String,
}

/// `nickname` is not declared by the closed schema: the derive refuses it.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct ProfileRenamedWithNickname {
    profile_id: Uuid,
    #[schemars(length(min = 1, max = 120))]
    display_name: String,
    nickname: String,
}
same_schema_as!(ProfileRenamedWithNickname => ProfileRenamed);

#[test]
fn an_extra_field_under_a_closed_schema_fails() {
    assert_matches_registry::<ProfileRenamed>();
    let report = incompatibility(matches_registry::<ProfileRenamedWithNickname>());
    assert_eq!(report.event_type, "test.profile.renamed");
    let writes = find(&report, |m| m.direction == Direction::Serialize);
    assert_eq!(
        writes.kind(),
        ChangeKind::PropertyRemovedFromClosedModel,
        "{report}"
    );
    assert_eq!(writes.type_pointer(), "/properties/nickname");
    assert_eq!(writes.registry_pointer(), "/additionalProperties");
    assert_eq!(writes.fields, ["/nickname"]);
    let written = writes.change.example.clone().expect("example");
    assert!(written.get("nickname").is_some());
    assert!(!registry_accepts::<ProfileRenamed>(&written));
    // And it cannot read registry documents, which never carry `nickname`.
    let reads = find(&report, |m| m.direction == Direction::Deserialize);
    assert_eq!(reads.kind(), ChangeKind::RequiredPropertyAdded, "{report}");
    assert!(reads.change.message.contains("\"nickname\""));
    assert_eq!(reads.fields, ["/nickname"]);
    assert!(report.to_string().contains("/properties/nickname"));
}

// ---------------------------------------------------------------------------
// Integer vs number: ddmrp.buffer.updated v1.

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct Quantity {
    #[schemars(range(min = 0))]
    value: f64,
    #[schemars(regex(pattern = "^[a-z][a-z0-9_]{0,15}$"))]
    unit: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Zone {
    Red,
    Yellow,
    Green,
    OverTopOfGreen,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[domain_event(schema = "../schemas/ddmrp/buffer.updated.v1.json", key = "buffer_id")]
struct BufferUpdated {
    buffer_id: Uuid,
    product_id: Uuid,
    location_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    average_daily_usage: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decoupled_lead_time_days: Option<u64>,
    top_of_red: Quantity,
    top_of_yellow: Quantity,
    top_of_green: Quantity,
    net_flow_position: f64,
    zone: Zone,
    #[schemars(extend("format" = "date-time"))]
    calculated_at: String,
}

/// `net_flow_position` is an integer where the registry allows any number:
/// the derive accepts it (integers are numbers), reading fails on `1.5`.
#[derive(Debug, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[domain_event(schema = "../schemas/ddmrp/buffer.updated.v1.json")]
struct IntegerFlow {
    buffer_id: Uuid,
    product_id: Uuid,
    location_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    average_daily_usage: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decoupled_lead_time_days: Option<u64>,
    top_of_red: Quantity,
    top_of_yellow: Quantity,
    top_of_green: Quantity,
    net_flow_position: i64,
    zone: Zone,
    #[schemars(extend("format" = "date-time"))]
    calculated_at: String,
}

/// `decoupled_lead_time_days` is a float where the registry wants an
/// integer: the derive refuses it, so the identity is given by hand.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct FractionalLeadTime {
    buffer_id: Uuid,
    product_id: Uuid,
    location_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    average_daily_usage: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    decoupled_lead_time_days: Option<f64>,
    top_of_red: Quantity,
    top_of_yellow: Quantity,
    top_of_green: Quantity,
    net_flow_position: f64,
    zone: Zone,
    #[schemars(extend("format" = "date-time"))]
    calculated_at: String,
}
same_schema_as!(FractionalLeadTime => BufferUpdated);

#[test]
fn a_correct_type_with_nested_structs_matches() {
    assert_matches_registry::<BufferUpdated>();
}

/// A nested struct without the registry's `pattern` on `unit`: the derive
/// does not look into nested types.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct LooseQuantity {
    #[schemars(range(min = 0))]
    value: f64,
    unit: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[domain_event(schema = "../schemas/ddmrp/buffer.updated.v1.json")]
struct LooseBufferUpdated {
    buffer_id: Uuid,
    product_id: Uuid,
    location_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    average_daily_usage: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decoupled_lead_time_days: Option<u64>,
    top_of_red: LooseQuantity,
    top_of_yellow: LooseQuantity,
    top_of_green: LooseQuantity,
    net_flow_position: f64,
    zone: Zone,
    #[schemars(extend("format" = "date-time"))]
    calculated_at: String,
}

#[test]
fn nested_structs_are_compared_and_every_field_using_them_is_named() {
    let report = incompatibility(matches_registry::<LooseBufferUpdated>());
    assert_eq!(report.mismatches.len(), 1, "{report}");
    let m = &report.mismatches[0];
    assert_eq!(m.direction, Direction::Serialize);
    assert_eq!(m.kind(), ChangeKind::PatternAdded);
    assert_eq!(m.registry_pointer(), "/$defs/UnitOfMeasure/pattern");
    assert_eq!(
        m.fields,
        [
            "/top_of_green/unit",
            "/top_of_red/unit",
            "/top_of_yellow/unit"
        ]
    );
    let text = report.to_string();
    assert!(text.contains("fields:"), "{text}");
    assert!(
        text.contains("/top_of_green/unit, /top_of_red/unit, /top_of_yellow/unit"),
        "{text}"
    );
}

#[test]
fn an_integer_where_the_registry_allows_any_number_fails() {
    let report = incompatibility(matches_registry::<IntegerFlow>());
    assert_eq!(report.mismatches.len(), 1, "{report}");
    let m = &report.mismatches[0];
    assert_eq!(m.direction, Direction::Deserialize);
    assert_eq!(m.kind(), ChangeKind::TypeNarrowed);
    assert_eq!(m.registry_pointer(), "/properties/net_flow_position/type");
    assert_eq!(m.type_pointer(), "/properties/net_flow_position/type");
    assert_eq!(m.fields, ["/net_flow_position"]);
    let valid = m.change.example.clone().expect("example");
    assert!(registry_accepts::<BufferUpdated>(&valid));
    assert!(serde_json::from_value::<IntegerFlow>(valid).is_err());
}

#[test]
fn a_number_where_the_registry_wants_an_integer_fails() {
    let report = incompatibility(matches_registry::<FractionalLeadTime>());
    assert_eq!(report.mismatches.len(), 1, "{report}");
    let m = &report.mismatches[0];
    assert_eq!(m.direction, Direction::Serialize);
    assert_eq!(m.kind(), ChangeKind::TypeNarrowed);
    assert_eq!(
        m.registry_pointer(),
        "/properties/decoupled_lead_time_days/type"
    );
    assert_eq!(
        m.type_pointer(),
        "/properties/decoupled_lead_time_days/type"
    );
    assert_eq!(m.fields, ["/decoupled_lead_time_days"]);
    let written = m.change.example.clone().expect("example");
    assert!(!registry_accepts::<BufferUpdated>(&written));
}

// ---------------------------------------------------------------------------
// Integer widths: analytics.report.generated v1 (`row_count` >= 0, unbounded).

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum ReportType {
    BufferHealth,
    InventoryValuation,
    OrderPerformance,
    DemandForecast,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum ReportFormat {
    Pdf,
    Csv,
    Xlsx,
}

macro_rules! report_generated {
    ($name:ident, $count:ty) => {
        #[derive(Debug, Serialize, Deserialize, JsonSchema, DomainEvent)]
        #[domain_event(schema = "../schemas/analytics/report.generated.v1.json")]
        struct $name {
            report_id: Uuid,
            report_type: ReportType,
            #[schemars(extend("format" = "date"))]
            period_start: String,
            #[schemars(extend("format" = "date"))]
            period_end: String,
            format: ReportFormat,
            #[schemars(url, length(max = 2048))]
            download_url: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            row_count: Option<$count>,
            #[serde(skip_serializing_if = "Option::is_none")]
            requested_by: Option<Uuid>,
            #[schemars(extend("format" = "date-time"))]
            generated_at: String,
        }
    };
}
report_generated!(ReportGenerated, u64);
report_generated!(NarrowCount, u32);
report_generated!(SignedCount, i64);

#[test]
fn integer_widths_count() {
    // u64: minimum 0, as the registry; 64-bit bounds are not compared.
    assert_matches_registry::<ReportGenerated>();

    // u32: the registry allows counts above u32::MAX.
    let report = incompatibility(matches_registry::<NarrowCount>());
    assert_eq!(report.mismatches.len(), 1, "{report}");
    let m = &report.mismatches[0];
    assert_eq!(m.direction, Direction::Deserialize);
    assert_eq!(m.kind(), ChangeKind::MaximumAdded);
    assert_eq!(m.type_pointer(), "/properties/row_count/maximum");
    assert_eq!(m.fields, ["/row_count"]);
    let valid = m.change.example.clone().expect("example");
    assert!(registry_accepts::<ReportGenerated>(&valid));
    assert!(serde_json::from_value::<NarrowCount>(valid).is_err());

    // i64: writes negative counts the registry rejects.
    let report = incompatibility(matches_registry::<SignedCount>());
    assert_eq!(report.mismatches.len(), 1, "{report}");
    let m = &report.mismatches[0];
    assert_eq!(m.direction, Direction::Serialize);
    assert_eq!(m.kind(), ChangeKind::MinimumAdded);
    assert_eq!(m.registry_pointer(), "/properties/row_count/minimum");
}

// ---------------------------------------------------------------------------
// The assertion and the errors.

#[test]
#[should_panic(
    expected = "`matches_registry::NoRole` does not match its registry schema, \
                           auth.user.created v1"
)]
fn assert_matches_registry_panics_with_the_report() {
    assert_matches_registry::<NoRole>();
}

#[test]
fn the_panic_message_is_the_full_report() {
    let panic = panic::catch_unwind(|| assert_matches_registry::<NumericDisplayName>())
        .expect_err("NumericDisplayName does not match");
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .expect("a formatted panic message");
    let expected = incompatibility(matches_registry::<NumericDisplayName>()).to_string();
    assert_eq!(message, expected);
    assert!(
        message.contains("/properties/display_name/type"),
        "{message}"
    );
    assert!(message.contains("example: {"), "{message}");

    let panic = panic::catch_unwind(|| {
        assert_matches_registry_file::<UserCreated>("../schemas/auth/no.such.v1.json")
    })
    .expect_err("no such file");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("no.such.v1.json"), "{message}");
}

/// A hand-written impl whose schema is not JSON.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct Broken {
    id: String,
}

impl DomainEvent for Broken {
    const EVENT_TYPE: &'static str = "test.broken.thing";
    const SCHEMA_VERSION: u32 = 3;
    const STREAM: &'static str = "TEST_EVENTS";
    const SCHEMA: &'static str = "{ not json";
    const SCHEMA_URI: &'static str = "urn:test:broken";
}

#[test]
fn unreadable_schemas_are_errors_not_panics() {
    match matches_registry::<Broken>() {
        Err(e @ RegistryMismatch::InvalidSchema { .. }) => {
            let text = e.to_string();
            assert!(text.starts_with("test.broken.thing v3:"), "{text}");
            assert!(text.contains("urn:test:broken"), "{text}");
        }
        other => panic!("expected InvalidSchema, got {other:?}"),
    }
    match matches_registry_file::<UserCreated>("tests/fixtures/missing.json") {
        Err(e @ RegistryMismatch::Bundle { .. }) => {
            let text = e.to_string();
            assert!(text.starts_with("auth.user.created v1:"), "{text}");
            assert!(text.contains("missing.json"), "{text}");
        }
        other => panic!("expected Bundle, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------

fn incompatibility(result: Result<(), RegistryMismatch>) -> Incompatibility {
    match result {
        Err(RegistryMismatch::Incompatible(report)) => *report,
        Err(other) => panic!("expected Incompatible, got: {other}"),
        Ok(()) => panic!("expected a mismatch, the type matched"),
    }
}

fn find(report: &Incompatibility, pred: impl Fn(&Mismatch) -> bool) -> &Mismatch {
    report
        .mismatches
        .iter()
        .find(|m| pred(m))
        .unwrap_or_else(|| panic!("no such mismatch in:\n{report}"))
}

/// Whether `doc` is valid against `E`'s embedded registry schema (formats
/// asserted).
fn registry_accepts<E: DomainEvent>(doc: &Value) -> bool {
    let schema: Value = serde_json::from_str(E::SCHEMA).expect("schema is JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("schema compiles")
        .is_valid(doc)
}

// ---------------------------------------------------------------------------
// A required property with a `default` (fixture).

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Tier {
    #[default]
    Free,
    Pro,
}

impl Tier {
    fn is_free(&self) -> bool {
        *self == Tier::Free
    }
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[domain_event(schema = "tests/fixtures/plan.changed.v1.json")]
struct PlanChanged {
    plan_id: Uuid,
    #[serde(default)]
    tier: Tier,
}

/// Leaves the default out when writing: the derive refuses
/// `skip_serializing_if` on a required property.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct PlanChangedSkippingDefault {
    plan_id: Uuid,
    #[serde(default, skip_serializing_if = "Tier::is_free")]
    tier: Tier,
}
same_schema_as!(PlanChangedSkippingDefault => PlanChanged);

#[test]
fn a_required_property_with_a_default_must_still_be_written() {
    // Reading with `#[serde(default)]` is fine (more lenient than the schema).
    assert_matches_registry::<PlanChanged>();
    let report = incompatibility(matches_registry::<PlanChangedSkippingDefault>());
    assert_eq!(report.mismatches.len(), 1, "{report}");
    let m = &report.mismatches[0];
    assert_eq!(m.direction, Direction::Serialize);
    assert_eq!(m.kind(), ChangeKind::RequiredPropertyWithDefaultAdded);
    assert_eq!(m.fields, ["/tier"]);
    assert!(
        m.change
            .message
            .contains("a validator does not fill defaults in"),
        "{report}"
    );
    let doc = serde_json::to_value(PlanChangedSkippingDefault {
        plan_id: Uuid::nil(),
        tier: Tier::Free,
    })
    .expect("serializes");
    assert!(!registry_accepts::<PlanChanged>(&doc), "{doc}");
}
