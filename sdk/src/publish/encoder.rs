//! What a publish does before sending: validation, subject, envelope, size.
//!
//! One [`Encoder`] serves the real [`Publisher`](super::Publisher) and the
//! recording fake of `tidings::testing`, so a payload the fake accepts is one
//! the publisher accepts, and a payload it refuses is refused with the same
//! error.
use std::any::TypeId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use time::OffsetDateTime;
use uuid::Uuid;

use super::dynamic::DynamicType;
use super::{Prepared, PublishContext, PublishError, PublisherConfig, RetryAttributes};
use crate::envelope::encode::{EventAttributes, Template};
use crate::envelope::EncodeError;
use crate::event::DomainEvent;
use crate::schema;
use crate::subject::subject_with_key;

/// What a publisher keeps per event type: the envelope template, the
/// compiled schema (when it validates and the schema compiled), and the
/// size of the last body, to size the next one's buffer.
pub(super) struct TypePlan {
    pub(super) template: Template,
    validator: Option<Arc<jsonschema::Validator>>,
    pub(super) body_len: AtomicUsize,
}

impl std::fmt::Debug for TypePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypePlan")
            .field("template", &self.template)
            .field("validates", &self.validator.is_some())
            .finish_non_exhaustive()
    }
}

/// Which event type a plan is for: a Rust type, or a type described at run
/// time (name, version and schema URI).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PlanKey {
    Typed(TypeId),
    Dynamic(&'static str, u32, String),
}

/// The plans of the event types a publisher has prepared, by type.
#[derive(Default)]
struct Plans(RwLock<HashMap<PlanKey, Arc<TypePlan>>>);

impl std::fmt::Debug for Plans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let types = self.0.read().map(|m| m.len()).unwrap_or_default();
        f.debug_struct("Plans").field("types", &types).finish()
    }
}

/// The CloudEvents `source` of an event type when none is configured:
/// `/tidings/<service>`, the service being the type's first token.
pub(crate) fn default_source(event_type: &str) -> String {
    let service = event_type.split('.').next().unwrap_or(event_type);
    format!("/tidings/{service}")
}

/// Validates and encodes events as a publisher does before sending them,
/// with the plan of each event type (its envelope template and compiled
/// schema) made once. Reached through [`Publish::encoder`](super::Publish::encoder).
#[derive(Debug)]
pub struct Encoder {
    config: Arc<PublisherConfig>,
    max_payload: usize,
    plans: Plans,
}

impl Encoder {
    /// An encoder for these settings and a server's `max_payload` (0: no limit).
    pub(crate) fn new(config: Arc<PublisherConfig>, max_payload: usize) -> Self {
        Self {
            config,
            max_payload,
            plans: Plans::default(),
        }
    }

    /// The settings it encodes with.
    pub fn config(&self) -> &PublisherConfig {
        &self.config
    }

    /// The largest message (body plus headers) it lets through.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Validates `event` against its schema (when the config says so),
    /// builds its subject and encodes its envelope under `event_id`, and
    /// checks its size against the server's `max_payload`: everything a
    /// publish does before sending.
    pub fn prepare_with_id<E: DomainEvent>(
        &self,
        ctx: &PublishContext,
        event_id: Uuid,
        event: &E,
    ) -> Result<Prepared, PublishError> {
        let plan = self.plan::<E>()?;
        let data = serde_json::to_value(event).map_err(|source| PublishError::Serialize {
            event_type: E::EVENT_TYPE,
            source,
        })?;
        if self.config.validate {
            let violations = match &plan.validator {
                Some(validator) => schema::violations_of(validator, &data),
                None => schema::violations::<E>(&data)?,
            };
            invalid_if_any(E::EVENT_TYPE, E::SCHEMA_VERSION, violations)?;
        }
        let key = event.entity_key();
        self.assemble(
            plan,
            (E::EVENT_TYPE, E::STREAM),
            ctx,
            event_id,
            key.as_deref(),
            &data,
        )
    }

    /// What [`prepare_with_id`](Self::prepare_with_id) does for a typed
    /// event, for a JSON payload of an event type described at run time:
    /// validated against `event_type`'s schema (when the config says so),
    /// its entity key read from the payload, the same subject, envelope,
    /// headers and size check. Send it with
    /// [`Publisher::send`](super::Publisher::send); sending it again under
    /// the same `event_id` stores it once.
    pub fn prepare_dynamic(
        &self,
        ctx: &PublishContext,
        event_id: Uuid,
        event_type: &DynamicType,
        data: &serde_json::Value,
    ) -> Result<Prepared, PublishError> {
        let (name, version) = (event_type.event_type(), event_type.version());
        let plan = self.cached_plan(
            PlanKey::Dynamic(name, version, event_type.schema_uri().to_string()),
            || (name, Some(event_type.schema_uri()), version, None),
        )?;
        if self.config.validate {
            invalid_if_any(name, version, event_type.violations(data))?;
        }
        let key =
            event_type
                .entity_key(data)
                .map_err(|violation| PublishError::InvalidPayload {
                    event_type: name,
                    version,
                    violations: vec![violation],
                })?;
        self.assemble(
            plan,
            (name, event_type.stream()),
            ctx,
            event_id,
            key.as_deref(),
            data,
        )
    }

