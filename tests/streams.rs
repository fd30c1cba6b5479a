//! Stream provisioning from `schemas/tidings.toml` against a real server:
//! every configured setting lands, a second run changes nothing, drift is
//! reported, and nothing that could delete events is applied without consent;
//! each retention kind keeps and deletes events as it says.
mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use support::{fast_config, registry_dir, settled, take, UserCreated, UserDeactivated};
use tidings::dlq::FAILURES_BUCKET;
use tidings::streams::{self, Action, ApplyOptions, ProvisionError};
use tidings::subscribe::{StartAt, SubscribeError};
use tidings::testing::{FaultProxy, Flow, Frame, NatsServer};
use tidings::{Event, PublishContext, Publisher, PublisherConfig, Subscriber};
use tidings_codegen::registry::config::{ResolvedStream, Retention};
use tokio::sync::{mpsc, Semaphore};

const SERVICE_STREAMS: [&str; 7] = [
    "AUTH_EVENTS",
    "CATALOG_EVENTS",
    "DDMRP_EVENTS",
    "EXECUTION_EVENTS",
    "ANALYTICS_EVENTS",
    "AI_AGENT_EVENTS",
    "DLQ_EVENTS",
];

#[tokio::test]
async fn provisions_every_stream_with_the_configured_retention_once() -> anyhow::Result<()> {
    let server = NatsServer::launch().await?;
    let js = jetstream::new(server.connect().await?);
    let specs = streams::load_streams(registry_dir(), "dev")?;
    let mut names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    let mut expected = SERVICE_STREAMS.to_vec();
    expected.sort();
    assert_eq!(names, expected);

    let first = streams::apply(&js, &specs, ApplyOptions::default()).await?;
    assert!(
        first.iter().all(|p| p.action == Action::Create),
        "{first:?}"
    );
    for name in SERVICE_STREAMS {
        let mut stream = js.get_stream(name).await?;
        let config = &stream.info().await?.config;
        // Dead letters refuse rather than evict, and are kept longer.
        let (days, discard) = if name == "DLQ_EVENTS" {
            (30, stream::DiscardPolicy::New)
        } else {
            (7, stream::DiscardPolicy::Old)
        };
        assert_eq!(
            config.max_age,
            Duration::from_secs(days * 24 * 3600),
            "{name}"
        );
        assert_eq!(config.max_bytes, 1 << 30, "{name}");
        assert_eq!(config.discard, discard, "{name}");
        assert_eq!(config.storage, stream::StorageType::File, "{name}");
        assert_eq!(config.duplicate_window, Duration::from_secs(120), "{name}");
        assert_eq!(config.num_replicas, 1, "{name}: dev profile");
        assert_eq!(config.retention, stream::RetentionPolicy::Limits, "{name}");
    }
    let auth = server_config(&js, "AUTH_EVENTS").await?.subjects;
    assert_eq!(auth, vec!["auth.>".to_string()]);

    let second = streams::apply(&js, &specs, ApplyOptions::default()).await?;
    assert!(
        second.iter().all(|p| p.action == Action::Unchanged),
        "{second:?}"
    );
    Ok(())
}

