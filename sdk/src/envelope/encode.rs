use std::borrow::Cow;
use std::collections::BTreeMap;

use async_nats::{HeaderMap, HeaderName};
use serde::Serialize;
use tidings_codegen::registry::event_type::token_problem;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;

use super::{
    is_legal_attribute_name, Envelope, DATA_CONTENT_TYPE, MSG_ID_HEADER, OWN_ATTRIBUTES,
    SCHEMA_VERSION_ATTRIBUTE, SPEC_VERSION, STRUCTURED_CONTENT_TYPE,
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
    check(
        &envelope.source,
        envelope.subject.as_deref(),
        envelope.dataschema.as_deref(),
        &envelope.event_type,
        &envelope.extensions,
        envelope.schema_version,
    )
}

/// [`check_attributes`] on the attributes one by one, so that [`Template`]
/// can check the constant ones once and still report what
/// [`Envelope::encode`] reports.
fn check(
    source: &str,
    subject: Option<&str>,
    dataschema: Option<&str>,
    event_type: &str,
    extensions: &BTreeMap<String, serde_json::Value>,
    schema_version: u32,
) -> Result<(), EncodeError> {
    check_not_empty("source", Some(source))?;
    check_not_empty("subject", subject)?;
    check_not_empty("dataschema", dataschema)?;
    // As `EventType`'s parser, without its allocations (this is on the
    // publish path).
    let tokens = event_type.split('.').count();
    let problem = if tokens == 3 {
        event_type.split('.').find_map(token_problem)
    } else {
        Some(format!("it has {tokens} tokens, not 3"))
    };
    if let Some(reason) = problem {
        return Err(EncodeError::InvalidValue {
            attribute: "type",
            value: event_type.to_string(),
            reason,
        });
    }
    check_extensions(extensions)?;
    if i32::try_from(schema_version).is_err() {
        return Err(EncodeError::ExtensionValue {
            attribute: SCHEMA_VERSION_ATTRIBUTE.to_string(),
            value: schema_version.to_string(),
            reason: "a CloudEvents Integer is at most 2147483647",
        });
    }
    Ok(())
}

fn check_not_empty(attribute: &'static str, value: Option<&str>) -> Result<(), EncodeError> {
    match value {
        Some("") => Err(EncodeError::InvalidValue {
            attribute,
            value: String::new(),
            reason: "it must not be empty".into(),
        }),
        _ => Ok(()),
    }
}

fn check_extensions(extensions: &BTreeMap<String, serde_json::Value>) -> Result<(), EncodeError> {
    for (name, value) in extensions {
        check_extension_name(name)?;
        check_extension_value(name, value)?;
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
        rfc3339(self.time)
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
            headers.insert(name.clone(), header_value(name, &value)?);
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
            let (header_name, text) = extension_header(name, value)?;
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
            id: id_text(envelope.id),
            time: envelope.time_rfc3339()?,
        })
    }
}

/// A time as RFC 3339 text in UTC.
fn rfc3339(time: OffsetDateTime) -> Result<String, EncodeError> {
    time.checked_to_offset(UtcOffset::UTC)
        .ok_or_else(|| EncodeError::Time(format!("{time} is out of range in UTC")))?
        .format(&Rfc3339)
        .map_err(|e| EncodeError::Time(format!("{time}: {e}")))
}

/// An id as hyphenated lower-case text, as its `Display`, without the
/// formatting machinery.
fn id_text(id: Uuid) -> String {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    id.hyphenated().encode_lower(&mut buf).to_owned()
}

/// The fixed header names. Static names: a clone copies no bytes and
/// touches no reference count.
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

/// `ce-` and the attribute name, for the two extensions Tidings sets.
const ORGANIZATION_HEADER: &str = "ce-organizationid";
const SCHEMA_VERSION_HEADER: &str = "ce-schemaversion";

