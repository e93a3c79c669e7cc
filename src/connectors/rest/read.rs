//! Reading a system: pages and their links, records and their versions, modification-time
//! cursors, and records turned into change events.

use super::*;

impl RestConnector {
    pub(super) fn fetched(
        &self,
        o: &ObjectEndpoints,
        record: Map<String, Value>,
        etag: Option<&str>,
    ) -> Result<FetchedRecord, ConnectorError> {
        let external_id = get_path(&record, &o.id_field)
            .and_then(|v| match v {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .ok_or_else(|| ConnectorError::Rejected {
                system: self.system.clone(),
                status: 200,
                body: format!("a record has no '{}'", o.id_field),
            })?;
        let version_value = o
            .version_field
            .as_deref()
            .and_then(|f| get_path(&record, f));
        // Ordering comes from a numeric version or the modification time, never from an ETag:
        // entity tags are opaque (`W/"a1b2"` orders nothing).
        let version = version_value
            .and_then(|v| match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
            .or_else(|| {
                self.modified(o, &record)
                    .and_then(|m| parse_time(&m))
                    .map(|t| t.timestamp_micros())
            });
        let token = match &o.concurrency {
            Concurrency::None => None,
            Concurrency::Etag => etag
                .map(|e| e.trim().to_owned())
                .filter(|e| !e.is_empty())
                .or_else(|| version_value.and_then(entity_tag)),
            Concurrency::VersionField { .. } => {
                version_value.filter(|v| !v.is_null()).map(Value::to_string)
            }
        };
        let modified = self.modified(o, &record);
        Ok(FetchedRecord {
            external_id,
            record,
            version,
            etag: token,
            modified,
        })
    }

    pub(super) fn modified(
        &self,
        o: &ObjectEndpoints,
        record: &Map<String, Value>,
    ) -> Option<String> {
        let field = o.modified_field.as_deref()?;
        match get_path(record, field)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    pub(super) fn page_from(
        &self,
        o: &ObjectEndpoints,
        reply: Reply,
        current: u64,
    ) -> Result<Page, ConnectorError> {
        let body = reply.body.unwrap_or(Value::Null);
        let records = if o.records_pointer.is_empty() {
            Some(&body)
        } else {
            body.pointer(&o.records_pointer)
        };
        let records =
            records
                .and_then(Value::as_array)
                .ok_or_else(|| ConnectorError::Rejected {
                    system: self.system.clone(),
                    status: reply.status.as_u16(),
                    body: format!(
                        "the listing has no records array at '{}'",
                        o.records_pointer
                    ),
                })?;
        let count = records.len() as u64;
        let mut fetched = Vec::with_capacity(records.len());
        for r in records {
            if let Value::Object(map) = r {
                fetched.push(self.fetched(o, map.clone(), None)?);
            }
        }
        let total = o
            .total_pointer
            .as_deref()
            .and_then(|p| body.pointer(p))
            .and_then(Value::as_u64)
            .or_else(|| {
                o.total_header
                    .as_deref()
                    .and_then(|h| reply.headers.get(h))
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
            });
        let next = match &o.pagination {
            Pagination::None => None,
            Pagination::Page {
                size, first_page, ..
            } => {
                // With a total, the last full page is the last; without one, a short page is.
                let pages = current.saturating_sub(u64::from(*first_page)) + 1;
                let more = match total {
                    Some(t) => count > 0 && pages * u64::from(*size) < t,
                    None => count >= u64::from(*size),
                };
                more.then(|| (current + 1).to_string())
            }
            Pagination::Offset {
                limit,
                first_offset,
                ..
            } => {
                // With a total, a server that pages smaller than asked is followed to the end;
                // without one, a short page is the last.
                let seen = current.saturating_sub(u64::from(*first_offset)) + count;
                let more = match total {
                    Some(t) => count > 0 && seen < t,
                    None => count >= u64::from(*limit),
                };
                more.then(|| (current + count).to_string())
            }
            Pagination::Cursor { next_pointer, .. } => {
                body.pointer(next_pointer).and_then(|v| match v {
                    Value::String(s) if !s.is_empty() => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
            }
            Pagination::LinkHeader { .. } => reply
                .headers
                .get_all(reqwest::header::LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(next_link),
        };
        let server_time = reply
            .headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| DateTime::parse_from_rfc2822(v.trim()).ok())
            .map(|t| t.with_timezone(&Utc));
        Ok(Page {
            records: fetched,
            next,
            total,
            server_time,
            ..Page::default()
        })
    }

    /// Lists one page; `page` is the token the previous page returned.
    pub(crate) async fn list(
        &self,
        object: &str,
        page: Option<&str>,
        extra: Vec<(String, String)>,
    ) -> Result<Page, ConnectorError> {
        let o = self.object(object)?;
        let mut query: Vec<(String, String)> = o
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        query.extend(extra);
        let mut url = self.url(&o.path);
        let mut current = 0u64;
        match &o.pagination {
            Pagination::None => {}
            Pagination::Page {
                page_param,
                size_param,
                size,
                first_page,
            } => {
                current = page
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(u64::from(*first_page));
                query.push((page_param.clone(), current.to_string()));
                query.push((size_param.clone(), size.to_string()));
            }
            Pagination::Offset {
                offset_param,
                limit_param,
                limit,
                first_offset,
            } => {
                current = page
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(u64::from(*first_offset));
                query.push((offset_param.clone(), current.to_string()));
                query.push((limit_param.clone(), limit.to_string()));
            }
            Pagination::Cursor {
                cursor_param,
                size_param,
                size,
                ..
            } => {
                if let Some(p) = page {
                    query.push((cursor_param.clone(), p.to_owned()));
                }
                if let (Some(param), Some(size)) = (size_param, size) {
                    query.push((param.clone(), size.to_string()));
                }
            }
            Pagination::LinkHeader { size_param, size } => match page {
                // The next link is a complete URL that already carries every parameter.
                Some(next) => {
                    url = if next.starts_with("http") {
                        next.to_owned()
                    } else {
                        self.url(next)
                    };
                    query.clear();
                }
                None => {
                    if let (Some(param), Some(size)) = (size_param, size) {
                        query.push((param.clone(), size.to_string()));
                    }
                }
            },
        }
        let reply = self.send(Method::GET, &url, &query, None, &[]).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Err(ConnectorError::Config(format!(
                "system {}: {} answered 404",
                self.system, o.path
            )));
        }
        self.page_from(o, reply, current)
    }
}

pub(super) fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        is_next.then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

/// A modification time as RFC 3339, or seconds or milliseconds since the epoch.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let n: i64 = s.parse().ok()?;
    // Seconds or milliseconds since the epoch.
    if n > 100_000_000_000 {
        DateTime::from_timestamp_millis(n)
    } else {
        DateTime::from_timestamp(n, 0)
    }
}

pub(super) fn format_since(since: &str, format: TimeFormat) -> String {
    match (format, parse_time(since)) {
        (TimeFormat::Raw, _) | (_, None) => since.to_owned(),
        (TimeFormat::Rfc3339, Some(t)) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        (TimeFormat::Unix, Some(t)) => t.timestamp().to_string(),
        (TimeFormat::UnixMs, Some(t)) => t.timestamp_millis().to_string(),
    }
}

/// A polled or listed record as a change event.
pub fn event_from_fetched(system: &str, object: &str, record: FetchedRecord) -> ChangeEvent {
    let stamp = record
        .version
        .map(|v| v.to_string())
        .or_else(|| record.modified.clone())
        .unwrap_or_else(|| {
            crate::runtime::idempotency_key(&[&Value::Object(record.record.clone()).to_string()])
        });
    ChangeEvent {
        system: system.to_owned(),
        object: object.to_owned(),
        event_key: format!("poll:{}:{stamp}", record.external_id),
        source_ts: record.modified.as_deref().and_then(parse_time),
        external_id: record.external_id,
        op: ChangeOp::Upsert,
        record: record.record,
        version: record.version,
        etag: record.etag,
    }
}

/// A cursor no later than `cap`, in the shape the cursor has (RFC 3339, or seconds or
/// milliseconds since the epoch). A listing read over several pages caps its cursor at the
/// moment it began: a record changed on a page already read carries a later time than the
/// records on the pages after it, and must be asked for again.
pub fn capped_cursor(cursor: &str, cap: DateTime<Utc>) -> String {
    match parse_time(cursor) {
        Some(t) if t > cap => {
            if DateTime::parse_from_rfc3339(cursor).is_ok() {
                cap.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            } else if cursor
                .trim()
                .parse::<i64>()
                .is_ok_and(|n| n > 100_000_000_000)
            {
                cap.timestamp_millis().to_string()
            } else {
                cap.timestamp().to_string()
            }
        }
        _ => cursor.to_owned(),
    }
}

/// The cursor to keep after seeing `modified` (the greatest modification seen).
pub fn later_cursor(current: Option<&str>, modified: &str) -> String {
    match current {
        None => modified.to_owned(),
        Some(c) => match (parse_time(c), parse_time(modified)) {
            (Some(a), Some(b)) => {
                if b > a {
                    modified.to_owned()
                } else {
                    c.to_owned()
                }
            }
            _ => {
                if modified > c {
                    modified.to_owned()
                } else {
                    c.to_owned()
                }
            }
        },
    }
}
