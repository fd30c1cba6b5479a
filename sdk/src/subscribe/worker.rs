//! What happens to each pulled message (see [`super::pull`] for the
//! pulling): decode it, run its handler (in its entity's lane in ordered
//! mode), and ack, NAK or dead-letter it.
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::message::AckKind;
use time::OffsetDateTime;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore, SemaphorePermit};
use tracing::Instrument;

use super::config::SubscriberConfig;
use super::dead_letter::{dead_letter, redriven_for_another_group, DeadLetterReason};
use super::event::EventMeta;
use super::handler::{ErasedHandler, Failure};
use super::health::Health;
use super::lane::{self, lane_key, Lanes, Superseded, Supersession, GIVE_UP_AFTER_ACK_WAITS};
use super::stall::{Hold, Life, Progress};
use crate::dlq::mover::{Attempts, Mover};
use crate::envelope::Envelope;
use crate::idempotency::{Deduplicator, IdempotencyError};
use crate::subject::check_subject;
use crate::telemetry::{self, metrics::ConsumerLabels, metrics::TypeMetrics};

/// What every task of one running subscriber shares.
pub(crate) struct Shared {
    pub(crate) group: String,
    pub(crate) config: SubscriberConfig,
    pub(crate) handlers: HashMap<&'static str, Handling>,
    pub(crate) dedup: Option<Deduplicator>,
    /// Moves given-up events to the dead-letter queue.
    pub(crate) mover: Mover,
    /// The types without a handler here that this instance has warned of.
    unhandled_warned: Mutex<HashSet<String>>,
    /// With deduplication: the events this instance handled whose record
    /// the bucket has not taken yet (each holds its slot meanwhile). A
    /// redelivery of one (its progress acks lost with the node that also
    /// leads the bucket) is acked without running the handler again.
    recording: Mutex<HashSet<uuid::Uuid>>,
    /// One permit per event held (`max_in_flight`): asked of the server,
    /// waiting, or being handled.
    pub(crate) slots: Arc<Semaphore>,
    /// One permit per running handler (`max_concurrent_handlers`).
    turns: Semaphore,
    /// When a handler last started or sent a progress ack (see `stall`).
    life: Arc<Life>,
    /// Slots reserved for messages asked of the server, not yet arrived:
    /// one counter per stream's pull loop (each loop writes its own).
    reserved: Box<[AtomicUsize]>,
    /// Bumped whenever slots are given back, to wake the pull loops.
    pub(crate) freed: watch::Sender<u64>,
    /// The pull loop whose turn it is to take one of too few free slots
    /// (fewer than the loops with nothing asked for; see `scarce_turn`).
    scarce_next: AtomicUsize,
    /// Per pull loop: how many free slots would make it ask for more
    /// (`usize::MAX`: none would; its messages or timers wake it). Slots
    /// given back wake the loops only when one of them can act.
    needs: Box<[AtomicUsize]>,
    /// Set when a shutdown's deadline passed: running handlers give up.
    pub(crate) abort: watch::Receiver<bool>,
    /// What the subscriber is doing, for `Running::health`.
    pub(crate) health: watch::Sender<Health>,
    /// Per-entity lanes (ordered mode).
    pub(crate) lanes: Lanes,
    /// The labels of this subscriber's metrics.
    pub(crate) telemetry: ConsumerLabels,
}

