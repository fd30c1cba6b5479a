//! Decoding is strict and total (issue 5, "Envelope").
//!
//! - Strict: one test per [`DecodeError`] variant, each with an input that
//!   triggers it and an assertion that the message says what is wrong and
//!   where; a catalogue test fails to compile when a variant is added without
//!   a trigger here. Header/body disagreements of every `ce-` header.
//! - Total: every truncation of a valid body, a deterministic set of byte
//!   mutations, seeded garbage (`fastrand`) and attribute swaps give `Ok` or
//!   `Err`, never a panic; whatever is accepted encodes again to the same
//!   envelope.
//! - Round trip: envelope -> `to_json` + `headers` -> `decode_message` gives
//!   back an equal envelope. What survives of `time`: RFC 3339 keeps the
//!   nanoseconds (`time` writes up to nine fraction digits, trailing zeros
//!   trimmed, and reads them back exactly); the UTC offset is not kept, since
//!   Tidings writes every time in UTC (`Z`), but the instant is, and
//!   `OffsetDateTime` equality compares instants. What survives of `data`:
//!   every JSON value serde_json reads back the same (see
//!   `round_trip_keeps_payload_numbers`).
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};

use async_nats::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tidings::envelope::{DecodeError, EncodeError, Envelope};
use tidings::{DomainEvent, OrganizationId};
use time::macros::datetime;
use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;

const ID: &str = "0193a5c2-7b1e-7c3d-8e4f-5a6b7c8d9e0f";

fn org(id: &str) -> OrganizationId {
    OrganizationId::new(id).expect("a valid organization id")
}

/// A complete envelope: subject, dataschema and three extensions.
fn sample() -> Envelope {
    let mut extensions = BTreeMap::new();
    extensions.insert(
        "traceparent".to_string(),
        json!("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    );
    extensions.insert("retries".to_string(), json!(3));
    extensions.insert("replayed".to_string(), json!(false));
    Envelope {
        id: Uuid::parse_str(ID).expect("a UUID"),
        source: "/tidings/auth".into(),
        event_type: "auth.user.created".into(),
        time: datetime!(2026-11-26 14:22:17.123456789 UTC),
        dataschema: Some("https://schemas.tidings.dev/auth/user.created.v1.json".into()),
        subject: Some("u-123".into()),
        organization_id: org("org-42"),
        schema_version: 1,
        extensions,
        data: json!({"user_id": "u-123", "email": "ada@example.com"}),
    }
}

fn body_of(envelope: &Envelope) -> Vec<u8> {
    envelope.to_json().expect("the envelope encodes")
}

fn headers_of(envelope: &Envelope) -> HeaderMap {
    envelope.headers().expect("the headers encode")
}

/// The sample body as a JSON object, changed by `change`.
fn body_with(change: impl FnOnce(&mut Map<String, Value>)) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(&body_of(&sample())).expect("JSON");
    change(value.as_object_mut().expect("an object"));
    serde_json::to_vec(&value).expect("serializes")
}

fn decode_err(body: &[u8]) -> DecodeError {
    match Envelope::decode(body) {
        Ok(envelope) => panic!(
            "{:?} was accepted as {envelope:?}",
            String::from_utf8_lossy(body)
        ),
        Err(e) => e,
    }
}

fn assert_mentions(err: &DecodeError, parts: &[&str]) {
    let message = err.to_string();
    for part in parts {
        assert!(
            message.contains(part),
            "{message:?} does not mention {part:?} ({err:?})"
        );
    }
}

// ---------------------------------------------------------------- events --

/// `auth.user.created` v1, written by hand as generated code would be.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct UserCreated {
    user_id: String,
    email: String,
}

const USER_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["user_id", "email"],
  "properties": {
    "user_id": {"type": "string", "minLength": 1},
    "email": {"type": "string"}
  }
}"#;

impl DomainEvent for UserCreated {
    const EVENT_TYPE: &'static str = "auth.user.created";
    const SCHEMA_VERSION: u32 = 1;
    const STREAM: &'static str = "AUTH_EVENTS";
    const SCHEMA: &'static str = USER_SCHEMA;
    const SCHEMA_URI: &'static str = "https://schemas.tidings.dev/auth/user.created.v1.json";
    const KEY_FIELD: Option<&'static str> = Some("user_id");

    fn entity_key(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.user_id))
    }
}

/// A type whose embedded schema is not JSON.
#[derive(Debug, Serialize, Deserialize)]
struct BrokenSchema {
    user_id: String,
}

impl DomainEvent for BrokenSchema {
    const EVENT_TYPE: &'static str = "auth.user.created";
    const SCHEMA_VERSION: u32 = 1;
    const STREAM: &'static str = "AUTH_EVENTS";
    const SCHEMA: &'static str = "{\"type\": ";
    const SCHEMA_URI: &'static str = "";
}

/// A type whose schema accepts anything, so the Rust type is the only check.
#[derive(Debug, Serialize, Deserialize)]
struct LooseSchema {
    user_id: String,
    age: u8,
}

impl DomainEvent for LooseSchema {
    const EVENT_TYPE: &'static str = "auth.user.created";
    const SCHEMA_VERSION: u32 = 1;
    const STREAM: &'static str = "AUTH_EVENTS";
    const SCHEMA: &'static str = "{}";
    const SCHEMA_URI: &'static str = "";
}

// ------------------------------------------------------ one per variant --

