//! Pipelined pulling with a hard bound: every message asked of the server
//! holds a handler slot from the moment it is asked for, so this instance
//! never holds more than `max_in_flight` messages (asked for, queued or being
//! handled), yet a new pull request goes out as soon as half the slots are
//! free, without waiting for the last one to finish.
//!
//! All requests of one loop share one inbox, so messages arrive in the
//! order the server sent them (stream order, which per-entity lanes rely
//! on). The server ends each request with a status carrying how many
//! messages it did not deliver (`Nats-Pending-Messages`); their slots are
//! given back then. On shutdown no new request goes out and the loop reads
//! until every request has ended (at most `pull_expires`), so no message is
//! left in flight to nowhere.
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::pull::BatchConfig;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::message::AckKind;
use async_nats::StatusCode;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::time::Instant;

use super::worker::{dispatch, Delivered, Inline, Shared, Slot};

/// How long after the last request's expiry a missing end status is given
/// up on (the server restarted, the connection dropped).
const GRACE: Duration = Duration::from_secs(2);

/// The outstanding requests: one reserved slot per message asked for.
struct Requests {
    reserved: Vec<OwnedSemaphorePermit>,
    last_expiry: Option<Instant>,
}

impl Requests {
    fn outstanding(&self) -> usize {
        self.reserved.len()
    }

    /// Gives back `n` reserved slots (messages that will not come).
    fn release(&mut self, shared: &Shared, n: usize) {
        let n = n.min(self.reserved.len());
        self.reserved.truncate(self.reserved.len() - n);
        shared.reserved.store(self.reserved.len(), Ordering::SeqCst);
        if n > 0 {
            shared.slot_freed();
        }
    }

    fn take_one(&mut self, shared: &Shared) -> Option<OwnedSemaphorePermit> {
        let slot = self.reserved.pop();
        shared.reserved.store(self.reserved.len(), Ordering::SeqCst);
        slot
    }
}

