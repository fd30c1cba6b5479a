//! The batch call: many events with one acknowledgement inbox.
//!
//! Each event is published with a reply subject `<inbox>.<index>` and the
//! PubAcks are read from one subscription on `<inbox>.*`, instead of a
//! request (its own inbox, channel and timer) per event: the same messages
//! and the same guarantees for less work per event. An attempt that fails
//! (no PubAck within `attempt_timeout`, no responders, a JetStream error, a
//! broken connection) continues on the single-event retry schedule under
//! the same `Nats-Msg-Id`, while the batch goes on. Events of one entity
//! (one subject) go out one at a time, each once the one before it is
//! settled, so that a retried event is never stored after a later event of
//! its entity.

use std::collections::{HashMap, VecDeque};
use std::pin::pin;
use std::time::Instant;

use async_nats::jetstream::{publish::PublishAck, response::Response};
use futures_util::stream::{FuturesUnordered, StreamExt};

use super::Publisher;
use super::{
    api_failure_kind, published, AttemptFailure, AttemptFailureKind, Prepared, PublishError,
    Published,
};

/// One result per event, in input order.
type Results = Vec<Option<Result<Published, PublishError>>>;

/// An event sent and not yet answered.
struct Pending {
    prepared: Prepared,
    sent: Instant,
}

/// The prepared events of a batch (an entry that failed to prepare is
/// answered with its error), in input order.
type Batch = Vec<Result<Prepared, PublishError>>;

/// Publishes the `prepared` events with at most `max_in_flight` unanswered
/// or retrying at once; falls back to one request per event if the inbox
/// cannot be subscribed.
pub(super) async fn publish(
    publisher: &Publisher,
    prepared: Batch,
) -> Vec<Result<Published, PublishError>> {
    let first = prepared.iter().find_map(|p| p.as_ref().ok());
    let event_type = first.map_or("(none prepared)", |p| p.event_type);
    if let Some(stream) = first.map(|p| p.stream) {
        if let Err(error) = publisher.check_window(stream).await {
            return prepared
                .into_iter()
                .map(|p| p.and(Err(PublishError::Config(error.clone()))))
                .collect();
        }
    }
    let inbox = publisher.inner.client.new_inbox();
    let acks = match publisher.inner.client.subscribe(format!("{inbox}.*")).await {
        Ok(acks) => acks,
        Err(error) => {
            tracing::warn!(%error, "no acknowledgement inbox for the batch; publishing one by one");
            return one_by_one(publisher, prepared).await;
        }
    };
    let mut results: Results = (0..prepared.len()).map(|_| None).collect();
    run(publisher, prepared, &inbox, acks, &mut results).await;
    // Every event is answered before `run` returns; a gap would be a bug
    // here, reported as such rather than dropped.
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(PublishError::ClientRefused {
                    event_type,
                    event_id: uuid::Uuid::nil(),
                    failure: failed(
                        AttemptFailureKind::ClientRefused,
                        "the batch ended without an answer for this event (a Tidings bug)".into(),
                    ),
                })
            })
        })
        .collect()
}

/// Each event through [`Publisher::deliver`] (the batch has its own span
/// and metrics), `max_in_flight` at a time.
async fn one_by_one(
    publisher: &Publisher,
    prepared: Batch,
) -> Vec<Result<Published, PublishError>> {
    let window = publisher.inner.config.max_in_flight.max(1);
    let mut results = Vec::with_capacity(prepared.len());
    let mut in_flight = futures_util::stream::FuturesOrdered::new();
    for event in prepared {
        if in_flight.len() >= window {
            results.extend(in_flight.next().await);
        }
        in_flight.push_back(async move { publisher.deliver(event?).await });
    }
    while let Some(result) = in_flight.next().await {
        results.push(result);
    }
    results
}

/// Events held back until the event of the same subject (the same entity)
/// sent before them is settled, by subject. A subject is in the map while
/// one of its events is in flight (unanswered or retrying).
type Held = HashMap<String, VecDeque<(usize, Prepared)>>;

