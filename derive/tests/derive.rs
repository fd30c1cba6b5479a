//! `#[derive(DomainEvent)]` on structs that match their schemas: the
//! constants, the entity key, the embedded (bundled) schema, and payloads
//! that validate against it.
#![allow(missing_docs)]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tidings::DomainEvent;
use uuid::Uuid;

/// Every kind of property the check knows, names and metadata from the
/// schema's `x-*` keywords, a cross-file `$ref`, a closed model.
#[derive(Debug, Serialize, Deserialize, DomainEvent)]
#[domain_event(schema = "tests/fixtures/account.opened.v1.json", key = "account_id")]
struct AccountOpened {
    account_id: String,
    owner: Uuid,
    /// Kept as text: `time`'s serde form depends on its features.
    opened_at: String,
    number: u64,
    balance: f64,
    active: bool,
    tags: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    limits: BTreeMap<String, i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<Address>,
    #[serde(skip_serializing_if = "Option::is_none")]
    referrer: Option<Uuid>,
    note: Option<String>,
    closed_at: Option<String>,
    #[serde(default)]
    matrix: Vec<[u8; 2]>,
    /// Not part of the payload.
    #[serde(skip)]
    local_only: u8,
}

#[derive(Debug, Serialize, Deserialize)]
struct Address {
    city: String,
}

fn account() -> AccountOpened {
    AccountOpened {
        account_id: "acc-1".into(),
        owner: Uuid::from_u128(0x0190_f3a5_1111_7abc_8def_0000_0000_0001),
        opened_at: "2025-12-09T10:15:00Z".into(),
        number: 42,
        balance: 12.5,
        active: true,
        tags: vec!["gold".into()],
        limits: BTreeMap::from([("daily".to_string(), 500)]),
        address: Some(Address {
            city: "Madrid".into(),
        }),
        referrer: None,
        note: None,
        closed_at: None,
        matrix: vec![[1, 2]],
        local_only: 7,
    }
}

#[test]
fn constants_come_from_the_schema() {
    assert_eq!(AccountOpened::EVENT_TYPE, "bank.account.opened");
    assert_eq!(AccountOpened::SCHEMA_VERSION, 1);
    assert_eq!(AccountOpened::STREAM, "BANK_EVENTS");
    assert_eq!(
        AccountOpened::SCHEMA_URI,
        "https://schemas.example.test/bank/account.opened.v1.json"
    );
    assert_eq!(AccountOpened::KEY_FIELD, Some("account_id"));
}

#[test]
fn the_entity_key_borrows_a_string_field() {
    let event = account();
    let key = event.entity_key();
    assert!(matches!(key, Some(Cow::Borrowed("acc-1"))), "{key:?}");
    assert_eq!(event.local_only, 7);
}

#[test]
fn schema_is_the_bundled_schema() -> Result<(), Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/account.opened.v1.json");
    let expected = tidings_codegen::bundle::bundle_file(&path)?;
    let embedded: Value = serde_json::from_str(AccountOpened::SCHEMA)?;
    assert_eq!(embedded, expected);
    // Self-contained: the cross-file refs now point into the document.
    let text = AccountOpened::SCHEMA;
    assert!(!text.contains("common/ids.json"), "{text}");
    assert!(embedded["$defs"].as_object().is_some_and(|d| !d.is_empty()));
    Ok(())
}

#[test]
fn serialized_payloads_validate_against_the_schema() -> Result<(), Box<dyn std::error::Error>> {
    let mut event = account();
    let payload = serde_json::to_value(&event)?;
    assert_eq!(
        tidings::schema::violations::<AccountOpened>(&payload)?,
        vec![]
    );
    event.referrer = Some(Uuid::nil());
    event.note = Some("vip".into());
    event.closed_at = Some("2026-01-01T00:00:00Z".into());
    event.address = None;
    event.limits.clear();
    let payload = serde_json::to_value(&event)?;
    assert_eq!(
        tidings::schema::violations::<AccountOpened>(&payload)?,
        vec![]
    );
    // The schema is real: a wrong payload is caught at run time too.
    let bad = json!({"account_id": "", "owner": "not-a-uuid", "extra": 1});
    let found = tidings::schema::violations::<AccountOpened>(&bad)?;
    assert!(found.len() >= 3, "{found:?}");
    Ok(())
}

