//! Reading the schema at compile time: bundling, the `x-*` keywords, and
//! what a property schema allows (its [`Shape`]).
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use syn::LitStr;
use tidings_codegen::bundle::{bundle_with, resolve_pointer};

/// A schema file bundled into one document.
pub(crate) struct Loaded {
    /// The resolved path of the schema file.
    pub(crate) path: PathBuf,
    /// The bundled document (cross-file `$ref`s merged under `$defs`).
    pub(crate) root: Value,
    /// Every file read while bundling, sorted, absolute when the base is.
    pub(crate) files: Vec<PathBuf>,
}

/// Reads and bundles the schema `lit` names, relative to `base`.
pub(crate) fn load(base: &Path, lit: &LitStr) -> syn::Result<Loaded> {
    let path = tidings_codegen::bundle::normalize(&base.join(lit.value()));
    if !path.is_file() {
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "schema file not found: {} (the `schema` path is relative to CARGO_MANIFEST_DIR, {})",
                path.display(),
                base.display()
            ),
        ));
    }
    let read = RefCell::new(BTreeSet::new());
    let loader = |p: &Path| {
        read.borrow_mut().insert(p.to_path_buf());
        std::fs::read_to_string(p)
    };
    // The bundler is not expected to panic; if it ever does, report it as an
    // error at the attribute instead of crashing the compiler's macro call.
    let bundled =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| bundle_with(&loader, &path)))
            .map_err(|_| {
                syn::Error::new(
                    lit.span(),
                    format!(
                "internal error: bundling {} panicked (a bug in tidings-codegen; please report it)",
                path.display()
            ),
                )
            })?;
    let root = bundled.map_err(|e| {
        // A file-level problem names its file in `kind` already.
        let message = if e.pointer.is_empty() {
            format!("cannot bundle the schema: {}", e.kind)
        } else {
            format!("cannot bundle the schema: {e}")
        };
        syn::Error::new(lit.span(), message)
    })?;
    if !root.is_object() {
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "{} is not an object schema: an event payload is a JSON object",
                path.display()
            ),
        ));
    }
    Ok(Loaded {
        path,
        root,
        files: read.into_inner().into_iter().collect(),
    })
}

/// A JSON type name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Null,
    Boolean,
    Integer,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "null" => Kind::Null,
            "boolean" => Kind::Boolean,
            "integer" => Kind::Integer,
            "number" => Kind::Number,
            "string" => Kind::String,
            "array" => Kind::Array,
            "object" => Kind::Object,
            _ => return None,
        })
    }

    fn of(v: &Value) -> Kind {
        match v {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Boolean,
            Value::Number(n) if n.is_i64() || n.is_u64() => Kind::Integer,
            Value::Number(_) => Kind::Number,
            Value::String(_) => Kind::String,
            Value::Array(_) => Kind::Array,
            Value::Object(_) => Kind::Object,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Boolean => "boolean",
            Kind::Integer => "integer",
            Kind::Number => "number",
            Kind::String => "string",
            Kind::Array => "array",
            Kind::Object => "object",
        }
    }
}

/// The JSON types a set allows, where `number` includes `integer`.
fn intersect(a: &BTreeSet<Kind>, b: &BTreeSet<Kind>) -> BTreeSet<Kind> {
    let mut out = BTreeSet::new();
    for k in a {
        if b.contains(k) {
            out.insert(*k);
        } else if (*k == Kind::Number && b.contains(&Kind::Integer))
            || (*k == Kind::Integer && b.contains(&Kind::Number))
        {
            out.insert(Kind::Integer);
        }
    }
    out
}

/// What a (property) schema allows, as far as the derive checks it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shape {
    /// The JSON types allowed; `None` when the schema does not restrict them.
    pub(crate) kinds: Option<BTreeSet<Kind>>,
    /// The string `format`, if any.
    pub(crate) format: Option<String>,
    /// The schema of array items (`items` as an object schema).
    pub(crate) items: Option<Value>,
    /// The schema of object values not named in `properties` (a
    /// schema-valued `additionalProperties`), when the object declares no
    /// properties of its own.
    pub(crate) values: Option<Value>,
}