async fn run(
    publisher: &Publisher,
    prepared: Batch,
    inbox: &str,
    mut acks: async_nats::Subscriber,
    results: &mut Results,
) {
    let window = publisher.inner.config.max_in_flight.max(1);
    let timeout = publisher.inner.config.attempt_timeout;
    let total = prepared.len();
    let mut unsent = prepared.into_iter();
    let mut pending: HashMap<usize, Pending> = HashMap::new();
    // Sent events in send order, for the oldest deadline; answered ones
    // are skipped when they reach the front.
    let mut order: VecDeque<usize> = VecDeque::new();
    let mut retries = FuturesUnordered::new();
    let retry = |index: usize, prepared: Prepared, failure: AttemptFailure, started: Instant| {
        let subject = prepared.subject.clone();
        let future = publisher.retry(prepared, failure, started);
        async move { (index, subject, Box::pin(future).await) }
    };
    // One event per entity in flight: a later event of the same entity is
    // sent only once the earlier one is settled, so a retry can never land
    // after a later event of its entity (its order within the batch holds).
    let mut held: Held = HashMap::new();
    let mut held_count = 0;
    let mut settled: Vec<String> = Vec::new();
    let mut expiry = pin!(tokio::time::sleep(timeout));
    let mut armed = None;
    let mut next = 0;
    loop {
        // Settled subjects release their next held event.
        for subject in settled.drain(..) {
            let Some(queue) = held.get_mut(&subject) else {
                continue;
            };
            let Some((index, prepared)) = queue.pop_front() else {
                held.remove(&subject);
                continue;
            };
            held_count -= 1;
            match send(publisher, inbox, index, prepared).await {
                Ok(sent) => {
                    order.push_back(index);
                    pending.insert(index, sent);
                }
                Err((prepared, failure, now)) => {
                    retries.push(retry(index, prepared, failure, now));
                }
            }
        }
        while next < total && pending.len() + retries.len() + held_count < window {
            let index = next;
            next += 1;
            let prepared = match unsent.next() {
                Some(Ok(prepared)) => match publisher.admit(&prepared) {
                    Ok(()) => prepared,
                    Err(error) => {
                        results[index] = Some(Err(error));
                        continue;
                    }
                },
                Some(Err(error)) => {
                    results[index] = Some(Err(error));
                    continue;
                }
                None => break,
            };
            if let Some(queue) = held.get_mut(&prepared.subject) {
                queue.push_back((index, prepared));
                held_count += 1;
                continue;
            }
            held.insert(prepared.subject.clone(), VecDeque::new());
            match send(publisher, inbox, index, prepared).await {
                Ok(sent) => {
                    order.push_back(index);
                    pending.insert(index, sent);
                }
                Err((prepared, failure, now)) => {
                    retries.push(retry(index, prepared, failure, now));
                }
            }
        }
        while order.front().is_some_and(|i| !pending.contains_key(i)) {
            order.pop_front();
        }
        let oldest = order.front().and_then(|i| pending.get(i)).map(|p| p.sent);
        if oldest.is_none() && retries.is_empty() && held_count == 0 && next >= total {
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
                        Ok(ack) => {
                            settled.push(prepared.subject.clone());
                            results[index] = Some(Ok(published(prepared, ack, 1, publisher.inner.config.log_level)));
                        }
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
            Some((index, subject, result)) = retries.next(), if !retries.is_empty() => {
                settled.push(subject);
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

/// The first attempt of one event, with the reply subject `<inbox>.<index>`:
/// sent, or the failure to go on the retry schedule with.
async fn send(
    publisher: &Publisher,
    inbox: &str,
    index: usize,
    mut prepared: Prepared,
) -> Result<Pending, (Prepared, AttemptFailure, Instant)> {
    let timeout = publisher.inner.config.attempt_timeout;
    let headers = std::mem::take(&mut prepared.headers);
    // Bounded like a single publish's attempt: at most attempt_timeout to
    // hand the message to the connection, then attempt_timeout for its PubAck.
    let sent = tokio::time::timeout(
        timeout,
        publisher.inner.client.publish_with_reply_and_headers(
            prepared.subject.clone(),
            format!("{inbox}.{index}"),
            headers,
            prepared.body.clone(),
        ),
    )
    .await;
    let now = Instant::now();
    let failure = match sent {
        Ok(Ok(())) => {
            return Ok(Pending {
                prepared,
                sent: now,
            })
        }
        Err(_) => failed(
            AttemptFailureKind::TimedOut,
            format!("not handed to the connection within {timeout:?}"),
        ),
        Ok(Err(error)) => {
            // The client refuses what the server would refuse too (a
            // payload over a smaller limit met after a reconnect); a send
            // that fails is a broken connection.
            let kind = match error.kind() {
                async_nats::client::PublishErrorKind::Send => AttemptFailureKind::Disconnected,
                _ => AttemptFailureKind::ClientRefused,
            };
            AttemptFailure {
                detail: error.to_string(),
                source: Some(std::sync::Arc::new(error)),
                ..failed(kind, String::new())
            }
        }
    };
    Err((prepared, failure, now))
}

/// A failed first attempt.
fn failed(kind: AttemptFailureKind, detail: String) -> AttemptFailure {
    AttemptFailure {
        attempt: 1,
        kind,
        detail,
        source: None,
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
            let kind = api_failure_kind(&error);
            Err(AttemptFailure {
                detail: error.to_string(),
                source: Some(std::sync::Arc::new(error)),
                ..failed(kind, String::new())
            })
        }
        Err(error) => Err(AttemptFailure {
            detail: format!("unreadable PubAck: {error}"),
            source: Some(std::sync::Arc::new(error)),
            ..failed(AttemptFailureKind::Rejected, String::new())
        }),
    }
}
