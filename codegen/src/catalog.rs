//! The registry as a static HTML catalog that works offline: an index of
//! services, event types, streams and consumer groups with a search box, and
//! a page per event type with each version's schema as a table, its first
//! examples, the changes from the version before with the compatibility
//! verdict, the subject and tenant filter, the stream and its retention,
//! and the groups that consume it. No CDN, no server: plain files with the
//! style and the one script inline.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use crate::compat::{self, Breaks, Change};
use crate::registry::compat_bridge;
use crate::registry::config::{Config, Discard, ResolvedStream};
use crate::registry::load::{EventFile, Loaded};

/// One file of the catalog: its name in the output directory and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// File name (`index.html`, `auth.user.created.html`).
    pub name: String,
    /// Contents.
    pub html: String,
}

/// The catalog's pages. Event files whose type, version or bundle did not
/// load are left out (`tidings check` reports them).
pub fn pages(loaded: &Loaded) -> Vec<Page> {
    let types = loaded.usable_by_type();
    let streams = resolved_streams(&loaded.config);
    let mut pages = vec![Page {
        name: "index.html".into(),
        html: index(loaded, &types, &streams),
    }];
    for (event_type, files) in &types {
        pages.push(Page {
            name: format!("{event_type}.html"),
            html: type_page(loaded, event_type, files, &streams),
        });
    }
    pages
}

/// Each stream's settings under each profile (`production`, `dev`), or
/// with no profile when none is declared.
fn resolved_streams(config: &Config) -> BTreeMap<String, Vec<(String, ResolvedStream)>> {
    let mut profiles: Vec<String> = config.profiles.keys().cloned().collect();
    if profiles.is_empty() {
        profiles.push(String::new());
    }
    let mut out: BTreeMap<String, Vec<(String, ResolvedStream)>> = BTreeMap::new();
    for profile in profiles {
        for stream in config.resolve_streams(&profile).unwrap_or_default() {
            out.entry(stream.name.clone())
                .or_default()
                .push((profile.clone(), stream));
        }
    }
    out
}

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `7d`, `2m`, `90s`: the largest whole unit.
fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= size && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    if d.subsec_nanos() == 0 {
        format!("{secs}s")
    } else {
        format!("{d:?}")
    }
}

/// `1 GiB`, `512 MiB`, `1000 B`.
fn bytes(n: u64) -> String {
    for (unit, size) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} B")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:1rem 2rem;color:#1d1d1f;line-height:1.45}\
h1{font-size:1.6rem}h1 code{font-size:1.5rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd}h3{font-size:1.05rem}\
table{border-collapse:collapse;margin:.5rem 0 1rem;width:100%}th,td{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}\
th{background:#f4f4f6}code,pre{font-family:ui-monospace,monospace;font-size:.85rem}pre{background:#f6f8fa;padding:.6rem;overflow:auto}\
.deprecated{color:#a40000;font-weight:bold}.ok{color:#0a6b2b;font-weight:bold}.bad{color:#a40000;font-weight:bold}\
.muted{color:#666}nav a{margin-right:1rem}#search{font-size:1rem;padding:.4rem;width:24rem;max-width:100%}.hidden{display:none}";

/// A page: head with the inline style, a header linking home, `body`.
fn page(title: &str, body: &str, script: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<nav><a href=\"index.html\">Event catalog</a><a href=\"index.html#streams\">Streams</a><a href=\"index.html#groups\">Consumer groups</a></nav>\n{body}{script}</body>\n</html>\n",
        esc(title)
    )
}

/// Records script errors on `<body data-script-errors>`, where the browser
/// check of the catalog looks for them.
const RECORD_ERRORS: &str = "window.addEventListener('error',function(e){var b=document.body;b.dataset.scriptErrors=(b.dataset.scriptErrors||'')+e.message+';';});\n";

/// The search: filters the index's rows by the words typed, on every
/// keystroke and from `?q=` (so a link can carry a search); sets
/// `<body data-ready>` once it ran.
const SEARCH_SCRIPT: &str = "(function(){var box=document.getElementById('search');var rows=Array.prototype.slice.call(document.querySelectorAll('[data-search]'));\n\
function apply(){var words=box.value.toLowerCase().split(/\\s+/).filter(Boolean);var shown=0;rows.forEach(function(r){var text=r.getAttribute('data-search');\n\
var match=words.every(function(w){return text.indexOf(w)>=0;});r.classList.toggle('hidden',!match);if(match){shown++;}});\n\
document.getElementById('count').textContent=shown+' of '+rows.length+' event types';}\n\
var q=new URLSearchParams(window.location.search).get('q');if(q){box.value=q;}box.addEventListener('input',apply);apply();\n\
document.body.dataset.ready='yes';})();\n";

