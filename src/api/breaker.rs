//! A system's circuit breaker in the console: its settings, what it counts now, its trips,
//! and an admin's decision about an open trip (confirm: the held writes are sent; discard:
//! they never are), audited. The held writes themselves are the system's plan
//! (`GET /api/systems/{id}/plan`).

use super::*;
use crate::breaker::{BreakerDecision, BreakerTrip, Tally};
use crate::model::BreakerConfig;
use crate::plan::PlanCounts;

/// A system's breaker.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BreakerView {
    pub system: String,
    /// The settings in force (the system's own, else the default).
    pub config: BreakerConfig,
    /// What it counts now, within its window.
    pub tally: Tally,
    /// The trip holding the system's writes, if any.
    pub open: Option<BreakerTrip>,
    /// The latest trips, newest first (at most 20).
    pub trips: Vec<BreakerTrip>,
}

/// An admin's decision about an open trip.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct BreakerDecisionRequest {
    /// Why (kept in the audit). Required to discard.
    #[serde(default)]
    pub note: String,
    /// The counts of the held writes the admin reviewed (the system's plan). With its
    /// `newest_write`, the decision covers exactly the writes up to that one, and writes queued
    /// since are judged afresh (they flow if on their own they stay within the breaker's share,
    /// else the breaker trips again on them). Without it, the counts must still match, else
    /// nothing is decided and the answer is 409 `plan_changed`.
    #[serde(default)]
    pub seen: Option<PlanCounts>,
}

/// What the decision did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BreakerDecided {
    pub system: String,
    pub decision: BreakerDecision,
    /// Held updates and deletes discarded (never sent).
    pub discarded: u64,
    /// Writes queued after the ones reviewed, judged afresh by the breaker.
    pub queued_since_review: i64,
    /// The trip those writes opened, when on their own they would change more than the
    /// breaker's share: they wait for another review.
    pub tripped_again: Option<BreakerTrip>,
}

#[utoipa::path(get, path = "/api/systems/{id}/breaker", params(("id" = String, Path)),
    responses((status = 200, body = BreakerView), (status = 404, description = "no such system")),
    security(("token" = [])))]
pub(super) async fn breaker_state(
    State(c): State<Console>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<BreakerView> {
    super::plan::known_system(&c, &id)?;
    let trips = c.engine.breaker_trips(&id, 20).await?;
    Ok(Json(BreakerView {
        config: c.engine.breaker_config(&id),
        tally: c.engine.breaker_tally(&id).await?,
        open: trips.iter().find(|t| t.status == "open").cloned(),
        trips,
        system: id,
    }))
}

async fn decide(
    c: &Console,
    who: &Principal,
    id: String,
    decision: BreakerDecision,
    req: BreakerDecisionRequest,
) -> ApiResult<BreakerDecided> {
    super::plan::known_system(c, &id)?;
    if decision == BreakerDecision::Discard && req.note.trim().is_empty() {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "note_required",
            "discarding held writes needs a note saying why".into(),
        ));
    }
    let reviewed = req
        .seen
        .as_ref()
        .map(|seen| seen.newest_write)
        .filter(|&newest| newest > 0);
    if let Some(seen) = req.seen.as_ref().filter(|_| reviewed.is_none()) {
        let counts = c.engine.plan_counts(&id).await?;
        if !seen.same_writes(&counts) {
            return Err(ApiError(
                StatusCode::CONFLICT,
                "plan_changed",
                format!(
                    "the held writes changed since they were reviewed: now {} creates, {} updates and {} deletes; review them again",
                    counts.creates, counts.updates, counts.deletes
                ),
            ));
        }
    }
    let outcome = c
        .engine
        .decide_breaker(&id, decision, req.note.trim(), &who.actor(), reviewed)
        .await?;
    Ok(Json(BreakerDecided {
        system: id,
        decision,
        discarded: outcome.discarded,
        queued_since_review: outcome.queued_since_review,
        tripped_again: outcome.tripped_again,
    }))
}

#[utoipa::path(post, path = "/api/systems/{id}/breaker/confirm", params(("id" = String, Path)), request_body = BreakerDecisionRequest,
    responses((status = 200, body = BreakerDecided), (status = 404, description = "no such system"),
        (status = 409, description = "the breaker is not tripped, or the held writes changed since they were reviewed")),
    security(("token" = [])))]
pub(super) async fn confirm_held_writes(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<BreakerDecisionRequest>,
) -> ApiResult<BreakerDecided> {
    decide(&c, &who, id, BreakerDecision::Confirm, req).await
}

#[utoipa::path(post, path = "/api/systems/{id}/breaker/discard", params(("id" = String, Path)), request_body = BreakerDecisionRequest,
    responses((status = 200, body = BreakerDecided), (status = 404, description = "no such system"),
        (status = 409, description = "the breaker is not tripped, or the held writes changed since they were reviewed"),
        (status = 422, description = "no note")),
    security(("token" = [])))]
pub(super) async fn discard_held_writes(
    State(c): State<Console>,
    who: Principal,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<BreakerDecisionRequest>,
) -> ApiResult<BreakerDecided> {
    decide(&c, &who, id, BreakerDecision::Discard, req).await
}
