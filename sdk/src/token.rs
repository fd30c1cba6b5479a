//! Subject tokens that come from data: organization ids and entity keys.
//!
//! Every token built from data goes through [`check_token`], which takes
//! an allow-list, not a deny-list: ASCII letters and digits and
//! [`TOKEN_PUNCTUATION`] (`-`, `_`, `:`, `@`, `+`, `=`, `~`), at most
//! [`MAX_TOKEN_LEN`] bytes, not starting with `$`.
//!
//! NATS itself only forbids `.`, `*`, `>` and whitespace in a token, and
//! async-nats only rejects whitespace; but a tenant id is a permission
//! boundary, and Unicode offers ids that print alike and are different
//! tenants: `org-42` and `org-42` followed by U+200B (zero width space),
//! bidirectional overrides (U+202E) that reorder what a log line shows, and
//! letters from other scripts that look like Latin ones. ASCII letters,
//! digits and a few punctuation marks have none of these. The same rule
//! applies to organization ids and entity keys when publishing, to those
//! read back from a message's subject and headers when consuming, and (with
//! [`check_group`], narrower still) to consumer group names.
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The longest data token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 128;

/// The key token used on subjects of event types that have no entity key.
pub const NO_KEY: &str = "_";

/// Why a string cannot be a subject token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct InvalidToken {
    /// What the token was for (`organization id`, `entity key`).
    pub what: &'static str,
    /// The rejected value (control characters escaped by `Debug`).
    pub value: String,
    /// What is wrong and what is allowed.
    pub reason: String,
}

