//! Index rows: how an [`IndexEntry`] becomes a row of one of the typed index tables, and the
//! per-version manifest (a compact binary list of the version's rows) that lets the writer
//! find those rows again by primary key when the version is superseded or erased, and lets
//! `_include` read a version's references without scanning.

use phr_search::{IndexValue, Micros};
use rusqlite::{Connection, params};

use super::EngineError;

/// Which index table a parameter's values live in (stored in `param_kinds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Token = 1,
    String = 2,
    Date = 3,
    Number = 4,
    Quantity = 5,
    Reference = 6,
    Uri = 7,
    Composite = 8,
}

impl Kind {
    /// Every kind, one index table each.
    pub const ALL: [Kind; 8] = [
        Kind::Token,
        Kind::String,
        Kind::Date,
        Kind::Number,
        Kind::Quantity,
        Kind::Reference,
        Kind::Uri,
        Kind::Composite,
    ];

    pub fn from_i64(v: i64) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| *kind as i64 == v)
    }

    pub fn table(self) -> &'static str {
        match self {
            Kind::Token => "idx_token",
            Kind::String => "idx_string",
            Kind::Date => "idx_date",
            Kind::Number => "idx_number",
            Kind::Quantity => "idx_quantity",
            Kind::Reference => "idx_reference",
            Kind::Uri => "idx_uri",
            Kind::Composite => "idx_composite",
        }
    }
}

/// The second component of a two-component composite.
#[derive(Debug, Clone, PartialEq)]
pub enum Second {
    Token {
        sys: i64,
        code: String,
    },
    Number {
        value: f64,
        low: f64,
        high: f64,
        sys: i64,
        code: String,
    },
    Date {
        low: Micros,
        high: Micros,
    },
    Text(String),
}

/// One index row without its (pid, tid, seq), which come from the version.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    Token {
        param: i64,
        code: String,
        sys: i64,
        text: Option<String>,
    },
    String {
        param: i64,
        norm: String,
        exact: String,
    },
    Date {
        param: i64,
        low: Micros,
        high: Micros,
    },
    Number {
        param: i64,
        value: f64,
        low: f64,
        high: f64,
    },
    Quantity {
        param: i64,
        sys: i64,
        code: String,
        value: f64,
        low: f64,
        high: f64,
        unit: Option<String>,
    },
    Reference {
        param: i64,
        target_id: String,
        ttype: i64,
        url: String,
        version: Option<String>,
    },
    Uri {
        param: i64,
        uri: String,
    },
    Composite {
        param: i64,
        code1: String,
        sys1: i64,
        ord: i64,
        second: Second,
    },
    CodeDate {
        tparam: i64,
        dparam: i64,
        code: String,
        sys: i64,
        low: Micros,
        high: Micros,
        /// Not part of the row's key, so not in the manifest (decoded as None).
        value: Option<InlineValue>,
    },
}

/// The parameter whose quantity a code x date row carries inline.
pub const INLINE_VALUE_PARAM: &str = "code-value-quantity";

/// The one quantity that a version's [`INLINE_VALUE_PARAM`] pairs with a code x date row's
/// code, kept on that row so that a chart's aggregate reads values without joining
/// `idx_composite`. A row gets none when the version has no such quantity or several (an
/// aggregate then joins, as for rows written before the columns existed).
#[derive(Debug, Clone, PartialEq)]
pub struct InlineValue {
    /// The unit's system and code.
    pub sys: i64,
    pub code: String,
    pub value: f64,
}

/// The quantity of `rows`' only `param` composite row for (`code`, `sys`), if there is
/// exactly one.
fn only_quantity(rows: &[Row], param: i64, code: &str, sys: i64) -> Option<InlineValue> {
    let mut matches = rows.iter().filter_map(|row| match row {
        Row::Composite {
            param: p,
            code1,
            sys1,
            second:
                Second::Number {
                    value,
                    sys: unit_sys,
                    code: unit,
                    ..
                },
            ..
        } if *p == param && code1 == code && *sys1 == sys => Some(InlineValue {
            sys: *unit_sys,
            code: unit.clone(),
            value: *value,
        }),
        _ => None,
    });
    let only = matches.next()?;
    matches.next().is_none().then_some(only)
}