fn header_names() -> &'static HeaderNames {
    static NAMES: HeaderNames = HeaderNames {
        msg_id: HeaderName::from_static(MSG_ID_HEADER),
        content_type: HeaderName::from_static("content-type"),
        specversion: HeaderName::from_static("ce-specversion"),
        id: HeaderName::from_static("ce-id"),
        source: HeaderName::from_static("ce-source"),
        event_type: HeaderName::from_static("ce-type"),
        time: HeaderName::from_static("ce-time"),
        datacontenttype: HeaderName::from_static("ce-datacontenttype"),
        organization: HeaderName::from_static(ORGANIZATION_HEADER),
        schema_version: HeaderName::from_static(SCHEMA_VERSION_HEADER),
        dataschema: HeaderName::from_static("ce-dataschema"),
        subject: HeaderName::from_static("ce-subject"),
    };
    &NAMES
}

/// The attributes of one event that a [`Template`] does not hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventAttributes<'a> {
    /// The event id.
    pub id: Uuid,
    /// The event time.
    pub time: OffsetDateTime,
    /// The entity key.
    pub subject: Option<&'a str>,
    /// The tenant.
    pub organization_id: &'a str,
    /// Other extension attributes.
    pub extensions: &'a BTreeMap<String, serde_json::Value>,
}

/// What a publish sends: the body, the headers and their size on the wire.
#[derive(Debug)]
pub(crate) struct Encoded {
    pub body: Vec<u8>,
    pub headers: HeaderMap,
    pub headers_wire_len: usize,
}

/// What the envelopes of one event type from one source share, encoded
/// once: the constant headers (parsed, percent-encoded), the constant
/// fragments of the body, and whether the constant attributes pass
/// [`check_attributes`]. [`Template::encode`] adds one event's attributes
/// and its payload, and gives the same body bytes, the same headers and
/// the same errors as [`Envelope::encode`] of the same envelope.
#[derive(Debug)]
pub(crate) struct Template {
    source: String,
    event_type: String,
    dataschema: Option<String>,
    schema_version: u32,
    /// Whether source, type, dataschema and schema version pass the checks.
    constants_ok: bool,
    /// Whether the `ce-` headers go beside the body, or only `Nats-Msg-Id`
    /// and `content-type`.
    ce_headers: bool,
    /// The constant headers, and the ones that every event sets (message
    /// id; with the `ce-` headers also id, time, tenant) with empty values:
    /// the map has room for an event's headers, so a copy of it never
    /// grows while it is filled.
    headers: HeaderMap,
    /// The wire size of the constant headers (the per-event ones are
    /// counted as each event fills them in).
    headers_wire_len: usize,
    /// `","source":…,"type":…,"time":"`: between the id and the time.
    body_after_id: String,
    /// `","datacontenttype":…` and `,"dataschema":…`: after the time.
    body_after_time: String,
    /// `,"schemaversion":N`.
    body_schema_version: String,
}

/// The body up to the id's value.
const BODY_HEAD: &str = "{\"specversion\":\"1.0\",\"id\":\"";

impl Template {
    /// The template of the envelopes with these constant attributes; with
    /// `ce_headers` false their messages carry only `Nats-Msg-Id` and
    /// `content-type` beside the body.
    pub(crate) fn new(
        source: String,
        event_type: &str,
        dataschema: Option<&str>,
        schema_version: u32,
        ce_headers: bool,
    ) -> Result<Self, EncodeError> {
        let constants_ok = check(
            &source,
            None,
            dataschema,
            event_type,
            &BTreeMap::new(),
            schema_version,
        )
        .is_ok();
        let json = serde_json::to_string::<str>;
        let body_after_id = format!(
            "\",\"source\":{},\"type\":{},\"time\":\"",
            json(&source)?,
            json(event_type)?
        );
        let mut body_after_time = format!("\",\"datacontenttype\":{}", json(DATA_CONTENT_TYPE)?);
        if let Some(schema) = dataschema {
            body_after_time.push_str(",\"dataschema\":");
            body_after_time.push_str(&json(schema)?);
        }
        let body_schema_version = format!(",\"schemaversion\":{schema_version}");

        let names = header_names();
        let mut headers = HeaderMap::new();
        let mut headers_wire_len = "NATS/1.0\r\n".len() + 2;
        let mut put = |name: &HeaderName, value: &str, percent: bool| {
            let value = if percent {
                percent_encode(value)
            } else {
                Cow::Borrowed(value)
            };
            let header_value = header_value(name, &value)?;
            headers_wire_len += header_wire_len(name, &value);
            headers.insert(name.clone(), header_value);
            Ok::<(), EncodeError>(())
        };
        put(&names.content_type, STRUCTURED_CONTENT_TYPE, false)?;
        if ce_headers {
            put(&names.specversion, SPEC_VERSION, true)?;
            put(&names.source, &source, true)?;
            put(&names.event_type, event_type, true)?;
            put(&names.datacontenttype, DATA_CONTENT_TYPE, true)?;
            put(&names.schema_version, &schema_version.to_string(), true)?;
            if let Some(schema) = dataschema {
                put(&names.dataschema, schema, true)?;
            }
            for name in [&names.id, &names.time, &names.organization] {
                headers.insert(name.clone(), async_nats::HeaderValue::new());
            }
        }
        headers.insert(names.msg_id.clone(), async_nats::HeaderValue::new());
        Ok(Self {
            source,
            event_type: event_type.to_string(),
            dataschema: dataschema.map(str::to_string),
            schema_version,
            constants_ok,
            ce_headers,
            headers,
            headers_wire_len,
            body_after_id,
            body_after_time,
            body_schema_version,
        })
    }

