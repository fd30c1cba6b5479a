use std::borrow::Cow;

use std::sync::OnceLock;

use async_nats::{HeaderMap, HeaderName};
use serde::Serialize;
use tidings_codegen::registry::event_type::token_problem;
use time::format_description::well_known::Rfc3339;
use time::UtcOffset;

use super::{
    is_legal_attribute_name, Envelope, DATA_CONTENT_TYPE, MSG_ID_HEADER, ORGANIZATION_ATTRIBUTE,
    OWN_ATTRIBUTES, SCHEMA_VERSION_ATTRIBUTE, SPEC_VERSION, STRUCTURED_CONTENT_TYPE,
};

/// Why an envelope could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// A value cannot travel in a NATS header (it holds CR or LF).
    #[error("attribute {attribute} cannot be a NATS header value: {value:?} holds CR or LF")]
    HeaderValue {
        /// The attribute.
        attribute: String,
        /// The value.
        value: String,
    },
    /// An extension attribute name is not legal in CloudEvents, or is one
    /// of the attributes Tidings sets itself.
    #[error(
        "extension attribute name {0:?} is not usable: CloudEvents names use only a-z and 0-9 \
         (at most 20 characters), and the core attributes and organizationid / schemaversion \
         are set by Tidings"
    )]
    AttributeName(String),
    /// An extension value is not of a CloudEvents type: extensions (and
    /// `schemaversion`) must be a string, a boolean or an integer from
    /// -2147483648 to 2147483647.
    #[error("extension attribute {attribute:?} cannot be {value}: {reason}")]
    ExtensionValue {
        /// The attribute.
        attribute: String,
        /// The value, as JSON.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A context attribute has a value that [`Envelope::decode`] would refuse:
    /// an empty `source`, `subject` or `dataschema`, or a `type` that is not
    /// `service.entity.action`.
    #[error("attribute {attribute:?} has the invalid value {value:?}: {reason}")]
    InvalidValue {
        /// The attribute.
        attribute: &'static str,
        /// The value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// The timestamp cannot be formatted as RFC 3339.
    #[error("time {0} cannot be formatted as RFC 3339")]
    Time(String),
    /// The payload could not be serialized.
    #[error("the payload could not be serialized to JSON: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Serialize)]
struct Structured<'a> {
    specversion: &'static str,
    id: &'a str,
    source: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    time: &'a str,
    datacontenttype: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataschema: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    organizationid: &'a str,
    schemaversion: u32,
    #[serde(flatten)]
    extensions: &'a std::collections::BTreeMap<String, serde_json::Value>,
    data: &'a serde_json::Value,
}

fn check_extension_name(name: &str) -> Result<(), EncodeError> {
    if is_legal_attribute_name(name) && !OWN_ATTRIBUTES.contains(&name) {
        Ok(())
    } else {
        Err(EncodeError::AttributeName(name.to_string()))
    }
}

/// Checks that an extension value has a CloudEvents type (String, Boolean,
/// Integer: a signed 32-bit number). JSON null means "unset" to a reader, so
/// it is refused too: leave the extension out instead.
fn check_extension_value(name: &str, value: &serde_json::Value) -> Result<(), EncodeError> {
    let reason = match value {
        serde_json::Value::String(_) | serde_json::Value::Bool(_) => return Ok(()),
        serde_json::Value::Number(n) => match n.as_i64().map(i32::try_from) {
            Some(Ok(_)) => return Ok(()),
            Some(Err(_)) => "a CloudEvents Integer is from -2147483648 to 2147483647",
            None => "a CloudEvents Integer is a whole number",
        },
        serde_json::Value::Null => "null means unset in CloudEvents; leave the extension out",
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
            "CloudEvents extensions are strings, booleans or integers"
        }
    };
    Err(EncodeError::ExtensionValue {
        attribute: name.to_string(),
        value: value.to_string(),
        reason,
    })
}

