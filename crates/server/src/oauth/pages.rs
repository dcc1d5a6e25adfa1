//! Browser pages: `/oauth/authorize` → login (sandbox identity provider page, or a
//! redirect to the upstream OpenID Connect provider and back to `/oauth/callback`) → terms
//! of use (first time only) → consent → redirect to the app with a code. (Sandbox apps are
//! registered in the developer console, `crate::developer`.)
//!
//! Each handler reads the login session's cookie and the form, checks the form's CSRF token,
//! and runs one step of `phr_auth::flows::authorize` on a blocking thread. The identity code
//! is only ever in a POST body (sandbox) or an upstream ID token (production); it is handed
//! to the domain and dropped, never put in the session, a URL or a log.

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use phr_auth::flows::authorize::{self, AuthorizeRejection, Login, LoginError, Next};
use phr_auth::params::Params;
use phr_auth::scope::{ScopeSet, Special};
use phr_auth::{AuthError, AuthService};

use super::texts::{Texts, texts};
use super::{AUTHORIZE_PATH, CONSENT_PATH, LOGIN_PATH, OAuth, PROFESSIONAL_LOGIN_PATH, TERMS_PATH};
use crate::web::chrome::{LangLink, language_links};
use crate::web::headers::FormTarget;
use crate::web::{Lang, PageLang, blocking, csrf, html, scope_items, see_other};

type Pairs = Vec<(String, String)>;

/// The login session's cookie.
const SESSION_COOKIE: &str = "phr_auth";

/// What every page shows around its content.
struct Chrome {
    t: &'static Texts,
    lang: &'static str,
    switches: Vec<LangLink>,
    sandbox: bool,
}

fn chrome(o: &OAuth, lang: Lang, path: &str) -> Chrome {
    Chrome {
        t: texts(lang),
        lang: lang.code(),
        switches: language_links(path, &[], lang, &[]),
        sandbox: o.auth.config().mode.is_sandbox(),
    }
}

#[derive(Template)]
#[template(path = "oauth/login.html")]
struct LoginPage {
    c: Chrome,
    csrf: String,
    error: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "oauth/terms.html")]
struct TermsPage {
    c: Chrome,
    csrf: String,
    terms_version: String,
}

struct ConsentItem {
    index: usize,
    data: String,
    rights: String,
    category: Option<String>,
}

#[derive(Template)]
#[template(path = "oauth/consent.html")]
struct ConsentPage {
    c: Chrome,
    csrf: String,
    app_name: String,
    items: Vec<ConsentItem>,
    offline: bool,
}

#[derive(Template)]
#[template(path = "oauth/message.html")]
struct MessagePage {
    c: Chrome,
    title: String,
    text: String,
    detail: Option<String>,
}

fn render(template: &impl Template, status: StatusCode) -> Response {
    match template.render() {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(error = %e, "page template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "page rendering failed").into_response()
        }
    }
}

/// A page of one message.
struct Message<'a> {
    status: StatusCode,
    title: &'a str,
    text: &'a str,
    detail: Option<String>,
}

fn message(o: &OAuth, lang: Lang, path: &str, m: Message<'_>) -> Response {
    let page = MessagePage {
        c: chrome(o, lang, path),
        title: m.title.to_owned(),
        text: m.text.to_owned(),
        detail: m.detail,
    };
    render(&page, m.status)
}

fn error_page(o: &OAuth, lang: Lang, path: &str, status: StatusCode, text: &str) -> Response {
    let t = texts(lang);
    message(
        o,
        lang,
        path,
        Message {
            status,
            title: t.error_title,
            text,
            detail: None,
        },
    )
}

fn expired(o: &OAuth, lang: Lang, path: &str) -> Response {
    error_page(
        o,
        lang,
        path,
        StatusCode::BAD_REQUEST,
        texts(lang).session_expired,
    )
}

fn forbidden(o: &OAuth, lang: Lang, path: &str) -> Response {
    error_page(
        o,
        lang,
        path,
        StatusCode::FORBIDDEN,
        texts(lang).session_expired,
    )
}