fn index(
    loaded: &Loaded,
    types: &BTreeMap<String, Vec<&EventFile>>,
    streams: &BTreeMap<String, Vec<(String, ResolvedStream)>>,
) -> String {
    let mut b = String::new();
    let _ = writeln!(b, "<h1>Event catalog</h1>\n<p>{} event types in {} schema files. Every event travels as a CloudEvents 1.0 JSON body on the subject <code>&lt;type&gt;.&lt;organization&gt;.&lt;key&gt;</code> (see docs/wire-format.md). Compatibility: <code>{}</code>.</p>",
        types.len(), types.values().map(Vec::len).sum::<usize>(), loaded.config.compatibility.mode.as_str());
    let _ = writeln!(b, "<p><input id=\"search\" type=\"search\" placeholder=\"Search event types, services, descriptions\" aria-label=\"Search\"> <span id=\"count\" class=\"muted\"></span></p>");
    let mut services: BTreeMap<&str, Vec<(&String, &Vec<&EventFile>)>> = BTreeMap::new();
    for (event_type, files) in types {
        let service = event_type.split('.').next().unwrap_or_default();
        services
            .entry(service)
            .or_default()
            .push((event_type, files));
    }
    for (service, entries) in &services {
        let _ = writeln!(b, "<h2 id=\"service-{0}\">Service {0}</h2>\n<table>\n<tr><th>event type</th><th>versions</th><th>stream</th><th>description</th></tr>", esc(service));
        for (event_type, files) in entries {
            let Some(latest) = files.last() else { continue };
            let description = text_of(&latest.value, "description");
            let deprecated = if latest.deprecated {
                " <span class=\"deprecated\">deprecated</span>"
            } else {
                ""
            };
            let versions: Vec<String> = files
                .iter()
                .map(|f| {
                    let v = f.version.unwrap_or_default();
                    format!("<a href=\"{}.html#v{v}\">v{v}</a>", esc(event_type))
                })
                .collect();
            let search = format!("{event_type} {service} {description}").to_lowercase();
            let _ = writeln!(
                b,
                "<tr data-search=\"{}\"><td><a href=\"{}.html\"><code>{}</code></a>{deprecated}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&search),
                esc(event_type),
                esc(event_type),
                versions.join(" "),
                esc(latest.stream.as_deref().unwrap_or("")),
                esc(&description)
            );
        }
        b.push_str("</table>\n");
    }
    b.push_str("<h2 id=\"streams\">Streams</h2>\n<table>\n<tr><th>stream</th><th>subjects</th><th>profile</th><th>replicas</th><th>max age</th><th>max bytes</th><th>when full</th><th>retention</th><th>duplicate window</th></tr>\n");
    for (name, profiles) in streams {
        for (profile, s) in profiles {
            let _ = writeln!(b, "<tr id=\"stream-{0}-{1}\"><td><code>{0}</code></td><td><code>{2}</code></td><td>{1}</td><td>{3}</td><td>{4}</td><td>{5}</td><td>{6}</td><td>{7}</td><td>{8}</td></tr>",
                esc(name), esc(profile), esc(&s.subjects.join(" ")), s.replicas, duration(s.max_age), bytes(s.max_bytes),
                discard(s.discard), esc(&s.retention.to_string()), duration(s.duplicate_window));
        }
    }
    b.push_str("</table>\n<h2 id=\"groups\">Consumer groups</h2>\n<table>\n<tr><th>service</th><th>group</th><th>handles</th></tr>\n");
    for (service, config) in &loaded.config.services {
        for (group, handled) in &config.groups {
            let links: Vec<String> = handled
                .iter()
                .map(|t| {
                    if types.contains_key(t) {
                        format!("<a href=\"{0}.html\"><code>{0}</code></a>", esc(t))
                    } else {
                        format!(
                            "<code>{}</code> <span class=\"bad\">(no such type)</span>",
                            esc(t)
                        )
                    }
                })
                .collect();
            let _ = writeln!(
                b,
                "<tr id=\"group-{1}\"><td>{0}</td><td><code>{1}</code></td><td>{2}</td></tr>",
                esc(service),
                esc(group),
                links.join(", ")
            );
        }
    }
    b.push_str("</table>\n");
    page(
        "Event catalog",
        &b,
        &format!("<script>\n{RECORD_ERRORS}{SEARCH_SCRIPT}</script>\n"),
    )
}

