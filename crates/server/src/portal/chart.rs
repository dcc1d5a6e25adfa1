//! Server-rendered SVG charts: lines (one or two series, with an optional target band) and
//! daily bars. No script and no inline styles (the Content-Security-Policy forbids both):
//! colours are presentation attributes. The chart is an image with a title and a textual
//! description; the table under it carries the same data for screen readers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use time::{Date, OffsetDateTime};

use super::format::helsinki;

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 44.0;
/// Lines are averaged into at most this many time buckets.
const MAX_LINE_POINTS: usize = 400;
/// Colours with at least 4.5:1 contrast on white.
pub const COLOURS: [&str; 2] = ["#005a9c", "#b3261e"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Line,
    Bars,
}

/// One measurement: when (Unix seconds) and a value per series (None when missing). An
/// aggregated interval also carries per series the lowest and highest value it holds
/// (`spread`), drawn as a band around the line of means.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Point {
    pub t: i64,
    pub values: Vec<Option<f64>>,
    pub spread: Vec<Option<(f64, f64)>>,
}

pub struct Spec {
    pub style: Style,
    pub series: usize,
    /// A target range drawn as a band (glucose 3.9–10 mmol/l).
    pub band: Option<(f64, f64)>,
    pub title: String,
    pub desc: String,
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// 1, 2 or 5 times a power of ten, near `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    let fraction = raw / power;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// A y-axis label with as many decimals as the tick step needs (a step of 0.02 gives two),
/// so neighbouring labels never read the same.
fn label(value: f64, step: f64, decimal_comma: bool) -> String {
    let decimals = if step > 0.0 && step.is_finite() {
        // Steps are 1, 2 or 5 times a power of ten; the epsilon absorbs 0.1 -> 0.0999...
        (-(step.log10() + 1e-9).floor()).clamp(0.0, 12.0) as usize
    } else {
        0
    };
    let text = format!("{value:.decimals$}");
    // "-0" / "-0.00" for a value rounded to zero.
    let text = if text.starts_with('-')
        && text
            .trim_start_matches('-')
            .chars()
            .all(|c| c == '0' || c == '.')
    {
        text.trim_start_matches('-').to_owned()
    } else {
        text
    };
    if decimal_comma {
        text.replace('.', ",")
    } else {
        text
    }
}

/// Daily sums of the first series, at local noon, for bar charts.
fn daily(points: &[Point]) -> Vec<Point> {
    let mut days: BTreeMap<Date, f64> = BTreeMap::new();
    for p in points {
        if let (Ok(t), Some(Some(v))) = (
            OffsetDateTime::from_unix_timestamp(p.t),
            p.values.first().copied(),
        ) {
            *days.entry(helsinki(t).date()).or_default() += v;
        }
    }
    days.into_iter()
        .map(|(day, v)| Point {
            t: super::format::local_midnight(day).unix_timestamp() + 12 * 3600,
            values: vec![Some(v)],
            spread: Vec::new(),
        })
        .collect()
}

/// Averages `points` into at most [`MAX_LINE_POINTS`] equal time buckets.
fn thin(points: &[Point], from: i64, to: i64, series: usize) -> Vec<Point> {
    if points.len() <= MAX_LINE_POINTS {
        return points.to_vec();
    }
    let span = (to - from).max(1) as f64;
    let mut sums = vec![(0i64, 0usize, vec![(0.0f64, 0usize); series]); MAX_LINE_POINTS];
    for p in points {
        let i = (((p.t - from) as f64 / span) * MAX_LINE_POINTS as f64) as usize;
        let Some(bucket) = sums.get_mut(i.min(MAX_LINE_POINTS - 1)) else {
            continue;
        };
        bucket.0 += p.t;
        bucket.1 += 1;
        for (sum, v) in bucket.2.iter_mut().zip(&p.values) {
            if let Some(v) = v {
                sum.0 += v;
                sum.1 += 1;
            }
        }
    }
    sums.into_iter()
        .filter(|b| b.1 > 0)
        .map(|(t, n, values)| Point {
            t: t / n as i64,
            values: values
                .into_iter()
                .map(|(sum, k)| (k > 0).then(|| sum / k as f64))
                .collect(),
            spread: Vec::new(),
        })
        .collect()
}

/// The x-axis ticks: days, weeks (Mondays) or months (1st), local midnight.
fn x_ticks(from: i64, to: i64) -> Vec<(i64, Date)> {
    let (Ok(start), Ok(end)) = (
        OffsetDateTime::from_unix_timestamp(from),
        OffsetDateTime::from_unix_timestamp(to),
    ) else {
        return Vec::new();
    };
    let days = (to - from) / 86_400;
    let mut day = helsinki(start).date();
    let last = helsinki(end).date();
    let mut out = Vec::new();
    while day <= last && out.len() < 400 {
        let keep = if days <= 10 {
            true
        } else if days <= 70 {
            day.weekday() == time::Weekday::Monday
        } else if days <= 800 {
            day.day() == 1
        } else {
            day.day() == 1 && day.month() == time::Month::January
        };
        let t = super::format::local_midnight(day).unix_timestamp();
        if keep && t >= from && t <= to {
            out.push((t, day));
        }
        match day.next_day() {
            Some(next) => day = next,
            None => break,
        }
    }
    out
}

/// The chart as an `<svg>` element; `from`..`to` is the time range (Unix seconds).
pub fn svg(spec: &Spec, points: &[Point], from: i64, to: i64, decimal_comma: bool) -> String {
    let points = match spec.style {
        Style::Bars => daily(points),
        Style::Line => thin(points, from, to, spec.series),
    };
    let values = points.iter().flat_map(|p| {
        p.values
            .iter()
            .flatten()
            .copied()
            .chain(p.spread.iter().flatten().flat_map(|(lo, hi)| [*lo, *hi]))
    });
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if let Some((a, b)) = spec.band {
        lo = lo.min(a);
        hi = hi.max(b);
    }
    if spec.style == Style::Bars || !lo.is_finite() {
        lo = lo.min(0.0);
    }
    if !hi.is_finite() {
        hi = lo + 1.0;
    }
    if hi - lo < 1e-9 {
        hi = lo + 1.0;
    }
    let step = nice_step((hi - lo) / 5.0);
    let y_min = if spec.style == Style::Bars {
        0.0
    } else {
        (lo / step).floor() * step
    };
    let y_max = (hi / step).ceil() * step;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let span = (to - from).max(1) as f64;
    let x = |t: i64| LEFT + (t - from) as f64 / span * plot_w;
    let y = |v: f64| TOP + plot_h - (v - y_min) / (y_max - y_min) * plot_h;

    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title chart-desc" focusable="false"><title id="chart-title">{}</title><desc id="chart-desc">{}</desc>"#,
        xml(&spec.title),
        xml(&spec.desc)
    );
    if let Some((a, b)) = spec.band {
        let _ = write!(
            s,
            r##"<rect x="{LEFT}" y="{:.1}" width="{plot_w}" height="{:.1}" fill="#dcefe0" stroke="#2e7d32" stroke-dasharray="4 3"/>"##,
            y(b),
            (y(a) - y(b)).max(0.0)
        );
    }
    // Horizontal grid and y labels.
    let mut guard = 0;
    let mut v = y_min;
    while v <= y_max + step / 2.0 && guard < 20 {
        let yy = y(v);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#d0d0d0"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="12" fill="#1a1a1a">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            label(v, step, decimal_comma)
        );
        guard += 1;
        // From the start each time: repeated additions drift (69.4 + 0.02 + ...).
        v = y_min + step * f64::from(guard);
    }
    // X ticks.
    for (t, day) in x_ticks(from, to) {
        let xx = x(t);
        let _ = write!(
            s,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{TOP}" y2="{:.1}" stroke="#ececec"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle" font-size="12" fill="#1a1a1a">{}.{}.</text>"##,
            TOP + plot_h,
            HEIGHT - BOTTOM + 18.0,
            day.day(),
            day.month() as u8
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#4a4a4a"/><line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{:.1}" stroke="#4a4a4a"/>"##,
        WIDTH - RIGHT,
        TOP + plot_h,
        TOP + plot_h,
        TOP + plot_h
    );
    match spec.style {
        Style::Bars => {
            let days = ((to - from) as f64 / 86_400.0).max(1.0);
            let bar_w = (plot_w / days * 0.7).clamp(1.0, 40.0);
            for p in &points {
                if let Some(Some(v)) = p.values.first() {
                    let top = y(*v);
                    let _ = write!(
                        s,
                        r#"<rect x="{:.1}" y="{top:.1}" width="{bar_w:.1}" height="{:.1}" fill="{}"/>"#,
                        x(p.t) - bar_w / 2.0,
                        (TOP + plot_h - top).max(0.0),
                        COLOURS[0]
                    );
                }
            }
        }
        Style::Line => {
            // The lowest-to-highest band of aggregated intervals, under the lines.
            for series in 0..spec.series {
                let spread: Vec<(i64, f64, f64)> = points
                    .iter()
                    .filter_map(|p| {
                        p.spread
                            .get(series)
                            .copied()
                            .flatten()
                            .map(|(lo, hi)| (p.t, lo, hi))
                    })
                    .collect();
                if spread.len() < 2 {
                    continue;
                }
                let upper = spread
                    .iter()
                    .map(|(t, _, hi)| format!("{:.1},{:.1}", x(*t), y(*hi)));
                let lower = spread
                    .iter()
                    .rev()
                    .map(|(t, lo, _)| format!("{:.1},{:.1}", x(*t), y(*lo)));
                let colour = COLOURS
                    .get(series % COLOURS.len())
                    .copied()
                    .unwrap_or_default();
                let _ = write!(
                    s,
                    r#"<polygon class="spread" fill="{colour}" fill-opacity="0.18" stroke="none" points="{}"/>"#,
                    upper.chain(lower).collect::<Vec<_>>().join(" ")
                );
            }
            for series in 0..spec.series {
                let coords: Vec<String> = points
                    .iter()
                    .filter_map(|p| {
                        p.values
                            .get(series)
                            .copied()
                            .flatten()
                            .map(|v| format!("{:.1},{:.1}", x(p.t), y(v)))
                    })
                    .collect();
                let colour = COLOURS
                    .get(series % COLOURS.len())
                    .copied()
                    .unwrap_or_default();
                if coords.len() > 1 {
                    let _ = write!(
                        s,
                        r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
                        coords.join(" ")
                    );
                }
                if coords.len() <= 62 {
                    for c in &coords {
                        if let Some((cx, cy)) = c.split_once(',') {
                            let _ = write!(
                                s,
                                r#"<circle cx="{cx}" cy="{cy}" r="3.5" fill="{colour}"/>"#
                            );
                        }
                    }
                }
            }
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(style: Style, series: usize) -> Spec {
        Spec {
            style,
            series,
            band: None,
            title: "Paino <kg>".into(),
            desc: "d".into(),
        }
    }

    #[test]
    fn axis_labels_stay_distinct_on_narrow_ranges() {
        // A year of weights between 69.4 and 69.5 kg.
        let points: Vec<Point> = (0..52)
            .map(|w| Point {
                t: 1_704_067_200 + w * 7 * 86_400,
                values: vec![Some(69.4 + (w % 11) as f64 / 100.0)],
                spread: Vec::new(),
            })
            .collect();
        let svg = svg(
            &spec(Style::Line, 1),
            &points,
            1_704_067_200,
            1_704_067_200 + 365 * 86_400,
            true,
        );
        let labels: Vec<&str> = svg
            .split(r##"text-anchor="end" font-size="12" fill="#1a1a1a">"##)
            .skip(1)
            .filter_map(|rest| rest.split('<').next())
            .collect();
        assert!(labels.len() >= 3, "{labels:?}");
        let mut distinct = labels.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), labels.len(), "{labels:?}");
        assert!(labels.contains(&"69,40"), "{labels:?}");
        assert_eq!(label(5.0, 0.5, false), "5.0");
        assert_eq!(label(120.0, 20.0, false), "120");
        assert_eq!(label(0.30000000000000004, 0.1, false), "0.3");
        assert_eq!(label(-0.0001, 0.01, false), "0.00");
    }

    #[test]
    fn lines_have_one_polyline_per_series_and_escaped_titles() {
        let points: Vec<Point> = (0..10)
            .map(|i| Point {
                t: 1_790_000_000 + i * 3600,
                values: vec![Some(120.0 + i as f64), Some(80.0)],
                spread: Vec::new(),
            })
            .collect();
        let out = svg(
            &spec(Style::Line, 2),
            &points,
            1_790_000_000,
            1_790_040_000,
            true,
        );
        assert_eq!(out.matches("<polyline").count(), 2);
        assert!(out.contains("Paino &lt;kg&gt;"));
        assert!(!out.contains("style="), "no inline styles under the CSP");
    }

    #[test]
    fn many_points_are_thinned_and_bars_sum_per_day() {
        let points: Vec<Point> = (0..5000)
            .map(|i| Point {
                t: 1_790_000_000 + i * 300,
                values: vec![Some(5.0)],
                spread: Vec::new(),
            })
            .collect();
        let thinned = thin(&points, 1_790_000_000, 1_790_000_000 + 5000 * 300, 1);
        assert!(thinned.len() <= MAX_LINE_POINTS);
        let days = daily(&points);
        let total: f64 = days.iter().filter_map(|p| p.values[0]).sum();
        assert_eq!(total, 25_000.0);
    }

    #[test]
    fn aggregated_intervals_draw_a_band_around_the_line_of_means() {
        let points: Vec<Point> = (0..50)
            .map(|i| Point {
                t: 1_790_000_000 + i * 86_400,
                values: vec![Some(7.0)],
                spread: vec![Some((2.5, 14.0))],
            })
            .collect();
        let out = svg(
            &spec(Style::Line, 1),
            &points,
            1_790_000_000,
            1_790_000_000 + 50 * 86_400,
            false,
        );
        assert_eq!(out.matches("<polygon class=\"spread\"").count(), 1);
        assert_eq!(out.matches("<polyline").count(), 1);
        // The axis reaches the band's extremes, not only the means.
        assert!(out.contains(">15<") || out.contains(">16<"), "{out}");
        assert!(out.contains(">2<") || out.contains(">0<"), "{out}");
    }
}
