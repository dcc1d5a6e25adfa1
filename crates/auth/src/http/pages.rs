//! Browser pages: `/oauth/authorize` → login (sandbox identity provider page, or a
//! redirect to the upstream OpenID Connect provider and back to `/oauth/callback`) → terms
//! of use (first time only) → consent → redirect to the app with a code. Also the sandbox
//! app registration page.
//!
//! The identity code is only ever in a POST body (sandbox) or an upstream ID token
//! (production); it is checked and dropped, never put in the session, a URL or a log.

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::session::{Session, cookie_name, page_lang, read_cookie, set_cookie_value};
use super::{CONSENT_PATH, LOGIN_PATH, TERMS_PATH, html, see_other};
use crate::apps::{AppKind, AppStatus, ClientType, NewApp};
use crate::audit::{AuditRecord, Usage};
use crate::citizens::Identified;
use crate::error::AuthError;
use crate::hetu::Hetu;
use crate::http::oauth::audit_quietly;
use crate::oidc::UpstreamLogin;
use crate::params::Params;
use crate::scope::{ScopeSet, Special};
use crate::secrets::{constant_time_eq, random_token};
use crate::service::AuthService;
use crate::texts::{Lang, Texts, category_name, resource_name};
use crate::tokens::AuthorizeRejection;

type Pairs = Vec<(String, String)>;

struct LangLink {
    code: &'static str,
    name: &'static str,
    href: String,
    current: bool,
}

/// What every page shows around its content.
struct Chrome {
    t: &'static Texts,
    lang: &'static str,
    switches: Vec<LangLink>,
    sandbox: bool,
}

fn chrome(service: &AuthService, lang: Lang, path: &str) -> Chrome {
    Chrome {
        t: lang.texts(),
        lang: lang.code(),
        switches: Lang::ALL
            .iter()
            .map(|l| LangLink {
                code: l.code(),
                name: l.native_name(),
                href: format!("{path}?lang={}", l.code()),
                current: *l == lang,
            })
            .collect(),
        sandbox: service.config().mode.is_sandbox(),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    c: Chrome,
    csrf: String,
    error: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "terms.html")]
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
#[template(path = "consent.html")]
struct ConsentPage {
    c: Chrome,
    csrf: String,
    app_name: String,
    items: Vec<ConsentItem>,
    offline: bool,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    c: Chrome,
    title: String,
    text: String,
    detail: Option<String>,
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    c: Chrome,
    csrf: String,
    error: Option<String>,
    name: String,
    redirect_uris: String,
    scope: String,
    contact: String,
}

#[derive(Template)]
#[template(path = "registered.html")]
struct RegisteredPage {
    c: Chrome,
    client_id: String,
    client_secret: Option<String>,
    scope: String,
}

