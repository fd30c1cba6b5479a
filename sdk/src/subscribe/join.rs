//! Joining a group's durable consumer on one stream: creating it, or
//! widening the one other instances made, without ever narrowing it.
//!
//! JetStream has no compare-and-set for consumers, and its create-or-update
//! replaces the whole configuration. An instance that took a consumer for
//! absent (a lookup whose answer was lost, or another instance creating it
//! at the same moment) and created it with its own filter would move the
//! group past every event of the types only other instances handle. So a
//! consumer is only created when it is absent (a strict create, which the
//! server refuses if another instance got there first), changed only with
//! an update of the configuration just read (filters: the union), and left
//! alone when it already has everything this instance needs. A request
//! without an answer is not taken for a refusal: the consumer is read again
//! and the step retried.
//!
//! What this cannot close: two instances that each add a different new
//! type in the same instant (each read the consumer before the other's
//! update) can leave one of the new types out until that instance starts
//! again. Types the consumer already had are never dropped.

use std::collections::BTreeSet;

use async_nats::jetstream::consumer::pull::Config;
use async_nats::jetstream::consumer::{self, FromConsumer, PullConsumer};
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::stream::{ConsumerCreateStrictErrorKind, ConsumerUpdateErrorKind};
use async_nats::jetstream::{self, stream::Stream};

use super::{covers, filter_set, filters_of};

/// How many times [`join`] reads the consumer and acts on what it read
/// before it gives up: each round ends early on an answer that settles it,
/// and goes again after a request without an answer or a race another
/// instance won.
const ROUNDS: u32 = 5;

/// The pause before the second round, doubling for each round after it.
const PAUSE: std::time::Duration = std::time::Duration::from_millis(25);

/// Why joining the group's consumer failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JoinError {
    /// The server refused to say whether the consumer exists.
    #[error("looking the consumer up failed: {0}")]
    Lookup(String),
    /// The server refused to create the consumer.
    #[error("creating the consumer failed: {0}")]
    Create(String),
    /// The server refused to update the consumer.
    #[error("updating the consumer failed: {0}")]
    Update(String),
    /// The server's configuration cannot be read back as a pull consumer's.
    #[error("the consumer on the server is not a pull consumer: {0}")]
    NotPull(String),
    /// Every round timed out or lost a race.
    #[error("no settled answer after {ROUNDS} attempts (last: {last}); is the server (or its JetStream leader) reachable?")]
    Unsettled {
        /// What went wrong last.
        last: String,
    },
}

/// What [`join`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Joined {
    /// The consumer was absent and this instance created it.
    Created,
    /// The consumer existed and this instance changed it (added filters,
    /// new settings).
    Updated,
    /// The consumer existed with everything this instance needs.
    Unchanged,
}

/// Joins the consumer `wanted` describes (its durable name, settings, this
/// instance's filters, and the deliver policy for a consumer created now)
/// on `stream`, as the module says.
pub(crate) async fn join(
    js: &jetstream::Context,
    stream: &Stream,
    wanted: &Config,
) -> Result<(PullConsumer, Joined), JoinError> {
    let name = wanted.durable_name.clone().unwrap_or_default();
    let ours = filters(wanted);
    let mut last = String::new();
    for round in 0..ROUNDS {
        if round > 0 {
            // An answer that came at once (a consumer without a leader, a
            // race lost) is worth a moment before the next round.
            tokio::time::sleep(PAUSE.saturating_mul(1 << (round - 1))).await;
        }
        let existing = match stream.consumer_info(&name).await {
            Ok(info) => Some(info),
            Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => None,
            Err(e) if unanswered_lookup(e.kind()) => {
                last = format!("looking the consumer up: {e}");
                tracing::warn!(consumer = %name, error = %e, "no answer to the consumer lookup; asking again");
                continue;
            }
            Err(e) => return Err(JoinError::Lookup(e.to_string())),
        };
        let Some(info) = existing else {
            match stream.create_consumer_strict(wanted.clone()).await {
                Ok(created) => return Ok((created, Joined::Created)),
                Err(e) => match e.kind() {
                    // Another instance created it first, or the answer was
                    // lost: read it again.
                    ConsumerCreateStrictErrorKind::AlreadyExists
                    | ConsumerCreateStrictErrorKind::TimedOut => {
                        last = format!("creating the consumer: {e}");
                        tracing::info!(consumer = %name, error = %e, "the consumer create did not settle; reading the consumer again");
                        continue;
                    }
                    _ => return Err(JoinError::Create(e.to_string())),
                },
            }
        };
        let before = filters_of(&info.config);
        let others: Vec<&String> = before.difference(&ours).collect();
        if !others.is_empty() {
            tracing::info!(
                consumer = %name,
                stream = %info.stream_name,
                kept = ?others,
                "the group's consumer keeps filters this instance has no handler for (another instance handles them, or did): their events are left to the others; tidings::subscribe::retire_types drops a type no instance handles any more"
            );
        }
        let Some(update) = merge(&info.config, wanted).map_err(JoinError::NotPull)? else {
            let config = Config::try_from_consumer_config(info.config.clone())
                .map_err(|e| JoinError::NotPull(e.to_string()))?;
            return Ok((
                consumer::Consumer::new(config, info, js.clone()),
                Joined::Unchanged,
            ));
        };
        let added: Vec<&String> = update
            .filter_subjects
            .iter()
            .filter(|f| !before.contains(*f))
            .collect();
        if !added.is_empty() {
            tracing::info!(consumer = %name, stream = %info.stream_name, added = ?added, "the group's consumer now also receives these types");
        }
        match stream.update_consumer(update).await {
            Ok(updated) => return Ok((updated, Joined::Updated)),
            Err(e) => match e.kind() {
                // Deleted meanwhile, or the answer was lost: read it again.
                ConsumerUpdateErrorKind::DoesNotExist | ConsumerUpdateErrorKind::TimedOut => {
                    last = format!("updating the consumer: {e}");
                    tracing::info!(consumer = %name, error = %e, "the consumer update did not settle; reading the consumer again");
                }
                _ => return Err(JoinError::Update(e.to_string())),
            },
        }
    }
    Err(JoinError::Unsettled { last })
}

