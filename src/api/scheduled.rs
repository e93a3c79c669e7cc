//! Effective-dated changes in the console: what systems dated in the future and Concord holds
//! until then, what was released on its date and what became of it, and what was dropped
//! because the system changed its word. Values of sensitive fields are masked for roles that
//! may not see them.

use super::input::{Checked, not_empty, page};
use super::*;
use crate::runtime::{ScheduledFilter, ScheduledPage};

#[utoipa::path(get, path = "/api/scheduled", params(ScheduledFilter),
    responses((status = 200, body = ScheduledPage), (status = 400, description = "a bad filter")),
    security(("token" = [])))]
pub(super) async fn scheduled_changes(
    State(c): State<Console>,
    who: Principal,
    ApiQuery(filter): ApiQuery<ScheduledFilter>,
) -> ApiResult<ScheduledPage> {
    let mut page = c.engine.scheduled_changes(&filter).await?;
    let mut redactor = Redactor::new(&c.engine, &who);
    for item in &mut page.items {
        redactor.learn_record(&item.object, item.record_id).await;
        redactor.fields(&item.object, &mut item.values);
        redactor.fields(&item.object, &mut item.base);
    }
    Ok(Json(page))
}

impl Checked for ScheduledFilter {
    fn check(&self) -> Result<(), String> {
        page(self.limit, self.offset)?;
        not_empty("system", self.system.as_deref())
    }
}
