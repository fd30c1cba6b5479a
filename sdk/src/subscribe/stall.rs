//! Telling a stalled instance from a busy one. An instance is stalled when
//! every handler turn is taken and no handler has started or sent a
//! progress ack for the ack wait: each running handler has outlived it
//! silently, so the server has taken its event back. Such an instance hands
//! the events waiting for a handler over to the group and asks for no more
//! until a handler shows life again; a busy instance, whose handlers start,
//! return or report progress, keeps its waiting events alive.
//!
//! Each message's [`Hold`] also knows when this instance last renewed it
//! (its delivery, or a progress ack): an ack wait later the server gives
//! it to the group again.
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::message::{AckKind, Acker};

/// The instant the [`Stamp`]s count from.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// An instant, kept in an atomic as milliseconds after [`EPOCH`].
#[derive(Debug)]
struct Stamp(AtomicU64);

impl Stamp {
    fn millis() -> u64 {
        u64::try_from(EPOCH.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Stamped now.
    fn now() -> Self {
        Self(AtomicU64::new(Self::millis()))
    }

    fn renew(&self) {
        self.0.store(Self::millis(), Ordering::Relaxed);
    }

    /// How long ago it was stamped.
    fn age(&self) -> Duration {
        Duration::from_millis(Self::millis().saturating_sub(self.0.load(Ordering::Relaxed)))
    }
}

/// When a handler of the instance last showed life.
#[derive(Debug)]
pub(crate) struct Life(Stamp);

impl Life {
    pub(crate) fn new() -> Self {
        Self(Stamp::now())
    }

    /// A handler started, or one sent a progress ack.
    pub(crate) fn note(&self) {
        self.0.renew();
    }

    /// Sends a progress ack for an event a handler holds: the handler
    /// shows life.
    pub(crate) async fn progress(&self, hold: &Hold) -> Result<(), async_nats::Error> {
        self.note();
        hold.progress().await
    }

    /// How long no handler has shown life.
    pub(crate) fn quiet_for(&self) -> Duration {
        self.0.age()
    }
}

/// A delivered message's acker, and when this instance last renewed its
/// hold on the message: its delivery or its last progress ack. Every
/// progress ack goes through [`Hold::progress`].
pub(crate) struct Hold {
    acker: Acker,
    renewed: Stamp,
}

impl Hold {
    /// The hold of a message delivered now.
    pub(crate) fn new(acker: Acker) -> Self {
        Self {
            acker,
            renewed: Stamp::now(),
        }
    }

    /// Sends a progress ack, renewing the hold.
    pub(crate) async fn progress(&self) -> Result<(), async_nats::Error> {
        self.renewed.renew();
        self.acker.ack_with(AckKind::Progress).await
    }

    /// How long ago the hold was last renewed: once that passes the ack
    /// wait, the server has given the message to the group again.
    pub(crate) fn unrenewed_for(&self) -> Duration {
        self.renewed.age()
    }
}

impl Deref for Hold {
    type Target = Acker;

    fn deref(&self) -> &Acker {
        &self.acker
    }
}

/// What `Event::progress` uses: the message's hold, and the instance's
/// [`Life`] a progress ack renews.
#[derive(Clone)]
pub(crate) struct Progress {
    hold: Arc<Hold>,
    life: Arc<Life>,
}

impl Progress {
    pub(crate) fn new(hold: Arc<Hold>, life: Arc<Life>) -> Self {
        Self { hold, life }
    }

    /// Sends a progress ack: the handler holding the event is alive.
    pub(crate) async fn send(&self) -> Result<(), async_nats::Error> {
        self.life.progress(&self.hold).await
    }
}