/// A schema without `x-*` keywords or `$id`: the attribute says it all and
/// the URI falls back to a URN.
#[derive(Serialize, Deserialize, DomainEvent)]
#[domain_event(
    schema = "tests/fixtures/bare.json",
    event_type = "inventory.item.counted",
    version = 2,
    stream = "INVENTORY_EVENTS",
    key = "id"
)]
struct ItemCounted {
    id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<String>,
}

#[test]
fn attributes_alone_and_the_uri_fallback() -> Result<(), Box<dyn std::error::Error>> {
    assert_eq!(ItemCounted::EVENT_TYPE, "inventory.item.counted");
    assert_eq!(ItemCounted::SCHEMA_VERSION, 2);
    assert_eq!(ItemCounted::STREAM, "INVENTORY_EVENTS");
    assert_eq!(
        ItemCounted::SCHEMA_URI,
        "urn:tidings:schema:inventory.item.counted:v2"
    );
    let e = ItemCounted {
        id: 17,
        label: None,
    };
    assert_eq!(e.entity_key().as_deref(), Some("17"));
    let payload = serde_json::to_value(&e)?;
    assert_eq!(
        tidings::schema::violations::<ItemCounted>(&payload)?,
        vec![]
    );
    Ok(())
}

/// `rename_all`, `rename`, a serde `tag`, a `Uuid` key formatted with
/// `Display`, attributes that agree with the schema.
#[derive(Serialize, Deserialize, DomainEvent)]
#[serde(rename_all = "camelCase", tag = "kind", rename = "OrderPlaced")]
#[domain_event(
    schema = "tests/fixtures/camel.json",
    event_type = "shop.order.placed",
    version = 3,
    stream = "SHOP_EVENTS",
    key = "order_id"
)]
struct Placed {
    order_id: Uuid,
    #[serde(rename = "totalCents")]
    total: i64,
}

#[test]
fn serde_names_and_a_uuid_key() -> Result<(), Box<dyn std::error::Error>> {
    let id = Uuid::from_u128(1);
    let e = Placed {
        order_id: id,
        total: 1999,
    };
    assert_eq!(Placed::KEY_FIELD, Some("orderId"));
    assert_eq!(e.entity_key().as_deref(), Some(id.to_string().as_str()));
    let payload = serde_json::to_value(&e)?;
    assert_eq!(payload["kind"], "OrderPlaced");
    assert_eq!(tidings::schema::violations::<Placed>(&payload)?, vec![]);
    assert_eq!(Placed::SCHEMA_URI, "urn:example:camel");
    Ok(())
}

/// No `key` attribute: the key is the field serialized as the property
/// the schema's `x-entity-key` names, as in the generated type.
#[derive(Serialize, Deserialize, DomainEvent)]
#[serde(rename_all = "camelCase")]
#[domain_event(schema = "tests/fixtures/camel.json")]
struct PlacedKeyedBySchema {
    order_id: String,
    total_cents: i64,
}

#[test]
fn the_schema_names_the_key() {
    let e = PlacedKeyedBySchema {
        order_id: "o-1".into(),
        total_cents: 5,
    };
    assert_eq!(PlacedKeyedBySchema::KEY_FIELD, Some("orderId"));
    assert_eq!(e.entity_key().as_deref(), Some("o-1"));
}

/// Undeclared fields of a partially open model fit its
/// `additionalProperties`; no key means no entity key.
#[derive(Serialize, Deserialize, DomainEvent)]
#[domain_event(schema = "tests/fixtures/partially_open.json")]
struct SampleTaken {
    name: String,
    value: i32,
    #[serde(flatten)]
    more: BTreeMap<String, i64>,
}

