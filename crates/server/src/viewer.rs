//! The demo's read-only professional viewer (`/viewer`, with `phr serve --demo`): an
//! ordinary SMART client of PHR's own API, served by PHR for trying professional access.
//! A test professional signs in through `/oauth/authorize` (the professional application
//! `demo-pro-app`, PKCE), looks a citizen up by identity code with `POST Patient/_search`,
//! and sees charts of what that citizen shares with Demo Health Centre — nothing else, since
//! every request goes over HTTP to the FHIR API with the professional's token.
//!
//! Owns only its in-memory sessions (a demo runs on one node). Never puts an identity code
//! in a URL, a log or its sessions: it goes from the form straight into the search body.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use phr_auth::secrets::{constant_time_eq, pkce_s256_challenge, random_token};
use serde_json::Value;

use crate::AppState;
use crate::portal::chart::{self, Point, Spec, Style};
use crate::portal::format;
use crate::web::{Cookies, Lang, html, see_other};

/// The demo's professional application, registered by `phr serve --demo`.
pub const APP_ID: &str = "demo-pro-app";
/// Where the authorization server sends the professional back.
pub const CALLBACK_PATH: &str = "/viewer/callback";
/// The demo's test professionals (the sandbox login accepts any test identifier; these are
/// the ones the demo names).
pub const TEST_PROFESSIONALS: [(&str, &str); 2] = [
    ("tp-1", "Doctor Test Person"),
    ("tp-2", "Nurse Test Person"),
];
const COOKIE: &str = "phr_viewer";
const SCOPE: &str = "openid fhirUser user/Observation.rs user/Patient.rs";
/// How many of the latest entries of a citizen the viewer reads.
const LATEST: usize = 200;

#[derive(Default)]
struct Session {
    csrf: String,
    /// A sign-in in progress: the `state` and PKCE verifier.
    pending: Option<(String, String)>,
    token: Option<String>,
    professional: Option<String>,
}

fn sessions() -> &'static Mutex<HashMap<String, Session>> {
    static SESSIONS: OnceLock<Mutex<HashMap<String, Session>>> = OnceLock::new();
    SESSIONS.get_or_init(Mutex::default)
}

fn with_session<T>(key: &str, f: impl FnOnce(&mut Session) -> T) -> Option<T> {
    let mut all = sessions().lock().unwrap_or_else(PoisonError::into_inner);
    all.get_mut(key).map(f)
}

struct Chart {
    name: String,
    svg: String,
    rows: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "viewer/page.html")]
struct Page {
    title: String,
    message: Option<String>,
    signed_in: bool,
    csrf: String,
    professional: Option<String>,
    professionals: Vec<(&'static str, &'static str)>,
    refresh: Option<String>,
    charts: Vec<Chart>,
}

impl Page {
    fn new(title: &str) -> Page {
        Page {
            title: title.to_owned(),
            message: None,
            signed_in: false,
            csrf: String::new(),
            professional: None,
            professionals: TEST_PROFESSIONALS.to_vec(),
            refresh: None,
            charts: Vec::new(),
        }
    }

    fn render(&self, status: StatusCode) -> Response {
        match self.render_page() {
            Ok(body) => html(status, body),
            Err(_) => html(StatusCode::INTERNAL_SERVER_ERROR, "page failed".into()),
        }
    }

    fn render_page(&self) -> askama::Result<String> {
        Template::render(self)
    }
}

/// The viewer's routes.
pub fn router(state: &AppState) -> Router {
    Router::new()
        .route("/viewer", get(start))
        .route("/viewer/login", get(login))
        .route(CALLBACK_PATH, get(callback))
        .route("/viewer/search", post(search))
        .route("/viewer/patient/{id}", get(patient))
        .route("/viewer/logout", post(logout))
        .layer(axum::middleware::from_fn(crate::web::headers::layer))
        .with_state(state.clone())
}

fn cookies(state: &AppState) -> Cookies {
    Cookies::for_public_url(&state.base_url)
}

/// The session key of the request, if it names a live session.
fn session_of(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let key = cookies(state).read(headers, COOKIE)?.to_owned();
    with_session(&key, |_| ()).map(|_| key)
}

/// The signed-in session: (key, token, csrf, professional).
fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Option<(String, String, String, Option<String>)> {
    let key = session_of(state, headers)?;
    with_session(&key, |s| {
        s.token
            .clone()
            .map(|t| (t, s.csrf.clone(), s.professional.clone()))
    })
    .flatten()
    .map(|(t, c, p)| (key, t, c, p))
}

fn available(state: &AppState) -> bool {
    state.auth.app(APP_ID).ok().flatten().is_some()
}

fn unavailable() -> Response {
    let mut page = Page::new("Not available");
    page.message = Some(
        "The professional viewer is part of the demo sandbox: start PHR with phr serve --demo."
            .into(),
    );
    page.render(StatusCode::NOT_FOUND)
}

