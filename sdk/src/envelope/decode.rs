use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use async_nats::HeaderMap;
use serde::de::{self, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize as _;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;

use super::{
    is_legal_attribute_name, Envelope, DATA_CONTENT_TYPE, ORGANIZATION_ATTRIBUTE, OWN_ATTRIBUTES,
    SCHEMA_VERSION_ATTRIBUTE, SPEC_VERSION,
};
use crate::event::DomainEvent;
use crate::schema::{self, SchemaError, Violation};
use crate::token::{InvalidToken, OrganizationId};

/// Why bytes are not a Tidings event. Decoding never panics: every input
/// gives an [`Envelope`] or one of these.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The body is not JSON.
    #[error("the body is not JSON (line {line}, column {column}): {message}")]
    NotJson {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The body is JSON but not an object.
    #[error("the body is a JSON {found}, not a CloudEvents object")]
    NotAnObject {
        /// The JSON kind found.
        found: &'static str,
    },
    /// A required attribute is missing.
    #[error("required CloudEvents attribute {attribute:?} is missing")]
    Missing {
        /// The attribute.
        attribute: &'static str,
    },
    /// An attribute has the wrong JSON type.
    #[error("attribute {attribute:?} must be {expected}, found {found}")]
    WrongType {
        /// The attribute.
        attribute: String,
        /// What it must be.
        expected: &'static str,
        /// The JSON kind found.
        found: &'static str,
    },
    /// An attribute has a value that is not allowed.
    #[error("attribute {attribute:?} has the invalid value {value:?}: {reason}")]
    InvalidValue {
        /// The attribute.
        attribute: &'static str,
        /// The value, as text.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// The organization id is not a valid subject token.
    #[error("attribute \"organizationid\": {0}")]
    Organization(#[from] InvalidToken),
    /// An attribute name breaks the CloudEvents naming rule.
    #[error("attribute name {0:?} is not legal in CloudEvents (only a-z and 0-9)")]
    AttributeName(String),
    /// A `ce-` header disagrees with the body.
    #[error("header {header} is {header_value:?} but the body says {body_value:?}")]
    HeaderMismatch {
        /// The header.
        header: String,
        /// The header's value.
        header_value: String,
        /// The body's value.
        body_value: String,
    },
    /// The event is of another type than the one asked for.
    #[error("the event is a {found}, not a {expected}")]
    UnexpectedType {
        /// The type asked for.
        expected: &'static str,
        /// The type found.
        found: String,
    },
    /// The payload was written with a schema version this reader cannot read.
    #[error("{event_type} v{found} cannot be read as v{reader}")]
    UnsupportedVersion {
        /// The event type.
        event_type: String,
        /// The version of the event.
        found: u32,
        /// The version of the reader.
        reader: u32,
    },
    /// The payload breaks its schema.
    #[error("the {event_type} v{version} payload breaks its schema: {}", crate::schema::describe(.violations))]
    InvalidPayload {
        /// The event type.
        event_type: &'static str,
        /// The version.
        version: u32,
        /// Every violation.
        violations: Vec<Violation>,
    },
    /// The reader's schema is unusable.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// The payload is valid but does not deserialize into the Rust type.
    #[error("the {event_type} payload does not fit the Rust type: {message}")]
    Deserialize {
        /// The event type.
        event_type: &'static str,
        /// serde's message.
        message: String,
    },
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The top level of a body: an object whose member names are unique (its
/// members parsed into the [`Members`] given), or the kind of JSON it is
/// instead.
enum TopLevel {
    Object,
    Other(&'static str),
}

/// The value of one of Tidings' own attributes as parsed: a string as text
/// borrowed from the body where it has no escapes (most attributes are
/// compared, checked or copied once, so parsing them into JSON values first
/// only allocated), anything else as a JSON value.
enum Member<'de> {
    Text(Cow<'de, str>),
    Json(Value),
}

impl Member<'_> {
    fn is_null(&self) -> bool {
        matches!(self, Member::Json(Value::Null))
    }

    fn into_value(self) -> Value {
        match self {
            Member::Text(text) => Value::String(text.into_owned()),
            Member::Json(value) => value,
        }
    }
}

/// The members of the body: Tidings' own attributes in fixed slots (no map
/// work for them, and no allocation for their names), the others by name.
struct Members<'de> {
    own: [Option<Member<'de>>; OWN_ATTRIBUTES.len()],
    other: Map<String, Value>,
}

impl<'de> Members<'de> {
    fn new() -> Self {
        Members {
            own: Default::default(),
            other: Map::new(),
        }
    }

    /// The slot of one of Tidings' own attributes: its place in
    /// [`OWN_ATTRIBUTES`] (a `match` the compiler turns into a switch on
    /// the length, called for every member of every event).
    fn slot(name: &str) -> Option<usize> {
        Some(match name {
            "specversion" => 0,
            "id" => 1,
            "source" => 2,
            "type" => 3,
            "time" => 4,
            "datacontenttype" => 5,
            "dataschema" => 6,
            "subject" => 7,
            "data" => 8,
            "data_base64" => 9,
            ORGANIZATION_ATTRIBUTE => 10,
            SCHEMA_VERSION_ATTRIBUTE => 11,
            _ => return None,
        })
    }

    /// Whether one of Tidings' own attributes is there.
    fn has(&self, name: &'static str) -> bool {
        Self::slot(name).is_some_and(|i| self.own[i].is_some())
    }

    /// Takes one of Tidings' own attributes out.
    fn take(&mut self, name: &'static str) -> Option<Member<'de>> {
        Self::slot(name).and_then(|i| self.own[i].take())
    }

    /// Drops the attributes whose value is JSON null, except `data`.
    fn drop_nulls_but_data(&mut self) {
        for (name, slot) in OWN_ATTRIBUTES.iter().zip(self.own.iter_mut()) {
            if *name != "data" && slot.as_ref().is_some_and(Member::is_null) {
                *slot = None;
            }
        }
        self.other.retain(|_, value| !value.is_null());
    }

    /// The members not taken yet, by name.
    fn into_rest(self) -> impl Iterator<Item = (String, Value)> + 'de {
        let own = OWN_ATTRIBUTES
            .iter()
            .zip(self.own)
            .filter_map(|(name, v)| v.map(|v| (name.to_string(), v.into_value())));
        own.chain(self.other)
    }
}

/// A member name: one of Tidings' own attributes (by slot) or another.
enum Key {
    Own(usize),
    Other(String),
}

struct KeySeed;

impl<'de> de::DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
        Ok(match Members::slot(name) {
            Some(i) => Key::Own(i),
            None => Key::Other(name.to_string()),
        })
    }

    fn visit_string<E: de::Error>(self, name: String) -> Result<Key, E> {
        Ok(match Members::slot(&name) {
            Some(i) => Key::Own(i),
            None => Key::Other(name),
        })
    }
}

/// Parses the value of one of Tidings' own attributes into a [`Member`].
struct MemberSeed;

impl<'de> de::DeserializeSeed<'de> for MemberSeed {
    type Value = Member<'de>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MemberSeed {
    type Value = Member<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Member::Text(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Member::Text(Cow::Owned(text.to_string())))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Member::Text(Cow::Owned(text)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Member::Json(Value::Null))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Member::Json(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Member::Json(Value::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Member::Json(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Member::Json(Value::from(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, access: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(de::value::SeqAccessDeserializer::new(access)).map(Member::Json)
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(de::value::MapAccessDeserializer::new(access)).map(Member::Json)
    }
}

/// Parses the top level, an object's members into `members` (filled in
/// place: the slots are a few hundred bytes, not worth moving per event).
struct TopLevelVisitor<'m, 'de> {
    members: &'m mut Members<'de>,
}

impl<'de> Visitor<'de> for TopLevelVisitor<'_, 'de> {
    type Value = TopLevel;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<TopLevel, A::Error> {
        let members = self.members;
        let twice =
            |name: &str| de::Error::custom(format_args!("attribute {name:?} appears twice"));
        while let Some(key) = access.next_key_seed(KeySeed)? {
            match key {
                Key::Own(i) => {
                    if members.own[i].is_some() {
                        return Err(twice(OWN_ATTRIBUTES[i]));
                    }
                    members.own[i] = Some(access.next_value_seed(MemberSeed)?);
                }
                Key::Other(name) => {
                    if members.other.contains_key(&name) {
                        return Err(twice(&name));
                    }
                    let value = access.next_value::<Value>()?;
                    members.other.insert(name, value);
                }
            }
        }
        Ok(TopLevel::Object)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<TopLevel, A::Error> {
        while access.next_element::<IgnoredAny>()?.is_some() {}
        Ok(TopLevel::Other("array"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("null"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("number"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("string"))
    }
}

/// Parses the body; a member name that appears twice is refused, as readers
/// disagree on which of the two counts. The body's UTF-8 is checked once,
/// in one fast scan, rather than string by string as the parser of bytes
/// does; a body that is not UTF-8 is parsed as bytes, for the parser's
/// error with its line and column.
fn parse_top_level<'de>(
    body: &'de [u8],
    members: &mut Members<'de>,
) -> Result<TopLevel, serde_json::Error> {
    match std::str::from_utf8(body) {
        Ok(text) => parse_with(serde_json::Deserializer::from_str(text), members),
        Err(_) => parse_with(serde_json::Deserializer::from_slice(body), members),
    }
}

fn parse_with<'de, R: serde_json::de::Read<'de>>(
    mut deserializer: serde_json::Deserializer<R>,
    members: &mut Members<'de>,
) -> Result<TopLevel, serde_json::Error> {
    let top = (&mut deserializer).deserialize_any(TopLevelVisitor { members })?;
    deserializer.end()?;
    Ok(top)
}

/// Undoes the CloudEvents NATS binding's header value encoding (3.1.3.2): a
/// double-quoted value is unquoted first, then one round of
/// percent-decoding; bytes that are not UTF-8 (overlong forms included) are
/// refused with `None`.
fn percent_decode(value: &str) -> Option<Cow<'_, str>> {
    if !value.starts_with('"') && !value.contains('%') {
        return Some(Cow::Borrowed(value));
    }
    let unquoted;
    let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' { chars.next()? } else { c });
            }
            unquoted = out;
            unquoted.as_str()
        }
        None => value,
    };
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// What a member is, for errors: `string` or its JSON kind.
fn member_kind(member: &Member<'_>) -> &'static str {
    match member {
        Member::Text(_) => "string",
        Member::Json(value) => kind(value),
    }
}

/// Takes a required, non-empty string attribute out of the object.
fn take_string<'de>(
    object: &mut Members<'de>,
    attribute: &'static str,
) -> Result<Cow<'de, str>, DecodeError> {
    match object.take(attribute) {
        None => Err(DecodeError::Missing { attribute }),
        Some(Member::Text(s)) if s.is_empty() => Err(DecodeError::InvalidValue {
            attribute,
            value: String::new(),
            reason: "it must not be empty".into(),
        }),
        Some(Member::Text(s)) => Ok(s),
        Some(other) => Err(DecodeError::WrongType {
            attribute: attribute.into(),
            expected: "a string",
            found: member_kind(&other),
        }),
    }
}

/// Takes an optional, non-empty string attribute.
fn take_optional_string<'de>(
    object: &mut Members<'de>,
    attribute: &'static str,
) -> Result<Option<Cow<'de, str>>, DecodeError> {
    if object.has(attribute) {
        take_string(object, attribute).map(Some)
    } else {
        Ok(None)
    }
}

impl Envelope {
    /// Decodes a structured-mode body.
    pub fn decode(body: &[u8]) -> Result<Envelope, DecodeError> {
        let mut object = Members::new();
        let top = parse_top_level(body, &mut object).map_err(|e| DecodeError::NotJson {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        if let TopLevel::Other(found) = top {
            return Err(DecodeError::NotAnObject { found });
        }
        // JSON event format 2.2: an attribute whose value is null is unset.
        // `data: null` is different: an explicit null payload (3.1.1).
        object.drop_nulls_but_data();

        let spec = take_string(&mut object, "specversion")?;
        if spec != SPEC_VERSION {
            return Err(DecodeError::InvalidValue {
                attribute: "specversion",
                value: spec.into_owned(),
                reason: format!("only CloudEvents {SPEC_VERSION} is supported"),
            });
        }
        let id_text = take_string(&mut object, "id")?;
        let id = Uuid::try_parse(&id_text)
            .map_err(|e| e.to_string())
            .and_then(|id| {
                // Only the hyphenated form: the id is also `Nats-Msg-Id`,
                // and the braced, urn and simple forms would not match it.
                if id_text.len() == 36 {
                    Ok(id)
                } else {
                    Err("not in the hyphenated 8-4-4-4-12 form".to_string())
                }
            })
            .map_err(|e| DecodeError::InvalidValue {
                attribute: "id",
                value: id_text.to_string(),
                reason: format!("Tidings event ids are UUIDs: {e}"),
            })?;
        let source = take_string(&mut object, "source")?.into_owned();
        let event_type = take_string(&mut object, "type")?;
        if let Some(reason) = tidings_codegen::registry::event_type::event_type_problem(&event_type)
        {
            return Err(DecodeError::InvalidValue {
                attribute: "type",
                value: event_type.into_owned(),
                reason,
            });
        }
        let event_type = event_type.into_owned();
        let time_text = take_string(&mut object, "time")?;
        let time =
            OffsetDateTime::parse(&time_text, &Rfc3339).map_err(|e| DecodeError::InvalidValue {
                attribute: "time",
                value: time_text.to_string(),
                reason: format!("not an RFC 3339 timestamp: {e}"),
            })?;
        // Tidings writes times in UTC; one it could not write back (a year
        // outside 0000..=9999 once in UTC) is refused here already.
        let utc_year = time.checked_to_offset(UtcOffset::UTC).map(|t| t.year());
        if !matches!(utc_year, Some(0..=9999)) {
            return Err(DecodeError::InvalidValue {
                attribute: "time",
                value: time_text.into_owned(),
                reason: "it is outside the years 0000 to 9999 in UTC".into(),
            });
        }
        let content_type = take_string(&mut object, "datacontenttype")?;
        if content_type != DATA_CONTENT_TYPE {
            return Err(DecodeError::InvalidValue {
                attribute: "datacontenttype",
                value: content_type.into_owned(),
                reason: format!("Tidings events carry {DATA_CONTENT_TYPE}"),
            });
        }
        let dataschema = take_optional_string(&mut object, "dataschema")?.map(Cow::into_owned);
        let subject = take_optional_string(&mut object, "subject")?.map(Cow::into_owned);
        let organization = take_string(&mut object, ORGANIZATION_ATTRIBUTE)?;
        let organization_id = OrganizationId::new(organization.into_owned())?;
        let schema_version = match object.take(SCHEMA_VERSION_ATTRIBUTE) {
            None => {
                return Err(DecodeError::Missing {
                    attribute: SCHEMA_VERSION_ATTRIBUTE,
                })
            }
            Some(Member::Json(Value::Number(n))) => n
                .as_u64()
                .and_then(|v| i32::try_from(v).ok())
                .and_then(|v| u32::try_from(v).ok())
                .filter(|v| *v > 0)
                .ok_or_else(|| DecodeError::InvalidValue {
                    attribute: SCHEMA_VERSION_ATTRIBUTE,
                    value: n.to_string(),
                    reason:
                        "it must be a whole number from 1 to 2147483647 (a CloudEvents Integer)"
                            .into(),
                })?,
            Some(other) => {
                return Err(DecodeError::WrongType {
                    attribute: SCHEMA_VERSION_ATTRIBUTE.into(),
                    expected: "an integer",
                    found: member_kind(&other),
                })
            }
        };
        if object.has("data_base64") {
            return Err(DecodeError::InvalidValue {
                attribute: "data_base64",
                value: "…".into(),
                reason: format!("Tidings events carry {DATA_CONTENT_TYPE} in \"data\""),
            });
        }
        let data = object
            .take("data")
            .ok_or(DecodeError::Missing { attribute: "data" })?
            .into_value();
        let mut extensions = BTreeMap::new();
        for (name, value) in object.into_rest() {
            if !is_legal_attribute_name(&name) {
                return Err(DecodeError::AttributeName(name));
            }
            let integer = |v: &Value| v.as_i64().is_some_and(|i| i32::try_from(i).is_ok());
            if !(value.is_string() || value.is_boolean() || integer(&value)) {
                return Err(DecodeError::WrongType {
                    attribute: name,
                    expected: "a string, a boolean or an integer from -2147483648 to 2147483647",
                    found: kind(&value),
                });
            }
            extensions.insert(name, value);
        }
        Ok(Envelope {
            id,
            source,
            event_type,
            time,
            dataschema,
            subject,
            organization_id,
            schema_version,
            extensions,
            data,
        })
    }

    /// Decodes a NATS message: the body, then a check that every `ce-` header
    /// and `Nats-Msg-Id` present agrees with it. Header names are matched
    /// without regard to case, every value of a repeated header is checked,
    /// `ce-` values are percent-decoded (CloudEvents NATS binding 3.1.3.2),
    /// and `ce-time` is compared as an instant.
    pub fn decode_message(
        headers: Option<&HeaderMap>,
        body: &[u8],
    ) -> Result<Envelope, DecodeError> {
        let envelope = Self::decode(body)?;
        let Some(headers) = headers else {
            return Ok(envelope);
        };
        // The common case, every header agreeing, allocates nothing; a
        // disagreement is reported for the first header in name order, so
        // the error does not depend on the map's iteration order.
        let agree = headers.iter().all(|(name, values)| {
            values
                .iter()
                .all(|v| envelope.header_agrees(name.as_ref(), v.as_str()))
        });
        if agree {
            return Ok(envelope);
        }
        let mut found: Vec<(&str, &async_nats::HeaderValue)> = headers
            .iter()
            .flat_map(|(name, values)| {
                let name: &str = name.as_ref();
                values.iter().map(move |value| (name, value))
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(b.0).then_with(|| a.1.as_str().cmp(b.1.as_str())));
        for (header, value) in found {
            let raw = value.as_str();
            if envelope.header_agrees(header, raw) {
                continue;
            }
            let body_value = if header.eq_ignore_ascii_case(super::MSG_ID_HEADER) {
                Some(envelope.id.to_string())
            } else {
                let attribute = header[3..].to_ascii_lowercase();
                envelope.attribute_text(&attribute).map(Cow::into_owned)
            };
            return Err(DecodeError::HeaderMismatch {
                header: header.to_string(),
                header_value: raw.to_string(),
                body_value: body_value.unwrap_or_else(|| "(absent)".to_string()),
            });
        }
        Ok(envelope)
    }

    /// Whether one header agrees with the body: `ce-id` names the event id
    /// (hyphenated, any case), `Nats-Msg-Id` too or is a redrive's id of it
    /// ([`redrive_msg_id`]), `ce-time` the same
    /// instant, every other `ce-` header the attribute's canonical text
    /// after percent-decoding. Other headers are not the envelope's.
    fn header_agrees(&self, header: &str, raw: &str) -> bool {
        let same_id =
            |text: &str| text.len() == 36 && Uuid::try_parse(text).is_ok_and(|id| id == self.id);
        if header.eq_ignore_ascii_case(super::MSG_ID_HEADER) {
            return same_id(raw) || redrive_of(raw).is_some_and(|(id, _)| same_id(id));
        }
        let Some(attribute) = header
            .get(..3)
            .filter(|p| p.eq_ignore_ascii_case("ce-"))
            .map(|_| &header[3..])
        else {
            return true;
        };
        let attribute: Cow<'_, str> = if attribute.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(attribute.to_ascii_lowercase())
        } else {
            Cow::Borrowed(attribute)
        };
        let Some(text) = percent_decode(raw) else {
            return false;
        };
        match attribute.as_ref() {
            "time" => OffsetDateTime::parse(&text, &Rfc3339).is_ok_and(|t| t == self.time),
            "id" => same_id(&text),
            SCHEMA_VERSION_ATTRIBUTE => {
                // The canonical text: decimal digits, no sign, no leading zero.
                !text.starts_with('0')
                    && text.bytes().all(|b| b.is_ascii_digit())
                    && text.parse::<u32>().is_ok_and(|v| v == self.schema_version)
            }
            other => self.attribute_text(other).as_deref() == Some(text.as_ref()),
        }
    }

    /// The canonical string of a context attribute or extension, as a `ce-`
    /// header carries it (before percent-encoding); `None` when unset.
    fn attribute_text(&self, attribute: &str) -> Option<Cow<'_, str>> {
        Some(match attribute {
            "specversion" => Cow::Borrowed(SPEC_VERSION),
            "id" => Cow::Owned(self.id.to_string()),
            "source" => Cow::Borrowed(&self.source),
            "type" => Cow::Borrowed(&self.event_type),
            "time" => Cow::Owned(self.time_rfc3339().ok()?),
            "datacontenttype" => Cow::Borrowed(DATA_CONTENT_TYPE),
            "dataschema" => Cow::Borrowed(self.dataschema.as_deref()?),
            "subject" => Cow::Borrowed(self.subject.as_deref()?),
            ORGANIZATION_ATTRIBUTE => Cow::Borrowed(self.organization_id.as_str()),
            SCHEMA_VERSION_ATTRIBUTE => Cow::Owned(self.schema_version.to_string()),
            other => match self.extensions.get(other)? {
                Value::String(s) => Cow::Borrowed(s.as_str()),
                value => Cow::Owned(value.to_string()),
            },
        })
    }

    /// The payload as `E`: the type must match, the version must be `E`'s,
    /// the payload must satisfy `E`'s schema and deserialize into `E`.
    pub fn data_as<E: DomainEvent>(&self) -> Result<E, DecodeError> {
        if self.event_type != E::EVENT_TYPE {
            return Err(DecodeError::UnexpectedType {
                expected: E::EVENT_TYPE,
                found: self.event_type.clone(),
            });
        }
        if self.schema_version != E::SCHEMA_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                event_type: self.event_type.clone(),
                found: self.schema_version,
                reader: E::SCHEMA_VERSION,
            });
        }
        let violations = schema::violations::<E>(&self.data)?;
        if !violations.is_empty() {
            return Err(DecodeError::InvalidPayload {
                event_type: E::EVENT_TYPE,
                version: self.schema_version,
                violations,
            });
        }
        E::deserialize(&self.data).map_err(|e| DecodeError::Deserialize {
            event_type: E::EVENT_TYPE,
            message: e.to_string(),
        })
    }
}

/// What a redrive's `Nats-Msg-Id` says after the event id.
const REDRIVE_INFIX: &str = ".redrive.";

/// The `Nats-Msg-Id` of a dead letter's redrive: `<event id>.redrive.<DLQ
/// sequence>`. The decoder accepts it as naming the event id (only in this
/// exact form), and it is unique per dead letter, so a redrive repeated
/// after a crash is answered `duplicate` within the duplicate window.
pub fn redrive_msg_id(event_id: Uuid, dlq_sequence: u64) -> String {
    format!("{event_id}{REDRIVE_INFIX}{dlq_sequence}")
}

/// The event id text and DLQ sequence of a redrive's `Nats-Msg-Id`, if it
/// has exactly that form: 36 characters, the infix, a positive decimal
/// number without a leading zero.
fn redrive_of(msg_id: &str) -> Option<(&str, u64)> {
    let id = msg_id.get(..36)?;
    let sequence = msg_id.get(36..)?.strip_prefix(REDRIVE_INFIX)?;
    if sequence.starts_with('0') || !sequence.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((id, sequence.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_own_attribute_has_its_own_slot() {
        for (i, name) in OWN_ATTRIBUTES.iter().enumerate() {
            assert_eq!(Members::slot(name), Some(i), "{name}");
        }
        for other in ["", "Type", "traceparent", "datacontenttypes", "dat"] {
            assert_eq!(Members::slot(other), None, "{other}");
        }
    }

    #[test]
    fn only_the_exact_redrive_form_of_the_event_id_is_accepted() {
        let id = Uuid::now_v7();
        let ok = redrive_msg_id(id, 42);
        assert_eq!(redrive_of(&ok), Some((id.to_string().as_str(), 42)));
        for bad in [
            format!("{id}.redrive."),
            format!("{id}.redrive.042"),
            format!("{id}.redrive.0"),
            format!("{id}.redrive.4x"),
            format!("{id}.redrive.-1"),
            format!("{id}.redrivex1"),
            format!("{id}x.redrive.1"),
            format!("redrive.{id}.1"),
            format!("{id}"),
        ] {
            assert_eq!(redrive_of(&bad), None, "{bad}");
        }
    }
}
