use serde::Serialize;
use tidings::DomainEvent;

// Required properties no field writes.
#[derive(Serialize, DomainEvent)]
#[domain_event(schema = "tests/fixtures/account.opened.v1.json")]
struct MissingRequired {
    account_id: String,
    #[serde(skip)]
    owner: String,
}

#[derive(Serialize, DomainEvent)]
#[domain_event(schema = "tests/fixtures/bare.json", event_type = "a.b.c", version = 1, stream = "A")]
struct MissingOne {
    label: String,
}

// A closed model forbids undeclared names, renamed or not.
#[derive(Serialize, DomainEvent)]
#[domain_event(schema = "tests/fixtures/camel.json")]
struct Forbidden {
    #[serde(rename = "orderId")]
    order: String,
    #[serde(rename = "totalCents")]
    total: i64,
    coupon: String,
}

// `rename_all` decides the names the schema sees.
#[derive(Serialize, DomainEvent)]
#[domain_event(schema = "tests/fixtures/camel.json")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct WrongCase {
    order_id: String,
    total_cents: i64,
}

// A partially open model: undeclared fields must fit additionalProperties.
#[derive(Serialize, DomainEvent)]
#[domain_event(schema = "tests/fixtures/partially_open.json")]
struct WrongExtra {
    name: String,
    unit: String,
}

fn main() {}
