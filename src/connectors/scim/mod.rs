//! The `scim` connector: a SCIM 2.0 service provider (RFC 7643/7644), such as an identity
//! provider (Okta, Entra ID, OneLogin) or a SaaS app's provisioning API, as a system.
//!
//! Reading is the `rest` connector with SCIM's conventions filled in (see [`config`]):
//! ListResponse paging from `startIndex` 1, incremental reads by `meta.lastModified`, the
//! `meta.version` ETag as the concurrency token; deletes are found by reconciliation. What a
//! server supports (PATCH, filtering, ETags) is read once from its ServiceProviderConfig.
//!
//! Writing is SCIM's own (see [`patch`]): an update reads the resource, refuses to go on if it
//! changed since the engine read it (its ETag moved: a version conflict, so the engine merges
//! and plans again), and sends a PatchOp that touches only the mapped attributes, with
//! `If-Match`; a server without PATCH gets the resource as just read with the changes applied
//! (PUT, `If-Match`), never a body built from mapped fields alone. A group's members are read
//! and written as their keys (`memberKeys`), one member at a time. A delete can deactivate
//! (`active` = false) instead of removing.

pub mod config;
pub mod discovery;
pub mod patch;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::connector::{
    Capabilities, Connector, ConnectorError, FetchedRecord, Page, ReconcileSchedule, WriteOutcome,
    WriteRequest,
};
use crate::connectors::rest::RestConnector;
use crate::model::SystemConfig;
use crate::secrets::{OriginPolicy, SharedSecrets};

pub use self::config::{MEMBER_KEYS, OnDelete, ScimConfig, ScimObject};
pub use self::discovery::Features;

pub struct ScimConnector {
    system: String,
    config: ScimConfig,
    inner: RestConnector,
    features: tokio::sync::OnceCell<Features>,
    /// The server's ResourceTypes and Schemas documents (their `Resources`).
    schemas: tokio::sync::OnceCell<(Vec<Value>, Vec<Value>)>,
    /// Member object and resource id -> the member's key ([`ScimObject::member_key`]).
    member_keys: std::sync::Mutex<HashMap<(String, String), String>>,
}

const SCIM_JSON: &str = "application/scim+json";