/// Whether a lookup failed for want of an answer (worth asking again)
/// rather than by the server's refusal.
fn unanswered_lookup(kind: ConsumerInfoErrorKind) -> bool {
    matches!(
        kind,
        ConsumerInfoErrorKind::TimedOut
            | ConsumerInfoErrorKind::NoResponders
            | ConsumerInfoErrorKind::Offline
    )
}

/// The update that gives the server's consumer (`server`) this instance's
/// settings and filters while keeping its position, start policy and every
/// filter it has; `None` when it already has them all.
fn merge(server: &consumer::Config, wanted: &Config) -> Result<Option<Config>, String> {
    let before = filters_of(server);
    let ours = filters(wanted);
    let same_settings = server.description == wanted.description
        && server.ack_policy == wanted.ack_policy
        && server.ack_wait == wanted.ack_wait
        && server.max_deliver == wanted.max_deliver
        && server.max_ack_pending == wanted.max_ack_pending;
    let has_ours = covers(&before, &ours);
    if same_settings && has_ours {
        return Ok(None);
    }
    let mut update = Config::try_from_consumer_config(server.clone()).map_err(|e| e.to_string())?;
    update.description = wanted.description.clone();
    update.ack_policy = wanted.ack_policy;
    update.ack_wait = wanted.ack_wait;
    update.max_deliver = wanted.max_deliver;
    update.max_ack_pending = wanted.max_ack_pending;
    // No filter on the server means every subject of the stream: a filter
    // would narrow it.
    if !before.is_empty() {
        update.filter_subject = String::new();
        update.filter_subjects = before.union(&ours).cloned().collect();
    }
    Ok(Some(update))
}

/// The filters a configuration asks for.
fn filters(config: &Config) -> BTreeSet<String> {
    filter_set(&config.filter_subjects, &config.filter_subject)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn server(filters: &[&str]) -> consumer::Config {
        consumer::Config {
            durable_name: Some("g".into()),
            description: Some("Tidings consumer group g".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            max_deliver: -1,
            max_ack_pending: 1000,
            deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: 7 },
            filter_subjects: filters.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        }
    }

    fn wanted(filters: &[&str]) -> Config {
        Config {
            durable_name: Some("g".into()),
            description: Some("Tidings consumer group g".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            max_deliver: -1,
            max_ack_pending: 1000,
            deliver_policy: consumer::DeliverPolicy::New,
            filter_subjects: filters.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_consumer_with_every_filter_and_setting_is_left_alone() {
        assert_eq!(merge(&server(&["a.>", "b.>"]), &wanted(&["a.>"])), Ok(None));
    }

    #[test]
    fn the_update_is_the_union_and_keeps_the_start() {
        let update = merge(&server(&["a.>", "b.>"]), &wanted(&["c.>", "a.>"]))
            .expect("a pull consumer")
            .expect("an update");
        assert_eq!(update.filter_subjects, vec!["a.>", "b.>", "c.>"]);
        assert_eq!(
            update.deliver_policy,
            consumer::DeliverPolicy::ByStartSequence { start_sequence: 7 }
        );
    }

    #[test]
    fn new_settings_are_written_with_every_filter_kept() {
        let mut wanted = wanted(&["a.>"]);
        wanted.ack_wait = Duration::from_secs(5);
        let mut server = server(&[]);
        server.filter_subject = "b.>".into();
        let update = merge(&server, &wanted)
            .expect("a pull consumer")
            .expect("an update");
        assert_eq!(update.ack_wait, Duration::from_secs(5));
        assert_eq!(update.filter_subjects, vec!["a.>", "b.>"]);
        assert!(update.filter_subject.is_empty());
    }

    #[test]
    fn a_consumer_without_a_filter_is_not_narrowed() {
        assert_eq!(merge(&server(&[]), &wanted(&["a.>"])), Ok(None));
        let mut wanted = wanted(&["a.>"]);
        wanted.max_ack_pending = 10;
        let update = merge(&server(&[]), &wanted)
            .expect("a pull consumer")
            .expect("an update");
        assert!(update.filter_subjects.is_empty() && update.filter_subject.is_empty());
    }
}
