//! A service's unit tests without a server: the code that publishes, through
//! the `Publish` seam and `RecordingPublisher`, and a handler called with a
//! synthetic event. One test compares the fake with the real publisher on a
//! real server: the same invalid payload refused with the same error, the
//! same valid event encoded to the same bytes.
use std::borrow::Cow;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use serde::{Deserialize, Serialize};
use tidings::publish::{Publish, PublishError};
use tidings::subscribe::HandlerFailure;
use tidings::testing::{call_handler, NatsServer, RecordingPublisher, SyntheticEvent};
use tidings::{DomainEvent, Event, PublishContext, PublishExt, Publisher, PublisherConfig};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct UserRegistered {
    user_id: String,
    email: String,
}

impl DomainEvent for UserRegistered {
    const EVENT_TYPE: &'static str = "auth.user.registered";
    const SCHEMA_VERSION: u32 = 1;
    const STREAM: &'static str = "AUTH_EVENTS";
    const SCHEMA: &'static str = r#"{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "user_id": {"type": "string", "minLength": 1},
            "email": {"type": "string", "pattern": "^[^@]+@[^@]+$"}
        },
        "required": ["user_id", "email"],
        "additionalProperties": false
    }"#;
    const SCHEMA_URI: &'static str = "https://schemas.tidings.dev/test/user.registered.v1.json";
    const KEY_FIELD: Option<&'static str> = Some("user_id");

    fn entity_key(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.user_id))
    }
}

/// The service code under test: registers a user and announces it. It
/// takes the seam, not a `Publisher`.
#[derive(Debug)]
enum RegisterError {
    Announce(PublishError),
    Tenant(tidings::InvalidToken),
}

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Announce(e) => write!(f, "the registration could not be announced: {e}"),
            Self::Tenant(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RegisterError {}

impl From<PublishError> for RegisterError {
    fn from(error: PublishError) -> Self {
        Self::Announce(error)
    }
}

impl From<tidings::InvalidToken> for RegisterError {
    fn from(error: tidings::InvalidToken) -> Self {
        Self::Tenant(error)
    }
}

async fn register_user(
    publisher: &dyn Publish,
    organization: &str,
    email: &str,
) -> Result<String, RegisterError> {
    let user_id = format!("u-{}", email.len());
    let ctx =
        PublishContext::new(organization)?.with_extension("traceparent", "00-abc-def-01".into());
    publisher
        .publish(
            &ctx,
            &UserRegistered {
                user_id: user_id.clone(),
                email: email.to_string(),
            },
        )
        .await?;
    Ok(user_id)
}

/// The same, generic over the seam and sharing it as an `Arc`.
async fn register_many<P: Publish + ?Sized>(
    publisher: Arc<P>,
    organization: &str,
    emails: &[&str],
) -> Vec<bool> {
    let Ok(ctx) = PublishContext::new(organization) else {
        return Vec::new();
    };
    let events: Vec<_> = emails
        .iter()
        .enumerate()
        .map(|(i, email)| UserRegistered {
            user_id: format!("u-{i}"),
            email: email.to_string(),
        })
        .collect();
    publisher
        .publish_batch(&ctx, &events)
        .await
        .iter()
        .map(Result::is_ok)
        .collect()
}

#[tokio::test]
async fn a_service_function_that_publishes_is_tested_with_the_recording_publisher(
) -> Result<(), Box<dyn std::error::Error>> {
    let publisher = RecordingPublisher::new();
    let user_id = register_user(&publisher, "org-42", "ana@example.com").await?;

    let recorded = publisher.recorded();
    assert_eq!(recorded.len(), 1);
    let event = &recorded[0];
    assert_eq!(event.event_type, "auth.user.registered");
    assert_eq!(
        event.subject,
        format!("auth.user.registered.org-42.{user_id}")
    );
    assert_eq!(event.organization_id, "org-42");
    assert_eq!(event.stream, "AUTH_EVENTS");
    assert_eq!(event.sequence, 1);
    let envelope = event.envelope()?;
    assert_eq!(envelope.id, event.event_id);
    assert_eq!(envelope.subject.as_deref(), Some(user_id.as_str()));
    assert_eq!(envelope.source, "/tidings/auth");
    assert_eq!(
        envelope.extensions.get("traceparent"),
        Some(&serde_json::json!("00-abc-def-01"))
    );
    assert_eq!(
        event
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_string()),
        Some(event.event_id.to_string())
    );
    assert_eq!(
        publisher.payloads::<UserRegistered>()?,
        vec![UserRegistered {
            user_id,
            email: "ana@example.com".into()
        }]
    );
    Ok(())
}

#[tokio::test]
async fn an_invalid_payload_is_refused_and_nothing_is_recorded(
) -> Result<(), Box<dyn std::error::Error>> {
    let publisher = RecordingPublisher::new();
    let error = register_user(&publisher, "org-42", "not-an-email")
        .await
        .err()
        .ok_or("an invalid email was published")?;
    match error {
        RegisterError::Announce(PublishError::InvalidPayload { violations, .. }) => {
            assert_eq!(violations.len(), 1, "{violations:?}");
            assert_eq!(violations[0].instance_path, "/email");
        }
        other => return Err(format!("expected InvalidPayload, got {other:?}").into()),
    }
    let error = register_user(&publisher, "org.42", "ana@example.com").await;
    assert!(matches!(error, Err(RegisterError::Tenant(_))), "{error:?}");
    assert!(publisher.recorded().is_empty());
    Ok(())
}

