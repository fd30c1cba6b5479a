//! Schema names that would become Rust types shadowing the standard
//! prelude. The generated code and the `DomainEvent` derive write `String`,
//! `Option<T>`, `Vec<T>`, `Box<T>`; a definition named `String` (or titled
//! so) would become `pub struct String` in the same module, and the code
//! would stop compiling with cascading type errors. The generator names
//! such a type `StringValue` instead ([`unshadowed`]); the lint says so
//! with a warning (`schema/reserved-name`).
use serde_json::Value;

use super::event_type::pascal_case;
use super::finding::Finding;
use crate::bundle::push_token;
use crate::schema_keywords::{is_data, is_names_map};

/// Type and trait names of the Rust prelude (and serde's derives) the
/// generated code relies on.
pub const SHADOWED: [&str; 30] = [
    "AsMut",
    "AsRef",
    "Box",
    "Clone",
    "Copy",
    "Default",
    "Deserialize",
    "Drop",
    "Eq",
    "Err",
    "Extend",
    "Fn",
    "From",
    "Into",
    "IntoIterator",
    "Iterator",
    "None",
    "Ok",
    "Option",
    "Ord",
    "PartialEq",
    "PartialOrd",
    "Result",
    "Send",
    "Serialize",
    "Sized",
    "Some",
    "String",
    "Sync",
    "Vec",
];

/// Warnings for every definition name (`$defs`, `definitions`) and nested
/// `title` of `schema` whose Rust type name would be one of [`SHADOWED`]
/// (and is therefore renamed, see [`unshadowed`]).
pub(crate) fn check(path: &str, schema: &Value, findings: &mut Vec<Finding>) {
    let mut ptr = String::new();
    walk(path, schema, &mut ptr, true, findings);
}

fn walk(path: &str, v: &Value, ptr: &mut String, root: bool, findings: &mut Vec<Finding>) {
    let Value::Object(m) = v else {
        if let Value::Array(items) = v {
            for (i, item) in items.iter().enumerate() {
                let len = ptr.len();
                ptr.push('/');
                ptr.push_str(&i.to_string());
                walk(path, item, ptr, false, findings);
                ptr.truncate(len);
            }
        }
        return;
    };
    if !root {
        if let Some(Value::String(title)) = m.get("title") {
            if is_shadowing(title) {
                findings.push(finding(path, format!("{ptr}/title"), "title", title));
            }
        }
    }
    for (k, child) in m {
        if is_data(k) {
            continue;
        }
        let len = ptr.len();
        ptr.push('/');
        push_token(ptr, k);
        let names_map = is_names_map(k);
        match child {
            Value::Object(entries) if names_map => {
                for (name, schema) in entries {
                    let len = ptr.len();
                    ptr.push('/');
                    push_token(ptr, name);
                    if matches!(k.as_str(), "$defs" | "definitions") && is_shadowing(name) {
                        findings.push(finding(path, ptr.clone(), "definition", name));
                    }
                    walk(path, schema, ptr, false, findings);
                    ptr.truncate(len);
                }
            }
            _ => walk(path, child, ptr, false, findings),
        }
        ptr.truncate(len);
    }
}

/// Whether a definition or title `name` would become a Rust type that
/// shadows one of [`SHADOWED`].
pub(crate) fn is_shadowing(name: &str) -> bool {
    SHADOWED.contains(&pascal_case(name).as_str())
}

/// The name the generator gives a definition or title: `name` itself, or
/// for one that would shadow the prelude its PascalCase form with `Value`
/// appended (`String` -> `StringValue`, `option` -> `OptionValue`).
pub fn unshadowed(name: &str) -> String {
    if is_shadowing(name) {
        format!("{}Value", pascal_case(name))
    } else {
        name.to_string()
    }
}

fn finding(path: &str, pointer: String, what: &str, name: &str) -> Finding {
    let rust = pascal_case(name);
    let renamed = unshadowed(name);
    Finding::error(
        path,
        pointer,
        "schema/reserved-name",
        format!("{what} {name:?} is generated as the Rust type `{renamed}`: `{rust}` would shadow the standard `{rust}` the generated code uses"),
        format!("nothing to do unless Rust code names the type; to choose the name yourself, rename the {what} (e.g. to say what it holds) and update the `$ref`s to it"),
    )
    .warning()
}
