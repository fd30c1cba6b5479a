//! The boundaries a consumer group must keep against a real nats-server:
//! a message's subject and body must name the same type, tenant and entity
//! (tenant filters and permissions work on subjects, handlers on bodies),
//! and instances of one group that handle different types (every rolling
//! deploy that adds a handler) must not skip or dead-letter each other's
//! events, whichever started last.
mod support;

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use support::{
    consumer_info, dead_letters, fast_config, settled, setup, take, UserCreated, UserDeactivated,
};
use tidings::dlq::{ops, DeadLetterKind, DlqFilter};
use tidings::replay::{Replay, ReplayError, ReplaySpec, ReplayStart};
use tidings::subscribe::SubscriberConfig;
use tidings::testing::{eventually, FaultProxy, Flow, Frame, Rule};
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

/// Publishes 20 `created` and 20 `deactivated` events, alternating; returns
/// their ids.
async fn publish_both_types(publisher: &Publisher, n: usize) -> anyhow::Result<HashSet<Uuid>> {
    let ctx = PublishContext::new("org-1")?;
    let mut ids = HashSet::new();
    for i in 0..n {
        ids.insert(publish_one(publisher, &ctx, i, true).await?);
    }
    Ok(ids)
}

/// Event `i`: `deactivated` for odd `i` when `both`, else `created`.
async fn publish_one(
    publisher: &Publisher,
    ctx: &PublishContext,
    i: usize,
    both: bool,
) -> anyhow::Result<Uuid> {
    let published = if both && i % 2 == 1 {
        let event = UserDeactivated {
            user_id: format!("u-{i}"),
            reason: "left".into(),
        };
        publisher.publish(ctx, &event).await?
    } else {
        publisher.publish(ctx, &UserCreated::numbered(i)).await?
    };
    Ok(published.event_id)
}

/// The consumer's filter subjects, sorted, however the server stores them.
fn filters(info: jetstream::consumer::Info) -> Vec<String> {
    let mut all = info.config.filter_subjects.clone();
    all.push(info.config.filter_subject.clone());
    all.retain(|f| !f.is_empty());
    all.sort();
    all
}

/// The filters of a group that handles both types.
fn both_types() -> Vec<String> {
    vec![
        "auth.user.created.>".to_string(),
        "auth.user.deactivated.>".to_string(),
    ]
}

/// Handled once each: every id in `want` exactly once, nothing else.
fn assert_once_each(seen: &[Seen], want: &HashSet<Uuid>) {
    let mut counts: HashMap<Uuid, usize> = HashMap::new();
    for (id, ..) in seen {
        *counts.entry(*id).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
    let missing = want.iter().filter(|id| !counts.contains_key(id)).count();
    assert_eq!(missing, 0, "{missing} of {} never handled", want.len());
    assert_eq!(counts.len(), want.len(), "handled events never published");
}

/// Takes one handling per published id (at most 20 s); if some do not
/// come, the error names them with what the server and the DLQ say of the
/// group, so that a rare failure explains itself.
async fn take_or_explain(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    ids: &HashSet<Uuid>,
    js: &jetstream::Context,
    group: &str,
) -> anyhow::Result<Vec<Seen>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::with_capacity(ids.len());
    while seen.len() < ids.len() {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(item)) => seen.push(item),
            Ok(None) => anyhow::bail!("channel closed after {} of {}", seen.len(), ids.len()),
            Err(_) => {
                let handled: HashSet<Uuid> = seen.iter().map(|s| s.0).collect();
                let missing: Vec<&Uuid> = ids.iter().filter(|id| !handled.contains(id)).collect();
                let info = consumer_info(js, "AUTH_EVENTS", group).await?;
                let dead = ops::list(js, &DlqFilter::default(), None).await?;
                anyhow::bail!(
                    "only {} of {} handled within 20 s; missing {missing:?}; consumer: {} pending, {} ack pending, {} redelivered, {} pull requests waiting; {} dead-lettered: {:?}",
                    seen.len(),
                    ids.len(),
                    info.num_pending,
                    info.num_ack_pending,
                    info.num_redelivered,
                    info.num_waiting,
                    dead.len(),
                    dead.iter()
                        .map(|d| d.record.as_ref().map(|r| r.error.clone()))
                        .collect::<Vec<_>>()
                );
            }
        }
    }
    Ok(seen)
}

