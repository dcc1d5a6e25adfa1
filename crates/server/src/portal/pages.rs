//! The portal's handlers: parse the request, call the FHIR service or the authorization
//! server, render a page. Every form post checks the session's CSRF token first and changes
//! nothing when it is missing or wrong; every failure is a readable page.

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use phr_auth::flows::client_auth::ClientCredentials;
use phr_auth::flows::token::{Grant, TokenRequest};
use phr_auth::secrets::{constant_time_eq, pkce_s256_challenge, random_token};
use phr_auth::{AuditQuery, AuditRecord, PatientRegistry, Usage};
use phr_catalog::{ChartKind, Kind};
use phr_store::{Erasure, HistoryQuery};
use serde_json::Value;
use time::{Date, Duration, OffsetDateTime};

use super::chart::{self, Point, Spec, Style};
use super::data::{self, Entry};
use super::entry::{self, Measure};
use super::format::{self, catalog_lang};
use super::session::{
    Ctx, IDLE_TIMEOUT, LIFETIME, LOGIN_TIMEOUT, PendingLogin, Session, SessionData,
};
use super::texts::T;
use super::{CALLBACK_PATH, PORTAL_APP_ID, PORTAL_APP_NAME, ROOT};
use phr_service::export::{self, COMPARTMENT_TYPES};
use phr_service::professional;
use phr_service::{Error as ApiError, ErrorKind};

use crate::AppState;
use crate::fhir::error::{status_of, written_status};
use crate::web::chrome::{LangLink, language_links};
use crate::web::{Lang, html, resource_name, see_other};

type Pairs = Vec<(String, String)>;

/// Why a page could not be shown.
pub enum Fail {
    /// No live session: back to the start page.
    Login,
    Csrf,
    NotFound,
    BadInput,
    /// Bad input with its own explanation.
    Refused(&'static str),
    Internal(String),
}

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Self {
        match e.kind() {
            ErrorKind::NotFound | ErrorKind::Gone | ErrorKind::Forbidden => Fail::NotFound,
            ErrorKind::Invalid | ErrorKind::Unprocessable => Fail::BadInput,
            _ => Fail::Internal(
                e.issues()
                    .first()
                    .map(|i| i.message.clone())
                    .unwrap_or_default(),
            ),
        }
    }
}

impl From<phr_auth::AuthError> for Fail {
    fn from(e: phr_auth::AuthError) -> Self {
        match e {
            phr_auth::AuthError::NotFound(_) => Fail::NotFound,
            phr_auth::AuthError::Invalid(_) => Fail::BadInput,
            other => Fail::Internal(other.to_string()),
        }
    }
}

type Page = Result<Response, Fail>;

// --- page chrome --------------------------------------------------------------------------

struct NavLink {
    href: &'static str,
    label: &'static str,
    current: bool,
}

/// What every page shows around its content.
pub struct Chrome {
    t: &'static T,
    lang: &'static str,
    switches: Vec<LangLink>,
    nav: Vec<NavLink>,
    logged_in: bool,
    csrf: String,
    sandbox: bool,
    notice: Option<String>,
}

fn chrome(state: &AppState, ctx: &Ctx) -> Chrome {
    let t = T::get(ctx.lang);
    let switches = language_links(&ctx.path, &ctx.query, ctx.lang, &["msg", "n"]);
    let logged_in = ctx.citizen().is_some();
    let items: [(&'static str, &'static str); 7] = [
        (ROOT, t.nav_overview),
        ("/portal/enter", t.nav_enter),
        ("/portal/apps", t.nav_apps),
        ("/portal/sharing", t.nav_sharing),
        ("/portal/log", t.nav_log),
        ("/portal/export", t.nav_export),
        ("/portal/delete", t.nav_delete),
    ];
    let nav = if logged_in {
        items
            .iter()
            .map(|(href, label)| NavLink {
                href,
                label,
                current: ctx.path == *href
                    || (*href != ROOT && ctx.path.starts_with(&format!("{href}/"))),
            })
            .collect()
    } else {
        Vec::new()
    };
    let notice = ctx.query("msg").and_then(|m| {
        Some(match m {
            "saved" => t.saved_notice.to_owned(),
            "deleted" => format!(
                "{} {}",
                t.deleted_notice,
                ctx.query("n")
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0)
            ),
            "withdrawn" => t.withdrawn_notice.to_owned(),
            "given" => t.consent_given_notice.to_owned(),
            "revoked" => t.consent_withdrawn_notice.to_owned(),
            "hidden" => t.entry_hidden_notice.to_owned(),
            "shown" => t.entry_shown_notice.to_owned(),
            "bye" => t.logged_out.to_owned(),
            "expired" => t.session_expired.to_owned(),
            _ => return None,
        })
    });
    Chrome {
        t,
        lang: ctx.lang.code(),
        switches,
        nav,
        logged_in,
        csrf: ctx
            .session
            .as_ref()
            .map(|s| s.data.csrf.clone())
            .unwrap_or_default(),
        sandbox: state.auth.config().mode.is_sandbox(),
        notice,
    }
}

fn render(template: &impl Template, status: StatusCode) -> Page {
    template
        .render()
        .map(|body| html(status, body))
        .map_err(|e| Fail::Internal(format!("page template failed: {e}")))
}

#[derive(Template)]
#[template(path = "portal/message.html")]
struct MessagePage {
    c: Chrome,
    title: String,
    text: String,
}

fn failure_page(state: &AppState, ctx: &Ctx, fail: Fail) -> Response {
    let t = T::get(ctx.lang);
    let (status, text) = match fail {
        Fail::Login => {
            return see_other(&format!("{ROOT}?msg=expired"));
        }
        Fail::Csrf => (StatusCode::FORBIDDEN, t.error_csrf),
        Fail::NotFound => (StatusCode::NOT_FOUND, t.error_not_found),
        Fail::BadInput => (StatusCode::BAD_REQUEST, t.error_bad_input),
        Fail::Refused(why) => (StatusCode::BAD_REQUEST, why),
        Fail::Internal(detail) => {
            tracing::error!(error = %detail, "portal page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, t.error_internal)
        }
    };
    let page = MessagePage {
        c: chrome(state, ctx),
        title: t.error_title.to_owned(),
        text: text.to_owned(),
    };
    render(&page, status)
        .unwrap_or_else(|_| (StatusCode::INTERNAL_SERVER_ERROR, "error").into_response())
}

/// Runs a page on the blocking pool (storage and the auth database block), renders failures,
/// and remembers a language chosen with `?lang=`.
async fn run<F>(state: AppState, ctx: Ctx, f: F) -> Response
where
    F: FnOnce(&AppState, &Ctx) -> Page + Send + 'static,
{
    let joined = tokio::task::spawn_blocking(move || {
        let page = f(&state, &ctx);
        let mut response = match page {
            Ok(r) => r,
            Err(fail) => failure_page(&state, &ctx, fail),
        };
        ctx.page_lang.remember(ctx.cookies, &mut response);
        response
    })
    .await;
    joined.unwrap_or_else(|_| (StatusCode::INTERNAL_SERVER_ERROR, "page failed").into_response())
}

fn citizen(ctx: &Ctx) -> Result<String, Fail> {
    ctx.citizen()
        .map(|c| c.patient_id.to_owned())
        .ok_or(Fail::Login)
}

/// The citizen of a form post with a valid CSRF token.
fn posting_citizen(ctx: &Ctx, form: &Pairs) -> Result<String, Fail> {
    let patient = citizen(ctx)?;
    if !ctx.csrf_ok(form) {
        return Err(Fail::Csrf);
    }
    Ok(patient)
}

fn field<'a>(form: &'a Pairs, name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, v)| k == name && !v.trim().is_empty())
        .map(|(_, v)| v.trim())
}