/// The variant's name; a new variant fails to compile here until it has a
/// trigger in `every_variant_has_a_trigger`.
fn variant(err: &DecodeError) -> &'static str {
    match err {
        DecodeError::NotJson { .. } => "NotJson",
        DecodeError::NotAnObject { .. } => "NotAnObject",
        DecodeError::Missing { .. } => "Missing",
        DecodeError::WrongType { .. } => "WrongType",
        DecodeError::InvalidValue { .. } => "InvalidValue",
        DecodeError::Organization(_) => "Organization",
        DecodeError::AttributeName(_) => "AttributeName",
        DecodeError::HeaderMismatch { .. } => "HeaderMismatch",
        DecodeError::UnexpectedType { .. } => "UnexpectedType",
        DecodeError::UnsupportedVersion { .. } => "UnsupportedVersion",
        DecodeError::InvalidPayload { .. } => "InvalidPayload",
        DecodeError::Schema(_) => "Schema",
        DecodeError::Deserialize { .. } => "Deserialize",
    }
}

const VARIANTS: usize = 13;

#[test]
fn every_variant_has_a_trigger() {
    let mut wrong_header = headers_of(&sample());
    wrong_header.insert("ce-type", "auth.user.deleted");
    let mut product = sample();
    product.event_type = "catalog.product.created".into();
    let mut v2 = sample();
    v2.schema_version = 2;
    let mut bad_payload = sample();
    bad_payload.data = json!({"user_id": ""});
    let errors = [
        decode_err(b"{"),
        decode_err(b"[]"),
        decode_err(&body_with(|o| {
            o.remove("source");
        })),
        decode_err(&body_with(|o| {
            o.insert("source".into(), json!(7));
        })),
        decode_err(&body_with(|o| {
            o.insert("specversion".into(), json!("0.3"));
        })),
        decode_err(&body_with(|o| {
            o.insert("organizationid".into(), json!("org.42"));
        })),
        decode_err(&body_with(|o| {
            o.insert("TraceParent".into(), json!("x"));
        })),
        Envelope::decode_message(Some(&wrong_header), &body_of(&sample())).expect_err("mismatch"),
        product.data_as::<UserCreated>().expect_err("other type"),
        v2.data_as::<UserCreated>().expect_err("other version"),
        bad_payload.data_as::<UserCreated>().expect_err("invalid"),
        sample()
            .data_as::<BrokenSchema>()
            .expect_err("broken schema"),
        sample().data_as::<LooseSchema>().expect_err("does not fit"),
    ];
    let seen: BTreeSet<&str> = errors.iter().map(variant).collect();
    assert_eq!(seen.len(), VARIANTS, "variants triggered: {seen:?}");
}

#[test]
fn not_json_says_line_and_column() {
    let err = decode_err(b"{\"specversion\": \"1.0\",\n  \"id\": }");
    assert!(
        matches!(
            err,
            DecodeError::NotJson {
                line: 2,
                column: 9,
                ..
            }
        ),
        "{err:?}"
    );
    assert_mentions(&err, &["not JSON", "line 2, column 9"]);

    let err = decode_err(b"");
    assert!(matches!(err, DecodeError::NotJson { .. }), "{err:?}");
    assert_mentions(&err, &["EOF"]);

    // Trailing bytes after the object are refused too.
    let mut body = body_of(&sample());
    body.extend_from_slice(b" {}");
    assert!(matches!(decode_err(&body), DecodeError::NotJson { .. }));
}

#[test]
fn a_body_that_is_not_utf8_is_not_json_with_its_place() {
    // The same body decodes with a non-ASCII source, and is refused, with
    // where, when one byte of it is not UTF-8.
    let text = String::from_utf8(body_of(&sample())).expect("UTF-8");
    let good = text.replacen("\"source\":\"", "\"source\":\"caf\u{e9}/", 1);
    assert_ne!(good, text, "the sample has a source");
    let envelope = Envelope::decode(good.as_bytes()).expect("UTF-8 text decodes");
    assert!(envelope.source.starts_with("caf\u{e9}/"), "{envelope:?}");
    let mut bad = good.into_bytes();
    let at = bad.iter().position(|b| *b == 0xc3).expect("the é");
    bad[at] = 0xff;
    let err = decode_err(&bad);
    assert!(
        matches!(err, DecodeError::NotJson { line: 1, column, .. } if column > at),
        "{err:?}"
    );
    assert_mentions(&err, &["not JSON", "line 1"]);
}

#[test]
fn not_json_names_a_duplicate_attribute() {
    // Readers disagree on which of two `organizationid`s counts (first or
    // last); a strict reader takes neither.
    let body = String::from_utf8(body_of(&sample()))
        .expect("UTF-8")
        .replacen('{', "{\"organizationid\":\"org-evil\",", 1);
    let err = decode_err(body.as_bytes());
    assert!(
        matches!(err, DecodeError::NotJson { line: 1, .. }),
        "{err:?}"
    );
    assert_mentions(&err, &["\"organizationid\" appears twice"]);

    // Duplicates inside `data` are the payload's business.
    let mut body = String::from_utf8(body_of(&sample())).expect("UTF-8");
    body = body.replace("\"data\":{", "\"data\":{\"a\":1,\"a\":2,");
    assert!(Envelope::decode(body.as_bytes()).is_ok(), "{body}");
}

#[test]
fn not_an_object_says_what_it_is() {
    for (input, found) in [
        (&b"[1, {}]"[..], "array"),
        (b"\"text\"", "string"),
        (b"42", "number"),
        (b"-1.5e3", "number"),
        (b"null", "null"),
        (b"true", "boolean"),
    ] {
        let err = decode_err(input);
        assert!(
            matches!(&err, DecodeError::NotAnObject { found: f } if *f == found),
            "{err:?}"
        );
        assert_mentions(&err, &[&format!("JSON {found}, not a CloudEvents object")]);
    }
}