/// Pulls from one stream's consumer until `stop`, then reads until every
/// request has ended (their messages are handled like any other).
pub(crate) async fn pull_loop(
    shared: Arc<Shared>,
    consumer: PullConsumer,
    context: async_nats::jetstream::Context,
    client: async_nats::Client,
    mut stop: watch::Receiver<bool>,
) {
    let stream = consumer.cached_info().stream_name.clone();
    let inbox = client.new_inbox();
    let mut subscription = match client.subscribe(inbox.clone()).await {
        Ok(subscription) => subscription,
        Err(e) => {
            tracing::error!(group = %shared.group, stream = %stream, error = %e, "cannot subscribe to a pull inbox; this stream is not consumed");
            return;
        }
    };
    let threshold = shared.pull_threshold();
    let mut requests = Requests {
        reserved: Vec::new(),
        last_expiry: None,
    };
    let mut stopping = *stop.borrow();
    let mut freed = shared.freed.subscribe();
    // The events being handled, driven by this task.
    let mut running: FuturesUnordered<Inline> = FuturesUnordered::new();
    // No request before this instant (after a failure).
    let mut paused_until: Option<Instant> = None;
    // One timer for "every request has surely ended", reset when a request
    // goes out: a new timer per loop turn would cost a timer-wheel
    // registration per event.
    let expiry = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(expiry);
    loop {
        if stopping && requests.outstanding() == 0 && running.is_empty() {
            return;
        }
        if paused_until.is_some_and(|at| at <= Instant::now()) {
            paused_until = None;
        }
        // Seen before counting, so a slot freed after the count wakes us.
        freed.borrow_and_update();
        // Ask for more when half the slots are free, or when nothing is
        // asked for and any slot is free.
        let free = shared.slots.available_permits();
        if !stopping
            && paused_until.is_none()
            && free > 0
            && (free >= threshold || requests.outstanding() == 0)
        {
            if let Ok(permits) = shared.slots.clone().try_acquire_many_owned(free as u32) {
                let batch = BatchConfig {
                    batch: free,
                    expires: Some(shared.config.pull_expires),
                    ..Default::default()
                };
                match consumer.request_batch(batch, inbox.clone().into()).await {
                    Ok(()) => {
                        requests.reserved.extend(split(permits, free));
                        shared
                            .reserved
                            .store(requests.outstanding(), Ordering::SeqCst);
                        let at = Instant::now() + shared.config.pull_expires;
                        requests.last_expiry = Some(at);
                        expiry.as_mut().reset(at + GRACE);
                        continue;
                    }
                    Err(e) => {
                        drop(permits);
                        tracing::warn!(group = %shared.group, stream = %stream, error = %e, "pull request failed; retrying");
                        paused_until = Some(Instant::now() + shared.config.pull_expires);
                        continue;
                    }
                }
            }
        }
        let message = tokio::select! {
            Some(()) = running.next(), if !running.is_empty() => continue,
            message = subscription.next() => match message {
                Some(message) => message,
                None => {
                    tracing::error!(group = %shared.group, stream = %stream, "the pull inbox closed; this stream is no longer consumed");
                    return;
                }
            },
            _ = freed.changed(), if !stopping => continue,
            _ = tokio::time::sleep_until(paused_until.unwrap_or_else(Instant::now)),
                if paused_until.is_some() => continue,
            _ = stop.changed(), if !stopping => {
                stopping = true;
                continue;
            }
            _ = &mut expiry, if requests.last_expiry.is_some() && requests.outstanding() > 0 => {
                // Every request has expired at the server and no end status
                // came: nothing more can arrive for them.
                requests.release(&shared, usize::MAX);
                requests.last_expiry = None;
                continue;
            }
        };
        match message.status.unwrap_or(StatusCode::OK) {
            StatusCode::OK => {
                let message = async_nats::jetstream::Message {
                    message,
                    context: context.clone(),
                };
                let delivered = match Delivered::new(message) {
                    Ok(delivered) => delivered,
                    Err(e) => {
                        // Not from the consumer; it holds no slot.
                        tracing::error!(group = %shared.group, stream = %stream, error = %e, "a message without JetStream metadata; it cannot be acked");
                        continue;
                    }
                };
                let slot = match requests.take_one(&shared) {
                    Some(slot) => slot,
                    // More than was asked for (a request the loop already
                    // gave up on). Waiting for a slot here would stall the
                    // handlers this task drives: release it instead.
                    None => match shared.slots.clone().try_acquire_owned() {
                        Ok(slot) => slot,
                        Err(_) => {
                            if let Err(e) = delivered.acker.ack_with(AckKind::Nak(None)).await {
                                tracing::warn!(group = %shared.group, error = %e, "NAK failed; the event comes back after the ack wait");
                            }
                            continue;
                        }
                    },
                };
                if let Some(work) = dispatch(&shared, delivered, Slot::new(slot, &shared)) {
                    running.push(work);
                }
            }
            StatusCode::IDLE_HEARTBEAT => {}
            status => {
                let pending = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Pending-Messages"))
                    .and_then(|v| v.as_str().parse::<usize>().ok());
                match pending {
                    Some(n) => requests.release(&shared, n),
                    None => {
                        // An error without accounting (consumer deleted,
                        // leadership change...): the requests are void.
                        tracing::warn!(group = %shared.group, stream = %stream, %status, description = ?message.description, "pull request ended by the server; asking again");
                        requests.release(&shared, usize::MAX);
                        paused_until = Some(Instant::now() + Duration::from_millis(200));
                    }
                }
            }
        }
    }
}

/// Splits one permit for `n` slots into `n` permits of one.
fn split(mut permits: OwnedSemaphorePermit, n: usize) -> Vec<OwnedSemaphorePermit> {
    let mut out = Vec::with_capacity(n);
    for _ in 1..n {
        if let Some(one) = permits.split(1) {
            out.push(one);
        }
    }
    out.push(permits);
    out
}
