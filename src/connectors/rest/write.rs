//! Writing to a system: the body and headers of a create, update or delete, and what its
//! answer means.

use super::*;

impl RestConnector {
    pub(super) fn write_body(
        &self,
        o: &ObjectEndpoints,
        write: &WriteRequest,
    ) -> Map<String, Value> {
        let mut body = write.payload.clone();
        if let (Concurrency::VersionField { field }, Some(token)) =
            (&o.concurrency, write.if_match.as_deref())
        {
            // The token is the version field's value as JSON text; anything else is sent as text.
            let value = serde_json::from_str(token).unwrap_or_else(|_| Value::from(token));
            set_path(&mut body, field, value);
        }
        body
    }

    pub(super) fn write_headers(
        &self,
        o: &ObjectEndpoints,
        write: &WriteRequest,
    ) -> Vec<(&'static str, String)> {
        let mut headers = vec![("Idempotency-Key", write.idempotency_key.clone())];
        if let (Concurrency::Etag, Some(token)) = (&o.concurrency, write.if_match.as_deref()) {
            headers.push(("If-Match", token.to_owned()));
        }
        headers
    }

    pub(crate) fn outcome(
        &self,
        o: &ObjectEndpoints,
        reply: Reply,
        fallback_id: Option<&str>,
    ) -> Result<WriteOutcome, ConnectorError> {
        let (record, etag) = reply.record(o);
        let header_token = || match o.concurrency {
            Concurrency::Etag => etag.clone(),
            _ => None,
        };
        match (record, fallback_id) {
            (Some(r), fallback) => match self.fetched(o, r, etag.as_deref()) {
                Ok(f) => Ok(WriteOutcome {
                    external_id: f.external_id,
                    version: f.version,
                    etag: f.etag,
                }),
                Err(e) => fallback.map_or(Err(e), |id| {
                    Ok(WriteOutcome {
                        external_id: id.to_owned(),
                        version: None,
                        etag: header_token(),
                    })
                }),
            },
            (None, Some(id)) => Ok(WriteOutcome {
                external_id: id.to_owned(),
                version: None,
                etag: header_token(),
            }),
            (None, None) => Err(ConnectorError::Rejected {
                system: self.system.clone(),
                status: reply.status.as_u16(),
                body: "the create response carries no record".into(),
            }),
        }
    }
}

/// A version field's value as an entity tag: text that already is one (`"3"`, `W/"3"`) is
/// kept as it is, anything else is quoted.
pub(super) fn entity_tag(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    if text.is_empty() {
        return None;
    }
    if text.starts_with('"') || text.starts_with("W/\"") {
        Some(text)
    } else {
        Some(format!("\"{text}\""))
    }
}