impl Shape {
    fn restrict(&mut self, kinds: BTreeSet<Kind>) {
        self.kinds = Some(match &self.kinds {
            Some(have) => intersect(have, &kinds),
            None => kinds,
        });
    }

    fn merge(&mut self, other: Shape) {
        if let Some(k) = other.kinds {
            self.restrict(k);
        }
        if self.format.is_none() {
            self.format = other.format;
        }
        if self.items.is_none() {
            self.items = other.items;
        }
        if self.values.is_none() {
            self.values = other.values;
        }
    }

    /// Whether the schema allows `kind`.
    pub(crate) fn allows(&self, kind: Kind) -> bool {
        match &self.kinds {
            None => true,
            Some(k) => k.contains(&kind) || (kind == Kind::Integer && k.contains(&Kind::Number)),
        }
    }

    /// Whether the schema allows `null`.
    pub(crate) fn nullable(&self) -> bool {
        self.allows(Kind::Null)
    }

    /// The string format, when the schema allows strings.
    pub(crate) fn format(&self) -> Option<&str> {
        self.format.as_deref()
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kinds {
            None => f.write_str("of any type"),
            Some(k) if k.is_empty() => f.write_str("impossible (it allows no value)"),
            Some(k) => {
                let names: Vec<String> = k
                    .iter()
                    .map(|k| match (k, &self.format) {
                        (Kind::String, Some(fmt)) => format!("`string` (format `{fmt}`)"),
                        _ => format!("`{}`", k.name()),
                    })
                    .collect();
                f.write_str(&names.join(" or "))
            }
        }
    }
}

/// How deep `$ref` chains and combinators are followed.
const MAX_DEPTH: usize = 32;

/// The shape of `schema`, following local `$ref`s into `root`.
pub(crate) fn shape(root: &Value, schema: &Value) -> Shape {
    shape_at(root, schema, 0)
}

fn shape_at(root: &Value, schema: &Value, depth: usize) -> Shape {
    let mut out = Shape::default();
    if depth > MAX_DEPTH {
        return out;
    }
    let obj = match schema {
        Value::Bool(true) => return out,
        Value::Bool(false) => {
            out.kinds = Some(BTreeSet::new());
            return out;
        }
        Value::Object(o) => o,
        _ => return out,
    };
    if let Some(Value::String(r)) = obj.get("$ref") {
        if let Some(target) = r
            .strip_prefix('#')
            .and_then(|ptr| resolve_pointer(root, ptr))
        {
            out.merge(shape_at(root, target, depth + 1));
        }
    }
    match obj.get("type") {
        Some(Value::String(t)) => out.restrict(Kind::parse(t).into_iter().collect()),
        Some(Value::Array(ts)) => out.restrict(
            ts.iter()
                .filter_map(|t| t.as_str().and_then(Kind::parse))
                .collect(),
        ),
        _ => {}
    }
    if let Some(Value::Array(values)) = obj.get("enum") {
        out.restrict(values.iter().map(Kind::of).collect());
    }
    if let Some(value) = obj.get("const") {
        out.restrict(std::iter::once(Kind::of(value)).collect());
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = obj.get(key) {
            let mut union = Shape {
                kinds: Some(BTreeSet::new()),
                ..Shape::default()
            };
            for b in branches {
                let s = shape_at(root, b, depth + 1);
                match (&mut union.kinds, s.kinds) {
                    (Some(u), Some(k)) => u.extend(k),
                    _ => union.kinds = None,
                }
                union.format = union.format.or(s.format);
                union.items = union.items.or(s.items);
                union.values = union.values.or(s.values);
            }
            out.merge(union);
        }
    }
    if let Some(Value::Array(branches)) = obj.get("allOf") {
        for b in branches {
            out.merge(shape_at(root, b, depth + 1));
        }
    }
    if let Some(Value::String(f)) = obj.get("format") {
        out.format = Some(f.clone());
    }
    if let Some(items) = obj.get("items").filter(|i| i.is_object() || i.is_boolean()) {
        out.items = Some(items.clone());
    }
    let plain_map = obj.get("properties").is_none() && obj.get("patternProperties").is_none();
    if let Some(values) = obj
        .get("additionalProperties")
        .filter(|v| plain_map && (v.is_object() || v.is_boolean()))
    {
        out.values = Some(values.clone());
    }
    out
}