impl Shared {
    /// Wakes the pull loops: slots were given back.
    pub(crate) fn slot_freed(&self) {
        self.freed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Slots reserved by all pull loops together.
    pub(crate) fn reserved(&self) -> usize {
        self.reserved.iter().map(|r| r.load(Ordering::SeqCst)).sum()
    }

    /// Records how many slots pull loop `index` has reserved.
    pub(crate) fn set_reserved(&self, index: usize, n: usize) {
        if let Some(counter) = self.reserved.get(index) {
            counter.store(n, Ordering::SeqCst);
        }
    }

    /// How many pull loops other than `index` have nothing asked for.
    pub(crate) fn idle_loops_besides(&self, index: usize) -> usize {
        (0..self.reserved.len())
            .filter(|i| *i != index && self.loop_is_idle(*i))
            .count()
    }

    /// Every handler turn is taken and no handler has shown life for the
    /// ack wait: each has outlived it silently (see `stall`).
    pub(crate) fn stalled(&self) -> bool {
        self.turns.available_permits() == 0 && self.life.quiet_for() >= self.config.ack_wait
    }

    /// No slot is free and pull loop `index` has nothing asked of the
    /// server: no message of its stream, not even a redelivery, can reach
    /// this instance.
    pub(crate) fn cannot_receive(&self, index: usize) -> bool {
        self.slots.available_permits() == 0 && self.loop_is_idle(index)
    }

    /// Whether pull loop `index` has nothing asked for.
    fn loop_is_idle(&self, index: usize) -> bool {
        self.reserved
            .get(index)
            .is_some_and(|r| r.load(Ordering::SeqCst) == 0)
    }

    /// Whether it is idle loop `index`'s turn to take a free slot when
    /// there are fewer than the loops with nothing asked for (each of which
    /// otherwise leaves one to each other idle loop, and none would ask):
    /// the first idle loop from `scarce_next` on, round the loops.
    pub(crate) fn scarce_turn(&self, index: usize) -> bool {
        let loops = self.reserved.len();
        let start = self.scarce_next.load(Ordering::SeqCst);
        (0..loops)
            .map(|i| (start + i) % loops)
            .find(|i| self.loop_is_idle(*i))
            == Some(index)
    }

    /// Loop `index` took its turn: the next idle loop has the next.
    pub(crate) fn took_scarce_turn(&self, index: usize) {
        self.scarce_next
            .store((index + 1) % self.reserved.len().max(1), Ordering::SeqCst);
    }

    /// Records how many free slots would make pull loop `index` ask.
    pub(crate) fn set_need(&self, index: usize, free: usize) {
        if let Some(need) = self.needs.get(index) {
            need.store(free, Ordering::SeqCst);
        }
    }

    /// Whether some pull loop would ask for more with `free` slots.
    fn a_loop_would_ask(&self, free: usize) -> bool {
        self.needs
            .iter()
            .any(|need| free >= need.load(Ordering::SeqCst))
    }

    /// Whether this instance handled the event and is recording it.
    fn is_recording(&self, event_id: uuid::Uuid) -> bool {
        self.recording
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&event_id)
    }

    /// Notes that the event's record is on its way (`true`) or settled.
    fn set_recording(&self, event_id: uuid::Uuid, on: bool) {
        let mut recording = self.recording.lock().unwrap_or_else(|p| p.into_inner());
        if on {
            recording.insert(event_id);
        } else {
            recording.remove(&event_id);
        }
    }

    /// `loops`: the number of pull loops (one per stream).
    pub(crate) fn new(
        group: String,
        config: SubscriberConfig,
        handlers: HashMap<&'static str, Arc<dyn ErasedHandler>>,
        dedup: Option<Deduplicator>,
        mover: Mover,
        abort: watch::Receiver<bool>,
        loops: usize,
    ) -> Self {
        let telemetry = ConsumerLabels::new(&group);
        let handlers = handlers
            .into_iter()
            .map(|(event_type, handler)| {
                let metrics = telemetry.for_type(event_type, handler.stream());
                (event_type, Handling { handler, metrics })
            })
            .collect();
        Self {
            telemetry,
            mover,
            unhandled_warned: Mutex::new(HashSet::new()),
            recording: Mutex::new(HashSet::new()),
            slots: Arc::new(Semaphore::new(config.max_in_flight)),
            turns: Semaphore::new(config.concurrent_handlers()),
            life: Arc::new(Life::new()),
            reserved: (0..loops).map(|_| AtomicUsize::new(0)).collect(),
            needs: (0..loops).map(|_| AtomicUsize::new(1)).collect(),
            scarce_next: AtomicUsize::new(0),
            freed: watch::Sender::new(0),
            group,
            config,
            handlers,
            dedup,
            abort,
            health: watch::Sender::new(Health::Consuming),
            lanes: Mutex::new(HashMap::new()),
        }
    }
}