impl Row {
    pub fn param_kind(&self) -> Option<(i64, Kind)> {
        Some(match self {
            Row::Token { param, .. } => (*param, Kind::Token),
            Row::String { param, .. } => (*param, Kind::String),
            Row::Date { param, .. } => (*param, Kind::Date),
            Row::Number { param, .. } => (*param, Kind::Number),
            Row::Quantity { param, .. } => (*param, Kind::Quantity),
            Row::Reference { param, .. } => (*param, Kind::Reference),
            Row::Uri { param, .. } => (*param, Kind::Uri),
            Row::Composite { param, .. } => (*param, Kind::Composite),
            Row::CodeDate { .. } => return None,
        })
    }
}

/// Names the writer must intern before an entry becomes a row.
pub trait Interner {
    fn param(&mut self, name: &str) -> Result<i64, EngineError>;
    fn system(&mut self, uri: Option<&str>) -> Result<i64, EngineError>;
    fn resource_type(&mut self, name: &str) -> Result<i64, EngineError>;
}

/// Turns one entry into rows (a composite may yield none when its shape is not storable).
pub fn entry_rows(
    param: i64,
    value: &IndexValue,
    ord: &mut i64,
    names: &mut dyn Interner,
    out: &mut Vec<Row>,
) -> Result<(), EngineError> {
    match value {
        IndexValue::Token { system, code, text } => out.push(Row::Token {
            param,
            code: code.clone().unwrap_or_default(),
            sys: names.system(system.as_deref())?,
            text: text.as_ref().map(|t| phr_search_normalize(t)),
        }),
        IndexValue::String { normalized, exact } => out.push(Row::String {
            param,
            norm: normalized.clone(),
            exact: exact.clone(),
        }),
        IndexValue::Date { low, high } => out.push(Row::Date {
            param,
            low: *low,
            high: *high,
        }),
        IndexValue::Number { value, low, high } => {
            if value.is_finite() {
                out.push(Row::Number {
                    param,
                    value: *value,
                    low: *low,
                    high: *high,
                })
            }
        }
        IndexValue::Quantity {
            value,
            low,
            high,
            system,
            code,
            unit,
        } => {
            if value.is_finite() {
                out.push(Row::Quantity {
                    param,
                    sys: names.system(system.as_deref())?,
                    code: code.clone().unwrap_or_default(),
                    value: *value,
                    low: *low,
                    high: *high,
                    unit: unit.clone(),
                })
            }
        }
        IndexValue::Reference {
            target_type,
            id,
            version,
            url,
        } => out.push(Row::Reference {
            param,
            target_id: id.clone(),
            ttype: match target_type {
                Some(t) => names.resource_type(t)?,
                None => 0,
            },
            url: url.clone().unwrap_or_default(),
            version: version.clone(),
        }),
        IndexValue::Uri(uri) => out.push(Row::Uri {
            param,
            uri: uri.clone(),
        }),
        IndexValue::Composite(parts) => {
            let [IndexValue::Token { system, code, .. }, second] = parts.as_slice() else {
                return Ok(());
            };
            let second = match second {
                IndexValue::Token { system, code, .. } => Second::Token {
                    sys: names.system(system.as_deref())?,
                    code: code.clone().unwrap_or_default(),
                },
                IndexValue::Quantity {
                    value,
                    low,
                    high,
                    system,
                    code,
                    ..
                } => Second::Number {
                    value: *value,
                    low: *low,
                    high: *high,
                    sys: names.system(system.as_deref())?,
                    code: code.clone().unwrap_or_default(),
                },
                IndexValue::Number { value, low, high } => Second::Number {
                    value: *value,
                    low: *low,
                    high: *high,
                    sys: 0,
                    code: String::new(),
                },
                IndexValue::Date { low, high } => Second::Date {
                    low: *low,
                    high: *high,
                },
                IndexValue::String { normalized, .. } => Second::Text(normalized.clone()),
                _ => return Ok(()),
            };
            *ord += 1;
            out.push(Row::Composite {
                param,
                code1: code.clone().unwrap_or_default(),
                sys1: names.system(system.as_deref())?,
                ord: *ord,
                second,
            });
        }
    }
    Ok(())
}

