use std::time::Duration;

/// How a failed publish attempt is retried.
///
/// The default retries 3 times (4 attempts) after 100 ms, 200 ms and 400 ms,
/// each delay varied by ±20 % so that publishers that failed together do
/// not retry together. Every attempt reuses the event's `Nats-Msg-Id`, so a
/// retry of an attempt that was in fact stored is answered `duplicate`
/// instead of storing a second copy, as long as the whole schedule stays
/// inside the stream's duplicate window (checked when the publisher is built).
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

impl RetryPolicy {
    /// The nominal delay before retry `retry` (1-based), without jitter.
    pub fn nominal_delay(&self, retry: u32) -> Duration {
        let factor = self
            .multiplier
            .max(1.0)
            .powi(retry.saturating_sub(1) as i32);
        let delay = self.initial_delay.as_secs_f64() * factor;
        Duration::from_secs_f64(delay.min(self.max_delay.as_secs_f64()))
    }

    /// The delay before retry `retry`, with jitter applied.
    pub fn delay(&self, retry: u32) -> Duration {
        let nominal = self.nominal_delay(retry).as_secs_f64();
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 + jitter * (fastrand::f64() * 2.0 - 1.0);
        Duration::from_secs_f64((nominal * factor).max(0.0))
    }

    /// The longest the whole schedule can take: every attempt timing out,
    /// every delay at its jittered maximum.
    pub fn worst_case(&self, attempt_timeout: Duration) -> Duration {
        let attempts = self.max_retries + 1;
        let delays: f64 = (1..=self.max_retries)
            .map(|r| self.nominal_delay(r).as_secs_f64() * (1.0 + self.jitter.clamp(0.0, 1.0)))
            .sum();
        attempt_timeout * attempts + Duration::from_secs_f64(delays)
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
    /// Send the CloudEvents binary-mode `ce-` headers beside the
    /// structured-mode body (default on), so that tools can read an
    /// event's attributes without parsing the body. Off, a message carries
    /// only `Nats-Msg-Id` and `content-type`: for the benchmark's event
    /// about 340 bytes less per stored message (more events fit a stream's
    /// byte limit) and a faster publish. Subscribers read the attributes
    /// from the body and route by subject either way.
    pub ce_headers: bool,
    /// How failed attempts are retried.
    pub retry: RetryPolicy,
    /// How long one attempt waits for its PubAck (default 5 s).
    pub attempt_timeout: Duration,
    /// The streams' duplicate window (default 2 min): the retry schedule
    /// must fit inside it, or a late retry could store a second copy.
    pub duplicate_window: Duration,
    /// How many publishes of one batch are in flight at once (default 256).
    pub max_in_flight: usize,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        Self {
            source: None,
            validate: true,
            ce_headers: true,
            retry: RetryPolicy::default(),
            attempt_timeout: Duration::from_secs(5),
            duplicate_window: Duration::from_secs(120),
            max_in_flight: 256,
        }
    }
}

/// A publisher configuration that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The retry schedule outlasts the duplicate window.
    #[error(
        "the retry schedule can take {worst:?} ({attempts} attempts of {attempt_timeout:?} plus \
         delays), longer than the duplicate window of {window:?}: a late retry could store a \
         second copy. Shorten attempt_timeout or the retries, or widen the streams' duplicate_window"
    )]
    ScheduleOutlastsWindow {
        /// The worst case of the schedule.
        worst: Duration,
        /// Attempts in all.
        attempts: u32,
        /// One attempt's timeout.
        attempt_timeout: Duration,
        /// The duplicate window.
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
    /// Checks that the settings can work together.
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
        if !(self.retry.multiplier.is_finite() && self.retry.multiplier >= 1.0) {
            return invalid(
                "retry.multiplier",
                "it must be a finite number of at least 1",
            );
        }
        if !(0.0..=1.0).contains(&self.retry.jitter) {
            return invalid("retry.jitter", "it must be between 0 and 1");
        }
        if let Some(source) = &self.source {
            if source.is_empty() || source.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return invalid(
                    "source",
                    "it must be a non-empty URI reference without whitespace",
                );
            }
        }
        let worst = self.retry.worst_case(self.attempt_timeout);
        if worst >= self.duplicate_window {
            return Err(ConfigError::ScheduleOutlastsWindow {
                worst,
                attempts: self.retry.max_retries + 1,
                attempt_timeout: self.attempt_timeout,
                window: self.duplicate_window,
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
            attempt_timeout: Duration::from_secs(40),
            ..PublisherConfig::default()
        };
        let err = config.validate().expect_err("4 x 40 s > 2 min");
        assert!(matches!(
            err,
            ConfigError::ScheduleOutlastsWindow { attempts: 4, .. }
        ));
        assert!(err.to_string().contains("duplicate window"), "{err}");
    }

    #[test]
    fn nonsense_settings_are_refused() {
        for config in [
            PublisherConfig {
                max_in_flight: 0,
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
}