    /// The checks of [`check_attributes`], of the constant attributes only
    /// once.
    fn check(&self, event: &EventAttributes<'_>) -> Result<(), EncodeError> {
        if self.constants_ok {
            check_not_empty("subject", event.subject)?;
            check_extensions(event.extensions)
        } else {
            check(
                &self.source,
                event.subject,
                self.dataschema.as_deref(),
                &self.event_type,
                event.extensions,
                self.schema_version,
            )
        }
    }

    /// One event's body and headers: what [`Envelope::encode`] gives for
    /// the envelope of these attributes and this payload. `capacity` is a
    /// guess at the body's size.
    pub(crate) fn encode(
        &self,
        event: &EventAttributes<'_>,
        data: &serde_json::Value,
        capacity: usize,
    ) -> Result<Encoded, EncodeError> {
        self.check(event)?;
        let id = id_text(event.id);
        let time = rfc3339(event.time)?;

        let mut body = Vec::with_capacity(capacity);
        body.extend_from_slice(BODY_HEAD.as_bytes());
        body.extend_from_slice(id.as_bytes());
        body.extend_from_slice(self.body_after_id.as_bytes());
        body.extend_from_slice(time.as_bytes());
        body.extend_from_slice(self.body_after_time.as_bytes());
        if let Some(subject) = event.subject {
            body.extend_from_slice(b",\"subject\":");
            serde_json::to_writer(&mut body, subject)?;
        }
        body.extend_from_slice(b",\"organizationid\":");
        serde_json::to_writer(&mut body, event.organization_id)?;
        body.extend_from_slice(self.body_schema_version.as_bytes());
        for (name, value) in event.extensions {
            body.push(b',');
            serde_json::to_writer(&mut body, name)?;
            body.push(b':');
            serde_json::to_writer(&mut body, value)?;
        }
        body.extend_from_slice(b",\"data\":");
        serde_json::to_writer(&mut body, data)?;
        body.push(b'}');

        let (headers, headers_wire_len) = self.headers_with(event, id, time)?;
        Ok(Encoded {
            body,
            headers,
            headers_wire_len,
        })
    }

    /// One event's headers alone, as [`Envelope::headers`] gives them.
    pub(crate) fn headers(&self, event: &EventAttributes<'_>) -> Result<HeaderMap, EncodeError> {
        self.check(event)?;
        let (headers, _) = self.headers_with(event, id_text(event.id), rfc3339(event.time)?)?;
        Ok(headers)
    }