fn discard(d: Discard) -> &'static str {
    match d {
        Discard::Old => "evicts the oldest (discard old)",
        Discard::New => "refuses new events (discard new)",
    }
}

fn text_of(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn type_page(
    loaded: &Loaded,
    event_type: &str,
    files: &[&EventFile],
    streams: &BTreeMap<String, Vec<(String, ResolvedStream)>>,
) -> String {
    let mut b = String::new();
    let Some(latest) = files.last() else {
        return page(event_type, "", "");
    };
    let stream = latest.stream.clone().unwrap_or_default();
    let _ = writeln!(b, "<h1><code>{}</code></h1>", esc(event_type));
    if latest.deprecated {
        let _ = writeln!(
            b,
            "<p class=\"deprecated\">Deprecated: {}</p>",
            esc(&text_of(&latest.value, "x-deprecated-reason"))
        );
    }
    let _ = writeln!(b, "<p>{}</p>", esc(&text_of(&latest.value, "description")));
    let key = latest.entity_key.as_deref();
    let key_token = key.map_or("_".to_string(), |k| format!("&lt;{}&gt;", esc(k)));
    let _ = writeln!(b, "<table>\n<tr><th>subject</th><td><code>{}.&lt;organization&gt;.{key_token}</code></td></tr>", esc(event_type));
    let _ = writeln!(b, "<tr><th>one tenant</th><td><code>{}.org-42.&gt;</code> (a consumer or reader filtered to organization <code>org-42</code>)</td></tr>", esc(event_type));
    let _ = writeln!(
        b,
        "<tr><th>entity key</th><td>{}</td></tr>",
        key.map_or(
            "none: every event's last token is <code>_</code>".to_string(),
            |k| format!(
                "<code>{}</code>: one entity's events share a subject and keep their order",
                esc(k)
            )
        )
    );
    let stream_link =
        streams
            .get(&stream)
            .and_then(|p| p.first())
            .map_or(esc(&stream), |(profile, _)| {
                format!(
                    "<a href=\"index.html#stream-{}-{}\"><code>{}</code></a>",
                    esc(&stream),
                    esc(profile),
                    esc(&stream)
                )
            });
    let _ = writeln!(b, "<tr><th>stream</th><td>{stream_link}</td></tr>");
    if let Some((_, s)) = streams.get(&stream).and_then(|p| p.first()) {
        let _ = writeln!(
            b,
            "<tr><th>retention</th><td>{} or {}, then {}; {} retention</td></tr>",
            duration(s.max_age),
            bytes(s.max_bytes),
            discard(s.discard),
            esc(&s.retention.to_string())
        );
    }
    let groups = crate::registry::access::groups_handling(&loaded.config, event_type);
    let consumers = if groups.is_empty() {
        "none declared in tidings.toml".to_string()
    } else {
        groups
            .iter()
            .map(|(service, group)| {
                format!(
                    "<a href=\"index.html#group-{1}\"><code>{1}</code></a> ({0})",
                    esc(service),
                    esc(group)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(b, "<tr><th>consumed by</th><td>{consumers}</td></tr>");
    let mode = latest.mode.unwrap_or(loaded.config.compatibility.mode);
    let _ = writeln!(
        b,
        "<tr><th>compatibility</th><td><code>{}</code></td></tr>\n</table>",
        mode.as_str()
    );

    for (i, file) in files.iter().enumerate().rev() {
        let version = file.version.unwrap_or_default();
        let schema = file
            .bundled
            .as_ref()
            .map_or(&*file.value, |bundled| &bundled.value);
        let _ = writeln!(
            b,
            "<h2 id=\"v{version}\">Version {version}{}</h2>",
            if file.deprecated {
                " <span class=\"deprecated\">deprecated</span>"
            } else {
                ""
            }
        );
        let _ = writeln!(
            b,
            "<p class=\"muted\">{} · <a href=\"#v{version}\">link</a></p>",
            esc(&file.path)
        );
        b.push_str("<table>\n<tr><th>property</th><th>type</th><th>required</th><th>constraints</th><th>description</th></tr>\n");
        let mut rows = Vec::new();
        properties(schema, schema, "", &mut rows, 0);
        for row in rows {
            let _ = writeln!(
                b,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&row.path),
                esc(&row.kind),
                if row.required { "yes" } else { "" },
                esc(&row.constraints),
                esc(&row.description)
            );
        }
        b.push_str("</table>\n");
        if let Some(examples) = file.value.get("examples").and_then(Value::as_array) {
            for example in examples.iter().take(2) {
                let text = serde_json::to_string_pretty(example).unwrap_or_default();
                let _ = writeln!(b, "<h3>Example</h3>\n<pre>{}</pre>", esc(&text));
            }
        }
        if i > 0 {
            let previous = files[i - 1];
            changes(&mut b, previous, file, mode, loaded);
        }
    }
    page(
        event_type,
        &b,
        &format!("<script>\n{RECORD_ERRORS}document.body.dataset.ready='yes';\n</script>\n"),
    )
}

/// The changes from `old` to `new` and the verdict under `mode`.
fn changes(b: &mut String, old: &EventFile, new: &EventFile, mode: compat::Mode, loaded: &Loaded) {
    let ov = old.version.unwrap_or_default();
    let _ = writeln!(b, "<h3>Changes from <a href=\"#v{ov}\">v{ov}</a></h3>");
    let (Some(o), Some(n)) = (&old.bundled, &new.bundled) else {
        return;
    };
    match compat_bridge::changes(o, n, loaded.config.compatibility.policy) {
        Err(e) => {
            let _ = writeln!(b, "<p class=\"bad\">not compared: {}</p>", esc(&e));
        }
        Ok(found) => {
            let breaking: Vec<&Change> = found
                .iter()
                .filter(|c| match c.breaks {
                    Breaks::Readers => mode.checks_backward(),
                    Breaks::Writers => mode.checks_forward(),
                    Breaks::None => false,
                })
                .collect();
            if breaking.is_empty() {
                let _ = writeln!(b, "<p class=\"ok\">Compatible under {}.</p>", mode.as_str());
            } else {
                let _ = writeln!(
                    b,
                    "<p class=\"bad\">Incompatible under {}: {} breaking change(s).</p>",
                    mode.as_str(),
                    breaking.len()
                );
            }
            property_changes(b, old, new);
            if found.is_empty() {
                let _ = writeln!(b, "<p class=\"muted\">The compatibility engine found no change that breaks readers or writers (policy {}).</p>", loaded.config.compatibility.policy.as_str());
            } else {
                b.push_str("<table>\n<tr><th>change</th><th>breaks</th><th>where</th></tr>\n");
                for change in &found {
                    let breaks = match change.breaks {
                        Breaks::Readers => "readers of the new version (on old events)",
                        Breaks::Writers => "readers still on the old version (on new events)",
                        Breaks::None => "nobody",
                    };
                    let _ = writeln!(
                        b,
                        "<tr><td>{}</td><td>{breaks}</td><td><code>{}</code></td></tr>",
                        esc(&change.message),
                        esc(&change.new_path)
                    );
                }
                b.push_str("</table>\n");
            }
        }
    }
}

/// The properties added, removed or changed between two versions, as rows
/// of their property tables.
fn property_changes(b: &mut String, old: &EventFile, new: &EventFile) {
    let rows_of = |file: &EventFile| {
        let schema = file
            .bundled
            .as_ref()
            .map_or(&*file.value, |bundled| &bundled.value);
        let mut rows = Vec::new();
        properties(schema, schema, "", &mut rows, 0);
        rows.into_iter()
            .map(|r| (r.path.clone(), r))
            .collect::<BTreeMap<String, Row>>()
    };
    let (before, after) = (rows_of(old), rows_of(new));
    let mut lines = Vec::new();
    for (path, row) in &after {
        match before.get(path) {
            None => lines.push(format!(
                "added <code>{}</code> ({})",
                esc(path),
                esc(&row_summary(row))
            )),
            Some(was) if row_summary(was) != row_summary(row) => {
                lines.push(format!(
                    "changed <code>{}</code>: {} → {}",
                    esc(path),
                    esc(&row_summary(was)),
                    esc(&row_summary(row))
                ));
            }
            Some(_) => {}
        }
    }
    for path in before.keys().filter(|p| !after.contains_key(*p)) {
        lines.push(format!("removed <code>{}</code>", esc(path)));
    }
    if lines.is_empty() {
        b.push_str("<p class=\"muted\">No property added, removed or changed.</p>\n");
    } else {
        let _ = writeln!(b, "<ul>\n<li>{}</li>\n</ul>", lines.join("</li>\n<li>"));
    }
}

/// A property row's requiredness, type and constraints in one line.
fn row_summary(row: &Row) -> String {
    let mut text = format!(
        "{}{}",
        if row.required {
            "required "
        } else {
            "optional "
        },
        row.kind
    );
    if !row.constraints.is_empty() {
        let _ = write!(text, "; {}", row.constraints);
    }
    text
}

/// One row of a version's property table.
struct Row {
    path: String,
    kind: String,
    required: bool,
    constraints: String,
    description: String,
}

/// Follows a local `$ref` (`#/$defs/X`) in `root`, once.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
    {
        Some(pointer) => root.pointer(pointer).unwrap_or(schema),
        None => schema,
    }
}

/// A schema's type in words: `string`, `array of object`, `one of: a | b`.
fn kind(root: &Value, schema: &Value) -> String {
    let schema = resolve(root, schema);
    if let Some(t) = schema.get("type") {
        let base = match t {
            Value::String(s) => s.clone(),
            Value::Array(list) => list
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" | "),
            _ => String::new(),
        };
        if base == "array" {
            if let Some(items) = schema.get("items") {
                return format!("array of {}", kind(root, items));
            }
        }
        return base;
    }
    for combinator in ["oneOf", "anyOf"] {
        if let Some(options) = schema.get(combinator).and_then(Value::as_array) {
            let kinds: Vec<String> = options.iter().map(|o| kind(root, o)).collect();
            return format!("one of: {}", kinds.join(" | "));
        }
    }
    if schema.get("const").is_some() {
        return "constant".into();
    }
    if schema.get("enum").is_some() {
        return "enum".into();
    }
    "any".into()
}

/// A schema's constraints in one line.
fn constraints(root: &Value, schema: &Value) -> String {
    let schema = resolve(root, schema);
    let mut parts = Vec::new();
    let show = |v: &Value| serde_json::to_string(v).unwrap_or_default();
    for (key, label) in [
        ("format", "format"),
        ("pattern", "pattern"),
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
        ("multipleOf", "multiple of"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
        ("uniqueItems", "unique items"),
        ("const", "="),
        ("default", "default"),
    ] {
        if let Some(v) = schema.get(key) {
            let v = v.as_str().map_or_else(|| show(v), str::to_string);
            parts.push(format!("{label} {v}"));
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        parts.push(format!(
            "one of {}",
            values.iter().map(show).collect::<Vec<_>>().join(", ")
        ));
    }
    parts.join("; ")
}

/// The rows of an object schema's properties, nested objects as dotted
/// paths and array items as `[]`, to a depth of 4.
fn properties(root: &Value, schema: &Value, prefix: &str, rows: &mut Vec<Row>, depth: usize) {
    let schema = resolve(root, schema);
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, property) in props {
        let path = format!("{prefix}{name}");
        let target = resolve(root, property);
        let description = property
            .get("description")
            .or_else(|| target.get("description"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        rows.push(Row {
            path: path.clone(),
            kind: kind(root, property),
            required: required.contains(&name.as_str()),
            constraints: constraints(root, property),
            description,
        });
        if depth < 4 {
            properties(root, target, &format!("{path}."), rows, depth + 1);
            if let Some(items) = target.get("items") {
                properties(root, items, &format!("{path}[]."), rows, depth + 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_as_written_in_tidings_toml() {
        assert_eq!(duration(Duration::from_secs(7 * 86_400)), "7d");
        assert_eq!(duration(Duration::from_secs(120)), "2m");
        assert_eq!(duration(Duration::from_secs(90)), "90s");
        assert_eq!(bytes(1 << 30), "1 GiB");
        assert_eq!(bytes(1000), "1000 B");
    }

    #[test]
    fn nested_properties_refs_and_items_become_rows() {
        let schema = serde_json::json!({
            "$defs": { "Id": { "type": "string", "format": "uuid", "description": "An id." } },
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": { "$ref": "#/$defs/Id" },
                "lines": { "type": "array", "items": { "type": "object",
                    "properties": { "qty": { "type": "integer", "minimum": 1 } } } },
                "note": { "type": ["string", "null"], "maxLength": 10, "description": "<b>x</b>" }
            }
        });
        let mut rows = Vec::new();
        properties(&schema, &schema, "", &mut rows, 0);
        let paths: Vec<&str> = rows.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["id", "lines", "lines[].qty", "note"]);
        assert_eq!(rows[0].kind, "string");
        assert!(rows[0].required);
        assert_eq!(rows[0].constraints, "format uuid");
        assert_eq!(rows[0].description, "An id.");
        assert_eq!(rows[1].kind, "array of object");
        assert_eq!(rows[2].constraints, "≥ 1");
        assert_eq!(rows[3].kind, "string | null");
        assert_eq!(esc(&rows[3].description), "&lt;b&gt;x&lt;/b&gt;");
    }
}