#[tokio::test]
async fn fail_next_makes_the_next_publish_fail_with_the_chosen_error(
) -> Result<(), Box<dyn std::error::Error>> {
    let publisher = RecordingPublisher::new();
    publisher.fail_next(PublishError::StreamMissing {
        event_type: UserRegistered::EVENT_TYPE,
        stream: UserRegistered::STREAM,
        subject: "auth.user.registered.org-42.u-1".into(),
    });
    let error = register_user(&publisher, "org-42", "ana@example.com").await;
    assert!(
        matches!(
            error,
            Err(RegisterError::Announce(PublishError::StreamMissing { .. }))
        ),
        "{error:?}"
    );
    assert!(publisher.recorded().is_empty());
    // Only the next one: the one after goes through.
    register_user(&publisher, "org-42", "ana@example.com").await?;
    assert_eq!(publisher.recorded().len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_batch_through_an_arc_dyn_publish_fails_the_invalid_event_alone(
) -> Result<(), Box<dyn std::error::Error>> {
    let recording = Arc::new(RecordingPublisher::new());
    let publisher: Arc<dyn Publish> = recording.clone();
    let stored = register_many(
        publisher,
        "org-7",
        &["a@example.com", "broken", "c@example.com"],
    )
    .await;
    assert_eq!(stored, [true, false, true]);
    let emails: Vec<_> = recording
        .payloads::<UserRegistered>()?
        .into_iter()
        .map(|e| e.email)
        .collect();
    assert_eq!(emails, ["a@example.com", "c@example.com"]);
    let sequences: Vec<_> = recording.recorded().iter().map(|r| r.sequence).collect();
    assert_eq!(sequences, [1, 2]);
    Ok(())
}

#[tokio::test]
async fn the_same_event_id_again_is_a_duplicate_as_on_a_stream(
) -> Result<(), Box<dyn std::error::Error>> {
    let publisher = RecordingPublisher::new();
    let ctx = PublishContext::new("org-1")?;
    let event = UserRegistered {
        user_id: "u-1".into(),
        email: "a@example.com".into(),
    };
    let id = Uuid::now_v7();
    let first = publisher.publish_with_id(&ctx, id, &event).await?;
    let again = publisher.publish_with_id(&ctx, id, &event).await?;
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(again.sequence, first.sequence);
    assert_eq!(publisher.recorded().len(), 1);
    Ok(())
}

/// The handler under test: welcomes a user, failing on its first two
/// deliveries when the mail server is "down", and refusing other tenants.
type WelcomeFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), std::io::Error>> + Send>>;

fn welcome_handler(
    attempts: Arc<AtomicU32>,
) -> impl Fn(Event<UserRegistered>) -> WelcomeFuture + Send + Sync + 'static {
    move |event: Event<UserRegistered>| {
        let attempts = attempts.clone();
        Box::pin(async move {
            attempts.fetch_add(1, Ordering::SeqCst);
            if event.meta.organization_id.as_str() == "org-banned" {
                panic!("tenant {} is banned", event.meta.organization_id.as_str());
            }
            if event.meta.delivery < 3 {
                return Err(std::io::Error::other(format!(
                    "mail server down for {} (delivery {})",
                    event.payload.email, event.meta.delivery
                )));
            }
            event.progress().await.map_err(std::io::Error::other)?;
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_handler_is_called_with_a_synthetic_event_and_its_metadata(
) -> Result<(), Box<dyn std::error::Error>> {
    let attempts = Arc::new(AtomicU32::new(0));
    let handler = welcome_handler(attempts.clone());
    let payload = UserRegistered {
        user_id: "u-9".into(),
        email: "ana@example.com".into(),
    };
    let id = Uuid::now_v7();
    let event = SyntheticEvent::new(payload.clone())
        .event_id(id)
        .organization("org-42")
        .delivery(1)
        .build()?;
    assert_eq!(event.meta.subject, "auth.user.registered.org-42.u-9");
    assert_eq!(event.meta.entity_key.as_deref(), Some("u-9"));
    assert_eq!(event.meta.event_id, id);
    assert_eq!(event.meta.stream, "AUTH_EVENTS");
    match call_handler(&handler, event).await {
        Err(HandlerFailure::Error(error)) => {
            let io = error
                .downcast_ref::<std::io::Error>()
                .ok_or("not the handler's error")?;
            assert!(io.to_string().contains("delivery 1"), "{io}");
        }
        other => return Err(format!("expected the handler's error, got {other:?}").into()),
    }

    let third = SyntheticEvent::new(payload.clone())
        .organization("org-42")
        .delivery(3)
        .build()?;
    call_handler(&handler, third).await?;

    let banned = SyntheticEvent::new(payload)
        .organization("org-banned")
        .delivery(3)
        .build()?;
    match call_handler(&handler, banned).await {
        Err(failure @ HandlerFailure::Panicked(_)) => {
            assert_eq!(
                failure.to_string(),
                "the handler panicked: tenant org-banned is banned"
            );
        }
        other => return Err(format!("expected a caught panic, got {other:?}").into()),
    }
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    Ok(())
}

/// A handler that panics while being called, before it returns its
/// future: caught as well (the subscriber calls handlers as
/// `call_handler` does).
#[tokio::test]
async fn a_handler_panicking_before_its_future_is_a_caught_panic(
) -> Result<(), Box<dyn std::error::Error>> {
    fn eager(event: Event<UserRegistered>) -> std::future::Ready<Result<(), std::io::Error>> {
        if event.meta.delivery == 1 {
            panic!("refused {} at once", event.payload.user_id);
        }
        std::future::ready(Ok(()))
    }
    let payload = UserRegistered {
        user_id: "u-7".into(),
        email: "ana@example.com".into(),
    };
    let first = SyntheticEvent::new(payload.clone()).delivery(1).build()?;
    match call_handler(&eager, first).await {
        Err(failure @ HandlerFailure::Panicked(_)) => {
            assert_eq!(
                failure.to_string(),
                "the handler panicked: refused u-7 at once"
            );
        }
        other => return Err(format!("expected a caught panic, got {other:?}").into()),
    }
    let second = SyntheticEvent::new(payload).delivery(2).build()?;
    call_handler(&eager, second).await?;
    Ok(())
}

#[tokio::test]
async fn a_synthetic_event_with_an_invalid_tenant_is_refused() {
    let built = SyntheticEvent::new(UserRegistered {
        user_id: "u-1".into(),
        email: "a@example.com".into(),
    })
    .organization("org.with.dots")
    .build();
    assert!(built.is_err(), "{built:?}");
}

/// The fake against the real publisher on a real server: the same invalid
/// payload is refused with the same error by both, and the same valid
/// event (same id, time, tenant) is the same message, byte for byte.
#[tokio::test]
async fn the_fake_refuses_and_encodes_exactly_as_the_real_publisher(
) -> Result<(), Box<dyn std::error::Error>> {
    let server = NatsServer::launch().await?;
    let client = server.connect().await?;
    let js = jetstream::new(client.clone());
    js.create_stream(stream::Config {
        name: "AUTH_EVENTS".into(),
        subjects: vec!["auth.>".into()],
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await?;
    // With the `ce-` headers on, so that every header is compared too.
    let config = PublisherConfig {
        ce_headers: true,
        ..PublisherConfig::default()
    };
    let real = Publisher::new(client, config.clone())?;
    let fake = RecordingPublisher::with_config(config, real.encoder().max_payload())?;
    let ctx = PublishContext::new("org-42")?;

    let invalid = UserRegistered {
        user_id: String::new(),
        email: "nobody".into(),
    };
    let real_error = real
        .publish(&ctx, &invalid)
        .await
        .err()
        .ok_or("the real publisher stored an invalid event")?;
    let fake_error = fake
        .publish(&ctx, &invalid)
        .await
        .err()
        .ok_or("the fake accepted an invalid event")?;
    match (&real_error, &fake_error) {
        (
            PublishError::InvalidPayload {
                violations: real_violations,
                ..
            },
            PublishError::InvalidPayload {
                violations: fake_violations,
                ..
            },
        ) => {
            assert_eq!(real_violations.len(), 2, "{real_violations:?}");
            assert_eq!(real_violations, fake_violations);
        }
        _ => return Err(format!("real: {real_error:?}; fake: {fake_error:?}").into()),
    }
    assert_eq!(real_error.to_string(), fake_error.to_string());
    assert_eq!(
        js.get_stream("AUTH_EVENTS")
            .await?
            .info()
            .await?
            .state
            .messages,
        0
    );

    let time = time::macros::datetime!(2026-01-02 03:04:05.678 UTC);
    let ctx = ctx.at(time);
    let valid = UserRegistered {
        user_id: "u-1".into(),
        email: "ana@example.com".into(),
    };
    let id = Uuid::now_v7();
    let stored = real.publish_with_id(&ctx, id, &valid).await?;
    fake.publish_with_id(&ctx, id, &valid).await?;
    let message = js
        .get_stream("AUTH_EVENTS")
        .await?
        .get_raw_message(stored.sequence)
        .await?;
    let recorded = fake.recorded();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].body, message.payload);
    assert_eq!(recorded[0].subject, message.subject.as_str());
    let pairs = |headers: &async_nats::HeaderMap| {
        let mut pairs: Vec<(String, String)> = headers
            .iter()
            .flat_map(|(name, values)| {
                let name = name.to_string();
                values
                    .iter()
                    .map(move |v| (name.clone(), v.as_str().to_string()))
            })
            .collect();
        pairs.sort();
        pairs
    };
    let stored = pairs(&message.headers);
    assert!(
        stored.iter().any(|(name, _)| name == "ce-organizationid"),
        "{stored:?}"
    );
    assert_eq!(pairs(&recorded[0].headers), stored);
    Ok(())
}
