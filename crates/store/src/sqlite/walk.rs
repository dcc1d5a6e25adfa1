//! A sort by a parameter that is not the driver's, read by walking that parameter's index
//! rows in sort order: the walk both engines run over their own plans and rows.
//!
//! Phase 1 reads the parameter's rows, keeping each version once, at the row that holds its
//! sort key (the smallest value ascending, the largest descending: a version may have
//! several, checked on its manifest). Phase 2 reads the matches without any value, last in
//! either direction. Cursor keys start with the phase (1 or 2).

use std::collections::HashSet;

use rusqlite::types::Value;

use super::cursor::{Cursor, Direction};
use super::row_test::RowTest;
use super::rows::{Kind, Row};
use super::search::walk_key;
use crate::StoreError;

/// A walk over plans of type `P` (each engine has its own).
#[derive(Clone)]
pub(crate) struct Walk<P> {
    /// The parameter's rows, restricted to the matches of the clauses.
    pub(crate) rows: P,
    /// The parameters whose rows hold the sort key (several for a `stored_union`).
    pub(crate) params: Vec<i64>,
    pub(crate) kind: Kind,
    pub(crate) descending: bool,
    /// The matches without a value, in the unsorted plan's order.
    pub(crate) rest: P,
    /// Read before `rows` when every clause has a [`RowTest`].
    pub(crate) probe: Option<Probe<P>>,
}

/// The walk's rows without the clauses, each version met tested on its own index rows
/// instead: `rows` first collects every match of the clauses (for a year of 5-minute
/// glucose, 105,000 of them) to test against, while matches that are dense among the sort
/// parameter's rows fill a page after a few hundred. The probe reads rows up to a budget
/// (see [`probe_budget`]), then the walk goes on with `rows` from where the probe stopped.
#[derive(Clone)]
pub(crate) struct Probe<P> {
    pub(crate) rows: P,
    pub(crate) test: RowTest,
}

/// Testing a version on its rows costs about as much as collecting this many matches
/// (estimated from the walks over a year of 5-minute glucose: about 3.7 µs a version,
/// 0.22 µs a match).
const MATCHES_PER_PROBED_ROW: u64 = 16;
/// Without a count of the matches, the probe reads at most this many rows per row of the
/// page: matches sparser than that among the sort parameter's rows are collected.
const PROBE_ROWS_PER_MATCH: usize = 8;
/// How much each chunk of rows grows on the last. A probe's query is cheap to start again,
/// so its chunks grow slowly and it reads few rows past the page's last; the collected
/// walk's query builds its list of matches anew each time, so its chunks grow fast.
const PROBE_CHUNK_GROWTH: usize = 2;
const COLLECTED_CHUNK_GROWTH: usize = 4;

/// How many rows the probe reads before the walk collects the matches. With the matches
/// counted, as many as cost what collecting them would, so that a walk costs at most
/// about twice the cheaper way whether the matches are dense or sparse.
fn probe_budget(matches: Option<u64>, limit: usize) -> usize {
    match matches {
        Some(n) => usize::try_from(n / MATCHES_PER_PROBED_ROW).unwrap_or(usize::MAX),
        None => limit.saturating_mul(PROBE_ROWS_PER_MATCH),
    }
}

/// What a walk needs from an engine.
pub(crate) trait WalkReader {
    type Plan;
    type Row;
    type Error: From<StoreError>;
    /// Up to `limit` rows of `plan` in its order (reversed when `backward`), strictly after
    /// the keys `after` when given.
    fn rows(
        &mut self,
        plan: &Self::Plan,
        after: Option<&[Value]>,
        backward: bool,
        limit: usize,
    ) -> Result<Vec<Self::Row>, Self::Error>;
    /// How many of a row's keys are the sort key (the rest is the tie break).
    fn sort_width(plan: &Self::Plan) -> usize;
    /// A row's keys: the sort key, then the tie break.
    fn keys(row: &Self::Row) -> &[Value];
    /// The row with its phase in front of its keys.
    fn with_phase(row: Self::Row, phase: i64) -> Self::Row;
    /// The sequence number of the row's version.
    fn seq(row: &Self::Row) -> Result<i64, Self::Error>;
    /// The manifest of the row's version.
    fn manifest(&mut self, row: &Self::Row) -> Result<Vec<Row>, Self::Error>;
}