#[tokio::test]
async fn drift_is_reported_and_data_loss_needs_consent() -> anyhow::Result<()> {
    let server = NatsServer::launch().await?;
    let js = jetstream::new(server.connect().await?);
    let mut specs = streams::load_streams(registry_dir(), "dev")?;
    streams::apply(&js, &specs, ApplyOptions::default()).await?;
    js.publish("auth.user.created.org-1._", "kept".into())
        .await?
        .await?;

    // A safe change (a longer duplicate window) is planned as an update and applied.
    let auth = specs
        .iter_mut()
        .find(|s| s.name == "AUTH_EVENTS")
        .expect("AUTH_EVENTS");
    auth.duplicate_window = Duration::from_secs(300);
    let plans = streams::plan(&js, &specs).await?;
    let auth_plan = plans
        .iter()
        .find(|p| p.stream == "AUTH_EVENTS")
        .expect("planned");
    match &auth_plan.action {
        Action::Update(drift) => {
            assert_eq!(drift.len(), 1, "{drift:?}");
            assert_eq!(drift[0].field, "duplicate_window");
            assert!(!drift[0].loses_data);
        }
        other => panic!("expected an update, got {other:?}"),
    }
    streams::apply(&js, &specs, ApplyOptions::default()).await?;
    let config = server_config(&js, "AUTH_EVENTS").await?;
    assert_eq!(config.duplicate_window, Duration::from_secs(300));

    // A shorter max age and a smaller size could delete events: blocked.
    let auth = specs
        .iter_mut()
        .find(|s| s.name == "AUTH_EVENTS")
        .expect("AUTH_EVENTS");
    auth.max_age = Duration::from_secs(3600);
    auth.max_bytes = 1 << 20;
    match streams::apply(&js, &specs, ApplyOptions::default()).await {
        Err(ProvisionError::Blocked(plans)) => {
            assert_eq!(plans.len(), 1);
            let Action::Blocked(drift) = &plans[0].action else {
                panic!("expected a blocked plan, got {plans:?}");
            };
            let fields: Vec<&str> = drift.iter().map(|d| d.field).collect();
            assert_eq!(fields, vec!["max_age", "max_bytes"]);
            assert!(drift.iter().all(|d| d.loses_data));
        }
        other => panic!("expected Blocked, got {other:?}"),
    }
    let mut stream = js.get_stream("AUTH_EVENTS").await?;
    let info = stream.info().await?;
    assert_eq!(
        info.config.max_age,
        Duration::from_secs(7 * 24 * 3600),
        "unchanged"
    );
    assert_eq!(info.state.messages, 1, "nothing deleted");

    // With consent it is applied.
    streams::apply(
        &js,
        &specs,
        ApplyOptions {
            allow_data_loss: true,
        },
    )
    .await?;
    let config = server_config(&js, "AUTH_EVENTS").await?;
    assert_eq!(config.max_age, Duration::from_secs(3600));
    assert_eq!(config.max_bytes, 1 << 20);

    // A storage change cannot be applied at all, even with consent.
    let auth = specs
        .iter_mut()
        .find(|s| s.name == "AUTH_EVENTS")
        .expect("AUTH_EVENTS");
    auth.storage = tidings_codegen::registry::config::Storage::Memory;
    match streams::apply(
        &js,
        &specs,
        ApplyOptions {
            allow_data_loss: true,
        },
    )
    .await
    {
        Err(ProvisionError::Blocked(plans)) => {
            let text = plans[0].to_string();
            assert!(text.contains("cannot be changed in place"), "{text}");
        }
        other => panic!("expected Blocked, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn an_unknown_profile_is_a_clear_error() {
    let err = streams::load_streams(registry_dir(), "staging").expect_err("no such profile");
    assert!(err.to_string().contains("staging"), "{err}");
}

/// Fixing a managed drift patches the server's configuration: settings that
/// `tidings.toml` does not manage (a message size limit, compression,
/// `deny_delete`) survive the update, and `deny_delete` does not make the
/// update fail.
#[tokio::test]
async fn an_update_keeps_the_settings_it_does_not_manage() -> anyhow::Result<()> {
    let server = NatsServer::launch().await?;
    let js = jetstream::new(server.connect().await?);
    let specs = streams::load_streams(registry_dir(), "dev")?;
    let auth = specs
        .iter()
        .find(|s| s.name == "AUTH_EVENTS")
        .expect("AUTH_EVENTS");
    // An operator's stream: the configured settings but a shorter max_age
    // (a drift that is safe to fix), plus settings tidings does not manage.
    js.create_stream(stream::Config {
        max_age: Duration::from_secs(3600),
        max_message_size: 4096,
        compression: Some(stream::Compression::S2),
        deny_delete: true,
        ..streams::stream_config(auth)
    })
    .await?;

    let plans = streams::apply(&js, &specs, ApplyOptions::default()).await?;
    let auth_plan = plans
        .iter()
        .find(|p| p.stream == "AUTH_EVENTS")
        .expect("planned");
    assert!(
        matches!(&auth_plan.action, Action::Update(d) if d.len() == 1 && d[0].field == "max_age"),
        "{auth_plan:?}"
    );
    let config = js
        .get_stream("AUTH_EVENTS")
        .await?
        .info()
        .await?
        .config
        .clone();
    assert_eq!(
        config.max_age,
        Duration::from_secs(7 * 24 * 3600),
        "drift fixed"
    );
    assert_eq!(config.max_message_size, 4096, "kept");
    assert_eq!(config.compression, Some(stream::Compression::S2), "kept");
    assert!(config.deny_delete, "kept");
    Ok(())
}

/// A deployment provisioned before DLQ_EVENTS refused rather than evicted
/// (7 days, discard old) is updated in place by the next provisioning run:
/// both changes keep every stored dead letter, so no consent is needed.
#[tokio::test]
async fn an_existing_dlq_that_evicts_is_updated_to_refuse_and_keep_longer() -> anyhow::Result<()> {
    use tidings_codegen::registry::config::Discard;
    let server = NatsServer::launch().await?;
    let js = jetstream::new(server.connect().await?);
    let specs = streams::load_streams(registry_dir(), "dev")?;
    let mut old = specs.clone();
    for spec in old.iter_mut().filter(|s| s.name == "DLQ_EVENTS") {
        spec.discard = Discard::Old;
        spec.max_age = Duration::from_secs(7 * 24 * 3600);
    }
    streams::apply(&js, &old, ApplyOptions::default()).await?;
    js.publish("dlq.billing.auth.user.created.org-1.1", "kept".into())
        .await?
        .await?;

    let plans = streams::apply(&js, &specs, ApplyOptions::default()).await?;
    let dlq = plans
        .iter()
        .find(|p| p.stream == "DLQ_EVENTS")
        .expect("DLQ_EVENTS planned");
    match &dlq.action {
        Action::Update(drift) => {
            let mut fields: Vec<&str> = drift.iter().map(|d| d.field).collect();
            fields.sort_unstable();
            assert_eq!(fields, ["discard", "max_age"], "{drift:?}");
        }
        other => panic!("expected an update, got {other:?}"),
    }
    let info = js.get_stream("DLQ_EVENTS").await?.info().await?.clone();
    assert_eq!(info.config.discard, stream::DiscardPolicy::New);
    assert_eq!(info.config.max_age, Duration::from_secs(30 * 24 * 3600));
    assert_eq!(info.state.messages, 1, "the stored dead letter is kept");
    Ok(())
}

/// Retention as the server really applies it: a stream with a 1 s
/// `max_age` and a 2 KiB `max_bytes` discarding the oldest evicts old
/// messages as new ones come and then expires them all; one discarding new
/// refuses the message that does not fit and keeps the first.
#[tokio::test]
async fn retention_really_expires_evicts_and_refuses() -> anyhow::Result<()> {
    use tidings_codegen::registry::config::Discard;
    let server = NatsServer::launch().await?;
    let js = jetstream::new(server.connect().await?);
    let mut specs = streams::load_streams(registry_dir(), "dev")?;
    for spec in &mut specs {
        match spec.name.as_str() {
            "AUTH_EVENTS" => {
                spec.max_age = Duration::from_secs(1);
                spec.duplicate_window = Duration::from_millis(500);
                spec.max_bytes = 2048;
                spec.discard = Discard::Old;
            }
            "CATALOG_EVENTS" => {
                spec.max_bytes = 2048;
                spec.discard = Discard::New;
            }
            _ => {}
        }
    }
    streams::apply(&js, &specs, ApplyOptions::default()).await?;
    let body = bytes::Bytes::from(vec![b'x'; 200]);

    for n in 0..20 {
        js.publish(format!("auth.user.created.org-1.u-{n}"), body.clone())
            .await?
            .await?;
    }
    let state = js
        .get_stream("AUTH_EVENTS")
        .await?
        .info()
        .await?
        .state
        .clone();
    assert_eq!(state.last_sequence, 20);
    assert!(state.bytes <= 2048, "{} bytes kept", state.bytes);
    assert!(
        state.first_sequence > 1 && state.messages < 20,
        "the oldest were evicted: {state:?}"
    );
    tidings::testing::eventually("AUTH_EVENTS expires", Duration::from_secs(10), || async {
        let state = js
            .get_stream("AUTH_EVENTS")
            .await?
            .info()
            .await?
            .state
            .clone();
        if state.messages == 0 {
            Ok(())
        } else {
            Err(anyhow::anyhow!("{} messages left", state.messages))
        }
    })
    .await?;

    let mut stored: u64 = 0;
    let refused = loop {
        anyhow::ensure!(stored < 20, "2 KiB took 20 messages of 200 bytes");
        match js
            .publish(
                format!("catalog.product.created.org-1.p-{stored}"),
                body.clone(),
            )
            .await?
            .await
        {
            Ok(_) => stored += 1,
            Err(e) => break e,
        }
    };
    assert!(refused.to_string().contains("maximum bytes"), "{refused}");
    let state = js
        .get_stream("CATALOG_EVENTS")
        .await?
        .info()
        .await?
        .state
        .clone();
    assert_eq!(state.messages, stored, "nothing evicted");
    assert_eq!(state.first_sequence, 1, "the first message is kept");
    Ok(())
}

/// A server whose AUTH_EVENTS is provisioned with `retention` (the other
/// streams as configured), a client, its JetStream context and a publisher.
async fn auth_events_with(
    retention: Retention,
) -> anyhow::Result<(
    NatsServer,
    async_nats::Client,
    jetstream::Context,
    Publisher,
)> {
    let server = NatsServer::launch().await?;
    let client = server.connect().await?;
    let js = jetstream::new(client.clone());
    let mut specs = streams::load_streams(registry_dir(), "dev")?;
    for spec in specs.iter_mut().filter(|s| s.name == "AUTH_EVENTS") {
        spec.retention = retention;
    }
    streams::apply(&js, &specs, ApplyOptions::default()).await?;
    let publisher = Publisher::new(client.clone(), PublisherConfig::default())?;
    Ok((server, client, js, publisher))
}

/// How many events AUTH_EVENTS holds.
async fn stored(js: &jetstream::Context) -> anyhow::Result<u64> {
    Ok(js
        .get_stream("AUTH_EVENTS")
        .await?
        .info()
        .await?
        .state
        .messages)
}

/// Waits until AUTH_EVENTS holds `n` events.
async fn until_stored(js: &jetstream::Context, n: u64, what: &str) -> anyhow::Result<()> {
    tidings::testing::eventually(what, Duration::from_secs(20), || async {
        match stored(js).await? {
            m if m == n => Ok(()),
            m => Err(anyhow::anyhow!("{m} events stored, waiting for {n}")),
        }
    })
    .await?;
    Ok(())
}

/// A group handling `UserCreated` whose handler reports each event and
/// acks it only when `gate` lets it through (one permit per event).
async fn gated_group(
    client: &async_nats::Client,
    group: &str,
    start_at: StartAt,
    gate: Arc<Semaphore>,
) -> anyhow::Result<(tidings::subscribe::Running, mpsc::UnboundedReceiver<u64>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut subscriber = Subscriber::new(
        client.clone(),
        group,
        tidings::SubscriberConfig {
            start_at,
            // Long enough that a held event is not redelivered meanwhile.
            ack_wait: Duration::from_secs(30),
            ..fast_config()
        },
    )?;
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let (tx, gate) = (tx.clone(), gate.clone());
        async move {
            let _ = tx.send(event.meta.stream_sequence);
            gate.acquire().await.map(|permit| permit.forget())?;
            Ok::<(), tokio::sync::AcquireError>(())
        }
    });
    Ok((subscriber.start().await?, rx))
}