/// Every index row of a new version: `_id` and `_lastUpdated` from the version itself, the
/// caller's entries except those of a `Registry::stored_union` parameter, and for the
/// configured code x date `pairs` of its type (token param, date param) the pair rows.
pub fn version_rows(
    new: &crate::NewVersion,
    id_param: i64,
    last_updated_param: i64,
    pairs: &[(i64, i64)],
    names: &mut dyn Interner,
) -> Result<Vec<Row>, EngineError> {
    let mut rows = Vec::with_capacity(new.index.len() + 4);
    // `_id` and `_lastUpdated` come from the version itself, not from the caller.
    rows.push(Row::Token {
        param: id_param,
        code: new.id.clone(),
        sys: 0,
        text: None,
    });
    rows.push(Row::Date {
        param: last_updated_param,
        low: new.last_updated,
        high: new.last_updated,
    });
    let mut ord = 0;
    let mut inline_param = None;
    let registry = phr_search::Registry::global();
    for entry in &new.index {
        if entry.param == "_id"
            || entry.param == "_lastUpdated"
            // Searches read the rows of the parameters a union unites.
            || registry
                .stored_union(&new.resource_type, &entry.param)
                .is_some()
        {
            continue;
        }
        let param = names.param(&entry.param)?;
        if entry.param == INLINE_VALUE_PARAM {
            inline_param = Some(param);
        }
        entry_rows(param, &entry.value, &mut ord, names, &mut rows)?;
    }
    if !pairs.is_empty() {
        // A resource without a value for a pair's date parameter still gets a row, with
        // the "no date" sentinel period [MAX, MIN] (low > high, matched by no date
        // condition, sorted last both ways), so pair and date drivers see every resource.
        for &(_, dparam) in pairs {
            let has_date = rows
                .iter()
                .any(|r| matches!(r, Row::Date { param, .. } if *param == dparam));
            if !has_date {
                rows.push(Row::Date {
                    param: dparam,
                    low: NO_DATE_LOW,
                    high: NO_DATE_HIGH,
                });
            }
        }
        let mut extra = Vec::new();
        for &(tparam, dparam) in pairs {
            for token in &rows {
                let Row::Token {
                    param, code, sys, ..
                } = token
                else {
                    continue;
                };
                if *param != tparam {
                    continue;
                }
                let value = inline_param.and_then(|p| only_quantity(&rows, p, code, *sys));
                for date in &rows {
                    if let Row::Date { param, low, high } = date
                        && *param == dparam
                    {
                        extra.push(Row::CodeDate {
                            tparam,
                            dparam,
                            code: code.clone(),
                            sys: *sys,
                            low: *low,
                            high: *high,
                            value: value.clone(),
                        });
                    }
                }
            }
        }
        rows.extend(extra);
    }
    Ok(rows)
}

/// Lower-cases and removes accents, the way the search crate normalizes strings. Kept here
/// (small and idempotent) so token display texts and query strings fold the same way.
pub fn phr_search_normalize(text: &str) -> String {
    text.chars().flat_map(fold_char).collect()
}

fn fold_char(c: char) -> impl Iterator<Item = char> {
    let base = match c {
        'à'..='å' | 'À'..='Å' => 'a',
        'è'..='ë' | 'È'..='Ë' => 'e',
        'ì'..='ï' | 'Ì'..='Ï' => 'i',
        'ò'..='ö' | 'Ò'..='Ö' => 'o',
        'ù'..='ü' | 'Ù'..='Ü' => 'u',
        'ý' | 'ÿ' | 'Ý' => 'y',
        'ç' | 'Ç' => 'c',
        'ñ' | 'Ñ' => 'n',
        'š' | 'Š' => 's',
        'ž' | 'Ž' => 'z',
        other => other,
    };
    base.to_lowercase()
}

const MAX: i64 = super::schema::CURRENT;

/// The period written for a resource that has no value for a single-valued date parameter
/// the engine drives searches by: low > high, so no date condition matches it, ascending
/// sorts (by low) and descending sorts (by high) both put it last.
pub const NO_DATE_LOW: i64 = i64::MAX;
pub const NO_DATE_HIGH: i64 = i64::MIN;

