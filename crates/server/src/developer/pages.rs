//! The console's handlers: each parses the request, runs one step on the blocking pool
//! ([`run`]), and maps a [`Fail`] to a readable page. A form without the session's CSRF
//! token, an application of another developer, or bad input changes nothing.

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use phr_auth::apps::{KeysError, check_keys};
use phr_auth::flows::registration::{self, PageRegistration, RegistrationError};
use phr_auth::traffic::checks::Report;
use phr_auth::{App, SessionKind};
use phr_catalog::Catalog;

use super::texts::{Texts, texts};
use super::view::{self, Rejection, RequestCount};
use super::{
    Ctx, IDLE_TIMEOUT, LIFETIME, LOGIN_CSRF_COOKIE, ROOT, SessionData, developer_identity,
    set_session_cookie,
};
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

const DEFAULT_SCOPE: &str = "patient/Observation.read patient/Observation.write offline_access";

/// Why a step could not go on.
enum Fail {
    /// Production mode: no organisation identity provider is configured.
    Production,
    /// Not signed in (or the session ended).
    Login,
    /// A form without the session's token.
    Csrf,
    /// No such application of this developer.
    NotFound,
    /// An unknown data content.
    UnknownContent,
    Internal(String),
}

impl From<phr_auth::AuthError> for Fail {
    fn from(e: phr_auth::AuthError) -> Self {
        Fail::Internal(e.to_string())
    }
}

type Page = Result<Response, Fail>;

/// What every page shows around its content.
struct Chrome {
    t: &'static Texts,
    lang: &'static str,
    switches: Vec<LangLink>,
    /// The signed-in developer and the token of the sign-out form.
    developer: Option<(String, String)>,
}

fn chrome(ctx: &Ctx) -> Chrome {
    Chrome {
        t: texts(ctx.lang),
        lang: ctx.lang.code(),
        switches: language_links(&ctx.path, &ctx.query, ctx.lang, &[]),
        developer: ctx
            .developer
            .as_ref()
            .map(|d| (d.data.developer.clone(), d.data.csrf.clone())),
    }
}

#[derive(Template)]
#[template(path = "developer/message.html")]
struct MessagePage {
    c: Chrome,
    title: String,
    text: String,
}

#[derive(Template)]
#[template(path = "developer/login.html")]
struct LoginPage {
    c: Chrome,
    csrf: String,
    email: String,
    error: Option<&'static str>,
}

struct AppRow {
    id: String,
    name: String,
    status: &'static str,
    created: String,
}

#[derive(Template)]
#[template(path = "developer/home.html")]
struct HomePage {
    c: Chrome,
    apps: Vec<AppRow>,
}

#[derive(Template)]
#[template(path = "developer/register.html")]
struct RegisterPage {
    c: Chrome,
    csrf: String,
    error: Option<String>,
    name: String,
    redirect_uris: String,
    scope: String,
    confidential: bool,
    contact: String,
}

#[derive(Template)]
#[template(path = "developer/registered.html")]
struct RegisteredPage {
    c: Chrome,
    client_id: String,
    client_secret: Option<String>,
    scope: String,
}

struct ContentOption {
    code: &'static str,
    name: String,
}

/// The forms of an application's page that change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AppForm {
    Redirects,
    Scope,
    Keys,
    Secret,
}

/// A refused change, brought back to the application's page: what was entered (already
/// fit to show) and why.
enum Refused {
    Redirects {
        entered: String,
        why: String,
    },
    Scope {
        entered: String,
        why: String,
    },
    /// `jwks` is empty when what was pasted held a private key: it is never shown again.
    Keys {
        jwks: String,
        jwks_uri: String,
        why: String,
    },
    Secret {
        why: String,
    },
}