/// Instance A handles `created`, B `created` and `deactivated`, in one
/// group; they start in the given order, then 40 events of both types are
/// published. Every one is handled exactly once and nothing is dead-lettered.
async fn both_instances_handle_every_event(a_first: bool) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Small windows, so that both instances get some of each type (one
    // pull request of the default window would take all 40).
    let config = SubscriberConfig {
        max_in_flight: 4,
        ..fast_config()
    };
    let a = instance(&client, "mixed", config.clone(), false, tx.clone())?;
    let b = instance(&client, "mixed", config, true, tx)?;
    let (a, b) = if a_first {
        let a = a.start().await?;
        (a, b.start().await?)
    } else {
        let b = b.start().await?;
        (a.start().await?, b)
    };
    let ids = publish_both_types(&publisher, 40).await?;
    let seen = take_or_explain(&mut rx, &ids, &js, "mixed").await?;
    settled(&js, "AUTH_EVENTS", "mixed").await?;
    assert!(rx.try_recv().is_err(), "an event was handled twice");
    assert_once_each(&seen, &ids);
    let dead = ops::list(&js, &DlqFilter::default(), None).await?;
    assert!(
        dead.is_empty(),
        "dead-lettered: {:?}",
        dead.iter()
            .map(|d| d.record.as_ref().map(|r| r.error.clone()))
            .collect::<Vec<_>>()
    );
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_instance_with_fewer_handlers_starting_last_skips_nothing() -> anyhow::Result<()> {
    both_instances_handle_every_event(false).await
}

#[tokio::test]
async fn an_instance_with_more_handlers_starting_last_poisons_nothing() -> anyhow::Result<()> {
    both_instances_handle_every_event(true).await
}

#[tokio::test]
async fn a_rolling_deploy_that_adds_a_handler_handles_every_event_once_under_load(
) -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let old = instance(&client, "rolling", fast_config(), false, tx.clone())?
        .start()
        .await?;
    // The producer publishes `created` events at a steady rate, and
    // `deactivated` ones too once the new version is up (before that, no
    // instance of the group handles them, so they are not the group's).
    let deactivating = Arc::new(AtomicBool::new(false));
    let producer = {
        let deactivating = deactivating.clone();
        tokio::spawn(async move {
            let ctx = PublishContext::new("org-1")?;
            let mut ids = HashSet::new();
            let mut tick = tokio::time::interval(Duration::from_millis(2));
            for i in 0..1_200 {
                tick.tick().await;
                let both = deactivating.load(Ordering::SeqCst);
                ids.insert(publish_one(&publisher, &ctx, i, both).await?);
            }
            anyhow::Ok(ids)
        })
    };
    let mut seen = take(&mut rx, 100).await?;
    let new = instance(&client, "rolling", fast_config(), true, tx)?
        .start()
        .await?;
    deactivating.store(true, Ordering::SeqCst);
    seen.extend(take(&mut rx, 300).await?);
    let report = old.shutdown().await;
    assert_eq!(report.abandoned, 0);
    let ids = producer.await??;
    seen.extend(take(&mut rx, ids.len().saturating_sub(seen.len())).await?);
    settled(&js, "AUTH_EVENTS", "rolling").await?;
    assert!(rx.try_recv().is_err(), "an event was handled twice");
    assert_once_each(&seen, &ids);
    let deactivations = seen.iter().filter(|s| s.1 == "deactivated").count();
    assert!(deactivations > 100, "only {deactivations} deactivations");
    let dead = ops::list(&js, &DlqFilter::default(), None).await?;
    assert!(
        dead.is_empty(),
        "dead-lettered: {:?}",
        dead.iter()
            .map(|d| d.record.as_ref().map(|r| r.error.clone()))
            .collect::<Vec<_>>()
    );
    new.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn start_never_narrows_the_filter_and_retire_types_does_explicitly() -> anyhow::Result<()> {
    let (_server, client, js, publisher) = setup().await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    // The new version ran and was rolled back: the old one starts last.
    let new = instance(&client, "retiring", fast_config(), true, tx.clone())?
        .start()
        .await?;
    new.shutdown().await;
    let old = instance(&client, "retiring", fast_config(), false, tx)?
        .start()
        .await?;
    assert_eq!(
        filters(support::consumer_info(&js, "AUTH_EVENTS", "retiring").await?),
        both_types()
    );

    let err = tidings::subscribe::retire_types(
        &js,
        "AUTH_EVENTS",
        "retiring",
        &["auth.user.created", "auth.user.deactivated"],
    )
    .await
    .expect_err("no filter left");
    assert!(
        err.to_string().contains("delete the consumer instead"),
        "{err}"
    );
    let retired = tidings::subscribe::retire_types(
        &js,
        "AUTH_EVENTS",
        "retiring",
        &["auth.user.deactivated"],
    )
    .await?;
    assert_eq!(retired, vec!["auth.user.deactivated.>".to_string()]);
    assert_eq!(
        filters(support::consumer_info(&js, "AUTH_EVENTS", "retiring").await?),
        vec!["auth.user.created.>".to_string()]
    );

    let ctx = PublishContext::new("org-1")?;
    let created = publish_one(&publisher, &ctx, 0, true).await?;
    publish_one(&publisher, &ctx, 1, true).await?;
    let got = take(&mut rx, 1).await?;
    assert_eq!(got[0].0, created);
    // The deactivation is not the group's: nothing pending, nothing held.
    tidings::testing::eventually(
        "the group has nothing pending",
        Duration::from_secs(20),
        || async {
            let info = support::consumer_info(&js, "AUTH_EVENTS", "retiring").await?;
            if info.num_pending == 0 && info.num_ack_pending == 0 {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "pending {}, awaiting ack {}",
                    info.num_pending,
                    info.num_ack_pending
                ))
            }
        },
    )
    .await?;
    assert!(rx.try_recv().is_err());
    assert!(ops::list(&js, &DlqFilter::default(), None)
        .await?
        .is_empty());
    old.shutdown().await;
    Ok(())
}

