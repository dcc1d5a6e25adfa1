//! A search's clauses as a test on one version's index rows (its manifest), for the clauses
//! whose SQL is a plain comparison of index columns: a token's code and system, a
//! reference's target, a date with a prefix. A walk over the sort parameter's index uses it
//! to test the versions it meets one by one, instead of first collecting every match of the
//! clauses (a year of 5-minute glucose readings is 105,000 of them).
//!
//! Each test means what the planner's SQL for the same clause means (`value_cond`,
//! `token_cond`, `date_cond`): the store suite runs sorted walks both ways and compares.

use phr_search::{Micros, Prefix, QueryValue, SearchQuery, TokenSystem};

use super::rows::Row;

/// The ids an engine stores names under.
pub(crate) trait Names {
    type Error;
    /// The parameters whose rows hold `name`'s values (several for a stored union); none
    /// when nothing was ever stored under it.
    fn params(&self, resource_type: &str, name: &str) -> Result<Vec<i64>, Self::Error>;
    /// A code system's id; None when nothing was ever stored with it.
    fn system(&self, uri: &str) -> Result<Option<i64>, Self::Error>;
    /// A resource type's id; None when nothing was ever stored with it.
    fn resource_type(&self, name: &str) -> Result<Option<i64>, Self::Error>;
}

/// Every clause must hold (AND).
#[derive(Debug, Clone)]
pub(crate) struct RowTest {
    pub(crate) clauses: Vec<ClauseTest>,
}

/// One clause: some row of one of `params` matches one of `values` (OR). No values: the
/// clause matches nothing (every value named an unknown system or type).
#[derive(Debug, Clone)]
pub(crate) struct ClauseTest {
    pub(crate) params: Vec<i64>,
    pub(crate) values: Vec<ValueTest>,
}

#[derive(Debug, Clone)]
pub(crate) enum ValueTest {
    /// `code` when given; `sys` when the search names a system (0: no system).
    Token {
        code: Option<String>,
        sys: Option<i64>,
    },
    /// Each part when given: the target's id, its type, its canonical url.
    Reference {
        target_id: Option<String>,
        ttype: Option<i64>,
        url: Option<String>,
    },
    /// A stored period against the searched one, both inclusive (`ap` is not offered: its
    /// window moves with the clock).
    Date {
        prefix: Prefix,
        low: Micros,
        high: Micros,
    },
}

/// What a searched value becomes.
enum Made {
    Test(ValueTest),
    /// It matches nothing (an unknown system or type; nothing to compare): the SQL leaves
    /// it out of the clause's OR.
    Never,
    /// No test expresses it.
    Unsupported,
}

impl RowTest {
    /// The query's clauses as a test, when every clause is one a test expresses: no
    /// modifier or chain; token, reference and date values (not `ap`). Values the SQL leaves
    /// out (an unknown system or type) are left out here too.
    pub(crate) fn of<N: Names>(
        query: &SearchQuery,
        names: &N,
    ) -> Result<Option<RowTest>, N::Error> {
        let mut clauses = Vec::with_capacity(query.clauses.len());
        for clause in &query.clauses {
            if clause.modifier.is_some() || clause.chain.is_some() {
                return Ok(None);
            }
            let params = names.params(&query.resource_type, &clause.param)?;
            if params.is_empty() {
                return Ok(None);
            }
            let mut values = Vec::with_capacity(clause.values.len());
            for value in &clause.values {
                match ValueTest::of(value, names)? {
                    Made::Test(test) => values.push(test),
                    Made::Never => {}
                    Made::Unsupported => return Ok(None),
                }
            }
            clauses.push(ClauseTest { params, values });
        }
        Ok(Some(RowTest { clauses }))
    }

    pub(crate) fn matches(&self, rows: &[Row]) -> bool {
        self.clauses.iter().all(|clause| clause.matches(rows))
    }
}

impl ClauseTest {
    fn matches(&self, rows: &[Row]) -> bool {
        rows.iter().any(|row| {
            row_param(row).is_some_and(|p| self.params.contains(&p))
                && self.values.iter().any(|value| value.matches(row))
        })
    }
}

