//! The engine's vocabulary as types: systems, objects and their canonical schema, mappings,
//! field ownership and policies, change events. These are the shapes the workspace config,
//! the SQLite state and the console API share, so they live in one place and carry no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::transform::{FieldType, Transform};

/// Canonical field name -> canonical value.
pub type Fields = BTreeMap<String, Value>;

/// Record id in the engine (golden record).
pub type RecordId = i64;

/// A system's monotonically increasing record version (an integer version, or a timestamp in
/// microseconds when the system only has a modification time).
pub type SourceVersion = i64;

/// One connected application instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemConfig {
    /// A short id (letters, digits, `_`, `-`): how mappings, policies, the audit and
    /// `/hooks/{system}` name the system. Kept once records are linked.
    pub id: String,
    /// The name people see in the console.
    pub name: String,
    /// Connector kind: `rest`, `scim`, `sql`, or `external` (a system that sends its changes
    /// in Concord's own event format, with `webhook_secret`, and is never called).
    pub connector: String,
    /// The connector's settings: a `RestConfig` for `rest`, a `ScimConfig` for `scim`, an
    /// `SqlConfig` for `sql`. Never a secret: secrets are named here and looked up in the
    /// keychain.
    #[serde(default)]
    pub config: Value,
    /// Writes per second this system accepts from us.
    #[serde(default)]
    pub rate_limit_per_sec: Option<f64>,
    /// Delivery attempts before a write becomes a dead letter.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Re-reads of one record, in a row, after its writes were refused as out of date or found
    /// it changed, before the engine stops and opens an exception ("this record keeps changing
    /// under us") instead of trying again.
    #[serde(default = "default_max_rereads")]
    pub max_rereads: u32,
    /// Keychain name of the secret this system sends as `Authorization: Bearer <secret>` with
    /// each webhook in Concord's own event format. Webhooks reach `/hooks/{system}` only from
    /// a system with an inbound channel: this secret, or a signed `webhooks` config of the
    /// rest connector. Without either, the system's webhooks are refused (404).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    /// Whether writes to this system are sent (`live`, the default) or held in a plan
    /// (`plan`): the system is read, linked and planned for as usual, and what would be
    /// written to it waits until an admin enables writes. The console saves a new system in
    /// `plan` unless told otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes: Option<WritesMode>,
    /// When writes queued for this system would overwrite or delete more than a share of the
    /// records linked there within a window, they are held for an admin (the circuit
    /// breaker). Defaults: 10% within 5 minutes, at least 10 records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerConfig>,
    /// A pilot scope: only records whose golden values match it are written to this system
    /// (created, updated or deleted there), until it is widened or removed. Canonical field ->
    /// the values admitted, e.g. `{"department": ["Finance"]}` or `{"employee_number": ["E1",
    /// "E2"]}`; a record must match every field listed. The system is still read as usual.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pilot: Option<BTreeMap<String, Vec<Value>>>,
}

impl SystemConfig {
    /// Whether a record holding `golden` may be written to this system (its pilot scope
    /// admits it, or it has none).
    pub fn admits(&self, golden: &Fields) -> bool {
        self.pilot.as_ref().is_none_or(|scope| {
            scope
                .iter()
                .all(|(field, values)| values.contains(golden.get(field).unwrap_or(&Value::Null)))
        })
    }
}

/// See [`SystemConfig::breaker`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Off: writes are never held by the breaker.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The share of the system's linked records (0 to 1) that may be overwritten or deleted
    /// within the window; more trips the breaker.
    #[serde(default = "default_breaker_share")]
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub max_share: f64,
    /// Fewer records than this never trip it, whatever their share (a system of 20 records
    /// would otherwise trip on three edits).
    #[serde(default = "default_breaker_min_records")]
    pub min_records: u32,
    /// How far back queued writes count, in seconds.
    #[serde(default = "default_breaker_window")]
    #[schema(minimum = 1)]
    pub window_secs: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_share: default_breaker_share(),
            min_records: default_breaker_min_records(),
            window_secs: default_breaker_window(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_breaker_share() -> f64 {
    0.1
}

fn default_breaker_min_records() -> u32 {
    10
}

fn default_breaker_window() -> u32 {
    300
}

/// See [`SystemConfig::writes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WritesMode {
    Live,
    Plan,
}

impl WritesMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Plan => "plan",
        }
    }
}

impl SystemConfig {
    /// Whether its writes wait in a plan instead of being sent.
    pub fn writes_held(&self) -> bool {
        self.writes == Some(WritesMode::Plan)
    }
}

