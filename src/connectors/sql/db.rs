//! The database under the `sql` connector: a PostgreSQL or SQLite pool, statements run with
//! bound values only (never interpolated), rows read as JSON objects built by the database
//! itself, the columns a table really has, and database failures classified for delivery.

use std::str::FromStr;
use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use super::config::{Dialect, literal, quote, quote_relation};
use crate::connector::ConnectorError;

/// A connection pool to the system's database.
#[derive(Clone)]
pub enum Db {
    Pg(PgPool),
    Lite(SqlitePool),
}

/// A column as the database reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// PostgreSQL: `format_type` (`integer`, `timestamp with time zone`); SQLite: the
    /// declared type.
    pub sql_type: String,
}

impl Db {
    /// A pool that connects on first use, so a database that is down fails requests (as
    /// retryable) rather than the engine's start.
    pub fn open(
        url: &str,
        password: Option<&str>,
        acquire_timeout: Duration,
    ) -> Result<Self, String> {
        macro_rules! pool {
            () => {
                sqlx::pool::PoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(acquire_timeout)
                    .test_before_acquire(true)
            };
        }
        if url.starts_with("sqlite:") {
            let path = url
                .trim_start_matches("sqlite:")
                .trim_start_matches("//")
                .split('?')
                .next()
                .unwrap_or_default();
            let options = SqliteConnectOptions::new()
                .filename(path)
                .busy_timeout(acquire_timeout);
            let p: SqlitePoolOptions = pool!();
            return Ok(Self::Lite(p.connect_lazy_with(options)));
        }
        let mut options = PgConnectOptions::from_str(url).map_err(|e| e.to_string())?;
        if let Some(p) = password {
            options = options.password(p);
        }
        let p: PgPoolOptions = pool!();
        Ok(Self::Pg(p.connect_lazy_with(options)))
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Self::Pg(_) => Dialect::Postgres,
            Self::Lite(_) => Dialect::Sqlite,
        }
    }

    /// Placeholder `n` (from 1) for a value of `column` (PostgreSQL casts the text it is sent
    /// to the column's type; SQLite takes typed values).
    pub fn param(&self, n: usize, column: Option<&Column>) -> String {
        match (self, column) {
            (Self::Pg(_), Some(c)) => format!("${n}::{}", c.sql_type),
            _ => format!("${n}"),
        }
    }

    /// `SELECT` of each row of `relation` as one JSON text, from a subquery aliased `t`
    /// (conditions and ordering refer to `t."column"`). PostgreSQL numerics become text so no
    /// digit is lost.
    pub fn json_select(&self, relation: &str, columns: &[Column], keep: &[&str]) -> String {
        match self {
            Self::Pg(_) => {
                let list: Vec<String> = columns
                    .iter()
                    .map(|c| {
                        let numeric =
                            c.sql_type.starts_with("numeric") || c.sql_type.starts_with("money");
                        if numeric && !keep.contains(&c.name.as_str()) {
                            format!("{0}::text AS {0}", quote(&c.name))
                        } else {
                            quote(&c.name)
                        }
                    })
                    .collect();
                format!(
                    "SELECT to_jsonb(t)::text FROM (SELECT {} FROM {}) t",
                    list.join(", "),
                    quote_relation(relation)
                )
            }
            Self::Lite(_) => {
                let list: Vec<String> = columns
                    .iter()
                    .map(|c| format!("{}, t.{}", literal(&c.name), quote(&c.name)))
                    .collect();
                format!(
                    "SELECT json_object({}) FROM {} t",
                    list.join(", "),
                    quote_relation(relation)
                )
            }
        }
    }

    /// The columns of a table or view, in order; empty when it does not exist.
    pub async fn columns(&self, relation: &str) -> Result<Vec<Column>, sqlx::Error> {
        let rows: Vec<(String, String)> = match self {
            Self::Pg(p) => sqlx::query_as(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                     WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
                     ORDER BY a.attnum",
            )
            .bind(quote_relation(relation))
            .fetch_all(p)
            .await?,
            Self::Lite(p) => {
                let (schema, name) = relation.split_once('.').unwrap_or(("main", relation));
                sqlx::query_as("SELECT name, type FROM pragma_table_info(?1, ?2) ORDER BY cid")
                    .bind(name)
                    .bind(schema)
                    .fetch_all(p)
                    .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|(name, sql_type)| Column { name, sql_type })
            .collect())
    }

    /// Runs a query whose single column is a JSON object per row.
    pub async fn json_rows(
        &self,
        sql: &str,
        args: &[(Value, Option<&Column>)],
    ) -> Result<Vec<Map<String, Value>>, sqlx::Error> {
        let texts: Vec<Option<String>> = match self {
            Self::Pg(p) => {
                let mut q = sqlx::query_scalar::<_, Option<String>>(sql);
                for (v, _) in args {
                    q = q.bind(as_text(v));
                }
                q.fetch_all(p).await?
            }
            Self::Lite(p) => {
                let mut q = sqlx::query_scalar::<_, Option<String>>(sql);
                for (v, c) in args {
                    q = bind_lite(q, v, *c);
                }
                q.fetch_all(p).await?
            }
        };
        texts
            .into_iter()
            .flatten()
            .map(|t| match serde_json::from_str(&t) {
                Ok(Value::Object(m)) => Ok(m),
                _ => Err(sqlx::Error::Decode(
                    format!("a row did not read as a JSON object: {t}").into(),
                )),
            })
            .collect()
    }

    /// Runs a statement; the rows it affected, and the first column of the first row it
    /// returned (as text) when it has a `RETURNING` clause.
    pub async fn execute(
        &self,
        sql: &str,
        args: &[(Value, Option<&Column>)],
        returning: bool,
    ) -> Result<(u64, Option<String>), sqlx::Error> {
        macro_rules! run {
            ($pool:expr, $bind:expr) => {{
                if returning {
                    use sqlx::Row;
                    let mut q = sqlx::query(sql);
                    for (v, c) in args {
                        q = $bind(q, v, *c);
                    }
                    let rows = q.fetch_all($pool).await?;
                    // The returned key, whatever its type, as text.
                    let first = rows.first().and_then(|r| {
                        r.try_get::<Option<String>, _>(0)
                            .ok()
                            .flatten()
                            .or_else(|| r.try_get::<i64, _>(0).ok().map(|i| i.to_string()))
                            .or_else(|| r.try_get::<f64, _>(0).ok().map(|f| f.to_string()))
                    });
                    Ok((rows.len() as u64, first))
                } else {
                    let mut q = sqlx::query(sql);
                    for (v, c) in args {
                        q = $bind(q, v, *c);
                    }
                    Ok((q.execute($pool).await?.rows_affected(), None))
                }
            }};
        }
        match self {
            Self::Pg(p) => run!(p, |q: _, v: &Value, _c: Option<&Column>| bind_pg(q, v)),
            Self::Lite(p) => run!(p, bind_lite),
        }
    }

    /// A single integer (a count, a sequence).
    pub async fn scalar(&self, sql: &str, args: &[&str]) -> Result<i64, sqlx::Error> {
        match self {
            Self::Pg(p) => {
                let mut q = sqlx::query_scalar::<_, i64>(sql);
                for a in args {
                    q = q.bind(*a);
                }
                q.fetch_one(p).await
            }
            Self::Lite(p) => {
                let mut q = sqlx::query_scalar::<_, i64>(sql);
                for a in args {
                    q = q.bind(*a);
                }
                q.fetch_one(p).await
            }
        }
    }

    /// Runs statements one after another as one script: on PostgreSQL a script of several
    /// statements is one transaction; SQLite's statements are each idempotent (`IF NOT
    /// EXISTS`), so a script cut short is completed by running it again.
    pub async fn run_all(&self, statements: &[String]) -> Result<(), sqlx::Error> {
        let script = statements
            .iter()
            .map(|s| format!("{s};\n"))
            .collect::<String>();
        match self {
            Self::Pg(p) => sqlx::raw_sql(&script).execute(p).await.map(|_| ()),
            Self::Lite(p) => sqlx::raw_sql(&script).execute(p).await.map(|_| ()),
        }
    }

    /// The expression of "now" as the database writes a modification time.
    pub fn now_expr(&self, column: &Column) -> String {
        match self {
            Self::Pg(_) => format!("now()::{}", column.sql_type),
            Self::Lite(_) => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')".into(),
        }
    }
}

