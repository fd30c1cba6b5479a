use std::time::Duration;

/// How a failed publish attempt is retried.
///
/// The default retries 3 times (4 attempts) after 100 ms, 200 ms and 400 ms,
/// each delay varied by ±20 % so that publishers that failed together do
/// not retry together. Every attempt reuses the event's `Nats-Msg-Id`, so a
/// retry of an attempt that was in fact stored is answered `duplicate`
/// instead of storing a second copy, as long as the whole schedule stays
/// inside the stream's duplicate window (checked against each stream's
/// `duplicate_window`, read from the server, before its first publish).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (the spec's 3).
    pub max_retries: u32,
    /// The delay before the first retry.
    pub initial_delay: Duration,
    /// Each further delay is the previous one times this.
    pub multiplier: f64,
    /// No delay is longer than this.
    pub max_delay: Duration,
    /// Each delay varies by up to this fraction either way (0 to 1).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_delay: Duration::from_millis(100),
            multiplier: 2.0,
            max_delay: Duration::from_secs(5),
            jitter: 0.2,
        }
    }
}

/// A number of seconds as a duration, saturating instead of panicking.
fn seconds(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX)
}

impl RetryPolicy {
    /// The nominal delay before retry `retry` (1-based), without jitter.
    pub fn nominal_delay(&self, retry: u32) -> Duration {
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let factor = self.multiplier.max(1.0).powi(exponent);
        let delay = self.initial_delay.as_secs_f64() * factor;
        seconds(delay.min(self.max_delay.as_secs_f64()))
    }

    /// The delay before retry `retry`, with jitter applied.
    pub fn delay(&self, retry: u32) -> Duration {
        let nominal = self.nominal_delay(retry).as_secs_f64();
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 + jitter * (fastrand::f64() * 2.0 - 1.0);
        seconds(nominal * factor)
    }

    /// The longest the whole schedule can take, or `None` if that does not
    /// fit a [`Duration`]: every attempt waiting its longest to be handed
    /// to the connection and then its longest for the PubAck (each up to
    /// `attempt_timeout`), every delay at its jittered maximum.
    pub fn worst_case(&self, attempt_timeout: Duration) -> Option<Duration> {
        let attempts = self.max_retries.checked_add(1)?;
        let per_attempt = attempt_timeout.checked_mul(2)?;
        let jitter = 1.0 + self.jitter.clamp(0.0, 1.0);
        // Delays grow until capped; the capped rest is one multiplication,
        // so a huge max_retries costs no more than a small one.
        let mut delays = 0.0;
        let mut previous = None;
        let mut retry = 1;
        while retry <= self.max_retries {
            let nominal = self.nominal_delay(retry);
            if nominal >= self.max_delay || previous == Some(nominal) {
                delays += nominal.as_secs_f64() * f64::from(self.max_retries - retry + 1);
                break;
            }
            delays += nominal.as_secs_f64();
            previous = Some(nominal);
            retry += 1;
        }
        let delays = Duration::try_from_secs_f64(delays * jitter).ok()?;
        per_attempt.checked_mul(attempts)?.checked_add(delays)
    }
}

