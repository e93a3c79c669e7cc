//! The `scim` connector's config, validated on load with messages that name the bad key, and
//! the `rest` endpoints it stands for: a SCIM 2.0 service provider (RFC 7644) pages, filters
//! and carries ETags the same way everywhere, so reading is the declarative `rest` connector
//! with those conventions filled in, and only writing (PatchOp, PUT as last read, members,
//! deactivation) is the SCIM connector's own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::connector::ConnectorError;
use crate::connectors::rest::{
    Auth, Concurrency, Endpoint, Incremental, Lookup, ObjectEndpoints, Pagination, PollConfig,
    ReconcileConfig, RestConfig, TimeFormat,
};

/// The core and enterprise-extension schema URNs (RFC 7643 §8.7).
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The attribute a Group's members are presented under, as a list of each member's key (see
/// [`ScimObject::member_key`]).
pub const MEMBER_KEYS: &str = "memberKeys";

/// A SCIM 2.0 service provider (an identity provider or a SaaS app's provisioning API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScimConfig {
    /// The SCIM base URL, e.g. `https://example.okta.com/scim/v2` (the resource endpoints
    /// `/Users`, `/Groups` and the discovery endpoints are below it).
    pub base_url: String,
    /// Bearer token or OAuth2 client credentials (secrets by keychain name, never values).
    #[serde(default)]
    pub auth: Auth,
    /// How long one request may take, in milliseconds (default 10,000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The `User-Agent` header sent (default `concord/` and the version).
    #[serde(default)]
    pub user_agent: Option<String>,
    /// Object name -> the SCIM resource type its records are.
    pub objects: BTreeMap<String, ScimObject>,
    /// Poll interval; SCIM sends no webhooks, so a SCIM system is polled (default every 30 s).
    #[serde(default)]
    pub poll: Option<PollConfig>,
    /// Full listings compared with what the engine knows: how deletes are found (default
    /// every 600 s).
    #[serde(default)]
    pub reconcile: Option<ReconcileConfig>,
    /// What the server supports, when its ServiceProviderConfig should not be trusted
    /// (absent: as the server says).
    #[serde(default)]
    pub features: FeatureOverrides,
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// One synced object as a SCIM resource type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScimObject {
    /// `User` or `Group` (the core resource types), or another resource type's name.
    pub resource: String,
    /// The resource endpoint below the base URL; default `/Users` for User, `/Groups` for
    /// Group, else `/{resource}s`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Records per listing page (`count`); servers may answer with fewer.
    #[serde(default = "default_page_size")]
    #[schema(minimum = 1, maximum = 1000)]
    pub page_size: u32,
    /// What a delete the engine sends does: remove the resource, or deactivate it
    /// (`active` = false), as identity providers expect of leavers.
    #[serde(default)]
    pub on_delete: OnDelete,
    /// For Groups: the User attribute (`externalId`, `userName`, or an extension attribute
    /// written `urn:…:User:employeeNumber`) that names each member. The group's members are
    /// then read and written as the list of those keys, at the virtual attribute `memberKeys`,
    /// and each write adds and removes single members, never replacing the list.
    #[serde(default)]
    pub member_key: Option<String>,
    /// The object (in this config) whose resources are the members; default the first User
    /// object.
    #[serde(default)]
    pub member_object: Option<String>,
}

fn default_page_size() -> u32 {
    100
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnDelete {
    #[default]
    Delete,
    Deactivate,
}

/// Overrides of what the server's ServiceProviderConfig says it supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct FeatureOverrides {
    /// Send changes as PatchOp (true) or as a PUT of the resource as last read (false).
    #[serde(default)]
    pub patch: Option<bool>,
    /// Ask for changes with `filter=meta.lastModified ge "…"` (true) or list everything (false).
    #[serde(default)]
    pub filter: Option<bool>,
}

/// Seconds between polls when the config sets none.
pub const DEFAULT_POLL_SECS: f64 = 30.0;

