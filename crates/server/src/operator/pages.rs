//! The operator page's handlers: each parses the request, runs one step on the blocking pool
//! ([`run`]) through the same calls as the operator commands, and maps a [`Fail`] to a
//! readable page. A form without the session's CSRF token, an unknown application or
//! content, or a refused step changes nothing.

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use phr_auth::apps::{AppDetails, RoundOutcome};
use phr_auth::traffic::checks::Report;
use phr_auth::{AuthError, SessionKind};

use super::texts::{Texts, texts};
use super::{Ctx, IDLE_TIMEOUT, LIFETIME, LOGIN_CSRF_COOKIE, ROOT, SessionData};
use crate::AppState;
use crate::web::chrome::{LangLink, language_links};
use crate::web::{Lang, csrf, html, see_other};

type Pairs = Vec<(String, String)>;

/// The first value of a form field ("" when absent).
fn field(form: &Pairs, name: &str) -> String {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Why a step could not go on.
enum Fail {
    /// Not signed in (or the session ended).
    Login,
    /// A form without the session's token.
    Csrf,
    /// A sign-in link that is unknown, used or expired.
    Link,
    NotFound,
    UnknownContent,
    Internal(String),
}

impl From<AuthError> for Fail {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::NotFound(_) => Fail::NotFound,
            other => Fail::Internal(other.to_string()),
        }
    }
}

type Page = Result<Response, Fail>;

/// What every page shows around its content.
struct Chrome {
    t: &'static Texts,
    lang: &'static str,
    switches: Vec<LangLink>,
    /// The token of the sign-out form, when signed in.
    signed_in: Option<String>,
}

fn chrome(ctx: &Ctx) -> Chrome {
    Chrome {
        t: texts(ctx.lang),
        lang: ctx.lang.code(),
        switches: language_links(&ctx.path, &ctx.query, ctx.lang, &[]),
        signed_in: ctx.operator.as_ref().map(|o| o.data.csrf.clone()),
    }
}

#[derive(Template)]
#[template(path = "operator/message.html")]
struct MessagePage {
    c: Chrome,
    title: String,
    text: String,
}

#[derive(Template)]
#[template(path = "operator/login.html")]
struct LoginPage {
    c: Chrome,
    csrf: String,
    link: String,
}

struct AppRow {
    id: String,
    name: String,
    status: &'static str,
    kind: &'static str,
    contents: String,
}

#[derive(Template)]
#[template(path = "operator/home.html")]
struct HomePage {
    c: Chrome,
    apps: Vec<AppRow>,
}

struct ContentOption {
    code: &'static str,
    name: String,
}

#[derive(Template)]
#[template(path = "operator/app.html")]
struct AppPage {
    c: Chrome,
    csrf: String,
    details: AppDetails,
    contents: Vec<ContentOption>,
    probe_started: Option<i64>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "operator/report.html")]
struct ReportPage {
    c: Chrome,
    app_id: String,
    app_name: String,
    content_name: String,
    report: Report,
}

fn render(template: &impl Template, status: StatusCode) -> Response {
    match template.render() {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(error = %e, "operator page template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "page rendering failed").into_response()
        }
    }
}

fn message(ctx: &Ctx, status: StatusCode, title: &str, text: &str) -> Response {
    render(
        &MessagePage {
            c: chrome(ctx),
            title: title.to_owned(),
            text: text.to_owned(),
        },
        status,
    )
}

fn failure_page(ctx: &Ctx, fail: Fail) -> Response {
    let t = texts(ctx.lang);
    match fail {
        Fail::Login => message(
            ctx,
            StatusCode::UNAUTHORIZED,
            t.signed_out_title,
            t.signed_out_text,
        ),
        Fail::Csrf => message(ctx, StatusCode::FORBIDDEN, t.error_title, t.session_expired),
        Fail::Link => message(ctx, StatusCode::FORBIDDEN, t.error_title, t.link_invalid),
        Fail::NotFound => message(ctx, StatusCode::NOT_FOUND, t.error_title, t.not_found),
        Fail::UnknownContent => message(
            ctx,
            StatusCode::BAD_REQUEST,
            t.error_title,
            t.content_unknown,
        ),
        Fail::Internal(why) => {
            tracing::error!(error = %why, "operator page failed");
            message(
                ctx,
                StatusCode::INTERNAL_SERVER_ERROR,
                t.error_title,
                t.failed,
            )
        }
    }
}

