use serde::Serialize;
use tidings::DomainEvent;

#[derive(Serialize, DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "a.b.c", version = 1, stream = "A", key = "ident")]
struct NoSuchField {
    id: u32,
}

#[derive(Serialize, DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "a.b.c", version = 1, stream = "A", key = "label")]
struct OptionalKey {
    id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<String>,
}

#[derive(Serialize, DomainEvent)]
#[domain_event(schema = "tests/fixtures/partially_open.json", key = "ratio")]
struct FloatKey {
    name: String,
    ratio: f64,
}

#[derive(Serialize, DomainEvent)]
#[domain_event(schema = "tests/fixtures/partially_open.json", key = "name")]
struct BoxedString {
    name: Box<String>,
}

#[derive(Serialize, DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "a.b.c", version = 1, stream = "A", key = "label")]
struct SkippedKey {
    id: u32,
    #[serde(skip)]
    label: String,
}

#[derive(Serialize, DomainEvent)]
#[domain_event(schema = "tests/fixtures/partially_open.json", key = "rest")]
struct FlattenedKey {
    name: String,
    #[serde(flatten)]
    rest: std::collections::BTreeMap<String, i64>,
}

fn main() {}