fn portal_audit(state: &AppState, patient: &str, interaction: &str) -> AuditRecord {
    let mut record = AuditRecord::new(Usage::CitizenPortal, format!("Patient/{patient}"));
    record.patient_id = Some(patient.to_owned());
    record.app_id = Some(PORTAL_APP_ID.to_owned());
    record.app_name = Some(PORTAL_APP_NAME.to_owned());
    record.interaction = Some(interaction.to_owned());
    record.status = 200;
    let _ = state;
    record
}

fn audit(state: &AppState, record: AuditRecord) {
    if let Err(e) = state.auth.audit(record) {
        tracing::error!(error = %e, "could not queue a portal audit record");
    }
}

// --- login ----------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "portal/landing.html")]
struct LandingPage {
    c: Chrome,
}

pub async fn login(State(state): State<AppState>, ctx: Ctx) -> Response {
    run(state, ctx, |state, ctx| {
        if let Some(old) = &ctx.session {
            let _ = Session::end(state, &old.token);
        }
        let verifier = random_token();
        let oauth_state = random_token();
        let data = SessionData {
            csrf: random_token(),
            patient_id: None,
            login: Some(PendingLogin {
                state: oauth_state.clone(),
                verifier: verifier.clone(),
            }),
        };
        let session = Session::create(state, data, LOGIN_TIMEOUT, LOGIN_TIMEOUT)
            .ok_or_else(|| Fail::Internal("no session".into()))?;
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", PORTAL_APP_ID)
            .append_pair(
                "redirect_uri",
                &format!("{}{CALLBACK_PATH}", state.base_url),
            )
            .append_pair("scope", super::PORTAL_SCOPE)
            .append_pair("state", &oauth_state)
            .append_pair("code_challenge", &pkce_s256_challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        let mut response = see_other(&format!(
            "{}?{}",
            crate::oauth::AUTHORIZE_PATH,
            query.finish()
        ));
        ctx.set_session_cookie(&mut response, &session.token, LOGIN_TIMEOUT);
        Ok(response)
    })
    .await
}

pub async fn callback(State(state): State<AppState>, ctx: Ctx) -> Response {
    let pending = ctx
        .session
        .as_ref()
        .and_then(|s| s.data.login.clone().map(|l| (s.token.clone(), l)));
    let Some((old_token, pending)) = pending else {
        return run(state, ctx, |_, _| Err(Fail::Login)).await;
    };
    let returned_state = ctx.query("state").unwrap_or("");
    let code = ctx.query("code").map(str::to_owned);
    let state_ok = constant_time_eq(returned_state.as_bytes(), pending.state.as_bytes());
    let (Some(code), true) = (code, state_ok) else {
        // Declined terms, a cancelled login, or a forged callback: start again.
        let _ = Session::end(&state, &old_token);
        return see_other(ROOT);
    };
    run(state, ctx, move |state, ctx| {
        let _ = Session::end(state, &old_token);
        // The portal is a public client of the authorization server in this process.
        let request = TokenRequest {
            client: ClientCredentials::Public {
                client_id: PORTAL_APP_ID.into(),
            },
            grant: Grant::AuthorizationCode {
                code,
                redirect_uri: Some(format!("{}{CALLBACK_PATH}", state.base_url)),
                code_verifier: Some(pending.verifier.clone()),
            },
            certificate: None,
        };
        let token = phr_auth::flows::token::request(&state.auth, &request)
            .map_err(|e| Fail::Internal(format!("login failed: {}", e.code)))?;
        let patient = token
            .patient
            .ok_or_else(|| Fail::Internal("the token names no patient".into()))?;
        // A new session value at login: a value planted before login is worth nothing.
        let data = SessionData {
            csrf: random_token(),
            patient_id: Some(patient),
            login: None,
        };
        let session = Session::create(state, data, IDLE_TIMEOUT, LIFETIME)
            .ok_or_else(|| Fail::Internal("no session".into()))?;
        let mut response = see_other(ROOT);
        ctx.set_session_cookie(&mut response, &session.token, LIFETIME);
        Ok(response)
    })
    .await
}

pub async fn logout(State(state): State<AppState>, ctx: Ctx, Form(form): Form<Pairs>) -> Response {
    run(state, ctx, move |state, ctx| {
        posting_citizen(ctx, &form)?;
        if let Some(session) = &ctx.session {
            Session::end(state, &session.token)?;
        }
        let mut response = see_other(&format!("{ROOT}?msg=bye"));
        ctx.set_session_cookie(&mut response, "", 0);
        Ok(response)
    })
    .await
}

// --- overview -------------------------------------------------------------------------------

struct OverviewRow {
    key: &'static str,
    name: &'static str,
    value: String,
    time: String,
    source: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "portal/overview.html")]
struct OverviewPage {
    c: Chrome,
    rows: Vec<OverviewRow>,
}

pub async fn overview(State(state): State<AppState>, ctx: Ctx) -> Response {
    run(state, ctx, |state, ctx| {
        let Some(citizen) = ctx.citizen() else {
            return render(
                &LandingPage {
                    c: chrome(state, ctx),
                },
                StatusCode::OK,
            );
        };
        let patient = citizen.patient_id;
        let mut rows = Vec::new();
        for content in data::contents() {
            if let Some(entry) = data::latest(state, patient, content)? {
                rows.push(OverviewRow {
                    key: content.kind.key(),
                    name: content.name(catalog_lang(ctx.lang)),
                    value: format::summary(&entry.resource, ctx.lang),
                    time: time_of(&entry.resource, ctx.lang),
                    source: source_of(&entry),
                    detail: detail_href(&entry),
                });
            }
        }
        render(
            &OverviewPage {
                c: chrome(state, ctx),
                rows,
            },
            StatusCode::OK,
        )
    })
    .await
}

fn time_of(resource: &Value, lang: Lang) -> String {
    format::resource_time(resource)
        .map(|t| format::date_time(t, lang))
        .unwrap_or_default()
}

fn source_of(entry: &Entry) -> String {
    format::source_app(&entry.resource)
        .or_else(|| entry.stored.app.clone())
        .unwrap_or_else(|| "–".into())
}