    fn headers_with(
        &self,
        event: &EventAttributes<'_>,
        id: String,
        time: String,
    ) -> Result<(HeaderMap, usize), EncodeError> {
        let names = header_names();
        let mut headers = self.headers.clone();
        let mut wire_len = self.headers_wire_len;
        // Percent-encoded text and the id and time hold no CR or LF: every
        // value here is a valid header value.
        let mut put = |name: &HeaderName, value: String| {
            wire_len += header_wire_len(name, &value);
            headers.insert(name.clone(), async_nats::HeaderValue::from(value));
        };
        if !self.ce_headers {
            put(&names.msg_id, id);
            return Ok((headers, wire_len));
        }
        put(&names.msg_id, id.clone());
        put(&names.id, id);
        put(&names.time, time);
        put(
            &names.organization,
            percent_encode(event.organization_id).into_owned(),
        );
        if let Some(subject) = event.subject {
            put(&names.subject, percent_encode(subject).into_owned());
        }
        for (name, value) in event.extensions {
            let (header_name, text) = extension_header(name, value)?;
            put(&header_name, percent_encode(&text).into_owned());
        }
        Ok((headers, wire_len))
    }
}

/// The `ce-` header of an extension attribute and its text before
/// percent-encoding (a string as itself, other values as JSON).
fn extension_header<'a>(
    name: &str,
    value: &'a serde_json::Value,
) -> Result<(HeaderName, Cow<'a, str>), EncodeError> {
    let text = match value {
        serde_json::Value::String(s) => Cow::Borrowed(s.as_str()),
        other => Cow::Owned(other.to_string()),
    };
    let header_name = format!("ce-{name}")
        .parse::<HeaderName>()
        .map_err(|_| EncodeError::AttributeName(name.to_string()))?;
    Ok((header_name, text))
}

fn header_value(name: &HeaderName, value: &str) -> Result<async_nats::HeaderValue, EncodeError> {
    value
        .parse::<async_nats::HeaderValue>()
        .map_err(|_| EncodeError::HeaderValue {
            attribute: name.to_string(),
            value: value.to_string(),
        })
}