fn failure(o: &OAuth, lang: Lang, path: &str, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %error, "authorization page failed");
    error_page(
        o,
        lang,
        path,
        StatusCode::INTERNAL_SERVER_ERROR,
        texts(lang).request_invalid,
    )
}

fn under_age(o: &OAuth, lang: Lang, path: &str) -> Response {
    let t = texts(lang);
    message(
        o,
        lang,
        path,
        Message {
            status: StatusCode::FORBIDDEN,
            title: t.under_age_title,
            text: t.under_age_text,
            detail: None,
        },
    )
}

fn upstream_failed(o: &OAuth, lang: Lang, status: StatusCode, detail: Option<String>) -> Response {
    let t = texts(lang);
    message(
        o,
        lang,
        LOGIN_PATH,
        Message {
            status,
            title: t.error_title,
            text: t.upstream_failed,
            detail,
        },
    )
}

/// Where a finished step sends the browser.
fn next(step: Next) -> Response {
    match step {
        Next::Terms => see_other(TERMS_PATH),
        Next::Consent => see_other(CONSENT_PATH),
        Next::Client(url) => see_other(&url),
    }
}

/// The answer to a login step that could not go on.
fn login_error(o: &OAuth, lang: Lang, path: &str, error: &LoginError) -> Response {
    match error {
        LoginError::Expired => expired(o, lang, path),
        LoginError::NotAvailable => error_page(
            o,
            lang,
            path,
            StatusCode::NOT_FOUND,
            texts(lang).not_available,
        ),
        LoginError::UnderAge => under_age(o, lang, path),
        LoginError::Forged => forbidden(o, lang, path),
        LoginError::UpstreamRefused(detail) => {
            upstream_failed(o, lang, StatusCode::UNAUTHORIZED, Some(detail.clone()))
        }
        LoginError::Upstream(why) => {
            tracing::warn!(error = %why, "upstream login failed");
            upstream_failed(o, lang, StatusCode::UNAUTHORIZED, None)
        }
        // The login page shows these itself.
        LoginError::InvalidIdentity
        | LoginError::NotTestIdentity
        | LoginError::InvalidProfessional => expired(o, lang, path),
        LoginError::OtherOrganisation => error_page(
            o,
            lang,
            path,
            StatusCode::FORBIDDEN,
            texts(lang).pro_other_org,
        ),
        LoginError::Failed(e) => failure(o, lang, path, e),
    }
}

fn query_lang(o: &OAuth, query: &Pairs, headers: &HeaderMap) -> PageLang {
    PageLang::of(query, headers, o.cookies)
}

/// Runs a login step on a blocking thread.
async fn step<T: Send + 'static>(
    o: &OAuth,
    work: impl FnOnce(&AuthService) -> T + Send + 'static,
) -> Option<T> {
    let auth = o.auth.clone();
    blocking(move || work(&auth)).await
}

/// The browser's live login, if any.
async fn resume(o: &OAuth, headers: &HeaderMap) -> Result<Option<Login>, AuthError> {
    let Some(session) = o.cookies.read(headers, SESSION_COOKIE).map(str::to_owned) else {
        return Ok(None);
    };
    step(o, move |auth| authorize::resume(auth, &session))
        .await
        .unwrap_or_else(|| Err(AuthError::Storage("the session look-up stopped".into())))
}

/// Resumes the login for a step: the live login if `ready` accepts it, or the page to show.
async fn login_for(
    o: &OAuth,
    headers: &HeaderMap,
    lang: Lang,
    path: &str,
    ready: impl Fn(&Login) -> bool,
) -> Result<Login, Response> {
    match resume(o, headers).await {
        Ok(Some(login)) if ready(&login) => Ok(login),
        Ok(_) => Err(expired(o, lang, path)),
        Err(e) => Err(failure(o, lang, path, &e)),
    }
}

// --- /oauth/authorize -------------------------------------------------------------------

pub async fn authorize_get(
    State(o): State<OAuth>,
    Query(query): Query<Pairs>,
    headers: HeaderMap,
) -> Response {
    authorize(o, query, headers).await
}