/// Settings of a [`Publisher`](super::Publisher).
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// The CloudEvents `source`. Default: `/tidings/SERVICE`, from the first
    /// token of each event type.
    pub source: Option<String>,
    /// Validate every payload against its schema before sending (default on).
    pub validate: bool,
    /// Also send the CloudEvents binary-mode `ce-` headers beside the
    /// structured-mode body (default off), for tools that read an event's
    /// attributes from headers without parsing the body. Off, a message
    /// carries only `Nats-Msg-Id` and `content-type`, which is all the
    /// CloudEvents NATS binding's structured mode asks for; the subject
    /// already names the type, tenant and entity key, and subscribers read
    /// the attributes from the body either way. On costs about 340 bytes
    /// per stored message and, above all, CPU in every consumer: async-nats
    /// parses and allocates each header of every message it receives, and
    /// with the 13 headers three groups on one 2-core machine handled about
    /// 8,000 of 10,000 events/s where without them they kept up (README,
    /// Performance).
    pub ce_headers: bool,
    /// How failed attempts are retried.
    pub retry: RetryPolicy,
    /// How long one attempt may wait to be handed to the connection, and
    /// then how long it waits for its PubAck (default 5 s each).
    pub attempt_timeout: Duration,
    /// How many publishes are in flight at once (default 256): across every
    /// `publish`/`send` of this publisher (and its clones), and within one
    /// `publish_batch` call. A publish beyond it waits its turn, in a local
    /// queue: nothing is sent while it waits, so the wait is not an attempt
    /// and does not count against `attempt_timeout`.
    pub max_in_flight: usize,
    /// How long a publish may wait for its turn among the `max_in_flight`
    /// (default 30 s). Past it the publish is refused with
    /// `PublishError::Overloaded`, never sent: the server is slow or
    /// unreachable, or events come faster than it stores them, and the
    /// caller decides (publish later, shed load, spool).
    pub queue_timeout: Duration,
    /// A budget of bytes per organization (default none): an event of a
    /// tenant over it is refused with `PublishError::TenantLimited` before
    /// it is sent, so one tenant cannot fill a shared stream and evict the
    /// others' events.
    pub tenant_limit: Option<super::TenantLimit>,
    /// The level at which every stored event is logged, with its id, type,
    /// organization, subject, stream, sequence and attempts (FR-010).
    /// Default [`tracing::Level::INFO`]; a service that publishes thousands
    /// of events a second may prefer `DEBUG`, or filter the target
    /// `tidings::publish` in its subscriber.
    pub log_level: tracing::Level,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        Self {
            source: None,
            validate: true,
            ce_headers: false,
            retry: RetryPolicy::default(),
            attempt_timeout: Duration::from_secs(5),
            max_in_flight: 256,
            queue_timeout: Duration::from_secs(30),
            tenant_limit: None,
            log_level: tracing::Level::INFO,
        }
    }
}