#[test]
fn missing_names_the_attribute() {
    for attribute in [
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "datacontenttype",
        "organizationid",
        "schemaversion",
        "data",
    ] {
        let err = decode_err(&body_with(|o| {
            o.remove(attribute);
        }));
        assert!(
            matches!(&err, DecodeError::Missing { attribute: a } if *a == attribute),
            "{attribute}: {err:?}"
        );
        assert_mentions(&err, &[&format!("{attribute:?} is missing")]);

        // JSON event format 2.2: null is the same as absent.
        if attribute != "data" {
            let err = decode_err(&body_with(|o| {
                o.insert(attribute.into(), Value::Null);
            }));
            assert!(
                matches!(&err, DecodeError::Missing { attribute: a } if *a == attribute),
                "{attribute}: null: {err:?}"
            );
        }
    }
}

#[test]
fn null_optional_attributes_are_unset() {
    // JSON event format 2.2 (and the spec's own example: "subject": null).
    let decoded = Envelope::decode(&body_with(|o| {
        o.insert("subject".into(), Value::Null);
        o.insert("dataschema".into(), Value::Null);
        o.insert("unsetextension".into(), Value::Null);
    }))
    .expect("null means unset");
    let mut expected = sample();
    expected.subject = None;
    expected.dataschema = None;
    assert_eq!(decoded, expected);

    // `data: null` is an explicit null payload, not an absent one (3.1.1).
    let decoded = Envelope::decode(&body_with(|o| {
        o.insert("data".into(), Value::Null);
    }))
    .expect("null data");
    assert_eq!(decoded.data, Value::Null);
}

#[test]
fn escaped_attribute_text_decodes_as_its_plain_form() {
    // The decoder borrows attribute text from the body where it has no
    // escapes; text with escapes must come out the same, and an escape
    // may hide a character a check refuses.
    let plain = body_of(&sample());
    let text = String::from_utf8(plain).expect("UTF-8");
    let escaped = text
        .replace("\"1.0\"", "\"\\u0031.0\"")
        .replace("/tidings/auth", "\\/tidings\\/auth")
        .replace("auth.user.created", "auth.user.cr\\u0065ated")
        .replace("application/json", "application\\/json")
        .replace("org-42", "org\\u002d42")
        .replace(
            "\"u-123\",\"organizationid",
            "\"u\\u002d123\",\"organizationid",
        )
        .replace("2026-11-26T", "2026-11-26\\u0054")
        .replace(&ID[..4], "\\u0030193");
    assert_eq!(escaped.matches('\\').count(), 9, "{escaped}");
    assert_eq!(
        Envelope::decode(escaped.as_bytes()).expect("escaped text decodes"),
        sample()
    );
    let hidden_dot = text.replace("org-42", "org\\u002e42");
    assert_mentions(
        &decode_err(hidden_dot.as_bytes()),
        &["organizationid", "'.'"],
    );

    // `data` of every JSON kind comes through as it was written.
    for data in [
        json!("text with \"quotes\""),
        json!(7),
        json!(-7),
        json!(1.5),
        json!(true),
        json!([1, "two", {"three": 3}]),
        json!({"nested": {"deeper": [null]}}),
    ] {
        let decoded = Envelope::decode(&body_with(|o| {
            o.insert("data".into(), data.clone());
        }))
        .expect("any JSON payload");
        assert_eq!(decoded.data, data);
    }
}

#[test]
fn wrong_type_names_attribute_expected_and_found() {
    let cases: [(&str, Value, &str, &str); 9] = [
        ("id", json!(42), "a string", "number"),
        ("source", json!(["/a"]), "a string", "array"),
        ("type", json!({"a": 1}), "a string", "object"),
        ("time", json!(1_764_166_937), "a string", "number"),
        ("subject", json!(true), "a string", "boolean"),
        ("organizationid", json!(42), "a string", "number"),
        ("schemaversion", json!("1"), "an integer", "string"),
        (
            "traceparent",
            json!({"trace": 1}),
            "a string, a boolean or an integer",
            "object",
        ),
        (
            "ratio",
            json!(0.5),
            "a string, a boolean or an integer",
            "number",
        ),
    ];
    for (attribute, value, expected, found) in cases {
        let err = decode_err(&body_with(|o| {
            o.insert(attribute.into(), value);
        }));
        match &err {
            DecodeError::WrongType {
                attribute: a,
                found: f,
                ..
            } => {
                assert_eq!((a.as_str(), *f), (attribute, found), "{err:?}");
            }
            other => panic!("{attribute}: {other:?}"),
        }
        assert_mentions(&err, &[&format!("{attribute:?} must be {expected}"), found]);
    }
    // CloudEvents Integers are 32-bit.
    let err = decode_err(&body_with(|o| {
        o.insert("retries".into(), json!(2_147_483_648_u64));
    }));
    assert!(matches!(err, DecodeError::WrongType { .. }), "{err:?}");
    assert!(Envelope::decode(&body_with(|o| {
        o.insert("retries".into(), json!(-2_147_483_648_i64));
    }))
    .is_ok());
}

