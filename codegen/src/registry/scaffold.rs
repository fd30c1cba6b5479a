//! `tidings new EVENT_TYPE`: the next version of an event type, copied from
//! its latest version, or a first-version template.
use serde_json::Value;

use super::config::{Config, CONFIG_FILE};
use super::event_type::{parse_file_name, pattern_covers, EventType, InvalidEventType};
use super::lock::{Lock, LOCK_FILE};
use super::source::Source;

/// A scaffolded schema file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scaffold {
    /// Registry-relative path to write.
    pub path: String,
    /// The new version.
    pub version: u32,
    /// Registry-relative path of the version it was copied from.
    pub copied_from: Option<String>,
    /// File contents.
    pub text: String,
}

/// Why nothing could be scaffolded.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The event type is not `service.entity.action`.
    #[error(transparent)]
    InvalidEventType(#[from] InvalidEventType),
    /// The latest version is not valid JSON, so it cannot be copied.
    #[error("cannot copy {0}: it is not valid JSON ({1})")]
    InvalidLatest(String, String),
    /// The target file already exists.
    #[error("{0} already exists")]
    Exists(String),
}

/// Base of `$id` for schemas when no existing file shows the registry's own.
pub const DEFAULT_ID_BASE: &str = "https://schemas.tidings.dev/";

/// Builds the next version of `event_type` in `source`.
///
/// # Errors
/// See [`ScaffoldError`].
pub fn scaffold(source: &Source, event_type: &str) -> Result<Scaffold, ScaffoldError> {
    let ty: EventType = event_type.parse()?;
    let versions: Vec<(u32, &String)> = source
        .files
        .keys()
        .filter_map(|p| {
            parse_file_name(p)
                .filter(|(t, _)| *t == ty)
                .map(|(_, v)| (v, p))
        })
        .collect();
    let latest = versions.iter().max_by_key(|(v, _)| *v);
    let locked_max = source
        .get(LOCK_FILE)
        .and_then(|t| Lock::parse(t).ok())
        .and_then(|l| {
            l.events
                .iter()
                .filter(|e| e.event_type == ty.to_string())
                .map(|e| e.version)
                .max()
        })
        .unwrap_or(0);
    let version = latest.map(|(v, _)| *v).unwrap_or(0).max(locked_max) + 1;
    let path = ty.file_name(version);
    if source.files.contains_key(&path) {
        return Err(ScaffoldError::Exists(path));
    }
    let id_base = id_base(source);
    let (text, copied_from) = match latest {
        Some((_, old_path)) => {
            let old_text = source.get(old_path).unwrap_or_default();
            let value: Value = serde_json::from_str(old_text)
                .map_err(|e| ScaffoldError::InvalidLatest((*old_path).clone(), e.to_string()))?;
            (
                bump(old_text, &value, version, &ty, &id_base, &path),
                Some((*old_path).clone()),
            )
        }
        None => (first_version(source, &ty, &id_base, &path), None),
    };
    Ok(Scaffold {
        path,
        version,
        copied_from,
        text,
    })
}

/// The `$id` base used by existing event files (`https://x/` from
/// `https://x/auth/user.created.v1.json`), else [`DEFAULT_ID_BASE`].
fn id_base(source: &Source) -> String {
    for (path, text) in &source.files {
        if parse_file_name(path).is_none() {
            continue;
        }
        if let Some(id) = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v.get("$id").and_then(Value::as_str).map(str::to_string))
        {
            if let Some(base) = id.strip_suffix(path.as_str()) {
                return base.to_string();
            }
        }
    }
    DEFAULT_ID_BASE.to_string()
}