fn detail_href(entry: &Entry) -> String {
    format!(
        "/portal/entry/{}/{}",
        entry.stored.resource_type, entry.stored.id
    )
}

// --- data content: chart and table ----------------------------------------------------------

struct TableRow {
    time: String,
    value: String,
    source: String,
    detail: String,
}

struct RangeLink {
    label: &'static str,
    href: String,
    current: bool,
}

struct Legend {
    colour: &'static str,
    name: String,
}

#[derive(Template)]
#[template(path = "portal/data.html")]
struct DataPage {
    c: Chrome,
    name: &'static str,
    key: &'static str,
    ranges: Vec<RangeLink>,
    from: String,
    to: String,
    range_error: Option<&'static str>,
    chart: Option<String>,
    legend: Vec<Legend>,
    count: usize,
    /// Glucose: readings below, within and above the target range, as shares.
    time_in_range: Vec<InRangeRow>,
    rows: Vec<TableRow>,
    next: Option<String>,
    first: Option<String>,
}

struct InRangeRow {
    label: &'static str,
    share: String,
    count: u64,
}

/// The chosen range as local dates (to inclusive) and the error of a bad custom range.
fn chosen_range(ctx: &Ctx, today: Date) -> (String, Date, Date, Option<&'static str>) {
    let t = T::get(ctx.lang);
    let range = ctx.query("range").unwrap_or("month");
    let days = |n: i64| today - Duration::days(n - 1);
    match range {
        "week" => ("week".into(), days(7), today, None),
        "year" => ("year".into(), days(365), today, None),
        "custom" => {
            let fmt = time::macros::format_description!("[year]-[month]-[day]");
            let from = ctx.query("from").and_then(|d| Date::parse(d, fmt).ok());
            let to = ctx.query("to").and_then(|d| Date::parse(d, fmt).ok());
            match (from, to) {
                (Some(f), Some(t)) if f <= t && (t - f).whole_days() <= 3660 => {
                    ("custom".into(), f, t, None)
                }
                _ => ("month".into(), days(30), today, Some(t.err_date)),
            }
        }
        _ => ("month".into(), days(30), today, None),
    }
}

pub async fn data_page(
    State(state): State<AppState>,
    Path(key): Path<String>,
    ctx: Ctx,
) -> Response {
    run(state, ctx, move |state, ctx| {
        let patient = citizen(ctx)?;
        let content = data::content_by_key(&key).ok_or(Fail::NotFound)?;
        let t = T::get(ctx.lang);
        let lang = catalog_lang(ctx.lang);
        let today = format::helsinki(OffsetDateTime::now_utc()).date();
        let (range, first_day, last_day, range_error) = chosen_range(ctx, today);
        let from = format::local_midnight(first_day);
        let to = format::local_midnight(last_day.next_day().unwrap_or(last_day));
        let range_query = if range == "custom" {
            format!("range=custom&from={first_day}&to={last_day}")
        } else {
            format!("range={range}")
        };
        let base = format!("/portal/data/{}", content.kind.key());
        let ranges = [
            ("week", t.range_week),
            ("month", t.range_month),
            ("year", t.range_year),
        ]
        .into_iter()
        .map(|(k, label)| RangeLink {
            label,
            href: format!("{base}?range={k}"),
            current: range == k,
        })
        .collect();

        let style = match content.chart {
            ChartKind::Line | ChartKind::PairedLine => Some(Style::Line),
            ChartKind::Bar => Some(Style::Bars),
            ChartKind::Events | ChartKind::Document => None,
        };
        let (mut chart_svg, mut legend, mut count) = (None, Vec::new(), 0);
        let mut time_in_range: Vec<InRangeRow> = Vec::new();
        if let Some(style) = style {
            let data::Series {
                entries,
                total,
                sampled,
                intervals,
                in_range,
            } = data::series(state, &patient, content, from, to)?;
            count = total;
            let series = content.series.len().max(1);
            let aggregated = intervals.is_some();
            let points: Vec<Point> = match intervals {
                // Per interval: the mean as the line and lowest..highest as the band (bars:
                // the interval's sum).
                Some(intervals) => intervals
                    .iter()
                    .map(|i| Point {
                        t: i.t,
                        values: i
                            .values
                            .iter()
                            .map(|v| {
                                v.map(
                                    |(_, mean, _, sum)| {
                                        if style == Style::Bars { sum } else { mean }
                                    },
                                )
                            })
                            .collect(),
                        spread: i
                            .values
                            .iter()
                            .map(|v| v.map(|(lo, _, hi, _)| (lo, hi)))
                            .collect(),
                    })
                    .collect(),
                None => entries
                    .iter()
                    .filter_map(|e| {
                        let t = format::resource_time(&e.resource)?.unix_timestamp();
                        let values = if content.series.is_empty() {
                            vec![format::numeric(&e.resource)]
                        } else {
                            content
                                .series
                                .iter()
                                .map(|s| component_value(&e.resource, s.code.system, s.code.code))
                                .collect()
                        };
                        Some(Point {
                            t,
                            values,
                            spread: Vec::new(),
                        })
                    })
                    .collect(),
            };
            time_in_range = in_range
                .filter(|r| r.total() > 0)
                .map(|r| {
                    let share = |n: u64| {
                        let pct = n as f64 * 100.0 / r.total() as f64;
                        format::number_text(&format!("{pct:.1}"), ctx.lang) + " %"
                    };
                    vec![
                        InRangeRow {
                            label: t.in_range_below,
                            share: share(r.below),
                            count: r.below,
                        },
                        InRangeRow {
                            label: t.in_range_within,
                            share: share(r.within),
                            count: r.within,
                        },
                        InRangeRow {
                            label: t.in_range_above,
                            share: share(r.above),
                            count: r.above,
                        },
                    ]
                })
                .unwrap_or_default();
            if !points.is_empty() {
                let unit = content
                    .unit
                    .map(|u| u.unit)
                    .unwrap_or_else(|| content.series.first().map(|s| s.unit.unit).unwrap_or(""));
                let name = content.name(lang);
                let band = (content.kind == Kind::BloodGlucose).then_some((3.9, 10.0));
                // The first series' values, or its intervals' lowest and highest.
                let first_values: Vec<f64> = points
                    .iter()
                    .flat_map(|p| match p.spread.first().copied().flatten() {
                        Some((lo, hi)) => vec![lo, hi],
                        None => p.values.first().copied().flatten().into_iter().collect(),
                    })
                    .collect();
                let lo = first_values.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = first_values
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max);
                let latest = entries
                    .last()
                    .map(|e| format::summary(&e.resource, ctx.lang))
                    .unwrap_or_default();
                let mut desc = format!(
                    "{}–{}: {count} {}. {}: {latest}.",
                    format::date(first_day, ctx.lang),
                    format::date(last_day, ctx.lang),
                    t.entries_count,
                    t.col_latest,
                );
                // Min and max of a sample are not the range's: said only of a whole range.
                if lo.is_finite() && style == Style::Line && !sampled {
                    desc.push_str(&format!(
                        " Min {} {unit}, max {} {unit}.",
                        format::number_text(&format!("{lo:.1}"), ctx.lang),
                        format::number_text(&format!("{hi:.1}"), ctx.lang)
                    ));
                }
                if sampled {
                    desc.push_str(&format!(" {}.", t.chart_sampled));
                }
                if aggregated && style == Style::Line {
                    desc.push_str(&format!(" {}.", t.chart_aggregated));
                }
                if !time_in_range.is_empty() {
                    let parts: Vec<String> = time_in_range
                        .iter()
                        .map(|r| format!("{} {}", r.label, r.share))
                        .collect();
                    desc.push_str(&format!(" {}: {}.", t.in_range_heading, parts.join(", ")));
                }
                if let Some((a, b)) = band {
                    desc.push_str(&format!(
                        " {} {}–{b} {unit}.",
                        t.chart_target,
                        format::number_text(&a.to_string(), ctx.lang)
                    ));
                }
                let spec = Spec {
                    style,
                    series,
                    band,
                    title: format!("{name} ({unit})"),
                    desc,
                };
                chart_svg = Some(chart::svg(
                    &spec,
                    &points,
                    from.unix_timestamp(),
                    to.unix_timestamp(),
                    ctx.lang != Lang::En,
                ));
                legend = if content.series.is_empty() {
                    vec![Legend {
                        colour: "s0",
                        name: name.to_owned(),
                    }]
                } else {
                    content
                        .series
                        .iter()
                        .enumerate()
                        .map(|(i, s)| Legend {
                            colour: if i == 0 { "s0" } else { "s1" },
                            name: s.names.get(lang).to_owned(),
                        })
                        .collect()
                };
                if band.is_some() {
                    legend.push(Legend {
                        colour: "band",
                        name: t.chart_target.to_owned(),
                    });
                }
            }
        }
        let cursor = ctx.query("cursor");
        let (entries, next) = data::table_page(state, &patient, content, (from, to), cursor, 20)?;
        let rows = entries
            .iter()
            .map(|e| TableRow {
                time: time_of(&e.resource, ctx.lang),
                value: format::summary(&e.resource, ctx.lang),
                source: source_of(e),
                detail: detail_href(e),
            })
            .collect();
        let page_href = |c: &str| {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("cursor", c);
            format!("{base}?{range_query}&{}", q.finish())
        };
        render(
            &DataPage {
                c: chrome(state, ctx),
                name: content.name(lang),
                key: content.kind.key(),
                ranges,
                from: first_day.to_string(),
                to: last_day.to_string(),
                range_error,
                chart: chart_svg,
                legend,
                count,
                time_in_range,
                rows,
                next: next.as_deref().map(page_href),
                first: cursor.map(|_| format!("{base}?{range_query}")),
            },
            StatusCode::OK,
        )
    })
    .await
}

