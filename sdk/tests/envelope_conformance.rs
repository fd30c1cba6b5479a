//! The envelope against CloudEvents itself (issue 5, "Envelope"): proven
//! against an independent implementation and the spec's JSON Schema.
//!
//! - The `cloudevents-sdk` crate (the CloudEvents Rust SDK, no binding
//!   features) parses our `to_json()` and sees every attribute with our value:
//!   id, source, type, time (to the nanosecond), datacontenttype, dataschema,
//!   subject, the extensions `organizationid` (a string) and `schemaversion`
//!   (an integer), other extensions, and data.
//! - The reverse: events built and serialised by `cloudevents-sdk` decode with
//!   `Envelope::decode` to the same attributes, and encode back to an equal
//!   event; events lacking what Tidings requires are refused with the right
//!   `DecodeError`.
//! - Our `ce-` headers, read by a binary-mode reader written to the
//!   CloudEvents NATS binding (percent-decoding, 3.1.3.2) on top of
//!   `cloudevents-sdk`'s binding traits, give the same event as the body.
//! - Many generated envelopes (with and without subject, dataschema and
//!   extensions) validate against the CloudEvents JSON Schema.
//!
//! `tests/data/cloudevents.schema.json` is the CloudEvents JSON Schema as
//! published in the `cloudevents/spec` repository (file
//! `cloudevents/cloudevents.json`, commit
//! cd41f28485aba611c6dbb365177c428cca69fc59), copied unchanged; the spec is
//! licensed under Apache-2.0. Later revisions moved it to
//! `cloudevents/formats/cloudevents.json`; that file could not be fetched
//! here. This revision restricts `data` to an object or a string, so the
//! generated payloads are objects and strings. `newer_schema_rules_hold_too`
//! checks directly the stricter rules a later revision may add:
//! `specversion` is "1.0" and no string attribute is empty.
use std::collections::BTreeMap;

use async_nats::HeaderMap;
use cloudevents::event::{ExtensionValue, SpecVersion};
use cloudevents::message::{BinaryDeserializer, BinarySerializer, MessageAttributeValue};
use cloudevents::{AttributesReader, Data, Event, EventBuilder, EventBuilderV10};
use serde_json::{json, Value};
use tidings::envelope::{DecodeError, EncodeError, Envelope};
use tidings::OrganizationId;
use time::macros::datetime;
use time::OffsetDateTime;
use uuid::Uuid;

const ID: &str = "0193a5c2-7b1e-7c3d-8e4f-5a6b7c8d9e0f";
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const SCHEMA_TEXT: &str = include_str!("data/cloudevents.schema.json");

fn org(id: &str) -> OrganizationId {
    OrganizationId::new(id).expect("a valid organization id")
}

