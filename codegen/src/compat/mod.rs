//! The compatibility engine: compares two JSON Schemas (drafts 4 to
//! 2020-12) and reports every change, in each direction, with the JSON
//! pointers in both versions, whom it breaks, a one-line explanation and a
//! proven example document.
//!
//! Semantics follow Confluent Schema Registry's JSON Schema support:
//! narrowing (the new schema rejects a document the old one accepted)
//! breaks readers, i.e. BACKWARD compatibility; widening breaks writers,
//! i.e. FORWARD compatibility. Where exactness is impossible the engine is
//! conservative: a *changed* `pattern` or `format`, a changed `if`, and any
//! change to a schema whose `unevaluatedProperties`/`unevaluatedItems` sit
//! beside applicators (`anyOf`, `oneOf`, `if`, `dependentSchemas`, an
//! unmergeable `allOf`, or `contains` for items) is judged breaking in both
//! directions. Elsewhere `unevaluated*` is compared exactly as the
//! `additionalProperties`/rest of the tuple it equals; `contains` with
//! `minContains`/`maxContains`, `propertyNames` and `then`/`else` under
//! the same `if` are compared exactly (see the modules `contains`, `names`,
//! `conditionals`, `unevaluated`). A change inside `not` counts in the
//! other direction. `allOf` subschemas are merged into their parent where
//! that keeps the meaning (`type`s intersect), so refactoring into `allOf`
//! + `$ref` is not a change. Decisions:
//!
//! - A property that becomes required *with* a `default` is
//!   [`ChangeKind::RequiredPropertyWithDefaultAdded`]: breaking readers
//!   under [`Policy::Strict`] (a validator does not fill defaults), only
//!   informational ([`Breaks::None`]) under [`Policy::Lenient`] (generated
//!   readers fill the default in).
//! - `default` changes are informational; annotations (`title`,
//!   `description`, `examples`, `$comment`, `x-*`, ...) are ignored.
//! - Lenient policy: documents carry only the properties their own schema
//!   declares (in `properties`, `patternProperties` or a schema-valued
//!   `additionalProperties`), so adding a property to an open model,
//!   removing one into an open model, and opening or closing a model are
//!   accepted. Removing a declared property from a closed model still
//!   breaks readers (old documents legitimately carry it), and adding one
//!   to a closed model still breaks writers.
//! - `oneOf` alternatives are matched like `anyOf`; in addition, an added
//!   (or changed) `oneOf` alternative breaks readers when the engine finds
//!   an old document that now matches two alternatives (reported only with
//!   that proven example). Known gap: an overlap that only arises through a
//!   recursive `$ref` to the schema being widened is not detected.
use serde_json::Value;

mod arrays;
mod combinators;
mod conditionals;
mod contains;
mod error;
mod example;
mod kinds;
mod model;
mod names;
mod numbers;
mod objects;
mod same;
mod stack;
mod strings;
mod types;
mod unevaluated;
mod versions;
mod walk;

pub use error::CompatError;
pub use kinds::ChangeKind;
pub use model::{Breaks, Change, Finding, Mode, Policy, UnknownMode, UnknownPolicy};
pub use versions::check_versions;

use walk::{Ctx, Node, Pending};

/// Most candidate examples validated per change.
const MAX_PROVED: usize = 160;

/// Every change between `old` and `new`, in both directions.
///
/// Both schemas must be bundled: only local `$ref`s (`#`, `#/json/pointer`)
/// are followed. Recursive references terminate. Every reported example is
/// validated against both schemas (formats asserted) and dropped if it does
/// not prove its change.
pub fn diff(old: &Value, new: &Value, policy: Policy) -> Result<Vec<Change>, CompatError> {
    if stack::needs_big_stack(old) || stack::needs_big_stack(new) {
        // Deep or recursive schemas: compare on a thread with a large stack
        // (reserved, not committed) rather than risk the caller's.
        let outcome = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("tidings-compat".into())
                .stack_size(stack::BIG_STACK)
                .spawn_scoped(scope, || diff_here(old, new, policy))
                .map(|handle| handle.join())
        });
        return match outcome {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => diff_here(old, new, policy),
        };
    }
    diff_here(old, new, policy)
}

fn diff_here(old: &Value, new: &Value, policy: Policy) -> Result<Vec<Change>, CompatError> {
    for (side, v) in [("old", old), ("new", new)] {
        if !v.is_object() && !v.is_boolean() {
            return Err(CompatError::InvalidSchema {
                side,
                at: String::new(),
                reason: format!("a schema must be an object or a boolean, found {v}"),
            });
        }
    }
    let mut ctx = Ctx::new(old, new, policy);
    ctx.check_refs(walk::Side::Old)?;
    ctx.check_refs(walk::Side::New)?;
    if old == new {
        return Ok(Vec::new());
    }
    // A quick pass without examples: most comparisons in a registry find nothing.
    ctx.examples = false;
    let root_old = Node::new("", without_data(old));
    let root_new = Node::new("", without_data(new));
    if ctx.compare(&root_old, &root_new)?.is_empty() {
        return Ok(Vec::new());
    }
    let mut ctx = Ctx::new(old, new, policy);
    let pending = ctx.compare(&root_old, &root_new)?;
    let mut prover = Prover::new(old, new);
    let mut out: Vec<Change> = Vec::new();
    for p in pending {
        let duplicate = out.iter().any(|c| {
            c.kind == p.kind
                && c.old_path == p.old_path
                && c.new_path == p.new_path
                && c.breaks == p.breaks
        });
        if duplicate {
            continue;
        }
        let example = prover.prove(&p);
        out.push(Change {
            kind: p.kind,
            old_path: p.old_path,
            new_path: p.new_path,
            breaks: p.breaks,
            message: p.message,
            example,
        });
    }
    Ok(out)
}

/// The root without definitions and description, which comparisons never read
/// from the node itself (refs resolve against the whole document).
fn without_data(root: &Value) -> Value {
    match root {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "$defs" | "definitions" | "description"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Validates candidate examples against the two whole schemas.
struct Prover<'a> {
    old: &'a Value,
    new: &'a Value,
    validators: Option<Option<(jsonschema::Validator, jsonschema::Validator)>>,
}

impl<'a> Prover<'a> {
    fn new(old: &'a Value, new: &'a Value) -> Self {
        Prover {
            old,
            new,
            validators: None,
        }
    }

    fn prove(&mut self, p: &Pending) -> Option<Value> {
        if p.breaks == model::Breaks::None || p.candidates.is_empty() {
            return None;
        }
        let (old, new) = (self.old, self.new);
        let validators = self
            .validators
            .get_or_insert_with(|| Some((example::compile(old)?, example::compile(new)?)));
        let (ov, nv) = validators.as_ref()?;
        p.candidates.iter().take(MAX_PROVED).find_map(|c| {
            let (o, n) = (ov.is_valid(c), nv.is_valid(c));
            let proves = match p.breaks {
                model::Breaks::Readers => o && !n,
                model::Breaks::Writers => n && !o,
                model::Breaks::None => false,
            };
            proves.then(|| c.clone())
        })
    }
}