fn row_param(row: &Row) -> Option<i64> {
    match row {
        Row::Token { param, .. }
        | Row::String { param, .. }
        | Row::Date { param, .. }
        | Row::Number { param, .. }
        | Row::Quantity { param, .. }
        | Row::Reference { param, .. }
        | Row::Uri { param, .. }
        | Row::Composite { param, .. } => Some(*param),
        Row::CodeDate { .. } => None,
    }
}

impl ValueTest {
    fn of<N: Names>(value: &QueryValue, names: &N) -> Result<Made, N::Error> {
        let test = match value {
            QueryValue::Token { system, code } => {
                let sys = match system {
                    Some(TokenSystem::Is(s)) => match names.system(s)? {
                        Some(sys) => Some(sys),
                        None => return Ok(Made::Never),
                    },
                    Some(TokenSystem::None) => Some(0),
                    None => None,
                };
                (code.is_some() || sys.is_some()).then(|| ValueTest::Token {
                    code: code.clone(),
                    sys,
                })
            }
            QueryValue::Reference {
                target_type,
                id,
                url,
                ..
            } => {
                let (target_id, ttype) = match (id.is_empty(), target_type) {
                    (true, _) => (None, None),
                    (false, None) => (Some(id.clone()), None),
                    (false, Some(t)) => match names.resource_type(t)? {
                        Some(ttype) => (Some(id.clone()), Some(ttype)),
                        None => return Ok(Made::Never),
                    },
                };
                (target_id.is_some() || url.is_some()).then(|| ValueTest::Reference {
                    target_id,
                    ttype,
                    url: url.clone(),
                })
            }
            QueryValue::Date { prefix, low, high } if *prefix != Prefix::Ap => {
                Some(ValueTest::Date {
                    prefix: *prefix,
                    low: *low,
                    high: *high,
                })
            }
            _ => return Ok(Made::Unsupported),
        };
        Ok(test.map_or(Made::Never, Made::Test))
    }

    fn matches(&self, row: &Row) -> bool {
        match (self, row) {
            (
                ValueTest::Token { code, sys },
                Row::Token {
                    code: c, sys: s, ..
                },
            ) => code.as_ref().is_none_or(|code| code == c) && sys.is_none_or(|sys| sys == *s),
            (
                ValueTest::Reference {
                    target_id,
                    ttype,
                    url,
                },
                Row::Reference {
                    target_id: t,
                    ttype: tt,
                    url: u,
                    ..
                },
            ) => {
                target_id.as_ref().is_none_or(|id| id == t)
                    && ttype.is_none_or(|ty| ty == *tt)
                    && url.as_ref().is_none_or(|url| url == u)
            }
            (
                ValueTest::Date { prefix, low, high },
                Row::Date {
                    low: l, high: h, ..
                },
            ) => date_matches(*prefix, *low, *high, *l, *h),
            _ => false,
        }
    }
}

