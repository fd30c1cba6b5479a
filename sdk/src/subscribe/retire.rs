//! Retiring event types from a consumer group: the one way its filter
//! narrows.
//!
//! [`Subscriber::start`](super::Subscriber::start) only widens the group's
//! filter (to the union of the types its instances handle), so that an
//! instance started without a handler another instance has (the old
//! version during a rolling deploy) does not move the group past that
//! type's events. Once no instance handles a type any more, its events keep
//! being released by every instance (and warned about): retiring the type
//! removes it from the filter, and the group no longer receives it.
use async_nats::jetstream;

use super::{filters_of, SubscribeError};
use crate::subject::filter_event_type;
use crate::token::check_group;

/// Removes `event_types` from the filter of `group`'s consumer on `stream`
/// and returns the filter subjects removed (also logged). Events of those
/// types not yet handled are no longer delivered to the group.
///
/// # Errors
/// An invalid group name, a missing stream or consumer, a server error, or
/// a retirement that would leave the consumer without a filter (which
/// would mean every subject of the stream): delete the consumer instead.
pub async fn retire_types(
    js: &jetstream::Context,
    stream: &str,
    group: &str,
    event_types: &[&str],
) -> Result<Vec<String>, SubscribeError> {
    check_group(group).map_err(SubscribeError::Group)?;
    let failed = |detail: String| SubscribeError::Consumer {
        group: group.to_string(),
        stream: stream.to_string(),
        detail,
    };
    let handle = match js.get_stream(stream).await {
        Ok(handle) => handle,
        Err(e) if crate::streams::is_not_found(&e) => {
            return Err(SubscribeError::StreamMissing {
                stream: stream.to_string(),
                event_types: event_types.join(", "),
            })
        }
        Err(e) => return Err(failed(e.to_string())),
    };
    let info = handle
        .consumer_info(group)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let (retired, kept): (Vec<String>, Vec<String>) = filters_of(&info.config)
        .into_iter()
        .partition(|f| filter_event_type(f).is_some_and(|t| event_types.contains(&t)));
    if retired.is_empty() {
        tracing::info!(group, stream, event_types = ?event_types, "nothing to retire: the group does not receive these types");
        return Ok(retired);
    }
    if kept.is_empty() {
        return Err(failed(format!(
            "retiring {} would leave the consumer without a filter, which means every subject of the stream: delete the consumer instead",
            event_types.join(", ")
        )));
    }
    let mut config = info.config.clone();
    config.filter_subject = String::new();
    config.filter_subjects = kept;
    handle
        .update_consumer(config)
        .await
        .map_err(|e| failed(e.to_string()))?;
    tracing::warn!(group, stream, retired = ?retired, "event types retired: the group no longer receives their events");
    Ok(retired)
}
