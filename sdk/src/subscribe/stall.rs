//! Telling a stalled instance from a busy one. An instance is stalled when
//! every handler turn is taken and no handler has started or sent a
//! progress ack for the ack wait: each running handler has outlived it
//! silently, so the server has taken its event back. Such an instance hands
//! the events waiting for a handler over to the group and asks for no more
//! until a handler shows life again; a busy instance, whose handlers start,
//! return or report progress, keeps its waiting events alive.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::message::{AckKind, Acker};

/// When a handler of the instance last showed life.
#[derive(Debug)]
pub(crate) struct Life {
    epoch: Instant,
    /// Milliseconds after `epoch`.
    last: AtomicU64,
}

impl Life {
    pub(crate) fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    /// A handler started, or one sent a progress ack.
    pub(crate) fn note(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }

    /// Sends a progress ack for an event a handler holds: the handler
    /// shows life.
    pub(crate) async fn progress(&self, acker: &Acker) -> Result<(), async_nats::Error> {
        self.note();
        acker.ack_with(AckKind::Progress).await
    }

    /// How long no handler has shown life.
    pub(crate) fn quiet_for(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }
}

/// What `Event::progress` uses: the message's acker, and the instance's
/// [`Life`] a progress ack renews.
#[derive(Clone)]
pub(crate) struct Progress {
    acker: Arc<Acker>,
    life: Arc<Life>,
}

impl Progress {
    pub(crate) fn new(acker: Arc<Acker>, life: Arc<Life>) -> Self {
        Self { acker, life }
    }

    /// Sends a progress ack: the handler holding the event is alive.
    pub(crate) async fn send(&self) -> Result<(), async_nats::Error> {
        self.life.progress(&self.acker).await
    }
}