/// A replay asked to start before the oldest event the stream still holds
/// (the first two were removed, as `max_age` or `max_bytes` would) says
/// the range is truncated, by sequence and by time; one starting at a
/// retained event, or on a stream that never lost one, does not.
#[tokio::test]
async fn a_replay_starting_before_the_oldest_retained_event_says_it_is_truncated(
) -> anyhow::Result<()> {
    let (_server, _client, js, publisher) = setup().await?;
    let before = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let ctx = PublishContext::new("org-A")?;
    let mut published = Vec::new();
    for n in 0..4 {
        published.push(publisher.publish(&ctx, &UserCreated::numbered(n)).await?);
    }
    let spec = |start| ReplaySpec {
        stream: "AUTH_EVENTS".into(),
        event_types: vec!["auth.user.created".into()],
        organization: None,
        start,
        until: None,
    };
    let whole = Replay::start(&js, spec(ReplayStart::Time(before))).await?;
    assert_eq!(whole.truncated(), None, "nothing was removed yet");

    let purged = js.get_stream("AUTH_EVENTS").await?.purge().keep(2).await?;
    assert_eq!(purged.purged, 2);
    for start in [ReplayStart::Sequence(1), ReplayStart::Time(before)] {
        let mut replay = Replay::start(&js, spec(start)).await?;
        let truncated = *replay
            .truncated()
            .unwrap_or_else(|| panic!("a replay from {start:?} is truncated"));
        assert_eq!(truncated.requested, start);
        assert_eq!(truncated.first_retained, published[2].sequence);
        assert!(truncated.first_stored_at.is_some());
        assert!(
            truncated.to_string().contains("the range is truncated"),
            "{truncated}"
        );
        let mut read = Vec::new();
        while let Some(item) = tokio::time::timeout(Duration::from_secs(10), replay.next()).await? {
            read.push(item?.stream_sequence);
        }
        assert_eq!(read, [published[2].sequence, published[3].sequence]);
    }
    let retained = Replay::start(&js, spec(ReplayStart::Sequence(published[2].sequence))).await?;
    assert_eq!(retained.truncated(), None, "starts at a retained event");
    Ok(())
}