/// A type's handler, and the handles of its per-event metrics.
pub(crate) struct Handling {
    handler: Arc<dyn ErasedHandler>,
    metrics: TypeMetrics,
}

/// A message taken from the consumer, with its JetStream metadata.
pub(crate) struct Delivered {
    pub(crate) message: async_nats::Message,
    /// Acks it; knows when it was last renewed.
    pub(crate) acker: Arc<Hold>,
    pub(crate) stream: String,
    pub(crate) stream_sequence: u64,
    /// The server's delivery count.
    pub(crate) delivery: u32,
    pub(crate) stored_at: OffsetDateTime,
    /// The index of the pull loop that received it (one per stream).
    pub(crate) pull_loop: usize,
}

impl Delivered {
    /// A message pull loop `pull_loop` received.
    pub(crate) fn new(
        message: async_nats::jetstream::Message,
        pull_loop: usize,
    ) -> Result<Self, String> {
        let (stream, stream_sequence, delivered, stored_at) = {
            let info = message.info().map_err(|e| e.to_string())?;
            (
                info.stream.to_string(),
                info.stream_sequence,
                info.delivered,
                info.published,
            )
        };
        let (message, acker) = message.split();
        Ok(Self {
            message,
            acker: Arc::new(Hold::new(acker)),
            stream,
            stream_sequence,
            delivery: u32::try_from(delivered.max(1)).unwrap_or(u32::MAX),
            stored_at,
            pull_loop,
        })
    }
}

/// A handler slot, given back (and announced to the pull loops) on drop.
pub(crate) struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    shared: Arc<Shared>,
}