/// `Name: value\r\n`.
fn header_wire_len(name: &HeaderName, value: &str) -> usize {
    AsRef::<str>::as_ref(name).len() + 2 + value.len() + 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::OrganizationId;

    fn envelope(
        subject: Option<&str>,
        dataschema: Option<&str>,
        extensions: &[(&str, serde_json::Value)],
        data: serde_json::Value,
    ) -> Envelope {
        Envelope {
            id: Uuid::now_v7(),
            source: "/tidings/auth".into(),
            event_type: "auth.user.created".into(),
            time: OffsetDateTime::now_utc(),
            dataschema: dataschema.map(str::to_string),
            subject: subject.map(str::to_string),
            organization_id: OrganizationId::new("org-42").expect("a valid token"),
            schema_version: 3,
            extensions: extensions
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            data,
        }
    }

    fn template_of(envelope: &Envelope) -> Template {
        template_with(envelope, true)
    }

    fn template_with(envelope: &Envelope, ce_headers: bool) -> Template {
        Template::new(
            envelope.source.clone(),
            &envelope.event_type,
            envelope.dataschema.as_deref(),
            envelope.schema_version,
            ce_headers,
        )
        .expect("constant attributes encode")
    }

    fn attributes(envelope: &Envelope) -> EventAttributes<'_> {
        EventAttributes {
            id: envelope.id,
            time: envelope.time,
            subject: envelope.subject.as_deref(),
            organization_id: envelope.organization_id.as_str(),
            extensions: &envelope.extensions,
        }
    }

    fn wire_len(headers: &HeaderMap) -> usize {
        let mut len = "NATS/1.0\r\n".len() + 2;
        for (name, values) in headers.iter() {
            for value in values {
                len += header_wire_len(name, value.as_str());
            }
        }
        len
    }

    #[test]
    fn the_template_encodes_what_the_envelope_encodes() {
        let payload = serde_json::json!({
            "user_id": "u-1",
            "email": "ünïcode \"quoted\" \\ and\nnewline@example.com",
            "nested": {"b": [1, 2.5, null, true], "a": "x"},
        });
        let cases = [
            envelope(
                Some("u-1"),
                Some("https://schemas.example/u.json"),
                &[],
                payload.clone(),
            ),
            envelope(None, None, &[], payload.clone()),
            envelope(Some("ключ"), None, &[], serde_json::json!({})),
            envelope(
                Some("k"),
                Some("urn:x"),
                &[
                    ("traceparent", serde_json::json!("00-abc-def-01")),
                    ("zeta", serde_json::json!(7)),
                    ("alpha", serde_json::json!(true)),
                    ("spaced", serde_json::json!("a b%\"ü")),
                ],
                payload,
            ),
        ];
        for envelope in &cases {
            let (body, headers) = envelope.encode().expect("the envelope encodes");
            let template = template_of(envelope);
            let encoded = template
                .encode(&attributes(envelope), &envelope.data, 0)
                .expect("the template encodes");
            assert_eq!(
                String::from_utf8_lossy(&encoded.body),
                String::from_utf8_lossy(&body)
            );
            assert_eq!(encoded.headers, headers);
            assert_eq!(encoded.headers_wire_len, wire_len(&headers));
            let again = template
                .headers(&attributes(envelope))
                .expect("the headers again");
            assert_eq!(again, headers);
            let decoded = Envelope::decode_message(Some(&encoded.headers), &encoded.body)
                .expect("what the template encodes decodes");
            assert_eq!(&decoded, envelope);

            // Without the `ce-` headers: the same body, the id as the
            // message id, the content type, nothing else.
            let lean = template_with(envelope, false);
            let encoded = lean
                .encode(&attributes(envelope), &envelope.data, 0)
                .expect("the lean template encodes");
            assert_eq!(encoded.body, body);
            let mut expected = HeaderMap::new();
            expected.insert(MSG_ID_HEADER, envelope.id.to_string().as_str());
            expected.insert("content-type", STRUCTURED_CONTENT_TYPE);
            assert_eq!(encoded.headers, expected);
            assert_eq!(encoded.headers_wire_len, wire_len(&expected));
            assert_eq!(
                lean.headers(&attributes(envelope)).expect("again"),
                expected
            );
            let decoded = Envelope::decode_message(Some(&encoded.headers), &encoded.body)
                .expect("a lean message decodes");
            assert_eq!(&decoded, envelope);
        }
    }

    #[test]
    fn the_template_reports_what_the_envelope_reports() {
        let mut cases = Vec::new();
        let base = || envelope(Some("k"), Some("urn:x"), &[], serde_json::json!({}));
        cases.push(Envelope {
            source: String::new(),
            subject: Some(String::new()),
            ..base()
        });
        cases.push(Envelope {
            subject: Some(String::new()),
            dataschema: Some(String::new()),
            ..base()
        });
        cases.push(Envelope {
            event_type: "auth.user".into(),
            extensions: [("Bad".to_string(), serde_json::json!(1))].into(),
            ..base()
        });
        cases.push(Envelope {
            extensions: [("id".to_string(), serde_json::json!(1))].into(),
            schema_version: u32::MAX,
            ..base()
        });
        cases.push(Envelope {
            extensions: [("n".to_string(), serde_json::json!(null))].into(),
            ..base()
        });
        cases.push(Envelope {
            schema_version: u32::MAX,
            ..base()
        });
        cases.push(Envelope {
            time: OffsetDateTime::now_utc().replace_year(-5).expect("a year"),
            ..base()
        });
        for envelope in &cases {
            let expected = envelope.encode().expect_err("the envelope is refused");
            for ce_headers in [true, false] {
                let template = template_with(envelope, ce_headers);
                let got = template
                    .encode(&attributes(envelope), &envelope.data, 0)
                    .expect_err("the template refuses it too");
                assert_eq!(got.to_string(), expected.to_string());
                let got = template
                    .headers(&attributes(envelope))
                    .expect_err("and its headers");
                assert_eq!(got.to_string(), expected.to_string());
            }
        }
    }

    #[test]
    fn the_extension_header_names_are_ce_and_the_attribute() {
        assert_eq!(
            ORGANIZATION_HEADER,
            format!("ce-{}", super::super::ORGANIZATION_ATTRIBUTE)
        );
        assert_eq!(
            SCHEMA_VERSION_HEADER,
            format!("ce-{SCHEMA_VERSION_ATTRIBUTE}")
        );
    }
}