fn sample() -> Envelope {
    let mut extensions = BTreeMap::new();
    extensions.insert("traceparent".to_string(), json!(TRACEPARENT));
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

/// Envelopes with headers that need percent-encoding (space, quote, `%`,
/// non-ASCII) in every attribute that can hold them.
fn awkward() -> Envelope {
    let mut envelope = sample();
    envelope.source = "/tidings/ünï cødé \"q\" 100%".into();
    envelope.subject = Some("ü-%41\"x".into());
    envelope.organization_id = org("org:41@eu+x=y~");
    envelope.schema_version = i32::MAX as u32;
    envelope
        .extensions
        .insert("euro".into(), json!("Euro € 😀"));
    envelope.extensions.insert("crlf".into(), json!("a\r\nb"));
    envelope
        .extensions
        .insert("minimum".into(), json!(i32::MIN));
    envelope
}

/// Deterministic envelopes covering every optional part: subject,
/// dataschema, extensions of each type, times, sources, tenants, payloads.
fn generated(count: usize) -> Vec<Envelope> {
    let mut rng = fastrand::Rng::with_seed(0x0063_6c6f_7564_6576);
    let types = [
        "auth.user.created",
        "catalog.product.updated",
        "ai_agent.recommendation.accepted",
        "ddmrp.buffer.recalculated",
    ];
    let sources = [
        "/tidings/auth",
        "/tidings/ai_agent",
        "https://tidings.example/catalog?region=eu#x",
        "urn:tidings:ddmrp",
        "tidings-analytics",
    ];
    let schemas = [
        "https://schemas.tidings.dev/auth/user.created.v1.json",
        "https://schemas.tidings.dev/catalog/product.updated.v2.json",
        "urn:tidings:schema:execution.order.placed:3",
    ];
    let subjects = [
        "u-123",
        "p_9",
        "ü-1",
        "a%41",
        "x",
        "0b6f3c1e-9d7a-4c55-8f3e-1a2b3c4d5e6f",
    ];
    let orgs = ["org-42", "ORG_7", "tenant:eu@acme", "o+2=g~", "a"];
    (0..count)
        .map(|i| {
            let mut extensions = BTreeMap::new();
            if rng.bool() {
                extensions.insert("traceparent".to_string(), json!(TRACEPARENT));
            }
            if rng.bool() {
                extensions.insert("retries".to_string(), json!(rng.i32(..)));
            }
            if rng.bool() {
                extensions.insert("replayed".to_string(), json!(rng.bool()));
            }
            if rng.bool() {
                extensions.insert("note".to_string(), json!("a note, \"quoted\", 50% ü"));
            }
            let seconds = rng.i64(0..253_402_300_799); // through 9999-12-31
            let nanos = match rng.u8(0..4) {
                0 => 0,
                1 => rng.u32(0..1_000) * 1_000_000,
                _ => rng.u32(0..1_000_000_000),
            };
            let time = OffsetDateTime::from_unix_timestamp(seconds)
                .expect("in range")
                .replace_nanosecond(nanos)
                .expect("a nanosecond");
            let data = if i % 7 == 0 {
                json!("a string payload")
            } else {
                json!({"n": i, "nested": {"list": [1, "two", null, true]}, "text": "ü 😀"})
            };
            Envelope {
                id: Uuid::from_u128(rng.u128(..)),
                source: sources[i % sources.len()].into(),
                event_type: types[rng.usize(0..types.len())].into(),
                time,
                dataschema: (i % 3 != 0).then(|| schemas[rng.usize(0..schemas.len())].into()),
                subject: (i % 2 == 0).then(|| subjects[rng.usize(0..subjects.len())].into()),
                organization_id: org(orgs[rng.usize(0..orgs.len())]),
                schema_version: rng.u32(1..=i32::MAX as u32),
                extensions,
                data,
            }
        })
        .collect()
}

fn parse_with_sdk(envelope: &Envelope) -> Event {
    let body = envelope.to_json().expect("encodes");
    serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "cloudevents-sdk refuses {}: {e}",
            String::from_utf8_lossy(&body)
        )
    })
}

/// What `cloudevents-sdk` makes of an extension value of ours.
fn sdk_extension(value: &Value) -> ExtensionValue {
    match value {
        Value::String(s) => ExtensionValue::String(s.clone()),
        Value::Bool(b) => ExtensionValue::Boolean(*b),
        Value::Number(n) => ExtensionValue::Integer(n.as_i64().expect("an integer")),
        other => panic!("not a CloudEvents extension value: {other}"),
    }
}