/// Runs a step on the blocking pool.
async fn run<F>(state: AppState, ctx: Ctx, f: F) -> Response
where
    F: FnOnce(&AppState, &Ctx) -> Page + Send + 'static,
{
    let joined = tokio::task::spawn_blocking(move || {
        let mut response = f(&state, &ctx).unwrap_or_else(|fail| failure_page(&ctx, fail));
        ctx.page_lang.remember(ctx.cookies, &mut response);
        response
    })
    .await;
    joined.unwrap_or_else(|_| (StatusCode::INTERNAL_SERVER_ERROR, "page failed").into_response())
}

/// The signed-in operator's session token.
fn signed_in(ctx: &Ctx) -> Result<(), Fail> {
    ctx.operator.as_ref().map(|_| ()).ok_or(Fail::Login)
}

/// A form post of the signed-in operator with a valid CSRF token.
fn posting(ctx: &Ctx, form: &Pairs) -> Result<(), Fail> {
    signed_in(ctx)?;
    if !ctx.csrf_ok(form) {
        return Err(Fail::Csrf);
    }
    Ok(())
}

/// The catalogue's data content `code` (its name in `lang`, its resource type).
fn content(lang: Lang, code: &str) -> Result<(&'static str, String, &'static str), Fail> {
    crate::developer::contents(lang)
        .into_iter()
        .find(|(c, _, _)| *c == code)
        .ok_or(Fail::UnknownContent)
}

fn app_link(id: &str) -> String {
    format!(
        "{ROOT}/apps/{}",
        url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
    )
}

// --- sign-in --------------------------------------------------------------------------------

/// `/operator/login?link=…`: the form that uses the link (following a link changes nothing).
pub async fn login_page(State(state): State<AppState>, ctx: Ctx) -> Response {
    run(state, ctx, |_, ctx| {
        let Some(link) = ctx.query("link").filter(|l| l.len() <= 128) else {
            return Err(Fail::Login);
        };
        let token = csrf::new_token();
        let mut response = render(
            &LoginPage {
                c: chrome(ctx),
                csrf: token.clone(),
                link: link.to_owned(),
            },
            StatusCode::OK,
        );
        ctx.cookies
            .add(&mut response, LOGIN_CSRF_COOKIE, &token, 15 * 60);
        Ok(response)
    })
    .await
}

pub async fn login(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<Pairs>,
) -> Response {
    // No session before signing in: the expected token is the one the page's cookie holds.
    let expected = ctx
        .cookies
        .read(&headers, LOGIN_CSRF_COOKIE)
        .unwrap_or("")
        .to_owned();
    run(state, ctx, move |state, ctx| {
        if !csrf::check(&expected, &form) {
            return Err(Fail::Csrf);
        }
        let link = field(&form, "link");
        if link.is_empty() || link.len() > 128 || !state.auth.use_operator_sign_in_link(&link)? {
            return Err(Fail::Link);
        }
        if let Some(old) = &ctx.operator {
            state.auth.sessions().end(&old.token)?;
        }
        let data = SessionData {
            csrf: csrf::new_token(),
        };
        let json = serde_json::to_string(&data).map_err(|e| Fail::Internal(e.to_string()))?;
        let token =
            state
                .auth
                .sessions()
                .create(SessionKind::Operator, &json, IDLE_TIMEOUT, LIFETIME)?;
        let mut response = see_other(ROOT);
        ctx.cookies
            .add(&mut response, super::COOKIE, &token, LIFETIME);
        ctx.cookies.add(&mut response, LOGIN_CSRF_COOKIE, "", 0);
        Ok(response)
    })
    .await
}

pub async fn logout(State(state): State<AppState>, ctx: Ctx, Form(form): Form<Pairs>) -> Response {
    run(state, ctx, move |state, ctx| {
        posting(ctx, &form)?;
        if let Some(o) = &ctx.operator {
            state.auth.sessions().end(&o.token)?;
        }
        let mut response = see_other(ROOT);
        ctx.cookies.add(&mut response, super::COOKIE, "", 0);
        Ok(response)
    })
    .await
}

// --- applications ---------------------------------------------------------------------------

