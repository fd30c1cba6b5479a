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
use crate::schema_walk::each_schema;

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
    each_schema(schema, |at| {
        if let Some(Value::String(title)) = at.schema.get("title") {
            if !at.root && is_shadowing(title) {
                findings.push(finding(path, at.pointer_to("title"), "title", title));
            }
        }
        for defs in ["$defs", "definitions"] {
            if let Some(Value::Object(names)) = at.schema.get(defs) {
                for name in names.keys().filter(|n| is_shadowing(n)) {
                    let mut ptr = at.pointer_to(defs);
                    ptr.push('/');
                    push_token(&mut ptr, name);
                    findings.push(finding(path, ptr, "definition", name));
                }
            }
        }
    });
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
