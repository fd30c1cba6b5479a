//! Every `pattern` of the registry compiled with regress, the regex engine
//! typify's output uses at run time: a pattern it cannot compile is a
//! generation error at its file and pointer, never a panic in a service.
use serde_json::Value;

use super::error::Diagnostic;
use crate::bundle::push_token;
use crate::registry::Source;

/// Diagnostics for the patterns of every JSON file in `source` that
/// regress cannot compile.
pub(crate) fn check(source: &Source) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (path, text) in &source.files {
        if !path.ends_with(".json") {
            continue;
        }
        if let Ok(v) = serde_json::from_str::<Value>(text) {
            let mut ptr = String::new();
            walk(path, &v, &mut ptr, false, &mut out);
        }
    }
    out
}

fn walk(file: &str, v: &Value, ptr: &mut String, names: bool, out: &mut Vec<Diagnostic>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let len = ptr.len();
                ptr.push('/');
                push_token(ptr, k);
                if !names && k == "pattern" {
                    if let Value::String(p) = child {
                        if let Err(e) = regress::Regex::new(p) {
                            out.push(Diagnostic {
                                file: file.to_string(),
                                line: 0,
                                pointer: ptr.clone(),
                                message: format!("pattern {p:?} is not a regular expression the generated code can compile (regress: {e})"),
                                help: "use ECMAScript regex syntax (JSON Schema's dialect)".into(),
                            });
                        }
                    }
                } else if names && k == "patternProperties" {
                    // Not reached: names maps are walked below.
                } else if names
                    || !(matches!(
                        k.as_str(),
                        "enum" | "const" | "default" | "examples" | "example"
                    ) || k.starts_with("x-"))
                {
                    let child_names = !names
                        && matches!(
                            k.as_str(),
                            "properties"
                                | "$defs"
                                | "definitions"
                                | "patternProperties"
                                | "dependentSchemas"
                        );
                    walk(file, child, ptr, child_names, out);
                }
                ptr.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let len = ptr.len();
                ptr.push('/');
                ptr.push_str(&i.to_string());
                walk(file, child, ptr, false, out);
                ptr.truncate(len);
            }
        }
        _ => {}
    }
}
