//! What a caller may see. Fields the schema or the ownership policy marks sensitive (salary,
//! bank account) are masked for roles that may not see them, wherever their values travel:
//! golden records and shadows, exception details, choices and custom values, raw inbound
//! values that failed validation, audit before/after and details, dead letters' requests and
//! response bodies, and replay previews.
//!
//! Masking works two ways, because a value escapes its field: by place (the value of a
//! sensitive field, or at the system path a sensitive field is mapped to, becomes `••••`),
//! and by content (every value masked by place, and every sensitive value the record holds,
//! is also scrubbed from free text: messages, notes, response bodies). Whether a value
//! changed is decided before masking, by the engine; masking never decides anything.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::auth::Principal;
use crate::delivery::send::SentRequest;
use crate::model::{Fields, RecordId};
use crate::ops::{AuditRow, DeadLetterView, ExceptionView, ReplayPreview};
use crate::runtime::Engine;

pub(crate) const MASK: &str = "••••";

/// Shorter values are not scrubbed from text: "12" would eat every twelve in a message.
const MIN_SCRUBBED_LEN: usize = 4;

/// Keys of exception, resolution and audit details that hold a field's value.
const VALUE_KEYS: [&str; 6] = ["base", "golden", "value", "rejected", "values", "current"];

/// Field names whose values `who` may not see in `object`.
pub(crate) fn hidden_fields(engine: &Engine, object: &str, who: &Principal) -> Vec<String> {
    if who.role.sees_sensitive() {
        return Vec::new();
    }
    let ws = engine.workspace();
    let Some(schema) = ws.object(object) else {
        return Vec::new();
    };
    schema
        .fields
        .iter()
        .filter(|f| f.sensitive || ws.policy(object, &f.name).sensitive)
        .map(|f| f.name.clone())
        .collect()
}

/// Masks what one caller may not see, for the records of one response. Build one per
/// response: it remembers the values it masked, to scrub them from text that follows.
pub(crate) struct Redactor<'a> {
    engine: &'a Engine,
    who: &'a Principal,
    /// Object -> its hidden fields.
    hidden: HashMap<String, Vec<String>>,
    /// Values masked or known sensitive, as text, longest first: a value that contains
    /// another is scrubbed whole.
    known: BTreeSet<(std::cmp::Reverse<usize>, String)>,
    /// `known` as one automaton, built when first needed after `known` changed: a page of a
    /// thousand audit rows against thousands of known values is one pass over each text, not
    /// one search per value.
    matcher: std::sync::OnceLock<Option<aho_corasick::AhoCorasick>>,
    learned: BTreeSet<RecordId>,
}

impl<'a> Redactor<'a> {
    pub(crate) fn new(engine: &'a Engine, who: &'a Principal) -> Self {
        Self {
            engine,
            who,
            hidden: HashMap::new(),
            known: BTreeSet::new(),
            matcher: std::sync::OnceLock::new(),
            learned: BTreeSet::new(),
        }
    }

    /// Whether the caller sees everything (nothing to mask).
    pub(crate) fn sees_all(&self) -> bool {
        self.who.role.sees_sensitive()
    }

    fn hidden(&mut self, object: &str) -> &[String] {
        if !self.hidden.contains_key(object) {
            let fields = hidden_fields(self.engine, object, self.who);
            self.hidden.insert(object.to_owned(), fields);
        }
        &self.hidden[object]
    }

    fn hides(&mut self, object: &str, field: &str) -> bool {
        self.hidden(object).iter().any(|f| f == field)
    }