/// Checks what [`Envelope::decode`] checks of the context attributes, so
/// that an event that can be encoded can be decoded: non-empty strings, an
/// event type of three tokens, extension names and values of CloudEvents
/// types, and a schema version that is a CloudEvents Integer.
fn check_attributes(envelope: &Envelope) -> Result<(), EncodeError> {
    let empty = |attribute: &'static str, value: Option<&str>| match value {
        Some("") => Err(EncodeError::InvalidValue {
            attribute,
            value: String::new(),
            reason: "it must not be empty".into(),
        }),
        _ => Ok(()),
    };
    empty("source", Some(&envelope.source))?;
    empty("subject", envelope.subject.as_deref())?;
    empty("dataschema", envelope.dataschema.as_deref())?;
    // As `EventType`'s parser, without its allocations (this is on the
    // publish path).
    let tokens = envelope.event_type.split('.').count();
    let problem = if tokens == 3 {
        envelope.event_type.split('.').find_map(token_problem)
    } else {
        Some(format!("it has {tokens} tokens, not 3"))
    };
    if let Some(reason) = problem {
        return Err(EncodeError::InvalidValue {
            attribute: "type",
            value: envelope.event_type.clone(),
            reason,
        });
    }
    for (name, value) in &envelope.extensions {
        check_extension_name(name)?;
        check_extension_value(name, value)?;
    }
    if i32::try_from(envelope.schema_version).is_err() {
        return Err(EncodeError::ExtensionValue {
            attribute: SCHEMA_VERSION_ATTRIBUTE.to_string(),
            value: envelope.schema_version.to_string(),
            reason: "a CloudEvents Integer is at most 2147483647",
        });
    }
    Ok(())
}

