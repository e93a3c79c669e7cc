//! SCIM filters (RFC 7644 §3.4.2.2): a small recursive-descent parser and an evaluator over a
//! resource as the directory answers it.
//!
//! `eq ne co sw ew gt ge lt le pr`, `and`, `or`, `not (…)`, parentheses, and value paths
//! (`emails[type eq "work" and primary eq true]`). Attribute names match whatever their case;
//! strings compare without regard to case unless the attribute is case-exact (`id`,
//! `externalId`, member and manager ids); `dateTime`s compare as instants; a multi-valued
//! attribute matches when one of its values does, and a multi-valued complex attribute named
//! without a sub-attribute (`emails co "@acme"`) compares its `value`s.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::schema::{self, Attr, Resource, Type};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "co" => Self::Co,
            "sw" => Self::Sw,
            "ew" => Self::Ew,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Present(String),
    Compare(String, Op, Value),
    /// `attr[filter]`: an element of a multi-valued complex attribute matches the inner filter.
    Has(String, Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Str(String),
    Word(String),
}

fn tokens(input: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '[' | ']' => {
                chars.next();
                out.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    '[' => Token::OpenBracket,
                    _ => Token::CloseBracket,
                });
            }
            '"' => {
                chars.next();
                let mut escaped = false;
                let end = loop {
                    let Some((j, d)) = chars.next() else {
                        return Err(format!("the string starting at {i} is not closed"));
                    };
                    match d {
                        '\\' if !escaped => escaped = true,
                        '"' if !escaped => break j,
                        _ => escaped = false,
                    }
                };
                let s: String = serde_json::from_str(&input[i..=end])
                    .map_err(|e| format!("the string starting at {i} is invalid: {e}"))?;
                out.push(Token::Str(s));
            }
            _ => {
                let mut end = input.len();
                while let Some(&(j, d)) = chars.peek() {
                    if d.is_whitespace() || "()[]\"".contains(d) {
                        end = j;
                        break;
                    }
                    chars.next();
                }
                out.push(Token::Word(input[i..end].to_owned()));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn expect(&mut self, token: &Token, what: &str) -> Result<(), String> {
        match self.next() {
            Some(t) if t == *token => Ok(()),
            Some(t) => Err(format!("expected {what}, found {t:?}")),
            None => Err(format!("expected {what} at the end")),
        }
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.at += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.at += 1;
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.keyword("not") && self.tokens.get(self.at + 1) == Some(&Token::Open) {
            self.at += 1;
            return Ok(Filter::Not(Box::new(self.group()?)));
        }
        if self.peek() == Some(&Token::Open) {
            return self.group();
        }
        let path = match self.next() {
            Some(Token::Word(w)) => w,
            Some(t) => return Err(format!("expected an attribute, found {t:?}")),
            None => return Err("expected an attribute at the end".into()),
        };
        if self.peek() == Some(&Token::OpenBracket) {
            self.at += 1;
            let inner = self.or()?;
            self.expect(&Token::CloseBracket, "]")?;
            return Ok(Filter::Has(path, Box::new(inner)));
        }
        let op = match self.next() {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("pr") => {
                return Ok(Filter::Present(path));
            }
            Some(Token::Word(w)) => {
                Op::parse(&w).ok_or_else(|| format!("{w} is not a comparison operator"))?
            }
            _ => return Err(format!("expected an operator after {path}")),
        };
        let value = match self.next() {
            Some(Token::Str(s)) => Value::String(s),
            Some(Token::Word(w)) => match w.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                _ => serde_json::from_str::<serde_json::Number>(&w)
                    .map(Value::Number)
                    .map_err(|_| {
                        format!("{w} is not a value (strings are written in double quotes)")
                    })?,
            },
            _ => return Err(format!("expected a value after {path}")),
        };
        Ok(Filter::Compare(path, op, value))
    }

    fn group(&mut self) -> Result<Filter, String> {
        self.expect(&Token::Open, "(")?;
        let inner = self.or()?;
        self.expect(&Token::Close, ")")?;
        Ok(inner)
    }
}

