//! Listing users and groups (RFC 7644 §3.4.2): a filter, then an order (`sortBy`, else the
//! order created), then a page (`startIndex` from 1, `count` up to `maxResults`), answered as a
//! `ListResponse` whose `totalResults` counts every match.

use std::cmp::Ordering;
use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::filter::{self, Scope};
use super::schema::{LIST, MAX_RESULTS, Resource};
use super::{Directory, ScimError, render, scim_json};

/// Resources a listing answers when the client does not say.
const DEFAULT_COUNT: usize = 100;

/// A listing's parameters.
struct Params {
    filter: Option<String>,
    /// 1-based.
    start: usize,
    count: usize,
    /// The attribute, and whether descending.
    sort: Option<(String, bool)>,
}

pub(super) fn list_response(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// A listing's parameters, whatever the case of their names.
fn params(query: HashMap<String, String>) -> Result<Params, ScimError> {
    let q: HashMap<String, String> = query
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let number = |name: &str| -> Result<Option<i64>, ScimError> {
        q.get(&name.to_ascii_lowercase())
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| {
                    ScimError::bad_request(
                        "invalidValue",
                        format!("{name} must be an integer, not {v}"),
                    )
                })
            })
            .transpose()
    };
    // RFC 7644 §3.4.2.4: a startIndex below 1 is 1, a negative count is 0.
    let start = usize::try_from(number("startIndex")?.unwrap_or(1).max(1)).unwrap_or(1);
    let count = number("count")?
        .map_or(DEFAULT_COUNT, |c| usize::try_from(c.max(0)).unwrap_or(0))
        .min(MAX_RESULTS);
    let sort = match q.get("sortby") {
        None => None,
        Some(by) => {
            let descending = match q.get("sortorder").map(|o| o.to_ascii_lowercase()) {
                None => false,
                Some(o) if o == "ascending" => false,
                Some(o) if o == "descending" => true,
                Some(o) => {
                    return Err(ScimError::bad_request(
                        "invalidValue",
                        format!("sortOrder is ascending or descending, not {o}"),
                    ));
                }
            };
            Some((by.clone(), descending))
        }
    };
    let filter = q.get("filter").filter(|f| !f.trim().is_empty()).cloned();
    Ok(Params {
        filter,
        start,
        count,
        sort,
    })
}

pub(super) async fn list(
    State(d): State<Directory>,
    resource: Resource,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Params {
        filter,
        start,
        count,
        sort,
    } = match params(query) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let empty = Map::new();
    let filter = match filter {
        None => None,
        Some(f) => match filter::parse(&f)
            .and_then(|p| filter::check(&p, Scope::Resource(resource, &empty)).map(|()| p))
        {
            Ok(p) => Some(p),
            Err(e) => {
                return ScimError::bad_request("invalidFilter", format!("{f}: {e}"))
                    .into_response();
            }
        },
    };
    let base = d.base_url();
    let mut found: Vec<Value> = {
        let store = d.lock();
        store
            .of(resource)
            .iter()
            .map(|s| render(resource, s, &base))
            .filter(|v| {
                let (Some(f), Some(m)) = (&filter, v.as_object()) else {
                    return true;
                };
                filter::matches(f, Scope::Resource(resource, m))
            })
            .collect()
    };
    if let Some((by, descending)) = sort {
        let mut keyed = Vec::with_capacity(found.len());
        for v in found {
            let key = v
                .as_object()
                .map(|m| filter::sort_key(resource, m, &by))
                .transpose()
                .map(|k| k.and_then(|(attr, key)| Some((attr, key?.clone()))));
            match key {
                Ok(k) => keyed.push((k, v)),
                Err(e) => {
                    return ScimError::bad_request("invalidValue", format!("sortBy {by}: {e}"))
                        .into_response();
                }
            }
        }
        // Resources without a value come last; ties keep the order of creation.
        keyed.sort_by(|(a, _), (b, _)| match (a, b) {
            (Some((attr, x)), Some((_, y))) => {
                let o = filter::order(attr, x, y).unwrap_or(Ordering::Equal);
                if descending { o.reverse() } else { o }
            }
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        });
        found = keyed.into_iter().map(|(_, v)| v).collect();
    }
    let total = found.len();
    let page: Vec<Value> = found.into_iter().skip(start - 1).take(count).collect();
    scim_json(
        StatusCode::OK,
        &json!({
            "schemas": [LIST],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": page.len(),
            "Resources": page,
        }),
    )
}
