//! The JetStream control headers a copy must not carry: they are
//! instructions to the stream the original was published to
//! (`Nats-Expected-Stream: AUTH_EVENTS`, a TTL, a rollup, a batch, a
//! schedule), and DLQ_EVENTS (or, on a redrive, the original stream again)
//! would refuse the copy or act on it.
use async_nats::HeaderMap;

/// Header name prefixes that instruct the stream (matched without regard
/// to case).
const CONTROL_PREFIXES: [&str; 3] = ["nats-expected-", "nats-batch-", "nats-schedule"];

/// Header names that instruct the stream (matched without regard to case).
const CONTROL_NAMES: [&str; 4] = [
    "nats-ttl",
    "nats-rollup",
    "nats-incr",
    "nats-required-api-level",
];

/// Whether `name` is a JetStream control header.
pub(crate) fn is_control_header(name: &str) -> bool {
    let starts_with = |prefix: &str| {
        name.get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    };
    CONTROL_PREFIXES.iter().any(|p| starts_with(p))
        || CONTROL_NAMES.iter().any(|n| name.eq_ignore_ascii_case(n))
}

/// `headers` without the JetStream control headers.
pub(crate) fn without_control_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, values) in headers.iter() {
        let name: &str = name.as_ref();
        if is_control_header(name) {
            continue;
        }
        for value in values {
            out.append(name, value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_instructions_are_control_headers_and_the_rest_are_not() {
        for name in [
            "Nats-Expected-Stream",
            "nats-expected-last-subject-sequence",
            "Nats-TTL",
            "Nats-Rollup",
            "Nats-Batch-Id",
            "Nats-Batch-Sequence",
            "Nats-Schedule",
            "Nats-Schedule-Target",
            "Nats-Incr",
            "Nats-Required-Api-Level",
        ] {
            assert!(is_control_header(name), "{name}");
        }
        for name in [
            "Nats-Msg-Id",
            "ce-id",
            "content-type",
            "Tidings-Dlq-Error",
            "Nats",
        ] {
            assert!(!is_control_header(name), "{name}");
        }
    }

    #[test]
    fn only_control_headers_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Expected-Stream", "AUTH_EVENTS");
        headers.insert("Nats-TTL", "1h");
        headers.append("X-Kept", "1");
        headers.append("X-Kept", "2");
        let kept = without_control_headers(&headers);
        assert!(kept.get("Nats-Expected-Stream").is_none());
        assert!(kept.get("Nats-TTL").is_none());
        assert_eq!(kept.get_all("X-Kept").count(), 2);
    }
}
