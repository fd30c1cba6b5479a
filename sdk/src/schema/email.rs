//! The `email` format, as jsonschema checks it, with a fast path for the
//! plain addresses that make up nearly every payload.
//!
//! jsonschema's own check parses the address with `email_address` (display
//! names, quoted local parts, domain literals, punycode labels) and took
//! about 0.6 µs of the 0.8 µs a whole `auth.user.created` payload's
//! validation cost, once when publishing and once when receiving. A plain
//! address (`dot-atom@host.name`, ASCII, within the length limits) is
//! accepted here in a single pass; anything else goes to jsonschema's check,
//! so the answer is always jsonschema's: the fast path only accepts what
//! that check accepts (a test compares the two on generated addresses).
use std::sync::OnceLock;

use serde_json::{json, Value};

/// The longest local part `email_address` accepts.
const LOCAL_PART_MAX: usize = 64;
/// The longest host name jsonschema's hostname check accepts.
const DOMAIN_MAX: usize = 253;
/// The longest label of a host name.
const LABEL_MAX: usize = 63;

/// Whether `text` is an email address in the sense of JSON Schema's `email`
/// format, exactly as jsonschema decides it.
pub(crate) fn is_valid(text: &str) -> bool {
    is_plain_address(text) || full_check(text)
}

/// jsonschema's own `email` check, through a validator of a schema holding
/// only that format (its checking function is not public).
fn full_check(text: &str) -> bool {
    static EMAIL: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    let validator = EMAIL.get_or_init(|| {
        jsonschema::options()
            .should_validate_formats(true)
            .build(&json!({ "format": "email" }))
            .ok()
    });
    match validator {
        Some(validator) => validator.is_valid(&Value::String(text.to_owned())),
        // Cannot happen (a fixed, valid schema); were it so, refusing is
        // the answer that lets nothing through unchecked.
        None => false,
    }
}

/// A plain address: one `@`; before it a dot-atom of ASCII `atext` of at
/// most 64 bytes; after it a host name of at most 253 bytes whose labels
/// are 1 to 63 letters, digits and hyphens, start and end with a letter or
/// digit, and have no `--` in their third and fourth places (the mark of an
/// IDNA label, which jsonschema decodes: left to it).
fn is_plain_address(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    is_plain_local_part(local) && is_plain_host(domain)
}

fn is_plain_local_part(local: &str) -> bool {
    let bytes = local.as_bytes();
    if bytes.is_empty() || bytes.len() > LOCAL_PART_MAX {
        return false;
    }
    let mut previous = b'.';
    for &b in bytes {
        let ok = if b == b'.' {
            previous != b'.'
        } else {
            is_ascii_atext(b)
        };
        if !ok {
            return false;
        }
        previous = b;
    }
    previous != b'.'
}

/// RFC 5322 `atext`, ASCII only.
fn is_ascii_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

fn is_plain_host(domain: &str) -> bool {
    domain.len() <= DOMAIN_MAX && domain.split('.').all(is_plain_label)
}

fn is_plain_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    bytes.len() <= LABEL_MAX
        && first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && !(bytes.len() >= 4 && bytes[2] == b'-' && bytes[3] == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// jsonschema's built-in check, the reference.
    fn builtin(text: &str) -> bool {
        full_check(text)
    }

    /// A host name of `len` bytes: labels of 63 letters and a shorter last.
    fn host(len: usize) -> String {
        let mut host = String::new();
        while len - host.len() > 64 {
            host.push_str(&"d".repeat(63));
            host.push('.');
        }
        host.push_str(&"e".repeat(len - host.len()));
        host
    }

    #[test]
    fn plain_addresses_take_the_fast_path() {
        for address in [
            "user-17@example.com",
            "a@b",
            "first.last+tag@mail.example.co.uk",
            "x_y!#$%&'*+/=?^`{|}~@a-b.c1",
            &format!("{}@{}.com", "l".repeat(64), "d".repeat(63)),
            &format!("u@{}", host(253)),
        ] {
            assert!(is_plain_address(address), "{address}");
            assert!(builtin(address), "{address}");
        }
    }

    #[test]
    fn what_the_fast_path_leaves_is_decided_by_jsonschema() {
        // Valid for jsonschema but not plain: the slow path accepts them.
        for address in [
            "\"quoted local\"@example.com",
            "user@[127.0.0.1]",
            "user@xn--bcher-kva.example",
        ] {
            assert!(!is_plain_address(address), "{address}");
            assert_eq!(is_valid(address), builtin(address), "{address}");
            assert!(is_valid(address), "{address}");
        }
        // Invalid ones stay invalid.
        for address in [
            "",
            "@",
            "user@",
            "@example.com",
            ".user@example.com",
            "user.@example.com",
            "us..er@example.com",
            "user@-example.com",
            "user@example-.com",
            "user@example..com",
            "user@example.com.",
            "user@ab--cd.com",
            "us er@example.com",
            &format!("{}@example.com", "l".repeat(65)),
            &format!("user@{}.com", "d".repeat(64)),
            &format!("u@{}", host(254)),
        ] {
            assert!(!is_valid(address), "{address}");
        }
    }

    /// The fast path never accepts what jsonschema refuses, on addresses
    /// built from the characters and lengths where the rules bite.
    #[test]
    fn the_fast_path_accepts_nothing_jsonschema_refuses() {
        const PIECES: &[&str] = &[
            "a", "Z", "0", "9", "-", "--", ".", "..", "@", "_", "+", "\"", " ", " <", ">", "[",
            "]", "é", "xn--", "\\", "(", ",", ":", ";", "!", "~", "`",
        ];
        let mut rng = fastrand::Rng::with_seed(17);
        let part = |rng: &mut fastrand::Rng, text: &mut String| {
            for _ in 0..rng.usize(1..6) {
                match rng.u8(..) {
                    // A run long enough to meet the length limits.
                    0..=29 => {
                        let n = [1, 2, 62, 63, 64, 65, 120, 250, 254][rng.usize(..9)];
                        text.push_str(&"k".repeat(n));
                    }
                    30..=159 => text.push_str(["a", "b9", ".", "c.d", "-e"][rng.usize(..5)]),
                    _ => text.push_str(PIECES[rng.usize(..PIECES.len())]),
                }
            }
        };
        let mut plain = 0;
        for _ in 0..200_000 {
            let mut text = String::new();
            part(&mut rng, &mut text);
            if rng.u8(..) < 230 {
                text.push('@');
            }
            part(&mut rng, &mut text);
            if is_plain_address(&text) {
                plain += 1;
                assert!(
                    builtin(&text),
                    "fast path accepted {text:?}, jsonschema refuses it"
                );
            }
        }
        // The generator must reach the fast path often enough to mean
        // something.
        assert!(plain > 1_000, "only {plain} plain addresses generated");
    }
}
