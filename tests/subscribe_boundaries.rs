//! The boundaries a consumer group must keep against a real nats-server:
//! a message's subject and body must name the same type, tenant and entity
//! (tenant filters and permissions work on subjects, handlers on bodies),
//! and instances of one group that handle different types (every rolling
//! deploy that adds a handler) must not skip or dead-letter each other's
//! events, whichever started last.
mod support;

use std::convert::Infallible;
use std::time::Duration;

use async_nats::jetstream;
use support::{fast_config, settled, setup, take, UserCreated, UserDeactivated};
use tidings::dlq::{ops, DeadLetterKind, DlqFilter};
use tidings::replay::{Replay, ReplayError, ReplaySpec, ReplayStart};
use tidings::subscribe::SubscriberConfig;
use tidings::{Event, OrganizationId, PublishContext, Publisher, Subscriber};
use tokio::sync::mpsc;
use uuid::Uuid;

/// What a handler saw: the event id, the type, the tenant and the key the
/// handler was given.
type Seen = (Uuid, &'static str, String, String);

/// An instance of `group` handling `auth.user.created` (and, with
/// `deactivated`, `auth.user.deactivated`), sending what it sees to `tx`.
fn instance(
    client: &async_nats::Client,
    group: &str,
    config: SubscriberConfig,
    deactivated: bool,
    tx: mpsc::UnboundedSender<Seen>,
) -> anyhow::Result<Subscriber> {
    let mut subscriber = Subscriber::new(client.clone(), group, config)?;
    let created = tx.clone();
    subscriber.handle::<UserCreated, _>(move |event: Event<UserCreated>| {
        let tx = created.clone();
        async move {
            let _ = tx.send((
                event.meta.event_id,
                "created",
                event.meta.organization_id.to_string(),
                event.payload.user_id.clone(),
            ));
            Ok::<(), Infallible>(())
        }
    });
    if deactivated {
        subscriber.handle::<UserDeactivated, _>(move |event: Event<UserDeactivated>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((
                    event.meta.event_id,
                    "deactivated",
                    event.meta.organization_id.to_string(),
                    event.payload.user_id.clone(),
                ));
                Ok::<(), Infallible>(())
            }
        });
    }
    Ok(subscriber)
}

/// Publishes the event prepared for `ctx` on `subject` instead of its own,
/// headers and body untouched: a publisher with the permission to publish
/// on `subject` lying about what it publishes.
async fn publish_on<E: tidings::DomainEvent>(
    js: &jetstream::Context,
    publisher: &Publisher,
    ctx: &PublishContext,
    event: &E,
    subject: &str,
) -> anyhow::Result<u64> {
    let prepared = publisher.prepare(ctx, event)?;
    Ok(js
        .publish_with_headers(
            subject.to_string(),
            prepared.headers().clone(),
            prepared.body().clone(),
        )
        .await?
        .await?
        .sequence)
}

/// Three messages whose subjects contradict their bodies, all on org-A
/// subjects: an org-B event, a `created` event on a `deactivated` subject,
/// and user u-1's event on user u-2's subject. Returns their sequences.
async fn publish_contradictions(
    js: &jetstream::Context,
    publisher: &Publisher,
) -> anyhow::Result<[u64; 3]> {
    let org_a = PublishContext::new("org-A")?;
    let org_b = PublishContext::new("org-B")?;
    let u1 = UserCreated::numbered(1);
    Ok([
        publish_on(js, publisher, &org_b, &u1, "auth.user.created.org-A.u-1").await?,
        publish_on(
            js,
            publisher,
            &org_a,
            &u1,
            "auth.user.deactivated.org-A.u-1",
        )
        .await?,
        publish_on(js, publisher, &org_a, &u1, "auth.user.created.org-A.u-2").await?,
    ])
}

