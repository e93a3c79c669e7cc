//! Authentication both ways: the secrets a request carries (only to the origin they were saved
//! for), OAuth2 tokens cached and refreshed, and the signatures of incoming webhooks.

use super::*;

impl RestConnector {
    pub(super) fn secret(&self, name: &str) -> Result<Secret, ConnectorError> {
        self.secrets
            .get(name)
            .map_err(|e| ConnectorError::Config(format!("system {}: {e}", self.system)))
    }

    /// The secret `name`, to be sent to `url`: only if `url` is on the origin the config
    /// declares for it, and that origin is the one the secret was saved for.
    pub(super) fn secret_for(&self, name: &str, url: &str) -> Result<Secret, ConnectorError> {
        let declared = self
            .config
            .sent_secrets()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, o)| o);
        let target = origin_of(url);
        let Some(origin) = declared.filter(|d| Some(d) == target.as_ref()) else {
            return Err(ConnectorError::Config(format!(
                "system {}: the secret '{name}' is not sent to {} (only to the address its \
                 config names)",
                self.system,
                target.as_deref().unwrap_or("an address without an origin")
            )));
        };
        if !self.origins.allows(name, &origin) {
            return Err(ConnectorError::Config(format!(
                "system {}: re-enter the secret '{name}' to use it with {origin} (a stored \
                 secret is only sent to the address it was saved for)",
                self.system
            )));
        }
        self.secret(name)
    }

    pub(super) async fn bearer_token(&self, force_refresh: bool) -> Result<Secret, ConnectorError> {
        let Auth::Oauth2ClientCredentials {
            token_url,
            client_id,
            secret,
            scope,
        } = &self.config.auth
        else {
            return Err(ConnectorError::Config("not an OAuth2 system".into()));
        };
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref()
            && !force_refresh
            && t.expires_at > Utc::now() + chrono::Duration::seconds(30)
        {
            return Ok(t.token.clone());
        }
        let url = if token_url.starts_with("http") {
            token_url.clone()
        } else {
            self.url(token_url)
        };
        let client_secret = self.secret_for(secret, &url)?;
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", client_id.clone()),
            ("client_secret", client_secret.expose().to_owned()),
        ];
        if let Some(s) = scope {
            form.push(("scope", s.clone()));
        }
        let response = self
            .client
            .post(url)
            .form(&form)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(
                match ConnectorError::from_status(
                    &self.system,
                    status.as_u16(),
                    None,
                    String::new(),
                ) {
                    ConnectorError::Rejected { system, status, .. } => ConnectorError::Rejected {
                        system,
                        status,
                        body: "the token endpoint refused the client credentials".into(),
                    },
                    other => other,
                },
            );
        }
        let json: Value = serde_json::from_str(&body).map_err(|_| ConnectorError::Rejected {
            system: self.system.clone(),
            status: status.as_u16(),
            body: "the token endpoint's answer is not JSON".into(),
        })?;
        let token = json
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| ConnectorError::Rejected {
                system: self.system.clone(),
                status: status.as_u16(),
                body: "the token endpoint's answer has no access_token".into(),
            })?;
        let expires_in = json
            .get("expires_in")
            .and_then(Value::as_i64)
            .unwrap_or(3600);
        let token = Secret::new(token);
        *cached = Some(CachedToken {
            token: token.clone(),
            expires_at: Utc::now() + chrono::Duration::seconds(expires_in),
        });
        Ok(token)
    }

    pub(super) async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
        refresh: bool,
    ) -> Result<reqwest::RequestBuilder, ConnectorError> {
        Ok(match &self.config.auth {
            Auth::None => request,
            Auth::ApiKey {
                header,
                secret,
                prefix,
            } => {
                let value = self.secret_for(secret, url)?;
                request.header(
                    header.as_str(),
                    format!("{}{}", prefix.as_deref().unwrap_or(""), value.expose()),
                )
            }
            Auth::Bearer { secret } => request.bearer_auth(self.secret_for(secret, url)?.expose()),
            Auth::Basic { username, secret } => {
                request.basic_auth(username, Some(self.secret_for(secret, url)?.expose()))
            }
            Auth::Oauth2ClientCredentials { .. } => {
                // The access token is the token endpoint's answer for this system: it goes
                // only to the system's own origin.
                if origin_of(url) != origin_of(&self.config.base_url) {
                    return Err(ConnectorError::Config(format!(
                        "system {}: the access token is only sent to the system's base_url",
                        self.system
                    )));
                }
                request.bearer_auth(self.bearer_token(refresh).await?.expose())
            }
        })
    }

    pub(super) fn verify_signature(
        &self,
        w: &WebhookConfig,
        headers: &http::HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), WebhookError> {
        let unauthorized = |m: &str| WebhookError::Unauthorized(m.to_owned());
        let signature = headers
            .get(w.signature_header.as_str())
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthorized("the webhook is not signed"))?;
        let digest = signature
            .trim()
            .strip_prefix(w.signature_prefix.as_str())
            .unwrap_or(signature.trim());
        let expected =
            hex::decode(digest).map_err(|_| unauthorized("the webhook signature is not hex"))?;
        let timestamp = match &w.timestamp_header {
            Some(h) => {
                let raw = headers
                    .get(h.as_str())
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| unauthorized("the webhook has no timestamp"))?;
                let secs: i64 = raw
                    .trim()
                    .parse()
                    .map_err(|_| unauthorized("the webhook timestamp is not a number"))?;
                let age = (now.timestamp() - secs).unsigned_abs();
                if w.tolerance_secs > 0 && age > w.tolerance_secs {
                    return Err(unauthorized(
                        "the webhook timestamp is outside the tolerance (replayed or clock skew)",
                    ));
                }
                Some(raw.trim().to_owned())
            }
            None => None,
        };
        let key = self
            .secrets
            .get(&w.secret)
            .map_err(|e| WebhookError::Unauthorized(e.to_string()))?;
        let mut mac = HmacSha256::new_from_slice(key.expose().as_bytes())
            .map_err(|_| unauthorized("the webhook key is unusable"))?;
        if let (SignedPayload::TimestampDotBody, Some(ts)) = (w.signed_payload, &timestamp) {
            mac.update(ts.as_bytes());
            mac.update(b".");
        }
        mac.update(body);
        mac.verify_slice(&expected)
            .map_err(|_| unauthorized("the webhook signature does not match"))
    }
}

/// Signs a webhook body the way [`WebhookConfig`] with `timestamp_dot_body` expects; for
/// systems built on Concord and for tests.
pub fn sign_webhook(key: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = match HmacSha256::new_from_slice(key.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}