fn component_value(resource: &Value, system: &str, code: &str) -> Option<f64> {
    resource["component"]
        .as_array()?
        .iter()
        .find(|c| {
            format::at(c, "/code/coding")
                .as_array()
                .is_some_and(|l| l.iter().any(|x| x["system"] == system && x["code"] == code))
        })
        .and_then(format::numeric)
}

// --- one entry ------------------------------------------------------------------------------

struct VersionRow {
    version: u64,
    stored: String,
    source: String,
}

#[derive(Template)]
#[template(path = "portal/detail.html")]
struct DetailPage {
    c: Chrome,
    title: String,
    values: Vec<(String, String)>,
    codes: Vec<String>,
    measured: String,
    stored: String,
    source: String,
    versions: Vec<VersionRow>,
    delete_href: String,
    back: Option<(String, String)>,
    resource_type: String,
    id: String,
    restricted: bool,
}

fn check_type(resource_type: &str) -> Result<(), Fail> {
    if COMPARTMENT_TYPES.contains(&resource_type) {
        Ok(())
    } else {
        Err(Fail::NotFound)
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

pub async fn detail(
    State(state): State<AppState>,
    Path((resource_type, id)): Path<(String, String)>,
    ctx: Ctx,
) -> Response {
    run(state, ctx, move |state, ctx| {
        let patient = citizen(ctx)?;
        check_type(&resource_type)?;
        if !valid_id(&id) {
            return Err(Fail::NotFound);
        }
        let caller = super::caller(&patient);
        let stored = state.fhir.read(&caller, &resource_type, &id)?;
        let resource: Value =
            serde_json::from_slice(&stored.body).map_err(|e| Fail::Internal(e.to_string()))?;
        let lang = ctx.lang;
        let content = phr_catalog::Catalog::get().content_of(&resource);
        let title = content
            .map(|c| c.name(catalog_lang(lang)).to_owned())
            .unwrap_or_else(|| resource_name(&resource_type, lang));
        let codes = format::at(&resource, "/code/coding")
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                format!(
                    "{}|{} {}",
                    c["system"].as_str().unwrap_or(""),
                    c["code"].as_str().unwrap_or(""),
                    c["display"].as_str().unwrap_or("")
                )
            })
            .collect();
        let history = state.fhir.history(
            &caller,
            HistoryQuery {
                resource_type: Some(resource_type.clone()),
                id: Some(id.clone()),
                count: 50,
                ..HistoryQuery::default()
            },
        )?;
        let versions = history
            .versions
            .iter()
            .map(|v| VersionRow {
                version: v.version,
                stored: format::micros_time(v.last_updated, lang),
                source: v.app.clone().unwrap_or_else(|| "–".into()),
            })
            .collect();
        let entry = Entry {
            stored: stored.clone(),
            resource: resource.clone(),
        };
        render(
            &DetailPage {
                c: chrome(state, ctx),
                title,
                values: format::values(&resource, lang),
                codes,
                measured: time_of(&resource, lang),
                stored: format::micros_time(stored.last_updated, lang),
                source: source_of(&entry),
                versions,
                delete_href: format!("/portal/delete?type={resource_type}&id={id}"),
                restricted: professional::is_restricted(&resource),
                resource_type: resource_type.clone(),
                id: id.clone(),
                back: content.map(|c| {
                    (
                        format!("/portal/data/{}", c.kind.key()),
                        c.name(catalog_lang(lang)).to_owned(),
                    )
                }),
            },
            StatusCode::OK,
        )
    })
    .await
}

// --- entering measurements ------------------------------------------------------------------

