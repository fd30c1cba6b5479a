//! Pipelined pulling with a hard bound: every message asked of the server
//! holds a slot from the moment it is asked for, so this instance never
//! holds more than `max_in_flight` messages (asked for, waiting for a
//! handler or being handled), yet a new pull request goes out as soon as
//! half the slots are free, without waiting for the last one to finish.
//! How many of the held messages are handled at once is the worker's
//! bound (`max_concurrent_handlers`).
//!
//! Each loop sizes its requests by demand: a probe of [`PROBE`] messages
//! at first, doubled each time a request is filled, cut to twice what a
//! request delivered when it ends unfilled. So in a group spanning several
//! streams a quiet stream's long poll parks a few slots, not the window a
//! busy stream needs.
//!
//! All requests of one loop share one inbox, so messages arrive in the
//! order the server sent them (stream order, which per-entity lanes rely
//! on). The server ends each request with a status carrying how many
//! messages it did not deliver (`Nats-Pending-Messages`); their slots are
//! given back then. On shutdown no new request goes out and the loop reads
//! until every request has ended (at most `pull_expires`), so no message is
//! left in flight to nowhere.
use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::pull::BatchConfig;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::StatusCode;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::time::Instant;

use super::health::{self, Health};
use super::worker::{dispatch, release, Delivered, Inline, Shared, Slot};

/// How long after the last request's expiry a missing end status is given
/// up on (the server restarted, the connection dropped).
const GRACE: Duration = Duration::from_secs(2);

/// How long after a pull request's answer says the consumer is gone a loop
/// joins it again. Not at once: nats-server removes a deleted consumer's
/// files after it answers, and a consumer of the same name created again
/// in that moment can be left without them (2.15.1 under load: every later
/// update refused with "meta.inf.tmp: no such file or directory", so the
/// other instances could never add their types).
const REJOIN_AFTER: Duration = Duration::from_millis(200);

/// How often a loop checks that the group's consumer still exists with
/// this instance's filters (see `consumer_lacks`).
const CHECK_EVERY: Duration = Duration::from_secs(30);

/// The fewest messages a loop asks for: what a stream with nothing to
/// deliver is polled with.
pub(crate) const PROBE: usize = 8;

/// The outstanding requests: one reserved slot per message asked for.
struct Requests {
    /// This loop's index among the subscriber's pull loops.
    index: usize,
    reserved: Vec<OwnedSemaphorePermit>,
    /// The outstanding requests, oldest first (the server fills and ends
    /// them in that order): (asked, still to come).
    sizes: VecDeque<(usize, usize)>,
    /// The most this loop has asked for at once (see the module doc).
    want: usize,
    last_expiry: Option<Instant>,
}

impl Requests {
    fn outstanding(&self) -> usize {
        self.reserved.len()
    }

    /// Reserves the slots of a request that went out.
    fn add(&mut self, shared: &Shared, permits: OwnedSemaphorePermit, n: usize) {
        self.reserved.extend(split(permits, n));
        self.sizes.push_back((n, n));
        shared.set_reserved(self.index, self.reserved.len());
    }

    /// The oldest request ended with `n` of its messages undelivered:
    /// gives their slots back and sizes the next requests by what it
    /// delivered.
    fn end(&mut self, shared: &Shared, n: usize) {
        if let Some((asked, _)) = self.sizes.pop_front() {
            let delivered = asked.saturating_sub(n);
            self.want = delivered
                .saturating_mul(2)
                .clamp(PROBE, shared.config.max_in_flight.max(PROBE));
        }
        self.give_back(shared, n);
    }

    /// Every outstanding request is void (ended without accounting, or
    /// surely expired): gives all their slots back.
    fn void(&mut self, shared: &Shared) {
        self.sizes.clear();
        self.give_back(shared, usize::MAX);
    }

    fn give_back(&mut self, shared: &Shared, n: usize) {
        let n = n.min(self.reserved.len());
        self.reserved.truncate(self.reserved.len() - n);
        shared.set_reserved(self.index, self.reserved.len());
        if n > 0 {
            shared.slot_freed();
        }
    }

