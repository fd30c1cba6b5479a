//! The failure record a dead letter carries in its headers, beside the
//! original body and headers (untouched).
use async_nats::{HeaderMap, HeaderValue};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The stream the event was stored in.
pub const STREAM_HEADER: &str = "Tidings-Dlq-Stream";
/// Its sequence there.
pub const SEQUENCE_HEADER: &str = "Tidings-Dlq-Sequence";
/// Its subject there.
pub const SUBJECT_HEADER: &str = "Tidings-Dlq-Subject";
/// The consumer group that gave it up.
pub const GROUP_HEADER: &str = "Tidings-Dlq-Group";
/// How many times it was delivered to the group.
pub const DELIVERIES_HEADER: &str = "Tidings-Dlq-Deliveries";
/// `exhausted` (the handler kept failing) or `poison` (unreadable).
pub const REASON_HEADER: &str = "Tidings-Dlq-Reason";
/// The last error text.
pub const ERROR_HEADER: &str = "Tidings-Dlq-Error";
/// When the group's handler first failed on it (RFC 3339).
pub const FIRST_FAILURE_HEADER: &str = "Tidings-Dlq-First-Failure";
/// When it was given up (RFC 3339).
pub const LAST_FAILURE_HEADER: &str = "Tidings-Dlq-Last-Failure";
/// The original `Nats-Msg-Id` (the copy carries its own).
pub const MSG_ID_HEADER_ORIGINAL: &str = "Tidings-Dlq-Msg-Id";
/// How many times it has been redriven before (absent: never).
pub const REDRIVE_COUNT_HEADER: &str = "Tidings-Redrive-Count";
/// On a redriven event: the only consumer group that handles it (absent:
/// every group whose filter matches). Other groups ack it unhandled.
pub const REDRIVE_GROUP_HEADER: &str = "Tidings-Redrive-Group";
/// What was shortened or left out so that the copy fits the server's
/// `max_payload` (comma-separated: `error`, `ce-headers`, `headers`); absent
/// when nothing was. The body is never shortened.
pub const TRUNCATED_HEADER: &str = "Tidings-Dlq-Truncated";

/// The longest error text kept, in bytes.
pub const MAX_ERROR_LEN: usize = 1024;

/// Why an event was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterKind {
    /// The handler failed on every allowed delivery.
    Exhausted,
    /// The message could not be read as an event of the handled type.
    Poison,
}

impl DeadLetterKind {
    /// `exhausted` or `poison`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterKind::Exhausted => "exhausted",
            DeadLetterKind::Poison => "poison",
        }
    }
}

/// What the dead letter says about the failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRecord {
    /// The original stream.
    pub stream: String,
    /// The original stream sequence.
    pub sequence: u64,
    /// The original subject.
    pub subject: String,
    /// The consumer group.
    pub group: String,
    /// Deliveries to the group.
    pub deliveries: u32,
    /// Why.
    pub kind: DeadLetterKind,
    /// The last error.
    pub error: String,
    /// The first failure, if known.
    pub first_failure: Option<OffsetDateTime>,
    /// When it was given up.
    pub last_failure: OffsetDateTime,
    /// Earlier redrives of this event.
    pub redrive_count: u32,
}

/// A header of a dead letter that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Tidings dead letter: header {header} is {problem}")]
pub struct RecordError {
    /// The header.
    pub header: &'static str,
    /// `missing` or what is wrong with it.
    pub problem: String,
}

