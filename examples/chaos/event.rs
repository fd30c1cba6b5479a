//! The event the checker publishes and its groups consume.
use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use tidings::DomainEvent;

/// One probe: which publisher sent it, its number there, its entity key,
/// and whether every handler refuses it (to fill the DLQ on purpose).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub key: String,
    pub publisher: u32,
    pub n: u64,
    pub poison: bool,
}

impl DomainEvent for Probe {
    const EVENT_TYPE: &'static str = "auth.chaos.probed";
    const SCHEMA_VERSION: u32 = 1;
    const STREAM: &'static str = "AUTH_EVENTS";
    const SCHEMA: &'static str = r#"{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://schemas.tidings.dev/chaos/probed.v1.json",
        "type": "object",
        "properties": {
            "key": {"type": "string", "minLength": 1},
            "publisher": {"type": "integer", "minimum": 0},
            "n": {"type": "integer", "minimum": 0},
            "poison": {"type": "boolean"}
        },
        "required": ["key", "publisher", "n", "poison"]
    }"#;
    const SCHEMA_URI: &'static str = "https://schemas.tidings.dev/chaos/probed.v1.json";
    const KEY_FIELD: Option<&'static str> = Some("key");

    fn entity_key(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.key))
    }
}

impl tidings::upcast::ReadAnyVersion for Probe {}

/// The organization every probe belongs to.
pub const ORGANIZATION: &str = "org-chaos";
/// The stream the probes go to.
pub const STREAM: &str = "AUTH_EVENTS";
/// The deduplication bucket of the deduplicating group.
pub const DEDUP_BUCKET: &str = "chaos_dedup";