#[derive(Template)]
#[template(path = "developer/app.html")]
struct AppPage {
    c: Chrome,
    csrf: String,
    app: App,
    /// The forms' values: as stored, or as entered before a refusal. Redirect URIs one per
    /// line; the JWKS pretty-printed.
    redirect_uris: String,
    scope: String,
    jwks: String,
    jwks_uri: String,
    /// The form whose change was refused, and why.
    refused: Option<(AppForm, String)>,
    requests: Vec<RequestCount>,
    rejected: Vec<Rejection>,
    contents: Vec<ContentOption>,
    /// When the withdrawn-grant probe last started.
    probe_started: Option<i64>,
}

impl AppPage {
    /// Why a change through `form` was refused, if it was.
    fn error_on(&self, form: AppForm) -> Option<&str> {
        self.refused
            .as_ref()
            .filter(|(refused, _)| *refused == form)
            .map(|(_, why)| why.as_str())
    }
}

#[derive(Template)]
#[template(path = "developer/secret.html")]
struct SecretPage {
    c: Chrome,
    app: App,
    secret: String,
}

#[derive(Template)]
#[template(path = "developer/report.html")]
struct ReportPage {
    c: Chrome,
    app: App,
    content_name: String,
    report: Report,
}

fn render(template: &impl Template, status: StatusCode) -> Response {
    match template.render() {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(error = %e, "developer console template failed");
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
        Fail::Production => message(
            ctx,
            StatusCode::NOT_IMPLEMENTED,
            t.production_title,
            t.production_text,
        ),
        Fail::Login => see_other(ROOT),
        Fail::Csrf => message(ctx, StatusCode::FORBIDDEN, t.error_title, t.session_expired),
        Fail::NotFound => message(ctx, StatusCode::NOT_FOUND, t.error_title, t.not_found),
        Fail::UnknownContent => message(
            ctx,
            StatusCode::BAD_REQUEST,
            t.error_title,
            t.content_unknown,
        ),
        Fail::Internal(why) => {
            tracing::error!(error = %why, "developer console page failed");
            message(
                ctx,
                StatusCode::INTERNAL_SERVER_ERROR,
                t.error_title,
                t.failed,
            )
        }
    }
}

/// Runs a step on the blocking pool; production mode answers 501 before any step.
async fn run<F>(state: AppState, ctx: Ctx, f: F) -> Response
where
    F: FnOnce(&AppState, &Ctx) -> Page + Send + 'static,
{
    let joined = tokio::task::spawn_blocking(move || {
        let page = if state.auth.config().mode.is_sandbox() {
            f(&state, &ctx)
        } else {
            Err(Fail::Production)
        };
        let mut response = page.unwrap_or_else(|fail| failure_page(&ctx, fail));
        ctx.page_lang.remember(ctx.cookies, &mut response);
        response
    })
    .await;
    joined.unwrap_or_else(|_| (StatusCode::INTERNAL_SERVER_ERROR, "page failed").into_response())
}

/// The signed-in developer.
fn developer(ctx: &Ctx) -> Result<String, Fail> {
    ctx.developer
        .as_ref()
        .map(|d| d.data.developer.clone())
        .ok_or(Fail::Login)
}

/// The signed-in developer of a form post with a valid CSRF token.
fn posting_developer(ctx: &Ctx, form: &Pairs) -> Result<String, Fail> {
    let developer = developer(ctx)?;
    if !ctx.csrf_ok(form) {
        return Err(Fail::Csrf);
    }
    Ok(developer)
}

/// The developer's own application `id` (another's is as unknown as a missing one).
fn own_app(state: &AppState, developer: &str, id: &str) -> Result<App, Fail> {
    match state.auth.app(id)? {
        Some(app) if app.developer.as_deref() == Some(developer) => Ok(app),
        _ => Err(Fail::NotFound),
    }
}

fn catalog_lang(lang: Lang) -> phr_catalog::Lang {
    match lang {
        Lang::Fi => phr_catalog::Lang::Fi,
        Lang::Sv => phr_catalog::Lang::Sv,
        Lang::En => phr_catalog::Lang::En,
    }
}