/// Percent-encodes a header value as the CloudEvents NATS binding requires
/// (3.1.3.2): space, `"`, `%` and every character outside the printable
/// ASCII range U+0021..U+007E, byte by byte of its UTF-8, upper-case hex.
fn percent_encode(value: &str) -> Cow<'_, str> {
    let plain = |b: u8| (b'!'..=b'~').contains(&b) && b != b'"' && b != b'%';
    if value.bytes().all(plain) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 16);
    for c in value.chars() {
        if matches!(c, '!'..='~') && c != '"' && c != '%' {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
    }
    Cow::Owned(out)
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

impl Envelope {
    /// The time attribute as RFC 3339 text, in UTC (`Z`), with as many
    /// fraction digits as the nanoseconds need.
    pub fn time_rfc3339(&self) -> Result<String, EncodeError> {
        self.time
            .checked_to_offset(UtcOffset::UTC)
            .ok_or_else(|| EncodeError::Time(format!("{} is out of range in UTC", self.time)))?
            .format(&Rfc3339)
            .map_err(|e| EncodeError::Time(format!("{}: {e}", self.time)))
    }

    /// The structured-mode JSON body.
    pub fn to_json(&self) -> Result<Vec<u8>, EncodeError> {
        check_attributes(self)?;
        self.body_with(&Texts::of(self)?)
    }

    /// The NATS headers: `Nats-Msg-Id` (the event id), `content-type`, and the
    /// CloudEvents binary-mode `ce-` headers of every attribute but `data`,
    /// their values percent-encoded as the CloudEvents NATS binding requires.
    pub fn headers(&self) -> Result<HeaderMap, EncodeError> {
        check_attributes(self)?;
        self.headers_with(&Texts::of(self)?)
    }

    /// The body and the headers together: what a publish sends. Checks the
    /// attributes and formats the id and time once.
    pub fn encode(&self) -> Result<(Vec<u8>, HeaderMap), EncodeError> {
        check_attributes(self)?;
        let texts = Texts::of(self)?;
        Ok((self.body_with(&texts)?, self.headers_with(&texts)?))
    }

    fn body_with(&self, texts: &Texts) -> Result<Vec<u8>, EncodeError> {
        let body = Structured {
            specversion: SPEC_VERSION,
            id: &texts.id,
            source: &self.source,
            event_type: &self.event_type,
            time: &texts.time,
            datacontenttype: DATA_CONTENT_TYPE,
            dataschema: self.dataschema.as_deref(),
            subject: self.subject.as_deref(),
            organizationid: self.organization_id.as_str(),
            schemaversion: self.schema_version,
            extensions: &self.extensions,
            data: &self.data,
        };
        Ok(serde_json::to_vec(&body)?)
    }

    fn headers_with(&self, texts: &Texts) -> Result<HeaderMap, EncodeError> {
        let names = header_names();
        let version = self.schema_version.to_string();
        let mut headers = HeaderMap::new();
        let mut put = |name: &HeaderName, value: &str, percent: bool| {
            let value = if percent {
                percent_encode(value)
            } else {
                Cow::Borrowed(value)
            };
            let header_value =
                value
                    .parse::<async_nats::HeaderValue>()
                    .map_err(|_| EncodeError::HeaderValue {
                        attribute: name.to_string(),
                        value: value.to_string(),
                    })?;
            headers.insert(name.clone(), header_value);
            Ok::<(), EncodeError>(())
        };
        put(&names.msg_id, &texts.id, false)?;
        put(&names.content_type, STRUCTURED_CONTENT_TYPE, false)?;
        put(&names.specversion, SPEC_VERSION, true)?;
        put(&names.id, &texts.id, true)?;
        put(&names.source, &self.source, true)?;
        put(&names.event_type, &self.event_type, true)?;
        put(&names.time, &texts.time, true)?;
        put(&names.datacontenttype, DATA_CONTENT_TYPE, true)?;
        put(&names.organization, self.organization_id.as_str(), true)?;
        put(&names.schema_version, &version, true)?;
        if let Some(schema) = &self.dataschema {
            put(&names.dataschema, schema, true)?;
        }
        if let Some(subject) = &self.subject {
            put(&names.subject, subject, true)?;
        }
        for (name, value) in &self.extensions {
            let text = match value {
                serde_json::Value::String(s) => Cow::Borrowed(s.as_str()),
                other => Cow::Owned(other.to_string()),
            };
            let header_name = format!("ce-{name}")
                .parse::<HeaderName>()
                .map_err(|_| EncodeError::AttributeName(name.clone()))?;
            put(&header_name, &text, true)?;
        }
        Ok(headers)
    }
}

/// The id and time as text, formatted once per encode.
struct Texts {
    id: String,
    time: String,
}

impl Texts {
    fn of(envelope: &Envelope) -> Result<Self, EncodeError> {
        Ok(Self {
            id: envelope.id.to_string(),
            time: envelope.time_rfc3339()?,
        })
    }
}

/// The fixed header names, parsed once (a custom name is a shared buffer,
/// so a clone does not allocate).
struct HeaderNames {
    msg_id: HeaderName,
    content_type: HeaderName,
    specversion: HeaderName,
    id: HeaderName,
    source: HeaderName,
    event_type: HeaderName,
    time: HeaderName,
    datacontenttype: HeaderName,
    organization: HeaderName,
    schema_version: HeaderName,
    dataschema: HeaderName,
    subject: HeaderName,
}

fn header_names() -> &'static HeaderNames {
    static NAMES: OnceLock<HeaderNames> = OnceLock::new();
    NAMES.get_or_init(|| {
        // Every name here is a constant, valid header name: a failure would
        // be a bug in this file, caught by every test that encodes.
        let name = |text: &str| {
            text.parse::<HeaderName>()
                .expect("constant header names are valid")
        };
        HeaderNames {
            msg_id: name(MSG_ID_HEADER),
            content_type: name("content-type"),
            specversion: name("ce-specversion"),
            id: name("ce-id"),
            source: name("ce-source"),
            event_type: name("ce-type"),
            time: name("ce-time"),
            datacontenttype: name("ce-datacontenttype"),
            organization: name(&format!("ce-{ORGANIZATION_ATTRIBUTE}")),
            schema_version: name(&format!("ce-{SCHEMA_VERSION_ATTRIBUTE}")),
            dataschema: name("ce-dataschema"),
            subject: name("ce-subject"),
        }
    })
}
