//! Property-based fuzzing on stable Rust: seeded generators feed the
//! parsers of untrusted input and assert that none of them panics.
//!
//! Targets: the envelope decoder (body and headers), the dead-letter
//! record's headers, subject and token parsing, the registry loader and
//! linter (`tidings.toml` and schema files), and the compatibility engine.
//! Inputs are mutations of valid ones (a real envelope, the seed registry's
//! schemas) mixed with random JSON and random bytes.
//!
//! `TIDINGS_FUZZ_CASES` is the number of cases per target (the registry
//! target, each case a whole registry, gets a tenth); unset, the suite runs
//! a short campaign of a few seconds (3,000 envelope and token cases, 300
//! compatibility and 20 registry cases). `TIDINGS_FUZZ_SEED` fixes the seed
//! (default: a fixed one). `scripts/fuzz CASES` runs a long campaign in
//! release mode.
//! A panic names the target, the seed and the case, so it can be replayed.
#![allow(clippy::print_stdout)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::str::FromStr;
use std::time::Instant;

use async_nats::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};
use tidings::envelope::Envelope;
use tidings_codegen::compat::{check_versions, diff, Mode, Policy};
use tidings_codegen::registry::{self, Source};

/// A 64-bit LCG, as in codegen/tests/compat_corpus.rs: reproducible from
/// its seed, no dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next()).unwrap_or(0) % n.max(1)
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())].clone()
    }
}

/// Fragments that parsers tend to trip over.
const PIECES: &[&str] = &[
    "",
    "a",
    "org-1",
    "u-7",
    ".",
    "..",
    "*",
    ">",
    " ",
    "\t",
    "\u{0}",
    "\u{7f}",
    "é",
    "😀",
    "$",
    "%",
    "%2",
    "%zz",
    "%C3%A9",
    "%00",
    "\\",
    "\"",
    "'",
    ":",
    "-",
    "_",
    "/",
    "#",
    "{",
    "}",
    "[",
    "]",
    "1",
    "-1",
    "0",
    "1e999",
    "NaN",
    "true",
    "null",
    "v1",
    "v0",
    ".v2.json",
    "auth",
    "dlq",
    "auth.user.created",
    "2025-12-09T10:15:00Z",
    "2025-13-40T99:99:99Z",
    "1.0",
    "0.3",
    "0190f3a5-1111-7abc-8def-000000000001",
    "not-a-uuid",
    "#/$defs/X",
    "../common/ids.json",
    "7d",
    "2m",
    "0s",
    "1GiB",
    "-5",
    "18446744073709551616",
];

fn random_string(r: &mut Lcg) -> String {
    let mut s = String::new();
    for _ in 0..r.below(6) {
        if r.chance(10) {
            s.push(char::from_u32(r.below(0x11_0000) as u32).unwrap_or('?'));
        } else {
            s.push_str(r.pick(PIECES));
        }
    }
    if r.chance(2) {
        s = s.repeat(200);
    }
    s
}

fn random_json(r: &mut Lcg, depth: usize) -> Value {
    match r.below(if depth == 0 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(r.chance(50)),
        2 => json!(r.pick(&[0.0, -1.0, 1.5, 1e300, -0.0, 4_294_967_296.0])),
        3 => json!(r.next() as i64 - (1 << 30)),
        4 => Value::String(random_string(r)),
        5 => Value::Array((0..r.below(4)).map(|_| random_json(r, depth - 1)).collect()),
        _ => {
            let mut map = serde_json::Map::new();
            for _ in 0..r.below(5) {
                map.insert(random_string(r), random_json(r, depth - 1));
            }
            Value::Object(map)
        }
    }
}

/// Replaces, removes or adds one member somewhere in `value`.
fn mutate(r: &mut Lcg, value: &mut Value, keys: &[&str]) {
    match value {
        Value::Object(map) if !map.is_empty() && r.chance(70) => {
            let key = map
                .keys()
                .nth(r.below(map.len()))
                .cloned()
                .unwrap_or_default();
            match r.below(4) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    if let Some(inner) = map.get_mut(&key) {
                        mutate(r, inner, keys);
                    }
                }
                _ => {
                    map.insert(key, random_json(r, 2));
                }
            }
        }
        Value::Object(map) => {
            map.insert(r.pick(keys).to_string(), random_json(r, 2));
        }
        Value::Array(items) if !items.is_empty() => {
            let i = r.below(items.len());
            mutate(r, &mut items[i], keys);
        }
        other => *other = random_json(r, 2),
    }
}