/// The object model of the root schema: what the struct is checked against.
pub(crate) struct ObjectModel<'a> {
    /// `properties`.
    pub(crate) properties: Option<&'a Map<String, Value>>,
    /// `required`.
    pub(crate) required: Vec<&'a str>,
    /// The keyword that forbids undeclared names (`additionalProperties` or
    /// `unevaluatedProperties`, set to `false`, without `patternProperties`).
    pub(crate) closed: Option<&'static str>,
    /// A schema-valued `additionalProperties`: what undeclared properties
    /// must be.
    pub(crate) additional: Option<&'a Value>,
}

/// Reads the object model of the root, following a root `$ref`.
pub(crate) fn object_model(root: &Value) -> ObjectModel<'_> {
    let mut node = root;
    for _ in 0..MAX_DEPTH {
        match node.get("$ref").and_then(Value::as_str) {
            Some(r) if node.get("properties").is_none() => {
                match r.strip_prefix('#').and_then(|p| resolve_pointer(root, p)) {
                    Some(target) => node = target,
                    None => break,
                }
            }
            _ => break,
        }
    }
    let has_patterns = node.get("patternProperties").is_some();
    let is_false = |k: &str| node.get(k) == Some(&Value::Bool(false));
    ObjectModel {
        properties: node.get("properties").and_then(Value::as_object),
        required: node
            .get("required")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default(),
        closed: ["additionalProperties", "unevaluatedProperties"]
            .into_iter()
            .find(|k| !has_patterns && is_false(k)),
        additional: node
            .get("additionalProperties")
            .filter(|v| v.is_object() && !has_patterns),
    }
}

/// `$id` of the root, if it is a non-empty string.
pub(crate) fn id(root: &Value) -> Option<&str> {
    root.get("$id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn shapes() {
        let root = json!({
            "$defs": {
                "Id": {"type": "string", "format": "uuid"},
                "Opt": {"anyOf": [{"$ref": "#/$defs/Id"}, {"type": "null"}]}
            }
        });
        let s = shape(&root, &json!({"$ref": "#/$defs/Id", "description": "x"}));
        assert_eq!(s.to_string(), "`string` (format `uuid`)");
        assert!(!s.nullable());
        let s = shape(&root, &json!({"$ref": "#/$defs/Opt"}));
        assert!(s.nullable() && s.allows(Kind::String));
        assert_eq!(s.format(), Some("uuid"));
        let s = shape(&root, &json!({"type": ["integer", "null"]}));
        assert_eq!(s.to_string(), "`null` or `integer`");
        let s = shape(&root, &json!({"type": "number"}));
        assert!(s.allows(Kind::Integer));
        let s = shape(&root, &json!({"enum": ["a", null]}));
        assert!(s.nullable() && s.allows(Kind::String) && !s.allows(Kind::Integer));
        let s = shape(
            &root,
            &json!({"allOf": [{"type": "number"}, {"type": "integer"}]}),
        );
        assert_eq!(s.to_string(), "`integer`");
        assert_eq!(shape(&root, &json!({})).to_string(), "of any type");
        assert_eq!(
            shape(&root, &json!(false)).to_string(),
            "impossible (it allows no value)"
        );
    }

    #[test]
    fn object_models() {
        let root = json!({
            "$ref": "#/$defs/P",
            "$defs": {"P": {"properties": {"a": {}}, "required": ["a"], "additionalProperties": false}}
        });
        let m = object_model(&root);
        assert_eq!(m.closed, Some("additionalProperties"));
        assert_eq!(m.required, vec!["a"]);
        let open = json!({"properties": {}, "patternProperties": {"^x": {}}, "additionalProperties": false});
        assert_eq!(object_model(&open).closed, None);
    }
}