/// Copies the latest version's text, changing the version, `$id` and
/// dropping deprecation markers; edits the text so the author's layout
/// stays, and falls back to re-serialising when the text edit fails.
fn bump(text: &str, value: &Value, new: u32, ty: &EventType, id_base: &str, path: &str) -> String {
    let id = format!("{id_base}{path}");
    let mut edited = text.to_string();
    let mut ok = replace_member(&mut edited, "x-schema-version", &new.to_string());
    if value.get("$id").is_some() {
        ok &= replace_member(&mut edited, "$id", &Value::String(id.clone()).to_string());
    }
    let has_deprecation =
        value.get("x-deprecated").is_some() || value.get("x-deprecated-reason").is_some();
    let check: Option<Value> = serde_json::from_str(&edited).ok();
    if ok
        && !has_deprecation
        && check
            .as_ref()
            .and_then(|v| v.get("x-schema-version"))
            .and_then(Value::as_u64)
            == Some(u64::from(new))
    {
        return edited;
    }
    let mut v = value.clone();
    if let Value::Object(m) = &mut v {
        m.insert("x-schema-version".into(), Value::from(new));
        m.insert("x-event-type".into(), Value::String(ty.to_string()));
        m.insert("$id".into(), Value::String(id));
        m.remove("x-deprecated");
        m.remove("x-deprecated-reason");
    }
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

/// Replaces the value of the first top-level-looking `"key": value` member
/// (a scalar) in `text`. Returns whether it did.
fn replace_member(text: &mut String, key: &str, new_value: &str) -> bool {
    let needle = format!("\"{key}\"");
    let Some(start) = text.find(&needle) else {
        return false;
    };
    let after = start + needle.len();
    let rest = &text[after..];
    let Some(colon) = rest.find(':') else {
        return false;
    };
    if !rest[..colon].trim().is_empty() {
        return false;
    }
    let value_start = after + colon + 1;
    let tail = &text[value_start..];
    let ws = tail.len() - tail.trim_start().len();
    let vstart = value_start + ws;
    let tail = &text[vstart..];
    let vlen = if tail.starts_with('"') {
        let mut esc = false;
        let mut end = None;
        for (i, c) in tail.char_indices().skip(1) {
            match c {
                '\\' if !esc => esc = true,
                '"' if !esc => {
                    end = Some(i + 1);
                    break;
                }
                _ => esc = false,
            }
        }
        match end {
            Some(e) => e,
            None => return false,
        }
    } else {
        tail.find([',', '}', '\n', ' ']).unwrap_or(tail.len())
    };
    text.replace_range(vstart..vstart + vlen, new_value);
    true
}

fn first_version(source: &Source, ty: &EventType, id_base: &str, path: &str) -> String {
    let config = source
        .get(CONFIG_FILE)
        .and_then(|t| Config::parse(t).ok())
        .unwrap_or_default();
    let stream = config
        .streams
        .iter()
        .find(|(_, s)| s.events && s.subjects.iter().any(|p| pattern_covers(p, ty)))
        .map(|(n, _)| n.clone())
        .unwrap_or_else(|| format!("{}_EVENTS", ty.service.to_ascii_uppercase()));
    let doc = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("{id_base}{path}"),
        "title": ty.rust_name(),
        "description": format!("TODO: what happened when {ty} is published, and who publishes it."),
        "x-event-type": ty.to_string(),
        "x-schema-version": 1,
        "x-stream": stream,
        "type": "object",
        // One property: an object without properties generates a map, not
        // the payload struct (rule `schema/payload-shape`).
        "properties": {
            "id": {"description": "TODO: the id of the entity this event is about.", "type": "string", "minLength": 1}
        },
        "required": ["id"],
        "examples": [{"id": "TODO"}]
    });
    // Keep the keys in the order above (serde_json may sort them).
    let order = [
        "$schema",
        "$id",
        "title",
        "description",
        "x-event-type",
        "x-schema-version",
        "x-stream",
        "type",
        "properties",
        "required",
        "examples",
    ];
    let mut s = String::from("{\n");
    for (i, k) in order.iter().enumerate() {
        let v = doc.get(*k).cloned().unwrap_or(Value::Null);
        let v = serde_json::to_string(&v).unwrap_or_default();
        s.push_str(&format!(
            "  {}: {}{}\n",
            Value::String((*k).to_string()),
            v,
            if i + 1 < order.len() { "," } else { "" }
        ));
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::replace_member;

    #[test]
    fn replaces_members() {
        let mut t =
            "{\n  \"$id\": \"https://x/a.v1.json\",\n  \"x-schema-version\": 1,\n}".to_string();
        assert!(replace_member(&mut t, "x-schema-version", "2"));
        assert!(replace_member(&mut t, "$id", "\"https://x/a.v2.json\""));
        assert_eq!(
            t,
            "{\n  \"$id\": \"https://x/a.v2.json\",\n  \"x-schema-version\": 2,\n}"
        );
    }
}
