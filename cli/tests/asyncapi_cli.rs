//! `tidings asyncapi` on the repository's registry, its output checked by
//! an independent parser: the official JavaScript `@asyncapi/parser`
//! (installed by `scripts/asyncapi-parser`, which `scripts/test` runs, or
//! found through `TIDINGS_ASYNCAPI_MODULES`).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tidings(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The parser's node_modules: `TIDINGS_ASYNCAPI_MODULES`, else the copy
/// `scripts/asyncapi-parser` installed under `.tools/`.
fn parser_modules() -> PathBuf {
    if let Some(dir) = std::env::var_os("TIDINGS_ASYNCAPI_MODULES") {
        return dir.into();
    }
    let installed = repo().join(".tools/asyncapi-parser-3.6.6/node_modules");
    assert!(
        installed.join("@asyncapi/parser").is_dir(),
        "no AsyncAPI parser: run scripts/asyncapi-parser (scripts/test does) or set TIDINGS_ASYNCAPI_MODULES"
    );
    installed
}

/// The parser's verdict on `file`: its exit status and JSON report.
fn validate(file: &Path) -> (Option<i32>, serde_json::Value) {
    let o = Command::new("node")
        .arg(repo().join("tests/asyncapi/validate.cjs"))
        .arg(file)
        .env("TIDINGS_ASYNCAPI_MODULES", parser_modules())
        .output()
        .expect("node runs (Node.js >= 18 is needed for this test)");
    let report = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("validate.cjs printed no report ({e}): {}", text(&o)));
    (o.status.code(), report)
}

/// How many schema files and event types the registry has.
fn registry_counts() -> (usize, usize) {
    let mut files = 0;
    let mut types = std::collections::BTreeSet::new();
    for service in std::fs::read_dir(repo().join("schemas")).unwrap() {
        let service = service.unwrap().path();
        if !service.is_dir() || service.ends_with("common") {
            continue;
        }
        for file in std::fs::read_dir(&service).unwrap() {
            let name = file.unwrap().file_name().into_string().unwrap();
            if let Some((event_type, _)) = name.rsplit_once(".v") {
                files += 1;
                types.insert(event_type.to_string());
            }
        }
    }
    (files, types.len())
}

#[test]
fn the_registry_document_passes_the_official_asyncapi_parser() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("asyncapi.json");
    let o = tidings(&["asyncapi", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let (status, report) = validate(&out);
    assert_eq!(status, Some(0), "{report}");
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["warnings"], serde_json::json!([]), "{report}");
    let (files, types) = registry_counts();
    assert_eq!(report["channels"], types, "a channel per event type");
    assert_eq!(report["messages"], files, "a message per schema version");

    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let channel = &document["channels"]["auth.user.created"];
    assert_eq!(channel["address"], "auth.user.created.{organization}.{key}");
    assert_eq!(channel["x-tidings-stream"], "AUTH_EVENTS");
    // The shared UserId definition was bundled in and points into its component.
    let data = &document["components"]["schemas"]["auth.user.created.v1"];
    let user_id = data["properties"]["user_id"]["$ref"].as_str().unwrap();
    assert!(
        user_id.starts_with("#/components/schemas/auth.user.created.v1/"),
        "{user_id}"
    );
    // The analytics service's group consumes auth.user.created (tidings.toml).
    assert_eq!(
        document["operations"]["auth.user.created.receive.analytics"]["action"],
        "receive"
    );
}

#[test]
fn a_broken_document_is_refused_by_the_same_parser() {
    // The check above can fail: a dangling channel reference is an error.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("asyncapi.json");
    let o = tidings(&["asyncapi", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    document["operations"]["auth.user.created.send"]["channel"]["$ref"] =
        "#/channels/missing".into();
    std::fs::write(&out, document.to_string()).unwrap();
    let (status, report) = validate(&out);
    assert_eq!(status, Some(1), "{report}");
    assert!(
        report["errors"].to_string().contains("#/channels/missing"),
        "{report}"
    );
}

#[test]
fn check_fails_on_a_stale_document_and_passes_on_a_current_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("asyncapi.json");
    let out = out.to_str().unwrap();
    let o = tidings(&["asyncapi", "--out", out, "--check"]);
    assert_eq!(o.status.code(), Some(1), "missing: {}", text(&o));
    assert!(text(&o).contains("tidings asyncapi --out"), "{}", text(&o));

    assert_eq!(tidings(&["asyncapi", "--out", out]).status.code(), Some(0));
    let o = tidings(&["asyncapi", "--out", out, "--check"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    std::fs::write(out, "{}\n").unwrap();
    let o = tidings(&["asyncapi", "--out", out, "--check"]);
    assert_eq!(o.status.code(), Some(1), "stale: {}", text(&o));
    assert!(text(&o).contains("is stale"), "{}", text(&o));
}

#[test]
fn a_registry_that_does_not_load_is_an_error_naming_the_finding() {
    let dir = tempfile::tempdir().unwrap();
    let o = tidings(&["asyncapi", "--schemas", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("tidings check"), "{}", text(&o));
}
