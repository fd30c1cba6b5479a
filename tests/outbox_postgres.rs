//! The transactional outbox on a real PostgreSQL (started by
//! `tidings::testing::PostgresServer`) against a real nats-server: a
//! rolled-back transaction publishes nothing, two relays keep each
//! subject's order, 10,000 events are stored exactly once, a relay killed
//! between its PubAcks and marking leaves one copy, and 1,000 events
//! committed during a real 2-minute NATS outage are each stored once after.
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use support::{say, setup, ChildTest, UserCreated};
use tidings::outbox::postgres::{self, PgOutbox};
use tidings::outbox::sqlx::{self, postgres::PgPoolOptions};
use tidings::outbox::{Relay, RelayConfig, Store, FAILPOINT_AFTER_PUBACK};
use tidings::testing::failpoint::FAILPOINT_ENV;
use tidings::testing::{eventually, PostgresServer};
use tidings::{PublishContext, Publisher, PublisherConfig};
use uuid::Uuid;

mod outbox_common;
use outbox_common::{drain, stored_by_subject, stored_ids};

async fn open(url: &str, publisher: &Publisher) -> anyhow::Result<PgOutbox> {
    let pool = PgPoolOptions::new().max_connections(8).connect(url).await?;
    postgres::migrate(&pool).await?;
    Ok(PgOutbox::new(pool, publisher))
}

/// Commits events numbered `from..from + n`, `per_tx` per transaction,
/// `keys` users round-robin; returns their ids in enqueue order.
async fn enqueue(
    outbox: &PgOutbox,
    from: usize,
    n: usize,
    keys: usize,
    per_tx: usize,
) -> anyhow::Result<Vec<Uuid>> {
    let ctx = PublishContext::new("org-1")?;
    let mut ids = Vec::with_capacity(n);
    for chunk in (from..from + n).collect::<Vec<_>>().chunks(per_tx) {
        let mut tx = outbox.pool().begin().await?;
        for &i in chunk {
            let mut event = UserCreated::numbered(i % keys);
            event.display_name = format!("event {i}");
            ids.push(outbox.enqueue(&mut tx, &ctx, &event).await?);
        }
        tx.commit().await?;
    }
    Ok(ids)
}

/// Asserts every id is stored once and each subject in enqueue order.
async fn assert_once_in_order(
    js: &async_nats::jetstream::Context,
    ids: &[Uuid],
) -> anyhow::Result<()> {
    let by_subject = stored_by_subject(js, "AUTH_EVENTS").await?;
    let position: HashMap<Uuid, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut total = 0;
    for (subject, stored) in &by_subject {
        total += stored.len();
        let order: Vec<usize> = stored
            .iter()
            .map(|id| position.get(id).copied().unwrap_or(usize::MAX))
            .collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            order, sorted,
            "{subject}: stored in enqueue order, once each"
        );
    }
    assert_eq!(total, ids.len(), "every event stored exactly once");
    Ok(())
}

#[tokio::test]
async fn a_rolled_back_transaction_publishes_nothing() -> anyhow::Result<()> {
    let pg = PostgresServer::launch().await?;
    let (_server, _client, js, publisher) = setup().await?;
    let outbox = open(&pg.url(), &publisher).await?;
    sqlx::query("CREATE TABLE users (id TEXT PRIMARY KEY)")
        .execute(outbox.pool())
        .await?;
    let ctx = PublishContext::new("org-1")?;

    let mut tx = outbox.pool().begin().await?;
    sqlx::query("INSERT INTO users (id) VALUES ('u-1')")
        .execute(&mut *tx)
        .await?;
    let rolled_back = outbox
        .enqueue(&mut tx, &ctx, &UserCreated::numbered(1))
        .await?;
    tx.rollback().await?;
    let mut tx = outbox.pool().begin().await?;
    sqlx::query("INSERT INTO users (id) VALUES ('u-2')")
        .execute(&mut *tx)
        .await?;
    let committed = outbox
        .enqueue(&mut tx, &ctx, &UserCreated::numbered(2))
        .await?;
    tx.commit().await?;

    let relay = Relay::new(outbox.clone(), publisher);
    drain(&[&relay]).await?;
    let ids = stored_ids(&js, "AUTH_EVENTS").await?;
    assert_eq!(ids, vec![committed], "only the committed event is stored");
    assert!(!ids.contains(&rolled_back));
    Ok(())
}

#[tokio::test]
async fn two_relays_and_ten_thousand_events_each_stored_once_in_order() -> anyhow::Result<()> {
    let pg = PostgresServer::launch().await?;
    let (_server, _client, js, publisher) = setup().await?;
    let outbox = open(&pg.url(), &publisher).await?;
    // 100 users, 100 events each, interleaved.
    let ids = enqueue(&outbox, 0, 10_000, 100, 500).await?;
    let config = RelayConfig {
        batch_size: 64,
        ..RelayConfig::default()
    };
    let a = Relay::with_config(outbox.clone(), publisher.clone(), config.clone());
    let b = Relay::with_config(outbox.clone(), publisher, config);
    let sent = drain(&[&a, &b]).await?;
    assert_eq!(sent.iter().sum::<usize>(), 10_000);
    assert!(
        sent.iter().all(|&n| n > 0),
        "both relays published (the test would prove nothing otherwise): {sent:?}"
    );
    let stream = js.get_stream("AUTH_EVENTS").await?;
    assert_eq!(stream.cached_info().state.messages, 10_000);
    assert_once_in_order(&js, &ids).await?;
    assert_eq!(outbox.delete_sent(Duration::ZERO).await?, 10_000);
    Ok(())
}