pub async fn authorize_post(
    State(o): State<OAuth>,
    headers: HeaderMap,
    Form(form): Form<Pairs>,
) -> Response {
    authorize(o, form, headers).await
}

async fn authorize(o: OAuth, pairs: Pairs, headers: HeaderMap) -> Response {
    let lang = query_lang(&o, &pairs, &headers);
    let existing = o.cookies.read(&headers, SESSION_COOKIE).map(str::to_owned);
    let started = step(&o, move |auth| {
        authorize::validate(auth, &Params::new(pairs))
            .map(|request| authorize::start(auth, existing.as_deref(), request))
    })
    .await;
    let mut response = match started {
        None => failure(
            &o,
            lang.lang,
            AUTHORIZE_PATH,
            &"the authorization step stopped",
        ),
        Some(Err(AuthorizeRejection::Redirect(url))) => see_other(&url),
        Some(Err(AuthorizeRejection::Page(detail))) => {
            let t = texts(lang.lang);
            message(
                &o,
                lang.lang,
                AUTHORIZE_PATH,
                Message {
                    status: StatusCode::BAD_REQUEST,
                    title: t.error_title,
                    text: t.request_invalid,
                    detail: Some(detail),
                },
            )
        }
        Some(Ok(Err(e))) => failure(&o, lang.lang, AUTHORIZE_PATH, &e),
        Some(Ok(Ok(login))) => {
            let professional = login
                .state
                .request
                .as_ref()
                .is_some_and(|r| r.org.is_some());
            let mut response = see_other(if professional {
                PROFESSIONAL_LOGIN_PATH
            } else {
                LOGIN_PATH
            });
            o.cookies.add(
                &mut response,
                SESSION_COOKIE,
                &login.session,
                o.auth.config().session_lifetime,
            );
            response
        }
    };
    lang.remember(o.cookies, &mut response);
    response
}

// --- login ------------------------------------------------------------------------------

pub async fn login_page(
    State(o): State<OAuth>,
    Query(query): Query<Pairs>,
    headers: HeaderMap,
) -> Response {
    let lang = query_lang(&o, &query, &headers);
    let mut response = login_page_inner(&o, lang.lang, &headers).await;
    lang.remember(o.cookies, &mut response);
    response
}

async fn login_page_inner(o: &OAuth, lang: Lang, headers: &HeaderMap) -> Response {
    let mut login =
        match login_for(o, headers, lang, LOGIN_PATH, |l| l.state.request.is_some()).await {
            Ok(login) => login,
            Err(page) => return page,
        };
    if !o.auth.uses_upstream_login() {
        let page = LoginPage {
            c: chrome(o, lang, LOGIN_PATH),
            csrf: login.state.csrf.clone(),
            error: None,
        };
        return render(&page, StatusCode::OK);
    }
    let url = match authorize::upstream_start(&o.auth, &mut login).await {
        Ok(url) => url,
        Err(e) => {
            tracing::error!(error = %e, "upstream identity provider unavailable");
            return upstream_failed(o, lang, StatusCode::BAD_GATEWAY, None);
        }
    };
    match step(o, move |auth| authorize::save(auth, &login)).await {
        Some(Ok(())) => see_other(&url),
        Some(Err(e)) => failure(o, lang, LOGIN_PATH, &e),
        None => failure(o, lang, LOGIN_PATH, &"saving the login stopped"),
    }
}

