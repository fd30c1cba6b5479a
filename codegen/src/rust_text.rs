//! Rust source text for messages: a type as a person writes it.
//!
//! `quote`'s `to_string()` spaces every token (`:: std :: option :: Option
//! < i64 >`); [`compact`] glues them back (`Option<i64>`). Shared by the
//! generator and the derive, which build such text from `syn` types.

/// Absolute paths of prelude types, printed by their prelude name.
const PRELUDE: [(&str, &str); 4] = [
    ("::std::option::Option", "Option"),
    ("::std::string::String", "String"),
    ("::std::vec::Vec", "Vec"),
    ("::std::boxed::Box", "Box"),
];

/// Token text (`ty.to_token_stream().to_string()`) as written:
/// `:: std :: option :: Option < :: std :: vec :: Vec < u8 > >` becomes
/// `Option<Vec<u8>>`, `& 'static str` becomes `&'static str`, and other
/// absolute paths lose their leading `::` (`serde_json::Number`).
pub fn compact(tokens: &str) -> String {
    let mut out = String::with_capacity(tokens.len());
    let mut chars = tokens.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {
                let prev = out.chars().last();
                let next = chars.peek().copied();
                let glue = matches!(prev, None | Some('<' | '&' | ':' | '(' | '[' | '\''))
                    || matches!(next, Some('<' | '>' | ',' | ':' | ')' | ']' | ';'));
                if !glue {
                    out.push(' ');
                }
            }
            _ => out.push(c),
        }
    }
    for (path, name) in PRELUDE {
        out = replace_path(&out, path, name);
    }
    replace_path(&out, "::", "")
}

/// Replaces `path` where it starts a path (not inside `a::b`).
fn replace_path(text: &str, path: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(path) {
        let starts = at == 0
            || !rest[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        out.push_str(&rest[..at]);
        out.push_str(if starts { with } else { path });
        rest = &rest[at + path.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::compact;

    #[test]
    fn token_text_reads_as_written() {
        for (tokens, written) in [
            (":: std :: option :: Option < i64 >", "Option<i64>"),
            (
                ":: std :: option :: Option < :: std :: vec :: Vec < :: std :: string :: String > >",
                "Option<Vec<String>>",
            ),
            (":: serde_json :: Number", "serde_json::Number"),
            ("& 'static str", "&'static str"),
            ("std :: borrow :: Cow < 'static , str >", "std::borrow::Cow<'static, str>"),
            ("[u8 ; 4]", "[u8; 4]"),
            ("HashMap < String , (u8 , bool) >", "HashMap<String, (u8, bool)>"),
            (
                ":: std :: collections :: HashMap < :: std :: string :: String , i64 >",
                "std::collections::HashMap<String, i64>",
            ),
            ("UserCreatedV2Locale", "UserCreatedV2Locale"),
        ] {
            assert_eq!(compact(tokens), written, "{tokens}");
        }
    }
}
