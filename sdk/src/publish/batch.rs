//! The batch call: many events with one acknowledgement inbox.
//!
//! Each event is published with a reply subject `<inbox>.<index>` and the
//! PubAcks are read from one subscription on `<inbox>.*`, instead of a
//! request (its own inbox, channel and timer) per event: the same messages
//! and the same guarantees for less work per event. An attempt that fails
//! (no PubAck within `attempt_timeout`, no responders, a JetStream error, a
//! broken connection) continues on the single-event retry schedule under
//! the same `Nats-Msg-Id`, while the batch goes on.

use std::collections::{HashMap, VecDeque};
use std::pin::pin;
use std::time::Instant;

use async_nats::jetstream::{publish::PublishAck, response::Response};
use futures_util::stream::{FuturesUnordered, StreamExt};

use super::{
    is_unavailable_api, published, AttemptFailure, AttemptFailureKind, Prepared, PublishError,
    Published,
};
use super::{PublishContext, Publisher};
use crate::event::DomainEvent;

/// One result per event, in input order.
type Results = Vec<Option<Result<Published, PublishError>>>;

/// An event sent and not yet answered.
struct Pending {
    prepared: Prepared,
    sent: Instant,
}

/// Publishes `events` with at most `max_in_flight` unanswered or retrying
/// at once; falls back to one request per event if the inbox cannot be
/// subscribed.
pub(super) async fn publish<E: DomainEvent>(
    publisher: &Publisher,
    ctx: &PublishContext,
    events: &[E],
) -> Vec<Result<Published, PublishError>> {
    let inbox = publisher.client.new_inbox();
    let acks = match publisher.client.subscribe(format!("{inbox}.*")).await {
        Ok(acks) => acks,
        Err(error) => {
            tracing::warn!(%error, "no acknowledgement inbox for the batch; publishing one by one");
            return one_by_one(publisher, ctx, events).await;
        }
    };
    let mut results: Results = (0..events.len()).map(|_| None).collect();
    run(publisher, ctx, events, &inbox, acks, &mut results).await;
    // Every event is answered before `run` returns; a gap would be a bug
    // here, reported as such rather than dropped.
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(PublishError::Rejected {
                    event_type: E::EVENT_TYPE,
                    event_id: uuid::Uuid::nil(),
                    detail: "the batch ended without an answer for this event (a Tidings bug)"
                        .into(),
                })
            })
        })
        .collect()
}

/// Each event through [`Publisher::publish`], `max_in_flight` at a time.
async fn one_by_one<E: DomainEvent>(
    publisher: &Publisher,
    ctx: &PublishContext,
    events: &[E],
) -> Vec<Result<Published, PublishError>> {
    let window = publisher.config.max_in_flight.max(1);
    let mut results = Vec::with_capacity(events.len());
    let mut in_flight = futures_util::stream::FuturesOrdered::new();
    for event in events {
        if in_flight.len() >= window {
            results.extend(in_flight.next().await);
        }
        in_flight.push_back(publisher.publish(ctx, event));
    }
    while let Some(result) = in_flight.next().await {
        results.push(result);
    }
    results
}