#[test]
fn invalid_value_names_attribute_value_and_reason() {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("specversion", json!("0.3"), "only CloudEvents 1.0"),
        ("specversion", json!("1"), "only CloudEvents 1.0"),
        ("id", json!("not-a-uuid"), "UUIDs"),
        (
            "id",
            json!("0193a5c27b1e7c3d8e4f5a6b7c8d9e0f"),
            "hyphenated",
        ),
        (
            "id",
            json!("{0193a5c2-7b1e-7c3d-8e4f-5a6b7c8d9e0f}"),
            "hyphenated",
        ),
        (
            "id",
            json!("urn:uuid:0193a5c2-7b1e-7c3d-8e4f-5a6b7c8d9e0f"),
            "hyphenated",
        ),
        ("id", json!(""), "must not be empty"),
        ("source", json!(""), "must not be empty"),
        ("type", json!("AuthUserCreated"), "not 3"),
        ("type", json!("auth.user"), "not 3"),
        ("type", json!("auth.User.created"), "lower-case"),
        ("time", json!("2026-11-26T14:22:17"), "RFC 3339"),
        ("time", json!("yesterday"), "RFC 3339"),
        ("time", json!("2026-02-30T00:00:00Z"), "RFC 3339"),
        ("datacontenttype", json!("text/plain"), "application/json"),
        ("dataschema", json!(""), "must not be empty"),
        ("subject", json!(""), "must not be empty"),
        ("organizationid", json!(""), "must not be empty"),
        ("schemaversion", json!(0), "from 1 to 2147483647"),
        ("schemaversion", json!(-1), "from 1 to 2147483647"),
        ("schemaversion", json!(1.5), "from 1 to 2147483647"),
        ("schemaversion", json!(1.0), "from 1 to 2147483647"),
        (
            "schemaversion",
            json!(2_147_483_648_u64),
            "from 1 to 2147483647",
        ),
        ("data_base64", json!("e30="), "\"data\""),
    ];
    for (attribute, value, reason) in cases {
        let shown = match &value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let err = decode_err(&body_with(|o| {
            o.insert(attribute.into(), value);
        }));
        assert!(
            matches!(&err, DecodeError::InvalidValue { attribute: a, .. } if *a == attribute),
            "{attribute} = {shown}: {err:?}"
        );
        let mut parts = vec![format!("attribute {attribute:?}"), reason.to_string()];
        if attribute != "data_base64" {
            parts.push(format!("{shown:?}"));
        }
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        assert_mentions(&err, &parts);
    }
}