pub async fn home(State(state): State<AppState>, ctx: Ctx) -> Response {
    run(state, ctx, |state, ctx| {
        signed_in(ctx)?;
        let apps = state
            .auth
            .list_app_details()?
            .into_iter()
            .map(|d| AppRow {
                status: d.app.status.code(),
                kind: d.app.kind.code(),
                contents: d
                    .contents
                    .iter()
                    .map(|c| c.content.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
                id: d.app.app_id,
                name: d.app.name,
            })
            .collect();
        Ok(render(
            &HomePage {
                c: chrome(ctx),
                apps,
            },
            StatusCode::OK,
        ))
    })
    .await
}

fn app_view(state: &AppState, ctx: &Ctx, id: &str, error: Option<String>) -> Page {
    let details = state.auth.app_details(id)?.ok_or(Fail::NotFound)?;
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(render(
        &AppPage {
            c: chrome(ctx),
            csrf: ctx
                .operator
                .as_ref()
                .map(|o| o.data.csrf.clone())
                .unwrap_or_default(),
            contents: crate::developer::contents(ctx.lang)
                .into_iter()
                .map(|(code, name, _)| ContentOption { code, name })
                .collect(),
            probe_started: state.auth.probe_started(id)?,
            details,
            error,
        },
        status,
    ))
}

pub async fn app_page(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Response {
    run(state, ctx, move |state, ctx| {
        signed_in(ctx)?;
        app_view(state, ctx, &id, None)
    })
    .await
}

pub async fn acceptance(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Response {
    run(state, ctx, move |state, ctx| {
        signed_in(ctx)?;
        let app = state.auth.app(&id)?.ok_or(Fail::NotFound)?;
        let (code, content_name, resource_type) =
            content(ctx.lang, ctx.query("content").unwrap_or(""))?;
        let report = state
            .auth
            .acceptance_report(&app.app_id, code, resource_type)?;
        Ok(render(
            &ReportPage {
                c: chrome(ctx),
                app_id: app.app_id,
                app_name: app.name,
                content_name,
                report,
            },
            StatusCode::OK,
        ))
    })
    .await
}

/// A refused step shows the application's page with the reason (never the input itself:
/// a note may hold what must not be shown).
fn refused_or(state: &AppState, ctx: &Ctx, id: &str, result: Result<(), AuthError>) -> Page {
    match result {
        Ok(()) => Ok(see_other(&app_link(id))),
        Err(AuthError::Invalid(why)) | Err(AuthError::NotAllowed(why)) => app_view(
            state,
            ctx,
            id,
            Some(phr_auth::traffic::redact_identity_codes(&why)),
        ),
        Err(e) => Err(e.into()),
    }
}

/// Records a joint-testing round (as `phr app round`).
pub async fn round(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<Pairs>,
) -> Response {
    run(state, ctx, move |state, ctx| {
        posting(ctx, &form)?;
        state.auth.app(&id)?.ok_or(Fail::NotFound)?;
        let (code, _, _) = content(ctx.lang, &field(&form, "content"))?;
        let Some(outcome) = RoundOutcome::parse(&field(&form, "outcome")) else {
            return app_view(state, ctx, &id, Some("outcome: pass or fail".into()));
        };
        let note = field(&form, "note");
        let note = Some(note.trim()).filter(|n| !n.is_empty());
        let result = state
            .auth
            .record_test_round(&id, code, outcome, note)
            .map(|_| ());
        refused_or(state, ctx, &id, result)
    })
    .await
}

/// Accepts the application for a data content (as `phr app accept --content`).
pub async fn accept(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<Pairs>,
) -> Response {
    run(state, ctx, move |state, ctx| {
        posting(ctx, &form)?;
        state.auth.app(&id)?.ok_or(Fail::NotFound)?;
        let (code, _, _) = content(ctx.lang, &field(&form, "content"))?;
        let checked = |name: &str| form.iter().any(|(k, v)| k == name && v == "on");
        let (read, write) = match (checked("read"), checked("write")) {
            (false, false) => (true, true),
            rights => rights,
        };
        let result = state
            .auth
            .accept_app_contents(&id, &[code.to_owned()], read, write)
            .map(|_| ());
        refused_or(state, ctx, &id, result)
    })
    .await
}