async fn run<E: DomainEvent>(
    publisher: &Publisher,
    ctx: &PublishContext,
    events: &[E],
    inbox: &str,
    mut acks: async_nats::Subscriber,
    results: &mut Results,
) {
    let window = publisher.config.max_in_flight.max(1);
    let timeout = publisher.config.attempt_timeout;
    let mut pending: HashMap<usize, Pending> = HashMap::new();
    // Sent events in send order, for the oldest deadline; answered ones
    // are skipped when they reach the front.
    let mut order: VecDeque<usize> = VecDeque::new();
    let mut retries = FuturesUnordered::new();
    let retry = |index: usize, prepared: Prepared, failure: AttemptFailure, started: Instant| {
        let future = publisher.retry(prepared, failure, started);
        async move { (index, Box::pin(future).await) }
    };
    let mut expiry = pin!(tokio::time::sleep(timeout));
    let mut armed = None;
    let mut next = 0;
    loop {
        while next < events.len() && pending.len() + retries.len() < window {
            let index = next;
            next += 1;
            let mut prepared = match publisher.prepare(ctx, &events[index]) {
                Ok(prepared) => prepared,
                Err(error) => {
                    results[index] = Some(Err(error));
                    continue;
                }
            };
            let headers = std::mem::take(&mut prepared.headers);
            let sent = publisher
                .client
                .publish_with_reply_and_headers(
                    prepared.subject.clone(),
                    format!("{inbox}.{index}"),
                    headers,
                    prepared.body.clone(),
                )
                .await;
            let now = Instant::now();
            match sent {
                Ok(()) => {
                    pending.insert(
                        index,
                        Pending {
                            prepared,
                            sent: now,
                        },
                    );
                    order.push_back(index);
                }
                Err(error) => {
                    // The client refuses what the server would refuse too
                    // (a payload over a smaller limit met after a
                    // reconnect); a send that fails is a broken connection.
                    let kind = match error.kind() {
                        async_nats::client::PublishErrorKind::Send => {
                            AttemptFailureKind::Disconnected
                        }
                        _ => AttemptFailureKind::Rejected,
                    };
                    retries.push(retry(index, prepared, failed(kind, error.to_string()), now));
                }
            }
        }
        while order.front().is_some_and(|i| !pending.contains_key(i)) {
            order.pop_front();
        }
        let oldest = order.front().and_then(|i| pending.get(i)).map(|p| p.sent);
        if oldest.is_none() && retries.is_empty() && next >= events.len() {
            return;
        }
        // One timer, moved only when the oldest unanswered event changes.
        if let Some(sent) = oldest.filter(|sent| armed != Some(*sent)) {
            expiry
                .as_mut()
                .reset(tokio::time::Instant::from_std(sent + timeout));
            armed = Some(sent);
        }
        tokio::select! {
            ack = acks.next(), if oldest.is_some() => match ack {
                Some(message) => {
                    let Some(index) = message
                        .subject
                        .rsplit('.')
                        .next()
                        .and_then(|i| i.parse::<usize>().ok())
                    else {
                        continue;
                    };
                    // A late answer to an attempt already given up is
                    // dropped: its retry carries the same message id.
                    let Some(Pending { prepared, sent }) = pending.remove(&index) else {
                        continue;
                    };
                    match answer(&message) {
                        Ok(ack) => results[index] = Some(Ok(published(prepared, ack, 1))),
                        Err(failure) => retries.push(retry(index, prepared, failure, sent)),
                    }
                }
                None => {
                    // The subscription ended (the client is closing): every
                    // unanswered event goes on the retry schedule.
                    for (index, Pending { prepared, sent }) in pending.drain() {
                        let failure = failed(
                            AttemptFailureKind::Disconnected,
                            "the acknowledgement subscription ended".into(),
                        );
                        retries.push(retry(index, prepared, failure, sent));
                    }
                }
            },
            Some((index, result)) = retries.next(), if !retries.is_empty() => {
                results[index] = Some(result);
            }
            () = expiry.as_mut(), if oldest.is_some() => {
                if let Some(index) = order.pop_front() {
                    if let Some(Pending { prepared, sent }) = pending.remove(&index) {
                        let failure = failed(
                            AttemptFailureKind::TimedOut,
                            format!("no PubAck within {timeout:?}"),
                        );
                        retries.push(retry(index, prepared, failure, sent));
                    }
                }
            }
            else => return,
        }
    }
}

/// A failed first attempt.
fn failed(kind: AttemptFailureKind, detail: String) -> AttemptFailure {
    AttemptFailure {
        attempt: 1,
        kind,
        detail,
    }
}

/// What an answer on the inbox says: a PubAck, or why the attempt failed.
fn answer(message: &async_nats::Message) -> Result<PublishAck, AttemptFailure> {
    if message.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
        return Err(failed(
            AttemptFailureKind::NoResponders,
            "no responders: no stream answered".into(),
        ));
    }
    match serde_json::from_slice::<Response<PublishAck>>(&message.payload) {
        Ok(Response::Ok(ack)) => Ok(ack),
        Ok(Response::Err { error }) => {
            let kind = if is_unavailable_api(&error) {
                AttemptFailureKind::NoResponders
            } else {
                AttemptFailureKind::Rejected
            };
            Err(failed(kind, error.to_string()))
        }
        Err(error) => Err(failed(
            AttemptFailureKind::Rejected,
            format!("unreadable PubAck: {error}"),
        )),
    }
}
