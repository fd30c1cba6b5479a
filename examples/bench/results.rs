//! Results kept and drawn: `--save` writes a run's JSON, with its date,
//! commit and machine, to `bench/results/`; `--chart` draws every kept
//! result as one SVG, the SDK beside raw async-nats for each figure.
//!
//! The chart is plain SVG text (rectangles and labels): one panel per
//! result, one row per figure, both sides' bars scaled to the larger of the
//! two, so each row reads as "how the SDK compares with raw" whatever its
//! unit. No plotting crate: they lay text out with system fonts, which a
//! CI machine may not have, for what is here a few dozen rectangles.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{json, Value};

/// Where kept results live, relative to the repository.
pub const DIR: &str = "bench/results";

/// Adds what a kept result needs to be read later (date, commit, machine)
/// where the report lacks it, writes it to `dir` under a name made of
/// those, and returns the path.
pub fn save(report: &mut Value, dir: &Path) -> anyhow::Result<PathBuf> {
    let now = time::OffsetDateTime::now_utc();
    if report.get("date_utc").is_none() {
        report["date_utc"] = json!(now.format(&time::format_description::well_known::Rfc3339)?);
    }
    if report.get("commit").is_none() {
        report["commit"] = json!(super::multi::git_commit());
    }
    report["machine_detail"] = machine();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let stamp = now.format(time::macros::format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))?;
    let commit = report["commit"].as_str().unwrap_or("unknown").to_string();
    let path = dir.join(format!("{stamp}-{commit}-{}.json", label(report)));
    std::fs::write(&path, serde_json::to_string_pretty(report)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The CPU model, kernel and load average: what to compare runs by.
fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, m)| m.trim());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    json!({
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu_model": model,
        "kernel": kernel.trim(),
        "load_average": super::multi::load_average(),
    })
}

/// A short name for the run's kind and profile: `publish-consume`,
/// `publish-consume-3node-sync-always`, `multi-stream-1node`,
/// `multi-stream-3node-sync-always`.
fn label(report: &Value) -> String {
    let benchmark = report["benchmark"].as_str().unwrap_or("bench");
    if benchmark != "multi-stream" {
        let mut label = benchmark.replace(", ", "-");
        if report["nodes"].as_u64().is_some_and(|n| n > 1) {
            label.push_str(&format!("-{}node", report["nodes"]));
        }
        if report["sync_always"].as_bool() == Some(true) {
            label.push_str("-sync-always");
        }
        return label;
    }
    let nodes = report["topology"]["nodes"].as_u64().unwrap_or(1);
    let sync = if report["sync"].as_str() == Some("always") {
        "-sync-always"
    } else {
        ""
    };
    format!("multi-stream-{nodes}node{sync}")
}

/// One figure of a result: its name, unit, and each side's value.
struct Row {
    name: String,
    unit: &'static str,
    raw: Option<f64>,
    sdk: Option<f64>,
}

/// The figures of a result worth drawing, raw beside the SDK.
fn rows(report: &Value) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut push = |name: &str, unit, raw: &Value, sdk: &Value| {
        let (raw, sdk) = (raw.as_f64(), sdk.as_f64());
        if raw.is_some() || sdk.is_some() {
            rows.push(Row {
                name: name.to_string(),
                unit,
                raw,
                sdk,
            });
        }
    };
    if report["benchmark"] == "multi-stream" {
        let side = |s: &str| &report["sides"][s];
        let (raw, sdk) = (side("raw"), side("sdk"));
        push(
            "acked publishes",
            "/s",
            &raw["achieved_publish_per_s"],
            &sdk["achieved_publish_per_s"],
        );
        for section in ["publish", "end_to_end"] {
            for p in ["p50", "p95", "p99"] {
                let key = format!("{p}_ms");
                push(
                    &format!("{} {p}", section.replace('_', " ")),
                    "ms",
                    &raw[section][&key],
                    &sdk[section][&key],
                );
            }
        }
        return rows;
    }
    let seq = &report["sequential"];
    for p in ["p50", "p95", "p99"] {
        let key = format!("{p}_us");
        push(
            &format!("sequential publish {p}"),
            "µs",
            &seq["raw"][&key],
            &seq["sdk"][&key],
        );
    }
    let pipe = &report["pipelined"];
    push(
        "pipelined publish",
        "/s",
        &pipe["raw_rate_per_s"],
        &pipe["sdk_rate_per_s"],
    );
    let consume = &report["consume"];
    push(
        "consume",
        "/s",
        &consume["raw_rate_per_s"],
        &consume["sdk_rate_per_s"],
    );
    if let Some(loads) = report["end_to_end"]["loads"].as_array() {
        for at in loads {
            let rate = at["offered_per_s"].as_u64().unwrap_or(0);
            push(
                &format!("end to end p95 at {rate}/s"),
                "µs",
                &at["raw"]["p95_us"],
                &at["sdk"]["p95_us"],
            );
        }
    }
    rows
}

