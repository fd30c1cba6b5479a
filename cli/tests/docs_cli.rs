//! `tidings docs` on the repository's registry: every link and anchor of
//! the catalog resolves and nothing is fetched from outside it; headless
//! Chromium (from `scripts/chromium`, which `scripts/test` runs, or
//! `TIDINGS_CHROMIUM`) renders the index and an event page without script
//! errors, runs the search, and takes screenshots; `--check` catches a
//! stale, missing or left-over page.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
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

/// The catalog of the repository's registry, written into a temp dir.
fn catalog() -> (tempfile::TempDir, BTreeMap<String, String>) {
    let dir = tempfile::tempdir().unwrap();
    let o = tidings(&["docs", "--out", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let pages = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    (dir, pages)
}

/// Every value of `attribute="..."` in `html`.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let needle = format!("{attribute}=\"");
    html.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

#[test]
fn every_link_and_anchor_resolves_and_nothing_is_fetched_from_outside() {
    let (_dir, pages) = catalog();
    assert!(pages.contains_key("index.html"));
    assert!(pages.contains_key("auth.user.created.html"));
    let mut checked = 0;
    for (name, html) in &pages {
        assert!(
            attribute_values(html, "src").is_empty(),
            "{name} loads a resource"
        );
        for href in attribute_values(html, "href") {
            assert!(
                !href.contains("://") && !href.starts_with("//"),
                "{name} links outside the catalog: {href}"
            );
            let (file, anchor) = href.split_once('#').unwrap_or((href, ""));
            let target = if file.is_empty() { name.as_str() } else { file };
            let page = pages
                .get(target)
                .unwrap_or_else(|| panic!("{name} links to {href}: no page {target}"));
            if !anchor.is_empty() {
                assert!(
                    page.contains(&format!("id=\"{anchor}\"")),
                    "{name} links to {href}: {target} has no id {anchor}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} links");
}

#[test]
fn a_type_page_shows_versions_properties_changes_stream_and_consumers() {
    let (_dir, pages) = catalog();
    let page = &pages["auth.user.created.html"];
    for expected in [
        "id=\"v1\"",
        "id=\"v2\"",
        "<code>auth.user.created.&lt;organization&gt;.&lt;user_id&gt;</code>",
        "Compatible under FULL_TRANSITIVE.",
        "added <code>locale</code> (optional string",
        "index.html#stream-AUTH_EVENTS-",
        "index.html#group-analytics",
        "one of &quot;owner&quot;",
    ] {
        assert!(page.contains(expected), "missing {expected:?}");
    }
}

/// Chromium, headless, with the flags this machine's closed network needs.
fn chromium(args: &[&str]) -> Output {
    let binary = std::env::var("TIDINGS_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let profile = tempfile::tempdir().unwrap();
    let profile = format!("--user-data-dir={}", profile.path().display());
    Command::new(&binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &profile,
        ])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{binary} does not run ({e}): run scripts/chromium (scripts/test does) or set TIDINGS_CHROMIUM")
        })
}

fn url(dir: &Path, page: &str) -> String {
    format!("file://{}/{page}", dir.display())
}

#[test]
fn chromium_renders_the_catalog_runs_the_search_and_takes_screenshots() {
    let (dir, _pages) = catalog();
    // The search, from the URL: one of the twelve types matches.
    let o = chromium(&[
        "--dump-dom",
        &url(dir.path(), "index.html?q=auth.user.created"),
    ]);
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(
        dom.contains("<body data-ready=\"yes\""),
        "the script did not run: {}",
        text(&o)
    );
    assert!(!dom.contains("data-script-errors"), "script errors: {dom}");
    assert!(dom.contains("1 of 12 event types"), "{dom}");
    assert_eq!(dom.matches("class=\"hidden\"").count(), 11);

    let o = chromium(&["--dump-dom", &url(dir.path(), "auth.user.created.html")]);
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(dom.contains("<body data-ready=\"yes\""), "{}", text(&o));
    assert!(!dom.contains("data-script-errors"), "script errors: {dom}");

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("catalog-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    for (page, file) in [
        ("index.html", "index.png"),
        ("auth.user.created.html", "auth.user.created.png"),
    ] {
        let png = shots.join(file);
        let _ = std::fs::remove_file(&png);
        let o = chromium(&[
            "--window-size=1280,1600",
            &format!("--screenshot={}", png.display()),
            &url(dir.path(), page),
        ]);
        let bytes = std::fs::read(&png)
            .unwrap_or_else(|e| panic!("no screenshot of {page} ({e}): {}", text(&o)));
        assert!(bytes.starts_with(b"\x89PNG"), "{page}: not a PNG");
        assert!(
            bytes.len() > 20_000,
            "{page}: a blank page? {} bytes",
            bytes.len()
        );
    }
}

#[test]
fn check_catches_missing_stale_and_left_over_pages() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = tidings(&["docs", "--out", out, "--check"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("index.html is missing"), "{}", text(&o));

    assert_eq!(tidings(&["docs", "--out", out]).status.code(), Some(0));
    assert_eq!(
        tidings(&["docs", "--out", out, "--check"]).status.code(),
        Some(0)
    );

    std::fs::write(dir.path().join("auth.user.created.html"), "old").unwrap();
    std::fs::write(dir.path().join("auth.user.deleted.html"), "gone").unwrap();
    let o = tidings(&["docs", "--out", out, "--check"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("auth.user.created.html is stale"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("auth.user.deleted.html is left over"),
        "{}",
        text(&o)
    );

    // Writing again removes the left-over page.
    assert_eq!(tidings(&["docs", "--out", out]).status.code(), Some(0));
    assert!(!dir.path().join("auth.user.deleted.html").exists());
    assert_eq!(
        tidings(&["docs", "--out", out, "--check"]).status.code(),
        Some(0)
    );
}
