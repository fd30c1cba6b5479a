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

/// The plans of the event types a publisher has prepared, by type.
#[derive(Default)]
struct Plans(RwLock<HashMap<TypeId, Arc<TypePlan>>>);

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
            if !violations.is_empty() {
                return Err(PublishError::InvalidPayload {
                    event_type: E::EVENT_TYPE,
                    version: E::SCHEMA_VERSION,
                    violations,
                });
            }
        }
        let key = event.entity_key();
        let key = key.as_deref();
        let subject = subject_with_key(E::EVENT_TYPE, &ctx.organization_id, key)?;
        let organization_start = E::EVENT_TYPE.len() + 1;
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
            &data,
            plan.body_len.load(Ordering::Relaxed) + 64,
        )?;
        plan.body_len.store(encoded.body.len(), Ordering::Relaxed);
        let size = encoded.body.len() + encoded.headers_wire_len;
        let max = self.max_payload;
        if max > 0 && size > max {
            return Err(PublishError::TooLarge {
                event_type: E::EVENT_TYPE,
                event_id,
                size,
                max,
            });
        }
        Ok(Prepared {
            event_type: E::EVENT_TYPE,
            stream: E::STREAM,
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
        let type_id = TypeId::of::<E>();
        if let Some(plan) = self
            .plans
            .0
            .read()
            .ok()
            .and_then(|m| m.get(&type_id).cloned())
        {
            return Ok(plan);
        }
        let source = self
            .config
            .source
            .clone()
            .unwrap_or_else(|| default_source(E::EVENT_TYPE));
        let template = Template::new(
            source,
            E::EVENT_TYPE,
            Some(E::SCHEMA_URI).filter(|s| !s.is_empty()),
            E::SCHEMA_VERSION,
            self.config.ce_headers,
        )?;
        // A schema that does not compile is not cached: validation asks for
        // it again on every publish and reports why it is unusable.
        let validator = if self.config.validate {
            schema::validator::<E>().ok()
        } else {
            None
        };
        let plan = Arc::new(TypePlan {
            template,
            validator,
            body_len: AtomicUsize::new(0),
        });
        if let Ok(mut plans) = self.plans.0.write() {
            plans.entry(type_id).or_insert_with(|| plan.clone());
        }
        Ok(plan)
    }
}