pub async fn login_submit(
    State(o): State<OAuth>,
    headers: HeaderMap,
    Form(form): Form<Pairs>,
) -> Response {
    let lang = query_lang(&o, &Vec::new(), &headers).lang;
    let mut login = match login_for(&o, &headers, lang, LOGIN_PATH, |l| {
        l.state.request.is_some()
    })
    .await
    {
        Ok(login) => login,
        Err(page) => return page,
    };
    if !csrf::check(&login.state.csrf, &form) {
        return forbidden(&o, lang, LOGIN_PATH);
    }
    let csrf = login.state.csrf.clone();
    let hetu = Params::new(form)
        .get("hetu")
        .ok()
        .flatten()
        .map(str::to_owned);
    let t = texts(lang);
    let again = |error: &'static str| {
        let page = LoginPage {
            c: chrome(&o, lang, LOGIN_PATH),
            csrf: csrf.clone(),
            error: Some(error),
        };
        render(&page, StatusCode::BAD_REQUEST)
    };
    match step(&o, move |auth| {
        authorize::identify_sandbox(auth, &mut login, hetu.as_deref())
    })
    .await
    {
        Some(Ok(step)) => next(step),
        Some(Err(LoginError::InvalidIdentity)) => again(t.hetu_invalid),
        Some(Err(LoginError::NotTestIdentity)) => again(t.hetu_not_test),
        Some(Err(e)) => login_error(&o, lang, LOGIN_PATH, &e),
        None => failure(&o, lang, LOGIN_PATH, &"the login step stopped"),
    }
}

// --- professionals' login ------------------------------------------------------------------

#[derive(Template)]
#[template(path = "oauth/professional_login.html")]
struct ProfessionalLoginPage {
    c: Chrome,
    csrf: String,
    app_name: String,
    error: Option<&'static str>,
}

fn is_professional_login(login: &Login) -> bool {
    login
        .state
        .request
        .as_ref()
        .is_some_and(|r| r.org.is_some())
}

/// Production without an identity provider for professionals: a readable 501.
fn professionals_unavailable(o: &OAuth, lang: Lang) -> Response {
    error_page(
        o,
        lang,
        PROFESSIONAL_LOGIN_PATH,
        StatusCode::NOT_IMPLEMENTED,
        texts(lang).pro_login_unavailable,
    )
}

pub async fn professional_login_page(
    State(o): State<OAuth>,
    Query(query): Query<Pairs>,
    headers: HeaderMap,
) -> Response {
    let lang = query_lang(&o, &query, &headers);
    let mut response = match login_for(
        &o,
        &headers,
        lang.lang,
        PROFESSIONAL_LOGIN_PATH,
        is_professional_login,
    )
    .await
    {
        Err(page) => page,
        Ok(login) if o.auth.uses_professional_upstream() => {
            professional_upstream(&o, lang.lang, login).await
        }
        Ok(_) if !o.auth.config().mode.is_sandbox() => professionals_unavailable(&o, lang.lang),
        Ok(login) => render(
            &ProfessionalLoginPage {
                c: chrome(&o, lang.lang, PROFESSIONAL_LOGIN_PATH),
                csrf: login.state.csrf.clone(),
                app_name: login
                    .state
                    .request
                    .as_ref()
                    .map(|r| r.app_name.clone())
                    .unwrap_or_default(),
                error: None,
            },
            StatusCode::OK,
        ),
    };
    lang.remember(o.cookies, &mut response);
    response
}

/// Sends the professional to their identity provider.
async fn professional_upstream(o: &OAuth, lang: Lang, mut login: Login) -> Response {
    let url = match authorize::professional_upstream_start(&o.auth, &mut login).await {
        Ok(url) => url,
        Err(e) => {
            tracing::error!(error = %e, "professionals' identity provider unavailable");
            return upstream_failed(o, lang, StatusCode::BAD_GATEWAY, None);
        }
    };
    match step(o, move |auth| authorize::save(auth, &login)).await {
        Some(Ok(())) => see_other(&url),
        Some(Err(e)) => failure(o, lang, PROFESSIONAL_LOGIN_PATH, &e),
        None => failure(
            o,
            lang,
            PROFESSIONAL_LOGIN_PATH,
            &"saving the login stopped",
        ),
    }
}

