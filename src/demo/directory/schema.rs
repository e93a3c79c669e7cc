//! The directory's schemas (RFC 7643): the attributes of a User (core and enterprise
//! extension) and of a Group, how a request's JSON is read against them (names matched without
//! regard to case, values checked and coerced to their type, read-only and unknown attributes
//! dropped), and the discovery documents built from them.

use serde_json::{Map, Value, json};

use super::ScimError;

pub(crate) const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(crate) const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub(crate) const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub(crate) const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub(crate) const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub(crate) const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const SPC: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// The most resources one listing answers.
pub(crate) const MAX_RESULTS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Type {
    String,
    Boolean,
    DateTime,
    Reference,
    Complex,
}

impl Type {
    fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Boolean => "boolean",
            Self::DateTime => "dateTime",
            Self::Reference => "reference",
            Self::Complex => "complex",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
}

/// One attribute definition (RFC 7643 §7).
#[derive(Debug)]
pub(crate) struct Attr {
    pub name: &'static str,
    pub kind: Type,
    pub multi: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub unique: bool,
    pub description: &'static str,
    pub sub: &'static [Attr],
    pub canonical: &'static [&'static str],
    pub references: &'static [&'static str],
}

const fn attr(name: &'static str, kind: Type, description: &'static str) -> Attr {
    Attr {
        name,
        kind,
        multi: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        unique: false,
        description,
        sub: &[],
        canonical: &[],
        references: &[],
    }
}

const fn string(name: &'static str, description: &'static str) -> Attr {
    attr(name, Type::String, description)
}

const fn complex(name: &'static str, description: &'static str, sub: &'static [Attr]) -> Attr {
    Attr {
        sub,
        ..attr(name, Type::Complex, description)
    }
}

impl Attr {
    const fn multi(self) -> Self {
        Self {
            multi: true,
            ..self
        }
    }
    const fn required(self) -> Self {
        Self {
            required: true,
            ..self
        }
    }
    const fn exact(self) -> Self {
        Self {
            case_exact: true,
            ..self
        }
    }
    const fn read_only(self) -> Self {
        Self {
            mutability: Mutability::ReadOnly,
            ..self
        }
    }
    const fn immutable(self) -> Self {
        Self {
            mutability: Mutability::Immutable,
            ..self
        }
    }
    const fn unique(self) -> Self {
        Self {
            unique: true,
            ..self
        }
    }
    const fn canonical(self, canonical: &'static [&'static str]) -> Self {
        Self { canonical, ..self }
    }
    const fn references(self, references: &'static [&'static str]) -> Self {
        Self { references, ..self }
    }

    /// A sub-attribute by name, whatever its case.
    pub fn sub_attr(&self, name: &str) -> Option<&'static Attr>
    where
        Self: 'static,
    {
        find(self.sub, name)
    }

    /// The definition as the `/Schemas` document lists it.
    fn document(&self) -> Value {
        let mut d = json!({
            "name": self.name,
            "type": self.kind.name(),
            "multiValued": self.multi,
            "description": self.description,
            "required": self.required,
        });
        if matches!(self.kind, Type::String | Type::Reference) {
            d["caseExact"] = json!(self.case_exact);
        }
        if !self.canonical.is_empty() {
            d["canonicalValues"] = json!(self.canonical);
        }
        if !self.references.is_empty() {
            d["referenceTypes"] = json!(self.references);
        }
        d["mutability"] = json!(match self.mutability {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
        });
        d["returned"] = json!("default");
        d["uniqueness"] = json!(if self.unique { "server" } else { "none" });
        if !self.sub.is_empty() {
            d["subAttributes"] = Value::Array(self.sub.iter().map(Attr::document).collect());
        }
        d
    }
}

const TYPES: &[&str] = &["work", "home", "mobile", "other"];

