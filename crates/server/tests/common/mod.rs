//! Test harness: the server's OAuth router (over the authorization service alone, on a
//! clock the tests move) on a real loopback listener, a cookie-aware browser stand-in, and
//! helpers that walk the login and consent pages like a person would.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use phr_auth::{
    AppStatus, AuthConfig, AuthService, ClientType, ManualClock, Mode, NewApp, PatientRegistry,
};
use serde_json::Value;

pub struct Harness {
    pub base: String,
    pub service: AuthService,
    /// The service's clock: tests move it instead of sleeping.
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    pub patients: Arc<RecordingRegistry>,
    _dir: TempDir,
}

pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!("phr-auth-it-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Stores the Patient resources the service asks for, like the server's store would.
#[derive(Default)]
pub struct RecordingRegistry {
    pub stored: Mutex<Vec<Value>>,
}

impl PatientRegistry for RecordingRegistry {
    fn ensure_patient(&self, patient: &Value) -> Result<(), String> {
        self.stored.lock().unwrap().push(patient.clone());
        Ok(())
    }
}

pub async fn start(configure: impl FnOnce(&mut AuthConfig)) -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let dir = TempDir::new();
    let mut config = AuthConfig::sandbox(&dir.0, &base);
    phr_server::oauth::configure(&mut config, &base, "/fhir/r4");
    configure(&mut config);
    let clock = Arc::new(ManualClock::starting_now());
    let service = AuthService::open_with_clock(config, clock.clone()).unwrap();
    let patients = Arc::new(RecordingRegistry::default());
    service.set_patient_registry(patients.clone());
    let app = phr_server::oauth::router(service.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Harness {
        base,
        service,
        clock,
        http,
        patients,
        _dir: dir,
    }
}

pub const REDIRECT: &str = "http://127.0.0.1:9/callback";
pub const VERIFIER: &str = "a-long-enough-pkce-code-verifier-0123456789abcdefghij";

/// A valid identity code born on `ddmmyy` in the century of `sign` with individual number
/// `individual`.
pub fn hetu(ddmmyy: &str, sign: char, individual: u16) -> String {
    let n: u64 = format!("{ddmmyy}{individual:03}").parse().unwrap();
    let check = "0123456789ABCDEFHJKLMNPRSTUVWXY".as_bytes()[(n % 31) as usize] as char;
    format!("{ddmmyy}{sign}{individual:03}{check}")
}

pub fn adult() -> String {
    hetu("010190", '-', 901)
}

pub fn register(
    h: &Harness,
    client_type: ClientType,
    scope: &str,
    status: AppStatus,
) -> (String, Option<String>) {
    let registered = h
        .service
        .register_app(
            NewApp {
                app_id: None,
                name: "Askelmittari".into(),
                kind: phr_auth::AppKind::Wellbeing,
                client_type,
                redirect_uris: vec![REDIRECT.into()],
                scope: scope.into(),
                contact: None,
                jwks: None,
                jwks_uri: None,
                org: None,
                certificate_oid: None,
                supplier: None,
                platform: None,
                fhir_versions: None,
            },
            status,
        )
        .unwrap();
    (registered.app.app_id, registered.client_secret)
}

pub fn public_app(h: &Harness) -> String {
    register(
        h,
        ClientType::Public,
        "patient/Observation.read patient/Observation.write patient/MedicationAdministration.read offline_access",
        AppStatus::Sandbox,
    )
    .0
}

/// A browser: remembers cookies per name.
#[derive(Default)]
pub struct Browser {
    cookies: Vec<(String, String)>,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Browser {
    fn absorb(&mut self, headers: &reqwest::header::HeaderMap) {
        for value in headers.get_all(reqwest::header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            self.cookies.push((name.to_owned(), value.to_owned()));
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn get(&mut self, http: &reqwest::Client, url: &str) -> Page {
        let response = http
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.page(response).await
    }

    pub async fn post(&mut self, http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = http
            .post(url)
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.page(response).await
    }

    async fn page(&mut self, response: reqwest::Response) -> Page {
        self.absorb(response.headers());
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let location = headers
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        let body = response.text().await.unwrap();
        Page {
            status,
            location,
            body,
            headers,
        }
    }
}

pub fn csrf_of(body: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).expect("form has a CSRF field") + marker.len();
    body[start..].split('"').next().unwrap().to_owned()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn authorize_url(h: &Harness, client_id: &str, scope: &str, challenge: Option<&str>) -> String {
    let mut url = url::Url::parse(&format!("{}/oauth/authorize", h.base)).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", scope)
            .append_pair("state", "st-123")
            .append_pair("aud", &format!("{}/fhir/r4", h.base));
        if let Some(challenge) = challenge {
            q.append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", "S256");
        }
    }
    url.to_string()
}

/// Walks authorize → sandbox login → (terms) → consent (all items) and returns the final
/// redirect to the app.
pub async fn consent_flow(
    h: &Harness,
    browser: &mut Browser,
    client_id: &str,
    scope: &str,
    hetu: &str,
) -> String {
    let challenge = phr_auth::secrets::pkce_s256_challenge(VERIFIER);
    let page = browser
        .get(
            &h.http,
            &authorize_url(h, client_id, scope, Some(&challenge)),
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/oauth/login"));
    let login = browser
        .get(&h.http, &format!("{}/oauth/login", h.base))
        .await;
    assert_eq!(login.status, 200, "{}", login.body);
    let after = browser
        .post(
            &h.http,
            &format!("{}/oauth/login", h.base),
            &[("csrf", &csrf_of(&login.body)), ("hetu", hetu)],
        )
        .await;
    assert_eq!(after.status, 303, "{}", after.body);
    if after.location.as_deref() == Some("/oauth/terms") {
        let terms = browser
            .get(&h.http, &format!("{}/oauth/terms", h.base))
            .await;
        let accepted = browser
            .post(
                &h.http,
                &format!("{}/oauth/terms", h.base),
                &[("csrf", &csrf_of(&terms.body)), ("decision", "accept")],
            )
            .await;
        assert_eq!(accepted.location.as_deref(), Some("/oauth/consent"));
    } else {
        assert_eq!(after.location.as_deref(), Some("/oauth/consent"));
    }
    let consent = browser
        .get(&h.http, &format!("{}/oauth/consent", h.base))
        .await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(
        consent.body.contains("href=\"/apps?lang="),
        "the consent page links to the public application list: {}",
        consent.body
    );
    let csrf = csrf_of(&consent.body);
    let count = consent.body.matches("name=\"item\"").count();
    let indexes: Vec<String> = (0..count).map(|i| i.to_string()).collect();
    let mut form = vec![("csrf", csrf.as_str()), ("decision", "allow")];
    form.extend(indexes.iter().map(|i| ("item", i.as_str())));
    let done = browser
        .post(&h.http, &format!("{}/oauth/consent", h.base), &form)
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    done.location.unwrap()
}

pub async fn token_request(
    h: &Harness,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, Value) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut request = h
        .http
        .post(format!("{}/oauth/token", h.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

pub async fn exchange(h: &Harness, client_id: &str, code: &str, verifier: &str) -> (u16, Value) {
    token_request(
        h,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", client_id),
            ("code_verifier", verifier),
        ],
        None,
    )
    .await
}

/// Login + consent + token for a public app: returns the token response.
pub async fn sign_in(h: &Harness, client_id: &str, scope: &str, hetu: &str) -> Value {
    let mut browser = Browser::default();
    let redirect = consent_flow(h, &mut browser, client_id, scope, hetu).await;
    let code = query_param(&redirect, "code").expect("code in redirect");
    let (status, token) = exchange(h, client_id, &code, VERIFIER).await;
    assert_eq!(status, 200, "{token}");
    token
}

pub fn bearer(token: &Value) -> String {
    format!("Bearer {}", token["access_token"].as_str().unwrap())
}

pub fn mode_production(config: &mut AuthConfig) {
    config.mode = Mode::Production;
}
