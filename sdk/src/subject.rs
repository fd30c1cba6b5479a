//! Subjects: `EVENT_TYPE.ORGANIZATION.KEY`, five tokens for every event.
//!
//! | filter | matches |
//! |---|---|
//! | `auth.user.created.>` | one type, every tenant |
//! | `auth.user.created.org-42.>` | one type, one tenant |
//! | `auth.*.*.org-42.>` | one service, one tenant |
//! | `*.*.*.org-42.>` | one tenant, everything (a permission boundary) |
//! | `auth.user.updated.org-42.u-123` | one entity |
use crate::envelope::Envelope;
use crate::event::DomainEvent;
use crate::token::{check_entity_key, InvalidToken, OrganizationId, NO_KEY};

/// The subject an event of type `E` is published on.
pub fn subject_of<E: DomainEvent>(
    organization: &OrganizationId,
    event: &E,
) -> Result<String, InvalidToken> {
    subject_with_key(E::EVENT_TYPE, organization, event.entity_key().as_deref())
}

/// The subject of an event of this type, tenant and entity key:
/// `EVENT_TYPE.ORGANIZATION.KEY`, or `_` for the key of an event without one.
pub(crate) fn subject_with_key(
    event_type: &str,
    organization: &OrganizationId,
    key: Option<&str>,
) -> Result<String, InvalidToken> {
    let [event_type, organization, key] = subject_parts(event_type, organization.as_str(), key)?;
    let mut subject = String::with_capacity(event_type.len() + organization.len() + key.len() + 2);
    subject.push_str(event_type);
    subject.push('.');
    subject.push_str(organization);
    subject.push('.');
    subject.push_str(key);
    Ok(subject)
}

/// The three parts of an event's subject, as the publisher builds it: the
/// type, the organization, and the entity key (checked) or `_`. The one
/// place both [`subject_with_key`] and [`check_subject`] take them from, so
/// what is published and what is accepted cannot drift apart.
fn subject_parts<'a>(
    event_type: &'a str,
    organization: &'a str,
    key: Option<&'a str>,
) -> Result<[&'a str; 3], InvalidToken> {
    let key = match key {
        Some(key) => {
            check_entity_key(key)?;
            key
        }
        None => NO_KEY,
    };
    Ok([event_type, organization, key])
}

/// A message whose subject says something else than its body: it is not
/// handled (a subscriber dead-letters it as poison, a replay skips it).
///
/// Permissions and tenant filters work on subjects, handlers on bodies, so
/// the two must name the same type, tenant and entity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("subject {subject} does not match the body: the subject says {what} {subject_value}, the body says {body_value}")]
pub struct SubjectMismatch {
    /// The message's subject.
    pub subject: String,
    /// What differs: `event type`, `organization` or `entity key`.
    pub what: &'static str,
    /// The subject's token(s) for it.
    pub subject_value: String,
    /// The body's value for it (`_` for no entity key).
    pub body_value: String,
}

/// Checks that `subject` is the subject the publisher builds from the
/// envelope: its type, organization and key tokens equal the body's
/// `type`, `organizationid` and `subject` (`_` without one).
///
/// # Errors
/// The first part that differs, naming both values.
pub fn check_subject(subject: &str, envelope: &Envelope) -> Result<(), SubjectMismatch> {
    let mismatch = |what: &'static str, subject_value: &str, body_value: &str| SubjectMismatch {
        subject: subject.to_string(),
        what,
        subject_value: subject_value.to_string(),
        body_value: body_value.to_string(),
    };
    let body_key = envelope.subject.as_deref();
    let [event_type, organization, key] = subject_parts(
        &envelope.event_type,
        envelope.organization_id.as_str(),
        body_key,
    )
    .map_err(|e| mismatch("entity key", subject_key(subject), &e.to_string()))?;
    // `TYPE.ORG.KEY`, where the type has dots of its own: split from the end.
    let mut tokens = subject.rsplitn(3, '.');
    let (found_key, found_organization, found_type) = (
        tokens.next().unwrap_or_default(),
        tokens.next().unwrap_or_default(),
        tokens.next().unwrap_or_default(),
    );
    if found_type != event_type {
        return Err(mismatch("event type", found_type, event_type));
    }
    if found_organization != organization {
        return Err(mismatch("organization", found_organization, organization));
    }
    if found_key != key {
        return Err(mismatch("entity key", found_key, key));
    }
    Ok(())
}

/// The last token of a subject.
fn subject_key(subject: &str) -> &str {
    subject.rsplit('.').next().unwrap_or_default()
}

/// The filter subject for events of one type, optionally of one tenant.
pub fn filter_for_type(event_type: &str, organization: Option<&OrganizationId>) -> String {
    match organization {
        Some(org) => format!("{event_type}.{org}.>"),
        None => format!("{event_type}.>"),
    }
}