/// Raw bytes from JSON: serialized whole, cut short, or with bytes flipped.
fn bytes_of(r: &mut Lcg, value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(value).unwrap_or_default();
    match r.below(10) {
        0 => bytes.truncate(r.below(bytes.len() + 1)),
        1 if !bytes.is_empty() => {
            let i = r.below(bytes.len());
            bytes[i] = r.next() as u8;
        }
        2 => bytes = (0..r.below(64)).map(|_| r.next() as u8).collect(),
        _ => {}
    }
    bytes
}

fn valid_envelope() -> Value {
    json!({
        "specversion": "1.0",
        "id": "0190f3a5-1111-7abc-8def-000000000001",
        "source": "/tidings/auth",
        "type": "auth.user.created",
        "time": "2025-12-09T10:15:00Z",
        "datacontenttype": "application/json",
        "dataschema": "https://schemas.tidings.dev/auth/user.created.v2.json",
        "subject": "u-7",
        "organizationid": "org-1",
        "schemaversion": 2,
        "data": {"user_id": "u-7", "email": "a@example.com"}
    })
}

const ENVELOPE_KEYS: &[&str] = &[
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "datacontenttype",
    "dataschema",
    "subject",
    "organizationid",
    "schemaversion",
    "data",
    "data_base64",
    "traceparent",
    "X",
];

const HEADER_NAMES: &[&str] = &[
    "ce-id",
    "ce-type",
    "ce-time",
    "ce-source",
    "ce-specversion",
    "ce-organizationid",
    "ce-subject",
    "ce-schemaversion",
    "ce-dataschema",
    "CE-ID",
    "Ce-Time",
    "Nats-Msg-Id",
    "content-type",
    "Tidings-Dlq-Stream",
    "Tidings-Dlq-Sequence",
    "Tidings-Dlq-Subject",
    "Tidings-Dlq-Group",
    "Tidings-Dlq-Deliveries",
    "Tidings-Dlq-Reason",
    "Tidings-Dlq-Error",
    "Tidings-Dlq-First-Failure",
    "Tidings-Dlq-Last-Failure",
    "Tidings-Dlq-Msg-Id",
    "Tidings-Redrive-Count",
    "Tidings-Dlq-Truncated",
    "X-Other",
];

fn random_headers(r: &mut Lcg) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for _ in 0..r.below(8) {
        let name = if r.chance(90) {
            r.pick(HEADER_NAMES).to_string()
        } else {
            random_string(r)
        };
        let value = match r.below(3) {
            0 => r.pick(PIECES).to_string(),
            1 => random_string(r),
            _ => valid_envelope()[r.pick(ENVELOPE_KEYS)]
                .as_str()
                .unwrap_or("2")
                .to_string(),
        };
        // Names and values the client library itself would refuse never
        // reach our parsers.
        if let (Ok(name), Ok(value)) = (HeaderName::from_str(&name), HeaderValue::from_str(&value))
        {
            headers.append(name, value);
        }
    }
    headers
}

fn fuzz_envelope(r: &mut Lcg) {
    let mut envelope = valid_envelope();
    for _ in 0..r.below(4) {
        mutate(r, &mut envelope, ENVELOPE_KEYS);
    }
    let body = bytes_of(r, &envelope);
    let headers = random_headers(r);
    let _ = Envelope::decode(&body);
    if let Ok(decoded) = Envelope::decode_message(Some(&headers), &body) {
        let subject = random_subject(r);
        let _ = tidings::subject::check_subject(&subject, &decoded);
    }
    let _ = tidings::dlq::FailureRecord::read(&headers);
}

