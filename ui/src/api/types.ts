// Short names for the generated schema types the pages use.
import type { components } from "./schema";

type S = components["schemas"];
export type Role = S["Role"];
export type Principal = S["Principal"];
export type WorkspaceConfig = S["WorkspaceConfig"];
export type SystemConfig = S["SystemConfig"];
export type ObjectSchema = S["ObjectSchema"];
export type FieldDef = S["FieldDef"];
export type FieldType = S["FieldType"];
export type Mapping = S["Mapping"];
export type MappingRule = S["MappingRule"];
export type Transform = S["Transform"];
export type TransformKind = Transform["kind"];
export type NullPolicy = S["NullPolicy"];
export type EnumEntry = S["EnumEntry"];
export type PhoneFormat = S["PhoneFormat"];
export type FieldPolicy = S["FieldPolicy"];
export type ConflictPolicy = S["ConflictPolicy"];
export type NonOwnerPolicy = S["NonOwnerPolicy"];
export type ExceptionView = S["ExceptionView"];
export type ExceptionFilter = S["ExceptionFilter"];
export type Choice = S["Choice"];
export type ResolveOutcome = S["ResolveOutcome"];
export type BulkOutcome = S["BulkOutcome"];
export type BulkItem = S["BulkItem"];
export type BulkStep = S["BulkStep"];
export type BulkPreview = S["BulkPreview"];
export type ApprovalQueue = S["ApprovalQueue"];
export type DeadLetterView = S["DeadLetterView"];
export type DeadLetterFilter = S["DeadLetterFilter"];
export type ReplayPreview = S["ReplayPreview"];
export type ReplayOutcome = S["ReplayOutcome"];
export type DeleteDecision = S["DeleteDecision"];
export type AuditRow = S["AuditRow"];
export type ChainReport = S["ChainReport"];
export type PlanView = S["PlanView"];
export type BreakerTrip = S["BreakerTrip"];
export type ConfigVersion = S["ConfigVersion"];
export type ConfigKind = S["ConfigKind"];
export type BreakerView = S["BreakerView"];
export type PlanCounts = S["PlanCounts"];
export type PlannedWrite = S["PlannedWrite"];
export type RecordView = S["RecordView"];
export type Metrics = S["Metrics"];
export type MetricsSample = S["MetricsSample"];
export type SystemHealth = S["SystemHealth"];
export type Discovery = S["Discovery"];
export type PreviewResponse = S["PreviewResponse"];
export type ConnectionTest = S["ConnectionTest"];
// The `rest` connector's config (SystemConfig.config when connector is "rest").
export type RestConfig = S["RestConfig"];
export type Auth = S["Auth"];
export type AuthType = Auth["type"];
export type ObjectEndpoints = S["ObjectEndpoints"];
export type Endpoint = S["Endpoint"];
export type Pagination = S["Pagination"];
export type PaginationStyle = Pagination["style"];
export type Incremental = S["Incremental"];
export type IncrementalStyle = Incremental["style"];
export type TimeFormat = S["TimeFormat"];
export type Concurrency = S["Concurrency"];
export type ConcurrencyStyle = Concurrency["style"];
export type WebhookConfig = S["WebhookConfig"];
export type SignedPayload = S["SignedPayload"];
export type PollConfig = S["PollConfig"];
export type ReconcileConfig = S["ReconcileConfig"];
export type Lookup = S["Lookup"];
export type LookupStyle = Lookup["style"];
// The `scim` connector's config (SystemConfig.config when connector is "scim"); auth, polling and
// reconciliation are the `rest` connector's.
export type ScimConfig = S["ScimConfig"];
export type ScimObject = S["ScimObject"];
export type OnDelete = S["OnDelete"];
export type FeatureOverrides = S["FeatureOverrides"];
// The `sql` connector's config (SystemConfig.config when connector is "sql"): a PostgreSQL database or
// an SQLite file; polling and reconciliation are the `rest` connector's. Change capture's install SQL.
export type SqlConfig = S["SqlConfig"];
export type SqlObject = S["SqlObject"];
export type ChangeCapture = S["ChangeCapture"];
export type CaptureStatus = S["CaptureStatus"];
// Repairs: dead writes planned again, records pushed again, reconciliations, mapping checks.
export type SentRequest = S["SentRequest"];
export type PreviewField = S["PreviewField"];
export type ReplanPreview = S["ReplanPreview"];
export type ReplanOutcome = S["ReplanOutcome"];
export type ReconcileRun = S["ReconcileRun"];
export type ReconcileStarted = S["ReconcileStarted"];
export type RepushSelection = S["RepushSelection"];
export type RepushOutcome = S["RepushOutcome"];
export type MappingCheck = S["MappingCheck"];
export type PathProblem = S["PathProblem"];
export type DeletePolicy = S["DeletePolicy"];
// Identity and guarded configuration changes.
export type TokenInfo = S["TokenInfo"];
export type IssuedToken = S["IssuedToken"];
export type Removal = S["Removal"];
export type ConfirmationRequired = S["ConfirmationRequired"];
