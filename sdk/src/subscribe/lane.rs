//! Per-entity lanes (ordered mode): the events of one organization and
//! entity key are handled one at a time, in arrival (stream) order, on the
//! lane's own task. The event at a lane's head is being handled or waits
//! for a handler; the others wait behind it, kept alive with progress acks.
//!
//! A redelivery of the head arriving here means the server gave the head's
//! run up (its handler ran past the ack wait without a progress ack): the
//! run is cancelled and the redelivery takes its place, ahead of the
//! events behind it. Without that, an instance alone in its group would
//! queue the redelivery behind its own hung run, and the entity's events
//! would wait forever.
//!
//! Once a head's hold has lapsed (the server took it back), an instance
//! with no slot free and nothing asked for could not receive its
//! redelivery: the youngest event waiting behind it is handed over to make
//! room ([`make_room`]). A head whose hold has not been renewed for
//! [`GIVE_UP_AFTER_ACK_WAITS`] ack waits while events wait behind it is
//! given up: its redelivery went to another instance of the group (or
//! nowhere), so this instance's hung run would otherwise keep the entity's
//! later events waiting as long as it hangs.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::stall::Hold;
use super::worker::{process_in_turn, release, Delivered, Job, Shared};
use crate::token::NO_KEY;

/// The lanes of one running subscriber, by `org.key`.
pub(crate) type Lanes = Mutex<HashMap<String, Lane>>;

/// One entity's lane.
pub(crate) struct Lane {
    /// The head's stream and stream sequence.
    head: (String, u64),
    /// Fires the head's [`Superseded`].
    supersede: Option<oneshot::Sender<Supersession>>,
    /// The events waiting behind the head, in arrival order.
    queue: VecDeque<Job>,
}

impl Lane {
    /// A lane headed by `delivered`, and the head's [`Superseded`].
    fn headed_by(delivered: &Delivered) -> (Self, Superseded) {
        let (tx, rx) = oneshot::channel();
        let lane = Self {
            head: (delivered.stream.clone(), delivered.stream_sequence),
            supersede: Some(tx),
            queue: VecDeque::new(),
        };
        (lane, Superseded(Some(rx)))
    }

    /// Makes `delivered` the head.
    fn advance(&mut self, delivered: &Delivered) -> Superseded {
        let (next, superseded) = Self::headed_by(delivered);
        self.head = next.head;
        self.supersede = next.supersede;
        superseded
    }

    /// Queues an event: behind the others, or in place of the earlier
    /// delivery it is a redelivery of (returned).
    fn add(&mut self, job: Job) -> Option<Job> {
        fn id(d: &Delivered) -> (u64, &str) {
            (d.stream_sequence, d.stream.as_str())
        }
        let new = id(&job.delivered);
        if let Some(queued) = self.queue.iter_mut().find(|q| id(&q.delivered) == new) {
            // A waiting event's progress ack was lost (or the head was
            // redelivered twice): the newer delivery waits in its place.
            return Some(std::mem::replace(queued, job));
        }
        if new == (self.head.1, self.head.0.as_str()) {
            if let Some(supersede) = self.supersede.take() {
                let _ = supersede.send(Supersession::RedeliveredHere);
            }
            self.queue.push_front(job);
        } else {
            self.queue.push_back(job);
        }
        None
    }
}

/// A head's hold unrenewed for this many ack waits, with events waiting
/// behind it, is given up: one ack wait for the server to take it back,
/// one for its redelivery to reach this instance if it comes here.
pub(crate) const GIVE_UP_AFTER_ACK_WAITS: u32 = 2;

/// Why a lane's head stops being handled here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Supersession {
    /// The server redelivered it to this instance: the redelivery takes
    /// its place.
    RedeliveredHere,
    /// Its hold lapsed long ago and its redelivery did not come here: it
    /// is another instance's now, and the events behind it go on.
    GivenUp,
}

/// Resolves when a lane's head is superseded (see [`Supersession`]).
/// Never resolves outside a lane.
pub(crate) struct Superseded(Option<oneshot::Receiver<Supersession>>);

impl Superseded {
    /// For an event outside any lane.
    pub(crate) fn never() -> Self {
        Self(None)
    }

    /// Resolves (once) when the head is superseded, with why.
    pub(crate) async fn wait(&mut self) -> Supersession {
        if let Some(rx) = &mut self.0 {
            let fired = rx.await;
            self.0 = None;
            if let Ok(why) = fired {
                return why;
            }
        }
        std::future::pending().await
    }
}

