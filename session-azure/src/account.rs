//! [`SignedInAccount`]: who a user sign-in belongs to, read from the token
//! response's `client_info` and ID token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// The user behind a device-code or refresh-token session, as Entra ID
/// names it. The provider records it in the session's state
/// ([`AzureState::signed_in_account`](crate::AzureState::signed_in_account))
/// at sign-in; it labels the account in the Azure CLI's files.
///
/// The claims are read from the token endpoint's answer (HTTPS, from the
/// authority itself) without checking the ID token's signature: they only
/// name the account in files and output, they never authorize anything.
/// That is also how MSAL fills its token cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SignedInAccount {
    /// The sign-in name (`preferred_username`, else `upn`, `email`,
    /// `sub`), e.g. `alice@contoso.com`.
    pub username: String,
    /// MSAL's account key: `<uid>.<utid>` from `client_info` (the user's
    /// object id and home tenant), else the ID token's `sub`.
    pub home_account_id: String,
    /// The user's object id in the session's tenant (`oid`, else `sub`).
    pub local_account_id: String,
    /// The tenant that issued the token (`tid`), when the ID token names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

#[derive(Deserialize)]
struct ClientInfo {
    uid: String,
    utid: String,
}

#[derive(Deserialize, Default)]
struct IdClaims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    oid: Option<String>,
    #[serde(default)]
    tid: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    upn: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

/// Decodes unpadded (or padded) base64url JSON.
fn decode_json<T: for<'de> Deserialize<'de>>(text: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim().trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl SignedInAccount {
    /// Reads the account from a token response's `id_token` (a JWT; its
    /// payload only) and `client_info` (base64url JSON `{uid, utid}`, which
    /// Entra sends when asked with `client_info=1`). `None` without a
    /// readable ID token.
    pub(crate) fn from_response(id_token: Option<&str>, client_info: Option<&str>) -> Option<Self> {
        let payload = id_token?.split('.').nth(1)?;
        let claims: IdClaims = decode_json(payload)?;
        let non_empty = |v: &Option<String>| v.as_ref().filter(|s| !s.trim().is_empty()).cloned();
        let sub = non_empty(&claims.sub);
        let username = non_empty(&claims.preferred_username)
            .or_else(|| non_empty(&claims.upn))
            .or_else(|| non_empty(&claims.email))
            .or_else(|| sub.clone())?;
        let info: Option<ClientInfo> = client_info.and_then(decode_json);
        let home_account_id = match &info {
            Some(info) if !info.uid.is_empty() && !info.utid.is_empty() => {
                format!("{}.{}", info.uid, info.utid)
            }
            _ => sub.clone()?,
        };
        Some(Self {
            username,
            home_account_id,
            local_account_id: non_empty(&claims.oid).or(sub)?,
            tenant_id: non_empty(&claims.tid),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    fn jwt(claims: &str) -> String {
        format!("{}.{}.sig", b64(r#"{"alg":"RS256"}"#), b64(claims))
    }

    #[test]
    fn entra_response_gives_msal_home_account_id() {
        let id =
            jwt(r#"{"sub":"s1","oid":"0b1","tid":"t9","preferred_username":"alice@contoso.com"}"#);
        let info = b64(r#"{"uid":"0b1","utid":"t9"}"#);
        let account = SignedInAccount::from_response(Some(&id), Some(&info)).unwrap();
        assert_eq!(account.username, "alice@contoso.com");
        assert_eq!(account.home_account_id, "0b1.t9");
        assert_eq!(account.local_account_id, "0b1");
        assert_eq!(account.tenant_id.as_deref(), Some("t9"));
    }

    #[test]
    fn without_client_info_or_names_falls_back_to_sub() {
        let id = jwt(r#"{"sub":"s1","email":""}"#);
        let account = SignedInAccount::from_response(Some(&id), Some("%%%")).unwrap();
        assert_eq!(account.username, "s1");
        assert_eq!(account.home_account_id, "s1");
        assert_eq!(account.local_account_id, "s1");
        assert_eq!(account.tenant_id, None);
    }

    #[test]
    fn unreadable_id_token_gives_none() {
        assert_eq!(SignedInAccount::from_response(None, None), None);
        assert_eq!(SignedInAccount::from_response(Some("a.!!.c"), None), None);
        assert_eq!(SignedInAccount::from_response(Some(&jwt("{}")), None), None);
    }
}