#[tokio::test]
async fn the_limits_kind_keeps_events_every_group_has_acked() -> anyhow::Result<()> {
    let (_server, client, js, publisher) = auth_events_with(Retention::Limits).await?;
    let gate = Arc::new(Semaphore::new(10));
    let (_a, mut seen_a) = gated_group(&client, "limits-a", StartAt::All, gate.clone()).await?;
    let (_b, mut seen_b) = gated_group(&client, "limits-b", StartAt::All, gate).await?;
    let ctx = PublishContext::new("org-1")?;
    publisher.publish(&ctx, &UserCreated::numbered(1)).await?;
    take(&mut seen_a, 1).await?;
    take(&mut seen_b, 1).await?;
    settled(&js, "AUTH_EVENTS", "limits-a").await?;
    settled(&js, "AUTH_EVENTS", "limits-b").await?;
    assert_eq!(
        stored(&js).await?,
        1,
        "an acked event stays until its limits"
    );
    Ok(())
}

#[tokio::test]
async fn the_interest_kind_deletes_an_event_once_every_group_acked_it() -> anyhow::Result<()> {
    let (_server, client, js, publisher) = auth_events_with(Retention::Interest).await?;
    let ctx = PublishContext::new("org-1")?;
    // No group covers a type: its event is deleted as it is stored.
    let uncovered = UserDeactivated {
        user_id: "u-1".into(),
        reason: "left".into(),
    };
    publisher.publish(&ctx, &uncovered).await?;
    until_stored(&js, 0, "an event no group covers is deleted at once").await?;

    let fast_gate = Arc::new(Semaphore::new(10));
    let slow_gate = Arc::new(Semaphore::new(0));
    let (_fast, mut fast) = gated_group(&client, "interest-fast", StartAt::All, fast_gate).await?;
    let (_slow, mut slow) =
        gated_group(&client, "interest-slow", StartAt::All, slow_gate.clone()).await?;
    publisher.publish(&ctx, &UserCreated::numbered(1)).await?;
    take(&mut fast, 1).await?;
    take(&mut slow, 1).await?;
    settled(&js, "AUTH_EVENTS", "interest-fast").await?;
    assert_eq!(
        stored(&js).await?,
        1,
        "kept while interest-slow has not acked it"
    );
    slow_gate.add_permits(1);
    settled(&js, "AUTH_EVENTS", "interest-slow").await?;
    until_stored(&js, 0, "deleted once both groups acked it").await?;
    Ok(())
}