impl Slot {
    pub(crate) fn new(permit: OwnedSemaphorePermit, shared: &Arc<Shared>) -> Self {
        shared.telemetry.in_flight(1.0);
        Self {
            permit: Some(permit),
            shared: shared.clone(),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.shared.telemetry.in_flight(-1.0);
        // Wake the pull loops only when one of them would ask (see
        // `Requests::need`). Otherwise a message or the end of a request
        // wakes them anyway; a wake per event would cost a cross-thread
        // switch per event.
        let shared = &self.shared;
        if shared.a_loop_would_ask(shared.slots.available_permits()) {
            shared.slot_freed();
        }
    }
}

/// A message and the handler slot it holds until it is settled.
pub(crate) struct Job {
    pub(crate) delivered: Delivered,
    _slot: Slot,
}

/// The work of one event that runs on the pull loop's own task.
pub(crate) type Inline = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Handles a message: returns its work for the pull loop to run (on the
/// loop's own task: no cross-thread hand-off per event), or queues it
/// behind the message of the same entity being handled (ordered mode, on
/// the entity lane's task) and returns `None`.
pub(crate) fn dispatch(shared: &Arc<Shared>, delivered: Delivered, slot: Slot) -> Option<Inline> {
    let job = Job {
        delivered,
        _slot: slot,
    };
    let key = shared
        .config
        .ordered_by_key
        .then(|| lane_key(&job.delivered.message.subject))
        .flatten();
    let Some(key) = key else {
        let shared = shared.clone();
        return Some(Box::pin(async move {
            process_in_turn(&shared, &job.delivered, None, &mut Superseded::never()).await;
            drop(job);
        }));
    };
    let replaced = lane::enqueue(shared, key, job)?;
    // Not run: it spent none of the event's deliveries.
    let shared = shared.clone();
    Some(Box::pin(async move {
        note_released(&shared, &replaced.delivered).await;
        drop(replaced);
    }))
}

/// How the wait for a handler turn ended.
enum Waited<'a> {
    Turn(SemaphorePermit<'a>),
    /// The shutdown deadline passed first.
    Aborted,
    /// The instance stalled (see `stall`).
    Stalled,
    /// The server redelivered the event to its lane here.
    Superseded,
}

/// Processes the event once a handler is free (`max_concurrent_handlers`).
/// Meanwhile it is kept alive with progress acks; it is released for
/// redelivery without running if the shutdown deadline passes first, and
/// handed over to the group if the instance stalls. `lane`: its entity's
/// lane in ordered mode, whose waiting events are kept alive while it
/// waits and runs, and handed over if the instance stalls; `superseded`
/// ends its wait or handler run (see `lane`).
pub(crate) async fn process_in_turn(
    shared: &Shared,
    delivered: &Delivered,
    lane: Option<&str>,
    superseded: &mut Superseded,
) {
    // A free handler is the common case: no timer, no waiting.
    let turn = match shared.turns.try_acquire() {
        Ok(turn) => turn,
        Err(_) => match rare(wait_for_turn(shared, delivered, lane, superseded)).await {
            Waited::Turn(turn) => turn,
            Waited::Aborted => {
                tracing::debug!(group = %shared.group, subject = %delivered.message.subject, "shutdown deadline passed while the event waited for a handler; released for redelivery");
                return rare(release(shared, delivered, "released")).await;
            }
            // (The events behind it in its lane follow: each finds the
            // instance stalled.)
            Waited::Stalled => {
                tracing::debug!(group = %shared.group, subject = %delivered.message.subject, "every handler of this instance outlived the ack wait silently; the event waiting for one is handed over to the group");
                return rare(release(shared, delivered, "stalled")).await;
            }
            Waited::Superseded => {
                tracing::debug!(group = %shared.group, subject = %delivered.message.subject, "redelivered while it waited for a handler (a progress ack was lost); the redelivery waits in its place");
                return rare(note_released(shared, delivered)).await;
            }
        },
    };
    shared.life.note();
    match lane {
        None => process(shared, delivered, superseded).await,
        // On the heap, like the rare paths (see `rare`; a named local for
        // `process` would keep its room here too).
        Some(key) => {
            Box::pin(keeping_lane_alive(
                shared,
                key,
                delivered,
                process(shared, delivered, superseded),
            ))
            .await;
        }
    }
    drop(turn);
}

/// Runs `work` (the handling of `head`, a lane's head) while keeping the
/// events waiting behind it alive, or handing them over if the instance
/// stalls (its hung handlers' events are back with the server: they
/// follow). Once the head's hold lapsed, room is made for its redelivery
/// if none is free; a head whose hold lapsed long ago is given up (see
/// `lane`).
async fn keeping_lane_alive(
    shared: &Shared,
    key: &str,
    head: &Delivered,
    work: impl Future<Output = ()>,
) {
    tokio::pin!(work);
    let step = shared.config.ack_wait / 3;
    let give_up_after = shared.config.ack_wait * GIVE_UP_AFTER_ACK_WAITS;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + step, step);
    loop {
        tokio::select! {
            _ = &mut work => return,
            _ = tick.tick() => {
                let unrenewed = head.acker.unrenewed_for();
                if shared.stalled() {
                    lane::hand_over(shared, key).await;
                } else if unrenewed < give_up_after || !lane::give_up_head(shared, key) {
                    // A tick after the server took the head back: had
                    // this instance been able to ask, the redelivery
                    // would be here or with another instance by now.
                    if unrenewed >= shared.config.ack_wait + step && shared.cannot_receive(head.pull_loop) {
                        lane::make_room(shared, key).await;
                    }
                    lane::keep_waiting_alive(shared, key).await;
                }
            }
        }
    }
}

/// The future of a path most events do not take, on the heap. Each event's
/// work is one allocation the size of its future, and a future holds room
/// for every path it may take: inlined, the dead-letter move, the
/// deduplication calls, the failure notes, the waits and the lane's
/// keep-alive made every event's future 14 KB; out of line, 2.7 KB.
/// (A plain function: an `async fn` would hold `work` inline until its
/// first poll.)
fn rare<F: Future>(work: F) -> std::pin::Pin<Box<F>> {
    Box::pin(work)
}

/// Waits for a handler turn, keeping the event (and the events waiting
/// behind it in its `lane`) alive with a progress ack every third of the
/// ack wait, unless the instance stalls or the shutdown deadline passes.
async fn wait_for_turn<'a>(
    shared: &'a Shared,
    delivered: &Delivered,
    lane: Option<&str>,
    superseded: &mut Superseded,
) -> Waited<'a> {
    let step = shared.config.ack_wait / 3;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + step, step);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut abort = shared.abort.clone();
    let acquire = shared.turns.acquire();
    tokio::pin!(acquire);
    loop {
        if shared.stalled() {
            return Waited::Stalled;
        }
        tokio::select! {
            // A turn given back by an aborted handler goes to no one.
            biased;
            // (The guard `wait_for` returns must not live across the
            // tick branch's awaits.)
            _ = async { drop(abort.wait_for(|a| *a).await) } => return Waited::Aborted,
            turn = &mut acquire => return turn.map_or(Waited::Aborted, Waited::Turn),
            _ = superseded.wait() => return Waited::Superseded,
            _ = tick.tick() => {
                // Not the handlers' life: this event has none running.
                if let Err(e) = delivered.acker.progress().await {
                    tracing::warn!(group = %shared.group, error = %e, "progress ack for an event waiting for a handler failed");
                }
                if let Some(key) = lane {
                    lane::keep_waiting_alive(shared, key).await;
                }
            }
        }
    }
}