fn assert_sdk_sees(event: &Event, envelope: &Envelope) {
    assert_eq!(event.specversion(), SpecVersion::V10);
    assert_eq!(event.id(), envelope.id.to_string());
    assert_eq!(event.source(), &envelope.source);
    assert_eq!(event.ty(), envelope.event_type);
    let time = event.time().expect("time is set");
    assert_eq!(
        (time.timestamp(), time.timestamp_subsec_nanos()),
        (envelope.time.unix_timestamp(), envelope.time.nanosecond()),
        "time {time}"
    );
    assert_eq!(event.datacontenttype(), Some("application/json"));
    assert_eq!(
        event.dataschema().map(|u| u.as_str()),
        envelope.dataschema.as_deref()
    );
    assert_eq!(event.subject(), envelope.subject.as_deref());
    assert_eq!(
        event.extension("organizationid"),
        Some(&ExtensionValue::String(
            envelope.organization_id.as_str().into()
        ))
    );
    assert_eq!(
        event.extension("schemaversion"),
        Some(&ExtensionValue::Integer(i64::from(envelope.schema_version)))
    );
    for (name, value) in &envelope.extensions {
        assert_eq!(
            event.extension(name),
            Some(&sdk_extension(value)),
            "extension {name}"
        );
    }
    assert_eq!(
        event.iter_extensions().count(),
        2 + envelope.extensions.len(),
        "extensions: {:?}",
        event.iter_extensions().collect::<Vec<_>>()
    );
    assert_eq!(event.data(), Some(&Data::Json(envelope.data.clone())));
}

// ------------------------------------------------- ours -> cloudevents --

#[test]
fn cloudevents_sdk_reads_every_attribute_of_our_json() {
    let mut bare = sample();
    bare.subject = None;
    bare.dataschema = None;
    bare.extensions.clear();
    let mut cases = vec![sample(), bare, awkward()];
    cases.extend(generated(300));
    for envelope in &cases {
        assert_sdk_sees(&parse_with_sdk(envelope), envelope);
    }
}

#[test]
fn what_to_json_refuses_cloudevents_sdk_refuses_too() {
    // Objects, arrays and fractions are not CloudEvents extension types:
    // `to_json` refuses them rather than write an event other readers reject.
    for value in [json!({"a": 1}), json!([1]), json!(0.5)] {
        let mut envelope = sample();
        envelope.extensions.insert("custom".into(), value.clone());
        let err = envelope.to_json().expect_err("refused");
        assert!(
            matches!(&err, EncodeError::ExtensionValue { attribute, .. } if attribute == "custom"),
            "{err:?}"
        );
        let mut body: Value =
            serde_json::from_slice(&sample().to_json().expect("encodes")).expect("JSON");
        body["custom"] = value;
        assert!(
            serde_json::from_value::<Event>(body).is_err(),
            "cloudevents-sdk accepts what to_json refused"
        );
    }
}

// ------------------------------------------------- cloudevents -> ours --

fn sdk_event() -> EventBuilderV10 {
    EventBuilderV10::new()
        .id(ID)
        .source("/tidings/catalog")
        .ty("catalog.product.created")
        .time("2026-11-26T15:22:17.987654321+01:00")
        .subject("p-9")
        .data_with_schema(
            "application/json",
            "https://schemas.tidings.dev/catalog/product.created.v1.json",
            json!({"product_id": "p-9", "price": {"amount": 1999, "currency": "EUR"}}),
        )
        .extension("organizationid", "org-42")
        .extension("schemaversion", 1_i64)
        .extension("traceparent", TRACEPARENT)
        .extension("replayed", true)
        .extension("retries", -2_i64)
}

fn sdk_json(builder: EventBuilderV10) -> Vec<u8> {
    let event = builder.build().expect("a valid CloudEvent");
    serde_json::to_vec(&event).expect("serializes")
}

#[test]
fn events_from_cloudevents_sdk_decode() {
    let event = sdk_event().build().expect("a valid CloudEvent");
    let body = serde_json::to_vec(&event).expect("serializes");
    let envelope = Envelope::decode(&body).expect("decodes");

    let mut extensions = BTreeMap::new();
    extensions.insert("traceparent".to_string(), json!(TRACEPARENT));
    extensions.insert("replayed".to_string(), json!(true));
    extensions.insert("retries".to_string(), json!(-2));
    let expected = Envelope {
        id: Uuid::parse_str(ID).expect("a UUID"),
        source: "/tidings/catalog".into(),
        event_type: "catalog.product.created".into(),
        time: datetime!(2026-11-26 14:22:17.987654321 UTC),
        dataschema: Some("https://schemas.tidings.dev/catalog/product.created.v1.json".into()),
        subject: Some("p-9".into()),
        organization_id: org("org-42"),
        schema_version: 1,
        extensions,
        data: json!({"product_id": "p-9", "price": {"amount": 1999, "currency": "EUR"}}),
    };
    assert_eq!(envelope, expected);
    assert_eq!(envelope.organization_id().as_str(), "org-42");
    assert_eq!(envelope.schema_version(), 1);

    // And back: our encoding of it is the same CloudEvent to the SDK.
    assert_eq!(parse_with_sdk(&envelope), event);
}