#[derive(Template)]
#[template(path = "portal/enter_choose.html")]
struct EnterChoosePage {
    c: Chrome,
    measures: Vec<(String, &'static str)>,
}

pub async fn enter_choose(State(state): State<AppState>, ctx: Ctx) -> Response {
    run(state, ctx, |state, ctx| {
        citizen(ctx)?;
        let measures = Measure::ALL
            .iter()
            .map(|m| (format!("/portal/enter/{}", m.key()), m.name(ctx.lang)))
            .collect();
        render(
            &EnterChoosePage {
                c: chrome(state, ctx),
                measures,
            },
            StatusCode::OK,
        )
    })
    .await
}

struct FormField {
    name: &'static str,
    label: &'static str,
    value: String,
    error: Option<String>,
    kind: &'static str,
    inputmode: &'static str,
}

#[derive(Template)]
#[template(path = "portal/enter.html")]
struct EnterPage {
    c: Chrome,
    title: &'static str,
    action: String,
    fields: Vec<FormField>,
    errors: Vec<(String, String)>,
    rejected: Vec<String>,
}

fn enter_page(
    state: &AppState,
    ctx: &Ctx,
    measure: Measure,
    form: &Pairs,
    errors: Vec<(String, String)>,
    rejected: Vec<String>,
    status: StatusCode,
) -> Page {
    let t = T::get(ctx.lang);
    let value_of = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.chars().take(40).collect::<String>())
            .unwrap_or_default()
    };
    let error_of = |name: &str| {
        errors
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, m)| m.clone())
    };
    let mut fields: Vec<FormField> = measure
        .fields()
        .iter()
        .map(|f| FormField {
            name: f.name,
            label: entry::field_label(f.name, t),
            value: value_of(f.name),
            error: error_of(f.name),
            kind: "text",
            inputmode: "decimal",
        })
        .collect();
    for (name, kind) in [("date", "date"), ("time", "time")] {
        fields.push(FormField {
            name,
            label: entry::field_label(name, t),
            value: value_of(name),
            error: error_of(name),
            kind,
            inputmode: "text",
        });
    }
    let summary = errors
        .iter()
        .map(|(f, m)| (f.clone(), format!("{}: {m}", entry::field_label(f, t))))
        .collect();
    render(
        &EnterPage {
            c: chrome(state, ctx),
            title: measure.name(ctx.lang),
            action: format!("/portal/enter/{}", measure.key()),
            fields,
            errors: summary,
            rejected,
        },
        status,
    )
}

pub async fn enter_form(
    State(state): State<AppState>,
    Path(key): Path<String>,
    ctx: Ctx,
) -> Response {
    run(state, ctx, move |state, ctx| {
        citizen(ctx)?;
        let measure = Measure::from_key(&key).ok_or(Fail::NotFound)?;
        enter_page(
            state,
            ctx,
            measure,
            &Vec::new(),
            Vec::new(),
            Vec::new(),
            StatusCode::OK,
        )
    })
    .await
}

pub async fn enter_submit(
    State(state): State<AppState>,
    Path(key): Path<String>,
    ctx: Ctx,
    Form(form): Form<Pairs>,
) -> Response {
    run(state, ctx, move |state, ctx| {
        let patient = posting_citizen(ctx, &form)?;
        let measure = Measure::from_key(&key).ok_or(Fail::NotFound)?;
        let t = T::get(ctx.lang);
        let reading = match entry::read(measure, &form, OffsetDateTime::now_utc(), t, ctx.lang) {
            Ok(r) => r,
            Err(errors) => {
                return enter_page(
                    state,
                    ctx,
                    measure,
                    &form,
                    errors,
                    Vec::new(),
                    StatusCode::UNPROCESSABLE_ENTITY,
                );
            }
        };
        let resource = entry::observation(measure, &reading, &patient, ctx.lang);
        let caller = super::caller(&patient);
        let mut record = portal_audit(state, &patient, "create");
        record.resource_type = Some("Observation".into());
        match state.fhir.create(&caller, resource, None) {
            Ok(written) => {
                record.status = written_status(written.change).as_u16();
                record.amount = 1;
                record.resources = vec![written.version.reference()];
                audit(state, record);
                Ok(see_other(&format!(
                    "/portal/entry/Observation/{}?msg=saved",
                    written.version.id
                )))
            }
            Err(e) => {
                record.status = status_of(e.kind()).as_u16();
                record.error_detail = e.issues().first().map(|i| i.message.clone());
                audit(state, record);
                let rejected = e.issues().iter().map(|i| i.message.clone()).collect();
                enter_page(
                    state,
                    ctx,
                    measure,
                    &form,
                    Vec::new(),
                    rejected,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
            }
        }
    })
    .await
}

// --- deleting -------------------------------------------------------------------------------

struct AppChoice {
    name: String,
    href: String,
}

#[derive(Template)]
#[template(path = "portal/delete.html")]
struct DeletePage {
    c: Chrome,
    apps: Vec<AppChoice>,
    error: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "portal/confirm.html")]
struct ConfirmPage {
    c: Chrome,
    text: &'static str,
    what: String,
    scope: &'static str,
    resource_type: String,
    id: String,
    app: String,
}

/// Applications that may have stored the citizen's data: those granted (now or before),
/// those in the access log, and the portal itself.
fn apps_with_data(state: &AppState, patient: &str) -> Result<Vec<(String, String)>, Fail> {
    let mut apps: Vec<(String, String)> = Vec::new();
    let mut add = |id: String, name: String| {
        if !apps.iter().any(|(i, _)| *i == id) {
            apps.push((id, name));
        }
    };
    for grant in state.auth.grants_for_patient(patient)? {
        if grant.app_id != PORTAL_APP_ID {
            add(grant.app_id, grant.app_name);
        }
    }
    for (id, name) in state.auth.audited_apps_for_patient(patient)? {
        add(id, name);
    }
    for content in data::contents() {
        if let Some(entry) = data::latest(state, patient, content)?
            && let Some(id) = entry.stored.created_by.clone().or(entry.stored.app.clone())
        {
            let name = format::source_app(&entry.resource).unwrap_or_else(|| id.clone());
            add(id, name);
        }
    }
    add(PORTAL_APP_ID.into(), PORTAL_APP_NAME.into());
    apps.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(apps)
}

fn delete_overview(state: &AppState, ctx: &Ctx, patient: &str, error: bool) -> Page {
    let apps = apps_with_data(state, patient)?
        .into_iter()
        .map(|(id, name)| AppChoice {
            href: {
                let mut q = url::form_urlencoded::Serializer::new(String::new());
                q.append_pair("app", &id);
                format!("/portal/delete?{}", q.finish())
            },
            name,
        })
        .collect();
    let t = T::get(ctx.lang);
    render(
        &DeletePage {
            c: chrome(state, ctx),
            apps,
            error: error.then_some(t.err_confirm),
        },
        if error {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        },
    )
}