/// How one handler run ended.
enum Run {
    Done(Result<(), Failure>),
    /// The shutdown deadline passed first.
    Aborted,
    /// Its lane's head was superseded first (see `lane`).
    Superseded(Supersession),
}

impl Run {
    /// The `tidings.outcome` of the run's metrics; marks the process span
    /// failed when the handler failed.
    fn outcome(&self) -> &'static str {
        match self {
            Run::Done(Ok(())) => "ok",
            Run::Done(Err(Failure::Unreadable(_))) => {
                telemetry::spans::handler_failed("unreadable");
                "unreadable"
            }
            Run::Done(Err(Failure::Handler(_))) => {
                telemetry::spans::handler_failed("handler_error");
                "failed"
            }
            Run::Aborted => "aborted",
            Run::Superseded(Supersession::RedeliveredHere) => "superseded",
            Run::Superseded(Supersession::GivenUp) => "given_up",
        }
    }
}

/// Decodes, runs the handler, and settles the message: ack on success, NAK
/// with backoff on failure (in ordered mode: retried here, in order), given
/// up when unreadable or out of deliveries.
async fn process(shared: &Shared, delivered: &Delivered, superseded: &mut Superseded) {
    let group = shared.group.as_str();
    let message = &delivered.message;
    if redriven_for_another_group(group, message) {
        return ack(shared, delivered).await;
    }
    let envelope = match Envelope::decode_message(message.headers.as_ref(), &message.payload) {
        Ok(envelope) => envelope,
        Err(e) => {
            let reason = DeadLetterReason::Poison(e.to_string());
            return rare(dead_letter(shared, delivered, reason, delivered.delivery)).await;
        }
    };
    if let Err(e) = check_subject(&message.subject, &envelope) {
        let reason = DeadLetterReason::Poison(e.to_string());
        return rare(dead_letter(shared, delivered, reason, delivered.delivery)).await;
    }
    let Some(handling) = shared.handlers.get(envelope.event_type.as_str()) else {
        return rare(release_unhandled(shared, delivered, &envelope.event_type)).await;
    };
    handling.metrics.consumed();
    let span = telemetry::spans::process_span(
        group,
        &envelope,
        &message.subject,
        &delivered.stream,
        delivered.stream_sequence,
        delivered.delivery,
    );
    // Its own box: with it inline, this event's work would be one box over
    // the allocator's fast-cache size (see `handle`).
    Box::pin(handle(shared, delivered, envelope, handling, superseded).instrument(span)).await;
}

