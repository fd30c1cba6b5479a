//! Shared by the outbox tests: draining relays and reading the stream back.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt as _;
use tidings::outbox::{Relay, Store};
use uuid::Uuid;

/// Runs the relays side by side, pass after pass, until the table has no
/// pending row; returns how many rows each sent. Fails after 120 s.
pub async fn drain<S: Store>(relays: &[&Relay<S>]) -> anyhow::Result<Vec<usize>> {
    let work = futures_util::future::try_join_all(relays.iter().map(|relay| async move {
        let mut sent = 0;
        loop {
            let pass = relay.run_once().await?;
            sent += pass.sent;
            if pass.claimed == 0 && relay.store().pending().await? == 0 {
                return Ok::<_, anyhow::Error>(sent);
            }
            if pass.claimed == 0 {
                // Another relay holds the rest: let it work.
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }));
    tokio::time::timeout(Duration::from_secs(120), work)
        .await
        .map_err(|_| anyhow::anyhow!("the relays did not drain the outbox within 120 s"))?
}

/// Every message of the stream in stream order: (subject, Nats-Msg-Id).
pub async fn stored(js: &jetstream::Context, stream: &str) -> anyhow::Result<Vec<(String, Uuid)>> {
    let stream = js.get_stream(stream).await?;
    let expected = stream.cached_info().state.messages as usize;
    if expected == 0 {
        return Ok(Vec::new());
    }
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await?;
    let mut messages = consumer.messages().await?.take(expected);
    let mut out = Vec::with_capacity(expected);
    while let Some(message) = tokio::time::timeout(Duration::from_secs(20), messages.next()).await?
    {
        let message = message.map_err(|e| anyhow::anyhow!(e))?;
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .ok_or_else(|| anyhow::anyhow!("a stored message without Nats-Msg-Id"))?
            .as_str()
            .parse()?;
        out.push((message.subject.to_string(), id));
    }
    Ok(out)
}

/// The stored event ids in stream order.
pub async fn stored_ids(js: &jetstream::Context, stream: &str) -> anyhow::Result<Vec<Uuid>> {
    Ok(stored(js, stream)
        .await?
        .into_iter()
        .map(|(_, id)| id)
        .collect())
}

/// The stored event ids per subject, each in stream order.
pub async fn stored_by_subject(
    js: &jetstream::Context,
    stream: &str,
) -> anyhow::Result<BTreeMap<String, Vec<Uuid>>> {
    let mut by_subject: BTreeMap<String, Vec<Uuid>> = BTreeMap::new();
    for (subject, id) in stored(js, stream).await? {
        by_subject.entry(subject).or_default().push(id);
    }
    Ok(by_subject)
}