fn render(template: &impl Template, status: StatusCode, form_target: Option<&str>) -> Response {
    match template.render() {
        Ok(body) => html(status, body, form_target),
        Err(e) => {
            tracing::error!(error = %e, "page template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "page rendering failed").into_response()
        }
    }
}

/// Which language, and whether `?lang=` asked to remember a new one.
struct PageLang {
    lang: Lang,
    remember: bool,
}

fn lang_of(query: &Pairs, headers: &HeaderMap) -> PageLang {
    let asked = query
        .iter()
        .find(|(k, _)| k == "lang" || k == "ui_locales")
        .map(|(_, v)| v.as_str());
    let asked = asked.and_then(|v| v.split_whitespace().find_map(Lang::parse));
    PageLang {
        lang: page_lang(asked.map(Lang::code), headers),
        remember: asked.is_some(),
    }
}

fn with_lang_cookie(service: &AuthService, mut response: Response, lang: &PageLang) -> Response {
    if lang.remember {
        let cookie = set_cookie_value(service, "phr_lang", lang.lang.code(), 365 * 24 * 3600);
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

fn with_session_cookie(
    service: &AuthService,
    mut response: Response,
    session: &Session,
) -> Response {
    let cookie = set_cookie_value(
        service,
        cookie_name(service),
        &session.id,
        service.config().session_lifetime,
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn message(
    service: &AuthService,
    lang: Lang,
    path: &str,
    status: StatusCode,
    title: &str,
    text: &str,
    detail: Option<String>,
) -> Response {
    let page = MessagePage {
        c: chrome(service, lang, path),
        title: title.to_owned(),
        text: text.to_owned(),
        detail,
    };
    render(&page, status, None)
}

fn expired(service: &AuthService, lang: Lang, path: &str) -> Response {
    let t = lang.texts();
    message(
        service,
        lang,
        path,
        StatusCode::BAD_REQUEST,
        t.error_title,
        t.session_expired,
        None,
    )
}

fn failure(service: &AuthService, lang: Lang, path: &str, error: &AuthError) -> Response {
    tracing::error!(error = %error, "authorization page failed");
    let t = lang.texts();
    message(
        service,
        lang,
        path,
        StatusCode::INTERNAL_SERVER_ERROR,
        t.error_title,
        t.request_invalid,
        None,
    )
}

fn csrf_ok(session: &Session, form: &Params) -> bool {
    form.get("csrf")
        .ok()
        .flatten()
        .is_some_and(|token| constant_time_eq(token.as_bytes(), session.data.csrf.as_bytes()))
}

fn forbidden(service: &AuthService, lang: Lang, path: &str) -> Response {
    let t = lang.texts();
    message(
        service,
        lang,
        path,
        StatusCode::FORBIDDEN,
        t.error_title,
        t.session_expired,
        None,
    )
}

// --- /oauth/authorize -------------------------------------------------------------------

pub async fn authorize_get(
    State(service): State<AuthService>,
    Query(query): Query<Pairs>,
    headers: HeaderMap,
) -> Response {
    authorize(&service, query, &headers)
}

pub async fn authorize_post(
    State(service): State<AuthService>,
    headers: HeaderMap,
    Form(form): Form<Pairs>,
) -> Response {
    authorize(&service, form, &headers)
}

fn authorize(service: &AuthService, pairs: Pairs, headers: &HeaderMap) -> Response {
    let lang = lang_of(&pairs, headers);
    let params = Params::new(pairs);
    let request = match service.validate_authorize(&params) {
        Ok(request) => request,
        Err(AuthorizeRejection::Redirect(url)) => return see_other(&url),
        Err(AuthorizeRejection::Page(detail)) => {
            let t = lang.lang.texts();
            let page = message(
                service,
                lang.lang,
                super::AUTHORIZE_PATH,
                StatusCode::BAD_REQUEST,
                t.error_title,
                t.request_invalid,
                Some(detail),
            );
            return with_lang_cookie(service, page, &lang);
        }
    };
    let mut session = match service.load_session(headers) {
        Ok(Some(session)) => session,
        Ok(None) => service.new_session(),
        Err(e) => return failure(service, lang.lang, super::AUTHORIZE_PATH, &e),
    };
    // Every authorization needs its own strong identification.
    session.data.request = Some(request);
    session.data.patient_id = None;
    session.data.authenticated_at = None;
    session.data.pending = None;
    session.data.upstream = None;
    session.data.csrf = random_token();
    if let Err(e) = service.save_session(&session) {
        return failure(service, lang.lang, super::AUTHORIZE_PATH, &e);
    }
    let response = with_session_cookie(service, see_other(LOGIN_PATH), &session);
    with_lang_cookie(service, response, &lang)
}

// --- login ------------------------------------------------------------------------------

pub async fn login_page(
    State(service): State<AuthService>,
    Query(query): Query<Pairs>,
    headers: HeaderMap,
) -> Response {
    let lang = lang_of(&query, &headers);
    let response = login_page_inner(&service, lang.lang, &headers).await;
    with_lang_cookie(&service, response, &lang)
}

async fn login_page_inner(service: &AuthService, lang: Lang, headers: &HeaderMap) -> Response {
    let mut session = match service.load_session(headers) {
        Ok(Some(session)) if session.data.request.is_some() => session,
        Ok(_) => return expired(service, lang, LOGIN_PATH),
        Err(e) => return failure(service, lang, LOGIN_PATH, &e),
    };
    let Some(oidc) = &service.0.oidc else {
        let page = LoginPage {
            c: chrome(service, lang, LOGIN_PATH),
            csrf: session.data.csrf.clone(),
            error: None,
        };
        return render(&page, StatusCode::OK, None);
    };
    let login = UpstreamLogin::new();
    let url = match oidc.authorization_url(&login, service.now()).await {
        Ok(url) => url,
        Err(e) => {
            tracing::error!(error = %e, "upstream identity provider unavailable");
            let t = lang.texts();
            return message(
                service,
                lang,
                LOGIN_PATH,
                StatusCode::BAD_GATEWAY,
                t.error_title,
                t.upstream_failed,
                None,
            );
        }
    };
    session.data.upstream = Some(login);
    if let Err(e) = service.save_session(&session) {
        return failure(service, lang, LOGIN_PATH, &e);
    }
    see_other(&url)
}

pub async fn login_submit(
    State(service): State<AuthService>,
    headers: HeaderMap,
    Form(form): Form<Pairs>,
) -> Response {
    let lang = page_lang(None, &headers);
    let form = Params::new(form);
    let session = match service.load_session(&headers) {
        Ok(Some(session)) if session.data.request.is_some() => session,
        Ok(_) => return expired(&service, lang, LOGIN_PATH),
        Err(e) => return failure(&service, lang, LOGIN_PATH, &e),
    };
    if !csrf_ok(&session, &form) {
        return forbidden(&service, lang, LOGIN_PATH);
    }
    if service.0.oidc.is_some() || !service.config().mode.is_sandbox() {
        let t = lang.texts();
        return message(
            &service,
            lang,
            LOGIN_PATH,
            StatusCode::NOT_FOUND,
            t.error_title,
            t.not_available,
            None,
        );
    }
    let t = lang.texts();
    let again = |error: &'static str| {
        let page = LoginPage {
            c: chrome(&service, lang, LOGIN_PATH),
            csrf: session.data.csrf.clone(),
            error: Some(error),
        };
        render(&page, StatusCode::BAD_REQUEST, None)
    };
    let hetu = match form.get("hetu").ok().flatten().map(Hetu::parse) {
        Some(Ok(hetu)) => hetu,
        _ => return again(t.hetu_invalid),
    };
    if !hetu.is_test_identity() {
        return again(t.hetu_not_test);
    }
    identified(&service, session, &hetu, lang)
}

pub async fn upstream_callback(
    State(service): State<AuthService>,
    Query(query): Query<Pairs>,
    headers: HeaderMap,
) -> Response {
    let lang = page_lang(None, &headers);
    let params = Params::new(query);
    let t = lang.texts();
    let mut session = match service.load_session(&headers) {
        Ok(Some(session)) if session.data.request.is_some() && session.data.upstream.is_some() => {
            session
        }
        Ok(_) => return expired(&service, lang, LOGIN_PATH),
        Err(e) => return failure(&service, lang, LOGIN_PATH, &e),
    };
    let Some(login) = session.data.upstream.take() else {
        return expired(&service, lang, LOGIN_PATH);
    };
    let state_ok = params
        .get("state")
        .ok()
        .flatten()
        .is_some_and(|s| constant_time_eq(s.as_bytes(), login.state.as_bytes()));
    if !state_ok {
        return forbidden(&service, lang, LOGIN_PATH);
    }
    if let Ok(Some(error)) = params.get("error") {
        return message(
            &service,
            lang,
            LOGIN_PATH,
            StatusCode::UNAUTHORIZED,
            t.error_title,
            t.upstream_failed,
            Some(error.to_owned()),
        );
    }
    let Some(code) = params.get("code").ok().flatten() else {
        return message(
            &service,
            lang,
            LOGIN_PATH,
            StatusCode::BAD_REQUEST,
            t.error_title,
            t.upstream_failed,
            None,
        );
    };
    let Some(oidc) = &service.0.oidc else {
        return expired(&service, lang, LOGIN_PATH);
    };
    let hetu = match oidc.finish(code, &login, service.now()).await {
        Ok(hetu) => hetu,
        Err(e) => {
            tracing::warn!(error = %e, "upstream login failed");
            return message(
                &service,
                lang,
                LOGIN_PATH,
                StatusCode::UNAUTHORIZED,
                t.error_title,
                t.upstream_failed,
                None,
            );
        }
    };
    identified(&service, session, &hetu, lang)
}

/// After a successful identification: refuse under-age, go to the terms (new citizen) or
/// the consent page.
fn identified(service: &AuthService, mut session: Session, hetu: &Hetu, lang: Lang) -> Response {
    let t = lang.texts();
    match service.identify(hetu) {
        Err(AuthError::UnderAge(_)) => message(
            service,
            lang,
            LOGIN_PATH,
            StatusCode::FORBIDDEN,
            t.under_age_title,
            t.under_age_text,
            None,
        ),
        Err(e) => failure(service, lang, LOGIN_PATH, &e),
        Ok(Identified::Known(citizen)) => {
            let mut record = AuditRecord::new(
                Usage::Authorization,
                format!("Patient/{}", citizen.patient_id),
            );
            record.patient_id = Some(citizen.patient_id.clone());
            record.interaction = Some("login".into());
            record.app_id = session.data.request.as_ref().map(|r| r.client_id.clone());
            audit_quietly(service, record);
            session.data.patient_id = Some(citizen.patient_id);
            session.data.authenticated_at = Some(service.now());
            session.data.csrf = random_token();
            match service.save_session(&session) {
                Ok(()) => consent_or_code(service, &session, lang),
                Err(e) => failure(service, lang, LOGIN_PATH, &e),
            }
        }
        Ok(Identified::New(pending)) => {
            session.data.pending = Some(pending);
            session.data.authenticated_at = Some(service.now());
            session.data.csrf = random_token();
            match service.save_session(&session) {
                Ok(()) => see_other(TERMS_PATH),
                Err(e) => failure(service, lang, LOGIN_PATH, &e),
            }
        }
    }
}

// --- terms of use -----------------------------------------------------------------------

pub async fn terms_page(
    State(service): State<AuthService>,
    Query(query): Query<Pairs>,
    headers: HeaderMap,
) -> Response {
    let lang = lang_of(&query, &headers);
    let session = match service.load_session(&headers) {
        Ok(Some(session)) if session.data.pending.is_some() && session.data.request.is_some() => {
            session
        }
        Ok(_) => return expired(&service, lang.lang, TERMS_PATH),
        Err(e) => return failure(&service, lang.lang, TERMS_PATH, &e),
    };
    let page = TermsPage {
        c: chrome(&service, lang.lang, TERMS_PATH),
        csrf: session.data.csrf.clone(),
        terms_version: service.config().terms_version.clone(),
    };
    with_lang_cookie(&service, render(&page, StatusCode::OK, None), &lang)
}

pub async fn terms_submit(
    State(service): State<AuthService>,
    headers: HeaderMap,
    Form(form): Form<Pairs>,
) -> Response {
    let lang = page_lang(None, &headers);
    let form = Params::new(form);
    let mut session = match service.load_session(&headers) {
        Ok(Some(session)) if session.data.pending.is_some() => session,
        Ok(_) => return expired(&service, lang, TERMS_PATH),
        Err(e) => return failure(&service, lang, TERMS_PATH, &e),
    };
    if !csrf_ok(&session, &form) {
        return forbidden(&service, lang, TERMS_PATH);
    }
    let (Some(pending), Some(request)) =
        (session.data.pending.take(), session.data.request.clone())
    else {
        return expired(&service, lang, TERMS_PATH);
    };
    if form.get("decision").ok().flatten() != Some("accept") {
        let _ = service.end_session(&session);
        return see_other(&service.denied_redirect(&request));
    }
    let citizen = match service.take_into_use(&pending) {
        Ok(citizen) => citizen,
        Err(AuthError::UnderAge(_)) => {
            let t = lang.texts();
            return message(
                &service,
                lang,
                TERMS_PATH,
                StatusCode::FORBIDDEN,
                t.under_age_title,
                t.under_age_text,
                None,
            );
        }
        Err(e) => return failure(&service, lang, TERMS_PATH, &e),
    };
    let mut record = AuditRecord::new(
        Usage::Authorization,
        format!("Patient/{}", citizen.patient_id),
    );
    record.patient_id = Some(citizen.patient_id.clone());
    record.interaction = Some("take-into-use".into());
    audit_quietly(&service, record);
    session.data.patient_id = Some(citizen.patient_id);
    session.data.csrf = random_token();
    match service.save_session(&session) {
        Ok(()) => consent_or_code(&service, &session, lang),
        Err(e) => failure(&service, lang, TERMS_PATH, &e),
    }
}

/// After identification (and the terms, for a new citizen): the consent page, or, for the
/// server's own first-party client (the citizen portal), straight back to it with a code.
/// The citizen does not consent to their own portal; it is granted what it asked for.
fn consent_or_code(service: &AuthService, session: &Session, lang: Lang) -> Response {
    let (Some(request), Some(patient_id)) = (&session.data.request, &session.data.patient_id)
    else {
        return see_other(CONSENT_PATH);
    };
    if !service.is_first_party(&request.client_id) {
        return see_other(CONSENT_PATH);
    }
    // One code per identification, as after a consent.
    if let Err(e) = service.end_session(session) {
        return failure(service, lang, LOGIN_PATH, &e);
    }
    let scopes = ScopeSet::parse(&request.scope).unwrap_or_default();
    let grant = match service.record_consent(patient_id, &request.client_id, &scopes) {
        Ok(grant) => grant,
        Err(e) => return failure(service, lang, LOGIN_PATH, &e),
    };
    let auth_time = session
        .data
        .authenticated_at
        .unwrap_or_else(|| service.now());
    match service.issue_code(request, &grant, auth_time) {
        Ok(url) => see_other(&url),
        Err(e) => failure(service, lang, LOGIN_PATH, &e),
    }
}

// --- consent ----------------------------------------------------------------------------

fn consent_items(scopes: &ScopeSet, lang: Lang) -> Vec<ConsentItem> {
    let t = lang.texts();
    scopes
        .resource_scopes()
        .iter()
        .enumerate()
        .map(|(index, scope)| {
            let data = match &scope.resource_type {
                Some(rt) => resource_name(rt, lang),
                None => t.consent_all_data.to_owned(),
            };
            let mut rights = Vec::new();
            if scope.perms.reads() {
                rights.push(t.consent_read);
            }
            if scope.perms.writes() {
                rights.push(t.consent_write);
            }
            let category = (!scope.filters.is_empty()).then(|| {
                scope
                    .filters
                    .iter()
                    .map(|f| category_name(&f.code, lang))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            ConsentItem {
                index,
                data,
                rights: rights.join(", "),
                category,
            }
        })
        .collect()
}

pub async fn consent_page(
    State(service): State<AuthService>,
    Query(query): Query<Pairs>,
    headers: HeaderMap,
) -> Response {
    let lang = lang_of(&query, &headers);
    let session = match service.load_session(&headers) {
        Ok(Some(session))
            if session.data.patient_id.is_some() && session.data.request.is_some() =>
        {
            session
        }
        Ok(_) => return expired(&service, lang.lang, CONSENT_PATH),
        Err(e) => return failure(&service, lang.lang, CONSENT_PATH, &e),
    };
    let Some(request) = &session.data.request else {
        return expired(&service, lang.lang, CONSENT_PATH);
    };
    let scopes = ScopeSet::parse(&request.scope).unwrap_or_default();
    let page = ConsentPage {
        c: chrome(&service, lang.lang, CONSENT_PATH),
        csrf: session.data.csrf.clone(),
        app_name: request.app_name.clone(),
        items: consent_items(&scopes, lang.lang),
        offline: scopes.has(Special::OfflineAccess),
    };
    with_lang_cookie(
        &service,
        render(&page, StatusCode::OK, Some(&request.redirect_uri)),
        &lang,
    )
}

pub async fn consent_submit(
    State(service): State<AuthService>,
    headers: HeaderMap,
    Form(form): Form<Pairs>,
) -> Response {
    let lang = page_lang(None, &headers);
    let selected: Vec<usize> = form
        .iter()
        .filter(|(k, _)| k == "item")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    let form = Params::new(form.into_iter().filter(|(k, _)| k != "item").collect());
    let session = match service.load_session(&headers) {
        Ok(Some(session))
            if session.data.patient_id.is_some() && session.data.request.is_some() =>
        {
            session
        }
        Ok(_) => return expired(&service, lang, CONSENT_PATH),
        Err(e) => return failure(&service, lang, CONSENT_PATH, &e),
    };
    if !csrf_ok(&session, &form) {
        return forbidden(&service, lang, CONSENT_PATH);
    }
    let (Some(request), Some(patient_id)) = (
        session.data.request.clone(),
        session.data.patient_id.clone(),
    ) else {
        return expired(&service, lang, CONSENT_PATH);
    };
    // One consent per identification: the session is spent either way.
    if let Err(e) = service.end_session(&session) {
        return failure(&service, lang, CONSENT_PATH, &e);
    }
    let grantable = ScopeSet::parse(&request.scope).unwrap_or_default();
    let approved = ScopeSet {
        resources: grantable
            .resources
            .iter()
            .enumerate()
            .filter(|(i, _)| selected.contains(i))
            .map(|(_, scope)| scope.clone())
            .collect(),
        special: grantable.special.clone(),
    };
    let mut record = AuditRecord::new(Usage::Authorization, format!("Patient/{patient_id}"));
    record.patient_id = Some(patient_id.clone());
    record.app_id = Some(request.client_id.clone());
    record.app_name = Some(request.app_name.clone());
    record.interaction = Some("consent".into());
    if form.get("decision").ok().flatten() != Some("allow") || !approved.has_patient_scopes() {
        record.status = 403;
        record.error_code = Some("access_denied".into());
        audit_quietly(&service, record);
        return see_other(&service.denied_redirect(&request));
    }
    let grant = match service.record_consent(&patient_id, &request.client_id, &approved) {
        Ok(grant) => grant,
        Err(e) => return failure(&service, lang, CONSENT_PATH, &e),
    };
    record.user_rights = Some(grant.scope.clone());
    audit_quietly(&service, record);
    let auth_time = session
        .data
        .authenticated_at
        .unwrap_or_else(|| service.now());
    match service.issue_code(&request, &grant, auth_time) {
        Ok(url) => see_other(&url),
        Err(e) => failure(&service, lang, CONSENT_PATH, &e),
    }
}

// --- sandbox app registration -----------------------------------------------------------

const CSRF_COOKIE: &str = "phr_register_csrf";
const DEFAULT_SCOPE: &str = "patient/Observation.read patient/Observation.write offline_access";

pub async fn register_page(
    State(service): State<AuthService>,
    Query(query): Query<Pairs>,
    headers: HeaderMap,
) -> Response {
    let lang = lang_of(&query, &headers);
    if !service.config().mode.is_sandbox() {
        let t = lang.lang.texts();
        return message(
            &service,
            lang.lang,
            super::REGISTER_PAGE_PATH,
            StatusCode::NOT_FOUND,
            t.error_title,
            t.not_available,
            None,
        );
    }
    let csrf = random_token();
    let page = RegisterPage {
        c: chrome(&service, lang.lang, super::REGISTER_PAGE_PATH),
        csrf: csrf.clone(),
        error: None,
        name: String::new(),
        redirect_uris: String::new(),
        scope: DEFAULT_SCOPE.to_owned(),
        contact: String::new(),
    };
    let mut response = render(&page, StatusCode::OK, None);
    if let Ok(value) = HeaderValue::from_str(&set_cookie_value(&service, CSRF_COOKIE, &csrf, 3600))
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    with_lang_cookie(&service, response, &lang)
}

pub async fn register_submit(
    State(service): State<AuthService>,
    headers: HeaderMap,
    Form(form): Form<Pairs>,
) -> Response {
    let lang = page_lang(None, &headers);
    let t = lang.texts();
    let path = super::REGISTER_PAGE_PATH;
    if !service.config().mode.is_sandbox() {
        return message(
            &service,
            lang,
            path,
            StatusCode::NOT_FOUND,
            t.error_title,
            t.not_available,
            None,
        );
    }
    let form = Params::new(form);
    let field = |name: &str| form.get(name).ok().flatten().unwrap_or("").to_owned();
    let csrf = field("csrf");
    let cookie_ok = read_cookie(&headers, CSRF_COOKIE)
        .is_some_and(|c| !csrf.is_empty() && constant_time_eq(c.as_bytes(), csrf.as_bytes()));
    if !cookie_ok {
        return forbidden(&service, lang, path);
    }
    let redirect_text = field("redirect_uris");
    let new = NewApp {
        app_id: None,
        name: field("name"),
        kind: AppKind::Wellbeing,
        client_type: if field("client_type") == "confidential" {
            ClientType::Confidential
        } else {
            ClientType::Public
        },
        redirect_uris: redirect_text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        scope: field("scope"),
        contact: Some(field("contact")).filter(|c| !c.is_empty()),
        jwks: None,
        jwks_uri: None,
    };
    match service.register_app(new.clone(), AppStatus::Sandbox) {
        Ok(registered) => {
            let page = RegisteredPage {
                c: chrome(&service, lang, path),
                client_id: registered.app.app_id,
                client_secret: registered.client_secret,
                scope: registered.app.scope,
            };
            render(&page, StatusCode::CREATED, None)
        }
        Err(AuthError::Invalid(error)) => {
            let page = RegisterPage {
                c: chrome(&service, lang, path),
                csrf,
                error: Some(error),
                name: new.name,
                redirect_uris: redirect_text,
                scope: new.scope,
                contact: new.contact.unwrap_or_default(),
            };
            render(&page, StatusCode::BAD_REQUEST, None)
        }
        Err(e) => failure(&service, lang, path, &e),
    }
}
