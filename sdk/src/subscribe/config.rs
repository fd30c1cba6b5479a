//! Subscriber settings, with the defaults the spec and JetStream suggest.
use std::time::Duration;

use time::OffsetDateTime;

use crate::token::OrganizationId;

/// Where a consumer group that does not exist yet starts. A group that
/// exists keeps its position: this only applies when it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    /// Events published after the group is created (the default).
    #[default]
    New,
    /// Every event the stream still holds.
    All,
    /// Events stored at or after this time.
    Time(OffsetDateTime),
}

/// The NAK delay after a failed handler: `initial × factor^(delivery - 1)`,
/// capped at `max`, with ±20 % jitter so that a burst of failures does not
/// come back at the same instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The delay after the first failure.
    pub initial: Duration,
    /// The growth per failure (2.0 doubles).
    pub factor: f64,
    /// The longest delay.
    pub max: Duration,
    /// Whether to add ±20 % jitter.
    pub jitter: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            factor: 2.0,
            max: Duration::from_secs(60),
            jitter: true,
        }
    }
}

impl Backoff {
    /// The delay after the `failures`-th failure (1-based), without jitter.
    pub fn nominal(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(62) as i32;
        let secs = self.initial.as_secs_f64() * self.factor.powi(exponent);
        if !secs.is_finite() || secs >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    /// The delay after the `failures`-th failure (1-based), with jitter.
    pub fn delay(&self, failures: u32) -> Duration {
        let nominal = self.nominal(failures);
        if self.jitter {
            nominal.mul_f64(0.8 + 0.4 * fastrand::f64())
        } else {
            nominal
        }
    }
}

/// Handlers running at once unless `max_concurrent_handlers` says otherwise.
const DEFAULT_CONCURRENT_HANDLERS: usize = 256;

/// How a consumer group consumes.
#[derive(Debug, Clone)]
pub struct SubscriberConfig {
    /// How long the server waits for an ack before it redelivers (to another
    /// instance if there is one). Default 30 s. Long handlers extend it with
    /// [`Event::progress`](super::Event::progress).
    pub ack_wait: Duration,
    /// How many times an event is handed to a handler before it is given up
    /// and dead-lettered (counting the first). Default 5.
    pub max_deliveries: u32,
    /// NAK delays after a failed handler.
    pub backoff: Backoff,
    /// The most events this instance holds at once: asked of the server,
    /// waiting for a handler or for their entity's turn, or being handled.
    /// Default 1,024: the pull window. It must cover the events handled
    /// during a pull round trip (about rate × round trip: a consumer of
    /// 10,000 events/s on a cluster answering pulls in 50 ms needs 500), or
    /// the instance waits for the server instead of handling. A deeper
    /// window also means more handled events come back when their acks are
    /// lost (a frozen server): lower it where repeats are costly.
    pub max_in_flight: usize,
    /// The most handlers running at once; the other events held wait for a
    /// free one, kept from redelivery by progress acks every third of the
    /// ack wait. Default (`None`): 256, or `max_in_flight` if that is lower.
    /// Lower it for handlers that must not run that many at once (a database
    /// pool, a rate-limited API): the events waiting for them still arrive
    /// ahead. If every handler hangs (runs past the ack wait without a
    /// progress ack) the instance stalls: the waiting events are handed
    /// over to the group and no more are asked for until a handler shows
    /// life (`Health::Stalled`).
    pub max_concurrent_handlers: Option<usize>,
    /// Unacknowledged messages the server lets the whole group hold (every
    /// instance together). Default: `max_in_flight × 4`, room for 4 instances
    /// at full speed.
    pub max_ack_pending: Option<usize>,
    /// Only this tenant's events (a server-side filter subject).
    pub organization: Option<OrganizationId>,
    /// Events with the same organization and entity key are handled one at a
    /// time, in stream order, also across retries of a failing event (which
    /// are then retried in this instance). Default off.
    pub ordered_by_key: bool,
    /// Where a new group starts. On a work-queue stream (`retention =
    /// "workqueue"`) it starts at the first event the stream holds whatever
    /// this says: those are exactly the events no group has done yet.
    pub start_at: StartAt,
    /// How long one pull request waits at the server for messages. Also the
    /// longest a shutdown waits for the last request to finish. Default 1 s.
    pub pull_expires: Duration,
    /// How long a graceful shutdown lets in-flight handlers finish. Default 30 s.
    pub shutdown_deadline: Duration,
}

impl Default for SubscriberConfig {
    fn default() -> Self {
        Self {
            ack_wait: Duration::from_secs(30),
            max_deliveries: 5,
            backoff: Backoff::default(),
            max_in_flight: 1024,
            max_concurrent_handlers: None,
            max_ack_pending: None,
            organization: None,
            ordered_by_key: false,
            start_at: StartAt::New,
            pull_expires: Duration::from_secs(1),
            shutdown_deadline: Duration::from_secs(30),
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid subscriber setting `{setting}`: {reason}")]
pub struct ConfigError {
    /// The setting.
    pub setting: &'static str,
    /// Why.
    pub reason: String,
}

/// The longest duration a setting may have: 24 h (see
/// [`SubscriberConfig::validate`]).
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

impl SubscriberConfig {
    /// The effective `max_concurrent_handlers`.
    pub fn concurrent_handlers(&self) -> usize {
        self.max_concurrent_handlers
            .unwrap_or(DEFAULT_CONCURRENT_HANDLERS.min(self.max_in_flight))
    }

    /// The effective `max_ack_pending`.
    pub fn ack_pending(&self) -> usize {
        self.max_ack_pending
            .unwrap_or(self.max_in_flight.saturating_mul(4))
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// The first setting that cannot work. Durations (`ack_wait`,
    /// `pull_expires`, `shutdown_deadline`, `backoff.max`) are at most 24 h:
    /// each becomes a timer, and a longer wait is better served by progress
    /// acks or a stop signal.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |setting, reason: &str| {
            Err(ConfigError {
                setting,
                reason: reason.to_string(),
            })
        };
        for (setting, duration) in [
            ("ack_wait", self.ack_wait),
            ("pull_expires", self.pull_expires),
            ("shutdown_deadline", self.shutdown_deadline),
            ("backoff.max", self.backoff.max),
        ] {
            if duration > MAX_DURATION {
                return fail(setting, "must be at most 24 h");
            }
        }
        if self.ack_wait < Duration::from_millis(100) {
            return fail("ack_wait", "must be at least 100 ms");
        }
        if self.max_deliveries == 0 {
            return fail("max_deliveries", "must be at least 1");
        }
        if self.max_in_flight == 0 {
            return fail("max_in_flight", "must be at least 1");
        }
        match self.max_concurrent_handlers {
            Some(0) => return fail("max_concurrent_handlers", "must be at least 1"),
            Some(n) if n > self.max_in_flight => {
                return fail(
                    "max_concurrent_handlers",
                    "must not exceed max_in_flight: a handler runs on an event this instance holds",
                )
            }
            _ => {}
        }
        if self.ack_pending() < self.max_in_flight {
            return fail(
                "max_ack_pending",
                "must be at least max_in_flight, or this instance can never fill its slots",
            );
        }
        if !(self.backoff.factor.is_finite() && self.backoff.factor >= 1.0) {
            return fail("backoff.factor", "must be a finite number of at least 1");
        }
        if self.backoff.initial > self.backoff.max {
            return fail("backoff.initial", "must not exceed backoff.max");
        }
        if self.pull_expires < Duration::from_millis(100) {
            return fail("pull_expires", "must be at least 100 ms");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff {
            jitter: false,
            ..Backoff::default()
        };
        assert_eq!(b.nominal(1), Duration::from_secs(1));
        assert_eq!(b.nominal(2), Duration::from_secs(2));
        assert_eq!(b.nominal(4), Duration::from_secs(8));
        assert_eq!(b.nominal(10), Duration::from_secs(60));
        assert_eq!(b.nominal(u32::MAX), Duration::from_secs(60));
        let jittered = Backoff::default();
        for _ in 0..100 {
            let d = jittered.delay(3);
            assert!(d >= Duration::from_millis(3200) && d <= Duration::from_millis(4800));
        }
    }

    #[test]
    fn handlers_default_to_256_or_the_window_if_smaller() {
        assert_eq!(SubscriberConfig::default().concurrent_handlers(), 256);
        let small = SubscriberConfig {
            max_in_flight: 4,
            ..Default::default()
        };
        assert_eq!(small.concurrent_handlers(), 4);
        let set = SubscriberConfig {
            max_concurrent_handlers: Some(7),
            ..Default::default()
        };
        assert_eq!(set.concurrent_handlers(), 7);
    }

    #[test]
    fn impossible_settings_are_named() {
        let bad = SubscriberConfig {
            max_in_flight: 10,
            max_ack_pending: Some(5),
            ..Default::default()
        };
        assert_eq!(
            bad.validate().expect_err("5 < 10").setting,
            "max_ack_pending"
        );
        for (handlers, why) in [(0, "no handler"), (11, "more handlers than events held")] {
            let bad = SubscriberConfig {
                max_in_flight: 10,
                max_concurrent_handlers: Some(handlers),
                ..Default::default()
            };
            assert_eq!(
                bad.validate().expect_err(why).setting,
                "max_concurrent_handlers"
            );
        }
        let bad = SubscriberConfig {
            max_deliveries: 0,
            ..Default::default()
        };
        assert_eq!(
            bad.validate().expect_err("zero deliveries").setting,
            "max_deliveries"
        );
        assert!(SubscriberConfig::default().validate().is_ok());
    }

    #[test]
    fn durations_beyond_a_day_are_refused_not_left_to_overflow_a_timer() {
        let huge = Duration::MAX;
        let cases: [(&str, SubscriberConfig); 4] = [
            (
                "ack_wait",
                SubscriberConfig {
                    ack_wait: huge,
                    ..Default::default()
                },
            ),
            (
                "pull_expires",
                SubscriberConfig {
                    pull_expires: huge,
                    ..Default::default()
                },
            ),
            (
                "shutdown_deadline",
                SubscriberConfig {
                    shutdown_deadline: huge,
                    ..Default::default()
                },
            ),
            (
                "backoff.max",
                SubscriberConfig {
                    backoff: Backoff {
                        max: huge,
                        ..Backoff::default()
                    },
                    ..Default::default()
                },
            ),
        ];
        for (setting, config) in cases {
            let err = config.validate().expect_err(setting);
            assert_eq!(err.setting, setting);
            assert!(err.reason.contains("at most 24 h"), "{}", err.reason);
        }
        let a_day = SubscriberConfig {
            ack_wait: MAX_DURATION,
            pull_expires: MAX_DURATION,
            shutdown_deadline: MAX_DURATION,
            ..Default::default()
        };
        assert!(a_day.validate().is_ok());
    }
}