/// The event type a filter made by [`filter_for_type`] selects: its first
/// three tokens, or `None` for a filter with fewer.
pub fn filter_event_type(filter: &str) -> Option<&str> {
    let end = filter.match_indices('.').nth(2)?.0;
    Some(&filter[..end])
}

/// The number of tokens every event subject has.
pub const SUBJECT_TOKENS: usize = 5;

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Keyed {
        id: String,
    }
    impl DomainEvent for Keyed {
        const EVENT_TYPE: &'static str = "auth.user.created";
        const SCHEMA_VERSION: u32 = 1;
        const STREAM: &'static str = "AUTH_EVENTS";
        const SCHEMA: &'static str = "{}";
        const SCHEMA_URI: &'static str = "urn:test";
        const KEY_FIELD: Option<&'static str> = Some("id");
        fn entity_key(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(&self.id))
        }
    }

    #[derive(Serialize, Deserialize)]
    struct Unkeyed;
    impl DomainEvent for Unkeyed {
        const EVENT_TYPE: &'static str = "analytics.report.generated";
        const SCHEMA_VERSION: u32 = 1;
        const STREAM: &'static str = "ANALYTICS_EVENTS";
        const SCHEMA: &'static str = "{}";
        const SCHEMA_URI: &'static str = "urn:test";
    }

    #[test]
    fn subjects_have_five_tokens_with_or_without_a_key() -> Result<(), InvalidToken> {
        let org = OrganizationId::new("org-42")?;
        let keyed = subject_of(&org, &Keyed { id: "u-1".into() })?;
        assert_eq!(keyed, "auth.user.created.org-42.u-1");
        let unkeyed = subject_of(&org, &Unkeyed)?;
        assert_eq!(unkeyed, "analytics.report.generated.org-42._");
        for s in [keyed, unkeyed] {
            assert_eq!(s.split('.').count(), SUBJECT_TOKENS);
        }
        Ok(())
    }

    #[test]
    fn a_key_that_is_not_a_token_is_an_error() -> Result<(), InvalidToken> {
        let org = OrganizationId::new("org-42")?;
        let err = subject_of(&org, &Keyed { id: "a b".into() }).expect_err("space");
        assert_eq!(err.what, "entity key");
        Ok(())
    }

    fn envelope(event_type: &str, org: &str, key: Option<&str>) -> Envelope {
        Envelope {
            id: uuid::Uuid::nil(),
            source: "/test".into(),
            event_type: event_type.into(),
            time: time::OffsetDateTime::UNIX_EPOCH,
            dataschema: None,
            subject: key.map(str::to_string),
            organization_id: OrganizationId::new(org).expect("valid"),
            schema_version: 1,
            extensions: Default::default(),
            data: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_subject_must_be_the_one_built_from_the_body() {
        let body = envelope("auth.user.created", "org-A", Some("u-1"));
        assert_eq!(check_subject("auth.user.created.org-A.u-1", &body), Ok(()));
        let unkeyed = envelope("analytics.report.generated", "org-A", None);
        assert_eq!(
            check_subject("analytics.report.generated.org-A._", &unkeyed),
            Ok(())
        );
        let cases = [
            (
                "auth.user.created.org-B.u-1",
                "the subject says organization org-B, the body says org-A",
            ),
            (
                "auth.user.deleted.org-A.u-1",
                "the subject says event type auth.user.deleted, the body says auth.user.created",
            ),
            (
                "auth.user.created.org-A.u-2",
                "the subject says entity key u-2, the body says u-1",
            ),
            (
                "auth.user.created.org-A._",
                "the subject says entity key _, the body says u-1",
            ),
            (
                "auth.user.created.u-1",
                "the subject says event type auth.user",
            ),
        ];
        for (subject, says) in cases {
            let err = check_subject(subject, &body).expect_err(subject);
            assert!(err.to_string().contains(says), "{subject}: {err}");
        }
        let err = check_subject(
            "auth.user.created.org-A._",
            &envelope("auth.user.created", "org-A", Some("_")),
        )
        .expect_err("the no-key marker is no key");
        assert_eq!(err.what, "entity key");
    }

    #[test]
    fn filters() -> Result<(), InvalidToken> {
        let org = OrganizationId::new("org-42")?;
        assert_eq!(
            filter_for_type("auth.user.created", None),
            "auth.user.created.>"
        );
        assert_eq!(
            filter_for_type("auth.user.created", Some(&org)),
            "auth.user.created.org-42.>"
        );
        for filter in ["auth.user.created.>", "auth.user.created.org-42.>"] {
            assert_eq!(filter_event_type(filter), Some("auth.user.created"));
        }
        assert_eq!(filter_event_type("auth.>"), None);
        Ok(())
    }
}