pub async fn delete_page(State(state): State<AppState>, ctx: Ctx) -> Response {
    run(state, ctx, |state, ctx| {
        let patient = citizen(ctx)?;
        let t = T::get(ctx.lang);
        if let (Some(resource_type), Some(id)) = (ctx.query("type"), ctx.query("id")) {
            check_type(resource_type)?;
            if !valid_id(id) {
                return Err(Fail::NotFound);
            }
            let stored = state
                .fhir
                .read(&super::caller(&patient), resource_type, id)?;
            let resource: Value = serde_json::from_slice(&stored.body).unwrap_or(Value::Null);
            let name = phr_catalog::Catalog::get()
                .content_of(&resource)
                .map(|c| c.name(catalog_lang(ctx.lang)).to_owned())
                .unwrap_or_else(|| resource_name(resource_type, ctx.lang));
            let what = format!(
                "{name}: {} ({})",
                format::summary(&resource, ctx.lang),
                time_of(&resource, ctx.lang)
            );
            return render(
                &ConfirmPage {
                    c: chrome(state, ctx),
                    text: t.delete_one_text,
                    what,
                    scope: "one",
                    resource_type: resource_type.to_owned(),
                    id: id.to_owned(),
                    app: String::new(),
                },
                StatusCode::OK,
            );
        }
        if let Some(app) = ctx.query("app") {
            let name = apps_with_data(state, &patient)?
                .into_iter()
                .find(|(id, _)| id == app)
                .map(|(_, name)| name)
                .ok_or(Fail::NotFound)?;
            return render(
                &ConfirmPage {
                    c: chrome(state, ctx),
                    text: t.delete_from_app_text,
                    what: name,
                    scope: "app",
                    resource_type: String::new(),
                    id: String::new(),
                    app: app.to_owned(),
                },
                StatusCode::OK,
            );
        }
        delete_overview(state, ctx, &patient, false)
    })
    .await
}

pub async fn delete_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<Pairs>,
) -> Response {
    run(state, ctx, move |state, ctx| {
        let patient = posting_citizen(ctx, &form)?;
        let mut record = portal_audit(state, &patient, "erase");
        let what = match field(&form, "scope") {
            Some("one") => {
                let resource_type = field(&form, "type").ok_or(Fail::BadInput)?;
                let id = field(&form, "id").ok_or(Fail::BadInput)?;
                check_type(resource_type)?;
                if !valid_id(id) {
                    return Err(Fail::BadInput);
                }
                // Visible to the citizen (their compartment) or not found.
                state
                    .fhir
                    .read(&super::caller(&patient), resource_type, id)?;
                record.resource_type = Some(resource_type.to_owned());
                record.resources = vec![format!("{resource_type}/{id}")];
                Erasure::One {
                    resource_type: resource_type.to_owned(),
                    id: id.to_owned(),
                }
            }
            Some("app") => {
                let app = field(&form, "app").ok_or(Fail::BadInput)?;
                if app.len() > 200 {
                    return Err(Fail::BadInput);
                }
                record.search_criteria = Some(format!("creating-application={app}"));
                Erasure::FromApp {
                    app: app.to_owned(),
                }
            }
            Some("all") => {
                if field(&form, "confirm") != Some("yes") {
                    return delete_overview(state, ctx, &patient, true);
                }
                record.search_criteria = Some("everything".into());
                Erasure::Everything
            }
            _ => return Err(Fail::BadInput),
        };
        let erased = state
            .fhir
            .storage
            .erase(&patient, &what)
            .map_err(|e| Fail::Internal(e.to_string()))?;
        if what == Erasure::Everything {
            // The citizen stays in the service: their (empty) record keeps its Patient, and
            // nothing is shared any more.
            let registry = phr_service::StoredPatients(state.fhir.clone());
            registry
                .ensure_patient(&phr_auth::patient_resource(&patient))
                .map_err(Fail::Internal)?;
            state.auth.set_professional_sharing(&patient, false)?;
        }
        record.amount = erased;
        audit(state, record);
        Ok(see_other(&format!("{ROOT}?msg=deleted&n={erased}")))
    })
    .await
}

// --- applications ---------------------------------------------------------------------------

struct AppRow {
    id: String,
    name: String,
    rights: Vec<(String, String)>,
    granted: String,
    last_access: String,
}

#[derive(Template)]
#[template(path = "portal/apps.html")]
struct AppsPage {
    c: Chrome,
    apps: Vec<AppRow>,
}

pub async fn apps(State(state): State<AppState>, ctx: Ctx) -> Response {
    run(state, ctx, |state, ctx| {
        let patient = citizen(ctx)?;
        let t = T::get(ctx.lang);
        let last = state.auth.last_access_by_app(&patient)?;
        let apps = state
            .auth
            .grants_for_patient(&patient)?
            .into_iter()
            .filter(|g| g.status == "active" && !state.auth.is_first_party(&g.app_id))
            .map(|g| AppRow {
                rights: crate::web::scope_rights(&g.scope, ctx.lang),
                granted: format::micros_time(g.created_at.saturating_mul(1_000_000), ctx.lang),
                last_access: last
                    .get(&g.app_id)
                    .map(|us| format::micros_time(*us, ctx.lang))
                    .unwrap_or_else(|| t.never.to_owned()),
                id: g.app_id,
                name: g.app_name,
            })
            .collect();
        render(
            &AppsPage {
                c: chrome(state, ctx),
                apps,
            },
            StatusCode::OK,
        )
    })
    .await
}

pub async fn withdraw(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<Pairs>,
) -> Response {
    run(state, ctx, move |state, ctx| {
        let patient = posting_citizen(ctx, &form)?;
        let app = field(&form, "app").ok_or(Fail::BadInput)?;
        if state.auth.is_first_party(app) {
            return Err(Fail::BadInput);
        }
        state.auth.withdraw_app(&patient, app)?;
        Ok(see_other("/portal/apps?msg=withdrawn"))
    })
    .await
}

// --- sharing with professionals -------------------------------------------------------------

/// A data content the citizen may choose to share.
struct ContentChoice {
    key: &'static str,
    name: &'static str,
    checked: bool,
}

/// An entry the citizen has hidden from professionals.
struct HiddenRow {
    href: String,
    title: String,
    time: String,
}

#[derive(Template)]
#[template(path = "portal/sharing.html")]
struct SharingPage {
    c: Chrome,
    sharing: bool,
    all: bool,
    shared_names: Vec<&'static str>,
    contents: Vec<ContentChoice>,
    hidden: Vec<HiddenRow>,
}

/// How many hidden entries of each type the sharing page lists.
const HIDDEN_LISTED: usize = 100;

