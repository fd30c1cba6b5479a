//! Shared by the end-to-end tests: a test event type and stream set-up.
#![allow(dead_code)]

use std::borrow::Cow;
use std::path::Path;

use async_nats::jetstream;
use serde::{Deserialize, Serialize};
use tidings::streams::{self, ApplyOptions, StreamPlan};
use tidings::DomainEvent;

/// A hand-written event type with an inline schema, so these tests do not
/// depend on the generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserCreated {
    pub user_id: String,
    pub email: String,
    pub display_name: String,
}

impl DomainEvent for UserCreated {
    const EVENT_TYPE: &'static str = "auth.user.created";
    const SCHEMA_VERSION: u32 = 1;
    const STREAM: &'static str = "AUTH_EVENTS";
    const SCHEMA: &'static str = r#"{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://schemas.tidings.dev/test/user.created.v1.json",
        "type": "object",
        "properties": {
            "user_id": {"type": "string", "minLength": 1},
            "email": {"type": "string", "format": "email", "maxLength": 254},
            "display_name": {"type": "string", "minLength": 1, "maxLength": 120}
        },
        "required": ["user_id", "email", "display_name"]
    }"#;
    const SCHEMA_URI: &'static str = "https://schemas.tidings.dev/test/user.created.v1.json";
    const KEY_FIELD: Option<&'static str> = Some("user_id");

    fn entity_key(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.user_id))
    }
}

impl tidings::upcast::ReadAnyVersion for UserCreated {}

impl UserCreated {
    pub fn numbered(n: usize) -> Self {
        Self {
            user_id: format!("u-{n}"),
            email: format!("user{n}@example.com"),
            display_name: format!("User {n}"),
        }
    }
}

/// The repository's registry directory.
pub fn registry_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas"))
}

/// Provisions every stream of the repository's registry for a profile.
pub async fn provision(js: &jetstream::Context, profile: &str) -> anyhow::Result<Vec<StreamPlan>> {
    let specs = streams::load_streams(registry_dir(), profile)?;
    Ok(streams::apply(js, &specs, ApplyOptions::default()).await?)
}
