//! Reading a SAML response locally: the roles, session name and times AWS
//! will read from it, so the role can be picked and checked before calling
//! STS.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use session_core::{Error, Result, Secret};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use super::{ASSERTION_FIELD, DURATION};
use crate::validate;

/// The SAML attribute names AWS reads.
pub mod attributes {
    /// `roleArn,providerArn` pairs (either order), one per value.
    pub const ROLE: &str = "https://aws.amazon.com/SAML/Attributes/Role";
    /// The `RoleSessionName` of the assumed role (required).
    pub const ROLE_SESSION_NAME: &str = "https://aws.amazon.com/SAML/Attributes/RoleSessionName";
    /// The session lifetime in seconds, 900–43200 (optional).
    pub const SESSION_DURATION: &str = "https://aws.amazon.com/SAML/Attributes/SessionDuration";
}

const SAML_ASSERTION_NS: &[u8] = b"urn:oasis:names:tc:SAML:2.0:assertion";
const SAML_PROTOCOL_NS: &[u8] = b"urn:oasis:names:tc:SAML:2.0:protocol";

/// One `roleArn,providerArn` pair of the assertion's `Role` attribute.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SamlRole {
    /// The role, `arn:aws:iam::<account>:role/<name>`.
    pub role_arn: String,
    /// The SAML provider, `arn:aws:iam::<account>:saml-provider/<name>`.
    pub principal_arn: String,
}

impl fmt::Display for SamlRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (via {})", self.role_arn, self.principal_arn)
    }
}

/// What AWS reads from a SAML response, parsed locally to pick and check the
/// role before calling STS. No signature is checked here (STS does that).
///
/// The struct holds no part of the assertion that grants access: only the
/// roles, session name and times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SamlAssertion {
    roles: Vec<SamlRole>,
    malformed_roles: Vec<String>,
    role_session_name: String,
    // Set directly by the provider's tests.
    pub(super) session_duration: Option<u32>,
    not_on_or_after: Option<OffsetDateTime>,
    pub(super) session_not_on_or_after: Option<OffsetDateTime>,
}

fn bad(reason: impl Into<String>) -> Error {
    Error::invalid_input(ASSERTION_FIELD, reason)
}

/// Whether an element is in the SAML namespace `ns`, or in none (lenient
/// for hand-written assertions).
fn in_ns(resolved: &ResolveResult<'_>, ns: &[u8]) -> bool {
    match resolved {
        ResolveResult::Bound(Namespace(bound)) => *bound == ns,
        ResolveResult::Unbound => true,
        ResolveResult::Unknown(_) => false,
    }
}

/// The kind of an open element, as far as the scan cares: the SAML
/// assertion elements whose nesting decides which attributes count
/// (`Assertion` > `AttributeStatement` > `Attribute` > `AttributeValue`),
/// and `Other` for everything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SamlElement {
    Assertion,
    AttributeStatement,
    Attribute,
    AttributeValue,
    Other,
}

/// What one pass over the SAML response found: the attribute values and
/// times of its assertions, and the stack of open elements while the pass
/// runs.
#[derive(Default)]
struct ScannedResponse {
    /// The open elements.
    stack: Vec<SamlElement>,
    root_seen: bool,
    assertions: usize,
    encrypted: bool,
    /// `(Name, values)` of each `Attribute` under an `AttributeStatement`.
    attributes: Vec<(String, Vec<String>)>,
    /// The text of the open `AttributeValue`.
    value: Option<String>,
    not_on_or_after: Option<OffsetDateTime>,
    session_not_on_or_after: Option<OffsetDateTime>,
}

impl ScannedResponse {
    fn inside(&self, element: SamlElement) -> bool {
        self.stack.contains(&element)
    }

    fn parent(&self) -> Option<SamlElement> {
        self.stack.last().copied()
    }