/// The catalogue's data contents (code, name in `lang`, resource type), each code once.
pub(crate) fn contents(lang: Lang) -> Vec<(&'static str, String, &'static str)> {
    let mut seen = std::collections::HashSet::new();
    Catalog::get()
        .contents()
        .iter()
        .filter(|c| seen.insert(c.kind.key()))
        .map(|c| {
            (
                c.kind.key(),
                c.name(catalog_lang(lang)).to_string(),
                c.resource_type,
            )
        })
        .collect()
}

fn date(seconds: i64) -> String {
    view::instant(seconds.saturating_mul(1_000_000))
}

// --- sign-in ------------------------------------------------------------------------------

fn login_page(ctx: &Ctx, email: String, error: Option<&'static str>) -> Response {
    let token = csrf::new_token();
    let page = LoginPage {
        c: chrome(ctx),
        csrf: token.clone(),
        email,
        error,
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut response = render(&page, status);
    ctx.cookies
        .add(&mut response, LOGIN_CSRF_COOKIE, &token, 3600);
    response
}

pub async fn home(State(state): State<AppState>, ctx: Ctx) -> Response {
    run(state, ctx, |state, ctx| {
        let Ok(developer) = developer(ctx) else {
            return Ok(login_page(ctx, String::new(), None));
        };
        let apps = state
            .auth
            .developer_apps(&developer)?
            .into_iter()
            .map(|app| AppRow {
                status: app.status.code(),
                created: date(app.created_at),
                id: app.app_id,
                name: app.name,
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
        let entered = field(&form, "email");
        let Some(developer) = developer_identity(&entered) else {
            let t = texts(ctx.lang);
            // Never echo something that reads as an identity code back into the page.
            let shown = phr_auth::traffic::redact_identity_codes(&entered);
            return Ok(login_page(ctx, shown, Some(t.email_invalid)));
        };
        if let Some(old) = &ctx.developer {
            state.auth.sessions().end(&old.token)?;
        }
        let data = SessionData {
            csrf: csrf::new_token(),
            developer,
        };
        let json = serde_json::to_string(&data).map_err(|e| Fail::Internal(e.to_string()))?;
        let token =
            state
                .auth
                .sessions()
                .create(SessionKind::Developer, &json, IDLE_TIMEOUT, LIFETIME)?;
        let mut response = see_other(ROOT);
        set_session_cookie(ctx, &mut response, &token, LIFETIME);
        ctx.cookies.add(&mut response, LOGIN_CSRF_COOKIE, "", 0);
        Ok(response)
    })
    .await
}

pub async fn logout(State(state): State<AppState>, ctx: Ctx, Form(form): Form<Pairs>) -> Response {
    run(state, ctx, move |state, ctx| {
        posting_developer(ctx, &form)?;
        if let Some(d) = &ctx.developer {
            state.auth.sessions().end(&d.token)?;
        }
        let mut response = see_other(ROOT);
        set_session_cookie(ctx, &mut response, "", 0);
        Ok(response)
    })
    .await
}

// --- registration -------------------------------------------------------------------------

pub async fn register_page(State(state): State<AppState>, ctx: Ctx) -> Response {
    run(state, ctx, |_, ctx| {
        developer(ctx)?;
        let csrf = ctx
            .developer
            .as_ref()
            .map(|d| d.data.csrf.clone())
            .unwrap_or_default();
        Ok(render(
            &RegisterPage {
                c: chrome(ctx),
                csrf,
                error: None,
                name: String::new(),
                redirect_uris: String::new(),
                scope: DEFAULT_SCOPE.to_owned(),
                confidential: false,
                contact: String::new(),
            },
            StatusCode::OK,
        ))
    })
    .await
}

pub async fn register_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<Pairs>,
) -> Response {
    run(state, ctx, move |state, ctx| {
        let developer = posting_developer(ctx, &form)?;
        let entered = PageRegistration {
            name: field(&form, "name"),
            redirect_uris: field(&form, "redirect_uris"),
            scope: field(&form, "scope"),
            client_type: field(&form, "client_type"),
            contact: field(&form, "contact"),
            jwks: None,
            jwks_uri: None,
        };
        match registration::register_from_page(&state.auth, &entered, &developer) {
            Ok(registered) => Ok(render(
                &RegisteredPage {
                    c: chrome(ctx),
                    client_id: registered.app.app_id,
                    client_secret: registered.client_secret,
                    scope: registered.app.scope,
                },
                StatusCode::CREATED,
            )),
            Err(RegistrationError::Invalid { description, .. }) => Ok(render(
                &RegisterPage {
                    c: chrome(ctx),
                    csrf: field(&form, csrf::FIELD),
                    error: Some(phr_auth::traffic::redact_identity_codes(&description)),
                    confidential: entered.client_type == "confidential",
                    name: entered.name,
                    redirect_uris: entered.redirect_uris,
                    scope: entered.scope,
                    contact: entered.contact,
                },
                StatusCode::BAD_REQUEST,
            )),
            Err(RegistrationError::Closed) => Err(Fail::Production),
            Err(RegistrationError::Failed(e)) => Err(Fail::Internal(e.to_string())),
        }
    })
    .await
}

// --- an application's traffic and acceptance ---------------------------------------------

/// The address of an application's page, at `section` if given.
fn app_path(app_id: &str, section: Option<&str>) -> String {
    let id: String = url::form_urlencoded::byte_serialize(app_id.as_bytes()).collect();
    match section {
        Some(section) => format!("{}/{id}#{section}", super::APPS_PATH),
        None => format!("{}/{id}", super::APPS_PATH),
    }
}

/// Text entered in a form, fit to show again: nothing that reads as an identity code.
fn shown(text: &str) -> String {
    phr_auth::traffic::redact_identity_codes(text)
}

/// An application's page; after a refused change (answered 400), with what was entered
/// and why, beside the form it came from.
fn app_view(state: &AppState, ctx: &Ctx, app: App, refused: Option<Refused>) -> Page {
    let rows = state.auth.traffic(&app.app_id)?;
    let contents = contents(ctx.lang)
        .into_iter()
        .map(|(code, name, _)| ContentOption { code, name })
        .collect();
    let status = if refused.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut redirect_uris = app.redirect_uris.join("\n");
    let mut scope = app.scope.clone();
    let mut jwks = app
        .jwks
        .as_ref()
        .and_then(|jwks| serde_json::to_string_pretty(jwks).ok())
        .unwrap_or_default();
    let mut jwks_uri = app.jwks_uri.clone().unwrap_or_default();
    let refused = refused.map(|refused| match refused {
        Refused::Redirects { entered, why } => {
            redirect_uris = entered;
            (AppForm::Redirects, why)
        }
        Refused::Scope { entered, why } => {
            scope = entered;
            (AppForm::Scope, why)
        }
        Refused::Keys {
            jwks: entered_jwks,
            jwks_uri: entered_uri,
            why,
        } => {
            jwks = entered_jwks;
            jwks_uri = entered_uri;
            (AppForm::Keys, why)
        }
        Refused::Secret { why } => (AppForm::Secret, why),
    });
    Ok(render(
        &AppPage {
            c: chrome(ctx),
            csrf: ctx
                .developer
                .as_ref()
                .map(|d| d.data.csrf.clone())
                .unwrap_or_default(),
            requests: view::request_counts(&rows),
            rejected: view::rejections(&rows),
            redirect_uris,
            scope,
            jwks,
            jwks_uri,
            refused,
            probe_started: state.auth.probe_started(&app.app_id)?,
            app,
            contents,
        },
        status,
    ))
}

/// Starts the withdrawn-grant probe of the developer's application (the same step as
/// `phr app probe APP --start`) and shows its page again.
pub async fn probe_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<Pairs>,
) -> Response {
    run(state, ctx, move |state, ctx| {
        let developer = posting_developer(ctx, &form)?;
        let app = own_app(state, &developer, &id)?;
        state.auth.start_probe(&app.app_id, "developer")?;
        Ok(see_other(&app_path(&app.app_id, Some("probe"))))
    })
    .await
}

pub async fn app_page(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Response {
    run(state, ctx, move |state, ctx| {
        let developer = developer(ctx)?;
        let app = own_app(state, &developer, &id)?;
        app_view(state, ctx, app, None)
    })
    .await
}

pub async fn redirects_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<Pairs>,
) -> Response {
    run(state, ctx, move |state, ctx| {
        let developer = posting_developer(ctx, &form)?;
        let app = own_app(state, &developer, &id)?;
        let text = field(&form, "redirect_uris");
        let uris = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        match state.auth.set_app_redirect_uris(&app.app_id, uris) {
            Ok(app) => Ok(see_other(&app_path(&app.app_id, None))),
            Err(phr_auth::AuthError::Invalid(why)) => app_view(
                state,
                ctx,
                app,
                Some(Refused::Redirects {
                    entered: text,
                    why: shown(&why),
                }),
            ),
            Err(e) => Err(e.into()),
        }
    })
    .await
}

pub async fn secret_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<Pairs>,
) -> Response {
    run(state, ctx, move |state, ctx| {
        let developer = posting_developer(ctx, &form)?;
        let app = own_app(state, &developer, &id)?;
        match state.auth.new_client_secret(&app.app_id) {
            Ok(secret) => Ok(render(
                &SecretPage {
                    c: chrome(ctx),
                    app,
                    secret,
                },
                StatusCode::OK,
            )),
            Err(phr_auth::AuthError::Invalid(why)) => {
                app_view(state, ctx, app, Some(Refused::Secret { why: shown(&why) }))
            }
            Err(e) => Err(e.into()),
        }
    })
    .await
}