#[tokio::test]
async fn the_workqueue_kind_deletes_on_ack_and_refuses_a_second_group_on_a_type(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = auth_events_with(Retention::WorkQueue).await?;
    let gate = Arc::new(Semaphore::new(0));
    // StartAt::New is overridden: JetStream lets a work-queue consumer
    // start only at the first event.
    let (_worker, mut seen) = gated_group(&client, "queue-a", StartAt::New, gate.clone()).await?;
    let ctx = PublishContext::new("org-1")?;
    publisher.publish(&ctx, &UserCreated::numbered(1)).await?;
    take(&mut seen, 1).await?;
    assert_eq!(stored(&js).await?, 1, "kept until it is acked");
    gate.add_permits(1);
    settled(&js, "AUTH_EVENTS", "queue-a").await?;
    until_stored(&js, 0, "deleted on its ack").await?;

    // A second group on the same type overlaps the first's filter.
    let mut second = Subscriber::new(client.clone(), "queue-b", fast_config())?;
    second.handle::<UserCreated, _>(|_e: Event<UserCreated>| async { Ok::<(), Infallible>(()) });
    match second.start().await {
        Err(SubscribeError::Consumer { group, detail, .. }) => {
            assert_eq!(group, "queue-b");
            assert!(detail.contains("not unique"), "{detail}");
        }
        Err(other) => panic!("expected the server to refuse the consumer, got {other}"),
        Ok(_) => panic!("a second group over the same subjects started on a work queue"),
    }
    // A group on another type does not overlap and starts.
    let mut other = Subscriber::new(client, "queue-c", fast_config())?;
    other.handle::<UserDeactivated, _>(|_e: Event<UserDeactivated>| async {
        Ok::<(), Infallible>(())
    });
    let _other = other.start().await?;
    Ok(())
}