/// Inserts one row of version `seq`.
pub fn insert(conn: &Connection, pid: i64, tid: i64, seq: i64, row: &Row) -> rusqlite::Result<()> {
    match row {
        Row::Token { param, code, sys, text } => conn
            .prepare_cached(
                "INSERT OR IGNORE INTO idx_token (pid, tid, param, code, seq, sys, seq_to, text)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![pid, tid, param, code, seq, sys, MAX, text]),
        Row::String { param, norm, exact } => conn
            .prepare_cached(
                "INSERT OR IGNORE INTO idx_string (pid, tid, param, norm, seq, exact, seq_to)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![pid, tid, param, norm, seq, exact, MAX]),
        Row::Date { param, low, high } => conn
            .prepare_cached(
                "INSERT OR IGNORE INTO idx_date (pid, tid, param, low, seq, high, seq_to)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![pid, tid, param, low, seq, high, MAX]),
        Row::Number { param, value, low, high } => conn
            .prepare_cached(
                "INSERT OR IGNORE INTO idx_number (pid, tid, param, value, seq, low, high, seq_to)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![pid, tid, param, value, seq, low, high, MAX]),
        Row::Quantity { param, sys, code, value, low, high, unit } => conn
            .prepare_cached(
                "INSERT OR IGNORE INTO idx_quantity
                 (pid, tid, param, sys, code, value, seq, low, high, unit, seq_to)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![pid, tid, param, sys, code, value, seq, low, high, unit, MAX]),
        Row::Reference { param, target_id, ttype, url, version } => conn
            .prepare_cached(
                "INSERT OR IGNORE INTO idx_reference
                 (pid, tid, param, target_id, ttype, url, seq, version, seq_to)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![pid, tid, param, target_id, ttype, url, seq, version, MAX]),
        Row::Uri { param, uri } => conn
            .prepare_cached(
                "INSERT OR IGNORE INTO idx_uri (pid, tid, param, uri, seq, seq_to)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![pid, tid, param, uri, seq, MAX]),
        Row::Composite { param, code1, sys1, ord, second } => {
            let (k2, sys2, code2, num2, low2, high2, dlow2, dhigh2, text2) = match second {
                Second::Token { sys, code } => (1, Some(*sys), Some(code.as_str()), None, None, None, None, None, None),
                Second::Number { value, low, high, sys, code } => {
                    (2, Some(*sys), Some(code.as_str()), Some(*value), Some(*low), Some(*high), None, None, None)
                }
                Second::Date { low, high } => (3, None, None, None, None, None, Some(*low), Some(*high), None),
                Second::Text(t) => (4, None, None, None, None, None, None, None, Some(t.as_str())),
            };
            conn.prepare_cached(
                "INSERT OR IGNORE INTO idx_composite
                 (pid, tid, param, code1, sys1, seq, ord, k2, sys2, code2, num2, low2, high2,
                  dlow2, dhigh2, text2, seq_to)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            )?
            .execute(params![
                pid, tid, param, code1, sys1, seq, ord, k2, sys2, code2, num2, low2, high2, dlow2,
                dhigh2, text2, MAX
            ])
        }
        Row::CodeDate { tparam, dparam, code, sys, low, high, value } => conn
            .prepare_cached(
                "INSERT OR IGNORE INTO idx_code_date
                 (pid, tid, tparam, dparam, code, sys, low, seq, high, seq_to, usys, ucode, num)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                pid, tid, tparam, dparam, code, sys, low, seq, high, MAX,
                value.as_ref().map(|v| v.sys),
                value.as_ref().map(|v| v.code.as_str()),
                value.as_ref().map(|v| v.value)
            ]),
    }
    .map(|_| ())
}

/// The WHERE clause (by primary key) and its parameters for one row of version `seq`.
fn key(
    pid: i64,
    tid: i64,
    seq: i64,
    row: &Row,
) -> (&'static str, &'static str, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value as V;
    let base = |param: i64| vec![V::Integer(pid), V::Integer(tid), V::Integer(param)];
    match row {
        Row::Token {
            param, code, sys, ..
        } => {
            let mut v = base(*param);
            v.extend([V::Text(code.clone()), V::Integer(seq), V::Integer(*sys)]);
            (
                "idx_token",
                "pid = ?1 AND tid = ?2 AND param = ?3 AND code = ?4 AND seq = ?5 AND sys = ?6",
                v,
            )
        }
        Row::String { param, norm, exact } => {
            let mut v = base(*param);
            v.extend([
                V::Text(norm.clone()),
                V::Integer(seq),
                V::Text(exact.clone()),
            ]);
            (
                "idx_string",
                "pid = ?1 AND tid = ?2 AND param = ?3 AND norm = ?4 AND seq = ?5 AND exact = ?6",
                v,
            )
        }
        Row::Date { param, low, high } => {
            let mut v = base(*param);
            v.extend([V::Integer(*low), V::Integer(seq), V::Integer(*high)]);
            (
                "idx_date",
                "pid = ?1 AND tid = ?2 AND param = ?3 AND low = ?4 AND seq = ?5 AND high = ?6",
                v,
            )
        }
        Row::Number {
            param,
            value,
            low,
            high,
        } => {
            let mut v = base(*param);
            v.extend([
                V::Real(*value),
                V::Integer(seq),
                V::Real(*low),
                V::Real(*high),
            ]);
            (
                "idx_number",
                "pid = ?1 AND tid = ?2 AND param = ?3 AND value = ?4 AND seq = ?5 AND low = ?6 AND high = ?7",
                v,
            )
        }
        Row::Quantity {
            param,
            sys,
            code,
            value,
            ..
        } => {
            let mut v = base(*param);
            v.extend([
                V::Integer(*sys),
                V::Text(code.clone()),
                V::Real(*value),
                V::Integer(seq),
            ]);
            (
                "idx_quantity",
                "pid = ?1 AND tid = ?2 AND param = ?3 AND sys = ?4 AND code = ?5 AND value = ?6 AND seq = ?7",
                v,
            )
        }
        Row::Reference {
            param,
            target_id,
            ttype,
            url,
            ..
        } => {
            let mut v = base(*param);
            v.extend([
                V::Text(target_id.clone()),
                V::Integer(*ttype),
                V::Text(url.clone()),
                V::Integer(seq),
            ]);
            (
                "idx_reference",
                "pid = ?1 AND tid = ?2 AND param = ?3 AND target_id = ?4 AND ttype = ?5 AND url = ?6 AND seq = ?7",
                v,
            )
        }
        Row::Uri { param, uri } => {
            let mut v = base(*param);
            v.extend([V::Text(uri.clone()), V::Integer(seq)]);
            (
                "idx_uri",
                "pid = ?1 AND tid = ?2 AND param = ?3 AND uri = ?4 AND seq = ?5",
                v,
            )
        }
        Row::Composite {
            param,
            code1,
            sys1,
            ord,
            ..
        } => {
            let mut v = base(*param);
            v.extend([
                V::Text(code1.clone()),
                V::Integer(*sys1),
                V::Integer(seq),
                V::Integer(*ord),
            ]);
            (
                "idx_composite",
                "pid = ?1 AND tid = ?2 AND param = ?3 AND code1 = ?4 AND sys1 = ?5 AND seq = ?6 AND ord = ?7",
                v,
            )
        }
        Row::CodeDate {
            tparam,
            dparam,
            code,
            sys,
            low,
            high,
            ..
        } => {
            let v = vec![
                V::Integer(pid),
                V::Integer(tid),
                V::Integer(*tparam),
                V::Integer(*dparam),
                V::Text(code.clone()),
                V::Integer(*sys),
                V::Integer(*low),
                V::Integer(seq),
                V::Integer(*high),
            ];
            (
                "idx_code_date",
                "pid = ?1 AND tid = ?2 AND tparam = ?3 AND dparam = ?4 AND code = ?5 AND sys = ?6
                 AND low = ?7 AND seq = ?8 AND high = ?9",
                v,
            )
        }
    }
}

/// Marks a row of version `seq` as replaced by version `seq_to` (kept for open cursors).
pub fn supersede(
    conn: &Connection,
    pid: i64,
    tid: i64,
    seq: i64,
    row: &Row,
    seq_to: i64,
) -> rusqlite::Result<()> {
    let (table, cond, mut values) = key(pid, tid, seq, row);
    let n = values.len() + 1;
    values.push(rusqlite::types::Value::Integer(seq_to));
    let sql = format!("UPDATE {table} SET seq_to = ?{n} WHERE {cond}");
    conn.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(values))?;
    Ok(())
}

/// Physically deletes a row of version `seq`.
pub fn delete(conn: &Connection, pid: i64, tid: i64, seq: i64, row: &Row) -> rusqlite::Result<()> {
    let (table, cond, values) = key(pid, tid, seq, row);
    let sql = format!("DELETE FROM {table} WHERE {cond}");
    conn.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(values))?;
    Ok(())
}

// ---- manifest codec: tag byte, then the fields; integers are zigzag varints.

pub fn encode_manifest(rows: &[Row]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 16);
    for row in rows {
        match row {
            Row::Token {
                param,
                code,
                sys,
                text,
            } => {
                out.push(1);
                put_i(&mut out, *param);
                put_s(&mut out, code);
                put_i(&mut out, *sys);
                put_opt(&mut out, text.as_deref());
            }
            Row::String { param, norm, exact } => {
                out.push(2);
                put_i(&mut out, *param);
                put_s(&mut out, norm);
                put_s(&mut out, exact);
            }
            Row::Date { param, low, high } => {
                out.push(3);
                put_i(&mut out, *param);
                put_i(&mut out, *low);
                put_i(&mut out, *high);
            }
            Row::Number {
                param,
                value,
                low,
                high,
            } => {
                out.push(4);
                put_i(&mut out, *param);
                for f in [value, low, high] {
                    out.extend_from_slice(&f.to_le_bytes());
                }
            }
            Row::Quantity {
                param,
                sys,
                code,
                value,
                low,
                high,
                unit,
            } => {
                out.push(5);
                put_i(&mut out, *param);
                put_i(&mut out, *sys);
                put_s(&mut out, code);
                for f in [value, low, high] {
                    out.extend_from_slice(&f.to_le_bytes());
                }
                put_opt(&mut out, unit.as_deref());
            }
            Row::Reference {
                param,
                target_id,
                ttype,
                url,
                version,
            } => {
                out.push(6);
                put_i(&mut out, *param);
                put_s(&mut out, target_id);
                put_i(&mut out, *ttype);
                put_s(&mut out, url);
                put_opt(&mut out, version.as_deref());
            }
            Row::Uri { param, uri } => {
                out.push(7);
                put_i(&mut out, *param);
                put_s(&mut out, uri);
            }
            Row::Composite {
                param,
                code1,
                sys1,
                ord,
                second,
            } => {
                out.push(8);
                put_i(&mut out, *param);
                put_s(&mut out, code1);
                put_i(&mut out, *sys1);
                put_i(&mut out, *ord);
                match second {
                    Second::Token { sys, code } => {
                        out.push(1);
                        put_i(&mut out, *sys);
                        put_s(&mut out, code);
                    }
                    Second::Number {
                        value,
                        low,
                        high,
                        sys,
                        code,
                    } => {
                        out.push(2);
                        for f in [value, low, high] {
                            out.extend_from_slice(&f.to_le_bytes());
                        }
                        put_i(&mut out, *sys);
                        put_s(&mut out, code);
                    }
                    Second::Date { low, high } => {
                        out.push(3);
                        put_i(&mut out, *low);
                        put_i(&mut out, *high);
                    }
                    Second::Text(t) => {
                        out.push(4);
                        put_s(&mut out, t);
                    }
                }
            }
            Row::CodeDate {
                tparam,
                dparam,
                code,
                sys,
                low,
                high,
                ..
            } => {
                out.push(9);
                put_i(&mut out, *tparam);
                put_i(&mut out, *dparam);
                put_s(&mut out, code);
                put_i(&mut out, *sys);
                put_i(&mut out, *low);
                put_i(&mut out, *high);
            }
        }
    }
    out
}

pub fn decode_manifest(bytes: &[u8]) -> Result<Vec<Row>, EngineError> {
    let mut r = Reader { bytes, pos: 0 };
    let mut rows = Vec::new();
    while r.pos < bytes.len() {
        let tag = r.byte()?;
        let row = match tag {
            1 => Row::Token {
                param: r.i()?,
                code: r.s()?,
                sys: r.i()?,
                text: r.opt()?,
            },
            2 => Row::String {
                param: r.i()?,
                norm: r.s()?,
                exact: r.s()?,
            },
            3 => Row::Date {
                param: r.i()?,
                low: r.i()?,
                high: r.i()?,
            },
            4 => Row::Number {
                param: r.i()?,
                value: r.f()?,
                low: r.f()?,
                high: r.f()?,
            },
            5 => Row::Quantity {
                param: r.i()?,
                sys: r.i()?,
                code: r.s()?,
                value: r.f()?,
                low: r.f()?,
                high: r.f()?,
                unit: r.opt()?,
            },
            6 => Row::Reference {
                param: r.i()?,
                target_id: r.s()?,
                ttype: r.i()?,
                url: r.s()?,
                version: r.opt()?,
            },
            7 => Row::Uri {
                param: r.i()?,
                uri: r.s()?,
            },
            8 => {
                let (param, code1, sys1, ord) = (r.i()?, r.s()?, r.i()?, r.i()?);
                let second = match r.byte()? {
                    1 => Second::Token {
                        sys: r.i()?,
                        code: r.s()?,
                    },
                    2 => Second::Number {
                        value: r.f()?,
                        low: r.f()?,
                        high: r.f()?,
                        sys: r.i()?,
                        code: r.s()?,
                    },
                    3 => Second::Date {
                        low: r.i()?,
                        high: r.i()?,
                    },
                    4 => Second::Text(r.s()?),
                    _ => return Err(EngineError::Corrupt("composite kind")),
                };
                Row::Composite {
                    param,
                    code1,
                    sys1,
                    ord,
                    second,
                }
            }
            9 => Row::CodeDate {
                tparam: r.i()?,
                dparam: r.i()?,
                code: r.s()?,
                sys: r.i()?,
                low: r.i()?,
                high: r.i()?,
                value: None,
            },
            _ => return Err(EngineError::Corrupt("manifest tag")),
        };
        rows.push(row);
    }
    Ok(rows)
}

fn put_u(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_i(out: &mut Vec<u8>, v: i64) {
    put_u(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_s(out: &mut Vec<u8>, s: &str) {
    put_u(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_s(out, s);
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, EngineError> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or(EngineError::Corrupt("manifest ends early"))?;
        self.pos += 1;
        Ok(b)
    }

    fn u(&mut self) -> Result<u64, EngineError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(EngineError::Corrupt("varint too long"))
    }

    fn i(&mut self) -> Result<i64, EngineError> {
        let u = self.u()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn f(&mut self) -> Result<f64, EngineError> {
        let end = self.pos + 8;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(EngineError::Corrupt("manifest ends early"))?;
        self.pos = end;
        let mut b = [0u8; 8];
        b.copy_from_slice(slice);
        Ok(f64::from_le_bytes(b))
    }

    fn s(&mut self) -> Result<String, EngineError> {
        let len = usize::try_from(self.u()?).map_err(|_| EngineError::Corrupt("length"))?;
        let end = self
            .pos
            .checked_add(len)
            .ok_or(EngineError::Corrupt("length"))?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(EngineError::Corrupt("manifest ends early"))?;
        self.pos = end;
        String::from_utf8(slice.to_vec()).map_err(|_| EngineError::Corrupt("utf-8"))
    }

    fn opt(&mut self) -> Result<Option<String>, EngineError> {
        Ok(match self.byte()? {
            0 => None,
            _ => Some(self.s()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_every_row_kind() {
        let rows = vec![
            Row::Token {
                param: 1,
                code: "8867-4".into(),
                sys: 3,
                text: Some("heart rate".into()),
            },
            Row::String {
                param: 2,
                norm: "makinen".into(),
                exact: "Mäkinen".into(),
            },
            Row::Date {
                param: 3,
                low: -5,
                high: 1_700_000_000_000_000,
            },
            Row::Number {
                param: 4,
                value: 1.5,
                low: 1.45,
                high: 1.55,
            },
            Row::Quantity {
                param: 5,
                sys: 7,
                code: "kg".into(),
                value: 70.0,
                low: 69.95,
                high: 70.05,
                unit: None,
            },
            Row::Reference {
                param: 6,
                target_id: "p1".into(),
                ttype: 2,
                url: String::new(),
                version: Some("3".into()),
            },
            Row::Uri {
                param: 7,
                uri: "http://x".into(),
            },
            Row::Composite {
                param: 8,
                code1: "c".into(),
                sys1: 1,
                ord: 2,
                second: Second::Number {
                    value: 1.0,
                    low: 0.5,
                    high: 1.5,
                    sys: 9,
                    code: "mm[Hg]".into(),
                },
            },
            Row::Composite {
                param: 8,
                code1: "c".into(),
                sys1: 1,
                ord: 3,
                second: Second::Date { low: 1, high: 2 },
            },
            Row::CodeDate {
                tparam: 1,
                dparam: 3,
                code: "x".into(),
                sys: 3,
                low: 10,
                high: 20,
                value: None,
            },
        ];
        assert_eq!(
            decode_manifest(&encode_manifest(&rows)).expect("decodes"),
            rows
        );
    }

    #[test]
    fn manifest_keeps_a_code_date_rows_key_not_its_inline_value() {
        let row = |value| Row::CodeDate {
            tparam: 1,
            dparam: 3,
            code: "x".into(),
            sys: 3,
            low: 10,
            high: 20,
            value,
        };
        let with_value = row(Some(InlineValue {
            sys: 4,
            code: "mmol/L".into(),
            value: 5.5,
        }));
        assert_eq!(
            decode_manifest(&encode_manifest(&[with_value])).expect("decodes"),
            vec![row(None)]
        );
    }

    /// Interns names by order of first use, from 1.
    #[derive(Default)]
    struct Names(Vec<String>);

    impl Names {
        fn id(&mut self, name: &str) -> i64 {
            let at = match self.0.iter().position(|n| n == name) {
                Some(at) => at,
                None => {
                    self.0.push(name.to_string());
                    self.0.len() - 1
                }
            };
            at as i64 + 1
        }
    }

    impl Interner for Names {
        fn param(&mut self, name: &str) -> Result<i64, EngineError> {
            Ok(self.id(&format!("param {name}")))
        }
        fn system(&mut self, uri: Option<&str>) -> Result<i64, EngineError> {
            Ok(uri.map_or(0, |u| self.id(&format!("system {u}"))))
        }
        fn resource_type(&mut self, name: &str) -> Result<i64, EngineError> {
            Ok(self.id(&format!("type {name}")))
        }
    }

    /// The inline values of the code x date rows of an Observation with `codes` and one
    /// `code-value-quantity` entry per (code, value) of `values`.
    fn inline_values(codes: &[&str], values: &[(&str, f64)]) -> Vec<(String, Option<f64>)> {
        let token = |code: &str| IndexValue::Token {
            system: Some("http://loinc.org".into()),
            code: Some(code.into()),
            text: None,
        };
        let mut index = vec![phr_search::IndexEntry {
            param: "date".into(),
            value: IndexValue::Date { low: 5, high: 5 },
        }];
        for code in codes {
            index.push(phr_search::IndexEntry {
                param: "code".into(),
                value: token(code),
            });
        }
        for (code, value) in values {
            let quantity = IndexValue::Quantity {
                value: *value,
                low: *value,
                high: *value,
                system: Some("http://unitsofmeasure.org".into()),
                code: Some("mmol/L".into()),
                unit: None,
            };
            index.push(phr_search::IndexEntry {
                param: INLINE_VALUE_PARAM.into(),
                value: IndexValue::Composite(vec![token(code), quantity]),
            });
        }
        let new = crate::NewVersion {
            resource_type: "Observation".into(),
            id: "o1".into(),
            version: 1,
            last_updated: 7,
            body: vec![],
            patient: None,
            app: None,
            index,
        };
        let mut names = Names::default();
        let pair = (names.id("param code"), names.id("param date"));
        let (id, updated) = (names.id("param _id"), names.id("param _lastUpdated"));
        version_rows(&new, id, updated, &[pair], &mut names)
            .expect("rows")
            .into_iter()
            .filter_map(|row| match row {
                Row::CodeDate { code, value, .. } => Some((code, value.map(|v| v.value))),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_code_date_row_carries_its_codes_only_quantity() {
        assert_eq!(
            inline_values(&["a"], &[("a", 5.5)]),
            vec![("a".to_string(), Some(5.5))]
        );
        // A second code without a quantity of its own gets none.
        assert_eq!(
            inline_values(&["a", "b"], &[("a", 5.5)]),
            vec![("a".to_string(), Some(5.5)), ("b".to_string(), None)]
        );
        // Two quantities for one code: neither is the value, an aggregate joins.
        assert_eq!(
            inline_values(&["a"], &[("a", 5.5), ("a", 6.0)]),
            vec![("a".to_string(), None)]
        );
        assert_eq!(inline_values(&["a"], &[]), vec![("a".to_string(), None)]);
    }

    #[test]
    fn truncated_manifest_is_reported_as_corrupt() {
        let bytes = encode_manifest(&[Row::Uri {
            param: 7,
            uri: "http://x".into(),
        }]);
        assert!(decode_manifest(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn normalize_folds_case_and_finnish_letters() {
        assert_eq!(phr_search_normalize("Mäkinen ÅSTRÖM"), "makinen astrom");
    }
}