    /// The slot reserved for a message that arrived; a filled request
    /// doubles what the loop asks for.
    fn take_one(&mut self, shared: &Shared) -> Option<OwnedSemaphorePermit> {
        let slot = self.reserved.pop();
        shared.set_reserved(self.index, self.reserved.len());
        if let Some(front) = self.sizes.front_mut() {
            front.1 = front.1.saturating_sub(1);
            if front.1 == 0 {
                let asked = front.0;
                self.sizes.pop_front();
                self.want = self
                    .want
                    .max(asked.saturating_mul(2).min(shared.config.max_in_flight));
            }
        }
        slot
    }

    /// The fewest free slots for which [`Requests::room`] is not zero, or
    /// `usize::MAX` if freed slots alone cannot make the loop ask (it has
    /// asked for most of what it wants: its messages come first).
    fn need(&self) -> usize {
        let wanted = self.want.saturating_sub(self.outstanding());
        let half = (self.want / 2).max(1);
        if wanted == 0 {
            usize::MAX
        } else if self.outstanding() == 0 {
            1
        } else if wanted >= half {
            half
        } else {
            usize::MAX
        }
    }

    /// How many to ask for now, given `free` slots: up to what the loop
    /// wants beyond what it has asked for, once half of that is free (or
    /// nothing is asked for).
    fn room(&self, free: usize) -> usize {
        if free >= self.need() {
            free.min(self.want.saturating_sub(self.outstanding()))
        } else {
            0
        }
    }
}

