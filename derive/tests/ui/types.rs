use std::collections::BTreeMap;

use serde::Serialize;
use tidings::DomainEvent;
use uuid::Uuid;

#[derive(Serialize)]
struct OffsetDateTime;

// Every property of the schema with the wrong kind of Rust type.
#[derive(Serialize, DomainEvent)]
#[domain_event(schema = "tests/fixtures/account.opened.v1.json")]
struct WrongTypes {
    account_id: i64,
    owner: OffsetDateTime,
    opened_at: Uuid,
    number: f64,
    balance: bool,
    active: String,
    tags: Vec<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limits: Option<Vec<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    referrer: Option<u128>,
    note: (),
    closed_at: Option<bool>,
    matrix: Vec<Vec<String>>,
}

// Options and skipping against required and nullable properties.
#[derive(Serialize, DomainEvent)]
#[domain_event(schema = "tests/fixtures/account.opened.v1.json")]
struct WrongOptions {
    account_id: String,
    owner: Option<Uuid>,
    opened_at: String,
    number: u64,
    balance: f64,
    active: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<Option<String>>,
    referrer: Option<Uuid>,
    note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limits: Option<BTreeMap<String, String>>,
}

fn main() {}