/// The dead letters once there are `n` of them.
async fn dead_letters(js: &jetstream::Context, n: usize) -> anyhow::Result<Vec<ops::DeadLetter>> {
    Ok(tidings::testing::eventually(
        "the dead letters arrive",
        Duration::from_secs(20),
        || async {
            let found = ops::list(js, &DlqFilter::default(), None).await?;
            if found.len() == n {
                Ok(found)
            } else {
                Err(anyhow::anyhow!("{} of {n} dead letters", found.len()))
            }
        },
    )
    .await?)
}

fn org_a_only() -> anyhow::Result<SubscriberConfig> {
    Ok(SubscriberConfig {
        organization: Some(OrganizationId::new("org-A")?),
        ..fast_config()
    })
}

#[tokio::test]
async fn a_subject_that_contradicts_the_body_on_tenant_type_or_key_is_poison_naming_both(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let running = instance(&client, "tenant-a", org_a_only()?, true, tx)?
        .start()
        .await?;
    let sequences = publish_contradictions(&js, &publisher).await?;
    let good = publisher
        .publish(&PublishContext::new("org-A")?, &UserCreated::numbered(3))
        .await?;
    // Stream order: the handler's first event must be the one that agrees.
    let got = take(&mut rx, 1).await?;
    assert_eq!(
        got,
        vec![(good.event_id, "created", "org-A".into(), "u-3".into())],
        "a message whose subject contradicts its body reached a handler"
    );
    let mut dead = dead_letters(&js, 3).await?;
    dead.sort_by_key(|d| d.record.as_ref().map(|r| r.sequence).unwrap_or(0));
    let expected = [
        ("organization", "org-A", "org-B"),
        ("event type", "auth.user.deactivated", "auth.user.created"),
        ("entity key", "u-2", "u-1"),
    ];
    for ((letter, sequence), (what, subject_says, body_says)) in
        dead.iter().zip(sequences).zip(expected)
    {
        let record = letter.record.clone()?;
        assert_eq!(record.sequence, sequence);
        assert_eq!(record.kind, DeadLetterKind::Poison);
        assert_eq!(record.deliveries, 1, "given up at once");
        assert!(
            record.error.contains(&format!(
                "the subject says {what} {subject_says}, the body says {body_says}"
            )),
            "{}",
            record.error
        );
    }
    settled(&js, "AUTH_EVENTS", "tenant-a").await?;
    assert!(rx.try_recv().is_err(), "a handler ran on a contradiction");
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn replays_skip_a_subject_that_contradicts_the_body() -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    publish_contradictions(&js, &publisher).await?;
    let good = publisher
        .publish(&PublishContext::new("org-A")?, &UserCreated::numbered(3))
        .await?;

    let mut replay = Replay::start(
        &js,
        ReplaySpec {
            stream: "AUTH_EVENTS".into(),
            event_types: vec!["auth.user.created".into(), "auth.user.deactivated".into()],
            organization: Some(OrganizationId::new("org-A")?),
            start: ReplayStart::Sequence(1),
            until: None,
        },
    )
    .await?;
    let mut read = Vec::new();
    let mut refused = Vec::new();
    while let Some(item) = tokio::time::timeout(Duration::from_secs(10), replay.next()).await? {
        match item {
            Ok(replayed) => read.push(replayed.envelope.id),
            Err(e @ ReplayError::Server { .. }) => return Err(e.into()),
            Err(e) => refused.push(e.to_string()),
        }
    }
    assert_eq!(read, vec![good.event_id], "refused: {refused:?}");
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(
        refused[0].contains("the subject says organization org-A, the body says org-B"),
        "{}",
        refused[0]
    );

    let (tx, mut rx) = mpsc::unbounded_channel();
    let subscriber = instance(&client, "tenant-a", org_a_only()?, true, tx)?;
    let report = tokio::time::timeout(
        Duration::from_secs(10),
        subscriber.replay(ReplayStart::Sequence(1), None),
    )
    .await??;
    assert_eq!((report.handled, report.unreadable), (1, 3));
    let got = take(&mut rx, 1).await?;
    assert_eq!(got[0].0, good.event_id);
    assert!(rx.try_recv().is_err(), "a handler ran on a contradiction");
    Ok(())
}