/// The title line of a result's panel.
fn title(report: &Value) -> String {
    let text = |key: &str| report[key].as_str().unwrap_or("?").to_string();
    let date = text("date_utc");
    // To the minute: 2026-12-03T16:23.
    let date = date.get(..16).unwrap_or(&date);
    format!(
        "{} · {date} UTC · commit {} · {}",
        label(report),
        text("commit"),
        report["machine_detail"]["cpu_model"]
            .as_str()
            .unwrap_or("machine not recorded"),
    )
}

const WIDTH: f64 = 900.0;
const ROW: f64 = 22.0;
const LABEL_W: f64 = 210.0;
const BAR_W: f64 = 470.0;

/// Escapes text for SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A value with its unit, rounded for reading.
fn figure(value: Option<f64>, unit: &str) -> String {
    match value {
        None => "–".into(),
        Some(v) if v >= 1000.0 => format!("{:.0} {unit}", v),
        Some(v) if v >= 10.0 => format!("{v:.1} {unit}"),
        Some(v) => format!("{v:.2} {unit}"),
    }
}

/// Draws every JSON result in `dir` (oldest first) as one SVG.
pub fn chart(dir: &Path) -> anyhow::Result<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {} (run scripts/bench --save first)", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    anyhow::ensure!(
        !files.is_empty(),
        "no results in {} (run scripts/bench --save first)",
        dir.display()
    );
    let mut body = String::new();
    let mut y = 40.0;
    for file in &files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let report: Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a benchmark result", file.display()))?;
        let rows = rows(&report);
        if rows.is_empty() {
            continue;
        }
        writeln!(
            body,
            r#"<text x="10" y="{y}" class="title">{}</text>"#,
            escape(&title(&report))
        )?;
        y += 10.0;
        for row in &rows {
            let top = y + 4.0;
            let max = row.raw.unwrap_or(0.0).max(row.sdk.unwrap_or(0.0));
            let scale = |v: Option<f64>| {
                if max > 0.0 {
                    v.unwrap_or(0.0) / max * BAR_W
                } else {
                    0.0
                }
            };
            writeln!(
                body,
                r#"<text x="{}" y="{}" class="label">{}</text>"#,
                LABEL_W - 8.0,
                top + 14.0,
                escape(&row.name)
            )?;
            for (i, (side, value)) in [("raw", row.raw), ("sdk", row.sdk)].iter().enumerate() {
                let bar_y = top + i as f64 * 9.0;
                writeln!(
                    body,
                    r#"<rect x="{LABEL_W}" y="{bar_y}" width="{:.1}" height="8" class="{side}"/><text x="{:.1}" y="{:.1}" class="value">{} {}</text>"#,
                    scale(*value),
                    LABEL_W + scale(*value) + 4.0,
                    bar_y + 7.5,
                    side,
                    escape(&figure(*value, row.unit)),
                )?;
            }
            y += ROW;
        }
        y += 24.0;
    }
    let height = y + 10.0;
    Ok(format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">
<style>
.title {{ font-size: 13px; font-weight: bold; }}
.label {{ font-size: 11px; text-anchor: end; }}
.value {{ font-size: 8px; }}
.raw {{ fill: #9e9e9e; }}
.sdk {{ fill: #1f77b4; }}
</style>
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="20" class="title">Tidings benchmark results: SDK (blue) beside raw async-nats (grey), each row scaled to its larger value</text>
{body}</svg>
"##
    ))
}
