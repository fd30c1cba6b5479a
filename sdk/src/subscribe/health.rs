//! What a running subscriber is doing, as a [`watch`] of [`Health`] states:
//! the pull loops report a recreated consumer or a stream they can no
//! longer consume, a watcher of the client's connection reports losing and
//! regaining the server, and the shutdown reports the stop.
use std::time::Duration;

use async_nats::connection::State;
use tokio::sync::watch;

/// How often the connection's state is looked at (the client offers no
/// notification of its own to a library that did not create it).
const CONNECTION_POLL: Duration = Duration::from_millis(250);

/// The state of a running subscriber (see `Running::health`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Pulling and handling events.
    Consuming,
    /// The connection to the server is lost and the client reconnects;
    /// handlers of events already received go on, their acks wait.
    Reconnecting,
    /// The group's consumer on `stream` was gone (deleted) and has been
    /// created again; consuming. Stays until the next change.
    ConsumerRecreated {
        /// The stream whose consumer was recreated.
        stream: String,
    },
    /// Every handler of this instance has run past the ack wait without a
    /// progress ack (hung): their events went back to the server, the
    /// events waiting for a handler were handed over to the group, and no
    /// more are asked for until a handler returns or reports progress
    /// (then `Consuming` again). A liveness probe restarts such an
    /// instance.
    Stalled,
    /// Consuming has stopped: after a shutdown (`error` is `None`), or
    /// because a stream can no longer be consumed (`error` says why).
    Stopped {
        /// Why, when it was not a shutdown.
        error: Option<String>,
    },
}

/// Sets the state, unless the subscriber has stopped (a final state).
pub(crate) fn report(health: &watch::Sender<Health>, next: Health) {
    health.send_if_modified(|now| {
        if matches!(now, Health::Stopped { .. }) || *now == next {
            return false;
        }
        *now = next;
        true
    });
}

/// Reports the connection's losses and recoveries until `stop`.
pub(crate) async fn watch_connection(
    client: async_nats::Client,
    health: watch::Sender<Health>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(CONNECTION_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let connected = client.connection_state() == State::Connected;
        let reconnecting = matches!(*health.borrow(), Health::Reconnecting);
        if !connected && !reconnecting {
            tracing::warn!("subscriber lost its connection; reconnecting");
            report(&health, Health::Reconnecting);
        } else if connected && reconnecting {
            tracing::info!("subscriber connected again");
            report(&health, Health::Consuming);
        }
    }
}