    /// Handles a start (or empty) element; returns its kind.
    fn open(
        &mut self,
        resolved: &ResolveResult<'_>,
        element: &BytesStart<'_>,
        decoder: quick_xml::encoding::Decoder,
    ) -> Result<SamlElement> {
        let local = element.local_name();
        let local = local.as_ref();
        if !self.root_seen {
            self.root_seen = true;
            if local != b"Response" || !in_ns(resolved, SAML_PROTOCOL_NS) {
                return Err(bad(
                    "the document is not a SAML 2.0 response (its root element is not samlp:Response)",
                ));
            }
        }
        let saml = in_ns(resolved, SAML_ASSERTION_NS);
        let kind = match local {
            b"Assertion" if saml => {
                self.assertions += 1;
                SamlElement::Assertion
            }
            b"EncryptedAssertion" => {
                self.encrypted = true;
                SamlElement::Other
            }
            b"AttributeStatement" if saml && self.parent() == Some(SamlElement::Assertion) => {
                SamlElement::AttributeStatement
            }
            b"Attribute" if saml && self.parent() == Some(SamlElement::AttributeStatement) => {
                let name = attribute(element, b"Name", decoder)?.unwrap_or_default();
                self.attributes.push((name, Vec::new()));
                SamlElement::Attribute
            }
            b"AttributeValue" if saml && self.parent() == Some(SamlElement::Attribute) => {
                self.value = Some(String::new());
                SamlElement::AttributeValue
            }
            b"SubjectConfirmationData" | b"Conditions"
                if saml && self.inside(SamlElement::Assertion) =>
            {
                if let Some(at) = time_attribute(element, b"NotOnOrAfter", decoder)? {
                    self.not_on_or_after = Some(earliest(self.not_on_or_after, at));
                }
                SamlElement::Other
            }
            b"AuthnStatement" if saml && self.inside(SamlElement::Assertion) => {
                if let Some(at) = time_attribute(element, b"SessionNotOnOrAfter", decoder)? {
                    self.session_not_on_or_after = Some(earliest(self.session_not_on_or_after, at));
                }
                SamlElement::Other
            }
            _ => SamlElement::Other,
        };
        Ok(kind)
    }

    fn close(&mut self, element: SamlElement) {
        if element == SamlElement::AttributeValue
            && let (Some(value), Some((_, values))) =
                (self.value.take(), self.attributes.last_mut())
        {
            values.push(value);
        }
    }

    fn text(&mut self, text: &str) {
        if let Some(value) = &mut self.value {
            value.push_str(text);
        }
    }
}

fn earliest(current: Option<OffsetDateTime>, new: OffsetDateTime) -> OffsetDateTime {
    current.map_or(new, |c| c.min(new))
}

