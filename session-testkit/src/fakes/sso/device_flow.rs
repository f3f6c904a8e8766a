//! The SSO-OIDC API: client registration, device authorization, and
//! `CreateToken` with the device-code and refresh-token grants.

use serde_json::json;
use time::OffsetDateTime;

use super::http::{ApiError, Body, Reply, optional_str_list, refuse, required_str};
use super::state::{Client, Decision, Device, FakeState, RefreshStatus};
use super::values::{URL_SAFE, USER_CODE, random_chars, whole_seconds};
use super::{DEVICE_CODE_GRANT, REFRESH_TOKEN_GRANT};

impl FakeState {
    pub(super) fn register_client(
        &mut self,
        body: &Body,
        now: OffsetDateTime,
    ) -> Result<Reply, ApiError> {
        required_str(body, "clientName")?;
        let client_type = required_str(body, "clientType")?;
        if client_type != "public" {
            return refuse(
                "InvalidClientMetadataException",
                "Only the public client type is supported",
            );
        }
        let scopes = optional_str_list(body, "scopes")?.unwrap_or_default();
        let client = self.new_client(scopes, now);
        self.registrations += 1;
        Ok(Reply::Json(json!({
            "clientId": client.id,
            "clientSecret": client.secret,
            "clientIdIssuedAt": now.unix_timestamp(),
            "clientSecretExpiresAt": client.secret_expires_at.unix_timestamp(),
        })))
    }

    fn authenticate_client(&self, body: &Body, now: OffsetDateTime) -> Result<Client, ApiError> {
        let id = required_str(body, "clientId")?;
        let secret = required_str(body, "clientSecret")?;
        match self.clients.get(&id) {
            Some(client) if client.secret == secret => {
                if now < client.secret_expires_at {
                    Ok(client.clone())
                } else {
                    refuse("InvalidClientException", "Client secret has expired")
                }
            }
            _ => refuse("InvalidClientException", "Invalid client id or secret"),
        }
    }

    pub(super) fn start_device_authorization(
        &mut self,
        body: &Body,
        now: OffsetDateTime,
    ) -> Result<Reply, ApiError> {
        let client = self.authenticate_client(body, now)?;
        required_str(body, "startUrl")?;
        let device_code = random_chars(URL_SAFE, 86);
        let user_code = format!(
            "{}-{}",
            random_chars(USER_CODE, 4),
            random_chars(USER_CODE, 4)
        );
        let seq = self.next_seq();
        let decision = if self.settings.auto_approve {
            Decision::Approved
        } else {
            Decision::Pending
        };
        let lifetime = whole_seconds(self.settings.device_code_lifetime);
        self.devices.insert(
            device_code.clone(),
            Device {
                seq,
                client_id: client.id,
                user_code: user_code.clone(),
                expires_at: now + lifetime,
                decision,
                last_poll: None,
                redeemed: false,
            },
        );
        self.device_authorizations += 1;
        let verification_uri = format!("{}/device", self.base_url);
        Ok(Reply::Json(json!({
            "deviceCode": device_code,
            "userCode": user_code,
            "verificationUri": verification_uri,
            "verificationUriComplete": format!("{verification_uri}?user_code={user_code}"),
            "expiresIn": lifetime.as_secs(),
            "interval": whole_seconds(self.settings.interval).as_secs(),
        })))
    }

    pub(super) fn create_token(
        &mut self,
        body: &Body,
        now: OffsetDateTime,
    ) -> Result<Reply, ApiError> {
        let client = self.authenticate_client(body, now)?;
        let grant_type = required_str(body, "grantType")?;
        match grant_type.as_str() {
            DEVICE_CODE_GRANT => self.device_code_grant(&client, body, now),
            REFRESH_TOKEN_GRANT => self.refresh_token_grant(&client, body, now),
            _ => refuse("UnsupportedGrantTypeException", "Unsupported grant type"),
        }
    }

    fn device_code_grant(
        &mut self,
        client: &Client,
        body: &Body,
        now: OffsetDateTime,
    ) -> Result<Reply, ApiError> {
        let device_code = required_str(body, "deviceCode")?;
        let interval = whole_seconds(self.settings.interval);
        let enforce = self.settings.enforce_interval;
        let forced = self.forced_slow_downs > 0;
        let device = match self.devices.get_mut(&device_code) {
            Some(d) if d.client_id == client.id && !d.redeemed => d,
            _ => {
                return refuse("InvalidGrantException", "Invalid device code provided");
            }
        };
        if now >= device.expires_at {
            return refuse("ExpiredTokenException", "Device code has expired");
        }
        if device.decision == Decision::Denied {
            return refuse(
                "AccessDeniedException",
                "The user denied the authorization request",
            );
        }
        let too_fast = enforce
            && !interval.is_zero()
            && device.last_poll.is_some_and(|last| now - last < interval);
        device.last_poll = Some(now);
        if forced || too_fast {
            if forced {
                self.forced_slow_downs -= 1;
            }
            return refuse("SlowDownException", "Polling too frequently");
        }
        if device.decision == Decision::Pending {
            return refuse("AuthorizationPendingException", "Authorization is pending");
        }
        device.redeemed = true;
        let tokens = self.issue_tokens(client, now);
        Ok(self.token_reply(tokens))
    }

    fn refresh_token_grant(
        &mut self,
        client: &Client,
        body: &Body,
        now: OffsetDateTime,
    ) -> Result<Reply, ApiError> {
        let refresh_token = required_str(body, "refreshToken")?;
        let session = match self.refresh_tokens.get_mut(&refresh_token) {
            Some(record)
                if record.client_id == client.id
                    && record.status == RefreshStatus::Active
                    && now < record.expires_at =>
            {
                record.status = RefreshStatus::Used;
                record.session
            }
            _ => {
                return refuse("InvalidGrantException", "Invalid refresh token provided");
            }
        };
        let tokens = self.issue_tokens_in(client, session, now);
        Ok(self.token_reply(tokens))
    }
}