pub async fn sharing(State(state): State<AppState>, ctx: Ctx) -> Response {
    run(state, ctx, |state, ctx| {
        let patient = citizen(ctx)?;
        let caller = super::caller(&patient);
        let lang = catalog_lang(ctx.lang);
        let shared = state.fhir.shared_now(&patient)?;
        let all = shared
            .as_ref()
            .is_some_and(|p| *p == professional::all_content_profiles());
        let is_shared = |profile: &str| shared.as_ref().is_some_and(|p| p.contains(profile));
        let catalog = phr_catalog::Catalog::get();
        let contents: Vec<ContentChoice> = catalog
            .contents()
            .iter()
            .map(|c| ContentChoice {
                key: c.kind.key(),
                name: c.name(lang),
                checked: !all && is_shared(c.profile),
            })
            .collect();
        let shared_names = catalog
            .contents()
            .iter()
            .filter(|c| is_shared(c.profile))
            .map(|c| c.name(lang))
            .collect();
        let hidden = state
            .fhir
            .restricted_entries(&caller, &patient, HIDDEN_LISTED)?
            .into_iter()
            .map(|stored| {
                let resource: Value = serde_json::from_slice(&stored.body).unwrap_or_default();
                let title = catalog
                    .content_of(&resource)
                    .map(|c| c.name(lang).to_owned())
                    .unwrap_or_else(|| resource_name(&stored.resource_type, ctx.lang));
                HiddenRow {
                    href: format!("/portal/entry/{}/{}", stored.resource_type, stored.id),
                    title,
                    time: time_of(&resource, ctx.lang),
                }
            })
            .collect();
        render(
            &SharingPage {
                c: chrome(state, ctx),
                sharing: shared.is_some(),
                all,
                shared_names,
                contents,
                hidden,
            },
            StatusCode::OK,
        )
    })
    .await
}

/// Gives (all data or the chosen contents) or withdraws the consent to share with
/// professionals. A choice naming no content, or an unknown one, changes nothing.
pub async fn sharing_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<Pairs>,
) -> Response {
    run(state, ctx, move |state, ctx| {
        let patient = posting_citizen(ctx, &form)?;
        let t = T::get(ctx.lang);
        let give = match field(&form, "decision") {
            Some("give") => true,
            Some("withdraw") => false,
            _ => return Err(Fail::BadInput),
        };
        let profiles = if give {
            // Without a choice (the one-button form of earlier pages) all data is shared.
            match field(&form, "scope") {
                None | Some("all") => None,
                Some("chosen") => {
                    let keys: Vec<String> = form
                        .iter()
                        .filter(|(k, v)| k == "content" && !v.trim().is_empty())
                        .map(|(_, v)| v.trim().to_owned())
                        .collect();
                    if keys.is_empty() {
                        return Err(Fail::Refused(t.err_choose_content));
                    }
                    Some(professional::profiles_of_contents(&keys).map_err(|_| Fail::BadInput)?)
                }
                _ => return Err(Fail::BadInput),
            }
        } else {
            None
        };
        let caller = super::caller(&patient);
        let mut record = portal_audit(
            state,
            &patient,
            if give { "consent" } else { "withdraw-consent" },
        );
        record.resource_type = Some("Consent".into());
        let written = if give {
            state.fhir.give_sharing(
                &caller,
                &patient,
                profiles.as_ref(),
                ctx.lang.code(),
                t.sharing_text1,
            )?
        } else {
            state.fhir.withdraw_sharing(&caller, &patient)?
        };
        record.resources = written.iter().map(|w| w.version.reference()).collect();
        record.amount = written.len() as u64;
        state.auth.set_professional_sharing(&patient, give)?;
        audit(state, record);
        Ok(see_other(if give {
            "/portal/sharing?msg=given"
        } else {
            "/portal/sharing?msg=revoked"
        }))
    })
    .await
}

/// Hides one entry from professionals (`decision=hide`) or shows it again (`show`).
pub async fn sharing_entry(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<Pairs>,
) -> Response {
    run(state, ctx, move |state, ctx| {
        let patient = posting_citizen(ctx, &form)?;
        let hide = match field(&form, "decision") {
            Some("hide") => true,
            Some("show") => false,
            _ => return Err(Fail::BadInput),
        };
        let resource_type = field(&form, "type").ok_or(Fail::BadInput)?.to_owned();
        let id = field(&form, "id").ok_or(Fail::BadInput)?.to_owned();
        check_type(&resource_type)?;
        if !valid_id(&id) {
            return Err(Fail::NotFound);
        }
        let caller = super::caller(&patient);
        let mut record = portal_audit(
            state,
            &patient,
            if hide {
                "hide-from-sharing"
            } else {
                "show-in-sharing"
            },
        );
        record.resource_type = Some(resource_type.clone());
        if let Some(written) = state
            .fhir
            .set_restricted(&caller, &resource_type, &id, hide)?
        {
            record.resources = vec![written.version.reference()];
            record.amount = 1;
        }
        audit(state, record);
        Ok(see_other(&format!(
            "/portal/entry/{resource_type}/{id}?msg={}",
            if hide { "hidden" } else { "shown" }
        )))
    })
    .await
}

// --- access log -----------------------------------------------------------------------------

struct LogRow {
    time: String,
    who: String,
    what: String,
    result: String,
    amount: u64,
}

#[derive(Template)]
#[template(path = "portal/log.html")]
struct LogPage {
    c: Chrome,
    apps: Vec<(String, String, bool)>,
    from: String,
    to: String,
    rows: Vec<LogRow>,
    total: u64,
    next: Option<String>,
    date_error: Option<&'static str>,
}

const LOG_PAGE: usize = 50;

pub async fn access_log(State(state): State<AppState>, ctx: Ctx) -> Response {
    run(state, ctx, |state, ctx| {
        let patient = citizen(ctx)?;
        let t = T::get(ctx.lang);
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        let mut date_error = None;
        let mut day = |name: &str| match ctx.query(name) {
            None => None,
            Some(text) => match Date::parse(text, fmt) {
                Ok(d) => Some(d),
                Err(_) => {
                    date_error = Some(t.err_date);
                    None
                }
            },
        };
        let from = day("from");
        let to = day("to");
        let app = ctx.query("app").map(str::to_owned);
        let micros = |d: Date| format::local_midnight(d).unix_timestamp() * 1_000_000;
        let query = AuditQuery {
            app_id: app.clone(),
            since_us: from.map(micros),
            until_us: to.and_then(|d| d.next_day()).map(micros),
        };
        let offset: usize = ctx
            .query("offset")
            .and_then(|o| o.parse().ok())
            .unwrap_or(0)
            .min(1_000_000);
        let (total, records) = state
            .auth
            .audit_records_for_patient(&patient, &query, LOG_PAGE, offset)?;
        let names = state.auth.audited_apps_for_patient(&patient)?;
        let orgs = state.auth.list_orgs()?;
        let rows = records
            .iter()
            .map(|r| {
                let app_name = r
                    .app_name
                    .clone()
                    .or_else(|| {
                        names
                            .iter()
                            .find(|(id, _)| Some(id) == r.app_id.as_ref())
                            .map(|(_, name)| name.clone())
                    })
                    .or(r.app_id.clone())
                    .unwrap_or_default();
                if let Some(professional) = &r.professional_id {
                    return professional_row(r, professional, &orgs, t, ctx.lang);
                }
                let who = match r.usage {
                    Usage::CitizenPortal => t.who_you.to_owned(),
                    Usage::Authorization if app_name.is_empty() => t.who_login.to_owned(),
                    Usage::Authorization => format!("{} ({app_name})", t.who_login),
                    Usage::Operator => t.who_operator.to_owned(),
                    Usage::Application | Usage::OpenSandbox => app_name.clone(),
                };
                let mut what = r.interaction.clone().unwrap_or_default();
                if let Some(rt) = &r.resource_type
                    && !rt.is_empty()
                {
                    what = format!("{what}: {}", resource_name(rt, ctx.lang));
                }
                // Whose rights an event of someone else was about (a withdrawal, a token).
                if r.usage != Usage::Application
                    && r.app_id.as_deref().is_some_and(|id| id != PORTAL_APP_ID)
                    && !app_name.is_empty()
                {
                    what = format!("{what} – {app_name}");
                }
                let result = if r.status < 400 {
                    t.result_ok.to_owned()
                } else {
                    format!("{} ({})", t.result_refused, r.status)
                };
                LogRow {
                    time: format::micros_time(r.recorded_us, ctx.lang),
                    who,
                    what,
                    result,
                    amount: r.amount,
                }
            })
            .collect();

        let apps = names
            .into_iter()
            .map(|(id, name)| {
                let selected = app.as_deref() == Some(id.as_str());
                (id, name, selected)
            })
            .collect();
        let next = (offset + LOG_PAGE < total as usize).then(|| {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &ctx.query {
                if k != "offset" && k != "lang" {
                    q.append_pair(k, v);
                }
            }
            q.append_pair("offset", &(offset + LOG_PAGE).to_string());
            format!("/portal/log?{}", q.finish())
        });
        render(
            &LogPage {
                c: chrome(state, ctx),
                apps,
                from: from.map(|d| d.to_string()).unwrap_or_default(),
                to: to.map(|d| d.to_string()).unwrap_or_default(),
                rows,
                total,
                next,
                date_error,
            },
            StatusCode::OK,
        )
    })
    .await
}

