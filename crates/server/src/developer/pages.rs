//! The console's handlers: each parses the request, runs one step on the blocking pool
//! ([`run`]), and maps a [`Fail`] to a readable page. A form without the session's CSRF
//! token, an application of another developer, or bad input changes nothing. The
//! production sign-in ([`sign_in`], [`callback`]) also talks to the organisation's identity
//! provider, between its blocking steps; a callback that fails creates no session.

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use phr_auth::apps::{KeysError, check_keys, is_pem_private_key, looks_private};
use phr_auth::flows::developer::{self as developer_login, DeveloperLoginError};
use phr_auth::flows::registration::{self, PageOwner, PageRegistration, RegistrationError};
use phr_auth::oidc::UpstreamLogin;
use phr_auth::traffic::checks::Report;
use phr_auth::{App, ClientType, SessionKind};
use phr_catalog::Catalog;
use serde_json::Value;

use super::texts::{Texts, texts};
use super::view::{self, Rejection, RequestCount};
use super::{
    ATTEMPT_COOKIE, Ctx, IDLE_TIMEOUT, LIFETIME, LOGIN_CSRF_COOKIE, ROOT, SessionData,
    console_open, developer_identity, set_session_cookie,
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
    /// Production: what only the sandbox has (its traffic, the acceptance report, the
    /// withdrawn-grant probe, the sign-in by e-mail address).
    SandboxOnly(&'static str),
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
    /// The signed-in developer (as shown) and the token of the sign-out form.
    developer: Option<(String, String)>,
    /// Production mode: no sandbox notice, no sandbox-only sections.
    production: bool,
}

fn chrome(ctx: &Ctx) -> Chrome {
    Chrome {
        t: texts(ctx.lang),
        lang: ctx.lang.code(),
        switches: language_links(&ctx.path, &ctx.query, ctx.lang, &[]),
        developer: ctx
            .developer
            .as_ref()
            .map(|d| (d.data.shown_name(), d.data.csrf.clone())),
        production: ctx.production,
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

/// Production: the sign-in at the organisation's identity provider.
#[derive(Template)]
#[template(path = "developer/sign_in.html")]
struct SignInPage {
    c: Chrome,
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
    /// The chosen client authentication's code (`public`, `confidential`, `private_key_jwt`).
    client_type: String,
    contact: String,
    /// The keys entered for a `private_key_jwt` client; `jwks` is empty when what was pasted
    /// may hold a private key: it is never shown again.
    jwks: String,
    jwks_uri: String,
    /// The service certificate's OID (asked in production).
    certificate_oid: String,
}

#[derive(Template)]
#[template(path = "developer/registered.html")]
struct RegisteredPage {
    c: Chrome,
    client_id: String,
    client_secret: Option<String>,
    scope: String,
    client_auth: &'static str,
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
    /// The application's status in the page's words.
    status: &'static str,
}

impl AppPage {
    /// How the application authenticates, in the page's language.
    fn client_auth(&self) -> &'static str {
        client_auth_name(self.c.t, self.app.client_type)
    }

    /// Whether client authentication uses the application's keys.
    fn keys_used(&self) -> bool {
        self.app.client_type == ClientType::PrivateKeyJwt
    }

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
        Fail::SandboxOnly(text) => message(ctx, StatusCode::FORBIDDEN, t.error_title, text),
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

/// Runs a step on the blocking pool; production mode without the developers' identity
/// provider answers 501 before any step.
async fn run<F>(state: AppState, ctx: Ctx, f: F) -> Response
where
    F: FnOnce(&AppState, &Ctx) -> Page + Send + 'static,
{
    let joined = tokio::task::spawn_blocking(move || {
        let page = if console_open(&state) {
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

/// An application's status in the page's words: in production a registration of the
/// console waits for the operator's acceptance.
fn status_name(ctx: &Ctx, status: phr_auth::AppStatus) -> &'static str {
    if ctx.production && status == phr_auth::AppStatus::Sandbox {
        texts(ctx.lang).awaiting_acceptance
    } else {
        status.code()
    }
}

pub async fn home(State(state): State<AppState>, ctx: Ctx) -> Response {
    run(state, ctx, |state, ctx| {
        let Ok(developer) = developer(ctx) else {
            if ctx.production {
                return Ok(render(&SignInPage { c: chrome(ctx) }, StatusCode::OK));
            }
            return Ok(login_page(ctx, String::new(), None));
        };
        let apps = state
            .auth
            .developer_apps(&developer)?
            .into_iter()
            .map(|app| AppRow {
                status: status_name(ctx, app.status),
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
        if ctx.production {
            return Err(Fail::SandboxOnly(texts(ctx.lang).email_sandbox_only));
        }
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
        developer_login::sandbox_signed_in(&state.auth, &developer)?;
        let mut response = start_session(
            state,
            ctx,
            SessionData {
                csrf: csrf::new_token(),
                developer,
                name: None,
                email: None,
                org: None,
            },
        )?;
        ctx.cookies.add(&mut response, LOGIN_CSRF_COOKIE, "", 0);
        Ok(response)
    })
    .await
}

/// Signs the developer of `data` in (ending the browser's previous session, if any): the
/// one way both sign-ins end. Returns the redirect to the console's home.
fn start_session(state: &AppState, ctx: &Ctx, data: SessionData) -> Page {
    if let Some(old) = &ctx.developer {
        state.auth.sessions().end(&old.token)?;
    }
    let json = serde_json::to_string(&data).map_err(|e| Fail::Internal(e.to_string()))?;
    let token =
        state
            .auth
            .sessions()
            .create(SessionKind::Developer, &json, IDLE_TIMEOUT, LIFETIME)?;
    let mut response = see_other(ROOT);
    set_session_cookie(ctx, &mut response, &token, LIFETIME);
    Ok(response)
}

/// Production: starts a sign-in at the organisation's identity provider and sends the
/// browser there. The attempt's secrets stay here; the browser keeps only its value.
pub async fn sign_in(State(state): State<AppState>, ctx: Ctx) -> Response {
    if !developer_login::available(&state.auth) {
        return closed(&state, &ctx);
    }
    let login = UpstreamLogin::new();
    let url = match developer_login::authorization_url(&state.auth, &login).await {
        Ok(url) => url,
        Err(DeveloperLoginError::Upstream(why)) => {
            tracing::warn!(error = %why, "the developers' identity provider is out of reach");
            let t = texts(ctx.lang);
            return message(
                &ctx,
                StatusCode::BAD_GATEWAY,
                t.sign_in_title,
                t.sign_in_failed,
            );
        }
        Err(e) => return sign_in_failure(&ctx, e),
    };
    let auth = state.auth.clone();
    let kept = crate::web::blocking(move || developer_login::keep(&auth, &login)).await;
    let mut response = match kept {
        Some(Ok(attempt)) => {
            let mut response = see_other(&url);
            let lifetime = state.auth.config().session_lifetime;
            ctx.cookies
                .add(&mut response, ATTEMPT_COOKIE, &attempt, lifetime);
            response
        }
        Some(Err(e)) => sign_in_failure(&ctx, e),
        None => failure_page(&ctx, Fail::Internal("the sign-in step stopped".into())),
    };
    ctx.page_lang.remember(ctx.cookies, &mut response);
    response
}

/// Production: the organisation's identity provider sends the developer back here. The
/// browser's attempt is used up whatever the callback brings; only a verified developer of
/// a registered organisation gets a session.
pub async fn callback(State(state): State<AppState>, ctx: Ctx, headers: HeaderMap) -> Response {
    if !developer_login::available(&state.auth) {
        return closed(&state, &ctx);
    }
    let attempt = ctx
        .cookies
        .read(&headers, ATTEMPT_COOKIE)
        .map(str::to_owned);
    let outcome = signed_in_developer(&state, &ctx, attempt).await;
    let cookies = ctx.cookies;
    let mut response = match outcome {
        Ok(data) => {
            let (state, ctx) = (state.clone(), ctx);
            let done = crate::web::blocking(move || {
                let page = start_session(&state, &ctx, data);
                page.unwrap_or_else(|fail| failure_page(&ctx, fail))
            })
            .await;
            done.unwrap_or_else(|| {
                (StatusCode::INTERNAL_SERVER_ERROR, "page failed").into_response()
            })
        }
        Err(e) => sign_in_failure(&ctx, e),
    };
    cookies.add(&mut response, ATTEMPT_COOKIE, "", 0);
    response
}

/// The callback's steps: the attempt (used once), the provider's answer, the organisation.
async fn signed_in_developer(
    state: &AppState,
    ctx: &Ctx,
    attempt: Option<String>,
) -> Result<SessionData, DeveloperLoginError> {
    let stopped =
        || DeveloperLoginError::Failed(phr_auth::AuthError::Unavailable("stopped".into()));
    let auth = state.auth.clone();
    let login = crate::web::blocking(move || developer_login::take(&auth, attempt.as_deref()))
        .await
        .ok_or_else(stopped)??;
    let claimed = developer_login::finish(
        &state.auth,
        &login,
        ctx.query("state"),
        ctx.query("code"),
        ctx.query("error"),
    )
    .await?;
    let auth = state.auth.clone();
    let developer = crate::web::blocking(move || developer_login::signed_in(&auth, &claimed))
        .await
        .ok_or_else(stopped)??;
    Ok(SessionData {
        csrf: csrf::new_token(),
        developer: developer.key,
        name: developer.name,
        email: developer.email,
        org: Some((
            developer.organisation.oid.clone(),
            developer.organisation.name(ctx.lang.code()).to_owned(),
        )),
    })
}

/// A sign-in route where there is no such sign-in: production without the provider answers
/// 501, the sandbox sends the browser to its own sign-in.
fn closed(state: &AppState, ctx: &Ctx) -> Response {
    if state.auth.config().mode.is_sandbox() {
        see_other(ROOT)
    } else {
        failure_page(ctx, Fail::Production)
    }
}

/// Why a sign-in at the organisation's provider failed, as a page in the page's language.
/// What the provider answered is logged without any code or token.
fn sign_in_failure(ctx: &Ctx, error: DeveloperLoginError) -> Response {
    let t = texts(ctx.lang);
    let page = |status: StatusCode, text: String| message(ctx, status, t.sign_in_title, &text);
    let mut response = match error {
        DeveloperLoginError::NotConfigured => failure_page(ctx, Fail::Production),
        DeveloperLoginError::Expired => page(StatusCode::BAD_REQUEST, t.sign_in_expired.into()),
        DeveloperLoginError::Forged => page(StatusCode::FORBIDDEN, t.sign_in_forged.into()),
        DeveloperLoginError::Refused(code) => page(
            StatusCode::UNAUTHORIZED,
            format!("{} {code}", t.sign_in_refused),
        ),
        DeveloperLoginError::Upstream(why) => {
            tracing::warn!(error = %why, "developer sign-in at the identity provider failed");
            page(StatusCode::UNAUTHORIZED, t.sign_in_failed.into())
        }
        DeveloperLoginError::MissingClaim(claim) => page(
            StatusCode::FORBIDDEN,
            format!("{} {claim}", t.sign_in_missing_claim),
        ),
        DeveloperLoginError::UnknownOrganisation(oid) => page(
            StatusCode::FORBIDDEN,
            match oid {
                Some(oid) => format!("{} ({oid})", t.sign_in_unknown_org),
                None => t.sign_in_unknown_org.to_owned(),
            },
        ),
        DeveloperLoginError::Failed(e) => failure_page(ctx, Fail::Internal(e.to_string())),
    };
    ctx.page_lang.remember(ctx.cookies, &mut response);
    response
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
                client_type: ClientType::Public.code().to_owned(),
                contact: String::new(),
                jwks: String::new(),
                jwks_uri: String::new(),
                certificate_oid: String::new(),
            },
            StatusCode::OK,
        ))
    })
    .await
}

/// The keys a registration form gives, checked for a client of `client_type`: none for a
/// public or confidential client (keys only a `private_key_jwt` client's authentication
/// uses), and for a `private_key_jwt` client those [`read_keys`] takes.
fn registration_keys(
    t: &Texts,
    client_type: ClientType,
    text: &str,
    uri: &str,
) -> Result<EnteredKeys, KeysRefusal> {
    let empty = text.trim().is_empty() && uri.trim().is_empty();
    match client_type {
        ClientType::PrivateKeyJwt if empty => Err(KeysRefusal {
            jwks: String::new(),
            why: t.register_keys_missing.to_owned(),
        }),
        ClientType::PrivateKeyJwt => read_keys(t, client_type, text, uri),
        _ if empty => Ok((None, None)),
        // Refused as keys first, so that private key material is named as such.
        _ => read_keys(t, client_type, text, uri).and_then(|_| {
            Err(KeysRefusal {
                jwks: shown(text),
                why: t.keys_only_jwt.to_owned(),
            })
        }),
    }
}

pub async fn register_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(form): Form<Pairs>,
) -> Response {
    run(state, ctx, move |state, ctx| {
        let developer = posting_developer(ctx, &form)?;
        let t = texts(ctx.lang);
        let choice = field(&form, "client_type");
        let (text, uri) = (field(&form, "jwks"), field(&form, "jwks_uri"));
        // The form again, with what was entered (not what may hold a private key) and why.
        let refused = |jwks: String, why: String| {
            Ok(render(
                &RegisterPage {
                    c: chrome(ctx),
                    csrf: field(&form, csrf::FIELD),
                    error: Some(shown(&why)),
                    name: shown(&field(&form, "name")),
                    redirect_uris: shown(&field(&form, "redirect_uris")),
                    scope: shown(&field(&form, "scope")),
                    client_type: shown(&choice),
                    contact: shown(&field(&form, "contact")),
                    jwks,
                    jwks_uri: shown(&uri),
                    certificate_oid: shown(&field(&form, "certificate_oid")),
                },
                StatusCode::BAD_REQUEST,
            ))
        };
        let Ok(client_type) = registration::page_client_type(&choice) else {
            let kept = if looks_private(&text) {
                ""
            } else {
                text.as_str()
            };
            return refused(shown(kept), t.client_auth_unknown.to_owned());
        };
        let (jwks, jwks_uri) = match registration_keys(t, client_type, &text, &uri) {
            Ok(keys) => keys,
            Err(KeysRefusal { jwks, why }) => return refused(jwks, why),
        };
        let entered = PageRegistration {
            name: field(&form, "name"),
            redirect_uris: field(&form, "redirect_uris"),
            scope: field(&form, "scope"),
            client_type: client_type.code().to_owned(),
            contact: field(&form, "contact"),
            jwks,
            jwks_uri,
            certificate_oid: field(&form, "certificate_oid"),
        };
        // In production the developer's organisation, as registered now.
        let organisation = match ctx.developer.as_ref().and_then(|d| d.data.org.as_ref()) {
            Some((oid, _)) => Some(state.auth.org(oid)?.ok_or(Fail::Login)?),
            None => None,
        };
        let owner = PageOwner {
            developer: &developer,
            organisation: organisation.as_ref(),
        };
        match registration::register_from_page(&state.auth, &entered, owner) {
            Ok(registered) => Ok(render(
                &RegisteredPage {
                    c: chrome(ctx),
                    client_auth: client_auth_name(t, registered.app.client_type),
                    client_id: registered.app.app_id,
                    client_secret: registered.client_secret,
                    scope: registered.app.scope,
                },
                StatusCode::CREATED,
            )),
            // The keys passed check_keys: no private key material in them.
            Err(RegistrationError::Invalid { description, .. }) => refused(
                shown(&text),
                format!("{} {description}", t.register_refused),
            ),
            Err(RegistrationError::CertificateRequired) => {
                refused(shown(&text), t.certificate_required.to_owned())
            }
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
    // Production records no sandbox traffic and runs no probe.
    let (rows, probe_started) = if ctx.production {
        (Vec::new(), None)
    } else {
        (
            state.auth.traffic(&app.app_id)?,
            state.auth.probe_started(&app.app_id)?,
        )
    };
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
            probe_started,
            status: status_name(ctx, app.status),
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
        if ctx.production {
            return Err(Fail::SandboxOnly(texts(ctx.lang).sandbox_only));
        }
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

/// How a client of `client_type` authenticates, in the page's words (as the registration
/// form offers it).
fn client_auth_name(t: &Texts, client_type: ClientType) -> &'static str {
    match client_type {
        ClientType::Public => t.register_public,
        ClientType::Confidential => t.register_confidential,
        ClientType::PrivateKeyJwt => t.register_private_key_jwt,
    }
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

/// The keys of a form, as the registry would take them: an inline JWKS (JSON) and a
/// `jwks_uri`, empty fields as none.
type EnteredKeys = (Option<Value>, Option<String>);

/// Why a form's keys were refused, and the JWKS text fit to show again (empty when it may
/// hold a private key).
struct KeysRefusal {
    jwks: String,
    why: String,
}

/// Reads the keys a form gives (the JWKS pasted as `text`, the `uri`) for a client of
/// `client_type`, checked by the registry's own [`check_keys`] for a reason in the page's
/// language (storing checks again). What may hold a private key is never given back.
fn read_keys(
    t: &Texts,
    client_type: ClientType,
    text: &str,
    uri: &str,
) -> Result<EnteredKeys, KeysRefusal> {
    let kept = || {
        if looks_private(text) {
            String::new()
        } else {
            shown(text)
        }
    };
    // A PEM private key is no JSON: still named for what it is.
    if is_pem_private_key(text) {
        return Err(KeysRefusal {
            jwks: String::new(),
            why: format!("{}. {}", t.keys_private, t.keys_private_advice),
        });
    }
    let jwks = match text.trim() {
        "" => None,
        json => match serde_json::from_str::<Value>(json) {
            Ok(jwks) => Some(jwks),
            Err(e) => {
                return Err(KeysRefusal {
                    jwks: kept(),
                    why: format!(
                        "{} ({} {}, {} {}).",
                        t.jwks_not_json,
                        t.line_word,
                        e.line(),
                        t.column_word,
                        e.column()
                    ),
                });
            }
        },
    };
    let jwks_uri = Some(uri.trim().to_owned()).filter(|u| !u.is_empty());
    match check_keys(client_type, jwks.as_ref(), jwks_uri.as_deref()) {
        Ok(()) => Ok((jwks, jwks_uri)),
        Err(error) => Err(KeysRefusal {
            jwks: if matches!(error, KeysError::PrivateKey { .. }) {
                String::new()
            } else {
                kept()
            },
            why: keys_refusal(t, &error),
        }),
    }
}

/// Sets the application's public keys from the form (a JWKS or a `jwks_uri`), or removes
/// them (the remove button, or both fields left empty). Checked as at registration: a
/// `private_key_jwt` client's keys cannot be removed, it would no longer authenticate.
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
        let refused = |jwks: String, why: String| {
            Some(Refused::Keys {
                jwks,
                jwks_uri: shown(&uri),
                why: shown(&why),
            })
        };
        let (jwks, jwks_uri) = match read_keys(t, app.client_type, &text, &uri) {
            Ok(keys) => keys,
            Err(KeysRefusal { jwks, why }) => return app_view(state, ctx, app, refused(jwks, why)),
        };
        match state.auth.set_app_keys(&app.app_id, jwks, jwks_uri) {
            Ok(app) => Ok(see_other(&app_path(&app.app_id, Some("keys")))),
            Err(phr_auth::AuthError::Invalid(why)) => {
                let why = format!("{} {why}", t.keys_refused);
                app_view(state, ctx, app, refused(shown(&text), why))
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
        if ctx.production {
            return Err(Fail::SandboxOnly(texts(ctx.lang).sandbox_only));
        }
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

    #[test]
    fn each_client_authentication_is_named_in_each_language() {
        for client_type in [
            ClientType::Public,
            ClientType::Confidential,
            ClientType::PrivateKeyJwt,
        ] {
            let names: Vec<&str> = [Lang::Fi, Lang::Sv, Lang::En]
                .into_iter()
                .map(|lang| client_auth_name(texts(lang), client_type))
                .collect();
            assert!(names.iter().all(|n| !n.is_empty()), "{client_type:?}");
            assert!(names[0] != names[1] && names[1] != names[2], "{names:?}");
        }
        let t = texts(Lang::En);
        for (a, b) in [
            (t.register_keys_missing, t.keys_missing),
            (t.keys_only_jwt, t.keys_invalid),
            (t.keys_used, t.keys_unused),
        ] {
            assert_ne!(a, b);
        }
    }

    const PUBLIC_EC: &str = r#"{"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

    #[test]
    fn a_signed_jwt_registration_needs_keys_and_others_take_none() {
        let t = texts(Lang::En);
        let (jwks, uri) =
            registration_keys(t, ClientType::PrivateKeyJwt, PUBLIC_EC, "").unwrap_or_default();
        assert_eq!(jwks.unwrap()["keys"][0]["kid"], "k1");
        assert_eq!(uri, None);
        let (jwks, uri) = registration_keys(
            t,
            ClientType::PrivateKeyJwt,
            " ",
            " https://keys.example.fi/jwks.json ",
        )
        .unwrap_or_default();
        assert_eq!(
            (jwks, uri.as_deref()),
            (None, Some("https://keys.example.fi/jwks.json"))
        );
        let missing = registration_keys(t, ClientType::PrivateKeyJwt, "", "").err();
        assert_eq!(
            missing.map(|r| r.why).as_deref(),
            Some(t.register_keys_missing)
        );
        assert!(matches!(
            registration_keys(t, ClientType::Confidential, "", ""),
            Ok((None, None))
        ));
        let unused = registration_keys(t, ClientType::Public, PUBLIC_EC, "").err();
        assert_eq!(unused.map(|r| r.why).as_deref(), Some(t.keys_only_jwt));
    }

    #[test]
    fn pasted_private_key_material_is_never_given_back() {
        let t = texts(Lang::En);
        let private = PUBLIC_EC.replace("\"kid\"", "\"d\": \"c2VjcmV0\", \"kid\"");
        let broken = format!("{private},");
        let pem = "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----";
        for client_type in [ClientType::PrivateKeyJwt, ClientType::Public] {
            for text in [private.as_str(), broken.as_str(), pem] {
                let refusal = registration_keys(t, client_type, text, "").err();
                let refusal = refusal.expect("refused");
                assert!(refusal.jwks.is_empty(), "{text}");
                assert!(!refusal.why.contains("c2VjcmV0") && !refusal.why.contains("MIGH"));
            }
        }
        // What holds no private key is given back to be corrected.
        let refusal = read_keys(t, ClientType::Public, "{\"keys\": [", "").err();
        assert_eq!(refusal.map(|r| r.jwks).as_deref(), Some("{\"keys\": ["));
    }
}