/// A JSON value as the text PostgreSQL casts to the column's type; null stays null.
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn bind_pg<'q, O>(q: O, v: &Value) -> O
where
    O: Bindable<'q, sqlx::Postgres>,
{
    q.bind_value(as_text(v))
}

/// A JSON value bound for SQLite, typed by the column's affinity: text holding a number is
/// bound as a number for an integer or real column (a key in a path, a version as text).
fn bind_lite<'q, O>(q: O, v: &Value, column: Option<&Column>) -> O
where
    O: Bindable<'q, sqlx::Sqlite>,
{
    let affinity = column
        .map(|c| c.sql_type.to_ascii_uppercase())
        .unwrap_or_default();
    let numeric = affinity.contains("INT")
        || affinity.contains("REAL")
        || affinity.contains("FLOA")
        || affinity.contains("DOUB")
        || affinity.contains("NUM");
    match v {
        Value::Null => q.bind_value(None::<String>),
        Value::Bool(b) => q.bind_value(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => q.bind_value(i),
            None => q.bind_value(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) if numeric => match (s.trim().parse::<i64>(), s.trim().parse::<f64>()) {
            (Ok(i), _) => q.bind_value(i),
            (_, Ok(f)) => q.bind_value(f),
            _ => q.bind_value(s.clone()),
        },
        Value::String(s) => q.bind_value(s.clone()),
        other => q.bind_value(other.to_string()),
    }
}

/// `bind` on both kinds of sqlx query, so one binding function serves both.
pub trait Bindable<'q, DB: sqlx::Database>: Sized {
    fn bind_value<T>(self, v: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, DB> + sqlx::Type<DB> + Send;
}

impl<'q, DB: sqlx::Database> Bindable<'q, DB> for sqlx::query::Query<'q, DB, DB::Arguments<'q>> {
    fn bind_value<T>(self, v: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, DB> + sqlx::Type<DB> + Send,
    {
        self.bind(v)
    }
}

impl<'q, DB: sqlx::Database, O> Bindable<'q, DB>
    for sqlx::query::QueryScalar<'q, DB, O, DB::Arguments<'q>>
{
    fn bind_value<T>(self, v: T) -> Self
    where
        T: 'q + sqlx::Encode<'q, DB> + sqlx::Type<DB> + Send,
    {
        self.bind(v)
    }
}

/// A database failure, classified: connection trouble and contention are worth retrying;
/// a constraint the data breaks, or a statement the database refuses, is not.
pub fn classify(system: &str, e: &sqlx::Error) -> ConnectorError {
    let retryable = |message: String| ConnectorError::Retryable {
        system: system.to_owned(),
        status: None,
        retry_after: None,
        message,
    };
    let rejected = |status: u16, body: String| ConnectorError::Rejected {
        system: system.to_owned(),
        status,
        body,
    };
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let message = db.message().to_owned();
            let transient_pg = ["08", "53", "57P", "40001", "40P01", "55P03"]
                .iter()
                .any(|p| code.starts_with(p));
            // SQLite: 5 busy, 6 locked (and their extended codes).
            let transient_lite = matches!(code.parse::<i64>().map(|c| c & 0xff), Ok(5) | Ok(6));
            if code.starts_with("28") {
                // Authentication: the stored password or the user is wrong.
                ConnectorError::Config(format!("system {system}: {message} ({code})"))
            } else if transient_pg || (db.kind() == sqlx::error::ErrorKind::Other && transient_lite)
            {
                retryable(format!("{message} ({code})"))
            } else if code.starts_with("23") || db.kind() != sqlx::error::ErrorKind::Other {
                rejected(422, format!("constraint violated: {message} ({code})"))
            } else {
                rejected(400, format!("{message} ({code})"))
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => retryable(e.to_string()),
        sqlx::Error::Configuration(_) => ConnectorError::Config(format!("system {system}: {e}")),
        other => rejected(400, other.to_string()),
    }
}