/// Pulls from one stream's consumer until `stop`, then reads until every
/// request has ended (their messages are handled like any other). `index`:
/// this loop's place among the subscriber's loops (one per stream).
pub(crate) async fn pull_loop(
    shared: Arc<Shared>,
    index: usize,
    mut consumer: PullConsumer,
    ours: BTreeSet<String>,
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
            let error = format!("stream {stream}: cannot subscribe to a pull inbox: {e}");
            health::report(&shared.health, Health::Stopped { error: Some(error) });
            return;
        }
    };
    let mut requests = Requests {
        index,
        reserved: Vec::new(),
        sizes: VecDeque::new(),
        want: PROBE,
        last_expiry: None,
    };
    let mut stopping = *stop.borrow();
    let mut freed = shared.freed.subscribe();
    // The events being handled, driven by this task.
    let mut running: FuturesUnordered<Inline> = FuturesUnordered::new();
    // No request before `pause_timer`'s deadline (after a failure), while
    // `paused`. One timer, reset when a pause starts: `select!` builds a
    // disabled branch's future too, and a `sleep_until` there read the
    // clock and made a timer on every turn.
    let mut paused = false;
    let pause_timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(pause_timer);
    // The highest stream sequence received: a recreated consumer goes on
    // after it.
    let mut last_seen: Option<u64> = None;
    // Failed attempts to join the consumer again after it went missing,
    // for the backoff; while the last one failed, another is due when
    // `rejoin_timer` fires (see `rejoin`).
    let mut recreate_failures: u32 = 0;
    let mut must_rejoin = false;
    let rejoin_timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(rejoin_timer);
    // The check of the consumer: first once a pull request of this loop is
    // surely with the server, then every `CHECK_EVERY`.
    let check_timer = tokio::time::sleep(shared.config.pull_expires);
    tokio::pin!(check_timer);
    // A check under way: a future of its own, polled beside the handlers,
    // so that a slow answer (up to the request timeout) does not hold up
    // the events this task drives.
    let ours = Arc::new(ours);
    let mut checking: Option<Pin<Box<dyn Future<Output = bool> + Send>>> = None;
    // One timer for "every request has surely ended", reset when a request
    // goes out: a new timer per loop turn would cost a timer-wheel
    // registration per event.
    let expiry = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(expiry);
    // Whether the instance was stalled (see `stall`) when last looked at,
    // and when to look again while it is (a progress ack ends a stall
    // without freeing a slot). One timer, reset: `select!` builds a
    // disabled branch's future too, so a timer written in the branch would
    // cost a timer per message.
    let mut stalled = false;
    let recheck = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(recheck);
    loop {
        if stopping && requests.outstanding() == 0 && running.is_empty() {
            return;
        }
        if paused && pause_timer.deadline() <= Instant::now() {
            paused = false;
        }
        // Seen before counting, so a slot freed after the count wakes us.
        freed.borrow_and_update();
        // One free slot stays for each other stream's loop that has nothing
        // asked for, so that it can ask too; when there are fewer free
        // than idle loops, the idle loops take one each in turn.
        let available = shared.slots.available_permits();
        let idle_others = shared.idle_loops_besides(index);
        let my_turn = requests.outstanding() == 0 && shared.scarce_turn(index);
        let scarce = my_turn && available > 0 && available <= idle_others;
        let free = if scarce {
            1
        } else {
            available.saturating_sub(idle_others)
        };
        let room = requests.room(free);
        if shared.stalled() != stalled {
            stalled = !stalled;
            report_stall(&shared, &stream, stalled);
        }
        if stalled && recheck.is_elapsed() {
            recheck
                .as_mut()
                .reset(Instant::now() + shared.config.ack_wait / 3);
        }
        if !stopping && !stalled && !paused && room > 0 {
            if let Ok(permits) = shared.slots.clone().try_acquire_many_owned(room as u32) {
                let batch = BatchConfig {
                    batch: room,
                    expires: Some(shared.config.pull_expires),
                    ..Default::default()
                };
                match consumer.request_batch(batch, inbox.clone().into()).await {
                    Ok(()) => {
                        requests.add(&shared, permits, room);
                        if scarce {
                            shared.took_scarce_turn(index);
                        }
                        let at = Instant::now() + shared.config.pull_expires;
                        requests.last_expiry = Some(at);
                        expiry.as_mut().reset(at + GRACE);
                        continue;
                    }
                    Err(e) => {
                        drop(permits);
                        tracing::warn!(group = %shared.group, stream = %stream, error = %e, "pull request failed; retrying");
                        paused = true;
                        pause_timer
                            .as_mut()
                            .reset(Instant::now() + shared.config.pull_expires);
                        continue;
                    }
                }
            }
        }
        // Before waiting: how many free slots would make this loop ask (by
        // this turn's count of idle loops), for `Slot::drop` to wake it
        // then; checked once more after it is published, as a slot given
        // back meanwhile saw the old figure.
        let need = if stopping || stalled || paused {
            usize::MAX
        } else if my_turn {
            1
        } else {
            requests.need().saturating_add(idle_others)
        };
        shared.set_need(index, need);
        if shared.slots.available_permits() >= need {
            continue;
        }
        let message = tokio::select! {
            Some(()) = running.next(), if !running.is_empty() => continue,
            message = subscription.next() => match message {
                Some(message) => message,
                None => {
                    tracing::error!(group = %shared.group, stream = %stream, "the pull inbox closed; this stream is no longer consumed");
                    let error = format!("stream {stream}: the pull inbox closed");
                    health::report(&shared.health, Health::Stopped { error: Some(error) });
                    return;
                }
            },
            _ = freed.changed(), if !stopping => continue,
            _ = &mut recheck, if stalled => continue,
            _ = &mut pause_timer, if paused => continue,
            _ = stop.changed(), if !stopping => {
                stopping = true;
                continue;
            }
            _ = &mut check_timer, if !stopping => {
                check_timer.as_mut().reset(Instant::now() + CHECK_EVERY);
                if checking.is_none() && !must_rejoin {
                    let (consumer, ours, shared, stream) =
                        (consumer.clone(), ours.clone(), shared.clone(), stream.clone());
                    checking = Some(Box::pin(async move {
                        consumer_lacks(&consumer, &ours, &shared, &stream).await
                    }));
                }
                continue;
            }
            lacks = async {
                match checking.as_mut() {
                    Some(check) => check.await,
                    None => std::future::pending().await,
                }
            }, if checking.is_some() => {
                checking = None;
                if lacks {
                    arm_rejoin(&mut must_rejoin, rejoin_timer.as_mut());
                }
                continue;
            }
            _ = &mut rejoin_timer, if must_rejoin && !stopping => {
                let attempt = rejoin(&shared, &context, &mut consumer, last_seen, &stream, &mut recreate_failures).await;
                must_rejoin = attempt.is_err();
                if let Err(pause) = attempt {
                    rejoin_timer.as_mut().reset(Instant::now() + pause);
                }
                continue;
            }
            _ = &mut expiry, if requests.last_expiry.is_some() && requests.outstanding() > 0 => {
                // Every request has expired at the server and no end status
                // came: nothing more can arrive for them.
                requests.void(&shared);
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
                let delivered = match Delivered::new(message, index) {
                    Ok(delivered) => delivered,
                    Err(e) => {
                        // Not from the consumer; it holds no slot.
                        tracing::error!(group = %shared.group, stream = %stream, error = %e, "a message without JetStream metadata; it cannot be acked");
                        continue;
                    }
                };
                last_seen = last_seen.max(Some(delivered.stream_sequence));
                let slot = match requests.take_one(&shared) {
                    Some(slot) => slot,
                    // More than was asked for (a request the loop already
                    // gave up on). Waiting for a slot here would stall the
                    // handlers this task drives: release it instead.
                    None => match shared.slots.clone().try_acquire_owned() {
                        Ok(slot) => slot,
                        Err(_) => {
                            release(&shared, &delivered, "released").await;
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
                    Some(n) => requests.end(&shared, n),
                    None => {
                        // An error without accounting (consumer deleted,
                        // leadership change...): the requests are void.
                        tracing::warn!(group = %shared.group, stream = %stream, %status, description = ?message.description, "pull request ended by the server; asking again");
                        requests.void(&shared);
                        let mut pause = Duration::from_millis(200);
                        if may_be_gone(status, message.description.as_deref()) {
                            arm_rejoin(&mut must_rejoin, rejoin_timer.as_mut());
                            // No pull before the next attempt to join.
                            let next = rejoin_timer.deadline();
                            pause = pause.max(next.saturating_duration_since(Instant::now()));
                        }
                        paused = true;
                        pause_timer.as_mut().reset(Instant::now() + pause);
                    }
                }
            }
        }
    }
}

/// Logs and reports (`Health::Stalled`) the instance stalling or
/// recovering, as seen by the pull loop of `stream`.
fn report_stall(shared: &Shared, stream: &str, stalled: bool) {
    if stalled {
        tracing::warn!(group = %shared.group, stream, ack_wait = ?shared.config.ack_wait, handlers = shared.config.concurrent_handlers(), "every handler of this instance has run past the ack wait without a progress ack (hung?): their events went back to the server, the events waiting for a handler are handed over to the group, and no more are asked for until a handler returns or reports progress");
        health::report(&shared.health, Health::Stalled);
    } else {
        tracing::info!(group = %shared.group, stream, "a handler returned or reported progress; asking for events again");
        health::report(&shared.health, Health::Consuming);
    }
}

/// Whether the group's consumer is gone or lacks some of this instance's
/// filters (`ours`). A loop learns that the consumer was deleted from the
/// answer to a pull request it has with the server; deleted and created
/// again meanwhile by an instance that handles fewer types (while this
/// loop had no request out: starting, its window full, paused), the
/// consumer would serve this loop's pulls without its types, and nothing
/// else would tell it. An answer that is not a clear "absent" or a
/// configuration counts as nothing wrong (the next check asks again).
async fn consumer_lacks(
    consumer: &PullConsumer,
    ours: &BTreeSet<String>,
    shared: &Shared,
    stream: &str,
) -> bool {
    use async_nats::jetstream::context::ConsumerInfoErrorKind;
    let lacks = match consumer.get_info().await {
        Ok(info) => {
            let theirs = super::filters_of(&info.config);
            (!super::covers(&theirs, ours)).then(|| {
                let missing: Vec<&String> = ours.difference(&theirs).collect();
                format!("it lacks {missing:?}")
            })
        }
        Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => Some("it is gone".to_string()),
        Err(e) => {
            tracing::debug!(group = %shared.group, stream = %stream, error = %e, "the group's consumer could not be checked; checking again later");
            None
        }
    };
    if let Some(what) = &lacks {
        tracing::warn!(group = %shared.group, stream = %stream, "the group's consumer changed under this instance ({what}): joining it again");
    }
    lacks.is_some()
}

/// Schedules an attempt to join the consumer again `REJOIN_AFTER` from now
/// (not at once: see [`REJOIN_AFTER`]), unless one is due already.
fn arm_rejoin(must_rejoin: &mut bool, timer: Pin<&mut tokio::time::Sleep>) {
    if !*must_rejoin {
        *must_rejoin = true;
        timer.reset(Instant::now() + REJOIN_AFTER);
    }
}

/// Joins the group's consumer again after it went missing (see
/// [`recreate`]), reporting a consumer created again; on failure, the pause
/// before the next attempt. A failed attempt is retried on that schedule
/// even when the loop's pulls succeed meanwhile: another instance may have
/// created the consumer again without this instance's filters, and nothing
/// else would ever tell this one to add them.
async fn rejoin(
    shared: &Shared,
    context: &async_nats::jetstream::Context,
    consumer: &mut PullConsumer,
    last_seen: Option<u64>,
    stream: &str,
    failures: &mut u32,
) -> Result<(), Duration> {
    match recreate(shared, context, consumer, last_seen).await {
        Ok(recreated) => {
            *failures = 0;
            if recreated {
                health::report(
                    &shared.health,
                    Health::ConsumerRecreated {
                        stream: stream.to_string(),
                    },
                );
            }
            Ok(())
        }
        Err(e) => {
            *failures = failures.saturating_add(1);
            let pause = recreate_backoff(*failures);
            tracing::error!(group = %shared.group, stream = %stream, error = %e, retry_in = ?pause, "the group's consumer went missing and joining it again failed (it may be missing still, or back without this instance's types); retrying");
            Err(pause)
        }
    }
}

/// Whether a request's end may mean the consumer is gone: the server says
/// it was deleted, or nobody answered the request (no consumer listens).
fn may_be_gone(status: StatusCode, description: Option<&str>) -> bool {
    status == StatusCode::NO_RESPONDERS
        || (status == StatusCode::REQUEST_TERMINATED
            && description.is_some_and(|d| d.to_ascii_lowercase().contains("consumer deleted")))
}

/// The pause before attempt `failures + 1` to recreate a consumer: 200 ms,
/// doubling, at most 10 s.
fn recreate_backoff(failures: u32) -> Duration {
    Duration::from_millis(200)
        .saturating_mul(1 << failures.min(6))
        .min(Duration::from_secs(10))
}

/// Why a missing consumer could not be created again.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecreateError {
    /// The stream could not be read.
    #[error("cannot read stream {stream}")]
    Stream {
        /// The stream.
        stream: String,
        /// The server's answer.
        #[source]
        source: async_nats::jetstream::context::GetStreamError,
    },
    /// The old consumer's settings cannot make a pull consumer.
    #[error("consumer {name} is not a pull consumer: {detail}")]
    Config {
        /// The consumer.
        name: String,
        /// Why.
        detail: String,
    },
    /// The consumer could not be created again (or joined, when another
    /// instance created it first).
    #[error("cannot create consumer {name} again: {error}")]
    Join {
        /// The consumer.
        name: String,
        /// What went wrong.
        error: super::join::JoinError,
    },
}