fn find(attrs: &'static [Attr], name: &str) -> Option<&'static Attr> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// Attributes every resource has (RFC 7643 §3.1); not listed in `/Schemas`.
static COMMON: &[Attr] = &[
    string(
        "id",
        "Unique identifier of the resource, issued by the directory.",
    )
    .exact()
    .read_only(),
    string(
        "externalId",
        "Identifier of the resource in the provisioning client.",
    )
    .exact(),
    complex(
        "meta",
        "Resource metadata.",
        &[
            string("resourceType", "The name of the resource type.")
                .exact()
                .read_only(),
            attr("created", Type::DateTime, "When the resource was added.").read_only(),
            attr(
                "lastModified",
                Type::DateTime,
                "When the resource was last changed.",
            )
            .read_only(),
            attr("location", Type::Reference, "The URI of the resource.")
                .exact()
                .read_only()
                .references(&["uri"]),
            string("version", "The weak entity tag of the resource.")
                .exact()
                .read_only(),
        ],
    )
    .read_only(),
];

static TYPED: &[Attr] = &[
    string("value", "The value."),
    string("type", "What kind of value it is.").canonical(TYPES),
    attr(
        "primary",
        Type::Boolean,
        "Whether this is the preferred value; true at most once.",
    ),
];

static USER_ATTRS: &[Attr] = &[
    string(
        "userName",
        "Unique identifier the user signs in with; here the work e-mail.",
    )
    .required()
    .unique(),
    complex(
        "name",
        "The components of the user's name.",
        &[
            string("formatted", "The full name, formatted for display."),
            string("familyName", "The family name."),
            string("givenName", "The given name."),
        ],
    ),
    string("displayName", "The name shown for the user."),
    string("title", "The user's job title."),
    attr("active", Type::Boolean, "Whether the user may sign in."),
    complex("emails", "E-mail addresses.", TYPED).multi(),
    complex("phoneNumbers", "Phone numbers, E.164.", TYPED).multi(),
];

static ENTERPRISE_ATTRS: &[Attr] = &[
    string(
        "employeeNumber",
        "The employee number the organization assigned.",
    ),
    string("department", "The department."),
    complex(
        "manager",
        "The user's manager.",
        &[
            string("value", "The id of the manager's User.").exact(),
            attr("$ref", Type::Reference, "The URI of the manager's User.")
                .exact()
                .references(&["User"]),
            string("displayName", "The manager's displayName.").read_only(),
        ],
    ),
];

static GROUP_ATTRS: &[Attr] = &[
    string("displayName", "The name of the group.").required(),
    complex(
        "members",
        "The group's members.",
        &[
            string("value", "The id of the member.").exact().immutable(),
            attr("$ref", Type::Reference, "The URI of the member.")
                .exact()
                .immutable()
                .references(&["User", "Group"]),
            string("display", "The member's displayName.").read_only(),
            string("type", "User or Group.")
                .canonical(&["User", "Group"])
                .immutable(),
        ],
    )
    .multi(),
];

/// The two resource types the directory serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    User,
    Group,
}

impl Resource {
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Group => "Group",
        }
    }

    pub fn endpoint(self) -> &'static str {
        match self {
            Self::User => "/Users",
            Self::Group => "/Groups",
        }
    }

    pub fn schema(self) -> &'static str {
        match self {
            Self::User => USER,
            Self::Group => GROUP,
        }
    }

    fn attrs(self) -> &'static [Attr] {
        match self {
            Self::User => USER_ATTRS,
            Self::Group => GROUP_ATTRS,
        }
    }

    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Self::User => &[ENTERPRISE],
            Self::Group => &[],
        }
    }

    /// A core (or common) attribute by name, whatever its case.
    pub fn core_attr(self, name: &str) -> Option<&'static Attr> {
        find(self.attrs(), name).or_else(|| find(COMMON, name))
    }

    /// The extension schema URN `name` spells, whatever its case.
    pub fn extension(self, name: &str) -> Option<&'static str> {
        self.extensions()
            .iter()
            .copied()
            .find(|u| u.eq_ignore_ascii_case(name))
    }

    /// An attribute of the extension `urn`, whatever its case.
    pub fn extension_attr(urn: &str, name: &str) -> Option<&'static Attr> {
        (urn == ENTERPRISE)
            .then(|| find(ENTERPRISE_ATTRS, name))
            .flatten()
    }
}

/// Where an attribute path points: the attribute (in the core schema, or in an extension,
/// whose attributes are kept under its URN), and maybe one of its sub-attributes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttrPath {
    pub extension: Option<&'static str>,
    pub attr: &'static Attr,
    pub sub: Option<&'static Attr>,
}