/// Replaces the scopes the application may ask for (checked as at registration).
pub async fn scope_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<Pairs>,
) -> Response {
    run(state, ctx, move |state, ctx| {
        let developer = posting_developer(ctx, &form)?;
        let app = own_app(state, &developer, &id)?;
        let entered = field(&form, "scope");
        match state.auth.set_app_scope(&app.app_id, &entered) {
            Ok(app) => Ok(see_other(&app_path(&app.app_id, Some("scope-form")))),
            Err(phr_auth::AuthError::Invalid(why)) => {
                let t = texts(ctx.lang);
                app_view(
                    state,
                    ctx,
                    app,
                    Some(Refused::Scope {
                        entered: shown(&entered),
                        why: shown(&format!("{} {why}", t.scope_refused)),
                    }),
                )
            }
            Err(e) => Err(e.into()),
        }
    })
    .await
}

/// The page's words for why keys were refused.
fn keys_refusal(t: &Texts, error: &KeysError) -> String {
    match error {
        KeysError::Both => t.keys_both.to_owned(),
        KeysError::Missing => t.keys_missing.to_owned(),
        KeysError::PrivateKey { member } => {
            format!(
                "{} (\"{member}\"). {}",
                t.keys_private, t.keys_private_advice
            )
        }
        KeysError::Invalid(why) => format!("{} ({why}).", t.keys_invalid),
        KeysError::Unusable { position } => {
            format!("{}: {} {position}.", t.key_unusable, t.key_word)
        }
        KeysError::Uri => t.jwks_uri_invalid.to_owned(),
    }
}