#[test]
fn cloudevents_without_what_tidings_requires_are_refused() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            {
                let mut e = sdk_event().build().expect("valid");
                e.remove_extension("organizationid");
                serde_json::to_vec(&e).expect("serializes")
            },
            "organizationid",
        ),
        (
            {
                let mut e = sdk_event().build().expect("valid");
                e.remove_extension("schemaversion");
                serde_json::to_vec(&e).expect("serializes")
            },
            "schemaversion",
        ),
        (
            sdk_json(
                EventBuilderV10::new()
                    .id(ID)
                    .source("/tidings/catalog")
                    .ty("catalog.product.created")
                    .data("application/json", json!({}))
                    .extension("organizationid", "org-42")
                    .extension("schemaversion", 1_i64),
            ),
            "time",
        ),
        (
            sdk_json(
                EventBuilderV10::new()
                    .id(ID)
                    .source("/tidings/catalog")
                    .ty("catalog.product.created")
                    .time("2026-11-26T14:22:17Z")
                    .extension("organizationid", "org-42")
                    .extension("schemaversion", 1_i64),
            ),
            "datacontenttype",
        ),
    ];
    for (body, attribute) in cases {
        let err = Envelope::decode(&body).expect_err("refused");
        assert!(
            matches!(&err, DecodeError::Missing { attribute: a } if *a == attribute),
            "{attribute}: {err:?}"
        );
        assert!(err.to_string().contains(attribute), "{err}");
    }
}

#[test]
fn cloudevents_of_other_shapes_are_refused_with_the_reason() {
    // schemaversion as a string (as a binary-mode hop would leave it).
    let err = Envelope::decode(&sdk_json(sdk_event().extension("schemaversion", "1")))
        .expect_err("string version");
    assert!(
        matches!(&err, DecodeError::WrongType { attribute, found: "string", .. } if attribute == "schemaversion"),
        "{err:?}"
    );
    // Binary data travels as data_base64.
    let err = Envelope::decode(&sdk_json(
        sdk_event().data("application/json", b"{}".to_vec()),
    ))
    .expect_err("data_base64");
    assert!(
        matches!(
            err,
            DecodeError::InvalidValue {
                attribute: "data_base64",
                ..
            }
        ),
        "{err:?}"
    );
    // Another data content type.
    let err =
        Envelope::decode(&sdk_json(sdk_event().data("text/plain", "hello"))).expect_err("text");
    assert!(
        matches!(
            err,
            DecodeError::InvalidValue {
                attribute: "datacontenttype",
                ..
            }
        ),
        "{err:?}"
    );
    // Ids that are not UUIDs (the spec's own examples use such ids).
    let err = Envelope::decode(&sdk_json(sdk_event().id("A234-1234-1234"))).expect_err("id");
    assert!(
        matches!(
            err,
            DecodeError::InvalidValue {
                attribute: "id",
                ..
            }
        ),
        "{err:?}"
    );
    // A type that is not service.entity.action.
    let err =
        Envelope::decode(&sdk_json(sdk_event().ty("com.example.someevent.v2"))).expect_err("type");
    assert!(
        matches!(
            err,
            DecodeError::InvalidValue {
                attribute: "type",
                ..
            }
        ),
        "{err:?}"
    );
    // The SDK does not check attribute names; Tidings does.
    let err =
        Envelope::decode(&sdk_json(sdk_event().extension("TraceParent", "x"))).expect_err("name");
    assert!(
        matches!(&err, DecodeError::AttributeName(name) if name == "TraceParent"),
        "{err:?}"
    );
    // An organization id that is not a subject token.
    let err = Envelope::decode(&sdk_json(sdk_event().extension("organizationid", "org.42")))
        .expect_err("org");
    assert!(matches!(err, DecodeError::Organization(_)), "{err:?}");
}

