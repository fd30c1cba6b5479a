//! Event type names (`service.entity.action`) and NATS subject patterns.
use std::fmt;
use std::str::FromStr;

/// An event type: three subject tokens, `service.entity.action`, each
/// `[a-z][a-z0-9_]*` (`auth.user.created`, `ai_agent.recommendation.accepted`).
/// It is also the subject stem the event is published on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventType {
    /// The owning service, also the directory of its schemas (`auth`).
    pub service: String,
    /// The entity (`user`).
    pub entity: String,
    /// What happened (`created`).
    pub action: String,
}

/// Why a string is not an event type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not an event type: {reason} (expected service.entity.action, each token [a-z][a-z0-9_]*, e.g. auth.user.created)")]
pub struct InvalidEventType {
    /// What was given.
    pub input: String,
    /// What is wrong.
    pub reason: String,
}

/// Checks one subject token: `[a-z][a-z0-9_]*`. Returns what is wrong.
pub fn token_problem(token: &str) -> Option<String> {
    let mut chars = token.chars();
    match chars.next() {
        None => Some("a token is empty".to_string()),
        Some(c) if !c.is_ascii_lowercase() => Some(format!(
            "token {token:?} must start with a lower-case letter a-z"
        )),
        Some(_) => chars
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
            .map(|c| format!("token {token:?} contains {c:?}; only a-z, 0-9 and _ are allowed")),
    }
}

impl FromStr for EventType {
    type Err = InvalidEventType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(reason) = event_type_problem(s) {
            return Err(InvalidEventType {
                input: s.to_string(),
                reason,
            });
        }
        let mut tokens = s.split('.').map(str::to_string);
        let mut next = || tokens.next().unwrap_or_default();
        Ok(EventType {
            service: next(),
            entity: next(),
            action: next(),
        })
    }
}

/// Checks an event type's text: three tokens `[a-z][a-z0-9_]*` joined by
/// dots. Returns what is wrong; allocates nothing when nothing is (readers
/// check every received event's type with it).
pub fn event_type_problem(s: &str) -> Option<String> {
    let count = s.split('.').count();
    if count != 3 {
        return Some(format!("it has {count} tokens, not 3"));
    }
    s.split('.').find_map(token_problem)
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.service, self.entity, self.action)
    }
}

impl EventType {
    /// The registry path of version `version`:
    /// `service/entity.action.vN.json`.
    pub fn file_name(&self, version: u32) -> String {
        format!(
            "{}/{}.{}.v{}.json",
            self.service, self.entity, self.action, version
        )
    }

    /// The PascalCase Rust name (`UserCreated`).
    pub fn rust_name(&self) -> String {
        pascal_case(&format!("{}_{}", self.entity, self.action))
    }
}

/// PascalCase of a name: every run of ASCII letters and digits becomes a
/// word with its first letter upper-cased (`time_zone` -> `TimeZone`).
pub fn pascal_case(s: &str) -> String {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            cs.next()
                .map(|c| c.to_ascii_uppercase().to_string() + cs.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Parses a registry path `service/entity.action.vN.json` into its event
/// type and version; `None` when it does not have that shape.
pub fn parse_file_name(path: &str) -> Option<(EventType, u32)> {
    let (service, file) = path.split_once('/')?;
    let stem = file.strip_suffix(".json")?;
    let (name, version) = stem.rsplit_once(".v")?;
    let version: u32 = version.parse().ok()?;
    if version.to_string() != stem.rsplit_once(".v")?.1 {
        return None;
    }
    let ty: EventType = format!("{service}.{name}").parse().ok()?;
    Some((ty, version))
}

/// Checks a stream subject pattern (`auth.>`, `dlq.*.>`): tokens as for
/// event types, or `*`, or a final `>`. Returns what is wrong.
pub fn subject_pattern_problem(pattern: &str) -> Option<String> {
    let tokens: Vec<&str> = pattern.split('.').collect();
    for (i, t) in tokens.iter().enumerate() {
        match *t {
            "*" => {}
            ">" if i + 1 == tokens.len() => {}
            ">" => return Some("'>' may only be the last token".to_string()),
            t => {
                if let Some(p) = token_problem(t) {
                    return Some(p);
                }
            }
        }
    }
    None
}

/// Tokens the runtime appends to the event type in a subject
/// (`<organization>.<entity key>`): subjects have five tokens.
pub const SUBJECT_SUFFIX_TOKENS: usize = 2;

/// Whether a subject pattern captures every event of `ty`: it matches
/// `ty.<organization>.<key>` for any organisation and key (the runtime's
/// five-token subjects), so the tokens after the type must be wildcards.
pub fn pattern_covers(pattern: &str, ty: &EventType) -> bool {
    let stem = [ty.service.as_str(), ty.entity.as_str(), ty.action.as_str()];
    let pat: Vec<&str> = pattern.split('.').collect();
    for (i, p) in pat.iter().enumerate() {
        match (*p, stem.get(i)) {
            (">", _) => return true,
            ("*", _) => {}
            (lit, Some(s)) if lit == *s => {}
            _ => return false,
        }
    }
    pat.len() == stem.len() + SUBJECT_SUFFIX_TOKENS
}

/// Whether two subject patterns can match a common subject (JetStream
/// refuses streams with overlapping subjects).
pub fn patterns_overlap(a: &str, b: &str) -> bool {
    let a: Vec<&str> = a.split('.').collect();
    let b: Vec<&str> = b.split('.').collect();
    let mut i = 0;
    loop {
        match (a.get(i), b.get(i)) {
            (Some(&">"), Some(_)) | (Some(_), Some(&">")) => return true,
            (Some(x), Some(y)) if *x == "*" || *y == "*" || x == y => i += 1,
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_event_types() {
        assert!("auth.user.created".parse::<EventType>().is_ok());
        assert!("ai_agent.recommendation.created"
            .parse::<EventType>()
            .is_ok());
        for bad in [
            "auth.user",
            "Auth.user.created",
            "auth.user.created.x",
            "auth..x",
            "auth.user-x.y",
            "1a.b.c",
        ] {
            assert!(bad.parse::<EventType>().is_err(), "{bad}");
        }
    }

    #[test]
    fn file_names() {
        let (t, v) =
            parse_file_name("auth/user.created.v12.json").unwrap_or_else(|| unreachable!());
        assert_eq!((t.to_string().as_str(), v), ("auth.user.created", 12));
        assert!(parse_file_name("auth/user.created.v01.json").is_none());
        assert!(parse_file_name("auth/user.created.json").is_none());
        assert_eq!(t.rust_name(), "UserCreated");
    }

    #[test]
    fn subjects() {
        let t: EventType = "auth.user.created"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        assert!(pattern_covers("auth.>", &t));
        assert!(pattern_covers("auth.*.created.*.*", &t));
        assert!(!pattern_covers("auth.*.created", &t));
        assert!(pattern_covers("auth.user.created.*.*", &t));
        assert!(pattern_covers("auth.user.created.>", &t));
        assert!(!pattern_covers("auth.user.created.*", &t));
        assert!(!pattern_covers("auth.user.created", &t));
        assert!(!pattern_covers("catalog.>", &t));
        assert!(!pattern_covers("auth.user", &t));
        assert!(patterns_overlap("auth.>", "auth.user.*"));
        assert!(!patterns_overlap("auth.>", "dlq.>"));
        assert!(!patterns_overlap("a.b", "a.b.c"));
        assert!(subject_pattern_problem("a.>.b").is_some());
        assert!(subject_pattern_problem("ai_agent.>").is_none());
    }
}