impl FailureRecord {
    /// Writes the record into `headers`, replacing earlier values.
    pub fn write(&self, headers: &mut HeaderMap) {
        let time = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
        let mut set = |name: &'static str, value: &str| {
            headers.insert(name, header_value(value));
        };
        set(STREAM_HEADER, &self.stream);
        set(SEQUENCE_HEADER, &self.sequence.to_string());
        set(SUBJECT_HEADER, &self.subject);
        set(GROUP_HEADER, &self.group);
        set(DELIVERIES_HEADER, &self.deliveries.to_string());
        set(REASON_HEADER, self.kind.as_str());
        set(ERROR_HEADER, &self.error);
        if let Some(first) = self.first_failure {
            set(FIRST_FAILURE_HEADER, &time(first));
        }
        set(LAST_FAILURE_HEADER, &time(self.last_failure));
        if self.redrive_count > 0 {
            set(REDRIVE_COUNT_HEADER, &self.redrive_count.to_string());
        }
    }

    /// Reads the record from a dead letter's headers.
    ///
    /// # Errors
    /// A required header is missing or malformed.
    pub fn read(headers: &HeaderMap) -> Result<Self, RecordError> {
        let text = |header: &'static str| {
            headers
                .get(header)
                .map(|v| v.as_str().to_string())
                .ok_or(RecordError {
                    header,
                    problem: "missing".into(),
                })
        };
        let number = |header: &'static str| {
            text(header)?.parse::<u64>().map_err(|e| RecordError {
                header,
                problem: format!("not a number: {e}"),
            })
        };
        let when = |header: &'static str, value: String| {
            OffsetDateTime::parse(&value, &Rfc3339).map_err(|e| RecordError {
                header,
                problem: format!("not an RFC 3339 time: {e}"),
            })
        };
        let kind = match text(REASON_HEADER)?.as_str() {
            "exhausted" => DeadLetterKind::Exhausted,
            "poison" => DeadLetterKind::Poison,
            other => {
                return Err(RecordError {
                    header: REASON_HEADER,
                    problem: format!("{other:?}, not exhausted or poison"),
                })
            }
        };
        let first_failure = match headers.get(FIRST_FAILURE_HEADER) {
            Some(v) => Some(when(FIRST_FAILURE_HEADER, v.as_str().to_string())?),
            None => None,
        };
        let redrive_count = match headers.get(REDRIVE_COUNT_HEADER) {
            Some(_) => u32::try_from(number(REDRIVE_COUNT_HEADER)?).unwrap_or(u32::MAX),
            None => 0,
        };
        // The group and subject name who handles a redrive and where it
        // goes: both pass the token allow-list (`crate::token`).
        let group = text(GROUP_HEADER)?;
        crate::token::check_group(&group).map_err(|e| RecordError {
            header: GROUP_HEADER,
            problem: e.to_string(),
        })?;
        let subject = text(SUBJECT_HEADER)?;
        if let Some(e) = subject
            .split('.')
            .find_map(|t| crate::token::check_token("subject token", t).err())
        {
            return Err(RecordError {
                header: SUBJECT_HEADER,
                problem: e.to_string(),
            });
        }
        Ok(Self {
            stream: text(STREAM_HEADER)?,
            sequence: number(SEQUENCE_HEADER)?,
            subject,
            group,
            deliveries: u32::try_from(number(DELIVERIES_HEADER)?).unwrap_or(u32::MAX),
            kind,
            error: text(ERROR_HEADER)?,
            first_failure,
            last_failure: when(LAST_FAILURE_HEADER, text(LAST_FAILURE_HEADER)?)?,
            redrive_count,
        })
    }
}

/// A header value from any text: control characters (CR, LF...) become
/// spaces and the text is cut at [`MAX_ERROR_LEN`] bytes, on a character
/// boundary, with `…` to say so.
pub fn header_value(text: &str) -> HeaderValue {
    let mut clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.len() > MAX_ERROR_LEN {
        let mut cut = MAX_ERROR_LEN;
        while !clean.is_char_boundary(cut) {
            cut -= 1;
        }
        clean.truncate(cut);
        clean.push('…');
    }
    // Cannot fail: no control characters are left.
    clean
        .parse()
        .unwrap_or_else(|_| HeaderValue::from("(unprintable)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> FailureRecord {
        FailureRecord {
            stream: "AUTH_EVENTS".into(),
            sequence: 42,
            subject: "auth.user.created.org-1.u-1".into(),
            group: "analytics".into(),
            deliveries: 5,
            kind: DeadLetterKind::Exhausted,
            error: "database down".into(),
            first_failure: Some(OffsetDateTime::UNIX_EPOCH),
            last_failure: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(90),
            redrive_count: 2,
        }
    }

    #[test]
    fn a_record_reads_back_what_was_written() {
        let mut headers = HeaderMap::new();
        record().write(&mut headers);
        assert_eq!(FailureRecord::read(&headers), Ok(record()));
    }

    #[test]
    fn error_text_is_made_a_safe_header_value() {
        let v = header_value("line one\r\nline two\u{0}");
        assert_eq!(v.as_str(), "line one  line two ");
        let long = "é".repeat(MAX_ERROR_LEN);
        let v = header_value(&long);
        assert!(v.as_str().len() <= MAX_ERROR_LEN + '…'.len_utf8());
        assert!(v.as_str().ends_with('…'));
    }

    #[test]
    fn a_missing_or_bad_header_is_named() {
        let mut headers = HeaderMap::new();
        record().write(&mut headers);
        headers.insert(SEQUENCE_HEADER, "x");
        let err = FailureRecord::read(&headers).expect_err("bad sequence");
        assert_eq!(err.header, SEQUENCE_HEADER);
        let err = FailureRecord::read(&HeaderMap::new()).expect_err("empty");
        assert_eq!(err.problem, "missing");
    }

    #[test]
    fn a_group_or_subject_outside_the_token_allow_list_is_refused() {
        for (header, value) in [
            (GROUP_HEADER, "analytics\u{200b}"),
            (GROUP_HEADER, "analytics\u{202e}"),
            (SUBJECT_HEADER, "auth.user.created.org-1\u{200b}.u-1"),
            (SUBJECT_HEADER, "auth.user.created.org-1.u-1\u{2066}"),
        ] {
            let mut headers = HeaderMap::new();
            record().write(&mut headers);
            headers.insert(header, value);
            let err = FailureRecord::read(&headers).expect_err(value);
            assert_eq!(err.header, header, "{value:?}");
            assert!(err.problem.contains("U+"), "{err}");
        }
    }
}