// ------------------------------------------------------- ce- headers --

/// Percent-decoding as the CloudEvents NATS binding describes it (3.1.3.2),
/// written here independently of the SDK's code.
fn binding_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ASCII");
            out.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("UTF-8")
}

/// A binary-mode reader of NATS headers: `ce-` headers to attributes and
/// extensions, through `cloudevents-sdk`'s own binding traits and event
/// builder. The body is not read: ours is the structured event.
struct BinaryModeHeaders<'a>(&'a HeaderMap);

impl BinaryDeserializer for BinaryModeHeaders<'_> {
    fn deserialize_binary<R: Sized, V: BinarySerializer<R>>(
        self,
        mut visitor: V,
    ) -> cloudevents::message::Result<R> {
        let spec = self
            .0
            .get("ce-specversion")
            .map(|v| binding_decode(v.as_str()))
            .unwrap_or_default();
        let spec = SpecVersion::try_from(spec.as_str())?;
        let attributes = spec.attribute_names();
        visitor = visitor.set_spec_version(spec)?;
        for (name, values) in self.0.iter() {
            let name: &str = name.as_ref();
            let Some(attribute) = name.strip_prefix("ce-") else {
                continue;
            };
            if attribute == "specversion" {
                continue;
            }
            assert_eq!(values.len(), 1, "{name} is repeated");
            let value = MessageAttributeValue::String(binding_decode(values[0].as_str()));
            visitor = if attributes.contains(&attribute) {
                visitor.set_attribute(attribute, value)?
            } else {
                visitor.set_extension(attribute, value)?
            };
        }
        visitor.end()
    }
}

#[test]
fn ce_headers_read_in_binary_mode_give_the_body_event() {
    let mut cases = vec![sample(), awkward()];
    cases.extend(generated(200));
    for envelope in &cases {
        let headers = envelope.headers().expect("headers");
        let structured = parse_with_sdk(envelope);
        let binary = BinaryDeserializer::into_event(BinaryModeHeaders(&headers))
            .unwrap_or_else(|e| panic!("binary-mode read of {headers:?}: {e}"));
        assert_eq!(binary.specversion(), structured.specversion());
        assert_eq!(binary.id(), structured.id());
        assert_eq!(binary.source(), structured.source());
        assert_eq!(binary.ty(), structured.ty());
        assert_eq!(binary.time(), structured.time());
        assert_eq!(binary.datacontenttype(), structured.datacontenttype());
        assert_eq!(binary.dataschema(), structured.dataschema());
        assert_eq!(binary.subject(), structured.subject());
        // Binary mode carries every value as text.
        let texts = |e: &Event| -> BTreeMap<String, String> {
            e.iter_extensions()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(texts(&binary), texts(&structured));

        // NATS deduplicates on the event id; a receiver that honours the
        // binding sees structured mode (content-type application/cloudevents).
        assert_eq!(
            headers.get("Nats-Msg-Id").map(|v| v.as_str()),
            Some(envelope.id.to_string().as_str())
        );
        assert!(headers
            .get("content-type")
            .is_some_and(|v| v.as_str().starts_with("application/cloudevents")));
    }
}

#[test]
fn ce_header_values_are_percent_encoded_like_the_binding_example() {
    let mut envelope = sample();
    envelope
        .extensions
        .insert("euro".into(), json!("Euro € 😀"));
    // Organization ids cannot hold `%` (the token allow-list); an
    // extension value can.
    envelope.extensions.insert("note".into(), json!("org%41"));
    let headers = envelope.headers().expect("headers");
    // The NATS binding's own example (3.1.3.2).
    assert_eq!(
        headers.get("ce-euro").map(|v| v.as_str()),
        Some("Euro%20%E2%82%AC%20%F0%9F%98%80")
    );
    // `%` itself is encoded, so a reader cannot take org%41 for orgA.
    assert_eq!(headers.get("ce-note").map(|v| v.as_str()), Some("org%2541"));
    // Every ce- value is printable ASCII without space, quote or bare %.
    for (name, values) in headers.iter() {
        let name: &str = name.as_ref();
        for value in values {
            let text = value.as_str();
            assert!(
                text.bytes()
                    .all(|b| (0x21..=0x7e).contains(&b) && b != b'"'),
                "{name}: {text:?}"
            );
        }
    }
    assert_eq!(
        headers.get("ce-schemaversion").map(|v| v.as_str()),
        Some("1")
    );
    assert_eq!(
        headers.get("ce-replayed").map(|v| v.as_str()),
        Some("false")
    );
    assert_eq!(headers.get("ce-retries").map(|v| v.as_str()), Some("3"));
}

// ----------------------------------------------------------- JSON Schema --

fn spec_validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(SCHEMA_TEXT).expect("the schema is JSON");
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(true)
        .build(&schema)
        .expect("the CloudEvents schema compiles")
}