/// Sets the application's public keys from the form (a JWKS or a `jwks_uri`), or removes
/// them (the remove button, or both fields left empty). Checked as at registration.
pub async fn keys_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<Pairs>,
) -> Response {
    run(state, ctx, move |state, ctx| {
        let developer = posting_developer(ctx, &form)?;
        let app = own_app(state, &developer, &id)?;
        let t = texts(ctx.lang);
        let remove = !field(&form, "remove").is_empty();
        let (text, uri) = if remove {
            (String::new(), String::new())
        } else {
            (field(&form, "jwks"), field(&form, "jwks_uri"))
        };
        let refused = |jwks: &str, why: String| {
            Some(Refused::Keys {
                jwks: shown(jwks),
                jwks_uri: shown(&uri),
                why: shown(&why),
            })
        };
        // A PEM private key is no JSON: still never shown again.
        if text.contains("-----BEGIN") && text.contains("PRIVATE KEY") {
            let why = format!("{}. {}", t.keys_private, t.keys_private_advice);
            return app_view(state, ctx, app, refused("", why));
        }
        let jwks = match text.trim() {
            "" => None,
            json => match serde_json::from_str::<serde_json::Value>(json) {
                Ok(jwks) => Some(jwks),
                Err(e) => {
                    let why = format!(
                        "{} ({} {}, {} {}).",
                        t.jwks_not_json,
                        t.line_word,
                        e.line(),
                        t.column_word,
                        e.column()
                    );
                    return app_view(state, ctx, app, refused(&text, why));
                }
            },
        };
        let jwks_uri = Some(uri.trim().to_owned()).filter(|u| !u.is_empty());
        // The registry's own check, for a reason in the page's language (storing checks
        // again).
        if let Err(error) = check_keys(app.client_type, jwks.as_ref(), jwks_uri.as_deref()) {
            let kept = if matches!(error, KeysError::PrivateKey { .. }) {
                ""
            } else {
                text.as_str()
            };
            return app_view(state, ctx, app, refused(kept, keys_refusal(t, &error)));
        }
        match state.auth.set_app_keys(&app.app_id, jwks, jwks_uri) {
            Ok(app) => Ok(see_other(&app_path(&app.app_id, Some("keys")))),
            Err(phr_auth::AuthError::Invalid(why)) => {
                let why = format!("{} {why}", t.keys_refused);
                app_view(state, ctx, app, refused(&text, why))
            }
            Err(e) => Err(e.into()),
        }
    })
    .await
}