/// A professional's access as the citizen reads it: "Demo Health Centre, Doctor Test
/// Person" viewed "blood pressure". The organisation is named in the citizen's language from
/// the registry, else as recorded, else by its OID.
fn professional_row(
    r: &AuditRecord,
    professional: &str,
    orgs: &[phr_auth::Organisation],
    t: &T,
    lang: Lang,
) -> LogRow {
    let org = r.org_oid.as_deref().map(|oid| {
        orgs.iter()
            .find(|o| o.oid == oid)
            .map(|o| o.name(lang.code()).to_owned())
            .or_else(|| r.org_name.clone())
            .unwrap_or_else(|| oid.to_owned())
    });
    let person = r
        .professional_name
        .clone()
        .unwrap_or_else(|| professional.to_owned());
    let who = match org {
        Some(org) => format!("{org}, {person}"),
        None => person,
    };
    let catalog = phr_catalog::Catalog::get();
    let contents: Vec<String> = r
        .contents
        .iter()
        .map(|key| {
            catalog
                .contents()
                .iter()
                .find(|c| c.kind.key() == key)
                .map(|c| in_sentence(c.name(catalog_lang(lang))))
                .unwrap_or_else(|| key.clone())
        })
        .collect();
    let what = if contents.is_empty() {
        let mut what = r.interaction.clone().unwrap_or_default();
        if let Some(rt) = r.resource_type.as_deref().filter(|rt| !rt.is_empty()) {
            what = format!("{what}: {}", resource_name(rt, lang));
        }
        what
    } else {
        format!("{} {}", t.viewed, contents.join(", "))
    };
    LogRow {
        time: format::micros_time(r.recorded_us, lang),
        who,
        what,
        result: if r.status < 400 {
            t.result_ok.to_owned()
        } else {
            format!("{} ({})", t.result_refused, r.status)
        },
        amount: r.amount,
    }
}

/// A name as it reads inside a sentence: "Blood pressure" becomes "blood pressure", but
/// an abbreviation ("HbA1c", "BMI") keeps its capitals.
fn in_sentence(name: &str) -> String {
    let mut chars = name.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && !second.is_uppercase() => {
            first.to_lowercase().chain(name.chars().skip(1)).collect()
        }
        _ => name.to_owned(),
    }
}

// --- export ---------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "portal/export.html")]
struct ExportPage {
    c: Chrome,
    files: Vec<(String, String)>,
}

fn export_types() -> impl Iterator<Item = &'static str> {
    std::iter::once("Patient").chain(COMPARTMENT_TYPES.iter().copied())
}

pub async fn export_page(State(state): State<AppState>, ctx: Ctx) -> Response {
    run(state, ctx, |state, ctx| {
        citizen(ctx)?;
        let files = export_types()
            .map(|rt| {
                (
                    format!("/portal/export/{rt}.ndjson"),
                    format!("{} ({rt}.ndjson)", resource_name(rt, ctx.lang)),
                )
            })
            .collect();
        render(
            &ExportPage {
                c: chrome(state, ctx),
                files,
            },
            StatusCode::OK,
        )
    })
    .await
}

fn download(body: Vec<u8>, content_type: &'static str, filename: &str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

pub async fn export_bundle(State(state): State<AppState>, ctx: Ctx) -> Response {
    run(state, ctx, |state, ctx| {
        let patient = citizen(ctx)?;
        let resources = export::patient_resources(state.fhir.storage.as_ref(), &patient)
            .map_err(|e| Fail::Internal(e.to_string()))?;
        let count = resources.len() as u64;
        let by_type = export::by_type(&resources).map_err(|e| Fail::Internal(e.to_string()))?;
        let bundle = export::collection_bundle(by_type, &state.fhir.settings.base_url);
        let body = serde_json::to_vec_pretty(&bundle).map_err(|e| Fail::Internal(e.to_string()))?;
        let mut record = portal_audit(state, &patient, "export");
        record.amount = count;
        audit(state, record);
        Ok(download(body, "application/fhir+json", "my-phr-data.json"))
    })
    .await
}

pub async fn export_ndjson(
    State(state): State<AppState>,
    Path(file): Path<String>,
    ctx: Ctx,
) -> Response {
    run(state, ctx, move |state, ctx| {
        let patient = citizen(ctx)?;
        let resource_type = file
            .strip_suffix(".ndjson")
            .filter(|rt| export_types().any(|t| t == *rt))
            .ok_or(Fail::NotFound)?;
        let storage = state.fhir.storage.as_ref();
        let stored = if resource_type == "Patient" {
            storage
                .read("Patient", &patient)
                .map_err(|e| Fail::Internal(e.to_string()))?
                .into_iter()
                .filter(|p| !p.deleted)
                .collect()
        } else {
            export::search_all(storage, resource_type, Some(&patient))
                .map_err(|e| Fail::Internal(e.to_string()))?
        };
        let values: Vec<Value> = stored.iter().filter_map(|s| export::body(s).ok()).collect();
        let mut record = portal_audit(state, &patient, "export");
        record.resource_type = Some(resource_type.to_owned());
        record.amount = values.len() as u64;
        audit(state, record);
        Ok(download(
            export::ndjson(&values),
            "application/fhir+ndjson",
            &format!("{resource_type}.ndjson"),
        ))
    })
    .await
}
