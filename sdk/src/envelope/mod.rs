//! The CloudEvents 1.0 envelope every Tidings event travels in.
//!
//! Structured JSON mode: the message body is the whole CloudEvent
//! (`content-type: application/cloudevents+json`). Beside it the message
//! carries the CloudEvents binary-mode `ce-` headers and `Nats-Msg-Id`, so
//! routers, deduplication and tools can work without parsing the body.
//!
//! CloudEvents attribute names may only use `a-z` and `0-9`, so the
//! organization id and the schema version travel as the extension attributes
//! `organizationid` and `schemaversion`; Rust code reads them through
//! [`Envelope::organization_id`] and [`Envelope::schema_version`].
//!
//! | attribute | value |
//! |---|---|
//! | `specversion` | `1.0` |
//! | `id` | the event id, a time-ordered UUID v7 |
//! | `source` | the publishing service (`/tidings/auth` by default) |
//! | `type` | the event type, `auth.user.created` |
//! | `time` | RFC 3339, UTC |
//! | `datacontenttype` | `application/json` |
//! | `dataschema` | the schema's URI (`$id`) |
//! | `subject` | the entity key, where the type has one |
//! | `organizationid` | the tenant |
//! | `schemaversion` | the payload's schema version (integer) |
//! | `data` | the payload |
mod decode;
pub(crate) mod encode;

use std::collections::BTreeMap;

pub use decode::{redrive_msg_id, DecodeError};
pub use encode::EncodeError;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::token::OrganizationId;

/// The CloudEvents version produced and accepted.
pub const SPEC_VERSION: &str = "1.0";
/// The message content type of structured mode.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json";
/// The content type of `data`.
pub const DATA_CONTENT_TYPE: &str = "application/json";
/// The extension attribute carrying the organization id.
pub const ORGANIZATION_ATTRIBUTE: &str = "organizationid";
/// The extension attribute carrying the schema version.
pub const SCHEMA_VERSION_ATTRIBUTE: &str = "schemaversion";
/// Attributes Tidings sets itself; an extension cannot use these names.
pub const OWN_ATTRIBUTES: [&str; 12] = [
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "datacontenttype",
    "dataschema",
    "subject",
    "data",
    "data_base64",
    ORGANIZATION_ATTRIBUTE,
    SCHEMA_VERSION_ATTRIBUTE,
];
/// The NATS header JetStream deduplicates on.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// One event: CloudEvents context attributes and the JSON payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The event id (CloudEvents `id`), a UUID v7.
    pub id: Uuid,
    /// The producer (CloudEvents `source`), a URI reference.
    pub source: String,
    /// The event type (CloudEvents `type`), `service.entity.action`.
    pub event_type: String,
    /// When the event happened (CloudEvents `time`).
    pub time: OffsetDateTime,
    /// The schema URI (CloudEvents `dataschema`).
    pub dataschema: Option<String>,
    /// The entity key (CloudEvents `subject`).
    pub subject: Option<String>,
    /// The tenant (extension `organizationid`).
    pub organization_id: OrganizationId,
    /// The payload's schema version (extension `schemaversion`).
    pub schema_version: u32,
    /// Other extension attributes, by name (for example `traceparent`).
    pub extensions: BTreeMap<String, serde_json::Value>,
    /// The payload (CloudEvents `data`).
    pub data: serde_json::Value,
}

impl Envelope {
    /// The event id.
    pub fn event_id(&self) -> Uuid {
        self.id
    }

    /// The tenant the event belongs to.
    pub fn organization_id(&self) -> &OrganizationId {
        &self.organization_id
    }

    /// The schema version the payload was written with.
    pub fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

/// Whether `name` is a legal CloudEvents attribute name: `a-z`, `0-9`, at
/// most 20 characters (the spec's recommendation, enforced here).
pub fn is_legal_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 20
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}
