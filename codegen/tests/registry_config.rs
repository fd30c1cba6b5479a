//! The repository's own `schemas/tidings.toml` says what the spec asks for.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use tidings_codegen::compat::{Mode, Policy};
use tidings_codegen::registry::config::{Config, Discard, Retention, Storage};

fn repo_config() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/tidings.toml");
    Config::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn streams_limits_and_profiles() {
    let c = repo_config();
    let names: Vec<&str> = c.streams.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "AI_AGENT_EVENTS",
            "ANALYTICS_EVENTS",
            "AUTH_EVENTS",
            "CATALOG_EVENTS",
            "DDMRP_EVENTS",
            "DLQ_EVENTS",
            "EXECUTION_EVENTS"
        ]
    );
    for profile in ["production", "dev"] {
        for s in c.resolve_streams(profile).unwrap() {
            // Dead letters are kept 30 days and refused rather than
            // evicted when the DLQ is full; event streams keep 7 days and
            // evict the oldest.
            let (days, discard) = if s.name == "DLQ_EVENTS" {
                (30, Discard::New)
            } else {
                (7, Discard::Old)
            };
            assert_eq!(
                s.max_age,
                Duration::from_secs(days * 24 * 3600),
                "{}",
                s.name
            );
            assert_eq!(s.max_bytes, 1 << 30);
            assert_eq!(s.discard, discard, "{}", s.name);
            assert_eq!(s.duplicate_window, Duration::from_secs(120));
            assert_eq!(s.storage, Storage::File);
            assert_eq!(s.retention, Retention::Limits, "{}", s.name);
            assert_eq!(s.replicas, if profile == "production" { 3 } else { 1 });
        }
    }
    assert_eq!(
        c.resolve_stream("AI_AGENT_EVENTS", "dev").unwrap().subjects,
        ["ai_agent.>"]
    );
    assert!(!c.streams["DLQ_EVENTS"].events);
    assert_eq!(c.compatibility.mode, Mode::FullTransitive);
    assert_eq!(c.compatibility.policy, Policy::Lenient);
}

#[test]
fn unknown_keys_and_bad_values_are_errors() {
    for bad in [
        "[streams.A]\nsubjects = [\"a.>\"]\nmax_agee = \"1d\"\n",
        "[stream_defaults]\nmax_age = \"7 days\"\nmax_bytes = \"1GiB\"\ndiscard = \"old\"\nduplicate_window = \"2m\"\nstorage = \"file\"\n",
        "[compatibility]\nmode = \"FULL\"\npolicy = \"loose\"\n",
        "[profiles.p]\nreplicas = -1\n",
    ] {
        assert!(Config::parse(bad).is_err(), "{bad}");
    }
}