/// Runs the handler of a decoded event (in its process span) and settles it.
// A plain function returning its future, not an `async fn`: an `async
// fn` keeps its by-value argument (the envelope) twice in its future, and
// this future is allocated per event (see `Typed::call` on the allocator's
// fast caches).
#[allow(clippy::manual_async_fn)]
fn handle<'a>(
    shared: &'a Shared,
    delivered: &'a Delivered,
    envelope: Envelope,
    handling: &'a Handling,
    superseded: &'a mut Superseded,
) -> impl Future<Output = ()> + Send + 'a {
    async move {
        let group = shared.group.as_str();
        let message = &delivered.message;
        if shared.dedup.is_some() && shared.is_recording(envelope.id) {
            tracing::debug!(group, event_id = %envelope.id, "handled by this instance, its record still on the way; acked without running the handler");
            return ack(shared, delivered).await;
        }
        let max = shared.config.max_deliveries;
        // The budget earlier deliveries spent: failed handler runs and
        // deliveries whose outcome is unknown, not those released for reasons
        // other than the handler (see `Attempts`).
        let earlier = if delivered.delivery > 1 {
            let mover = &shared.mover;
            rare(mover.attempts(group, &delivered.stream, delivered.stream_sequence)).await
        } else {
            Attempts::default()
        };
        let mut spent = earlier.spent(delivered.delivery);
        if spent >= max {
            let last_error = format!(
            "{} failed handler runs and {} deliveries without an outcome (the handler outlived the ack wait or its process stopped)",
            earlier.runs,
            earlier.unknown(delivered.delivery)
        );
            let reason = DeadLetterReason::Exhausted { last_error };
            return rare(dead_letter(shared, delivered, reason, spent)).await;
        }
        if let Some(dedup) = &shared.dedup {
            let check = || dedup.seen(group, envelope.id);
            match rare(until_bucket_answers(shared, delivered, envelope.id, check)).await {
                Some(true) => {
                    tracing::debug!(group, event_id = %envelope.id, "already handled; acked without running the handler");
                    return ack(shared, delivered).await;
                }
                Some(false) => {}
                None => {
                    tracing::warn!(group, event_id = %envelope.id, "shutdown deadline passed while the duplicate check was failing; the event is released for redelivery");
                    return rare(release(shared, delivered, "released")).await;
                }
            }
        }
        let event_id = envelope.id;
        let ordered = shared.config.ordered_by_key;
        let mut delivery = delivered.delivery;
        // The payload and metadata of the next run: moved into the handler,
        // and only in ordered mode (where a failed event is retried here) kept
        // as a copy for the retry.
        let mut next = {
            let (meta, data) = EventMeta::split(
                envelope,
                &message.subject,
                &delivered.stream,
                delivered.stream_sequence,
                delivered.stored_at,
                delivered.delivery,
                group,
            );
            Some((data, meta))
        };
        loop {
            // In a block: the values the call took keep no room in this
            // future while the handler runs.
            let call = {
                let Some((data, meta)) = next.take() else {
                    return;
                };
                if ordered {
                    next = Some((data.clone(), meta.clone()));
                }
                let progress = Progress::new(delivered.acker.clone(), shared.life.clone());
                handling.handler.call(data, meta, Some(progress))
            };
            let mut abort = shared.abort.clone();
            let started = Instant::now();
            let run = tokio::select! {
                result = call => Run::Done(result),
                _ = abort.wait_for(|a| *a) => Run::Aborted,
                why = superseded.wait() => Run::Superseded(why),
            };
            handling
                .metrics
                .handler_ran(&shared.telemetry, run.outcome(), started);
            match run {
                Run::Done(Ok(())) => {
                    if let Some(dedup) = &shared.dedup {
                        // Recorded before the ack, so that a redelivery (a lost
                        // ack, a reset consumer) finds it.
                        let record = || dedup.record(group, event_id);
                        shared.set_recording(event_id, true);
                        let recorded =
                            rare(until_bucket_answers(shared, delivered, event_id, record)).await;
                        shared.set_recording(event_id, false);
                        if recorded.is_none() {
                            tracing::warn!(group, %event_id, "shutdown deadline passed before the handled event could be recorded for deduplication; acked unrecorded: a redelivery would run the handler again");
                        }
                    }
                    tracing::debug!(group, %event_id, subject = %message.subject, delivery, "event handled");
                    ack(shared, delivered).await;
                    if delivered.delivery > 1 || spent > 0 {
                        let mover = &shared.mover;
                        rare(mover.forget(group, &delivered.stream, delivered.stream_sequence))
                            .await;
                    }
                    return;
                }
                Run::Done(Err(Failure::Unreadable(reason))) => {
                    let reason = DeadLetterReason::Poison(reason);
                    return rare(dead_letter(shared, delivered, reason, delivered.delivery)).await;
                }
                Run::Done(Err(Failure::Handler(error))) if spent + 1 >= max => {
                    let reason = DeadLetterReason::Exhausted { last_error: error };
                    return rare(dead_letter(shared, delivered, reason, spent + 1)).await;
                }
                Run::Done(Err(Failure::Handler(error))) => {
                    spent += 1;
                    let (stream, sequence) = (&delivered.stream, delivered.stream_sequence);
                    rare(shared.mover.note_failure(group, stream, sequence, !ordered)).await;
                    let delay = shared.config.backoff.delay(spent);
                    tracing::warn!(group, %event_id, subject = %message.subject, delivery, failed_runs = spent, error = %error, retry_in = ?delay, "handler failed; retrying");
                    if !ordered {
                        return rare(nak(shared, delivered, Some(delay), "failed")).await;
                    }
                    if !rare(wait_keeping_alive(shared, delivered, delay)).await {
                        return rare(release(shared, delivered, "released")).await;
                    }
                    delivery += 1;
                    if let Some((_, meta)) = &mut next {
                        meta.delivery = delivery;
                    }
                }
                Run::Aborted => {
                    tracing::warn!(group, %event_id, "shutdown deadline passed; the event is released for redelivery");
                    return rare(release(shared, delivered, "released")).await;
                }
                Run::Superseded(Supersession::RedeliveredHere) => {
                    tracing::warn!(group, %event_id, subject = %message.subject, delivery, "the server redelivered this event while its handler still ran (past the ack wait without a progress ack): the run is cancelled and the redelivery handled in its place, ahead of its entity's later events");
                    return;
                }
                Run::Superseded(Supersession::GivenUp) => {
                    tracing::warn!(group, %event_id, subject = %message.subject, delivery, "this event's handler has run for {GIVE_UP_AFTER_ACK_WAITS} ack waits without a progress ack and its redelivery went to another instance: the run is cancelled and its entity's later events, waiting here, go on");
                    return;
                }
            }
        }
    }
}

