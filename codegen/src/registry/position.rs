//! Maps a JSON pointer to the line where it appears in the source text, so
//! findings can say `auth/user.created.v2.json:14`.
//!
//! A small scanner walks the text along the pointer's tokens, skipping the
//! values it does not need; it never builds a value. When the pointer goes
//! further than the text (a pointer into a bundled `$defs` piece, a missing
//! member), the line of the deepest part that exists is returned.

/// 1-based line of the value at `pointer` (of its member name, for object
/// members), or of the deepest existing prefix; 1 when the text cannot be
/// scanned.
pub fn line_of(text: &str, pointer: &str) -> usize {
    let tokens: Vec<String> = if pointer.is_empty() {
        Vec::new()
    } else {
        pointer
            .trim_start_matches('/')
            .split('/')
            .map(crate::bundle::unescape_token)
            .collect()
    };
    let mut s = Scanner {
        bytes: text.as_bytes(),
        pos: 0,
        line: 1,
    };
    s.skip_ws();
    let mut best = s.line;
    for token in &tokens {
        match s.descend(token) {
            Some(line) => best = line,
            None => break,
        }
    }
    best
}

struct Scanner<'t> {
    bytes: &'t [u8],
    pos: usize,
    line: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
        }
        Some(b)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.bump();
        }
    }

    /// At a value: moves into its member/element `token`, leaving the
    /// scanner at that value; returns the line of the member.
    fn descend(&mut self, token: &str) -> Option<usize> {
        match self.peek()? {
            b'{' => {
                self.bump();
                loop {
                    self.skip_ws();
                    if self.peek()? == b'}' {
                        return None;
                    }
                    let line = self.line;
                    let key = self.string()?;
                    self.skip_ws();
                    if self.bump()? != b':' {
                        return None;
                    }
                    self.skip_ws();
                    if key == token {
                        return Some(line);
                    }
                    self.skip_value()?;
                    self.skip_ws();
                    match self.bump()? {
                        b',' => {}
                        _ => return None,
                    }
                }
            }
            b'[' => {
                let index: usize = token.parse().ok()?;
                self.bump();
                let mut i = 0;
                loop {
                    self.skip_ws();
                    if self.peek()? == b']' {
                        return None;
                    }
                    if i == index {
                        return Some(self.line);
                    }
                    self.skip_value()?;
                    self.skip_ws();
                    match self.bump()? {
                        b',' => i += 1,
                        _ => return None,
                    }
                }
            }
            _ => None,
        }
    }

    /// Reads a string at the cursor and returns it unescaped.
    fn string(&mut self) -> Option<String> {
        if self.bump()? != b'"' {
            return None;
        }
        let start = self.pos;
        let mut escaped = false;
        loop {
            match self.bump()? {
                b'\\' => {
                    escaped = true;
                    self.bump()?;
                }
                b'"' => break,
                _ => {}
            }
        }
        let raw = self.bytes.get(start - 1..self.pos)?;
        let raw = std::str::from_utf8(raw).ok()?;
        if escaped {
            serde_json::from_str(raw).ok()
        } else {
            Some(raw[1..raw.len() - 1].to_string())
        }
    }

    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.bump();
                loop {
                    match self.bump()? {
                        b'\\' => {
                            self.bump()?;
                        }
                        b'"' => return Some(()),
                        _ => {}
                    }
                }
            }
            b'{' | b'[' => {
                // Skip balanced brackets, minding strings.
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.skip_value()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.bump();
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.bump();
                }
            }
            _ => {
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n')
                ) {
                    self.bump();
                }
                Some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::line_of;

    const TEXT: &str = r#"{
  "title": "x",
  "properties": {
    "a/b": { "type": "string" },
    "list": {
      "examples": [
        "one",
        { "k": "v\"}" },
        "three"
      ]
    }
  }
}"#;

    #[test]
    fn finds_lines() {
        assert_eq!(line_of(TEXT, ""), 1);
        assert_eq!(line_of(TEXT, "/title"), 2);
        assert_eq!(line_of(TEXT, "/properties/a~1b"), 4);
        assert_eq!(line_of(TEXT, "/properties/a~1b/type"), 4);
        assert_eq!(line_of(TEXT, "/properties/list/examples/2"), 9);
        assert_eq!(line_of(TEXT, "/properties/list/examples/1/k"), 8);
        // Deepest existing prefix.
        assert_eq!(line_of(TEXT, "/properties/list/nope"), 5);
        assert_eq!(line_of("not json", "/a"), 1);
    }
}