/// The professionals' identity provider sends the professional back here.
pub async fn professional_callback(
    State(o): State<OAuth>,
    Query(query): Query<Pairs>,
    headers: HeaderMap,
) -> Response {
    let lang = query_lang(&o, &Vec::new(), &headers).lang;
    let path = super::PROFESSIONAL_CALLBACK_PATH;
    let mut login = match login_for(&o, &headers, lang, path, |l| {
        is_professional_login(l) && l.state.upstream.is_some()
    })
    .await
    {
        Ok(login) => login,
        Err(page) => return page,
    };
    let params = Params::new(query);
    let param = |name: &str| params.get(name).ok().flatten();
    let (id, name, org) = match authorize::professional_upstream_finish(
        &o.auth,
        &mut login,
        param("state"),
        param("code"),
        param("error"),
    )
    .await
    {
        Ok(found) => found,
        Err(e) => return login_error(&o, lang, path, &e),
    };
    match step(&o, move |auth| {
        authorize::professional_upstream_signed_in(auth, &login, &id, name.as_deref(), &org)
    })
    .await
    {
        Some(Ok(url)) => see_other(&url),
        Some(Err(e)) => login_error(&o, lang, path, &e),
        None => failure(&o, lang, path, &"the login step stopped"),
    }
}

pub async fn professional_login_submit(
    State(o): State<OAuth>,
    headers: HeaderMap,
    Form(form): Form<Pairs>,
) -> Response {
    let lang = query_lang(&o, &Vec::new(), &headers).lang;
    let login = match login_for(
        &o,
        &headers,
        lang,
        PROFESSIONAL_LOGIN_PATH,
        is_professional_login,
    )
    .await
    {
        Ok(login) => login,
        Err(page) => return page,
    };
    if !o.auth.config().mode.is_sandbox() {
        return professionals_unavailable(&o, lang);
    }
    if !csrf::check(&login.state.csrf, &form) {
        return forbidden(&o, lang, PROFESSIONAL_LOGIN_PATH);
    }
    let again = ProfessionalLoginPage {
        c: chrome(&o, lang, PROFESSIONAL_LOGIN_PATH),
        csrf: login.state.csrf.clone(),
        app_name: login
            .state
            .request
            .as_ref()
            .map(|r| r.app_name.clone())
            .unwrap_or_default(),
        error: Some(texts(lang).pro_invalid),
    };
    let params = Params::new(form);
    let id = params.get("professional").ok().flatten().map(str::to_owned);
    let name = params.get("name").ok().flatten().map(str::to_owned);
    match step(&o, move |auth| {
        authorize::identify_test_professional(auth, &login, id.as_deref(), name.as_deref())
    })
    .await
    {
        Some(Ok(url)) => see_other(&url),
        Some(Err(LoginError::InvalidProfessional)) => render(&again, StatusCode::BAD_REQUEST),
        Some(Err(LoginError::NotAvailable)) => professionals_unavailable(&o, lang),
        Some(Err(e)) => login_error(&o, lang, PROFESSIONAL_LOGIN_PATH, &e),
        None => failure(&o, lang, PROFESSIONAL_LOGIN_PATH, &"the login step stopped"),
    }
}

pub async fn upstream_callback(
    State(o): State<OAuth>,
    Query(query): Query<Pairs>,
    headers: HeaderMap,
) -> Response {
    let lang = query_lang(&o, &Vec::new(), &headers).lang;
    let mut login = match login_for(&o, &headers, lang, LOGIN_PATH, |l| {
        l.state.request.is_some() && l.state.upstream.is_some()
    })
    .await
    {
        Ok(login) => login,
        Err(page) => return page,
    };
    let params = Params::new(query);
    let param = |name: &str| params.get(name).ok().flatten();
    let hetu = match authorize::upstream_finish(
        &o.auth,
        &mut login,
        param("state"),
        param("code"),
        param("error"),
    )
    .await
    {
        Ok(hetu) => hetu,
        Err(e) => return login_error(&o, lang, LOGIN_PATH, &e),
    };
    match step(&o, move |auth| {
        authorize::identified(auth, &mut login, &hetu)
    })
    .await
    {
        Some(Ok(step)) => next(step),
        Some(Err(e)) => login_error(&o, lang, LOGIN_PATH, &e),
        None => failure(&o, lang, LOGIN_PATH, &"the login step stopped"),
    }
}

// --- terms of use -----------------------------------------------------------------------