/// Checks that `value` can be one NATS subject token.
pub fn check_token(what: &'static str, value: &str) -> Result<(), InvalidToken> {
    let fail = |reason: String| {
        Err(InvalidToken {
            what,
            value: value.to_string(),
            reason,
        })
    };
    if value.is_empty() {
        return fail("it is empty".into());
    }
    if value.len() > MAX_TOKEN_LEN {
        return fail(format!(
            "it is {} bytes; at most {MAX_TOKEN_LEN}",
            value.len()
        ));
    }
    if value.starts_with('$') {
        return fail("a leading '$' is reserved for NATS system subjects".into());
    }
    if let Some(c) = value.chars().find(|c| !is_token_char(*c)) {
        return fail(format!(
            "it contains {c:?} ({}); use ASCII letters, digits and {}",
            code_point(c),
            TOKEN_PUNCTUATION
                .iter()
                .map(|p| format!("'{p}'"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    Ok(())
}

/// The punctuation a data token may hold besides ASCII letters and digits.
pub const TOKEN_PUNCTUATION: [char; 7] = ['-', '_', ':', '@', '+', '=', '~'];

/// Whether `c` may appear in a data token (see the [module](self) docs).
pub fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || TOKEN_PUNCTUATION.contains(&c)
}

/// `U+200B`: the code point, for messages about invisible characters.
fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// Checks a consumer group name: a subject token of ASCII letters, digits,
/// `-` and `_`, at most 64 bytes (it names durable consumers and keys in
/// key-value buckets, which allow no more).
pub fn check_group(value: &str) -> Result<(), InvalidToken> {
    const WHAT: &str = "consumer group";
    check_token(WHAT, value)?;
    let fail = |reason: String| {
        Err(InvalidToken {
            what: WHAT,
            value: value.to_string(),
            reason,
        })
    };
    if value.len() > 64 {
        return fail(format!("it is {} bytes; at most 64", value.len()));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return fail(format!(
            "it contains {c:?}; use ASCII letters, digits, '-' and '_'"
        ));
    }
    Ok(())
}

/// A tenant's organization id, checked to be a valid subject token.
///
/// Required on every publish: it is a subject token, so consumers and
/// permissions can filter by tenant on the server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct OrganizationId(String);

impl OrganizationId {
    /// Checks and wraps an organization id.
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidToken> {
        let value = value.into();
        check_token("organization id", &value)?;
        Ok(Self(value))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrganizationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for OrganizationId {
    type Err = InvalidToken;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for OrganizationId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

/// Checks an entity key: a subject token other than the no-key marker `_`.
pub fn check_entity_key(key: &str) -> Result<(), InvalidToken> {
    check_token("entity key", key)?;
    if key == NO_KEY {
        return Err(InvalidToken {
            what: "entity key",
            value: key.to_string(),
            reason: format!("{NO_KEY:?} marks subjects of events without a key"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_plain_ascii_tokens() {
        for ok in ["analytics", "billing-v2", "team_a", "G1"] {
            assert!(check_group(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a.b", "a b", "café", "a:b", "$sys", &"g".repeat(65)] {
            let err = check_group(bad).expect_err(bad);
            assert_eq!(err.what, "consumer group");
        }
    }

    #[test]
    fn accepts_ordinary_ids() {
        for ok in [
            "org-42",
            "ORG_7",
            "0b6f3c1e-9d7a-4c55-8f3e-1a2b3c4d5e6f",
            "tenant:eu@acme+x=1~y",
            "a",
        ] {
            assert!(OrganizationId::new(ok).is_ok(), "{ok}");
        }
        assert!(OrganizationId::new("x".repeat(MAX_TOKEN_LEN)).is_ok());
    }

    #[test]
    fn rejects_every_character_that_breaks_a_subject() {
        let cases = [
            ("", "empty"),
            ("org.42", "'.'"),
            ("org*", "'*'"),
            ("org>", "'>'"),
            ("org 42", "' '"),
            ("org\t42", "'\\t'"),
            ("org\r\n42", "'\\r'"),
            ("org\u{0}42", "'\\0'"),
            ("org\u{7f}", "'\\u{7f}'"),
            ("org\u{a0}42", "'\\u{a0}'"),
            ("$SYS", "reserved"),
            ("org%41", "'%'"),
            ("org/42", "'/'"),
        ];
        for (bad, says) in cases {
            let err = OrganizationId::new(bad).expect_err(bad);
            assert!(err.to_string().contains(says), "{bad:?}: {err}");
            assert!(
                err.to_string().starts_with("invalid organization id"),
                "{err}"
            );
        }
        let long = "x".repeat(MAX_TOKEN_LEN + 1);
        assert!(OrganizationId::new(long).is_err());
    }

    #[test]
    fn invisible_bidirectional_and_lookalike_characters_are_refused() {
        let cases = [
            ("org-42\u{200b}", "U+200B"),
            ("org-\u{202e}24", "U+202E"),
            ("\u{feff}org-42", "U+FEFF"),
            ("org\u{ad}-42", "U+00AD"),
            ("org-42\u{2066}", "U+2066"),
            ("\u{43e}rg-42", "U+043E"),
            ("ünïcode", "U+00FC"),
            ("org\u{301}", "U+0301"),
        ];
        for (bad, code) in cases {
            let err = OrganizationId::new(bad).expect_err(bad);
            assert!(err.to_string().contains(code), "{bad:?}: {err}");
            let err = check_entity_key(bad).expect_err(bad);
            assert_eq!(err.what, "entity key");
            assert!(check_group(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn entity_keys_cannot_be_the_no_key_marker() {
        assert!(check_entity_key("u-123").is_ok());
        let err = check_entity_key("_").expect_err("reserved");
        assert!(err.to_string().contains("events without a key"), "{err}");
        assert!(check_entity_key("a.b").is_err());
    }

    #[test]
    fn deserializing_checks_the_token() {
        let ok: OrganizationId = serde_json::from_str("\"org-1\"").expect("valid");
        assert_eq!(ok.as_str(), "org-1");
        let err = serde_json::from_str::<OrganizationId>("\"a.b\"").expect_err("invalid");
        assert!(err.to_string().contains("'.'"), "{err}");
    }
}