fn schema_errors(validator: &jsonschema::Validator, body: &Value) -> Vec<String> {
    validator
        .iter_errors(body)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn generated_envelopes_validate_against_the_cloudevents_schema() {
    let validator = spec_validator();
    let mut bare = sample();
    bare.subject = None;
    bare.dataschema = None;
    bare.extensions.clear();
    let mut cases = vec![sample(), bare];
    cases.extend(generated(1_000));
    let (mut with_subject, mut with_schema, mut with_extensions) = (0, 0, 0);
    for envelope in &cases {
        let body: Value =
            serde_json::from_slice(&envelope.to_json().expect("encodes")).expect("JSON");
        let errors = schema_errors(&validator, &body);
        assert!(errors.is_empty(), "{body}: {errors:?}");
        with_subject += usize::from(envelope.subject.is_some());
        with_schema += usize::from(envelope.dataschema.is_some());
        with_extensions += usize::from(!envelope.extensions.is_empty());
    }
    // The generator did cover both sides of every option.
    for covered in [with_subject, with_schema, with_extensions] {
        assert!(covered > 20 && covered < cases.len() - 20, "{covered}");
    }
}

#[test]
fn the_schema_validator_does_reject_broken_events() {
    // Controls: the validator checks formats, so a passing run means
    // something.
    let validator = spec_validator();
    let good: Value = serde_json::from_slice(&sample().to_json().expect("encodes")).expect("JSON");
    assert!(schema_errors(&validator, &good).is_empty());
    let breakages: [(&str, Value); 7] = [
        ("time", json!("yesterday")),
        ("time", json!("2026-11-26T14:22:17")),
        ("dataschema", json!("not a uri")),
        ("source", json!("has space")),
        ("id", json!("")),
        ("type", json!(5)),
        ("data", json!(5)),
    ];
    for (attribute, value) in breakages {
        let mut bad = good.clone();
        bad[attribute] = value.clone();
        assert!(
            !schema_errors(&validator, &bad).is_empty(),
            "{attribute} = {value} passed the schema"
        );
    }
    for required in ["specversion", "id", "type", "source"] {
        let mut bad = good.clone();
        bad.as_object_mut().expect("object").remove(required);
        assert!(!schema_errors(&validator, &bad).is_empty(), "{required}");
    }
}

#[test]
fn newer_schema_rules_hold_too() {
    // The rules the newer revision of the schema adds, checked directly.
    for envelope in generated(300) {
        let body: Value =
            serde_json::from_slice(&envelope.to_json().expect("encodes")).expect("JSON");
        assert_eq!(body["specversion"], json!("1.0"));
        for attribute in ["time", "source", "dataschema", "subject", "id", "type"] {
            if let Some(value) = body.get(attribute) {
                assert!(
                    value.as_str().is_some_and(|s| !s.is_empty()),
                    "{attribute}: {value}"
                );
            }
        }
    }
}