fn default_max_attempts() -> u32 {
    8
}

fn default_max_rereads() -> u32 {
    5
}

/// One typed field of a canonical object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    /// The canonical field's name (`snake_case` by convention), as mappings and policies
    /// name it.
    pub name: String,
    /// What values the field holds, and so how they are validated and compared.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// A record without a value here is a validation exception, never written.
    #[serde(default)]
    pub required: bool,
    /// Masked for roles that may not see sensitive values (viewer, support) everywhere it
    /// appears: records, the audit, exceptions, dead letters, messages.
    #[serde(default)]
    pub sensitive: bool,
    /// For `enum`: the allowed canonical codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// For `reference`: the object referred to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<String>,
    /// What the field means, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The longest text value accepted, in characters (default: the object's `max_lengths`
    /// for the field's type, else the type's built-in limit). A longer value read from a
    /// system is a validation exception, never a write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_length: Option<usize>,
    /// For `money`: its currency, so people see `$80,500.00` rather than `80500`. Either an
    /// ISO 4217 code (`USD`) for every record, or the name of a `currency` field of the same
    /// object (`pay_currency`) whose value gives each record's currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// What a delete reported by one system does to the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum DeletePolicy {
    /// Delete the record in every other system.
    Propagate,
    /// Set a status field (through each system's mapping) instead of deleting.
    Deactivate { field: String, value: Value },
    /// Record the delete in the audit and unlink that system; change nothing else.
    Ignore,
    /// Open an exception for a steward.
    Review,
}

/// A kind of synced record with its canonical schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectSchema {
    /// The object's name (e.g. `employee`).
    pub name: String,
    /// Its canonical fields.
    pub fields: Vec<FieldDef>,
    /// Canonical fields used, in order, to match a record seen for the first time.
    #[serde(default)]
    pub match_keys: Vec<String>,
    #[serde(default = "default_delete_policy")]
    pub delete_policy: DeletePolicy,
    /// Per field type, the longest text value accepted, in characters, where a field sets no
    /// `max_length` (built-in limits: text 4096, email 254, code and reference 256, others 64).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub max_lengths: BTreeMap<crate::transform::FieldType, usize>,
}

fn default_delete_policy() -> DeletePolicy {
    DeletePolicy::Review
}

impl ObjectSchema {
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The longest text value `field` accepts, in characters.
    pub fn max_length(&self, field: &FieldDef) -> usize {
        field
            .max_length
            .or_else(|| self.max_lengths.get(&field.field_type).copied())
            .unwrap_or_else(|| field.field_type.default_max_length())
    }

    /// The currency of money field `field` in a record holding `values`: the field's fixed
    /// code, or the value of the currency field it names. None when the field has no
    /// currency, or the record holds no code.
    pub fn currency_of(&self, field: &str, values: &Fields) -> Option<String> {
        let currency = self.field(field)?.currency.as_deref()?;
        if self.field(currency).is_none() {
            return Some(currency.to_owned());
        }
        values
            .get(currency)
            .and_then(Value::as_str)
            .filter(|code| code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic()))
            .map(str::to_ascii_uppercase)
    }
}

/// What to do when a system reports null (or leaves out) a field it maps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum NullPolicy {
    /// A null is a validation failure (exception), the field keeps its value.
    Reject,
    /// A null means this default value.
    Default { value: Value },
    /// A null changes nothing.
    #[default]
    LeaveUnchanged,
    /// A null is a real value: the field is cleared everywhere.
    Clear,
}

/// How some canonical fields are read from and written to a system's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingRule {
    /// Canonical fields this rule yields (most rules: one).
    #[serde(default)]
    pub canonical: Vec<String>,
    /// Paths in the system's record: `/`-separated for nesting (`address/city`), with array
    /// selectors (`emails[type=work].value`, `phoneNumbers[0].value`); see [`crate::path`].
    pub system: Vec<String>,
    #[serde(default = "copy_transform")]
    pub transform: Transform,
    #[serde(default)]
    pub null: NullPolicy,
}

fn copy_transform() -> Transform {
    Transform::Copy
}

/// One system's mapping for one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The system's `id`.
    pub system: String,
    /// The canonical object's `name`.
    pub object: String,
    /// One rule per connection: system paths, canonical fields, and the transform between.
    pub rules: Vec<MappingRule>,
    /// Where the system says when a change takes effect: a change dated in the future is
    /// held until that date, then applied and judged against what is true then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_date: Option<EffectiveDate>,
}

