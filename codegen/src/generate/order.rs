//! The order in which schemas declare their properties.
//!
//! `serde_json::Value` (without `preserve_order`) and typify both sort
//! properties by name; the generated structs should follow the schema
//! instead (issue 12.8). The schema texts are read once more here, keeping
//! the key order of every `properties` object, and
//! [`Orders::reorder`] puts a struct's fields in the order of the
//! `properties` object they came from.
use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// The key lists of every `properties` object of the registry's files.
#[derive(Debug, Default)]
pub(crate) struct Orders {
    lists: Vec<Vec<String>>,
}

/// A JSON value reduced to what ordering needs: objects as ordered pairs.
enum Node {
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
    Other,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some(n) = seq.next_element()? {
            out.push(n);
        }
        Ok(Node::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Node>()? {
            out.push((k, v));
        }
        Ok(Node::Object(out))
    }
}

impl Orders {
    /// The property orders of every text (unparsable texts are skipped:
    /// the lint reports them).
    pub(crate) fn from_texts<'t>(texts: impl IntoIterator<Item = &'t str>) -> Self {
        let mut out = Orders::default();
        for text in texts {
            if let Ok(node) = serde_json::from_str::<Node>(text) {
                out.collect(&node);
            }
        }
        out
    }

    fn collect(&mut self, node: &Node) {
        match node {
            Node::Object(members) => {
                for (k, v) in members {
                    // Data: a `properties` member inside it is not a schema's.
                    if crate::schema_keywords::is_data(k) {
                        continue;
                    }
                    if k == "properties" {
                        if let Node::Object(props) = v {
                            self.lists
                                .push(props.iter().map(|(k, _)| k.clone()).collect());
                            props.iter().for_each(|(_, p)| self.collect(p));
                            continue;
                        }
                    }
                    self.collect(v);
                }
            }
            Node::Array(items) => items.iter().for_each(|n| self.collect(n)),
            Node::Other => {}
        }
    }

    /// The declared order for a struct whose properties are `wires`: the
    /// shortest `properties` list holding all of them (the first such list
    /// when several fit equally).
    pub(crate) fn order_of(&self, wires: &BTreeSet<&str>) -> Option<&[String]> {
        self.lists
            .iter()
            .filter(|l| l.len() >= wires.len() && wires.iter().all(|w| l.iter().any(|k| k == w)))
            .min_by_key(|l| l.len())
            .map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tightest_properties_list_gives_the_order() {
        let orders = Orders::from_texts([
            r#"{"properties": {"b": {}, "a": {"properties": {"z": {}, "y": {}}}, "c": {}},
                "examples": [{"properties": {"a": 1, "b": 2}}]}"#,
        ]);
        let set = |ws: &[&'static str]| ws.iter().copied().collect::<BTreeSet<&str>>();
        let order = |ws: &[&'static str]| orders.order_of(&set(ws)).map(<[String]>::to_vec);
        assert_eq!(
            order(&["a", "b"]),
            Some(vec!["b".into(), "a".into(), "c".into()])
        );
        assert_eq!(order(&["y", "z"]), Some(vec!["z".into(), "y".into()]));
        // Data (`examples`) is not a schema.
        assert_eq!(order(&["x"]), None);
    }
}
