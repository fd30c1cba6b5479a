//! One regular-expression dialect everywhere: ECMA-262, as JSON Schema
//! says. A schema `pattern` (or `patternProperties` name) is compiled by
//! two engines: the generated newtypes use regress (ECMA-262, without the
//! `u` flag), the runtime validator (jsonschema) translates ECMA-262 to
//! Rust's regex syntax and runs fancy-regex. A pattern either engine
//! refuses, or that they would read differently, is a finding here instead
//! of a build failure, a panic or a silent difference in production.
use serde_json::{json, Value};

use super::finding::Finding;
use crate::bundle::push_token;
use crate::schema_walk::each_schema;

const RULE: &str = "schema/pattern";
const HELP: &str = "write the pattern in ECMA-262 syntax without flags (no `(?i)`, `\\p{..}` or `\\u{..}`; spell out `[A-Za-z]`), see docs/registry.md, Patterns";

/// Findings for every pattern of the schema file `schema`: each schema's
/// `pattern` and the names of its `patternProperties`.
pub(crate) fn check(path: &str, schema: &Value, findings: &mut Vec<Finding>) {
    each_schema(schema, |at| {
        if let Some(Value::String(p)) = at.schema.get("pattern") {
            report(path, &at.pointer_to("pattern"), p, findings);
        }
        if let Some(Value::Object(names)) = at.schema.get("patternProperties") {
            for name in names.keys() {
                let mut ptr = at.pointer_to("patternProperties");
                ptr.push('/');
                push_token(&mut ptr, name);
                report(path, &ptr, name, findings);
            }
        }
    });
}

fn report(path: &str, ptr: &str, pattern: &str, findings: &mut Vec<Finding>) {
    if let Some(problem) = problem(pattern) {
        findings.push(Finding::error(
            path,
            ptr,
            RULE,
            format!("pattern {pattern:?} {problem}"),
            HELP,
        ));
    }
}

/// Why `pattern` is not in the dialect both engines share, if it is not.
pub(crate) fn problem(pattern: &str) -> Option<String> {
    // regress comes with the generator (feature `generate`, which the CLI
    // and build scripts enable); without it only the runtime side is checked.
    #[cfg(feature = "generate")]
    if let Err(e) = regress::Regex::new(pattern) {
        return Some(format!(
            "is not an ECMA-262 regular expression the generated code (regress) can compile: {e}"
        ));
    }
    if let Err(e) = jsonschema::options().build(&json!({ "pattern": pattern })) {
        return Some(format!(
            "cannot be compiled by the runtime validator (jsonschema with fancy-regex): {e}"
        ));
    }
    if let Some(escape) = unicode_mode_escape(pattern) {
        return Some(format!(
            "uses `\\{escape}{{..}}`, which means a Unicode class or code point only under ECMA-262's `u` flag: the generated code compiles patterns without it (reading `\\{escape}` as the letter {escape}) while the runtime validator reads it in Unicode mode"
        ));
    }
    None
}

/// The escape letter of the first `\p{`, `\P{` or `\u{` (outside an
/// escaped backslash) in `pattern`.
fn unicode_mode_escape(pattern: &str) -> Option<char> {
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            continue;
        }
        match chars.next() {
            Some(e @ ('p' | 'P' | 'u')) if chars.peek() == Some(&'{') => return Some(e),
            _ => {}
        }
    }
    None
}

#[cfg(all(test, feature = "generate"))]
mod tests {
    use super::*;

    #[test]
    fn each_engine_and_dialect_difference_is_caught() {
        assert!(problem("^[a-z]+$").is_none());
        assert!(problem("^(?=.*\\d)\\w+$").is_none());
        assert!(
            problem("^a\\\\p+$").is_none(),
            "an escaped backslash, then p"
        );
        let bad = ["(?i)abc", "(unclosed", "^\\p{L}+$", "\\u{1F600}", "^a{x}$"];
        let found: Vec<(&str, Option<String>)> = bad.iter().map(|p| (*p, problem(p))).collect();
        assert!(found.iter().all(|(_, f)| f.is_some()), "{found:#?}");
    }
}