/// The value of a SCIM attribute path (`externalId`, `name.givenName`,
/// `urn:…:User:employeeNumber`) in a resource, as text.
fn attribute_text(record: &Map<String, Value>, attribute: &str) -> Option<String> {
    let value = match attribute.rsplit_once(':') {
        Some((urn, attr)) if attribute.starts_with("urn:") => record.get(urn)?.get(attr)?,
        _ => {
            let mut parts = attribute.split('.');
            let mut v = record.get(parts.next()?)?;
            for p in parts {
                v = v.get(p)?;
            }
            v
        }
    };
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl ScimConnector {
    pub fn from_config_with(
        system: &SystemConfig,
        secrets: SharedSecrets,
        origins: Arc<dyn OriginPolicy>,
    ) -> Result<Self, ConnectorError> {
        let config = ScimConfig::parse(&system.id, &system.config)?;
        let as_rest = SystemConfig {
            config: serde_json::to_value(config.as_rest())
                .map_err(|e| ConnectorError::Config(format!("system {}: {e}", system.id)))?,
            connector: "rest".into(),
            ..system.clone()
        };
        let inner = RestConnector::from_config_with(&as_rest, secrets, origins)?;
        Ok(Self {
            system: system.id.clone(),
            config,
            inner,
            features: tokio::sync::OnceCell::new(),
            schemas: tokio::sync::OnceCell::new(),
            member_keys: std::sync::Mutex::new(HashMap::new()),
        })
    }

    fn object(&self, name: &str) -> Result<&ScimObject, ConnectorError> {
        self.config.objects.get(name).ok_or_else(|| {
            ConnectorError::Config(format!("system {}: no object '{name}'", self.system))
        })
    }

    /// What the server supports: read once from its ServiceProviderConfig. A server without
    /// one is taken at the RFC's word (PATCH and filtering are common, ETags are read as they
    /// come); a failure to ask is not remembered, so the next call asks again.
    pub async fn features(&self) -> Result<Features, ConnectorError> {
        let discovered = self
            .features
            .get_or_try_init(|| async {
                let url = self.inner.url("/ServiceProviderConfig");
                let reply = self.inner.send(Method::GET, &url, &[], None, &[]).await?;
                Ok::<_, ConnectorError>(Features::from_document(&reply.body.unwrap_or(Value::Null)))
            })
            .await?;
        let o = self.config.features;
        Ok(Features {
            patch: o.patch.unwrap_or(discovered.patch),
            filter: o.filter.unwrap_or(discovered.filter),
            ..*discovered
        })
    }

    /// The `Resources` of a discovery endpoint's ListResponse (empty where it has none).
    async fn discovery_list(&self, endpoint: &str) -> Result<Vec<Value>, ConnectorError> {
        let reply = self
            .inner
            .send(Method::GET, &self.inner.url(endpoint), &[], None, &[])
            .await?;
        Ok(reply
            .body
            .and_then(|b| b.get("Resources").and_then(Value::as_array).cloned())
            .unwrap_or_default())
    }

    /// A record as read, made regular: booleans sent as text are booleans, a group's members
    /// are also listed by their keys, a member's key is remembered.
    async fn settle(
        &self,
        object: &str,
        mut record: FetchedRecord,
    ) -> Result<FetchedRecord, ConnectorError> {
        patch::normalize_booleans(&mut record.record, &BTreeSet::new());
        let o = self.object(object)?;
        if let Some((member_object, key_attr)) = self.member_key_of(object)
            && let Some(key) = attribute_text(&record.record, &key_attr)
        {
            self.remember(&member_object, &record.external_id, &key);
        }
        if o.member_key.is_some() {
            let ids = patch::member_ids(&record.record);
            let keys: BTreeSet<String> = self.keys_of_ids(o, &ids).await?.into_values().collect();
            record.record.insert(
                MEMBER_KEYS.into(),
                Value::Array(keys.into_iter().map(Value::from).collect()),
            );
        }
        Ok(record)
    }

    async fn settle_page(&self, object: &str, mut page: Page) -> Result<Page, ConnectorError> {
        let records = std::mem::take(&mut page.records);
        for r in records {
            page.records.push(self.settle(object, r).await?);
        }
        Ok(page)
    }

    /// When `object` holds the members of some group object: (its name, the key attribute).
    fn member_key_of(&self, object: &str) -> Option<(String, String)> {
        self.config.objects.values().find_map(|g| {
            let key = g.member_key.clone()?;
            (self.config.member_object(g).as_deref() == Some(object))
                .then(|| (object.to_owned(), key))
        })
    }

    fn remember(&self, object: &str, id: &str, key: &str) {
        if let Ok(mut cache) = self.member_keys.lock() {
            cache.insert((object.to_owned(), id.to_owned()), key.to_owned());
        }
    }

    fn remembered(&self, object: &str, id: &str) -> Option<String> {
        self.member_keys
            .lock()
            .ok()?
            .get(&(object.to_owned(), id.to_owned()))
            .cloned()
    }

    /// Each member id's key; members the directory holds without a key are left out.
    async fn keys_of_ids(
        &self,
        group: &ScimObject,
        ids: &[String],
    ) -> Result<BTreeMap<String, String>, ConnectorError> {
        let (Some(member_object), Some(key_attr)) = (
            self.config.member_object(group),
            group.member_key.as_deref(),
        ) else {
            return Ok(BTreeMap::new());
        };
        let mut keys = BTreeMap::new();
        for id in ids {
            let key = match self.remembered(&member_object, id) {
                Some(k) => Some(k),
                None => match self.inner.get(&member_object, id).await? {
                    Some(member) => {
                        let key = attribute_text(&member.record, key_attr);
                        if let Some(k) = &key {
                            self.remember(&member_object, id, k);
                        }
                        key
                    }
                    None => None,
                },
            };
            if let Some(k) = key {
                keys.insert(id.clone(), k);
            }
        }
        Ok(keys)
    }

    /// Each key's resource id, looked up by filter where not remembered; keys not found are
    /// left out.
    async fn ids_of_keys(
        &self,
        group: &ScimObject,
        keys: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, String>, ConnectorError> {
        let (Some(member_object), Some(key_attr)) = (
            self.config.member_object(group),
            group.member_key.as_deref(),
        ) else {
            return Ok(BTreeMap::new());
        };
        let known: HashMap<String, String> = self
            .member_keys
            .lock()
            .map(|c| {
                c.iter()
                    .filter(|((o, _), _)| *o == member_object)
                    .map(|((_, id), k)| (k.clone(), id.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut ids = BTreeMap::new();
        for key in keys {
            if let Some(id) = known.get(key) {
                ids.insert(key.clone(), id.clone());
                continue;
            }
            let clause = format!("{key_attr} eq {}", patch::filter_literal(key));
            let page = self
                .inner
                .list(&member_object, None, vec![("filter".into(), clause)])
                .await?;
            for r in page.records {
                if attribute_text(&r.record, key_attr).as_deref() == Some(key.as_str()) {
                    self.remember(&member_object, &r.external_id, key);
                    ids.insert(key.clone(), r.external_id.clone());
                }
            }
        }
        Ok(ids)
    }

    /// The resource as the server holds it now, with its ETag; None if it is gone.
    async fn current(
        &self,
        object: &str,
        id: &str,
    ) -> Result<Option<(Map<String, Value>, Option<String>)>, ConnectorError> {
        Ok(self.inner.get(object, id).await?.map(|mut r| {
            patch::normalize_booleans(&mut r.record, &BTreeSet::new());
            (r.record, r.etag)
        }))
    }

    fn rejected(&self, status: u16, body: String) -> ConnectorError {
        ConnectorError::Rejected {
            system: self.system.clone(),
            status,
            body,
        }
    }

    fn headers(idempotency_key: &str, if_match: Option<&str>) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("Content-Type", SCIM_JSON.to_owned()),
            ("Idempotency-Key", idempotency_key.to_owned()),
        ];
        if let Some(tag) = if_match {
            headers.push(("If-Match", tag.to_owned()));
        }
        headers
    }

    /// Sends a changed resource: a PatchOp, or the whole resource (PUT) where PATCH is not
    /// supported; a 404 is the record gone.
    async fn send_change(
        &self,
        object: &str,
        id: &str,
        body: Map<String, Value>,
        patch: bool,
        headers: &[(&'static str, String)],
    ) -> Result<WriteOutcome, ConnectorError> {
        let o = self.inner.object(object)?;
        let url = self.inner.url(&RestConnector::item_path(o, None, id));
        let method = if patch { Method::PATCH } else { Method::PUT };
        let reply = self
            .inner
            .send(method, &url, &[], Some(&body), headers)
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Err(ConnectorError::NotFound {
                system: self.system.clone(),
                external_id: id.to_owned(),
            });
        }
        self.inner.outcome(o, reply, Some(id))
    }

    /// A group's member keys as written: the list at `memberKeys` as a set of texts.
    fn wanted_members(value: &Value) -> Result<BTreeSet<String>, String> {
        match value {
            Value::Null => Ok(BTreeSet::new()),
            Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(format!("a member key must be text, not {other}")),
                })
                .collect(),
            other => Err(format!(
                "{MEMBER_KEYS} must be a list of member keys, not {other}"
            )),
        }
    }

    /// The `members` array a group should have: members whose key is unknown or wanted stay,
    /// wanted keys not present are added.
    async fn members_after(
        &self,
        o: &ScimObject,
        current: &Map<String, Value>,
        wanted: &BTreeSet<String>,
    ) -> Result<Vec<Value>, ConnectorError> {
        let ids = patch::member_ids(current);
        let present = self.keys_of_ids(o, &ids).await?;
        let missing: BTreeSet<String> = wanted
            .iter()
            .filter(|k| !present.values().any(|p| p == *k))
            .cloned()
            .collect();
        let resolved = self.ids_of_keys(o, &missing).await?;
        if let Some(k) = missing.iter().find(|k| !resolved.contains_key(*k)) {
            return Err(self.not_yet(k));
        }
        let mut members: Vec<Value> = current
            .get("members")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|m| {
                let id = m.get("value").and_then(Value::as_str).unwrap_or_default();
                present.get(id).is_none_or(|k| wanted.contains(k))
            })
            .collect();
        members.extend(resolved.into_values().map(|id| json!({ "value": id })));
        Ok(members)
    }

    /// A member not provisioned yet is worth waiting for: its create is usually on its way.
    fn not_yet(&self, key: &str) -> ConnectorError {
        ConnectorError::Retryable {
            system: self.system.clone(),
            status: None,
            retry_after: Some(std::time::Duration::from_secs(5)),
            message: format!("member '{key}' is not in {} yet", self.system),
        }
    }
}

#[async_trait]
impl Connector for ScimConnector {
    fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.config.timeout_ms)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            partial_update: true,
            versioned_writes: true,
            delete: true,
            webhooks: false,
            incremental: true,
            path_writes: true,
        }
    }

    async fn declared_fields(&self, object: &str) -> Result<Vec<String>, ConnectorError> {
        let o = self.object(object)?;
        let (types, schemas) = self
            .schemas
            .get_or_try_init(|| async {
                Ok::<_, ConnectorError>((
                    self.discovery_list("/ResourceTypes").await?,
                    self.discovery_list("/Schemas").await?,
                ))
            })
            .await?;
        let Some(resource_type) = types.iter().find(|t| {
            t.get("name").and_then(Value::as_str) == Some(o.resource.as_str())
                || t.get("id").and_then(Value::as_str) == Some(o.resource.as_str())
        }) else {
            return Ok(Vec::new());
        };
        let mut paths = discovery::declared_paths(resource_type, schemas);
        if o.member_key.is_some() {
            paths.retain(|p| !p.starts_with("members"));
            paths.push(MEMBER_KEYS.to_owned());
        }
        Ok(paths)
    }

    fn cursor_at(&self, object: &str, time: chrono::DateTime<chrono::Utc>) -> Option<String> {
        self.inner.cursor_at(object, time)
    }

    fn poll_interval(&self) -> Option<std::time::Duration> {
        self.inner.poll_interval()
    }

    fn reconcile_schedule(&self) -> Option<ReconcileSchedule> {
        self.inner.reconcile_schedule()
    }

    async fn list_page(&self, object: &str, page: Option<&str>) -> Result<Page, ConnectorError> {
        let listed = self.inner.list_page(object, page).await?;
        self.settle_page(object, listed).await
    }

    async fn changes_page(
        &self,
        object: &str,
        since: &str,
        page: Option<&str>,
    ) -> Result<Page, ConnectorError> {
        let listed = if self.features().await?.filter {
            self.inner.changes_page(object, since, page).await?
        } else {
            self.inner.list_page(object, page).await?
        };
        self.settle_page(object, listed).await
    }

    async fn get(
        &self,
        object: &str,
        external_id: &str,
    ) -> Result<Option<FetchedRecord>, ConnectorError> {
        match self.inner.get(object, external_id).await? {
            Some(r) => Ok(Some(self.settle(object, r).await?)),
            None => Ok(None),
        }
    }

    async fn find(
        &self,
        object: &str,
        criteria: &[(String, Value)],
    ) -> Result<Vec<FetchedRecord>, ConnectorError> {
        let clause = criteria.first().and_then(|(path, value)| {
            let scim = patch::scim_path(path)?;
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some(format!("{scim} eq {}", patch::filter_literal(&text)))
        });
        let found = match clause {
            Some(clause) if self.features().await?.filter => {
                crate::connector::find_in_pages(object, criteria, |token| {
                    let clause = clause.clone();
                    async move {
                        self.inner
                            .list(object, token.as_deref(), vec![("filter".into(), clause)])
                            .await
                    }
                })
                .await?
            }
            _ => crate::connector::find_by_listing(&self.inner, object, criteria).await?,
        };
        let mut settled = Vec::with_capacity(found.len());
        for r in found {
            settled.push(self.settle(object, r).await?);
        }
        Ok(settled)
    }

    async fn create(&self, write: &WriteRequest) -> Result<WriteOutcome, ConnectorError> {
        let o = self.object(&write.object)?;
        let mut body = write.payload.clone();
        body.remove("id");
        body.remove("meta");
        if let Some(keys) = body.remove(MEMBER_KEYS) {
            let wanted = Self::wanted_members(&keys).map_err(|m| self.rejected(422, m))?;
            let members = self.members_after(o, &Map::new(), &wanted).await?;
            body.insert("members".into(), Value::Array(members));
        }
        if !body.contains_key("schemas") {
            let mut schemas: Vec<Value> = o.core_schema().map(Value::from).into_iter().collect();
            schemas.extend(
                body.iter()
                    .filter(|(k, v)| k.starts_with("urn:") && v.is_object())
                    .map(|(k, _)| Value::from(k.as_str())),
            );
            body.insert("schemas".into(), Value::Array(schemas));
        }
        let rest = self.inner.object(&write.object)?;
        let url = self.inner.url(&rest.path);
        let reply = self
            .inner
            .send(
                Method::POST,
                &url,
                &[],
                Some(&body),
                &Self::headers(&write.idempotency_key, None),
            )
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Err(ConnectorError::Config(format!(
                "system {}: {} answered 404",
                self.system, rest.path
            )));
        }
        let outcome = self.inner.outcome(rest, reply, None)?;
        if let Some((member_object, key_attr)) = self.member_key_of(&write.object)
            && let Some(key) = attribute_text(&body, &key_attr)
        {
            self.remember(&member_object, &outcome.external_id, &key);
        }
        Ok(outcome)
    }

    async fn update(
        &self,
        external_id: &str,
        write: &WriteRequest,
    ) -> Result<WriteOutcome, ConnectorError> {
        let o = self.object(&write.object)?;
        let features = self.features().await?;
        let Some((current, etag)) = self.current(&write.object, external_id).await? else {
            return Err(ConnectorError::NotFound {
                system: self.system.clone(),
                external_id: external_id.to_owned(),
            });
        };
        // The write carries the token the engine planned against, not the one just read: if
        // the resource moved on since, the server refuses it (412) and the engine merges.
        let if_match = write.if_match.clone().or(etag.clone());
        let assignments = if write.assignments.is_empty() {
            crate::delivery::send::assignments_from_payload(&write.payload)
        } else {
            write.assignments.clone()
        };
        let (members, others): (Vec<_>, Vec<_>) =
            assignments.into_iter().partition(|(p, _)| p == MEMBER_KEYS);
        let wanted = match members.last() {
            Some((_, v)) if o.member_key.is_some() => {
                Some(Self::wanted_members(v).map_err(|m| self.rejected(422, m))?)
            }
            _ => None,
        };
        let invalid = |m: String| {
            self.rejected(
                422,
                format!(
                    "the change cannot be applied to the resource as {} holds it: {m}",
                    self.system
                ),
            )
        };
        let headers = Self::headers(&write.idempotency_key, if_match.as_deref());
        if features.patch {
            let mut ops = patch::operations(&current, &others).map_err(invalid)?;
            if let Some(wanted) = &wanted {
                let ids = patch::member_ids(&current);
                let present = self.keys_of_ids(o, &ids).await?;
                let missing: BTreeSet<String> = wanted
                    .iter()
                    .filter(|k| !present.values().any(|p| p == *k))
                    .cloned()
                    .collect();
                let resolved = self.ids_of_keys(o, &missing).await?;
                if let Some(k) = missing.iter().find(|k| !resolved.contains_key(*k)) {
                    return Err(self.not_yet(k));
                }
                ops.extend(patch::member_operations(&present, wanted, &resolved).map_err(invalid)?);
            }
            if ops.is_empty() {
                return Ok(WriteOutcome {
                    external_id: external_id.to_owned(),
                    version: None,
                    etag,
                });
            }
            let body = patch::patch_body(ops);
            self.send_change(&write.object, external_id, body, true, &headers)
                .await
        } else {
            let mut doc = patch::replaced(&current, &others).map_err(invalid)?;
            if let Some(wanted) = &wanted {
                let members = self.members_after(o, &current, wanted).await?;
                doc.insert("members".into(), Value::Array(members));
            }
            doc.remove(MEMBER_KEYS);
            self.send_change(&write.object, external_id, doc, false, &headers)
                .await
        }
    }

    async fn delete(
        &self,
        external_id: &str,
        write: &WriteRequest,
    ) -> Result<WriteOutcome, ConnectorError> {
        let o = self.object(&write.object)?;
        if o.on_delete == OnDelete::Delete {
            return self.inner.delete(external_id, write).await;
        }
        let deactivate = WriteRequest {
            assignments: vec![("active".into(), Value::Bool(false))],
            ..write.clone()
        };
        match self.update(external_id, &deactivate).await {
            // Already gone is as deactivated as it gets.
            Err(ConnectorError::NotFound { .. }) => Ok(WriteOutcome {
                external_id: external_id.to_owned(),
                version: None,
                etag: None,
            }),
            other => other,
        }
    }

    fn describe_write(
        &self,
        op: &str,
        external_id: Option<&str>,
        object: &str,
    ) -> Option<(String, String)> {
        let o = self.config.objects.get(object)?;
        let (method, path) = self.inner.describe_write(op, external_id, object)?;
        let method = match op {
            "update" => "PATCH".to_owned(),
            "delete" if o.on_delete == OnDelete::Deactivate => "PATCH".to_owned(),
            _ => method,
        };
        Some((method, path))
    }
}