impl ScimObject {
    pub fn endpoint(&self) -> String {
        self.endpoint
            .clone()
            .unwrap_or_else(|| match self.resource.as_str() {
                "User" => "/Users".to_owned(),
                "Group" => "/Groups".to_owned(),
                other => format!("/{other}s"),
            })
    }

    /// The core schema URN of the resource type, for creates.
    pub fn core_schema(&self) -> Option<&'static str> {
        match self.resource.as_str() {
            "User" => Some(USER_SCHEMA),
            "Group" => Some(GROUP_SCHEMA),
            _ => None,
        }
    }
}

impl ScimConfig {
    /// Parses and validates a config; errors name the key at fault.
    pub fn parse(system: &str, config: &Value) -> Result<Self, ConnectorError> {
        let bad = |m: String| ConnectorError::Config(format!("system {system}: {m}"));
        let parsed: Self = serde_path_to_error::deserialize(config.clone())
            .map_err(|e| bad(format!("config key '{}': {}", e.path(), e.inner())))?;
        if parsed.objects.is_empty() {
            return Err(bad("config key 'objects': name at least one object".into()));
        }
        for (name, o) in &parsed.objects {
            let at = |k: &str| format!("config key 'objects.{name}.{k}'");
            if o.resource.trim().is_empty() {
                return Err(bad(format!("{}: name a resource type", at("resource"))));
            }
            if let Some(e) = &o.endpoint
                && (!e.starts_with('/') || e.contains('?'))
            {
                return Err(bad(format!(
                    "{}: a path below base_url, starting with '/'",
                    at("endpoint")
                )));
            }
            if !(1..=1000).contains(&o.page_size) {
                return Err(bad(format!("{}: between 1 and 1000", at("page_size"))));
            }
            if o.member_key.is_some() && o.resource != "Group" {
                return Err(bad(format!(
                    "{}: only Groups have members",
                    at("member_key")
                )));
            }
            if let Some(m) = &o.member_object {
                match parsed.objects.get(m) {
                    Some(target) if target.resource != "Group" => {}
                    _ => {
                        return Err(bad(format!(
                            "{}: '{m}' is not a non-Group object of this config",
                            at("member_object")
                        )));
                    }
                }
            }
            if o.member_key.is_some()
                && o.member_object.is_none()
                && !parsed.objects.values().any(|x| x.resource == "User")
            {
                return Err(bad(format!(
                    "{}: members need a User object in this config (or member_object)",
                    at("member_key")
                )));
            }
        }
        // Everything else (the URL, auth, poll, reconcile) is checked as the `rest` config it
        // stands for, with the same key names.
        RestConfig::parse(
            system,
            &serde_json::to_value(parsed.as_rest()).unwrap_or_default(),
        )?;
        Ok(parsed)
    }

    /// The `rest` config that reads this server: `startIndex`/`count` paging from 1 with
    /// `totalResults`, `Resources`, the `meta.version` ETag, `meta.lastModified` as the
    /// modification time and incremental cursor, lookups by filter.
    pub fn as_rest(&self) -> RestConfig {
        let objects = self
            .objects
            .iter()
            .map(|(name, o)| {
                let path = o.endpoint();
                let endpoints = ObjectEndpoints {
                    path: path.clone(),
                    params: BTreeMap::new(),
                    item_path: None,
                    records_pointer: "/Resources".into(),
                    record_pointer: String::new(),
                    pagination: Pagination::Offset {
                        offset_param: "startIndex".into(),
                        limit_param: "count".into(),
                        limit: o.page_size,
                        first_offset: 1,
                    },
                    id_field: "id".into(),
                    version_field: Some("meta/version".into()),
                    modified_field: Some("meta/lastModified".into()),
                    incremental: Some(Incremental::Filter {
                        param: "filter".into(),
                        template: "meta.lastModified ge \"{since}\"".into(),
                        format: TimeFormat::Rfc3339,
                    }),
                    concurrency: Concurrency::Etag,
                    create: Endpoint {
                        method: "POST".into(),
                        path: None,
                    },
                    update: Endpoint {
                        method: "PATCH".into(),
                        path: None,
                    },
                    delete: Some(Endpoint {
                        method: "DELETE".into(),
                        path: None,
                    }),
                    total_pointer: Some("/totalResults".into()),
                    total_header: None,
                    lookup: Some(Lookup::Filter {
                        param: "filter".into(),
                        template: "{path} eq \"{value}\"".into(),
                    }),
                };
                (name.clone(), endpoints)
            })
            .collect();
        RestConfig {
            base_url: self.base_url.clone(),
            auth: self.auth.clone(),
            timeout_ms: self.timeout_ms,
            user_agent: self.user_agent.clone(),
            objects,
            webhooks: None,
            poll: Some(self.poll.clone().unwrap_or(PollConfig {
                interval_secs: DEFAULT_POLL_SECS,
            })),
            reconcile: self.reconcile.clone(),
            // SCIM errors keep theirs in `detail`, which is found without one.
            error_message_pointer: None,
        }
    }