    /// Remembers the sensitive values `record` holds (golden and every shadow), so they are
    /// scrubbed wherever they appear verbatim. A record that cannot be read adds nothing.
    pub(crate) async fn learn_record(&mut self, object: &str, record: Option<RecordId>) {
        let Some(record) = record else { return };
        if self.sees_all() || !self.learned.insert(record) {
            return;
        }
        let hidden = self.hidden(object).to_vec();
        if hidden.is_empty() {
            return;
        }
        if let Ok(view) = self.engine.record_view(record).await {
            for fields in std::iter::once(&view.golden).chain(view.shadows.values()) {
                for field in &hidden {
                    if let Some(v) = fields.get(field) {
                        self.remember(v);
                    }
                }
            }
        }
        // Values that never reached the record: held conflicts' values, custom choices, raw
        // inbound values that failed validation. A note or message may repeat them.
        let details: Vec<(Option<String>, String, Option<String>)> =
            sqlx::query_as("SELECT field, detail, resolution FROM exceptions WHERE record_id = ?")
                .bind(record)
                .fetch_all(self.engine.pool())
                .await
                .unwrap_or_default();
        for (field, detail, resolution) in details {
            if !field.is_some_and(|f| hidden.contains(&f)) {
                continue;
            }
            for text in std::iter::once(detail).chain(resolution) {
                if let Ok(mut v) = serde_json::from_str::<Value>(&text) {
                    self.hide_values_in(&mut v);
                }
            }
        }
    }

    /// Masks in `text` (a system's error message about `record`) the record's sensitive values.
    pub(crate) async fn scrub_message(
        &mut self,
        object: &str,
        record: RecordId,
        text: &mut String,
    ) {
        self.learn_record(object, Some(record)).await;
        self.scrub_text(text);
    }