/// The ordering key of a subject `TYPE(3 tokens).ORG.KEY`: `ORG.KEY`, or
/// `None` for events without an entity key.
pub(crate) fn lane_key(subject: &str) -> Option<String> {
    let mut tokens = subject.rsplitn(3, '.');
    let key = tokens.next()?;
    let org = tokens.next()?;
    (key != NO_KEY).then(|| format!("{org}.{key}"))
}

/// Queues `job` in the lane `key`, starting the lane's task if it has
/// none. Returns the earlier delivery of the same event it replaced, if
/// one was waiting.
pub(crate) fn enqueue(shared: &Arc<Shared>, key: String, job: Job) -> Option<Job> {
    let superseded = {
        let mut lanes = shared.lanes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(lane) = lanes.get_mut(&key) {
            return lane.add(job);
        }
        let (lane, superseded) = Lane::headed_by(&job.delivered);
        lanes.insert(key.clone(), lane);
        superseded
    };
    tokio::spawn(run_lane(shared.clone(), key, job, superseded));
    None
}

/// Handles one entity's events one at a time, in arrival order.
async fn run_lane(shared: Arc<Shared>, key: String, first: Job, superseded: Superseded) {
    let (mut job, mut superseded) = (first, superseded);
    loop {
        process_in_turn(&shared, &job.delivered, Some(&key), &mut superseded).await;
        drop(job);
        let mut lanes = shared.lanes.lock().unwrap_or_else(|p| p.into_inner());
        let Some(lane) = lanes.get_mut(&key) else {
            return;
        };
        match lane.queue.pop_front() {
            Some(next) => {
                superseded = lane.advance(&next.delivered);
                job = next;
            }
            None => {
                lanes.remove(&key);
                return;
            }
        }
    }
}

/// Hands the events waiting in an entity's lane over to the group, in
/// order: the instance stalled.
pub(crate) async fn hand_over(shared: &Shared, key: &str) {
    let waiting: Vec<Job> = {
        let mut lanes = shared.lanes.lock().unwrap_or_else(|p| p.into_inner());
        lanes
            .get_mut(key)
            .map(|lane| lane.queue.drain(..).collect())
            .unwrap_or_default()
    };
    for job in waiting {
        release(shared, &job.delivered, "stalled").await;
    }
}

/// Gives the lane's head up if events wait behind it (see
/// [`Supersession::GivenUp`]); `false` if none waits, or it was already
/// superseded.
pub(crate) fn give_up_head(shared: &Shared, key: &str) -> bool {
    let mut lanes = shared.lanes.lock().unwrap_or_else(|p| p.into_inner());
    let Some(lane) = lanes.get_mut(key).filter(|lane| !lane.queue.is_empty()) else {
        return false;
    };
    lane.supersede
        .take()
        .is_some_and(|supersede| supersede.send(Supersession::GivenUp).is_ok())
}

/// Hands the youngest event waiting in the lane over to the group (NAK, no
/// delivery spent), so that a slot is free for the head's redelivery;
/// `false` if none waits.
pub(crate) async fn make_room(shared: &Shared, key: &str) -> bool {
    let youngest = {
        let mut lanes = shared.lanes.lock().unwrap_or_else(|p| p.into_inner());
        lanes.get_mut(key).and_then(|lane| lane.queue.pop_back())
    };
    let Some(job) = youngest else {
        return false;
    };
    release(shared, &job.delivered, "room_for_redelivery").await;
    true
}

/// Progress acks for the events waiting in a lane.
pub(crate) async fn keep_waiting_alive(shared: &Shared, key: &str) {
    let holds: Vec<Arc<Hold>> = {
        let lanes = shared.lanes.lock().unwrap_or_else(|p| p.into_inner());
        lanes
            .get(key)
            .map(|lane| {
                lane.queue
                    .iter()
                    .map(|j| j.delivered.acker.clone())
                    .collect()
            })
            .unwrap_or_default()
    };
    for hold in holds {
        if let Err(e) = hold.progress().await {
            tracing::warn!(group = %shared.group, error = %e, "progress ack for a waiting event failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lane_key;

    #[test]
    fn lanes_are_per_tenant_and_entity() {
        assert_eq!(
            lane_key("auth.user.created.org-1.u-7").as_deref(),
            Some("org-1.u-7")
        );
        assert_eq!(lane_key("auth.user.created.org-1._"), None);
        assert_eq!(lane_key("nodots"), None);
    }
}