async fn start(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !available(&state) {
        return unavailable();
    }
    let mut page = Page::new("Professional viewer");
    if let Some((_, _, csrf, professional)) = signed_in(&state, &headers) {
        page.signed_in = true;
        page.csrf = csrf;
        page.professional = professional;
    }
    page.render(StatusCode::OK)
}

/// Starts the SMART standalone launch: PKCE, a fresh state, to the authorization server.
async fn login(State(state): State<AppState>) -> Response {
    if !available(&state) {
        return unavailable();
    }
    let key = random_token();
    let oauth_state = random_token();
    let verifier = random_token();
    let challenge = pkce_s256_challenge(&verifier);
    sessions()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(
            key.clone(),
            Session {
                csrf: random_token(),
                pending: Some((oauth_state.clone(), verifier)),
                ..Session::default()
            },
        );
    let base = &state.base_url;
    let mut url = format!("{base}/oauth/authorize?");
    url.push_str(
        &url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", APP_ID)
            .append_pair("redirect_uri", &format!("{base}{CALLBACK_PATH}"))
            .append_pair("scope", SCOPE)
            .append_pair("state", &oauth_state)
            .append_pair("aud", &format!("{base}{}", crate::fhir::BASE_PATH))
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .finish(),
    );
    let mut response = see_other(&url);
    cookies(&state).add(&mut response, COOKIE, &key, 3600);
    response
}

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

fn failed(title: &str, text: &str, status: StatusCode) -> Response {
    let mut page = Page::new(title);
    page.message = Some(text.to_owned());
    page.render(status)
}

/// The authorization server's answer: the code is exchanged at the token endpoint.
async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(key) = session_of(&state, &headers) else {
        return failed(
            "Sign-in expired",
            "Start again from the viewer's front page.",
            StatusCode::BAD_REQUEST,
        );
    };
    let pending = with_session(&key, |s| s.pending.take()).flatten();
    let (Some((expected, verifier)), Some(given), Some(code)) =
        (pending, query.get("state"), query.get("code"))
    else {
        return failed(
            "Sign-in failed",
            "The sign-in did not finish; start again from the viewer's front page.",
            StatusCode::BAD_REQUEST,
        );
    };
    if !constant_time_eq(expected.as_bytes(), given.as_bytes()) {
        return failed(
            "Sign-in failed",
            "The answer does not match the sign-in.",
            StatusCode::BAD_REQUEST,
        );
    }
    let base = &state.base_url;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", &format!("{base}{CALLBACK_PATH}"))
        .append_pair("client_id", APP_ID)
        .append_pair("code_verifier", &verifier)
        .finish();
    let answer = http()
        .post(format!("{base}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await;
    let tokens: Option<Value> = match answer {
        Ok(r) if r.status().is_success() => r.json().await.ok(),
        _ => None,
    };
    let Some(token) = tokens
        .as_ref()
        .and_then(|t| t["access_token"].as_str())
        .map(str::to_owned)
    else {
        return failed(
            "Sign-in failed",
            "The authorization server did not issue a token.",
            StatusCode::BAD_GATEWAY,
        );
    };
    let professional = tokens.as_ref().and_then(|t| id_token_name(&t["id_token"]));
    with_session(&key, |s| {
        s.token = Some(token);
        s.professional = professional;
    });
    see_other("/viewer")
}

/// The professional named by the ID token (`sub`), for the page's greeting.
fn id_token_name(id_token: &Value) -> Option<String> {
    use base64::Engine;
    let payload = id_token.as_str()?.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sub").and_then(Value::as_str).map(str::to_owned)
}

fn csrf_ok(expected: &str, form: &[(String, String)]) -> bool {
    form.iter()
        .find(|(k, _)| k == "csrf")
        .is_some_and(|(_, v)| constant_time_eq(v.as_bytes(), expected.as_bytes()))
}

/// Looks the citizen up by identity code (POST `Patient/_search`, the code only in the
/// body), then shows what they share.
async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let Some((_, token, csrf, professional)) = signed_in(&state, &headers) else {
        return see_other("/viewer");
    };
    if !csrf_ok(&csrf, &form) {
        return failed(
            "Refused",
            "The form is not this session's; nothing was done.",
            StatusCode::FORBIDDEN,
        );
    }
    let hetu = form
        .iter()
        .find(|(k, _)| k == "hetu")
        .map(|(_, v)| v.trim().to_uppercase())
        .unwrap_or_default();
    let base = &state.base_url;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "identifier",
            &format!("{}|{hetu}", phr_service::professional::HETU_SYSTEM),
        )
        .finish();
    let answer = http()
        .post(format!("{base}{}/Patient/_search", crate::fhir::BASE_PATH))
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/fhir+json")
        .body(body)
        .send()
        .await;
    let found = match answer {
        Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
        Ok(r) => {
            return refused(r.status(), csrf, professional);
        }
        Err(_) => None,
    };
    let patient = found
        .as_ref()
        .and_then(|b| b.pointer("/entry/0/resource/id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    match patient {
        Some(id) => show(&state, &token, &id, csrf, professional).await,
        None => {
            let mut page = Page::new("No citizen to show");
            page.signed_in = true;
            page.csrf = csrf;
            page.professional = professional;
            page.message = Some(
                "No citizen you may see: either they do not use PHR, or they have not consented to sharing with your organisation, or you have no care relationship with them."
                    .into(),
            );
            page.render(StatusCode::OK)
        }
    }
}