/// The unescaped value of the attribute `name` (by local name).
fn attribute(
    element: &BytesStart<'_>,
    name: &[u8],
    decoder: quick_xml::encoding::Decoder,
) -> Result<Option<String>> {
    for attr in element.attributes() {
        let attr = attr.map_err(|e| bad(format!("malformed XML attribute: {e}")))?;
        if attr.key.local_name().as_ref() == name {
            let value = attr.decode_and_unescape_value(decoder).map_err(|_| {
                bad(format!(
                    "the {} attribute has an invalid value",
                    String::from_utf8_lossy(name)
                ))
            })?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

fn time_attribute(
    element: &BytesStart<'_>,
    name: &[u8],
    decoder: quick_xml::encoding::Decoder,
) -> Result<Option<OffsetDateTime>> {
    let Some(text) = attribute(element, name, decoder)? else {
        return Ok(None);
    };
    OffsetDateTime::parse(text.trim(), &Rfc3339)
        .map(Some)
        .map_err(|_| {
            bad(format!(
                "{} of {} is not an RFC 3339 time",
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(element.local_name().as_ref())
            ))
        })
}

/// Why a `Role` value is not a `roleArn,providerArn` pair (without quoting it).
fn parse_role(value: &str) -> std::result::Result<SamlRole, &'static str> {
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    let [a, b] = parts.as_slice() else {
        return Err("needs exactly one role ARN and one SAML provider ARN, separated by a comma");
    };
    let (role, provider) = if a.contains(":role/") {
        (*a, *b)
    } else {
        (*b, *a)
    };
    if validate::role_arn("roleArn", role).is_err() {
        return Err("has no valid IAM role ARN (arn:aws:iam::<account>:role/<name>)");
    }
    if validate::saml_provider_arn("principalArn", provider).is_err() {
        return Err("has no valid SAML provider ARN (arn:aws:iam::<account>:saml-provider/<name>)");
    }
    Ok(SamlRole {
        role_arn: role.to_owned(),
        principal_arn: provider.to_owned(),
    })
}

impl SamlAssertion {
    /// Parses the base64 `SAMLResponse` (whitespace inside the base64 is
    /// ignored).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] (field `SAML assertion`) saying what is wrong:
    /// not base64, not XML, not a SAML 2.0 response, encrypted, no `Role`
    /// or `RoleSessionName` attribute, no valid role pair, a bad
    /// `SessionDuration` or time. Errors never quote the assertion.
    pub fn parse(b64: &Secret) -> Result<Self> {
        let compact: Zeroizing<Vec<u8>> = Zeroizing::new(
            b64.expose()
                .bytes()
                .filter(|b| !b.is_ascii_whitespace())
                .collect(),
        );
        if compact.is_empty() {
            return Err(bad("it is empty"));
        }
        let decoded = Zeroizing::new(
            BASE64
                .decode(compact.as_slice())
                .map_err(|_| bad("it is not base64 (expected the base64 SAMLResponse)"))?,
        );
        let xml = std::str::from_utf8(&decoded)
            .map_err(|_| bad("the decoded assertion is not UTF-8 text"))?;
        let scanned = Self::scan(xml)?;
        Self::from_scan(scanned)
    }

    fn scan(xml: &str) -> Result<ScannedResponse> {
        let mut reader = quick_xml::NsReader::from_str(xml);
        let decoder = reader.decoder();
        let mut scanned = ScannedResponse::default();
        loop {
            let position = reader.buffer_position();
            let (resolved, event) = reader.read_resolved_event().map_err(|e| {
                let what = match e {
                    quick_xml::Error::Syntax(e) => e.to_string(),
                    quick_xml::Error::IllFormed(e) => e.to_string(),
                    _ => "unreadable".to_owned(),
                };
                bad(format!(
                    "the decoded assertion is not well-formed XML near byte {position}: {what}"
                ))
            })?;
            match event {
                Event::Start(element) => {
                    let kind = scanned.open(&resolved, &element, decoder)?;
                    scanned.stack.push(kind);
                }
                Event::Empty(element) => {
                    let kind = scanned.open(&resolved, &element, decoder)?;
                    scanned.close(kind);
                }
                Event::End(_) => {
                    if let Some(kind) = scanned.stack.pop() {
                        scanned.close(kind);
                    }
                }
                Event::Text(text) => {
                    let text = text
                        .xml10_content()
                        .map_err(|_| bad("the decoded assertion has undecodable text"))?;
                    scanned.text(&text);
                }
                Event::CData(data) => {
                    let text = data
                        .decode()
                        .map_err(|_| bad("the decoded assertion has undecodable text"))?;
                    scanned.text(&text);
                }
                Event::GeneralRef(reference) => {
                    let text: Cow<'_, str> = match reference.resolve_char_ref() {
                        Ok(Some(c)) => Cow::Owned(c.to_string()),
                        Ok(None) => {
                            let name = reference
                                .decode()
                                .map_err(|_| bad("the decoded assertion has an invalid entity"))?;
                            Cow::Borrowed(quick_xml::escape::resolve_xml_entity(&name).ok_or_else(
                                || bad("the decoded assertion uses an undefined XML entity"),
                            )?)
                        }
                        Err(_) => {
                            return Err(bad(
                                "the decoded assertion has an invalid character reference",
                            ));
                        }
                    };
                    scanned.text(&text);
                }
                Event::DocType(_) => {
                    return Err(bad(
                        "the decoded assertion has a DOCTYPE, which SAML forbids",
                    ));
                }
                Event::Eof => break,
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            }
        }
        if !scanned.root_seen {
            return Err(bad(
                "the decoded assertion is not XML (expected a samlp:Response)",
            ));
        }
        if scanned.assertions == 0 {
            return Err(bad(if scanned.encrypted {
                "the assertion is encrypted (EncryptedAssertion), so its roles cannot be read \
                 locally; ask the IdP administrator for an unencrypted assertion"
            } else {
                "the SAML response holds no saml:Assertion (did the IdP sign-in fail?)"
            }));
        }
        Ok(scanned)
    }

    fn from_scan(scanned: ScannedResponse) -> Result<Self> {
        let values = |name: &str| -> Vec<&String> {
            scanned
                .attributes
                .iter()
                .filter(|(n, _)| n == name)
                .flat_map(|(_, values)| values)
                .collect()
        };
        let role_values = values(attributes::ROLE);
        if role_values.is_empty() {
            return Err(bad(format!(
                "it has no {} attribute: the IdP grants no AWS role",
                attributes::ROLE
            )));
        }
        let mut roles: Vec<SamlRole> = Vec::new();
        let mut malformed = Vec::new();
        for (index, value) in role_values.iter().enumerate() {
            match parse_role(value) {
                Ok(role) => {
                    if !roles.contains(&role) {
                        roles.push(role);
                    }
                }
                Err(why) => malformed.push(format!("Role value {}: {why}", index + 1)),
            }
        }
        if roles.is_empty() {
            return Err(bad(format!(
                "no valid roleArn,providerArn pair in the Role attribute: {}",
                malformed.join("; ")
            )));
        }
        let role_session_name = values(attributes::ROLE_SESSION_NAME)
            .first()
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| {
                bad(format!(
                    "it has no {} attribute, which AWS requires",
                    attributes::ROLE_SESSION_NAME
                ))
            })?;
        if validate::role_session_name(&role_session_name).is_err() {
            return Err(bad(
                "its RoleSessionName attribute must be 2-64 characters from A-Z a-z 0-9 _ + = , . @ -",
            ));
        }
        let session_duration = match values(attributes::SESSION_DURATION).first() {
            None => None,
            Some(text) => {
                let seconds = text
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|s| (DURATION.0..=DURATION.1).contains(s))
                    .ok_or_else(|| {
                        bad(format!(
                            "its SessionDuration attribute must be a number of seconds in {}-{}",
                            DURATION.0, DURATION.1
                        ))
                    })?;
                Some(seconds)
            }
        };
        Ok(Self {
            roles,
            malformed_roles: malformed,
            role_session_name,
            session_duration,
            not_on_or_after: scanned.not_on_or_after,
            session_not_on_or_after: scanned.session_not_on_or_after,
        })
    }

    /// The valid `roleArn,providerArn` pairs of the `Role` attribute, in
    /// order, without duplicates.
    pub fn roles(&self) -> &[SamlRole] {
        &self.roles
    }

    /// Why each malformed `Role` value was skipped, e.g. `Role value 2:
    /// needs exactly one role ARN and one SAML provider ARN…`.
    pub fn malformed_roles(&self) -> &[String] {
        &self.malformed_roles
    }

    /// Whether the assertion grants `role_arn` through `principal_arn`.
    pub fn grants(&self, role_arn: &str, principal_arn: &str) -> bool {
        self.roles
            .iter()
            .any(|r| r.role_arn == role_arn && r.principal_arn == principal_arn)
    }

    /// The `RoleSessionName` attribute (validated).
    pub fn role_session_name(&self) -> &str {
        &self.role_session_name
    }

    /// The `SessionDuration` attribute in seconds (900–43200), if present.
    pub fn session_duration(&self) -> Option<u32> {
        self.session_duration
    }

    /// Until when the assertion may be presented: the earliest `NotOnOrAfter`
    /// of `SubjectConfirmationData` and `Conditions` (typically minutes after
    /// the sign-in).
    pub fn not_on_or_after(&self) -> Option<OffsetDateTime> {
        self.not_on_or_after
    }

    /// The `SessionNotOnOrAfter` of the `AuthnStatement`: the IdP session's
    /// end, which also ends the AWS session.
    pub fn session_not_on_or_after(&self) -> Option<OffsetDateTime> {
        self.session_not_on_or_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federated::fixtures::{IDP, ROLE, attr, b64, field_and_text, response, standard};

    #[test]
    fn parses_the_moto_assertion() {
        let parsed = SamlAssertion::parse(&b64(&standard())).expect("parse");
        assert_eq!(
            parsed.roles(),
            [SamlRole {
                role_arn: ROLE.into(),
                principal_arn: IDP.into()
            }]
        );
        assert!(parsed.grants(ROLE, IDP));
        assert!(!parsed.grants(ROLE, "arn:aws:iam::111122223333:saml-provider/Other"));
        assert_eq!(parsed.role_session_name(), "alice@example.com");
        assert_eq!(parsed.session_duration(), Some(1800));
        assert_eq!(parsed.not_on_or_after(), None);
        assert_eq!(parsed.session_not_on_or_after(), None);
        assert!(parsed.malformed_roles().is_empty());
        // Line-wrapped base64 is accepted.
        let encoded = BASE64.encode(standard());
        let wrapped: Vec<String> = encoded
            .as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        let again = SamlAssertion::parse(&Secret::new(wrapped.join("\r\n"))).expect("wrapped");
        assert_eq!(again, parsed);
    }

    #[test]
    fn both_pair_orders_and_several_roles() {
        let other = "arn:aws:iam::444455556666:role/path/ReadOnly";
        let other_idp = "arn:aws:iam::444455556666:saml-provider/Corp";
        let xml = response(&format!(
            "{}{}",
            attr(
                attributes::ROLE,
                &[
                    &format!("{IDP},{ROLE}"),
                    &format!(" {other} , {other_idp} "),
                    &format!("{ROLE},{IDP}"),
                ]
            ),
            attr(attributes::ROLE_SESSION_NAME, &["alice"]),
        ));
        let parsed = SamlAssertion::parse(&b64(&xml)).expect("parse");
        assert_eq!(parsed.roles().len(), 2, "duplicates collapse");
        assert!(parsed.grants(ROLE, IDP));
        assert!(parsed.grants(other, other_idp));
        assert_eq!(parsed.session_duration(), None);
    }

    #[test]
    fn malformed_role_values_are_reported() {
        let secret_looking = "arn:aws:iam::111122223333:role/OnlyRole";
        // One malformed value next to a good one: kept aside, reported.
        let xml = response(&format!(
            "{}{}",
            attr(
                attributes::ROLE,
                &[secret_looking, &format!("{ROLE},{IDP}")]
            ),
            attr(attributes::ROLE_SESSION_NAME, &["alice"]),
        ));
        let parsed = SamlAssertion::parse(&b64(&xml)).expect("parse");
        assert_eq!(parsed.roles().len(), 1);
        assert_eq!(parsed.malformed_roles().len(), 1);
        assert!(
            parsed.malformed_roles()[0].starts_with("Role value 1:"),
            "{:?}",
            parsed.malformed_roles()
        );
        // Only malformed values: an error that does not quote them.
        for bad in [
            secret_looking.to_owned(),
            format!("{ROLE},arn:aws:iam::111122223333:user/NotAnIdP"),
            format!("arn:aws:iam::1:role/X,{IDP}"),
            format!("{ROLE},{IDP},{IDP}"),
        ] {
            let xml = response(&format!(
                "{}{}",
                attr(attributes::ROLE, &[&bad]),
                attr(attributes::ROLE_SESSION_NAME, &["alice"]),
            ));
            let (field, text) = field_and_text(SamlAssertion::parse(&b64(&xml)).unwrap_err());
            assert_eq!(field, ASSERTION_FIELD);
            assert!(text.contains("Role value 1"), "{text}");
            for part in ["111122223333", "OnlyRole", "role/X"] {
                assert!(!text.contains(part), "the value is not quoted: {text}");
            }
        }
    }

    #[test]
    fn missing_attributes_are_errors() {
        let no_name = response(&format!(
            "{}{}",
            attr(attributes::ROLE, &[&format!("{ROLE},{IDP}")]),
            attr(attributes::SESSION_DURATION, &["1800"]),
        ));
        let (_, text) = field_and_text(SamlAssertion::parse(&b64(&no_name)).unwrap_err());
        assert!(text.contains("RoleSessionName"), "{text}");
        let no_role = response(&attr(attributes::ROLE_SESSION_NAME, &["alice"]));
        let (_, text) = field_and_text(SamlAssertion::parse(&b64(&no_role)).unwrap_err());
        assert!(
            text.contains("no https://aws.amazon.com/SAML/Attributes/Role"),
            "{text}"
        );
        let bad_name = response(&format!(
            "{}{}",
            attr(attributes::ROLE, &[&format!("{ROLE},{IDP}")]),
            attr(attributes::ROLE_SESSION_NAME, &["has space"]),
        ));
        let (_, text) = field_and_text(SamlAssertion::parse(&b64(&bad_name)).unwrap_err());
        assert!(
            text.contains("RoleSessionName") && !text.contains("has space"),
            "{text}"
        );
        for duration in ["60", "99999", "soon"] {
            let xml = response(&format!(
                "{}{}{}",
                attr(attributes::ROLE, &[&format!("{ROLE},{IDP}")]),
                attr(attributes::ROLE_SESSION_NAME, &["alice"]),
                attr(attributes::SESSION_DURATION, &[duration]),
            ));
            let (_, text) = field_and_text(SamlAssertion::parse(&b64(&xml)).unwrap_err());
            assert!(text.contains("SessionDuration"), "{text}");
        }
    }

    #[test]
    fn garbage_is_refused_without_being_quoted() {
        let cases = [
            Secret::new("not base64 at all!"),
            Secret::new(""),
            b64("just some words"),
            b64(
                "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"><a></b></samlp:Response>",
            ),
            b64("<html><body>login failed</body></html>"),
            b64("<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"/>"),
            b64(
                "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"><saml:EncryptedAssertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\"/></samlp:Response>",
            ),
            Secret::new(BASE64.encode([0xff, 0xfe, 0x00])),
        ];
        let mut texts = Vec::new();
        for case in cases {
            let (field, text) = field_and_text(SamlAssertion::parse(&case).unwrap_err());
            assert_eq!(field, ASSERTION_FIELD);
            for leak in ["base64 at all", "some words", "login failed"] {
                assert!(!text.contains(leak), "quotes the input: {text}");
            }
            texts.push(text);
        }
        assert!(texts[0].contains("not base64"), "{}", texts[0]);
        assert!(texts[2].contains("not XML"), "{}", texts[2]);
        assert!(texts[3].contains("well-formed"), "{}", texts[3]);
        assert!(texts[4].contains("samlp:Response"), "{}", texts[4]);
        assert!(texts[5].contains("no saml:Assertion"), "{}", texts[5]);
        assert!(texts[6].contains("encrypted"), "{}", texts[6]);
        assert!(texts[7].contains("UTF-8"), "{}", texts[7]);
    }

    #[test]
    fn times_namespaces_and_entities() {
        // Another prefix, default namespaces, an escaped value, CDATA, and
        // attributes of the wrong namespace or place ignored.
        let xml = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Response xmlns="urn:oasis:names:tc:SAML:2.0:protocol">
<a:Assertion xmlns:a="urn:oasis:names:tc:SAML:2.0:assertion">
<a:Subject><a:SubjectConfirmation><a:SubjectConfirmationData NotOnOrAfter="2026-01-01T00:05:00Z"/></a:SubjectConfirmation></a:Subject>
<a:Conditions NotBefore="2026-01-01T00:00:00Z" NotOnOrAfter="2026-01-01T00:04:00.500Z"/>
<a:AuthnStatement SessionNotOnOrAfter="2026-01-01T08:00:00Z"/>
<a:AttributeStatement>
<a:Attribute Name="{role}"><a:AttributeValue xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">{ROLE}&#44;<![CDATA[{IDP}]]></a:AttributeValue></a:Attribute>
<a:Attribute Name="{name}"><a:AttributeValue>o&apos;brien</a:AttributeValue></a:Attribute>
<x:Attribute xmlns:x="urn:other" Name="{duration}"><x:AttributeValue>60</x:AttributeValue></x:Attribute>
</a:AttributeStatement>
</a:Assertion></Response>"#,
            role = attributes::ROLE,
            name = attributes::ROLE_SESSION_NAME,
            duration = attributes::SESSION_DURATION,
        );
        // The entity resolves to `'`, which a RoleSessionName cannot hold.
        let err = SamlAssertion::parse(&b64(&xml)).unwrap_err().to_string();
        assert!(err.contains("RoleSessionName"), "{err}");
        let xml = xml.replace("o&apos;brien", "o&#x40;brien");
        let parsed = SamlAssertion::parse(&b64(&xml)).expect("parse");
        assert!(parsed.grants(ROLE, IDP));
        assert_eq!(parsed.role_session_name(), "o@brien");
        assert_eq!(parsed.session_duration(), None, "wrong namespace ignored");
        assert_eq!(
            parsed.not_on_or_after(),
            Some(time::macros::datetime!(2026-01-01 00:04:00.5 UTC)),
            "the earliest of Conditions and SubjectConfirmationData"
        );
        assert_eq!(
            parsed.session_not_on_or_after(),
            Some(time::macros::datetime!(2026-01-01 08:00:00 UTC))
        );
        let bad_time = xml.replace("2026-01-01T08:00:00Z", "tomorrow");
        let err = SamlAssertion::parse(&b64(&bad_time))
            .unwrap_err()
            .to_string();
        assert!(err.contains("SessionNotOnOrAfter"), "{err}");
    }
}