/// A publisher configuration that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The retry schedule outlasts a stream's duplicate window.
    #[error(
        "the retry schedule can take {worst:?} ({attempts} attempts of up to {attempt_timeout:?} \
         to enqueue plus {attempt_timeout:?} for the PubAck, plus delays), longer than stream \
         {stream}'s duplicate window of {window:?}: a late retry could store a second copy. \
         Shorten attempt_timeout or the retries, or widen the stream's duplicate_window"
    )]
    ScheduleOutlastsWindow {
        /// The stream.
        stream: String,
        /// The worst case of the schedule.
        worst: Duration,
        /// Attempts in all.
        attempts: u32,
        /// One attempt's timeout (for each of its two waits).
        attempt_timeout: Duration,
        /// The stream's duplicate window, as the server reports it.
        window: Duration,
    },
    /// A setting is out of range.
    #[error("publisher setting {setting} is invalid: {reason}")]
    Invalid {
        /// The setting.
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl PublisherConfig {
    /// Checks that the settings can work together. The schedule is checked
    /// against each stream's duplicate window by the publisher, which reads
    /// the window from the server.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |setting, reason: &str| {
            Err(ConfigError::Invalid {
                setting,
                reason: reason.to_string(),
            })
        };
        if self.attempt_timeout.is_zero() {
            return invalid("attempt_timeout", "it must be longer than zero");
        }
        if self.max_in_flight == 0 {
            return invalid("max_in_flight", "it must be at least 1");
        }
        if self.max_in_flight > tokio::sync::Semaphore::MAX_PERMITS {
            return invalid("max_in_flight", "it must be at most 2^61 - 1");
        }
        if self.queue_timeout.is_zero() {
            return invalid("queue_timeout", "it must be longer than zero");
        }
        if !(self.retry.multiplier.is_finite() && self.retry.multiplier >= 1.0) {
            return invalid(
                "retry.multiplier",
                "it must be a finite number of at least 1",
            );
        }
        if !(0.0..=1.0).contains(&self.retry.jitter) {
            return invalid("retry.jitter", "it must be between 0 and 1");
        }
        if let Some(limit) = &self.tenant_limit {
            if limit.bytes_per_second == 0 || limit.burst_bytes == 0 {
                return invalid(
                    "tenant_limit",
                    "bytes_per_second and burst_bytes must be at least 1",
                );
            }
        }
        if let Some(source) = &self.source {
            if source.is_empty() || source.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return invalid(
                    "source",
                    "it must be a non-empty URI reference without whitespace",
                );
            }
        }
        if self.worst_case().is_none() {
            return invalid(
                "attempt_timeout and retry",
                "the retry schedule's worst case does not fit a Duration",
            );
        }
        Ok(())
    }

    /// The longest a publish can take, all attempts and delays; `None` if
    /// that overflows (refused by [`PublisherConfig::validate`]).
    pub fn worst_case(&self) -> Option<Duration> {
        self.retry.worst_case(self.attempt_timeout)
    }

    /// Whether the whole schedule fits a stream's duplicate window.
    pub fn check_window(&self, stream: &str, window: Duration) -> Result<(), ConfigError> {
        let worst = self.worst_case().unwrap_or(Duration::MAX);
        if worst >= window {
            return Err(ConfigError::ScheduleOutlastsWindow {
                stream: stream.to_string(),
                worst,
                attempts: self.retry.max_retries.saturating_add(1),
                attempt_timeout: self.attempt_timeout,
                window,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_is_exponential_and_fits_the_window() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.nominal_delay(1), Duration::from_millis(100));
        assert_eq!(policy.nominal_delay(2), Duration::from_millis(200));
        assert_eq!(policy.nominal_delay(3), Duration::from_millis(400));
        for retry in 1..=3 {
            let nominal = policy.nominal_delay(retry).as_secs_f64();
            for _ in 0..100 {
                let d = policy.delay(retry).as_secs_f64();
                assert!(
                    d >= nominal * 0.8 - 1e-9 && d <= nominal * 1.2 + 1e-9,
                    "{d}"
                );
            }
        }
        assert!(PublisherConfig::default().validate().is_ok());
        let worst = PublisherConfig::default().worst_case().expect("fits");
        // 4 attempts of 5 s + 5 s, delays of at most 120 + 240 + 480 ms.
        assert!(
            worst.abs_diff(Duration::from_millis(40_840)) < Duration::from_millis(1),
            "{worst:?}"
        );
    }

    #[test]
    fn delays_are_capped() {
        let policy = RetryPolicy {
            max_retries: 10,
            max_delay: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        assert_eq!(policy.nominal_delay(10), Duration::from_secs(1));
    }

    #[test]
    fn a_schedule_longer_than_the_window_is_refused() {
        let config = PublisherConfig {
            attempt_timeout: Duration::from_secs(20),
            ..PublisherConfig::default()
        };
        assert!(config.validate().is_ok());
        // Each attempt can wait 20 s to enqueue and 20 s for its PubAck.
        let err = config
            .check_window("AUTH_EVENTS", Duration::from_secs(120))
            .expect_err("4 x (20 + 20) s > 2 min");
        assert!(matches!(
            err,
            ConfigError::ScheduleOutlastsWindow { attempts: 4, .. }
        ));
        assert!(
            err.to_string()
                .contains("AUTH_EVENTS's duplicate window of 120s"),
            "{err}"
        );
        assert!(PublisherConfig::default()
            .check_window("AUTH_EVENTS", Duration::from_secs(120))
            .is_ok());
    }

    #[test]
    fn nonsense_settings_are_refused() {
        for config in [
            PublisherConfig {
                max_in_flight: 0,
                ..Default::default()
            },
            PublisherConfig {
                max_in_flight: usize::MAX,
                ..Default::default()
            },
            PublisherConfig {
                queue_timeout: Duration::ZERO,
                ..Default::default()
            },
            PublisherConfig {
                attempt_timeout: Duration::ZERO,
                ..Default::default()
            },
            PublisherConfig {
                source: Some("a b".into()),
                ..Default::default()
            },
            PublisherConfig {
                retry: RetryPolicy {
                    jitter: 2.0,
                    ..Default::default()
                },
                ..Default::default()
            },
        ] {
            assert!(
                matches!(config.validate(), Err(ConfigError::Invalid { .. })),
                "{config:?}"
            );
        }
    }

    #[test]
    fn settings_whose_schedule_overflows_are_refused_not_a_panic() {
        for config in [
            PublisherConfig {
                attempt_timeout: Duration::MAX,
                ..Default::default()
            },
            PublisherConfig {
                retry: RetryPolicy {
                    initial_delay: Duration::MAX,
                    max_delay: Duration::MAX,
                    ..Default::default()
                },
                ..Default::default()
            },
        ] {
            let result = std::panic::catch_unwind(|| config.validate());
            assert!(
                matches!(result, Ok(Err(ConfigError::Invalid { .. }))),
                "{config:?}: {result:?}"
            );
        }
    }
}