/// Runs a call to the deduplication bucket (the check before the handler,
/// the record after it) until it answers. A failing call (the bucket gone,
/// a node of an R3 bucket down, the server busy) is not the handler's
/// failure: the event waits here, kept alive with progress acks (and
/// keeping its entity's lane in ordered mode), and the call is retried with
/// backoff, so the outage spends none of the event's deliveries. `None` if
/// the shutdown deadline passed first.
async fn until_bucket_answers<T, F, Fut>(
    shared: &Shared,
    delivered: &Delivered,
    event_id: uuid::Uuid,
    call: F,
) -> Option<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, IdempotencyError>>,
{
    let group = shared.group.as_str();
    let mut failures = 0;
    loop {
        // A call may take longer than the ack wait (an R3 bucket without
        // its quorum answers nothing until the request times out).
        match kept_alive(shared, delivered, call()).await {
            Ok(answer) => {
                if failures > 0 {
                    tracing::info!(group, %event_id, failures, "the deduplication bucket answers again");
                }
                return Some(answer);
            }
            Err(e) => {
                failures += 1;
                let delay = shared.config.backoff.delay(failures);
                tracing::warn!(group, %event_id, error = %e, failures, retry_in = ?delay, "deduplication bucket unavailable; the event waits in place");
                // Waits shorter than a third of the ack wait send no
                // progress ack of their own: one per attempt keeps it alive.
                if let Err(e) = delivered.acker.progress().await {
                    tracing::warn!(group, error = %e, "progress ack failed");
                }
                if !wait_keeping_alive(shared, delivered, delay).await {
                    return None;
                }
            }
        }
    }
}