/// A path with an optional schema URN prefix and an optional sub-attribute
/// (`name.givenName`, `urn:…:enterprise:2.0:User:manager.value`), resolved in `resource`.
pub(crate) fn resolve(resource: Resource, path: &str) -> Result<AttrPath, String> {
    let (extension, rest) = split_urn(resource, path);
    let (name, sub) = match rest.split_once('.') {
        Some((n, s)) => (n, Some(s)),
        None => (rest, None),
    };
    let attr = match extension {
        Some(urn) => Resource::extension_attr(urn, name),
        None => resource.core_attr(name),
    }
    .ok_or_else(|| format!("{path} is not an attribute of a {}", resource.name()))?;
    let sub = match sub {
        None => None,
        Some(s) => Some(
            attr.sub_attr(s)
                .ok_or_else(|| format!("{path}: {} has no sub-attribute {s}", attr.name))?,
        ),
    };
    Ok(AttrPath {
        extension,
        attr,
        sub,
    })
}

/// Splits a schema URN prefix off `path` (the core schema's URN is dropped).
pub(crate) fn split_urn(resource: Resource, path: &str) -> (Option<&'static str>, &str) {
    let prefixed = |urn: &str| {
        path.get(..urn.len())
            .filter(|p| p.eq_ignore_ascii_case(urn) && path[urn.len()..].starts_with(':'))
            .map(|_| &path[urn.len() + 1..])
    };
    for urn in resource.extensions() {
        if let Some(rest) = prefixed(urn) {
            return (Some(urn), rest);
        }
    }
    match prefixed(resource.schema()) {
        Some(rest) => (None, rest),
        None => (None, path),
    }
}

fn invalid_value(detail: String) -> ScimError {
    ScimError::bad_request("invalidValue", detail)
}

/// A request's value for `attr`, checked against its type: booleans may come as the strings
/// "true"/"false" in any case (as Entra ID sends them), a complex attribute given a bare string
/// takes it as its `value`, a multi-valued attribute given one value takes it as a list of one.
/// Unknown and read-only sub-attributes are dropped. `None` when the value is null (unassigned).
pub(crate) fn coerce(
    attr: &'static Attr,
    value: Value,
    path: &str,
) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    if attr.multi {
        let items = match value {
            Value::Array(items) => items,
            one => vec![one],
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(v) = coerce_one(attr, item, path)? {
                out.push(v);
            }
        }
        return Ok(if out.is_empty() {
            None
        } else {
            Some(Value::Array(out))
        });
    }
    coerce_one(attr, value, path)
}