    /// The subject, the envelope and the size check of a validated payload:
    /// the part of a publish's preparation typed and dynamic types share.
    fn assemble(
        &self,
        plan: Arc<TypePlan>,
        (event_type, stream): (&'static str, &'static str),
        ctx: &PublishContext,
        event_id: Uuid,
        key: Option<&str>,
        data: &serde_json::Value,
    ) -> Result<Prepared, PublishError> {
        let subject = subject_with_key(event_type, &ctx.organization_id, key)?;
        let organization_start = event_type.len() + 1;
        let organization_id =
            organization_start..organization_start + ctx.organization_id.as_str().len();
        let entity_key =
            key.map(|key| organization_id.end + 1..organization_id.end + 1 + key.len());
        let time = ctx.time.unwrap_or_else(OffsetDateTime::now_utc);
        let extensions = crate::telemetry::with_current_trace(&ctx.extensions);
        let encoded = plan.template.encode(
            &EventAttributes {
                id: event_id,
                time,
                subject: key,
                organization_id: ctx.organization_id.as_str(),
                extensions: &extensions,
            },
            data,
            plan.body_len.load(Ordering::Relaxed) + 64,
        )?;
        plan.body_len.store(encoded.body.len(), Ordering::Relaxed);
        let size = encoded.body.len() + encoded.headers_wire_len;
        let max = self.max_payload;
        if max > 0 && size > max {
            return Err(PublishError::TooLarge {
                event_type,
                event_id,
                size,
                max,
            });
        }
        Ok(Prepared {
            event_type,
            stream,
            subject,
            headers: encoded.headers,
            body: Bytes::from(encoded.body),
            event_id,
            size,
            retry: RetryAttributes {
                plan,
                time,
                organization_id,
                entity_key,
                extensions: extensions.into_owned(),
            },
        })
    }

    /// The plan of `E`'s events, made on the first use of the type.
    fn plan<E: DomainEvent>(&self) -> Result<Arc<TypePlan>, EncodeError> {
        self.cached_plan(PlanKey::Typed(TypeId::of::<E>()), || {
            // A schema that does not compile is not cached: validation asks
            // for it again on every publish and reports why it is unusable.
            let validator = if self.config.validate {
                schema::validator::<E>().ok()
            } else {
                None
            };
            (
                E::EVENT_TYPE,
                Some(E::SCHEMA_URI).filter(|s| !s.is_empty()),
                E::SCHEMA_VERSION,
                validator,
            )
        })
    }

    /// The plan under `key`, made from `describe`'s type name, schema URI,
    /// version and validator when it is not cached yet.
    fn cached_plan<'a>(
        &self,
        key: PlanKey,
        describe: impl FnOnce() -> PlanParts<'a>,
    ) -> Result<Arc<TypePlan>, EncodeError> {
        if let Some(plan) = self.plans.0.read().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(plan);
        }
        let (event_type, schema_uri, version, validator) = describe();
        let source = self
            .config
            .source
            .clone()
            .unwrap_or_else(|| default_source(event_type));
        let template = Template::new(
            source,
            event_type,
            schema_uri,
            version,
            self.config.ce_headers,
        )?;
        let plan = Arc::new(TypePlan {
            template,
            validator,
            body_len: AtomicUsize::new(0),
        });
        if let Ok(mut plans) = self.plans.0.write() {
            plans.entry(key).or_insert_with(|| plan.clone());
        }
        Ok(plan)
    }
}

/// What a plan is made of: type name, schema URI, version, validator.
type PlanParts<'a> = (
    &'static str,
    Option<&'a str>,
    u32,
    Option<Arc<jsonschema::Validator>>,
);

/// `InvalidPayload` when there are violations.
fn invalid_if_any(
    event_type: &'static str,
    version: u32,
    violations: Vec<schema::Violation>,
) -> Result<(), PublishError> {
    if violations.is_empty() {
        Ok(())
    } else {
        Err(PublishError::InvalidPayload {
            event_type,
            version,
            violations,
        })
    }
}