pub async fn acceptance(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Response {
    run(state, ctx, move |state, ctx| {
        let developer = developer(ctx)?;
        let app = own_app(state, &developer, &id)?;
        let code = ctx.query("content").unwrap_or("");
        let (code, content_name, resource_type) = contents(ctx.lang)
            .into_iter()
            .find(|(c, _, _)| *c == code)
            .ok_or(Fail::UnknownContent)?;
        let report = state
            .auth
            .acceptance_report(&app.app_id, code, resource_type)?;
        Ok(render(
            &ReportPage {
                c: chrome(ctx),
                app,
                content_name,
                report,
            },
            StatusCode::OK,
        ))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_of_keys_is_explained_in_each_language() {
        let refusals = [
            KeysError::Both,
            KeysError::Missing,
            KeysError::PrivateKey { member: "d" },
            KeysError::Invalid("JWKS has no keys".into()),
            KeysError::Unusable { position: 2 },
            KeysError::Uri,
        ];
        for error in &refusals {
            let words: Vec<String> = [Lang::Fi, Lang::Sv, Lang::En]
                .into_iter()
                .map(|lang| keys_refusal(texts(lang), error))
                .collect();
            assert!(words.iter().all(|w| !w.is_empty()), "{error:?}");
            assert!(
                words[0] != words[1] && words[1] != words[2] && words[0] != words[2],
                "{words:?}"
            );
        }
        let private = keys_refusal(texts(Lang::Fi), &KeysError::PrivateKey { member: "d" });
        assert!(private.contains("(\"d\")"), "{private}");
        let unusable = keys_refusal(texts(Lang::Sv), &KeysError::Unusable { position: 2 });
        assert!(unusable.ends_with("nyckel 2."), "{unusable}");
    }
}