/// A client connected through `proxy` whose requests time out after
/// `timeout`.
async fn through(proxy: &FaultProxy, timeout: Duration) -> anyhow::Result<async_nats::Client> {
    Ok(async_nats::ConnectOptions::new()
        .request_timeout(Some(timeout))
        .connect(proxy.url())
        .await?)
}

#[tokio::test]
async fn an_instance_whose_consumer_lookup_goes_unanswered_narrows_nothing() -> anyhow::Result<()> {
    let (server, client, js, publisher) = setup().await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let new = instance(&client, "unanswered", fast_config(), true, tx.clone())?
        .start()
        .await?;
    new.shutdown().await;

    // The old version starts while the server's answer to its consumer
    // lookup is lost: it must not take the consumer for absent and
    // create it with its own filter only.
    let proxy = FaultProxy::start(server.port()).await?;
    let slow = through(&proxy, Duration::from_millis(500)).await?;
    let lost = proxy.drop_next(Flow::ServerToClient, 1, |f: &Frame| {
        f.is_api_answer("consumer_info_response")
    });
    let old = instance(&slow, "unanswered", fast_config(), false, tx.clone())?
        .start()
        .await?;
    assert_eq!(lost.hits(), 1, "the lookup's answer was lost");
    assert_eq!(
        filters(support::consumer_info(&js, "AUTH_EVENTS", "unanswered").await?),
        both_types()
    );

    // A deactivation published while only the old version runs is the
    // group's still, and the new version handles it.
    let ctx = PublishContext::new("org-1")?;
    let deactivated = publish_one(&publisher, &ctx, 1, true).await?;
    let new = instance(&client, "unanswered", fast_config(), true, tx)?
        .start()
        .await?;
    let got = take(&mut rx, 1).await?;
    assert_eq!((got[0].0, got[0].1), (deactivated, "deactivated"));
    old.shutdown().await;
    new.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_consumer_create_whose_answer_is_lost_is_checked_not_failed() -> anyhow::Result<()> {
    let (server, _client, js, publisher) = setup().await?;
    let proxy = FaultProxy::start(server.port()).await?;
    let slow = through(&proxy, Duration::from_millis(500)).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let lost = proxy.drop_next(Flow::ServerToClient, 1, |f: &Frame| {
        f.is_api_answer("consumer_create_response")
    });
    let running = instance(&slow, "lost-create", fast_config(), true, tx)?
        .start()
        .await?;
    assert_eq!(lost.hits(), 1, "the create's answer was lost");
    assert_eq!(
        filters(support::consumer_info(&js, "AUTH_EVENTS", "lost-create").await?),
        both_types()
    );
    let ctx = PublishContext::new("org-1")?;
    let created = publish_one(&publisher, &ctx, 0, true).await?;
    let got = take(&mut rx, 1).await?;
    assert_eq!(got[0].0, created);
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn instances_that_differ_creating_the_group_at_once_keep_both_filters() -> anyhow::Result<()>
{
    let (server, client, js, _publisher) = setup().await?;
    let proxy = FaultProxy::start(server.port()).await?;
    let slow = through(&proxy, Duration::from_secs(10)).await?;
    let (tx, _rx) = mpsc::unbounded_channel();
    // The old version found no consumer; its create has left but not
    // arrived when the new version creates the consumer.
    let held = proxy.hold_next(Flow::ClientToServer, |f: &Frame| {
        f.subject()
            .is_some_and(|s| s.starts_with("$JS.API.CONSUMER.CREATE.AUTH_EVENTS."))
    });
    let old = tokio::spawn(instance(&slow, "racing", fast_config(), false, tx.clone())?.start());
    held.wait(1, Duration::from_secs(10)).await?;
    let new = instance(&client, "racing", fast_config(), true, tx)?
        .start()
        .await?;
    held.release();
    let old = old.await??;
    assert_eq!(
        filters(support::consumer_info(&js, "AUTH_EVENTS", "racing").await?),
        both_types()
    );
    old.shutdown().await;
    new.shutdown().await;
    Ok(())
}

/// When a test's fault on the new version's traffic is put in place.
#[derive(Clone, Copy, PartialEq)]
enum FaultFrom {
    /// Before the new version starts (its start's own requests pass).
    Start,
    /// Once both versions run.
    Running,
}

/// A fault for [`widened_again_after`]: the first frame the client sends
/// to `subject`, and everything it sends after it, held in the proxy.
fn hold_first(subject: &'static str) -> impl FnOnce(&FaultProxy) -> Rule {
    move |proxy: &FaultProxy| {
        proxy.hold_next(Flow::ClientToServer, move |f: &Frame| {
            f.subject().is_some_and(|s| s == subject)
        })
    }
}

/// The old version (`created` only, on the direct connection) and the new
/// one (both types, through a proxy with request timeout `timeout`) share
/// `group`; its consumer is deleted while `fault` disturbs the new
/// version's traffic, and the old version creates it again from its own
/// copy, with its own filter only. Once `fault` has matched `hits` frames
/// it is lifted: the new version must widen the consumer again and handle
/// a `deactivated` event.
async fn widened_again_after(
    group: &str,
    timeout: Duration,
    from: FaultFrom,
    fault: impl FnOnce(&FaultProxy) -> Rule,
    hits: u64,
) -> anyhow::Result<()> {
    let (server, client, js, publisher) = setup().await?;
    let proxy = FaultProxy::start(server.port()).await?;
    let slow = through(&proxy, timeout).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let old = instance(&client, group, fast_config(), false, tx.clone())?
        .start()
        .await?;
    let new = instance(&slow, group, fast_config(), true, tx)?;
    let (new, rule) = match from {
        FaultFrom::Start => {
            let rule = fault(&proxy);
            (new.start().await?, rule)
        }
        FaultFrom::Running => {
            let new = new.start().await?;
            (new, fault(&proxy))
        }
    };
    js.get_stream("AUTH_EVENTS")
        .await?
        .delete_consumer(group)
        .await?;
    let recreated = eventually(
        "the old version to recreate the consumer",
        Duration::from_secs(20),
        || support::consumer_info(&js, "AUTH_EVENTS", group),
    )
    .await?;
    assert_eq!(filters(recreated), vec!["auth.user.created.>".to_string()]);
    rule.wait(hits, Duration::from_secs(20)).await?;
    rule.release();
    rule.remove();
    eventually(
        "the new version to widen the consumer again",
        Duration::from_secs(20),
        || async {
            let now = filters(support::consumer_info(&js, "AUTH_EVENTS", group).await?);
            anyhow::ensure!(now == both_types(), "filters {now:?}");
            anyhow::Ok(())
        },
    )
    .await?;
    let ctx = PublishContext::new("org-1")?;
    let deactivated = publish_one(&publisher, &ctx, 1, true).await?;
    let got = take(&mut rx, 1).await?;
    assert_eq!((got[0].0, got[0].1), (deactivated, "deactivated"));
    old.shutdown().await;
    new.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_consumer_recreated_by_an_instance_that_knew_fewer_types_is_widened_again(
) -> anyhow::Result<()> {
    // The new version's look at the deleted consumer waits (held in the
    // proxy, with everything it sends after it) until the old version has
    // created it again.
    widened_again_after(
        "recreating",
        Duration::from_secs(10),
        FaultFrom::Running,
        hold_first("$JS.API.CONSUMER.INFO.AUTH_EVENTS.recreating"),
        1,
    )
    .await
}

#[tokio::test]
async fn an_instance_whose_rejoin_failed_widens_the_consumer_another_recreated_narrower(
) -> anyhow::Result<()> {
    // The new version hears no answer to its lookups: after five its
    // attempt to join the consumer again gives up, and its pulls from the
    // consumer the old version created again succeed: nothing tells it
    // the consumer was gone any more.
    let unanswered = |proxy: &FaultProxy| {
        proxy.drop_all(Flow::ServerToClient, |f: &Frame| {
            f.is_api_answer("consumer_info_response")
        })
    };
    widened_again_after(
        "rejoining",
        Duration::from_millis(300),
        FaultFrom::Running,
        unanswered,
        5,
    )
    .await
}

#[tokio::test]
async fn an_instance_whose_consumer_was_recreated_narrower_before_its_first_pull_widens_it(
) -> anyhow::Result<()> {
    // The new version's first pull request (and all it sends after it) is
    // held until the consumer it joined was deleted and created again by
    // the old version: no request of its own was there to be told the
    // consumer went, and its pulls from the new one succeed.
    widened_again_after(
        "between",
        Duration::from_secs(10),
        FaultFrom::Start,
        hold_first("$JS.API.CONSUMER.MSG.NEXT.AUTH_EVENTS.between"),
        1,
    )
    .await
}

#[tokio::test]
async fn handlers_run_while_the_consumer_check_waits_for_its_answer() -> anyhow::Result<()> {
    let (server, _client, _js, publisher) = setup().await?;
    let proxy = FaultProxy::start(server.port()).await?;
    // An answer lost is waited for until the request timeout: a minute.
    let slow = through(&proxy, Duration::from_secs(60)).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let running = instance(&slow, "checked", fast_config(), false, tx)?
        .start()
        .await?;
    // Started: from now on the periodic check of the consumer (first after
    // pull_expires) hears no answer.
    let unanswered = proxy.drop_all(Flow::ServerToClient, |f: &Frame| {
        f.is_api_answer("consumer_info_response")
    });
    unanswered.wait(1, Duration::from_secs(20)).await?;
    // The check is waiting; events are still handled (`take` gives them
    // 20 s, a third of the check's wait).
    let ctx = PublishContext::new("org-1")?;
    let created = publish_one(&publisher, &ctx, 1, false).await?;
    let got = take(&mut rx, 1).await?;
    assert_eq!((got[0].0, got[0].1), (created, "created"));
    unanswered.remove();
    running.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_consumer_lookup_never_answered_fails_start_with_a_clear_error() -> anyhow::Result<()> {
    let (server, _client, _js, _publisher) = setup().await?;
    let proxy = FaultProxy::start(server.port()).await?;
    let slow = through(&proxy, Duration::from_millis(200)).await?;
    let (tx, _rx) = mpsc::unbounded_channel();
    let lost = proxy.drop_all(Flow::ServerToClient, |f: &Frame| {
        f.is_api_answer("consumer_info_response")
    });
    let err = instance(&slow, "unreachable", fast_config(), true, tx)?
        .start()
        .await
        .expect_err("no lookup is answered");
    assert_eq!(lost.hits(), 5, "asked five times");
    let text = err.to_string();
    assert!(
        text.contains("consumer unreachable on stream AUTH_EVENTS"),
        "names the group and stream: {text}"
    );
    assert!(
        text.contains("no settled answer after 5 attempts") && text.contains("timed out"),
        "says what happened: {text}"
    );
    Ok(())
}