#[test]
fn time_accepts_what_rfc3339_allows() {
    // RFC 3339 5.6 lets applications use a space for the `T`, and `time`
    // reads it; the instant is the same and Tidings writes `T` back.
    for text in [
        "2026-11-26 14:22:17.123456789Z",
        "2026-11-26T15:22:17.123456789+01:00",
    ] {
        let decoded = Envelope::decode(&body_with(|o| {
            o.insert("time".into(), json!(text));
        }))
        .unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(decoded.time, sample().time, "{text}");
        assert_eq!(
            decoded.time_rfc3339().expect("formats"),
            "2026-11-26T14:22:17.123456789Z"
        );
    }
    // Out of range once in UTC: it could not be written back.
    for text in ["9999-12-31T23:59:59-00:01", "0000-01-01T00:00:00+00:01"] {
        let err = decode_err(&body_with(|o| {
            o.insert("time".into(), json!(text));
        }));
        assert!(
            matches!(
                err,
                DecodeError::InvalidValue {
                    attribute: "time",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_mentions(&err, &[text, "0000 to 9999 in UTC"]);
    }
}

#[test]
fn organization_says_which_character_is_wrong() {
    for (value, says) in [
        ("org.42", "'.'"),
        ("org*", "'*'"),
        ("org>", "'>'"),
        ("org 42", "' '"),
        ("org\t42", "'\\t'"),
        ("org\u{0}", "'\\0'"),
        ("$SYS", "'$'"),
        // Invisible and bidirectional characters: a different tenant that
        // prints like org-42.
        ("org-42\u{200b}", "U+200B"),
        ("org-\u{202e}24", "U+202E"),
        ("\u{43e}rg-42", "U+043E"),
    ] {
        let err = decode_err(&body_with(|o| {
            o.insert("organizationid".into(), json!(value));
        }));
        assert!(matches!(err, DecodeError::Organization(_)), "{err:?}");
        assert_mentions(&err, &["attribute \"organizationid\"", says]);
    }
    let long = "o".repeat(129);
    let err = decode_err(&body_with(|o| {
        o.insert("organizationid".into(), json!(long));
    }));
    assert_mentions(&err, &["organizationid", "129 bytes"]);
}

#[test]
fn attribute_name_quotes_the_name() {
    for name in [
        "TraceParent",
        "trace_parent",
        "trace-parent",
        "traçe",
        "",
        "abcdefghijklmnopqrstu",
    ] {
        let err = decode_err(&body_with(|o| {
            o.insert(name.into(), json!("x"));
        }));
        assert!(
            matches!(&err, DecodeError::AttributeName(n) if n == name),
            "{name:?}: {err:?}"
        );
        assert_mentions(&err, &[&format!("{name:?}"), "only a-z and 0-9"]);
    }
    // Twenty characters is the limit.
    assert!(Envelope::decode(&body_with(|o| {
        o.insert("abcdefghijklmnopqrst".into(), json!("x"));
    }))
    .is_ok());
}

#[test]
fn unexpected_type_names_both_types() {
    let mut envelope = sample();
    envelope.event_type = "catalog.product.created".into();
    let err = envelope.data_as::<UserCreated>().expect_err("other type");
    assert!(matches!(err, DecodeError::UnexpectedType { .. }), "{err:?}");
    assert_mentions(
        &err,
        &["catalog.product.created", "not a auth.user.created"],
    );
}

#[test]
fn unsupported_version_names_both_versions() {
    let mut envelope = sample();
    envelope.schema_version = 2;
    let err = envelope.data_as::<UserCreated>().expect_err("v2");
    assert!(
        matches!(
            err,
            DecodeError::UnsupportedVersion {
                found: 2,
                reader: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_mentions(&err, &["auth.user.created v2 cannot be read as v1"]);
}

#[test]
fn invalid_payload_gives_every_violation_with_its_pointer() {
    let mut envelope = sample();
    envelope.data = json!({"user_id": "", "email": 5});
    let err = envelope.data_as::<UserCreated>().expect_err("invalid");
    match &err {
        DecodeError::InvalidPayload {
            event_type,
            version,
            violations,
        } => {
            assert_eq!((*event_type, *version), ("auth.user.created", 1));
            let paths: BTreeSet<&str> = violations
                .iter()
                .map(|v| v.instance_path.as_str())
                .collect();
            assert_eq!(paths, BTreeSet::from(["/user_id", "/email"]), "{err}");
        }
        other => panic!("{other:?}"),
    }
    assert_mentions(
        &err,
        &["auth.user.created v1 payload", "at /user_id", "at /email"],
    );

    envelope.data = json!({"user_id": "u-1"});
    let err = envelope
        .data_as::<UserCreated>()
        .expect_err("missing email");
    assert_mentions(&err, &["at /:", "email"]);
}

#[test]
fn schema_error_names_the_type() {
    let err = sample().data_as::<BrokenSchema>().expect_err("broken");
    assert!(matches!(err, DecodeError::Schema(_)), "{err:?}");
    assert_mentions(&err, &["auth.user.created v1", "unusable", "not JSON"]);
}

#[test]
fn deserialize_gives_serdes_message() {
    let err = sample().data_as::<LooseSchema>().expect_err("no age");
    assert!(matches!(err, DecodeError::Deserialize { .. }), "{err:?}");
    assert_mentions(&err, &["auth.user.created payload", "missing field `age`"]);

    let mut envelope = sample();
    envelope.data = json!({"user_id": "u-1", "age": 300});
    let err = envelope.data_as::<LooseSchema>().expect_err("age too big");
    assert_mentions(&err, &["does not fit the Rust type", "300"]);
}

#[test]
fn data_as_reads_a_valid_payload() {
    let event = sample().data_as::<UserCreated>().expect("valid");
    assert_eq!(
        event,
        UserCreated {
            user_id: "u-123".into(),
            email: "ada@example.com".into()
        }
    );
}

// ------------------------------------------------------ header mismatch --

fn mismatch(headers: &HeaderMap) -> DecodeError {
    Envelope::decode_message(Some(headers), &body_of(&sample())).expect_err("a mismatch")
}

#[test]
fn every_ce_header_must_agree_with_the_body() {
    let cases = [
        ("ce-id", "0193a5c2-7b1e-7c3d-8e4f-000000000000"),
        ("Nats-Msg-Id", "0193a5c2-7b1e-7c3d-8e4f-000000000000"),
        ("ce-specversion", "0.3"),
        ("ce-source", "/tidings/catalog"),
        ("ce-type", "auth.user.deleted"),
        ("ce-time", "2026-11-26T14:22:17.123456788Z"),
        ("ce-datacontenttype", "text/plain"),
        (
            "ce-dataschema",
            "https://schemas.tidings.dev/auth/user.created.v2.json",
        ),
        ("ce-subject", "u-124"),
        ("ce-organizationid", "org-43"),
        ("ce-schemaversion", "2"),
        (
            "ce-traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
        ),
        ("ce-retries", "4"),
        ("ce-replayed", "true"),
    ];
    for (header, value) in cases {
        let mut headers = headers_of(&sample());
        headers.insert(header, value);
        let err = mismatch(&headers);
        match &err {
            DecodeError::HeaderMismatch {
                header: h,
                header_value,
                ..
            } => assert_eq!((h.as_str(), header_value.as_str()), (header, value)),
            other => panic!("{header}: {other:?}"),
        }
        assert_mentions(
            &err,
            &[&format!("header {header} is {value:?}"), "body says"],
        );
    }
}

#[test]
fn a_header_for_an_attribute_the_body_lacks_is_a_mismatch() {
    let mut envelope = sample();
    envelope.subject = None;
    let mut headers = headers_of(&sample());
    headers.insert("ce-unknownext", "x");
    let err = Envelope::decode_message(Some(&headers), &body_of(&envelope))
        .expect_err("subject header, no subject");
    // Headers are checked in name order: ce-subject before ce-unknownext.
    assert_mentions(&err, &["header ce-subject is \"u-123\"", "(absent)"]);
}

#[test]
fn header_names_match_without_case_and_every_value_counts() {
    let mut headers = headers_of(&sample());
    headers.insert("CE-Type", "auth.user.deleted");
    assert_mentions(&mismatch(&headers), &["CE-Type", "auth.user.deleted"]);

    let mut headers = headers_of(&sample());
    headers.append("ce-organizationid", "org-evil");
    assert_mentions(&mismatch(&headers), &["ce-organizationid", "org-evil"]);
}

#[test]
fn header_values_are_percent_decoded_and_unquoted() {
    let body = body_of(&sample());
    let agreeing = [
        ("ce-source", "%2Ftidings%2Fauth"),
        ("ce-source", "%2ftidings%2fauth"),
        ("ce-source", "\"/tidings/auth\""),
        ("ce-source", "\"/tidings\\/auth\""),
        // Same instant, written another way.
        ("ce-time", "2026-11-26T15:22:17.123456789+01:00"),
        ("ce-id", "0193A5C2-7B1E-7C3D-8E4F-5A6B7C8D9E0F"),
    ];
    for (header, value) in agreeing {
        let mut headers = headers_of(&sample());
        headers.insert(header, value);
        let decoded = Envelope::decode_message(Some(&headers), &body);
        assert!(decoded.is_ok(), "{header}: {value}: {decoded:?}");
    }
    let refused = [
        ("ce-source", "%2Ftidings%2Fauth%"),
        ("ce-source", "%zz"),
        ("ce-source", "\"/tidings/auth\\\""),
        // Overlong UTF-8 for a space (the binding's own example).
        ("ce-subject", "u-123%C0%A0"),
        ("ce-subject", "u-123%FF"),
        ("ce-time", "not a time"),
    ];
    for (header, value) in refused {
        let mut headers = headers_of(&sample());
        headers.insert(header, value);
        let err = mismatch(&headers);
        assert!(
            matches!(&err, DecodeError::HeaderMismatch { header: h, .. } if h == header),
            "{header}: {value}: {err:?}"
        );
    }
}

#[test]
fn messages_without_ce_headers_decode() {
    let body = body_of(&sample());
    assert_eq!(
        Envelope::decode_message(None, &body).expect("no headers"),
        sample()
    );
    assert_eq!(
        Envelope::decode_message(Some(&HeaderMap::new()), &body).expect("empty headers"),
        sample()
    );
    let mut other = HeaderMap::new();
    other.insert("Nats-Expected-Stream", "AUTH_EVENTS");
    other.insert("traceparent", "unrelated");
    assert_eq!(
        Envelope::decode_message(Some(&other), &body).expect("unrelated headers"),
        sample()
    );
}

// --------------------------------------------------------------- encode --

#[test]
fn encode_refuses_what_decode_would_refuse() {
    type Change = fn(&mut Envelope);
    let cases: [(Change, &str); 11] = [
        (|e| e.source = String::new(), "\"source\""),
        (|e| e.subject = Some(String::new()), "\"subject\""),
        (|e| e.dataschema = Some(String::new()), "\"dataschema\""),
        (|e| e.event_type = "UserCreated".into(), "\"type\""),
        (
            |e| {
                e.extensions.insert("Bad".into(), json!("x"));
            },
            "\"Bad\"",
        ),
        (
            |e| {
                e.extensions.insert("subject".into(), json!("x"));
            },
            "\"subject\"",
        ),
        (
            |e| {
                e.extensions.insert("nested".into(), json!({"a": 1}));
            },
            "\"nested\"",
        ),
        (
            |e| {
                e.extensions.insert("ratio".into(), json!(0.5));
            },
            "whole number",
        ),
        (
            |e| {
                e.extensions.insert("big".into(), json!(1_u64 << 31));
            },
            "2147483647",
        ),
        (
            |e| {
                e.extensions.insert("unset".into(), Value::Null);
            },
            "leave the extension out",
        ),
        (|e| e.schema_version = 1 << 31, "\"schemaversion\""),
    ];
    for (change, says) in cases {
        let mut envelope = sample();
        change(&mut envelope);
        for result in [
            envelope.to_json().map(|_| ()),
            envelope.headers().map(|_| ()),
        ] {
            let err: EncodeError = result.expect_err("refused");
            assert!(
                err.to_string().contains(says),
                "{err} does not mention {says}"
            );
        }
    }
}

#[test]
fn encode_refuses_times_rfc3339_cannot_write() {
    let mut envelope = sample();
    // 9999-12-31T23:30-01:00 is in year 10000 in UTC.
    envelope.time = datetime!(9999-12-31 23:30 -1);
    let err = envelope.to_json().expect_err("out of range");
    assert!(matches!(err, EncodeError::Time(_)), "{err:?}");
    assert!(err.to_string().contains("RFC 3339"), "{err}");
    envelope.time = datetime!(-0001-01-01 0:00 UTC);
    assert!(matches!(envelope.headers(), Err(EncodeError::Time(_))));
}

// ------------------------------------------------------------ totality --

/// Decodes without letting a panic escape: `Err(description)` on a panic.
fn decode_guarded(
    body: &[u8],
    headers: Option<&HeaderMap>,
) -> Result<Result<Envelope, DecodeError>, String> {
    catch_unwind(AssertUnwindSafe(|| {
        let result = Envelope::decode_message(headers, body);
        // The message is built too: Display must not panic either.
        if let Err(e) = &result {
            assert!(!e.to_string().is_empty());
        }
        result
    }))
    .map_err(|_| format!("panicked on {:?}", String::from_utf8_lossy(body)))
}

/// Whatever decodes encodes again to an envelope that decodes equal.
fn assert_reencodes(envelope: &Envelope, input: &[u8]) {
    let body = envelope.to_json().unwrap_or_else(|e| {
        panic!(
            "{:?} decoded but does not encode: {e}",
            String::from_utf8_lossy(input)
        )
    });
    let headers = envelope.headers().expect("headers encode");
    let again = Envelope::decode_message(Some(&headers), &body).expect("re-decodes");
    assert_eq!(
        &again,
        envelope,
        "input {:?}",
        String::from_utf8_lossy(input)
    );
}

#[derive(Default)]
struct Tally {
    ok: usize,
    err: usize,
    panics: Vec<String>,
}

impl Tally {
    fn run(&mut self, body: &[u8], headers: Option<&HeaderMap>) {
        match decode_guarded(body, headers) {
            Ok(Ok(envelope)) => {
                self.ok += 1;
                assert_reencodes(&envelope, body);
            }
            Ok(Err(_)) => self.err += 1,
            Err(panic) => self.panics.push(panic),
        }
    }

    fn assert_no_panic(&self, what: &str) {
        assert!(
            self.panics.is_empty(),
            "{what}: {} panics, first: {}",
            self.panics.len(),
            self.panics[0]
        );
    }
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let envelope = sample();
    let body = body_of(&envelope);
    let headers = headers_of(&envelope);
    let mut tally = Tally::default();
    for end in 0..body.len() {
        tally.run(&body[..end], None);
        tally.run(&body[..end], Some(&headers));
    }
    tally.assert_no_panic("truncations");
    assert_eq!(tally.ok, 0, "a truncated body was accepted");
    assert_eq!(tally.err, 2 * body.len());
    assert_eq!(
        Envelope::decode_message(Some(&headers), &body).expect("whole"),
        envelope
    );
}

#[test]
fn every_byte_mutation_is_ok_or_err_never_a_panic() {
    let envelope = sample();
    let body = body_of(&envelope);
    let headers = headers_of(&envelope);
    let mut tally = Tally::default();
    for i in 0..body.len() {
        for byte in [
            0x00, b'"', b'}', 0xff, b'{', b'\\', b'0', b' ', b'a', b'%', 0x7f, 0xc3,
        ] {
            if body[i] == byte {
                continue;
            }
            let mut mutated = body.clone();
            mutated[i] = byte;
            tally.run(&mutated, None);
            tally.run(&mutated, Some(&headers));
        }
        // Deleting and doubling the byte.
        let mut deleted = body.clone();
        deleted.remove(i);
        tally.run(&deleted, Some(&headers));
        let mut doubled = body.clone();
        doubled.insert(i, body[i]);
        tally.run(&doubled, Some(&headers));
    }
    tally.assert_no_panic("mutations");
    // Both outcomes occur: the loop reaches past the parser.
    assert!(
        tally.ok > 0 && tally.err > 0,
        "ok {} err {}",
        tally.ok,
        tally.err
    );
}

const TOKENS: [&str; 40] = [
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    " ",
    "\n",
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1.5",
    "1e999",
    "-0",
    "2147483648",
    "18446744073709551616",
    "\"\"",
    "\"1.0\"",
    "\"specversion\"",
    "\"id\"",
    "\"source\"",
    "\"type\"",
    "\"time\"",
    "\"datacontenttype\"",
    "\"organizationid\"",
    "\"schemaversion\"",
    "\"data\"",
    "\"data_base64\"",
    "\"subject\"",
    "\"application/json\"",
    "\"auth.user.created\"",
    "\"2026-11-26T14:22:17Z\"",
    "\"0193a5c2-7b1e-7c3d-8e4f-5a6b7c8d9e0f\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\uDFFF\\uD800\"",
    "\"\\\"",
    "\u{feff}",
];

fn random_value(rng: &mut fastrand::Rng, depth: u32) -> Value {
    match rng.u8(0..14) {
        0 => Value::Null,
        1 => json!(rng.bool()),
        2 => json!(rng.i64(..)),
        3 => json!(rng.u64(..)),
        4 => json!(rng.f64() * 1e300),
        5 => json!(rng.i32(..)),
        6 => json!(""),
        7 => json!(rng
            .choice(["1.0", "0.3", "org-42", "u-1", "/x", "auth.user.created"])
            .unwrap_or("")),
        8 => json!(ID),
        9 => json!(rng
            .choice([
                "2026-11-26T14:22:17Z",
                "2026-11-26T14:22:17.5+14:00",
                "0000-01-01T00:00:00Z",
                "9999-12-31T23:59:59.999999999Z",
                "9999-12-31T23:59:59-23:59",
                "0000-01-01T00:00:00+23:59",
                "2026-12-31T23:59:60Z",
                "2026-11-26t14:22:17z",
            ])
            .unwrap_or("")),
        10 => Value::String((0..rng.usize(0..40)).map(|_| rng.char(..)).collect()),
        11 if depth < 4 => Value::Array(
            (0..rng.usize(0..4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        12 if depth < 4 => Value::Object(
            (0..rng.usize(0..4))
                .map(|i| (format!("k{i}"), random_value(rng, depth + 1)))
                .collect(),
        ),
        _ => json!(rng.u32(..)),
    }
}

const NAMES: [&str; 16] = [
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "datacontenttype",
    "dataschema",
    "subject",
    "organizationid",
    "schemaversion",
    "data",
    "data_base64",
    "traceparent",
    "retries",
    "x",
    "Bad",
];

fn random_header_value(rng: &mut fastrand::Rng) -> String {
    let pieces = [
        "%",
        "%2",
        "%2F",
        "%C0%A0",
        "%E2%82%AC",
        "\"",
        "\\",
        "a",
        "1",
        " ",
        "é",
        "%zz",
        "Z",
        ":",
    ];
    (0..rng.usize(0..8))
        .map(|_| pieces[rng.usize(0..pieces.len())])
        .collect()
}

#[test]
fn seeded_garbage_is_ok_or_err_never_a_panic() {
    let mut rng = fastrand::Rng::with_seed(0x0074_6964_696e_6773);
    let base = sample();
    let base_body = body_of(&base);
    let base_headers = headers_of(&base);
    let mut tally = Tally::default();

    // Random bytes, and random bytes spliced into a valid body.
    for _ in 0..3_000 {
        let noise: Vec<u8> = (0..rng.usize(0..96)).map(|_| rng.u8(..)).collect();
        tally.run(&noise, None);
        let mut spliced = base_body.clone();
        let at = rng.usize(0..=spliced.len());
        spliced.splice(at..at, noise.iter().copied().take(4));
        tally.run(&spliced, Some(&base_headers));
    }
    // Soups of JSON tokens.
    for _ in 0..5_000 {
        let soup: String = (0..rng.usize(1..40))
            .map(|_| TOKENS[rng.usize(0..TOKENS.len())])
            .collect();
        tally.run(soup.as_bytes(), None);
    }
    // Valid bodies with attributes swapped for random values, removed, or
    // added, under random ce- headers.
    let object: Map<String, Value> = match serde_json::from_slice(&base_body) {
        Ok(Value::Object(o)) => o,
        other => panic!("{other:?}"),
    };
    for _ in 0..5_000 {
        let mut o = object.clone();
        for _ in 0..rng.usize(1..4) {
            let name = NAMES[rng.usize(0..NAMES.len())];
            if rng.u8(0..4) == 0 {
                o.remove(name);
            } else {
                o.insert(name.into(), random_value(&mut rng, 0));
            }
        }
        let body = serde_json::to_vec(&Value::Object(o)).expect("serializes");
        tally.run(&body, None);
        let mut headers = base_headers.clone();
        let name = NAMES[rng.usize(0..NAMES.len())];
        headers.insert(
            format!("ce-{}", name.to_ascii_lowercase()).as_str(),
            random_header_value(&mut rng).as_str(),
        );
        tally.run(&body, Some(&headers));
    }
    // Nesting deeper than serde_json's recursion limit.
    for depth in [127, 128, 129, 10_000] {
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        tally.run(deep.as_bytes(), None);
        let deep_data = String::from_utf8(base_body.clone())
            .expect("UTF-8")
            .replace("\"data\":{", &format!("\"data\":{}{{", "[".repeat(depth)))
            .replace("}}", &format!("}}{}}}", "]".repeat(depth)));
        tally.run(deep_data.as_bytes(), None);
    }
    tally.assert_no_panic("garbage");
    assert!(
        tally.ok > 0 && tally.err > 0,
        "ok {} err {}",
        tally.ok,
        tally.err
    );
}

// ----------------------------------------------------------- round trip --

fn assert_round_trip(envelope: &Envelope) {
    let body = body_of(envelope);
    let headers = headers_of(envelope);
    let decoded = Envelope::decode_message(Some(&headers), &body)
        .unwrap_or_else(|e| panic!("{envelope:?} does not round-trip: {e}"));
    assert_eq!(&decoded, envelope);
}

#[test]
fn round_trip_gives_back_an_equal_envelope() {
    let mut cases = vec![sample()];
    let mut bare = sample();
    bare.subject = None;
    bare.dataschema = None;
    bare.extensions.clear();
    cases.push(bare);
    let mut awkward = sample();
    awkward.source = "/tidings/ünï cødé \"quoted\" 100%".into();
    awkward.subject = Some("ü-%41\"".into());
    awkward.organization_id = org("org:41@eu+x=y~");
    awkward.schema_version = i32::MAX as u32;
    awkward.extensions.insert("euro".into(), json!("Euro € 😀"));
    awkward.extensions.insert("crlf".into(), json!("a\r\nb"));
    awkward.extensions.insert("minimum".into(), json!(i32::MIN));
    awkward.extensions.insert("flag".into(), json!(true));
    cases.push(awkward);
    for data in [
        Value::Null,
        json!("a string"),
        json!([1, "two", null, {"three": [3.25]}]),
        json!({"nested": {"deeper": {"deepest": ["ü", "\u{0}", "😀"]}}}),
        json!({"big": u64::MAX, "small": i64::MIN, "float": 1.5e300}),
    ] {
        let mut envelope = sample();
        envelope.data = data;
        cases.push(envelope);
    }
    for envelope in &cases {
        assert_round_trip(envelope);
    }
}

#[test]
fn round_trip_keeps_time_to_the_nanosecond() {
    let cases: [(OffsetDateTime, &str); 9] = [
        (datetime!(2026-11-26 14:22:17 UTC), "2026-11-26T14:22:17Z"),
        (
            datetime!(2026-11-26 14:22:17.000000001 UTC),
            "2026-11-26T14:22:17.000000001Z",
        ),
        (
            datetime!(2026-11-26 14:22:17.1 UTC),
            "2026-11-26T14:22:17.1Z",
        ),
        (
            datetime!(2026-11-26 14:22:17.123 UTC),
            "2026-11-26T14:22:17.123Z",
        ),
        (
            datetime!(2026-11-26 14:22:17.123456789 UTC),
            "2026-11-26T14:22:17.123456789Z",
        ),
        (
            datetime!(2026-11-26 14:22:17.999999999 UTC),
            "2026-11-26T14:22:17.999999999Z",
        ),
        (datetime!(0000-01-01 0:00 UTC), "0000-01-01T00:00:00Z"),
        (
            datetime!(9999-12-31 23:59:59.999999999 UTC),
            "9999-12-31T23:59:59.999999999Z",
        ),
        // Another offset: written in UTC, the same instant.
        (
            datetime!(2026-11-26 15:22:17.5 +1),
            "2026-11-26T14:22:17.5Z",
        ),
    ];
    for (time, text) in cases {
        let mut envelope = sample();
        envelope.time = time;
        assert_eq!(envelope.time_rfc3339().expect("formats"), text);
        let body: Value = serde_json::from_slice(&body_of(&envelope)).expect("JSON");
        assert_eq!(body["time"], json!(text));
        assert_eq!(
            headers_of(&envelope).get("ce-time").map(|v| v.as_str()),
            Some(text)
        );
        let decoded = Envelope::decode_message(Some(&headers_of(&envelope)), &body_of(&envelope))
            .expect("decodes");
        assert_eq!(decoded.time, time);
        assert_eq!(decoded.time.nanosecond(), time.nanosecond());
        assert_eq!(
            decoded.time.offset(),
            UtcOffset::UTC,
            "the offset is not kept"
        );
        assert_eq!(decoded, envelope);
    }
}

#[test]
fn round_trip_keeps_payload_numbers() {
    // Floats that a fast-path parser may read one ULP off.
    let floats = [
        0.1,
        0.3,
        1.0 / 3.0,
        2.225_073_858_507_201e-308,
        5e-324,
        f64::MAX,
        f64::MIN_POSITIVE,
        9_007_199_254_740_993.0,
        1.797_693_134_862_315_7e308,
        0.000_001_234_567_890_123_456_7,
    ];
    for float in floats {
        let mut envelope = sample();
        envelope.data = json!({ "value": float });
        let decoded = Envelope::decode(&body_of(&envelope)).expect("decodes");
        assert_eq!(
            decoded.data["value"].as_f64().map(f64::to_bits),
            Some(float.to_bits()),
            "{float:e} did not survive"
        );
    }
}