/// Runs `work` while keeping the event alive with a progress ack every
/// third of the ack wait, so the server does not redeliver it meanwhile.
/// Only for work done in a handler turn: the progress acks are the
/// handlers' life (see `stall`).
async fn kept_alive<T>(shared: &Shared, delivered: &Delivered, work: impl Future<Output = T>) -> T {
    let step = shared.config.ack_wait / 3;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + step, step);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => {
                if let Err(e) = shared.life.progress(&delivered.acker).await {
                    tracing::warn!(group = %shared.group, error = %e, "progress ack failed");
                }
            }
        }
    }
}

/// Releases an event of a type this instance has no handler for, for an
/// instance of the group that has one (the group's filter is the union of
/// the types its instances handle): a NAK with the backoff's delay,
/// recorded as a release, so it does not spend the event's delivery budget
/// (see `Attempts`). Warns once per type: if no instance handles the type
/// any more, the operator retires it from the group (`retire_types`), or it
/// keeps coming back.
async fn release_unhandled(shared: &Shared, delivered: &Delivered, event_type: &str) {
    let group = shared.group.as_str();
    let stream = delivered.stream.as_str();
    shared
        .mover
        .note_release(group, stream, delivered.stream_sequence)
        .await;
    let delay = shared.config.backoff.delay(delivered.delivery);
    let first_of_type = shared
        .unhandled_warned
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(event_type.to_string());
    if first_of_type {
        tracing::warn!(
            group,
            stream,
            event_type,
            subject = %delivered.message.subject,
            retry_in = ?delay,
            "this instance has no handler for this type, which the group's consumer receives (another instance handles it, or did): released for the others; if none handles it any more, retire it with tidings::subscribe::retire_types"
        );
    } else {
        tracing::debug!(
            group,
            stream,
            event_type,
            stream_sequence = delivered.stream_sequence,
            "no handler here; released for the others"
        );
    }
    nak(shared, delivered, Some(delay), "unhandled_type").await;
}

/// Sleeps `delay` with progress acks every third of the ack wait; `false`
/// if the shutdown deadline passed first.
async fn wait_keeping_alive(shared: &Shared, delivered: &Delivered, delay: Duration) -> bool {
    let mut abort = shared.abort.clone();
    let wait = async {
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = abort.wait_for(|a| *a) => false,
        }
    };
    kept_alive(shared, delivered, wait).await
}

async fn ack(shared: &Shared, delivered: &Delivered) {
    shared.telemetry.acked();
    telemetry::spans::settled("acked");
    // Boxed: the ack's future is a few hundred bytes that every event's
    // handling would otherwise carry (see `Typed::call`).
    if let Err(e) = Box::pin(delivered.acker.ack()).await {
        tracing::warn!(group = %shared.group, stream_sequence = delivered.stream_sequence, error = %e, "ack failed; the event will be delivered again");
    }
}

/// NAKs (no delay) a delivery that ends with no verdict of the handler,
/// noting it so the redelivery does not count it against the event.
/// `reason`: the `tidings.reason` of the NAK metric.
pub(crate) async fn release(shared: &Shared, delivered: &Delivered, reason: &'static str) {
    note_released(shared, delivered).await;
    nak(shared, delivered, None, reason).await;
}

/// Notes that a delivery ended without running the handler, so that it
/// does not count against the event.
async fn note_released(shared: &Shared, delivered: &Delivered) {
    shared
        .mover
        .note_release(&shared.group, &delivered.stream, delivered.stream_sequence)
        .await;
}

/// `reason`: the `tidings.reason` of the NAK metric.
async fn nak(
    shared: &Shared,
    delivered: &Delivered,
    delay: Option<Duration>,
    reason: &'static str,
) {
    shared.telemetry.nacked(reason);
    telemetry::spans::settled("nacked");
    if let Err(e) = delivered.acker.ack_with(AckKind::Nak(delay)).await {
        tracing::warn!(group = %shared.group, stream_sequence = delivered.stream_sequence, error = %e, "NAK failed; the event comes back after the ack wait");
    }
}