    fn remember(&mut self, v: &Value) {
        match v {
            Value::String(s) if s.trim().len() >= MIN_SCRUBBED_LEN && s != MASK => {
                self.know(s.trim().to_owned());
            }
            Value::Number(n) => {
                let text = n.to_string();
                if text.len() >= MIN_SCRUBBED_LEN {
                    self.know(text);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| self.remember(i)),
            Value::Object(members) => members.values().for_each(|m| self.remember(m)),
            _ => {}
        }
    }

    fn know(&mut self, text: String) {
        if self.known.insert((std::cmp::Reverse(text.len()), text)) {
            self.matcher = std::sync::OnceLock::new();
        }
    }

    /// Replaces a sensitive value by the mask (null stays null: "no value" is not a secret).
    fn hide(&mut self, v: &mut Value) {
        if v.is_null() {
            return;
        }
        self.remember(v);
        *v = Value::String(MASK.into());
    }

    /// Removes every remembered value from the text and numbers inside `v`.
    fn scrub(&self, v: &mut Value) {
        if self.known.is_empty() {
            return;
        }
        match v {
            Value::String(s) => self.scrub_text(s),
            Value::Number(n) if self.knows(&n.to_string()) => {
                *v = Value::String(MASK.into());
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.scrub(i)),
            Value::Object(members) => members.values_mut().for_each(|m| self.scrub(m)),
            _ => {}
        }
    }

    fn knows(&self, text: &str) -> bool {
        self.known
            .contains(&(std::cmp::Reverse(text.len()), text.to_owned()))
    }

    /// Masks every byte of `text` that belongs to a known value, overlapping ones included:
    /// each run of such bytes becomes one mask.
    fn scrub_text(&self, text: &mut String) {
        if self.known.is_empty() {
            return;
        }
        let matcher = self.matcher.get_or_init(|| {
            aho_corasick::AhoCorasick::new(self.known.iter().map(|(_, k)| k.as_str())).ok()
        });
        let Some(matcher) = matcher else {
            // Too many values for one automaton: one search per value, longest first.
            for (_, k) in &self.known {
                if text.contains(k.as_str()) {
                    *text = text.replace(k.as_str(), MASK);
                }
            }
            return;
        };
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for m in matcher.find_overlapping_iter(text.as_str()) {
            match runs.last_mut() {
                Some(last) if m.start() <= last.1 => last.1 = last.1.max(m.end()),
                _ => runs.push((m.start(), m.end())),
            }
        }
        if runs.is_empty() {
            return;
        }
        let mut masked = String::with_capacity(text.len());
        let mut from = 0;
        for (start, end) in runs {
            masked.push_str(&text[from..start]);
            masked.push_str(MASK);
            from = end;
        }
        masked.push_str(&text[from..]);
        *text = masked;
    }

    /// Masks the values under [`VALUE_KEYS`] (and a custom choice, and an approval's value)
    /// anywhere inside `detail`.
    fn hide_values_in(&mut self, detail: &mut Value) {
        let Value::Object(members) = detail else {
            return;
        };
        for (key, v) in members.iter_mut() {
            if VALUE_KEYS.contains(&key.as_str()) {
                match v {
                    // A system -> value map (a conflict's values): every value is the field's.
                    Value::Object(per_system) if key == "values" => {
                        per_system.values_mut().for_each(|x| self.hide(x));
                    }
                    other => self.hide(other),
                }
            } else if matches!(key.as_str(), "choice" | "approval" | "resolution") {
                self.hide_values_in(v);
            }
        }
    }

    /// A record's fields (golden or a shadow).
    pub(crate) fn fields(&mut self, object: &str, fields: &mut Fields) {
        let hidden = self.hidden(object).to_vec();
        for (k, v) in fields.iter_mut() {
            if hidden.contains(k) {
                self.hide(v);
            }
        }
    }

    /// An exception: the field's values in its detail, the choice and custom value of its
    /// resolution, an approval's value; then every such value is scrubbed from its messages
    /// and notes.
    pub(crate) async fn exception(&mut self, e: &mut ExceptionView) {
        if self.sees_all() {
            return;
        }
        self.learn_record(&e.object, e.record_id).await;
        if let Some(field) = e.field.clone()
            && self.hides(&e.object, &field)
        {
            self.hide_values_in(&mut e.detail);
            if let Some(r) = e.resolution.as_mut() {
                self.hide_values_in(r);
            }
        }
        self.scrub(&mut e.detail);
        if let Some(r) = e.resolution.as_mut() {
            self.scrub(r);
        }
    }

    /// One item of a bulk set or the approvals queue: its current, chosen, base and
    /// first-approved values when its field is hidden; any sensitive value of its record in
    /// its reason and the first approver's note.
    pub(crate) async fn bulk_item(&mut self, item: &mut crate::approvals::BulkItem) {
        if self.sees_all() {
            return;
        }
        self.learn_record(&item.object, item.record_id).await;
        if let Some(field) = item.field.clone()
            && self.hides(&item.object, &field)
        {
            self.hide(&mut item.current);
            self.hide(&mut item.base);
            if let Some(v) = item.chosen.as_mut() {
                self.hide(v);
            }
            if let Some(a) = item.first_approval.as_mut() {
                self.hide(&mut a.value);
            }
        }
        for text in item
            .reason
            .iter_mut()
            .chain(item.first_approval.as_mut().and_then(|a| a.note.as_mut()))
        {
            self.scrub_text(text);
        }
    }

    /// An audit entry: before and after of a hidden field, the values in its detail, and any
    /// sensitive value of its record in the rest of the detail (a response body, a note).
    pub(crate) async fn audit_row(&mut self, r: &mut AuditRow) {
        if self.sees_all() {
            return;
        }
        let object = r.object.clone().unwrap_or_else(|| "employee".into());
        self.learn_record(&object, r.record_id).await;
        if let Some(field) = r.field.clone()
            && self.hides(&object, &field)
        {
            for v in [&mut r.before, &mut r.after].into_iter().flatten() {
                self.hide(v);
            }
            if let Some(d) = r.detail.as_mut() {
                self.hide_values_in(d);
            }
        }
        if let Some(d) = r.detail.as_mut() {
            self.scrub(d);
        }
    }

    /// A request body: the values at the system paths of hidden fields, then every known
    /// sensitive value elsewhere in it.
    pub(crate) fn request(&mut self, system: &str, object: &str, request: &mut SentRequest) {
        if self.sees_all() {
            return;
        }
        let hidden = self.hidden(object).to_vec();
        let Some(body) = request.body.as_mut() else {
            return;
        };
        let paths: Vec<String> = {
            let ws = self.engine.workspace();
            ws.mapping(system, object)
                .map(|m| {
                    m.rules
                        .iter()
                        .filter(|r| r.canonical.iter().any(|f| hidden.contains(f)))
                        .flat_map(|r| r.system.iter().cloned())
                        .collect()
                })
                .unwrap_or_default()
        };
        for path in &paths {
            if let Some(v) = crate::mapping::get_path(body, path)
                && !v.is_null()
            {
                self.remember(v);
                crate::mapping::set_path(body, path, Value::String(MASK.into()));
            }
        }
        let mut whole = Value::Object(std::mem::take(body));
        self.scrub(&mut whole);
        if let Value::Object(m) = whole {
            *body = m;
        }
    }

    /// A dead letter: its request as [`Redactor::request`], then its response body and
    /// discard reason scrubbed of every value masked there and every sensitive value of its
    /// record (systems often echo the record, or the offending value, in their errors).
    pub(crate) async fn dead_letter(&mut self, dl: &mut DeadLetterView) {
        if self.sees_all() {
            return;
        }
        let object = dl.object.clone().unwrap_or_else(|| "employee".into());
        self.learn_record(&object, dl.record_id).await;
        if let Some(request) = dl.request.as_mut() {
            self.request(&dl.system, &object, request);
        }
        for text in [
            &mut dl.response_body,
            &mut dl.discard_reason,
            &mut dl.message,
        ]
        .into_iter()
        .flatten()
        .chain(dl.attempt_log.iter_mut().map(|a| &mut a.message))
        {
            self.scrub_text(text);
        }
    }

    /// A replay preview: each hidden field's current, written and base values (whether it
    /// changes was decided before), and the requests it shows.
    pub(crate) async fn replay_preview(
        &mut self,
        preview: &mut ReplayPreview,
        record: Option<RecordId>,
    ) {
        if self.sees_all() {
            return;
        }
        let (system, object) = (preview.system.clone(), preview.object.clone());
        self.learn_record(&object, record).await;
        let hidden = self.hidden(&object).to_vec();
        let replan_fields = preview.replan.iter_mut().flat_map(|r| r.fields.iter_mut());
        for f in preview.fields.iter_mut().chain(replan_fields) {
            if hidden.contains(&f.field) {
                for v in [&mut f.current, &mut f.write, &mut f.base] {
                    self.hide(v);
                }
            }
        }
        let requests = preview
            .sent
            .iter_mut()
            .chain(preview.replan.iter_mut().filter_map(|r| r.request.as_mut()));
        for request in requests {
            self.request(&system, &object, request);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::auth::Role;

    #[tokio::test]
    async fn every_byte_of_a_known_value_is_masked_even_where_values_overlap() {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::open(&dir.path().join("state.db"), Default::default())
            .await
            .expect("engine opens");
        let viewer = Principal {
            id: "tok_00000000".into(),
            name: "Vic".into(),
            role: Role::Viewer,
        };
        let mut redactor = Redactor::new(&engine, &viewer);
        for value in ["abcd", "cdefgh", "GB82WEST"] {
            redactor.know(value.to_owned());
        }
        let mut text = "xxabcdefghyy, account GB82WEST, abcd".to_owned();
        redactor.scrub_text(&mut text);
        assert_eq!(
            text, "xx••••yy, account ••••, ••••",
            "overlapping values are masked as one run, and no part of either is left"
        );
        redactor.know("yy, acc".to_owned());
        let mut again = "xxabcdefghyy, account".to_owned();
        redactor.scrub_text(&mut again);
        assert_eq!(again, "xx••••ount", "a value learned later is masked too");
    }
}