#[tokio::test]
async fn a_retention_change_is_kept_back_as_data_loss_or_refused_for_work_queues(
) -> anyhow::Result<()> {
    let server = NatsServer::launch().await?;
    let js = jetstream::new(server.connect().await?);
    let mut specs = streams::load_streams(registry_dir(), "dev")?;
    streams::apply(&js, &specs, ApplyOptions::default()).await?;
    js.publish("auth.user.created.org-1._", "kept".into())
        .await?
        .await?;
    let set = |specs: &mut Vec<tidings_codegen::registry::ResolvedStream>, r| {
        for spec in specs.iter_mut().filter(|s| s.name == "AUTH_EVENTS") {
            spec.retention = r;
        }
    };
    let retention = |js: jetstream::Context| async move {
        anyhow::Ok(
            js.get_stream("AUTH_EVENTS")
                .await?
                .info()
                .await?
                .config
                .retention,
        )
    };
    let consent = ApplyOptions {
        allow_data_loss: true,
    };

    // Limits to interest would delete the event (no group covers it).
    set(&mut specs, Retention::Interest);
    match streams::apply(&js, &specs, ApplyOptions::default()).await {
        Err(ProvisionError::Blocked(plans)) => {
            let Action::Blocked(drift) = &plans[0].action else {
                panic!("expected a blocked plan, got {plans:?}");
            };
            assert_eq!(drift.len(), 1, "{drift:?}");
            assert_eq!(drift[0].field, "retention");
            assert!(drift[0].loses_data && drift[0].updatable, "{drift:?}");
            let text = plans[0].to_string();
            assert!(
                text.contains("retention: server Limits -> config Interest"),
                "{text}"
            );
            assert!(text.contains("may delete stored events"), "{text}");
        }
        other => panic!("expected Blocked, got {other:?}"),
    }
    assert_eq!(
        retention(js.clone()).await?,
        stream::RetentionPolicy::Limits
    );
    assert_eq!(stored(&js).await?, 1, "nothing deleted");
    streams::apply(&js, &specs, consent).await?;
    assert_eq!(
        retention(js.clone()).await?,
        stream::RetentionPolicy::Interest
    );
    until_stored(&js, 0, "the switch deleted what no group wants, as warned").await?;

    // Interest back to limits only keeps more: a plain update.
    set(&mut specs, Retention::Limits);
    let plans = streams::plan(&js, &specs).await?;
    let auth = plans
        .iter()
        .find(|p| p.stream == "AUTH_EVENTS")
        .expect("planned");
    assert!(
        matches!(&auth.action, Action::Update(d) if d.len() == 1 && d[0].field == "retention"),
        "{auth:?}"
    );
    streams::apply(&js, &specs, ApplyOptions::default()).await?;
    assert_eq!(
        retention(js.clone()).await?,
        stream::RetentionPolicy::Limits
    );

    // JetStream changes no stream to or from a work queue, consent or not.
    set(&mut specs, Retention::WorkQueue);
    match streams::apply(&js, &specs, consent).await {
        Err(ProvisionError::Blocked(plans)) => {
            let Action::Blocked(drift) = &plans[0].action else {
                panic!("expected a blocked plan, got {plans:?}");
            };
            assert!(!drift[0].updatable, "{drift:?}");
            let text = plans[0].to_string();
            assert!(text.contains("cannot be changed in place"), "{text}");
        }
        other => panic!("expected Blocked, got {other:?}"),
    }
    assert_eq!(
        retention(js.clone()).await?,
        stream::RetentionPolicy::Limits
    );
    Ok(())
}