fn random_subject(r: &mut Lcg) -> String {
    (0..r.below(7))
        .map(|_| {
            if r.chance(70) {
                r.pick(&[
                    "auth", "user", "created", "org-1", "u-7", "dlq", "*", ">", "",
                ])
                .to_string()
            } else {
                random_string(r)
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn fuzz_tokens(r: &mut Lcg) {
    let text = if r.chance(50) {
        random_subject(r)
    } else {
        random_string(r)
    };
    let _ = tidings::token::check_token("organization id", &text);
    let _ = tidings::token::check_group(&text);
    let _ = tidings::token::check_entity_key(&text);
    let _ = tidings::OrganizationId::new(text.clone());
    let _ = tidings::subject::filter_event_type(&text);
    let _ = tidings::dlq::dlq_subject(&text, &random_subject(r), r.next());
    use registry::event_type::{
        parse_file_name, pattern_covers, patterns_overlap, subject_pattern_problem, token_problem,
    };
    let _ = token_problem(&text);
    let _ = subject_pattern_problem(&text);
    let other = random_subject(r);
    let _ = patterns_overlap(&text, &other);
    let _ = registry::config::parse_duration(&text);
    if let Some((ty, _)) = parse_file_name(&format!("{text}.v{}.json", r.below(3))) {
        let _ = pattern_covers(&other, &ty);
    }
    let _ = parse_file_name(&text);
}

/// The seed registry's files, read once.
fn seed_registry() -> Source {
    Source::from_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas"))
        .expect("the seed registry is readable")
}

const SCHEMA_KEYS: &[&str] = &[
    "type",
    "properties",
    "required",
    "items",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "$ref",
    "$defs",
    "if",
    "then",
    "else",
    "additionalProperties",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "contains",
    "prefixItems",
    "unevaluatedProperties",
    "x-event-type",
    "x-schema-version",
    "x-stream",
    "x-compatibility",
    "x-entity-key",
    "examples",
    "description",
    "$schema",
    "$id",
    "title",
    "default",
    "deprecated",
];

fn fuzz_registry(r: &mut Lcg, seed: &Source) {
    let mut source = seed.clone();
    let paths: Vec<String> = source.files.keys().cloned().collect();
    for _ in 0..1 + r.below(3) {
        let path = r.pick(&paths);
        let text = source.files.get(&path).cloned().unwrap_or_default();
        let new_text = if path.ends_with(".json") {
            match serde_json::from_str::<Value>(&text) {
                Ok(mut value) if r.chance(90) => {
                    for _ in 0..1 + r.below(3) {
                        mutate(r, &mut value, SCHEMA_KEYS);
                    }
                    String::from_utf8_lossy(&bytes_of(r, &value)).into_owned()
                }
                _ => random_string(r),
            }
        } else {
            // TOML: drop, duplicate or rewrite a line.
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            if !lines.is_empty() {
                let i = r.below(lines.len());
                match r.below(3) {
                    0 => {
                        lines.remove(i);
                    }
                    1 => {
                        let line = lines[i].clone();
                        lines.insert(i, line);
                    }
                    _ => {
                        let key = lines[i].split('=').next().unwrap_or("").to_string();
                        lines[i] = format!(
                            "{key}= {}",
                            r.pick(&["\"x\"", "1", "[]", "\"7d\"", "\"new\"", "-1", "{", "\"\""])
                        );
                    }
                }
            }
            lines.join("\n")
        };
        source.files.insert(path, new_text);
    }
    if r.chance(10) {
        source.files.insert(
            format!(
                "{}/{}.v{}.json",
                random_string(r),
                random_string(r),
                r.below(3)
            ),
            serde_json::to_string(&random_json(r, 3)).unwrap_or_default(),
        );
    }
    let loaded = registry::load::load(&source);
    let _ = loaded.findings.len();
    if let Some(text) = source.files.get("tidings.toml") {
        if let Ok(config) = registry::Config::parse(text) {
            let _ = config.resolve_streams(r.pick(&["dev", "production", "x"]));
        }
    }
}

fn random_schema(r: &mut Lcg, depth: usize) -> Value {
    let mut schema = serde_json::Map::new();
    for _ in 0..r.below(4) {
        let key = r.pick(SCHEMA_KEYS);
        let value = match key {
            "type" => {
                json!(r.pick(&["object", "string", "integer", "number", "array", "boolean", "null"]))
            }
            "properties" | "$defs" if depth > 0 => {
                let mut props = serde_json::Map::new();
                for _ in 0..r.below(3) {
                    props.insert(
                        r.pick(&["a", "b", "c"]).to_string(),
                        random_schema(r, depth - 1),
                    );
                }
                Value::Object(props)
            }
            "items"
            | "not"
            | "if"
            | "then"
            | "else"
            | "additionalProperties"
            | "contains"
            | "unevaluatedProperties"
                if depth > 0 =>
            {
                if r.chance(20) {
                    json!(r.chance(50))
                } else {
                    random_schema(r, depth - 1)
                }
            }
            "anyOf" | "oneOf" | "allOf" | "prefixItems" if depth > 0 => Value::Array(
                (0..r.below(3))
                    .map(|_| random_schema(r, depth - 1))
                    .collect(),
            ),
            "required" => json!([r.pick(&["a", "b", "c"])]),
            "enum" => Value::Array((0..r.below(3)).map(|_| random_json(r, 1)).collect()),
            "$ref" => json!(r.pick(&["#", "#/$defs/a", "#/properties/a", "#/nope", "other.json"])),
            "pattern" => json!(r.pick(&["^a", "[", "(?=x)", "\\d+", ".*", "^[a-z]{2,}$"])),
            _ if r.chance(30) => random_json(r, 1),
            _ => json!(r.pick(&[0, 1, 3, -1, 10])),
        };
        schema.insert(key.to_string(), value);
    }
    Value::Object(schema)
}

fn fuzz_compat(r: &mut Lcg) {
    let old = random_schema(r, 3);
    let mut new = old.clone();
    for _ in 0..1 + r.below(3) {
        if r.chance(50) {
            mutate(r, &mut new, SCHEMA_KEYS);
        } else {
            new = random_schema(r, 3);
        }
    }
    let policy = if r.chance(50) {
        Policy::Strict
    } else {
        Policy::Lenient
    };
    let _ = diff(&old, &new, policy);
    let third = random_schema(r, 2);
    let mode = r.pick(&[
        Mode::Full,
        Mode::FullTransitive,
        Mode::Backward,
        Mode::Forward,
    ]);
    let _ = check_versions(&[(1, &old), (2, &new), (3, &third)], mode, policy);
}

/// Runs `target` for `cases` seeded cases; returns the first panic's case
/// and message.
fn campaign(name: &str, seed: u64, cases: u64, mut target: impl FnMut(&mut Lcg)) {
    let started = Instant::now();
    // Panics are caught and reported below, with the case that caused them.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failure = None;
    for case in 0..cases {
        let case_seed = seed ^ case.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut r = Lcg(case_seed);
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| target(&mut r))) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failure = Some((case, case_seed, message));
            break;
        }
    }
    std::panic::set_hook(hook);
    if let Some((case, case_seed, message)) = failure {
        panic!("{name}: case {case} (case seed {case_seed:#x}) panicked: {message}");
    }
    println!(
        "fuzz {name}: {cases} cases, 0 panics, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The seed, and the cases: `TIDINGS_FUZZ_CASES` divided by `share`, or
/// the suite's `short` run.
fn settings(share: u64, short: u64) -> (u64, u64) {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    (
        env("TIDINGS_FUZZ_SEED").unwrap_or(0x0074_6964_696e_6773),
        env("TIDINGS_FUZZ_CASES").map_or(short, |cases| cases.div_ceil(share)),
    )
}

#[test]
fn the_envelope_and_header_decoders_never_panic() {
    let (seed, cases) = settings(1, 3_000);
    campaign("envelope+headers", seed, cases, fuzz_envelope);
}

#[test]
fn subject_and_token_parsing_never_panics() {
    let (seed, cases) = settings(1, 3_000);
    campaign("subjects+tokens", seed, cases, fuzz_tokens);
}

#[test]
fn the_registry_loader_and_linter_never_panic() {
    // Each case loads the whole seed registry: a tenth of the cases.
    let (seed, cases) = settings(10, 20);
    let registry = seed_registry();
    campaign("registry", seed, cases, |r| fuzz_registry(r, &registry));
}

#[test]
fn the_compatibility_engine_never_panics() {
    let (seed, cases) = settings(1, 300);
    campaign("compat", seed, cases, fuzz_compat);
}

/// The generators produce what they should: valid envelopes decode, so the
/// decoder is not only ever fed garbage.
#[test]
fn the_generators_reach_past_the_first_error() {
    let mut r = Lcg(1);
    let valid = serde_json::to_vec(&valid_envelope()).expect("serializable");
    assert!(Envelope::decode(&valid).is_ok());
    let mut decoded = 0;
    for _ in 0..500 {
        let mut envelope = valid_envelope();
        mutate(&mut r, &mut envelope, ENVELOPE_KEYS);
        decoded += usize::from(Envelope::decode(&bytes_of(&mut r, &envelope)).is_ok());
    }
    assert!(
        (50..450).contains(&decoded),
        "{decoded} of 500 mutated envelopes decoded"
    );
    let mut compared = 0;
    for _ in 0..500 {
        let (a, b) = (random_schema(&mut r, 3), random_schema(&mut r, 3));
        compared += usize::from(diff(&a, &b, Policy::Strict).is_ok());
    }
    assert!(compared > 100, "{compared} of 500 schema pairs compared");
    let seed = seed_registry();
    assert!(registry::load::load(&seed)
        .findings
        .iter()
        .all(|f| f.severity != registry::Severity::Error));
}
