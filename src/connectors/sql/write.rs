//! Writes: generated `INSERT`/`UPDATE`/`DELETE` for a table, or a view's own statements with
//! `:column` placeholders. Every value is bound. An update names the version the engine last
//! saw (`WHERE key = $k AND version = $v`) and increments it; no row updated means the record
//! changed (a version conflict) or is gone (not found).

use serde_json::{Map, Value};

use super::config::{quote, quote_relation};
use super::db::Column;
use super::{Inner, SqlObject};
use crate::connector::{ConnectorError, WriteOutcome, WriteRequest};

type Args<'c> = Vec<(Value, Option<&'c Column>)>;

/// A statement's `:name` placeholders (outside quotes, not `::casts`) rendered by `render`
/// from their number (1…, in order of first appearance) and name, with the names in order; a
/// name used twice takes the same number.
pub fn placeholders(
    statement: &str,
    render: impl Fn(usize, &str) -> String,
) -> (String, Vec<String>) {
    let chars: Vec<char> = statement.chars().collect();
    let mut out = String::with_capacity(statement.len());
    let mut names: Vec<String> = Vec::new();
    let mut quoted: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quoted {
            if c == q {
                quoted = None;
            }
            out.push(c);
            i += 1;
            continue;
        }
        if c == '\'' || c == '"' {
            quoted = Some(c);
        }
        let starts = c == ':'
            && chars
                .get(i + 1)
                .is_some_and(|n| n.is_ascii_alphabetic() || *n == '_')
            && (i == 0 || chars[i - 1] != ':');
        if !starts {
            out.push(c);
            i += 1;
            continue;
        }
        let end = (i + 1..chars.len())
            .find(|&j| !(chars[j].is_ascii_alphanumeric() || chars[j] == '_'))
            .unwrap_or(chars.len());
        let name: String = chars[i + 1..end].iter().collect();
        let n = match names.iter().position(|x| *x == name) {
            Some(p) => p + 1,
            None => {
                names.push(name);
                names.len()
            }
        };
        out.push_str(&render(n, &names[n - 1]));
        i = end;
    }
    (out, names)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Inner {
    fn no_rows(&self, what: &str) -> ConnectorError {
        ConnectorError::Rejected {
            system: self.system.clone(),
            status: 422,
            body: format!("the {what} statement wrote no row"),
        }
    }

    /// Runs a view's statement with its placeholders bound from `values`.
    async fn run_statement(
        &self,
        statement: &str,
        values: &Map<String, Value>,
        columns: &[Column],
    ) -> Result<(u64, Option<String>), ConnectorError> {
        let db = self.db().await?;
        // PostgreSQL casts each value to the type of the view column of the same name.
        let (sql, names) = placeholders(statement, |n, name| {
            db.param(n, Self::column(columns, name))
        });
        let args: Args = names
            .iter()
            .map(|name| {
                let value = values.get(name).cloned().unwrap_or(Value::Null);
                (value, Self::column(columns, name))
            })
            .collect();
        let returning = sql.to_ascii_uppercase().contains("RETURNING");
        db.execute(&sql, &args, returning)
            .await
            .map_err(|e| self.err(&e))
    }

    pub(super) async fn create(
        &self,
        write: &WriteRequest,
    ) -> Result<WriteOutcome, ConnectorError> {
        let o = self.object(&write.object)?;
        let columns = self.write_columns(&write.object, &write.payload).await?;
        let key = match &o.insert {
            Some(statement) => {
                let (_, returned) = self
                    .run_statement(statement, &write.payload, &columns)
                    .await?;
                returned.or_else(|| write.payload.get(&o.key_column).map(text))
            }
            None => self.insert_row(o, &write.payload, &columns).await?,
        };
        let key = key.ok_or_else(|| self.no_rows("insert"))?;
        self.outcome(&write.object, &key).await
    }

    async fn insert_row(
        &self,
        o: &SqlObject,
        payload: &Map<String, Value>,
        columns: &[Column],
    ) -> Result<Option<String>, ConnectorError> {
        let db = self.db().await?;
        let mut names = Vec::new();
        let mut values = Vec::new();
        let mut args: Args = Vec::new();
        for (k, v) in payload {
            let column = Self::column(columns, k);
            args.push((v.clone(), column));
            names.push(quote(k));
            values.push(db.param(args.len(), column));
        }
        if let Some(u) = &o.updated_at_column
            && !payload.contains_key(u)
            && let Some(column) = Self::column(columns, u)
        {
            names.push(quote(u));
            values.push(db.now_expr(column));
        }
        let target = if names.is_empty() {
            "DEFAULT VALUES".to_owned()
        } else {
            format!("({}) VALUES ({})", names.join(", "), values.join(", "))
        };
        let sql = format!(
            "INSERT INTO {} {target} RETURNING CAST({} AS TEXT)",
            quote_relation(o.relation()),
            quote(&o.key_column)
        );
        let (_, key) = db
            .execute(&sql, &args, true)
            .await
            .map_err(|e| self.err(&e))?;
        Ok(key)
    }

    pub(super) async fn update(
        &self,
        external_id: &str,
        write: &WriteRequest,
    ) -> Result<WriteOutcome, ConnectorError> {
        let o = self.object(&write.object)?;
        let columns = self.write_columns(&write.object, &write.payload).await?;
        let checked = write.if_match.is_some() && o.version_column.is_some();
        let affected = match &o.update {
            Some(statement) => {
                let Some(current) = self.get_row(&write.object, external_id).await? else {
                    return Err(self.missed(&write.object, external_id, false).await);
                };
                let mut values = current.record;
                values.extend(write.payload.clone());
                if let (Some(v), Some(expected)) = (&o.version_column, &write.if_match) {
                    values.insert(v.clone(), Value::String(expected.clone()));
                }
                self.run_statement(statement, &values, &columns).await?.0
            }
            None => self.update_row(o, external_id, write, &columns).await?,
        };
        if affected == 0 {
            return Err(self.missed(&write.object, external_id, checked).await);
        }
        self.outcome(&write.object, external_id).await
    }

    async fn update_row(
        &self,
        o: &SqlObject,
        external_id: &str,
        write: &WriteRequest,
        columns: &[Column],
    ) -> Result<u64, ConnectorError> {
        let db = self.db().await?;
        let mut sets = Vec::new();
        let mut args: Args = Vec::new();
        for (k, v) in &write.payload {
            if Some(k) == o.version_column.as_ref() {
                continue;
            }
            let column = Self::column(columns, k);
            args.push((v.clone(), column));
            sets.push(format!("{} = {}", quote(k), db.param(args.len(), column)));
        }
        if let Some(v) = &o.version_column {
            sets.push(format!("{0} = {0} + 1", quote(v)));
        }
        if let Some(u) = &o.updated_at_column
            && !write.payload.contains_key(u)
            && let Some(column) = Self::column(columns, u)
        {
            sets.push(format!("{} = {}", quote(u), db.now_expr(column)));
        }
        if sets.is_empty() {
            // Nothing to change: the row only has to exist.
            return Ok(u64::from(
                self.get_row(&write.object, external_id).await?.is_some(),
            ));
        }
        let key_col = Self::column(columns, &o.key_column);
        args.push((Value::String(external_id.to_owned()), key_col));
        let mut filter = format!(
            "{} = {}",
            quote(&o.key_column),
            db.param(args.len(), key_col)
        );
        if let (Some(v), Some(expected)) = (&o.version_column, &write.if_match) {
            let column = Self::column(columns, v);
            args.push((Value::String(expected.clone()), column));
            filter.push_str(&format!(
                " AND {} = {}",
                quote(v),
                db.param(args.len(), column)
            ));
        }
        let sql = format!(
            "UPDATE {} SET {} WHERE {filter}",
            quote_relation(o.relation()),
            sets.join(", ")
        );
        let (n, _) = db
            .execute(&sql, &args, false)
            .await
            .map_err(|e| self.err(&e))?;
        Ok(n)
    }

    pub(super) async fn delete(
        &self,
        external_id: &str,
        write: &WriteRequest,
    ) -> Result<WriteOutcome, ConnectorError> {
        let o = self.object(&write.object)?;
        let columns = self.columns(&write.object, false).await?;
        let key = Value::String(external_id.to_owned());
        // A row already gone is what a delete wants.
        match (&o.table, &o.delete) {
            (Some(table), _) => {
                let db = self.db().await?;
                let key_col = Self::column(&columns, &o.key_column);
                let sql = format!(
                    "DELETE FROM {} WHERE {} = {}",
                    quote_relation(table),
                    quote(&o.key_column),
                    db.param(1, key_col)
                );
                db.execute(&sql, &[(key, key_col)], false)
                    .await
                    .map_err(|e| self.err(&e))?;
            }
            (None, Some(statement)) => {
                let values = Map::from_iter([(o.key_column.clone(), key)]);
                self.run_statement(statement, &values, &columns).await?;
            }
            (None, None) => {
                return Err(ConnectorError::Rejected {
                    system: self.system.clone(),
                    status: 405,
                    body: format!("the view {} has no delete statement", o.relation()),
                });
            }
        }
        Ok(WriteOutcome {
            external_id: external_id.to_owned(),
            version: None,
            etag: None,
        })
    }
}