    /// The object whose resources are the members of `group`'s resources.
    pub fn member_object(&self, group: &ScimObject) -> Option<String> {
        group.member_object.clone().or_else(|| {
            self.objects
                .iter()
                .find(|(_, o)| o.resource == "User")
                .map(|(n, _)| n.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_config_error_names_the_key() {
        let err = ScimConfig::parse(
            "dir",
            &json!({"base_url": "http://127.0.0.1:1/scim/v2",
                    "objects": {"team": {"resource": "User", "member_key": "externalId"}}}),
        )
        .expect_err("members on a User resource are refused");
        assert!(
            err.to_string().contains("objects.team.member_key"),
            "the message names the key: {err}"
        );
        let err = ScimConfig::parse(
            "dir",
            &json!({"base_url": "ftp://x", "objects": {"u": {"resource": "User"}}}),
        )
        .expect_err("a non-HTTP base URL is refused");
        assert!(err.to_string().contains("base_url"), "{err}");
        let err = ScimConfig::parse("dir", &json!({"base_url": "http://x", "objects": {"u": {"resource": "User", "page_size": 0}}}))
            .expect_err("an empty page is refused");
        assert!(err.to_string().contains("page_size"), "{err}");
    }

    #[test]
    fn reading_follows_the_scim_conventions() {
        let config = ScimConfig::parse(
            "dir",
            &json!({"base_url": "http://127.0.0.1:1/scim/v2",
                    "auth": {"type": "bearer", "secret": "dir-token"},
                    "objects": {"employee": {"resource": "User"}, "team": {"resource": "Group", "member_key": "externalId"}}}),
        )
        .expect("a valid config");
        let rest = config.as_rest();
        let users = &rest.objects["employee"];
        assert_eq!(users.path, "/Users", "User resources live at /Users");
        assert_eq!(rest.objects["team"].path, "/Groups");
        assert!(
            matches!(
                users.pagination,
                Pagination::Offset {
                    first_offset: 1,
                    ..
                }
            ),
            "SCIM's startIndex counts from 1"
        );
        assert_eq!(users.records_pointer, "/Resources");
        assert_eq!(
            config.member_object(&config.objects["team"]).as_deref(),
            Some("employee")
        );
        assert_eq!(
            rest.sent_secrets(),
            vec![("dir-token".to_owned(), "http://127.0.0.1:1".to_owned())],
            "the token goes only to the server's origin"
        );
        let oauth = ScimConfig::parse(
            "dir",
            &json!({"base_url": "https://idp.example/scim/v2",
                    "auth": {"type": "oauth2_client_credentials", "token_url": "https://login.example/oauth2/token",
                             "client_id": "concord", "secret": "idp-client-secret"},
                    "objects": {"employee": {"resource": "User"}}}),
        )
        .expect("OAuth2 client credentials are a SCIM auth");
        assert_eq!(
            oauth.as_rest().sent_secrets(),
            vec![(
                "idp-client-secret".to_owned(),
                "https://login.example:443".to_owned()
            )],
            "the client secret goes only to the token endpoint's origin"
        );
    }
}
