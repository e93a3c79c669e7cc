//! The console API's OpenAPI document, generated from the handlers and types, with what the
//! route table and the extractors add: each operation's roles, the 401 and 403 it can answer,
//! and the statuses its shape can produce (a body, query or path parameters). Served at
//! `/api/openapi.json` and printed by `concord openapi`; the UI's TypeScript types are
//! generated from it, and a schemathesis run checks the console answers as it says.

use axum::Json;
use utoipa::OpenApi;

use super::*;

pub(super) async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Writes [`ROUTES`] into the document: each operation's roles (`x-roles`, and a line in its
/// description), and the 401/403 answers it can give, with the error body's schema.
struct AccessAddon;

impl utoipa::Modify for AccessAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::extensions::ExtensionsBuilder;
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                ("GET", &mut item.get),
                ("PUT", &mut item.put),
                ("POST", &mut item.post),
                ("DELETE", &mut item.delete),
            ];
            for (method, op) in operations {
                let Some(op) = op.as_mut() else { continue };
                let Some(access) = route_access(method, path) else {
                    continue;
                };
                if access == Access::Public {
                    continue;
                }
                let roles: Vec<&str> = access.allowed().iter().map(|r| r.as_str()).collect();
                op.extensions = Some(
                    ExtensionsBuilder::new()
                        .add("x-roles", roles.clone())
                        .build(),
                );
                let line = format!("Roles: {}.", roles.join(", "));
                op.description = Some(match op.description.take() {
                    Some(d) if !d.is_empty() => format!("{d}\n\n{line}"),
                    _ => line,
                });
                let responses = &mut op.responses.responses;
                responses.insert(
                    "401".into(),
                    error("No token, or one this launch did not issue.").into(),
                );
                if matches!(access, Access::Roles(..)) {
                    responses.insert(
                        "403".into(),
                        error("The caller's role may not do this.").into(),
                    );
                }
                // Ids in the path never hold control characters (refused with a 400).
                for p in op.parameters.iter_mut().flatten() {
                    if p.parameter_in == utoipa::openapi::path::ParameterIn::Path
                        && let Some(utoipa::openapi::RefOr::T(
                            utoipa::openapi::schema::Schema::Object(o),
                        )) = p.schema.as_mut()
                        && o.schema_type
                            == utoipa::openapi::schema::SchemaType::Type(
                                utoipa::openapi::Type::String,
                            )
                    {
                        o.pattern = Some(r"^[^\u0000-\u001F\u007F-\u009F]+$".into());
                    }
                }
                // What the extractors answer before a handler runs, by the operation's shape.
                let params = op.parameters.as_deref().unwrap_or_default();
                let has = |kind: utoipa::openapi::path::ParameterIn| {
                    params.iter().any(|p| p.parameter_in == kind)
                };
                let mut framework = Vec::new();
                if has(utoipa::openapi::path::ParameterIn::Path) {
                    framework.push((
                        "400",
                        "A path parameter is malformed (not a number, out of range, or holding a control character).",
                    ));
                    framework.push(("404", "No such item."));
                    if method != "GET" {
                        framework.push((
                            "409",
                            "The item's state does not allow this (already resolved, replayed or discarded).",
                        ));
                    }
                }
                if has(utoipa::openapi::path::ParameterIn::Query) {
                    framework.push((
                        "400",
                        "A query parameter is malformed or out of its documented range.",
                    ));
                }
                if op.request_body.is_some() {
                    framework.push(("400", "The body is not JSON."));
                    framework.push((
                        "422",
                        "The body is JSON but does not fit: a wrong type, a missing or unknown member, or a value the operation refuses.",
                    ));
                    framework.push(("413", "The body is larger than the console accepts."));
                    framework.push(("415", "The body is not sent as application/json."));
                }
                for (status, description) in framework {
                    responses
                        .entry(status.into())
                        .or_insert_with(|| error(description).into());
                }
                // Every error answers with the same body, whatever the route declared.
                for (status, response) in responses.iter_mut() {
                    if let utoipa::openapi::RefOr::T(r) = response
                        && (status.starts_with('4') || status.starts_with('5'))
                        && r.content.is_empty()
                    {
                        *r = error(&r.description);
                    }
                }
            }
        }
    }
}

/// The console API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Concord console API", description = "Two-way sync console: systems, mappings, ownership, exceptions, dead letters, audit."),
    paths(
        me, issue_token, get_workspace, systems::put_system, systems::test_unsaved_system,
        systems::test_system, systems::discover, secrets::secret_status, secrets::put_secret,
        secrets::delete_secret, mappings::put_mapping, mappings::preview_mapping, mappings::what_if_mapping,
        policies::put_policies, policies::what_if_policies, exceptions::list_exceptions, exceptions::get_exception,
        exceptions::resolve_exception, approvals::bulk_resolve, approvals::bulk_preview, approvals::approval_queue, scheduled::scheduled_changes, exceptions::dismiss_exception,
        exceptions::resolve_match, exceptions::decide_delete, dead_letters::list_dead_letters,
        dead_letters::get_dead_letter, dead_letters::preview_replay, dead_letters::replay,
        dead_letters::replay_matching, dead_letters::replay_selected, dead_letters::discard, dead_letters::dead_letter_causes, dead_letters::discard_selected,
        records::audit, records::audit_chain, plan::plan, plan::plan_csv, plan::enable, breaker::breaker_state, breaker::confirm_held_writes, breaker::discard_held_writes, config_history::history, config_history::version, config_history::restore, records::find_record, records::record, records::golden_sample, metrics::metrics, prometheus::prometheus_metrics,
        metrics::metrics_history, put_engine, admin::list_tokens, admin::revoke_token,
        admin::delete_system, repair::replan, repair::repush, repair::start_reconcile,
        repair::list_reconciliations, repair::get_reconciliation, repair::confirm, repair::dismiss,
        repair::check_mapping, sql::capture_status, sql::install_capture
    ),
    components(schemas(Role, Principal, ErrorBody, crate::runtime::ScheduledStatus, crate::connectors::rest::RestConfig, crate::connectors::scim::ScimConfig, crate::connectors::sql::SqlConfig, auth::TokenInfo, admin::ConfirmationRequired, Removal)),
    modifiers(&SecurityAddon, &AccessAddon)
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_its_own_id() {
        // Two handlers of the same name in different modules get the same operationId, and the
        // generated TypeScript then types one route with the other's body and answer.
        let doc = ApiDoc::openapi();
        let mut seen = std::collections::BTreeMap::new();
        for (path, item) in &doc.paths.paths {
            let ops = [&item.get, &item.put, &item.post, &item.delete];
            for op in ops.into_iter().flatten() {
                let id = op.operation_id.clone().unwrap_or_default();
                if let Some(other) = seen.insert(id.clone(), path.clone()) {
                    panic!("operationId '{id}' is used by {other} and {path}");
                }
            }
        }
        assert!(seen.len() > 50, "every route is documented: {}", seen.len());
    }
}