/// The system field that dates a change, and the canonical fields the date governs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EffectiveDate {
    /// The system path of the date: `YYYY-MM-DD` (the start of that day in `time_zone`), a
    /// date and time without an offset (read in `time_zone`), or an RFC 3339 instant.
    pub path: String,
    /// The canonical fields the date applies to; empty: every field the mapping reads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// The IANA time zone the system's dates are written in, such as `America/New_York`;
    /// absent: UTC. A rise dated the 1st then takes effect at midnight there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// How a conflict (rule 4) on a field is decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// The owner's value wins; a change from anyone else is reverted.
    OwnerWins,
    /// The later source timestamp wins; ties go to the greater system id.
    LastWriteWins,
    /// This system's value wins.
    Prefer(String),
    /// Hold the field and open an exception for a steward.
    Manual,
}

impl ConflictPolicy {
    pub fn as_rule(&self) -> String {
        match self {
            Self::OwnerWins => "owner_wins".into(),
            Self::LastWriteWins => "last_write_wins".into(),
            Self::Prefer(s) => format!("prefer:{s}"),
            Self::Manual => "manual".into(),
        }
    }
}

/// What happens when a system that may not write a field changes it anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NonOwnerPolicy {
    /// Write the golden value back to that system.
    #[default]
    Revert,
    /// Open an exception and hold the field.
    Quarantine,
}

/// Ownership and policies of one canonical field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldPolicy {
    /// The canonical field this policy is for.
    pub field: String,
    /// The source of truth, if the field has one.
    #[serde(default)]
    pub owner: Option<String>,
    /// Other systems that may write the field. With no owner and no writers, every system may.
    #[serde(default)]
    pub writers: Vec<String>,
    #[serde(default = "default_conflict")]
    pub conflict: ConflictPolicy,
    #[serde(default)]
    pub non_owner: NonOwnerPolicy,
    /// Masked like a field the schema marks sensitive (set on the ownership page; a field the
    /// schema marks stays sensitive).
    #[serde(default)]
    pub sensitive: bool,
    /// Manual resolutions need a second person's approval.
    #[serde(default)]
    pub four_eyes: bool,
}

fn default_conflict() -> ConflictPolicy {
    ConflictPolicy::LastWriteWins
}

impl FieldPolicy {
    pub fn open(field: &str) -> Self {
        Self {
            field: field.to_owned(),
            owner: None,
            writers: Vec::new(),
            conflict: ConflictPolicy::LastWriteWins,
            non_owner: NonOwnerPolicy::Revert,
            sensitive: false,
            four_eyes: false,
        }
    }

    /// Whether `system` may change this field.
    pub fn may_write(&self, system: &str) -> bool {
        if self.owner.is_none() && self.writers.is_empty() {
            return true;
        }
        self.owner.as_deref() == Some(system) || self.writers.iter().any(|w| w == system)
    }
}

/// Policies of one object: per field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectPolicies {
    /// The canonical object's `name`.
    pub object: String,
    /// Per field; a field without a policy may be written by every system, last write wins.
    pub fields: Vec<FieldPolicy>,
}

/// The whole workspace: what `concord` loads from a config file into SQLite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceConfig {
    /// The systems kept in agreement, each with its connector's settings.
    pub systems: Vec<SystemConfig>,
    /// The canonical schema: each object (e.g. `employee`) and its fields.
    pub objects: Vec<ObjectSchema>,
    /// How each system's records map to each canonical object, field by field.
    pub mappings: Vec<Mapping>,
    /// Who may write each field of each object, and how conflicts are decided.
    #[serde(default)]
    pub policies: Vec<ObjectPolicies>,
}

/// Upsert or delete, as reported by a connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    Upsert,
    Delete,
}

impl ChangeOp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upsert => "upsert",
            Self::Delete => "delete",
        }
    }
}

/// A change reported by a system, in the system's own field shapes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub system: String,
    pub object: String,
    pub external_id: String,
    pub op: ChangeOp,
    /// The system's record (full or partial), in its own shapes.
    #[serde(default)]
    pub record: serde_json::Map<String, Value>,
    /// The system's ordering version of the record after this change, if it has one.
    #[serde(default)]
    pub version: Option<SourceVersion>,
    /// The record's concurrency token after this change (an ETag or a version field's value,
    /// opaque), when the system reports one: what the next write sends as `If-Match`.
    #[serde(default)]
    pub etag: Option<String>,
    /// When the change happened in the system (for last-write-wins).
    #[serde(default)]
    pub source_ts: Option<chrono::DateTime<chrono::Utc>>,
    /// Unique per system: a repeat is a duplicate.
    pub event_key: String,
}