/// Creates the group's consumer again if it is gone, with the settings it
/// had, going on after the last message this loop received (from the
/// beginning of its deliver policy if none came). `Ok(false)`: it exists
/// (another instance recreated it, or it was never gone), with this
/// instance's filters added if another instance recreated it without them.
async fn recreate(
    shared: &Shared,
    context: &async_nats::jetstream::Context,
    consumer: &mut PullConsumer,
    last_seen: Option<u64>,
) -> Result<bool, RecreateError> {
    use async_nats::jetstream::consumer::{DeliverPolicy, FromConsumer};
    let info = consumer.cached_info();
    let (stream, name) = (info.stream_name.clone(), info.name.clone());
    let handle = context
        .get_stream(&stream)
        .await
        .map_err(|source| RecreateError::Stream {
            stream: stream.clone(),
            source,
        })?;
    let mut config = async_nats::jetstream::consumer::pull::Config::try_from_consumer_config(
        info.config.clone(),
    )
    .map_err(|e| RecreateError::Config {
        name: name.clone(),
        detail: e.to_string(),
    })?;
    if let Some(last) = last_seen {
        // Used only if the consumer is created now.
        config.deliver_policy = DeliverPolicy::ByStartSequence {
            start_sequence: last.saturating_add(1),
        };
    }
    let (joined, how) = super::join::join(context, &handle, &config)
        .await
        .map_err(|error| RecreateError::Join {
            name: name.clone(),
            error,
        })?;
    *consumer = joined;
    if how != super::join::Joined::Created {
        return Ok(false);
    }
    tracing::warn!(group = %shared.group, stream = %stream, consumer = %name, after_sequence = ?last_seen, "the group's consumer was gone; created it again");
    Ok(true)
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