/// One value of `attr` (an element, when it is multi-valued).
pub(crate) fn coerce_one(
    attr: &'static Attr,
    value: Value,
    path: &str,
) -> Result<Option<Value>, ScimError> {
    let wrong = |v: &Value| {
        invalid_value(format!(
            "{path} must be a {}{}, not {v}",
            attr.kind.name(),
            if attr.multi {
                " (or a list of them)"
            } else {
                ""
            }
        ))
    };
    Ok(Some(match (attr.kind, value) {
        (_, Value::Null) => return Ok(None),
        (Type::String | Type::Reference, Value::String(s)) => Value::String(s),
        (Type::DateTime, Value::String(s)) => {
            if chrono::DateTime::parse_from_rfc3339(&s).is_err() {
                return Err(invalid_value(format!(
                    "{path} must be an RFC 3339 time, not {s}"
                )));
            }
            Value::String(s)
        }
        (Type::Boolean, Value::Bool(b)) => Value::Bool(b),
        (Type::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
        (Type::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
        (Type::Complex, Value::Object(m)) => Value::Object(read_object(attr.sub, m, path)?),
        (Type::Complex, Value::String(s)) if attr.sub_attr("value").is_some() => {
            json!({ "value": s })
        }
        (_, v) => return Err(wrong(&v)),
    }))
}

/// The sub-attributes of a complex value, keyed by their canonical names.
fn read_object(
    attrs: &'static [Attr],
    object: Map<String, Value>,
    path: &str,
) -> Result<Map<String, Value>, ScimError> {
    let mut out = Map::new();
    for (k, v) in object {
        let Some(a) = find(attrs, &k) else { continue };
        if a.mutability == Mutability::ReadOnly {
            continue;
        }
        if let Some(v) = coerce(a, v, &format!("{path}.{}", a.name))? {
            out.insert(a.name.to_owned(), v);
        }
    }
    Ok(out)
}

/// A resource as a client sends it (POST, PUT), in the form the directory keeps: attribute
/// names canonical, extension attributes under their URN, values checked; `schemas`, `id`,
/// `meta`, read-only and unknown attributes dropped. Required attributes must be present.
pub(crate) fn read_resource(
    resource: Resource,
    body: Map<String, Value>,
) -> Result<Map<String, Value>, ScimError> {
    if let Some(schemas) = body
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
        .map(|(_, v)| v)
    {
        let ok = schemas
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string));
        if !ok {
            return Err(ScimError::bad_request(
                "invalidSyntax",
                "schemas must be a list of schema URNs".into(),
            ));
        }
    }
    let mut out = Map::new();
    for (k, v) in body {
        if let Some(urn) = resource.extension(&k) {
            let Value::Object(m) = v else {
                return Err(invalid_value(format!("{urn} must be an object")));
            };
            let mut ext = Map::new();
            for (name, value) in m {
                let Some(a) = Resource::extension_attr(urn, &name) else {
                    continue;
                };
                if let Some(v) = coerce(a, value, &format!("{urn}:{}", a.name))? {
                    ext.insert(a.name.to_owned(), v);
                }
            }
            if !ext.is_empty() {
                out.insert(urn.to_owned(), Value::Object(ext));
            }
            continue;
        }
        let Some(a) = resource.core_attr(&k) else {
            continue;
        };
        if a.mutability == Mutability::ReadOnly {
            continue;
        }
        if let Some(v) = coerce(a, v, a.name)? {
            out.insert(a.name.to_owned(), v);
        }
    }
    check_required(resource, &out)?;
    Ok(out)
}

/// Required attributes are present and not blank.
pub(crate) fn check_required(
    resource: Resource,
    body: &Map<String, Value>,
) -> Result<(), ScimError> {
    for a in resource.attrs().iter().filter(|a| a.required) {
        let present = body
            .get(a.name)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty());
        if !present {
            return Err(invalid_value(format!(
                "{} is required for a {}",
                a.name,
                resource.name()
            )));
        }
    }
    Ok(())
}

/// `GET /ServiceProviderConfig`.
pub(crate) fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC],
        "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": MAX_RESULTS },
        "changePassword": { "supported": false },
        "sort": { "supported": true },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a bearer token issued by the directory's admin",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}

/// One `/ResourceTypes` entry.
pub(crate) fn resource_type(resource: Resource, base: &str) -> Value {
    let name = resource.name();
    json!({
        "schemas": [RESOURCE_TYPE],
        "id": name,
        "name": name,
        "endpoint": resource.endpoint(),
        "description": match resource {
            Resource::User => "User accounts",
            Resource::Group => "Groups of users",
        },
        "schema": resource.schema(),
        "schemaExtensions": resource
            .extensions()
            .iter()
            .map(|u| json!({ "schema": u, "required": false }))
            .collect::<Vec<_>>(),
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{base}/ResourceTypes/{name}"),
        },
    })
}

/// Every schema the directory serves, as `/Schemas` lists them (the core User's with
/// `externalId`, which clients map).
pub(crate) fn schemas(base: &str) -> Vec<Value> {
    let doc = |id: &str, name: &str, description: &str, attrs: Vec<&Attr>| {
        json!({
            "schemas": [SCHEMA],
            "id": id,
            "name": name,
            "description": description,
            "attributes": attrs.into_iter().map(Attr::document).collect::<Vec<_>>(),
            "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{id}") },
        })
    };
    let external_id = find(COMMON, "externalId");
    vec![
        doc(
            USER,
            "User",
            "User Account",
            USER_ATTRS.iter().chain(external_id).collect(),
        ),
        doc(
            ENTERPRISE,
            "EnterpriseUser",
            "Enterprise User",
            ENTERPRISE_ATTRS.iter().collect(),
        ),
        doc(
            GROUP,
            "Group",
            "Group",
            GROUP_ATTRS.iter().chain(external_id).collect(),
        ),
    ]
}
