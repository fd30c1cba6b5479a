//! String keywords: `minLength`, `maxLength`, `pattern`, `format`.
use serde_json::Value;

use super::error::CompatError;
use super::kinds::ChangeKind;
use super::model::Breaks;
use super::numbers::witnesses;
use super::walk::{Ctx, Node, Pending};

/// The four kinds of one bound keyword: added, removed, narrowed, widened.
pub(crate) type BoundKinds = (ChangeKind, ChangeKind, ChangeKind, ChangeKind);

/// Compares a non-negative integer bound keyword (`minLength`, `maxItems`, ...).
/// `lower` says whether raising it narrows. Returns the changes found with
/// no examples; the caller fills them.
pub(crate) fn integer_bound(
    o: &Node,
    n: &Node,
    key: &str,
    lower: bool,
    kinds: BoundKinds,
    what: &str,
) -> Option<Pending> {
    let ov = o
        .get(key)
        .and_then(Value::as_f64)
        .filter(|v| !lower || *v > 0.0);
    let nv = n
        .get(key)
        .and_then(Value::as_f64)
        .filter(|v| !lower || *v > 0.0);
    let (added, removed, narrowed, widened) = kinds;
    let (kind, breaks, message) = match (ov, nv) {
        (None, Some(b)) => (
            added,
            Breaks::Readers,
            format!("{key} {b} added: old {what} outside it are rejected"),
        ),
        (Some(a), None) => (
            removed,
            Breaks::Writers,
            format!("{key} {a} removed: new {what} outside it are rejected by old readers"),
        ),
        (Some(a), Some(b)) if (lower && b > a) || (!lower && b < a) => (
            narrowed,
            Breaks::Readers,
            format!("{key} changed from {a} to {b}: old {what} in between are rejected"),
        ),
        (Some(a), Some(b)) if a != b => (
            widened,
            Breaks::Writers,
            format!(
                "{key} changed from {a} to {b}: new {what} in between are rejected by old readers"
            ),
        ),
        _ => return None,
    };
    Some(Pending::new(
        kind,
        o.kw_ptr(key),
        n.kw_ptr(key),
        breaks,
        message,
        Vec::new(),
    ))
}

/// Compares the string keywords of two nodes.
pub(crate) fn compare(
    ctx: &mut Ctx<'_>,
    o: &Node,
    n: &Node,
    out: &mut Vec<Pending>,
) -> Result<(), CompatError> {
    let bounds = [
        (
            "minLength",
            true,
            (
                ChangeKind::MinLengthAdded,
                ChangeKind::MinLengthRemoved,
                ChangeKind::MinLengthIncreased,
                ChangeKind::MinLengthDecreased,
            ),
        ),
        (
            "maxLength",
            false,
            (
                ChangeKind::MaxLengthAdded,
                ChangeKind::MaxLengthRemoved,
                ChangeKind::MaxLengthDecreased,
                ChangeKind::MaxLengthIncreased,
            ),
        ),
    ];
    for (key, lower, kinds) in bounds {
        if let Some(mut p) = integer_bound(o, n, key, lower, kinds, "strings") {
            p.candidates = witnesses(ctx, o, n, p.breaks, &[key]);
            out.push(p);
        }
    }
    for (key, kinds) in [
        (
            "pattern",
            (
                ChangeKind::PatternAdded,
                ChangeKind::PatternRemoved,
                ChangeKind::PatternChanged,
            ),
        ),
        (
            "format",
            (
                ChangeKind::FormatAdded,
                ChangeKind::FormatRemoved,
                ChangeKind::FormatChanged,
            ),
        ),
    ] {
        let ov = o.get(key).and_then(Value::as_str);
        let nv = n.get(key).and_then(Value::as_str);
        let mut found: Vec<(ChangeKind, Breaks, String)> = Vec::new();
        match (ov, nv) {
            (None, Some(b)) => found.push((
                kinds.0,
                Breaks::Readers,
                format!("{key} {b:?} added: old strings that do not match it are rejected"),
            )),
            (Some(a), None) => found.push((
                kinds.1,
                Breaks::Writers,
                format!("{key} {a:?} removed: new strings that do not match it are rejected by old readers"),
            )),
            (Some(a), Some(b)) if a != b => {
                found.push((
                    kinds.2,
                    Breaks::Readers,
                    format!("{key} changed from {a:?} to {b:?}: old strings matching only the old one are rejected"),
                ));
                found.push((
                    kinds.2,
                    Breaks::Writers,
                    format!(
                        "{key} changed from {a:?} to {b:?}: new strings matching only the new one are rejected by old readers"
                    ),
                ));
            }
            _ => {}
        }
        for (kind, breaks, message) in found {
            let candidates = witnesses(ctx, o, n, breaks, &[key]);
            out.push(Pending::new(
                kind,
                o.kw_ptr(key),
                n.kw_ptr(key),
                breaks,
                message,
                candidates,
            ));
        }
    }
    Ok(())
}