pub async fn terms_page(
    State(o): State<OAuth>,
    Query(query): Query<Pairs>,
    headers: HeaderMap,
) -> Response {
    let lang = query_lang(&o, &query, &headers);
    let login = match login_for(&o, &headers, lang.lang, TERMS_PATH, |l| {
        l.state.pending.is_some() && l.state.request.is_some()
    })
    .await
    {
        Ok(login) => login,
        Err(page) => return page,
    };
    let page = TermsPage {
        c: chrome(&o, lang.lang, TERMS_PATH),
        csrf: login.state.csrf,
        terms_version: o.auth.config().terms_version.clone(),
    };
    let mut response = render(&page, StatusCode::OK);
    lang.remember(o.cookies, &mut response);
    response
}

pub async fn terms_submit(
    State(o): State<OAuth>,
    headers: HeaderMap,
    Form(form): Form<Pairs>,
) -> Response {
    let lang = query_lang(&o, &Vec::new(), &headers).lang;
    let mut login = match login_for(&o, &headers, lang, TERMS_PATH, |l| {
        l.state.pending.is_some()
    })
    .await
    {
        Ok(login) => login,
        Err(page) => return page,
    };
    if !csrf::check(&login.state.csrf, &form) {
        return forbidden(&o, lang, TERMS_PATH);
    }
    let accept = Params::new(form).get("decision").ok().flatten() == Some("accept");
    match step(&o, move |auth| {
        authorize::accept_terms(auth, &mut login, accept)
    })
    .await
    {
        Some(Ok(step)) => next(step),
        Some(Err(e)) => login_error(&o, lang, TERMS_PATH, &e),
        None => failure(&o, lang, TERMS_PATH, &"the terms step stopped"),
    }
}

// --- consent ----------------------------------------------------------------------------

pub async fn consent_page(
    State(o): State<OAuth>,
    Query(query): Query<Pairs>,
    headers: HeaderMap,
) -> Response {
    let lang = query_lang(&o, &query, &headers);
    let login = match login_for(&o, &headers, lang.lang, CONSENT_PATH, |l| {
        authorize::consent_request(l).is_some()
    })
    .await
    {
        Ok(login) => login,
        Err(page) => return page,
    };
    let Some(request) = authorize::consent_request(&login) else {
        return expired(&o, lang.lang, CONSENT_PATH);
    };
    let scopes = ScopeSet::parse(&request.scope).unwrap_or_default();
    let items = scope_items(&scopes, lang.lang)
        .into_iter()
        .enumerate()
        .map(|(index, item)| ConsentItem {
            index,
            data: item.data,
            rights: item.rights,
            category: item.categories,
        })
        .collect();
    let page = ConsentPage {
        c: chrome(&o, lang.lang, CONSENT_PATH),
        csrf: login.state.csrf.clone(),
        app_name: request.app_name.clone(),
        items,
        offline: scopes.has(Special::OfflineAccess),
    };
    let mut response = render(&page, StatusCode::OK);
    response
        .extensions_mut()
        .insert(FormTarget(request.redirect_uri.clone()));
    lang.remember(o.cookies, &mut response);
    response
}

pub async fn consent_submit(
    State(o): State<OAuth>,
    headers: HeaderMap,
    Form(form): Form<Pairs>,
) -> Response {
    let lang = query_lang(&o, &Vec::new(), &headers).lang;
    let login = match login_for(&o, &headers, lang, CONSENT_PATH, |l| {
        authorize::consent_request(l).is_some()
    })
    .await
    {
        Ok(login) => login,
        Err(page) => return page,
    };
    if !csrf::check(&login.state.csrf, &form) {
        return forbidden(&o, lang, CONSENT_PATH);
    }
    let selected: Vec<usize> = form
        .iter()
        .filter(|(k, _)| k == "item")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    let decision: Pairs = form.into_iter().filter(|(k, _)| k != "item").collect();
    let allow = Params::new(decision).get("decision").ok().flatten() == Some("allow");
    match step(&o, move |auth| {
        authorize::consent(auth, &login, allow, &selected)
    })
    .await
    {
        Some(Ok(url)) => see_other(&url),
        Some(Err(e)) => login_error(&o, lang, CONSENT_PATH, &e),
        None => failure(&o, lang, CONSENT_PATH, &"the consent step stopped"),
    }
}
