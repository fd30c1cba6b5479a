//! `tidings check` outputs for CI systems (SARIF 2.1.0, JUnit XML), the
//! lint configuration (`[[lint.ignore]]`), and `--against DIR`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn tidings(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A git repository holding a copy of the repository's registry at
/// `registry/schemas/`, so paths relative to the repo root differ from
/// paths relative to the registry.
fn repo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let schemas = dir.path().join("registry/schemas");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas"),
        &schemas,
    );
    let o = Command::new("git")
        .args(["init", "-q"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success());
    (dir, schemas)
}

/// v1 of catalog.product.created loses its examples (a warning) and gets a
/// broken pattern on line-numbered ground (an error).
fn break_product_created(schemas: &Path) -> String {
    let p = schemas.join("catalog/product.created.v1.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("examples");
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    "catalog/product.created.v1.json".into()
}

#[test]
fn sarif_is_valid_2_1_0_with_rules_relative_uris_and_lines() {
    let (dir, schemas) = repo();
    let file = break_product_created(&schemas);
    let o = tidings(
        &["check", "--schemas", "schemas", "--format", "sarif"],
        &dir.path().join("registry"),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let log: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "tidings");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        // Required by SARIF: message.text; ruleId must name a declared rule.
        assert!(r["message"]["text"].as_str().is_some_and(|t| !t.is_empty()));
        let id = r["ruleId"].as_str().unwrap();
        let index = usize::try_from(r["ruleIndex"].as_u64().unwrap()).unwrap();
        assert_eq!(rules[index]["id"], id, "{r}");
        assert!(["error", "warning"].contains(&r["level"].as_str().unwrap()));
        let loc = &r["locations"][0]["physicalLocation"];
        let uri = loc["artifactLocation"]["uri"].as_str().unwrap();
        // Relative to the repository root, not to the registry or the cwd.
        assert!(uri.starts_with("registry/schemas/"), "{uri}");
        assert!(!uri.contains(':'), "{uri}");
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
    }
    let hit = results
        .iter()
        .find(|r| r["ruleId"] == "lock/edited-published")
        .unwrap();
    assert_eq!(
        hit["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        format!("registry/schemas/{file}")
    );
    let warning = results
        .iter()
        .find(|r| r["ruleId"] == "schema/no-examples")
        .unwrap();
    assert_eq!(warning["level"], "warning");
}

#[test]
fn junit_has_one_testcase_per_file_failed_by_its_errors() {
    let (dir, schemas) = repo();
    let file = break_product_created(&schemas);
    let o = tidings(
        &["check", "--schemas", "schemas", "--format", "junit"],
        &dir.path().join("registry"),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let xml = stdout(&o);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    let files = walk(&schemas);
    assert_eq!(xml.matches("<testcase ").count(), files.len(), "{xml}");
    for f in &files {
        assert!(
            xml.contains(&format!("<testcase name=\"schemas/{f}\"")),
            "{f}: {xml}"
        );
    }
    assert!(xml.contains(
        "<testcase name=\"schemas/catalog/product.created.v1.json\" classname=\"catalog.product.created.v1\">"
    ));
    assert!(
        xml.contains("<failure message=\"catalog.product.created v1 is published"),
        "{xml}"
    );
    assert!(xml.contains("failures=\"1\""), "{xml}");
    // Balanced: every opened testcase with content is closed.
    assert_eq!(
        xml.matches("<testcase ").count() - xml.matches("\"/>").count(),
        xml.matches("</testcase>").count()
    );
    let _ = file;
}

/// The registry's files a JUnit report lists: schemas (not the config or lock).
fn walk(schemas: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for service in std::fs::read_dir(schemas).unwrap() {
        let service = service.unwrap();
        if !service.file_type().unwrap().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(service.path()).unwrap() {
            out.push(format!(
                "{}/{}",
                service.file_name().to_string_lossy(),
                f.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    out
}

#[test]
fn lint_ignore_turns_a_rule_off_for_a_path_with_a_reason() {
    let (dir, schemas) = repo();
    break_product_created(&schemas);
    // Only the warning is ignorable; lock/* protects published history.
    let config = std::fs::read_to_string(schemas.join("tidings.toml")).unwrap();
    let with = |extra: &str| {
        std::fs::write(schemas.join("tidings.toml"), format!("{config}\n{extra}")).unwrap();
        let o = tidings(
            &["check", "--schemas", "schemas", "--format", "json"],
            &dir.path().join("registry"),
        );
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        let rules: Vec<String> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| format!("{} {}", f["rule"].as_str().unwrap(), f["line"]))
            .collect();
        (rules, v["summary"]["ignored"].as_u64().unwrap())
    };
    let (rules, ignored) = with("");
    assert!(rules.iter().any(|r| r.starts_with("schema/no-examples")));
    assert_eq!(ignored, 0);
    let (rules, ignored) = with(
        "[[lint.ignore]]\nrule = \"schema/no-*\"\npath = \"catalog/*.json\"\nreason = \"imported, examples follow\"\n",
    );
    assert!(
        !rules.iter().any(|r| r.starts_with("schema/no-examples")),
        "{rules:?}"
    );
    assert!(rules.iter().any(|r| r.starts_with("lock/edited-published")));
    assert_eq!(ignored, 1);
    // `*` does not cross directories; an ignore matching nothing is a finding.
    let (rules, _) =
        with("[[lint.ignore]]\nrule = \"schema/no-examples\"\npath = \"*.json\"\nreason = \"r\"\n");
    let lines = config.lines().count() + 2;
    assert!(
        rules.contains(&format!("config/lint-ignore-unused {lines}")),
        "{rules:?}"
    );
    // A reason is required, and lock rules cannot be ignored.
    let (rules, _) = with("[[lint.ignore]]\nrule = \"schema/no-examples\"\npath = \"**\"\n");
    assert!(
        rules.iter().any(|r| r.starts_with("config/invalid")),
        "{rules:?}"
    );
    let (rules, _) =
        with("[[lint.ignore]]\nrule = \"lock/edited-published\"\npath = \"**\"\nreason = \"no\"\n");
    assert!(
        rules.iter().any(|r| r.starts_with("config/lint-ignore ")),
        "{rules:?}"
    );
    assert!(rules.iter().any(|r| r.starts_with("lock/edited-published")));
}

#[test]
fn against_takes_a_directory() {
    let (dir, schemas) = repo();
    let base = dir.path().join("base");
    copy_dir(&schemas, &base);
    let o = tidings(
        &[
            "check",
            "--schemas",
            "registry/schemas",
            "--against",
            "base",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("(against base)"), "{}", stdout(&o));
    let p = schemas.join("catalog/product.created.v1.json");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("\"maxLength\": 200", "\"maxLength\": 100");
    std::fs::write(&p, text).unwrap();
    let o = tidings(
        &[
            "check",
            "--schemas",
            "registry/schemas",
            "--against",
            "base",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("against/edited"), "{}", stdout(&o));
}