/// `date_cond` for a stored period [low, high] against the searched period [sl, sh]; the
/// "no date" sentinel (low > high) matches nothing. `ap` never matches: it is not offered.
fn date_matches(prefix: Prefix, sl: Micros, sh: Micros, low: Micros, high: Micros) -> bool {
    let eq = low >= sl && high <= sh;
    low <= high
        && match prefix {
            Prefix::Eq => eq,
            Prefix::Ne => !eq,
            Prefix::Gt => high > sh,
            Prefix::Lt => low < sl,
            Prefix::Ge => high > sh || eq,
            Prefix::Le => low < sl || eq,
            Prefix::Sa => low > sh,
            Prefix::Eb => high < sl,
            Prefix::Ap => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(param: i64, code: &str, sys: i64) -> Row {
        Row::Token {
            param,
            code: code.into(),
            sys,
            text: None,
        }
    }

    fn date(param: i64, low: Micros, high: Micros) -> Row {
        Row::Date { param, low, high }
    }

    #[test]
    fn a_token_value_tests_only_what_the_search_names() {
        let rows = [token(1, "a", 7)];
        let test = |code: Option<&str>, sys: Option<i64>| {
            ClauseTest {
                params: vec![1],
                values: vec![ValueTest::Token {
                    code: code.map(str::to_owned),
                    sys,
                }],
            }
            .matches(&rows)
        };
        assert!(test(Some("a"), Some(7)));
        assert!(test(Some("a"), None));
        assert!(test(None, Some(7)));
        assert!(!test(Some("a"), Some(0)));
        assert!(!test(Some("b"), None));
    }

    #[test]
    fn a_clause_reads_only_its_own_parameters_rows() {
        let rows = [token(1, "a", 7), date(2, 10, 20)];
        let code_a = ValueTest::Token {
            code: Some("a".into()),
            sys: None,
        };
        let on = |params: Vec<i64>| {
            ClauseTest {
                params,
                values: vec![code_a.clone()],
            }
            .matches(&rows)
        };
        assert!(on(vec![1]));
        assert!(on(vec![3, 1]));
        assert!(!on(vec![2]));
        // No values: nothing matches.
        assert!(
            !ClauseTest {
                params: vec![1],
                values: vec![]
            }
            .matches(&rows)
        );
    }

    #[test]
    fn clauses_are_anded_and_values_ored() {
        let rows = [token(1, "a", 7), date(2, 10, 20)];
        let code = |c: &str| ValueTest::Token {
            code: Some(c.into()),
            sys: None,
        };
        let after = |at| ValueTest::Date {
            prefix: Prefix::Ge,
            low: at,
            high: at,
        };
        let test = |codes: Vec<ValueTest>, dates: Vec<ValueTest>| {
            RowTest {
                clauses: vec![
                    ClauseTest {
                        params: vec![1],
                        values: codes,
                    },
                    ClauseTest {
                        params: vec![2],
                        values: dates,
                    },
                ],
            }
            .matches(&rows)
        };
        assert!(test(vec![code("b"), code("a")], vec![after(15)]));
        assert!(!test(vec![code("b")], vec![after(15)]));
        assert!(!test(vec![code("a")], vec![after(30)]));
        assert!(test(vec![code("a")], vec![after(30), after(5)]));
    }

    #[test]
    fn date_prefixes_compare_periods_as_the_sql_does() {
        // A stored period [10, 20] against searched periods.
        let m = |prefix, sl, sh| date_matches(prefix, sl, sh, 10, 20);
        assert!(m(Prefix::Eq, 10, 20) && m(Prefix::Eq, 0, 30) && !m(Prefix::Eq, 15, 30));
        assert!(m(Prefix::Ne, 15, 30) && !m(Prefix::Ne, 0, 30));
        assert!(m(Prefix::Gt, 0, 19) && !m(Prefix::Gt, 0, 20));
        assert!(m(Prefix::Lt, 11, 30) && !m(Prefix::Lt, 10, 30));
        assert!(m(Prefix::Ge, 0, 19) && m(Prefix::Ge, 10, 20) && !m(Prefix::Ge, 21, 30));
        assert!(m(Prefix::Le, 11, 30) && m(Prefix::Le, 10, 20) && !m(Prefix::Le, 0, 9));
        assert!(m(Prefix::Sa, 0, 9) && !m(Prefix::Sa, 0, 10));
        assert!(m(Prefix::Eb, 21, 30) && !m(Prefix::Eb, 20, 30));
        assert!(!m(Prefix::Ap, 10, 20));
        // The "no date" sentinel matches no prefix.
        assert!(!date_matches(Prefix::Ne, 0, 5, 20, 10));
    }

    #[test]
    fn a_reference_value_tests_id_type_and_url_when_given() {
        let rows = [Row::Reference {
            param: 1,
            target_id: "p1".into(),
            ttype: 3,
            url: String::new(),
            version: None,
        }];
        let test = |target_id: Option<&str>, ttype: Option<i64>, url: Option<&str>| {
            ClauseTest {
                params: vec![1],
                values: vec![ValueTest::Reference {
                    target_id: target_id.map(str::to_owned),
                    ttype,
                    url: url.map(str::to_owned),
                }],
            }
            .matches(&rows)
        };
        assert!(test(Some("p1"), Some(3), None));
        assert!(test(Some("p1"), None, None));
        assert!(test(Some("p1"), None, Some("")));
        assert!(!test(Some("p1"), Some(4), None));
        assert!(!test(Some("p2"), None, None));
        assert!(!test(None, None, Some("http://x")));
    }
}
