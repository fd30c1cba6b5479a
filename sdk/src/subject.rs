//! Subjects: `EVENT_TYPE.ORGANIZATION.KEY`, five tokens for every event.
//!
//! | filter | matches |
//! |---|---|
//! | `auth.user.created.>` | one type, every tenant |
//! | `auth.user.created.org-42.>` | one type, one tenant |
//! | `auth.*.*.org-42.>` | one service, one tenant |
//! | `*.*.*.org-42.>` | one tenant, everything (a permission boundary) |
//! | `auth.user.updated.org-42.u-123` | one entity |
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
    let key = match key {
        Some(key) => {
            check_entity_key(key)?;
            key
        }
        None => NO_KEY,
    };
    let organization = organization.as_str();
    let mut subject = String::with_capacity(event_type.len() + organization.len() + key.len() + 2);
    subject.push_str(event_type);
    subject.push('.');
    subject.push_str(organization);
    subject.push('.');
    subject.push_str(key);
    Ok(subject)
}

/// The filter subject for events of one type, optionally of one tenant.
pub fn filter_for_type(event_type: &str, organization: Option<&OrganizationId>) -> String {
    match organization {
        Some(org) => format!("{event_type}.{org}.>"),
        None => format!("{event_type}.>"),
    }
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
        Ok(())
    }
}