/// Parses a filter, without checking its attributes (see [`check`]).
pub(crate) fn parse(input: &str) -> Result<Filter, String> {
    let mut p = Parser {
        tokens: tokens(input)?,
        at: 0,
    };
    if p.tokens.is_empty() {
        return Err("the filter is empty".into());
    }
    let f = p.or()?;
    match p.peek() {
        None => Ok(f),
        Some(t) => Err(format!("unexpected {t:?} after a complete filter")),
    }
}

/// What a filter is evaluated in: a whole resource, or one element of a multi-valued complex
/// attribute (inside `attr[…]`).
#[derive(Clone, Copy)]
pub(crate) enum Scope<'a> {
    Resource(Resource, &'a Map<String, Value>),
    Element(&'static Attr, &'a Map<String, Value>),
}

/// Where a path leads in a scope: the attribute whose values are compared, and the values.
fn lookup<'a>(
    scope: Scope<'a>,
    path: &str,
    whole: bool,
) -> Result<(&'static Attr, Vec<&'a Value>), String> {
    match scope {
        Scope::Element(parent, element) => {
            let leaf = parent
                .sub_attr(path)
                .ok_or_else(|| format!("{} has no sub-attribute {path}", parent.name))?;
            Ok((leaf, element.get(leaf.name).into_iter().collect()))
        }
        Scope::Resource(resource, map) => {
            let p = schema::resolve(resource, path)?;
            let container = match p.extension {
                Some(urn) => map.get(urn).and_then(Value::as_object),
                None => Some(map),
            };
            let found = container.and_then(|c| c.get(p.attr.name));
            let mut values: Vec<&Value> = match (found, p.attr.multi) {
                (Some(Value::Array(items)), true) => items.iter().collect(),
                (Some(v), _) => vec![v],
                (None, _) => Vec::new(),
            };
            if p.attr.kind != Type::Complex || (whole && p.sub.is_none()) {
                return Ok((p.attr, values));
            }
            let leaf = match p.sub {
                Some(s) => s,
                None => p
                    .attr
                    .sub_attr("value")
                    .ok_or_else(|| format!("{path} is complex: name one of its sub-attributes"))?,
            };
            values = values
                .into_iter()
                .filter_map(|v| v.get(leaf.name))
                .collect();
            Ok((leaf, values))
        }
    }
}

/// Checks that every attribute a filter names exists and that each comparison makes sense for
/// the attribute's type.
pub(crate) fn check(filter: &Filter, scope: Scope<'_>) -> Result<(), String> {
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => {
            check(a, scope)?;
            check(b, scope)
        }
        Filter::Not(a) => check(a, scope),
        Filter::Present(path) => lookup(scope, path, true).map(|_| ()),
        Filter::Has(path, inner) => {
            let attr = element_attr(scope, path)?;
            check(inner, Scope::Element(attr, &Map::new()))
        }
        Filter::Compare(path, op, value) => {
            let (attr, _) = lookup(scope, path, false)?;
            match attr.kind {
                Type::Boolean if *op != Op::Eq && *op != Op::Ne => {
                    Err(format!("{path} is a boolean: only eq and ne compare it"))
                }
                Type::Boolean if !value.is_boolean() && !value.is_null() => Err(format!(
                    "{path} is a boolean: compare it with true or false"
                )),
                Type::DateTime if !value.is_null() && instant(value).is_none() => Err(format!(
                    "{path} is a dateTime: compare it with an RFC 3339 time, not {value}"
                )),
                Type::String | Type::Reference if value.is_number() || value.is_boolean() => Err(
                    format!("{path} is a string: compare it with a quoted string"),
                ),
                _ if value.is_null() && *op != Op::Eq && *op != Op::Ne => {
                    Err(format!("only eq and ne compare {path} with null"))
                }
                _ => Ok(()),
            }
        }
    }
}