/// The relay child: drains the table at `TIDINGS_OUTBOX_PG_URL` and stops
/// at the failpoint its environment names.
#[tokio::test]
#[ignore = "run as a child process by relay_killed_between_puback_and_marking_stores_one_copy"]
async fn child_relay() -> anyhow::Result<()> {
    let Ok(url) = std::env::var("TIDINGS_CHILD_NATS_URL") else {
        return Ok(());
    };
    let client = async_nats::connect(&url).await?;
    let publisher = Publisher::new(client, PublisherConfig::default())?;
    let outbox = open(&std::env::var("TIDINGS_OUTBOX_PG_URL")?, &publisher).await?;
    let relay = Relay::with_config(
        outbox,
        publisher,
        RelayConfig {
            lease: Duration::from_secs(1),
            ..RelayConfig::default()
        },
    );
    say("relay started")?;
    relay.run(std::future::pending::<()>()).await;
    Ok(())
}

#[tokio::test]
async fn relay_killed_between_puback_and_marking_stores_one_copy() -> anyhow::Result<()> {
    let pg = PostgresServer::launch().await?;
    let (server, _client, js, publisher) = setup().await?;
    let outbox = open(&pg.url(), &publisher).await?;
    let ids = enqueue(&outbox, 0, 50, 50, 50).await?;
    let mut child = ChildTest::spawn(
        "child_relay",
        &server.url(),
        &[
            (FAILPOINT_ENV, FAILPOINT_AFTER_PUBACK),
            ("TIDINGS_OUTBOX_PG_URL", pg.url().as_str()),
        ],
    )?;
    child
        .next_line(&format!("failpoint {FAILPOINT_AFTER_PUBACK} reached"))
        .await?;
    child.kill().await?;
    let stream = js.get_stream("AUTH_EVENTS").await?;
    assert_eq!(stream.cached_info().state.messages, 50);
    assert_eq!(outbox.pending().await?, 50, "nothing marked sent");

    let relay = Relay::new(outbox.clone(), publisher);
    let already = std::cell::Cell::new(0);
    let (relay, outbox_ref, already_ref) = (&relay, &outbox, &already);
    eventually(
        "the killed relay's lease ends and its rows are sent",
        Duration::from_secs(30),
        move || async move {
            let pass = relay.run_once().await?;
            already_ref.set(already_ref.get() + pass.already_stored);
            match outbox_ref.pending().await? {
                0 => Ok(()),
                left => Err(anyhow::anyhow!("{left} rows pending")),
            }
        },
    )
    .await?;
    assert_eq!(already.get(), 50, "the stream answered duplicate each time");
    assert_once_in_order(&js, &ids).await?;
    Ok(())
}

#[tokio::test]
async fn a_two_minute_nats_outage_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    const OUTAGE: Duration = Duration::from_secs(120);
    const EVENTS: usize = 1_000;
    let pg = PostgresServer::launch().await?;
    let (mut server, _client, js, publisher) = setup().await?;
    let outbox = open(&pg.url(), &publisher).await?;
    let relay = Relay::new(outbox.clone(), publisher);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let relay_task = tokio::spawn(async move {
        relay
            .run(async {
                let _ = stop_rx.await;
            })
            .await;
    });

    server.stop().await?;
    let down = Instant::now();
    // 1,000 commits spread over the outage, 50 users interleaved.
    let mut ids = Vec::with_capacity(EVENTS);
    let mut pace = tokio::time::interval(OUTAGE / EVENTS as u32);
    for i in 0..EVENTS {
        pace.tick().await;
        ids.extend(enqueue(&outbox, i, 1, 50, 1).await?);
    }
    let rest = OUTAGE.saturating_sub(down.elapsed());
    tokio::time::sleep(rest).await; // the outage itself, not a wait for an event
    assert_eq!(
        outbox.pending().await?,
        EVENTS as u64,
        "nothing marked sent while NATS is down"
    );
    let failing: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM tidings_outbox WHERE last_error IS NOT NULL")
            .fetch_one(outbox.pool())
            .await?;
    assert!(failing > 0, "the relay kept trying during the outage");
    assert!(!relay_task.is_finished(), "the relay outlived the outage");

    server.start().await?;
    let outbox_ref = &outbox;
    eventually(
        "the relay drains the outbox after the outage",
        Duration::from_secs(90),
        move || async move {
            match outbox_ref.pending().await? {
                0 => Ok(()),
                left => Err(anyhow::anyhow!("{left} rows pending")),
            }
        },
    )
    .await?;
    let _ = stop_tx.send(());
    relay_task.await?;
    let stream = js.get_stream("AUTH_EVENTS").await?;
    assert_eq!(stream.cached_info().state.messages, EVENTS as u64);
    assert_once_in_order(&js, &ids).await?;
    Ok(())
}