#[tokio::test]
async fn a_create_or_update_whose_answer_is_lost_is_checked_not_failed() -> anyhow::Result<()> {
    let server = NatsServer::launch().await?;
    let proxy = FaultProxy::start(server.port()).await?;
    let mut js = jetstream::new(async_nats::connect(proxy.url()).await?);
    js.set_timeout(Duration::from_millis(500));
    let mut specs = streams::load_streams(registry_dir(), "dev")?;

    // The server creates AUTH_EVENTS but its answer never arrives: the
    // request times out with the stream in place.
    let lost = proxy.drop_next(Flow::ServerToClient, 1, |f: &Frame| {
        f.is_api_answer("stream_create_response")
    });
    let plans = streams::apply(&js, &specs, ApplyOptions::default()).await?;
    assert_eq!(lost.hits(), 1, "the create answer was lost");
    assert!(
        plans.iter().all(|p| p.action == Action::Create),
        "{plans:?}"
    );
    for name in SERVICE_STREAMS {
        js.get_stream(name).await?;
    }

    // The same for an update.
    auth_duplicate_window(&mut specs, Duration::from_secs(300));
    let lost = proxy.drop_next(Flow::ServerToClient, 1, |f: &Frame| {
        f.is_api_answer("stream_update_response")
    });
    streams::apply(&js, &specs, ApplyOptions::default()).await?;
    assert_eq!(lost.hits(), 1, "the update answer was lost");
    let config = server_config(&js, "AUTH_EVENTS").await?;
    assert_eq!(config.duplicate_window, Duration::from_secs(300));
    let again = streams::plan(&js, &specs).await?;
    assert!(
        again.iter().all(|p| p.action == Action::Unchanged),
        "{again:?}"
    );

    // Updates that never reach the server are sent three times in all,
    // then reported as timed out.
    let requests = proxy.drop_all(Flow::ClientToServer, |frame| {
        frame
            .subject()
            .is_some_and(|s| s.starts_with("$JS.API.STREAM.UPDATE."))
    });
    auth_duplicate_window(&mut specs, Duration::from_secs(600));
    let err = streams::apply(&js, &specs, ApplyOptions::default())
        .await
        .expect_err("no update arrives");
    assert_eq!(requests.hits(), 3, "sent three times");
    assert!(
        matches!(&err, ProvisionError::Server { stream, action: "updating", .. } if stream == "AUTH_EVENTS"),
        "{err:?}"
    );
    let cause = anyhow::Error::from(err);
    assert!(format!("{cause:#}").contains("timed out"), "{cause:#}");
    Ok(())
}