/// The multi-valued complex attribute `path[…]` filters the elements of.
pub(crate) fn element_attr(scope: Scope<'_>, path: &str) -> Result<&'static Attr, String> {
    let Scope::Resource(resource, _) = scope else {
        return Err(format!("{path}[…] cannot be nested in another filter"));
    };
    let p = schema::resolve(resource, path)?;
    if p.attr.kind != Type::Complex || !p.attr.multi || p.sub.is_some() {
        return Err(format!(
            "{path} is not a multi-valued complex attribute, so it takes no [filter]"
        ));
    }
    Ok(p.attr)
}

fn instant(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// How two values of `attr` order, as its type orders them.
pub(crate) fn order(attr: &Attr, a: &Value, b: &Value) -> Option<Ordering> {
    match (attr.kind, a, b) {
        (Type::DateTime, _, _) => Some(instant(a)?.cmp(&instant(b)?)),
        (_, Value::String(x), Value::String(y)) if attr.case_exact => Some(x.cmp(y)),
        (_, Value::String(x), Value::String(y)) => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        (_, Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (_, Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        _ => None,
    }
}

fn compare(attr: &Attr, op: Op, actual: &Value, expected: &Value) -> bool {
    if let (Some(a), Some(e)) = (actual.as_str(), expected.as_str())
        && matches!(op, Op::Co | Op::Sw | Op::Ew)
        && attr.kind != Type::DateTime
    {
        let (a, e) = if attr.case_exact {
            (a.to_owned(), e.to_owned())
        } else {
            (a.to_lowercase(), e.to_lowercase())
        };
        return match op {
            Op::Co => a.contains(&e),
            Op::Sw => a.starts_with(&e),
            _ => a.ends_with(&e),
        };
    }
    let Some(o) = order(attr, actual, expected) else {
        return false;
    };
    match op {
        Op::Eq => o == Ordering::Equal,
        Op::Ne => o != Ordering::Equal,
        Op::Gt => o == Ordering::Greater,
        Op::Ge => o != Ordering::Less,
        Op::Lt => o == Ordering::Less,
        Op::Le => o != Ordering::Greater,
        Op::Co | Op::Sw | Op::Ew => false,
    }
}

/// Whether a (checked) filter matches in `scope`.
pub(crate) fn matches(filter: &Filter, scope: Scope<'_>) -> bool {
    match filter {
        Filter::And(a, b) => matches(a, scope) && matches(b, scope),
        Filter::Or(a, b) => matches(a, scope) || matches(b, scope),
        Filter::Not(a) => !matches(a, scope),
        Filter::Present(path) => {
            lookup(scope, path, true).is_ok_and(|(_, values)| values.into_iter().any(present))
        }
        Filter::Has(path, inner) => {
            let Ok(attr) = element_attr(scope, path) else {
                return false;
            };
            let Ok((_, values)) = lookup(scope, path, true) else {
                return false;
            };
            values
                .into_iter()
                .filter_map(Value::as_object)
                .any(|element| matches(inner, Scope::Element(attr, element)))
        }
        Filter::Compare(path, op, expected) => {
            let Ok((attr, values)) = lookup(scope, path, false) else {
                return false;
            };
            let values: Vec<&Value> = values.into_iter().filter(|v| present(v)).collect();
            match (op, expected) {
                (Op::Eq, Value::Null) => values.is_empty(),
                (Op::Ne, Value::Null) => !values.is_empty(),
                // `ne` is the negation of `eq`: an absent attribute is not equal.
                (Op::Ne, _) => !values.iter().any(|v| compare(attr, Op::Eq, v, expected)),
                _ => values.iter().any(|v| compare(attr, *op, v, expected)),
            }
        }
    }
}

/// A filter made only of `eq` comparisons joined by `and` (`type eq "work"`), as the attribute
/// values an element must have to match it; `None` for any other filter.
pub(crate) fn equalities(filter: &Filter) -> Option<Vec<(String, Value)>> {
    match filter {
        Filter::Compare(path, Op::Eq, v) if !v.is_null() => Some(vec![(path.clone(), v.clone())]),
        Filter::And(a, b) => {
            let mut all = equalities(a)?;
            all.extend(equalities(b)?);
            Some(all)
        }
        _ => None,
    }
}

/// The first value `path` has in a resource, to sort by, with its attribute.
pub(crate) fn sort_key<'a>(
    resource: Resource,
    map: &'a Map<String, Value>,
    path: &str,
) -> Result<(&'static Attr, Option<&'a Value>), String> {
    let (attr, values) = lookup(Scope::Resource(resource, map), path, false)?;
    if attr.kind == Type::Complex {
        return Err(format!(
            "{path} is complex: sort by one of its sub-attributes"
        ));
    }
    Ok((attr, values.into_iter().find(|v| present(v))))
}