#[test]
fn partially_open_models_and_no_key() -> Result<(), Box<dyn std::error::Error>> {
    let e = SampleTaken {
        name: "cpu".into(),
        value: 3,
        more: BTreeMap::from([("max".to_string(), 9)]),
    };
    assert_eq!(SampleTaken::KEY_FIELD, None);
    assert!(e.entity_key().is_none());
    let payload = serde_json::to_value(&e)?;
    assert_eq!(
        tidings::schema::violations::<SampleTaken>(&payload)?,
        vec![]
    );
    Ok(())
}

/// The registry's own published schema, read from `schemas/`: everything,
/// the key included, comes from its `x-*` keywords.
#[derive(Serialize, Deserialize, DomainEvent)]
#[domain_event(schema = "../schemas/auth/user.created.v1.json")]
struct UserCreated {
    user_id: Uuid,
    email: String,
    display_name: String,
    role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    invited_by: Option<Uuid>,
    created_at: String,
}

#[test]
fn a_registry_schema() -> Result<(), Box<dyn std::error::Error>> {
    assert_eq!(UserCreated::EVENT_TYPE, "auth.user.created");
    assert_eq!(UserCreated::SCHEMA_VERSION, 1);
    assert_eq!(UserCreated::STREAM, "AUTH_EVENTS");
    assert_eq!(UserCreated::KEY_FIELD, Some("user_id"));
    let example: Value = serde_json::from_str::<Value>(UserCreated::SCHEMA)?["examples"][0].clone();
    let event: UserCreated = serde_json::from_value(example.clone())?;
    assert_eq!(serde_json::to_value(&event)?, example);
    assert_eq!(
        tidings::schema::violations::<UserCreated>(&serde_json::to_value(&event)?)?,
        vec![]
    );
    assert_eq!(
        event.entity_key().as_deref(),
        Some("0190f3a5-1111-7abc-8def-000000000001")
    );
    Ok(())
}

/// `#[serde(with)]` fields are checked for presence only: the derive cannot
/// see what the functions write.
#[derive(Serialize, Deserialize, DomainEvent)]
#[domain_event(
    schema = "tests/fixtures/bare.json",
    event_type = "inventory.item.labelled",
    version = 1,
    stream = "INVENTORY_EVENTS"
)]
struct ItemLabelled {
    id: u32,
    /// A number written as a string, as the schema wants.
    #[serde(with = "as_text")]
    label: u32,
}

mod as_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u32, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[test]
fn custom_serializers_are_trusted() -> Result<(), Box<dyn std::error::Error>> {
    let payload = serde_json::to_value(ItemLabelled { id: 1, label: 7 })?;
    assert_eq!(payload, json!({"id": 1, "label": "7"}));
    assert_eq!(
        tidings::schema::violations::<ItemLabelled>(&payload)?,
        vec![]
    );
    Ok(())
}

/// Every string-like key type borrows; no copy is made.
mod key_types {
    use super::*;

    #[derive(Serialize, Deserialize, DomainEvent)]
    #[domain_event(schema = "tests/fixtures/partially_open.json", key = "name")]
    pub struct CowKey {
        pub name: Cow<'static, str>,
    }

    #[derive(Serialize, Deserialize, DomainEvent)]
    #[domain_event(schema = "tests/fixtures/partially_open.json", key = "name")]
    pub struct BoxKey {
        pub name: Box<str>,
    }

    #[derive(Serialize, Deserialize, DomainEvent)]
    #[domain_event(schema = "tests/fixtures/partially_open.json", key = "r#type")]
    pub struct RawIdentKey {
        pub name: String,
        #[serde(rename = "KIND")]
        pub r#type: u16,
    }

    #[test]
    fn borrowed_and_formatted_keys() {
        let cow = CowKey {
            name: Cow::Borrowed("cpu"),
        };
        assert!(matches!(cow.entity_key(), Some(Cow::Borrowed("cpu"))));
        let boxed = BoxKey { name: "mem".into() };
        assert!(matches!(boxed.entity_key(), Some(Cow::Borrowed("mem"))));
        let raw = RawIdentKey {
            name: "x".into(),
            r#type: 7,
        };
        assert_eq!(raw.entity_key().as_deref(), Some("7"));
        assert_eq!(RawIdentKey::KEY_FIELD, Some("KIND"));
    }
}