#[tokio::test]
async fn a_failures_bucket_create_whose_answer_is_lost_is_checked_not_failed() -> anyhow::Result<()>
{
    let server = NatsServer::launch().await?;
    let proxy = FaultProxy::start(server.port()).await?;
    let mut js = jetstream::new(async_nats::connect(proxy.url()).await?);
    js.set_timeout(Duration::from_millis(500));
    let specs = streams::load_streams(registry_dir(), "dev")?;
    let bucket_stream = format!("KV_{FAILURES_BUCKET}");

    // The server creates the failures bucket but its answer never arrives.
    let name = bucket_stream.clone();
    let lost = proxy.drop_next(Flow::ServerToClient, 1, move |frame| {
        frame.is_api_answer("stream_create_response") && frame.payload_contains(&name)
    });
    streams::apply(&js, &specs, ApplyOptions::default()).await?;
    assert_eq!(lost.hits(), 1, "the bucket's create answer was lost");
    js.get_key_value(FAILURES_BUCKET).await?;

    // Creates that never reach the server are sent three times in all,
    // then reported as timed out.
    js.delete_key_value(FAILURES_BUCKET).await?;
    let name = format!("$JS.API.STREAM.CREATE.{bucket_stream}");
    let requests = proxy.drop_all(Flow::ClientToServer, move |frame| {
        frame.subject().is_some_and(|s| s == name)
    });
    let err = streams::apply(&js, &specs, ApplyOptions::default())
        .await
        .expect_err("no create arrives");
    assert_eq!(requests.hits(), 3, "sent three times");
    assert!(
        matches!(&err, ProvisionError::Server { stream, action: "creating the bucket", .. } if *stream == bucket_stream),
        "{err:?}"
    );
    let cause = anyhow::Error::from(err);
    assert!(format!("{cause:#}").contains("timed out"), "{cause:#}");
    Ok(())
}

/// The configuration the server has for stream `name`.
async fn server_config(js: &jetstream::Context, name: &str) -> anyhow::Result<stream::Config> {
    Ok(js.get_stream(name).await?.cached_info().config.clone())
}

fn auth_duplicate_window(specs: &mut [ResolvedStream], window: Duration) {
    specs
        .iter_mut()
        .find(|s| s.name == "AUTH_EVENTS")
        .expect("AUTH_EVENTS")
        .duplicate_window = window;
}