/// Shows a citizen again (the link on their page): a new request, checked again.
async fn patient(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some((_, token, csrf, professional)) = signed_in(&state, &headers) else {
        return see_other("/viewer");
    };
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !valid {
        return failed("Not found", "No such citizen.", StatusCode::NOT_FOUND);
    }
    show(&state, &token, &id, csrf, professional).await
}

fn refused(status: reqwest::StatusCode, csrf: String, professional: Option<String>) -> Response {
    let mut page = Page::new("Access refused");
    page.signed_in = true;
    page.csrf = csrf;
    page.professional = professional;
    page.message = Some(format!(
        "PHR refused the request ({}): the citizen's consent or your organisation's care relationship no longer allows access.",
        status.as_u16()
    ));
    page.render(StatusCode::FORBIDDEN)
}

/// Reads the citizen's latest shared entries and draws a chart per data content.
async fn show(
    state: &AppState,
    token: &str,
    patient: &str,
    csrf: String,
    professional: Option<String>,
) -> Response {
    let base = &state.base_url;
    let answer = http()
        .get(format!(
            "{base}{}/Observation?patient={patient}&_sort=-date&_count={LATEST}",
            crate::fhir::BASE_PATH
        ))
        .bearer_auth(token)
        .header("accept", "application/fhir+json")
        .send()
        .await;
    let bundle = match answer {
        Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
        Ok(r) => return refused(r.status(), csrf, professional),
        Err(_) => None,
    };
    let Some(bundle) = bundle else {
        return failed(
            "Not available",
            "PHR did not answer.",
            StatusCode::BAD_GATEWAY,
        );
    };
    let mut page = Page::new("Shared wellbeing data");
    page.signed_in = true;
    page.csrf = csrf;
    page.professional = professional;
    page.refresh = Some(format!("/viewer/patient/{patient}"));
    page.charts = charts(&bundle);
    if page.charts.is_empty() {
        page.message = Some("The citizen shares no entries of these kinds yet.".into());
    }
    page.render(StatusCode::OK)
}

/// One chart per data content of the searchset, oldest first.
fn charts(bundle: &Value) -> Vec<Chart> {
    let catalog = phr_catalog::Catalog::get();
    let mut by_content: Vec<(&phr_catalog::DataContent, Vec<&Value>)> = Vec::new();
    for resource in bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
    {
        let Some(content) = catalog.content_of(resource) else {
            continue;
        };
        match by_content.iter_mut().find(|(c, _)| c.kind == content.kind) {
            Some((_, list)) => list.push(resource),
            None => by_content.push((content, vec![resource])),
        }
    }
    by_content
        .into_iter()
        .map(|(content, mut entries)| {
            entries.reverse();
            let points: Vec<Point> = entries
                .iter()
                .filter_map(|r| {
                    let t = format::resource_time(r)?.unix_timestamp();
                    let values = if content.series.is_empty() {
                        vec![format::numeric(r)]
                    } else {
                        content
                            .series
                            .iter()
                            .map(|s| component(r, s.code.system, s.code.code))
                            .collect()
                    };
                    Some(Point {
                        t,
                        values,
                        spread: Vec::new(),
                    })
                })
                .collect();
            let name = content.name(phr_catalog::Lang::En).to_owned();
            let from = points.first().map(|p| p.t).unwrap_or(0);
            let to = points.last().map(|p| p.t).unwrap_or(0).max(from + 1);
            let spec = Spec {
                style: Style::Line,
                series: content.series.len().max(1),
                band: None,
                title: name.clone(),
                desc: format!("{name}: {} entries", points.len()),
            };
            let svg = chart::svg(&spec, &points, from, to, false);
            let rows = entries
                .iter()
                .rev()
                .take(20)
                .map(|r| {
                    (
                        format::resource_time(r)
                            .map(|t| format::date_time(t, Lang::En))
                            .unwrap_or_default(),
                        format::summary(r, Lang::En),
                    )
                })
                .collect();
            Chart { name, svg, rows }
        })
        .collect()
}

fn component(resource: &Value, system: &str, code: &str) -> Option<f64> {
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

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    if let Some((key, _, csrf, _)) = signed_in(&state, &headers)
        && csrf_ok(&csrf, &form)
    {
        sessions()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
    }
    let mut response = see_other("/viewer");
    cookies(&state).add(&mut response, COOKIE, "", 0);
    response
}