/// Up to `limit` rows of a walk's page from `cursor`: phase 1, then phase 2 (reversed when
/// `backward`). `matches`: how many versions match, when counted.
pub(crate) fn walk_rows<R: WalkReader>(
    reader: &mut R,
    walk: &Walk<R::Plan>,
    cursor: &Cursor,
    backward: bool,
    limit: usize,
    matches: Option<u64>,
) -> Result<Vec<R::Row>, R::Error> {
    let phases: [i64; 2] = if backward { [2, 1] } else { [1, 2] };
    let (start, after) = match cursor.direction {
        Direction::Start => (phases[0], None),
        _ => match cursor.keys.split_first() {
            Some((Value::Integer(p @ (1 | 2)), rest)) => (*p, Some(rest.to_vec())),
            _ => return Err(StoreError::BadCursor.into()),
        },
    };
    let mut page = WalkPage {
        after,
        seen: HashSet::new(),
        out: Vec::new(),
        backward,
        limit,
    };
    let skip = phases.iter().position(|p| *p == start).unwrap_or(0);
    for &phase in phases.iter().skip(skip) {
        if phase == 2 {
            let rows = reader.rows(
                &walk.rest,
                page.after.as_deref(),
                backward,
                limit - page.out.len(),
            )?;
            page.out
                .extend(rows.into_iter().map(|r| R::with_phase(r, 2)));
        } else {
            let mut go_on = true;
            if let Some(probe) = &walk.probe {
                let budget = probe_budget(matches, limit);
                go_on = walk_chunks(
                    reader,
                    walk,
                    &probe.rows,
                    Some(&probe.test),
                    budget,
                    &mut page,
                )?;
            }
            if go_on {
                walk_chunks(reader, walk, &walk.rows, None, usize::MAX, &mut page)?;
            }
        }
        if page.out.len() >= limit {
            break;
        }
        page.after = None;
    }
    Ok(page.out)
}

/// A walk's page as it fills: the keys of the last row read, the versions met, the rows kept.
struct WalkPage<T> {
    after: Option<Vec<Value>>,
    seen: HashSet<i64>,
    out: Vec<T>,
    backward: bool,
    limit: usize,
}

/// Reads `plan`'s rows in growing chunks strictly after `page.after` (which follows the last
/// row read), keeping each version once, at the row that holds its sort key, if it passes
/// `test`. Stops when the page is full or the rows run out (false), or when `budget` rows
/// were read (true: the page may go on from `page.after`).
fn walk_chunks<R: WalkReader>(
    reader: &mut R,
    walk: &Walk<R::Plan>,
    plan: &R::Plan,
    test: Option<&RowTest>,
    budget: usize,
    page: &mut WalkPage<R::Row>,
) -> Result<bool, R::Error> {
    let width = R::sort_width(&walk.rows);
    let mut chunk = (page.limit * 2).max(64);
    let mut read = 0usize;
    while page.out.len() < page.limit {
        let left = budget.saturating_sub(read);
        if left == 0 {
            return Ok(true);
        }
        let want = chunk.min(left);
        let rows = reader.rows(plan, page.after.as_deref(), page.backward, want)?;
        let got = rows.len();
        read += got;
        let last = rows.last().map(|r| R::keys(r).to_vec());
        for row in rows {
            let seq = R::seq(&row)?;
            if page.seen.contains(&seq) {
                continue;
            }
            let manifest = reader.manifest(&row)?;
            let key = walk_key(&manifest, &walk.params, walk.kind, walk.descending);
            if key.as_deref() != R::keys(&row).get(..width) {
                continue;
            }
            page.seen.insert(seq);
            if test.is_none_or(|t| t.matches(&manifest)) {
                page.out.push(R::with_phase(row, 1));
                if page.out.len() >= page.limit {
                    return Ok(false);
                }
            }
        }
        page.after = last;
        if got < want {
            return Ok(false);
        }
        chunk = chunk.saturating_mul(if test.is_some() {
            PROBE_CHUNK_GROWTH
        } else {
            COLLECTED_CHUNK_GROWTH
        });
    }
    Ok(false)
}
