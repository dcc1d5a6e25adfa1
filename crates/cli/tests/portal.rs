//! Black-box tests of the citizen portal's rules that need no browser: CSRF refusal, cookie
//! flags, the Content-Security-Policy (and the same security headers as the OAuth pages),
//! no identity code in any page, erasure that really removes data from the FHIR API and
//! search, and the sharing Consent resource.

mod common;

use common::Server;
use common::browser::{Browser, Page, csrf};
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::Value;

const DEMO_HETU: &str = "010190-900P";

/// A cookie-keeping client that does not follow redirects by itself.
fn demo_server() -> Server {
    Server::start(&["--demo", "--demo-days", "3"])
}

/// An access token of the demo app for the first demo citizen, and their Patient id.
fn app_token(server: &Server) -> (String, String) {
    let (patient, token) = server.token(
        DEMO_HETU,
        "demo-app",
        "patient/Observation.read patient/Patient.read",
    );
    (token, patient)
}

fn api(server: &Server, token: &str, path: &str) -> (StatusCode, Value) {
    let response = server
        .client
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .expect("GET");
    let status = response.status();
    let body = response.json().unwrap_or(Value::Null);
    (status, body)
}

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn portal_pages_have_a_strict_csp_and_session_cookies_are_http_only_and_lax() {
    let server = demo_server();
    let mut browser = Browser::new(&server);
    let landing = browser.get("/portal");
    let csp = landing.csp.expect("a CSP header");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("form-action 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("script-src"),
        "{csp}"
    );
    assert!(!landing.body.contains("<script"), "no script in pages");
    assert!(!landing.body.contains("style="), "no inline styles");
    let root = browser.get("/");
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(root.location.as_deref(), Some("/portal"));

    browser.login(DEMO_HETU);
    let session: Vec<&String> = browser
        .set_cookies
        .iter()
        .filter(|c| c.starts_with("phr_portal="))
        .collect();
    assert!(session.len() >= 2, "a login cookie and a session cookie");
    for cookie in session {
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Lax"), "{cookie}");
        assert!(cookie.contains("Path=/"), "{cookie}");
        // Plain http on loopback: Secure would stop the cookie from being sent.
        assert!(!cookie.contains("Secure"), "{cookie}");
    }
    let overview = browser.get("/portal");
    assert!(
        overview
            .csp
            .is_some_and(|c| c.contains("default-src 'none'"))
    );
}

/// The security headers of a page, by name.
fn security_headers(page: &Page) -> Vec<(&'static str, String)> {
    [
        "content-security-policy",
        "x-frame-options",
        "x-content-type-options",
        "referrer-policy",
        "cache-control",
    ]
    .into_iter()
    .map(|name| {
        let value = page
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{name} is missing"))
            .to_string();
        (name, value)
    })
    .collect()
}

#[test]
fn oauth_portal_console_and_operator_pages_send_the_same_security_headers() {
    let server = Server::start(&[]);
    let mut browser = Browser::new(&server);
    let portal = browser.get("/portal");
    assert_eq!(portal.status, StatusCode::OK);
    // Without a login in progress: the login page's "session expired" page.
    let login = browser.get("/oauth/login");
    assert_eq!(login.status, StatusCode::BAD_REQUEST);
    let register = browser.get("/developer");
    assert_eq!(register.status, StatusCode::OK);
    let operator = browser.get("/operator/login?link=unknown");
    assert_eq!(operator.status, StatusCode::OK);
    let expected = security_headers(&portal);
    assert_eq!(security_headers(&login), expected);
    assert_eq!(security_headers(&register), expected);
    assert_eq!(security_headers(&operator), expected);
    assert!(
        expected.contains(&("referrer-policy", "no-referrer".to_string())),
        "{expected:?}"
    );
    assert!(expected.contains(&("cache-control", "no-store".to_string())));
    // Redirects carry them too.
    let to_login = browser.get("/portal/login");
    assert_eq!(to_login.status, StatusCode::SEE_OTHER);
    assert_eq!(security_headers(&to_login), expected);
}

#[test]
fn the_oauth_login_page_refuses_a_form_without_its_csrf_token() {
    let server = Server::start(&[]);
    let mut browser = Browser::new(&server);
    let mut seen = Vec::new();
    let page = browser.follow("/portal/login", &mut seen);
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let good = csrf(&page.body);
    let forged = browser.post(
        "/oauth/login",
        &[("csrf", "not-the-token"), ("hetu", DEMO_HETU)],
    );
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    // Nothing happened: still the login page, and the right token still works.
    let again = browser.get("/oauth/login");
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(csrf(&again.body), good);
    let posted = browser.post("/oauth/login", &[("csrf", &good), ("hetu", DEMO_HETU)]);
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.body);
}

#[test]
fn behind_tls_the_session_cookie_is_secure_and_host_bound() {
    // A TLS-terminating proxy in front: the public URL is https, the server listens on
    // plain http on loopback.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let data = tempfile::tempdir().expect("temp dir");
    let mut child = common::phr()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data.path())
        .args(["--public-url", "https://phr.example.fi"])
        .env("PHR_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start phr");
    // The banner is printed once the server listens.
    let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut lines = std::io::BufRead::lines(stdout);
    lines
        .find(|l| {
            l.as_ref()
                .is_ok_and(|l| l.starts_with("PHR is serving FHIR R4 at "))
        })
        .expect("phr reports that it serves")
        .expect("read stdout");
    std::thread::spawn(move || for _ in lines {});
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let url = format!("http://127.0.0.1:{port}/portal/login");
    let response = client.get(&url).send().expect("phr answers");
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("__Host-phr_portal="))
        .unwrap_or_else(|| panic!("a __Host- session cookie: {cookies:?}"));
    for flag in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains("Domain="), "{cookie}");
}

#[test]
fn form_posts_without_the_session_csrf_token_are_refused_and_change_nothing() {
    let server = demo_server();
    let (token, patient) = app_token(&server);
    let mut browser = Browser::new(&server);
    browser.login(DEMO_HETU);
    let weights = format!("Observation?patient={patient}&code=http://loinc.org|29463-7&_count=500");
    let before = ids(&api(&server, &token, &weights).1);

    for csrf in ["", "forged"] {
        let page = browser.post(
            "/portal/enter/body-weight",
            &[("csrf", csrf), ("weight", "80.5")],
        );
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(page.body.contains("Nothing was changed"), "{}", page.body);
        let page = browser.post("/portal/sharing", &[("csrf", csrf), ("decision", "give")]);
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        let page = browser.post(
            "/portal/delete",
            &[("csrf", csrf), ("scope", "all"), ("confirm", "yes")],
        );
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        let page = browser.post(
            "/portal/apps/withdraw",
            &[("csrf", csrf), ("app", "demo-app")],
        );
        assert_eq!(page.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(ids(&api(&server, &token, &weights).1), before);
    assert_eq!(
        api(&server, &token, &format!("Patient/{patient}")).0,
        StatusCode::OK
    );
    // The demo citizen's consent (blood pressure and glucose) is as it was.
    let sharing = browser.get("/portal/sharing");
    assert!(
        sharing.body.contains("You share this data:"),
        "{}",
        sharing.body
    );

    // Without a session at all, a post leads back to the start page.
    let mut stranger = Browser::new(&server);
    let page = stranger.post("/portal/enter/body-weight", &[("weight", "80.5")]);
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(ids(&api(&server, &token, &weights).1), before);
}

#[test]
fn no_page_or_url_shows_the_identity_code() {
    let server = demo_server();
    let mut browser = Browser::new(&server);
    let seen = browser.login(DEMO_HETU);
    let digits = DEMO_HETU.replace('-', "");
    for url in &seen {
        assert!(!url.contains(DEMO_HETU) && !url.contains(&digits), "{url}");
    }
    for path in [
        "/portal",
        "/portal/data/blood-glucose?range=week",
        "/portal/data/blood-pressure",
        "/portal/data/steps?range=year",
        "/portal/enter",
        "/portal/enter/blood-pressure",
        "/portal/apps",
        "/portal/sharing",
        "/portal/log",
        "/portal/export",
        "/portal/delete",
        "/portal/export/Patient.ndjson",
    ] {
        let page = browser.get(path);
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(
            !page.body.contains(DEMO_HETU) && !page.body.contains(&digits),
            "{path} shows the identity code"
        );
    }
}

#[test]
fn erasure_removes_data_from_the_api_and_search() {
    let server = demo_server();
    let (token, patient) = app_token(&server);
    let mut browser = Browser::new(&server);
    let overview_html = {
        browser.login(DEMO_HETU);
        browser.get("/portal").body
    };
    assert!(overview_html.contains("Blood glucose"));
    let csrf = csrf(&overview_html);

    // One entry: every version gone, not a tombstone.
    let glucose =
        format!("Observation?patient={patient}&code=http://loinc.org|14745-4&_count=1000");
    let before = ids(&api(&server, &token, &glucose).1);
    let victim = before.first().expect("demo glucose").clone();
    let confirm = browser.get(&format!("/portal/delete?type=Observation&id={victim}"));
    assert_eq!(confirm.status, StatusCode::OK);
    let done = browser.post(
        "/portal/delete",
        &[
            ("csrf", &csrf),
            ("scope", "one"),
            ("type", "Observation"),
            ("id", &victim),
        ],
    );
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location.as_deref(), Some("/portal?msg=deleted&n=1"));
    assert_eq!(
        api(&server, &token, &format!("Observation/{victim}")).0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api(&server, &token, &format!("Observation/{victim}/_history")).0,
        StatusCode::NOT_FOUND
    );
    let after = ids(&api(&server, &token, &glucose).1);
    assert!(!after.contains(&victim));
    assert_eq!(after.len(), before.len() - 1);

    // Everything from one application.
    let page = browser.get("/portal/delete?app=demo-glucose");
    assert_eq!(page.status, StatusCode::OK);
    let done = browser.post(
        "/portal/delete",
        &[("csrf", &csrf), ("scope", "app"), ("app", "demo-glucose")],
    );
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert!(ids(&api(&server, &token, &glucose).1).is_empty());

    // Everything needs the explicit confirmation.
    let refused = browser.post("/portal/delete", &[("csrf", &csrf), ("scope", "all")]);
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let all = format!("Observation?patient={patient}&_count=10");
    assert!(!ids(&api(&server, &token, &all).1).is_empty());
    let done = browser.post(
        "/portal/delete",
        &[("csrf", &csrf), ("scope", "all"), ("confirm", "yes")],
    );
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert!(ids(&api(&server, &token, &all).1).is_empty());
    // The citizen stays in the service with an empty record.
    assert_eq!(
        api(&server, &token, &format!("Patient/{patient}")).0,
        StatusCode::OK
    );
    let log = browser.get("/portal/log");
    assert!(
        log.body.contains("erase"),
        "the erasures are in the access log"
    );
}

#[test]
fn sharing_with_professionals_is_a_fhir_consent_given_and_withdrawn() {
    let server = demo_server();
    let mut browser = Browser::new(&server);
    browser.login(DEMO_HETU);
    let consents = |browser: &mut Browser| -> Vec<Value> {
        browser
            .get("/portal/export/Consent.ndjson")
            .body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let active = |list: &[Value]| -> Vec<Value> {
        list.iter()
            .filter(|c| c["status"] == "active")
            .cloned()
            .collect()
    };
    // The demo citizen shares blood pressure and glucose (two data contents).
    let before = consents(&mut browser);
    assert_eq!(active(&before).len(), 1);
    assert_eq!(
        active(&before)[0]["provision"]["class"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let csrf = csrf(&browser.get("/portal/sharing").body);
    let given = browser.post(
        "/portal/sharing",
        &[("csrf", &csrf), ("decision", "give"), ("scope", "all")],
    );
    assert_eq!(given.status, StatusCode::SEE_OTHER);
    let after = consents(&mut browser);
    let now = active(&after);
    assert_eq!(now.len(), 1, "the new choice replaces the old one");
    let consent = &now[0];
    assert_eq!(
        consent["category"][0]["coding"][0]["system"],
        "http://phr.kanta.fi/fiphr-cs-consentcategory"
    );
    assert_eq!(consent["category"][0]["coding"][0]["code"], "1");
    assert!(consent["provision"].get("class").is_none(), "all data");
    assert!(
        consent["patient"]["reference"]
            .as_str()
            .unwrap()
            .starts_with("Patient/")
    );
    assert!(
        browser
            .get("/portal/sharing")
            .body
            .contains("You share all your wellbeing data")
    );

    let withdrawn = browser.post(
        "/portal/sharing",
        &[("csrf", &csrf), ("decision", "withdraw")],
    );
    assert_eq!(withdrawn.status, StatusCode::SEE_OTHER);
    let lines = consents(&mut browser);
    assert_eq!(lines.len(), 2, "the demo's Consent and the new one");
    assert!(lines.iter().all(|c| c["status"] == "inactive"));
    assert!(
        browser
            .get("/portal/sharing")
            .body
            .contains("You have not consented")
    );
}

#[test]
fn bad_input_gets_a_readable_page_and_changes_nothing() {
    let server = demo_server();
    let mut browser = Browser::new(&server);
    browser.login(DEMO_HETU);
    let csrf = csrf(&browser.get("/portal/enter/blood-pressure").body);
    let page = browser.post(
        "/portal/enter/blood-pressure",
        &[
            ("csrf", &csrf),
            ("systolic", "abc"),
            ("diastolic", "900"),
            ("date", "2026-02-30"),
        ],
    );
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"systolic-error\""));
    assert!(page.body.contains("id=\"diastolic-error\""));
    assert!(page.body.contains("id=\"date-error\""));
    assert!(page.body.contains("value=\"abc\""), "the input is kept");
    for path in [
        "/portal/data/no-such-content",
        "/portal/entry/Observation/no-such-id",
        "/portal/entry/Basic/x",
        "/portal/export/Secret.ndjson",
        "/portal/enter/cholesterol",
    ] {
        let page = browser.get(path);
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            page.body.contains("<h1>"),
            "{path}: a page, not a bare status"
        );
    }
    let page = browser.post("/portal/delete", &[("csrf", &csrf), ("scope", "nonsense")]);
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    // A valid entry is stored with the portal as its creating application.
    let page = browser.post(
        "/portal/enter/blood-pressure",
        &[("csrf", &csrf), ("systolic", "128"), ("diastolic", "84")],
    );
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let detail = browser.get(page.location.as_deref().unwrap());
    assert!(detail.body.contains("128 mmHg") && detail.body.contains("84 mmHg"));
    assert!(detail.body.contains("Omakanta / My PHR"));
}

#[test]
fn a_dense_range_is_charted_from_interval_aggregates_with_time_in_range() {
    // Three days of 5-minute CGM readings (~860) fit a chart whole; above twice the chart's
    // 600 points (six days) every reading is counted into per-interval aggregates: the mean
    // as the line, lowest..highest as a band, and time in range from every reading.
    let server = Server::start(&["--demo", "--demo-days", "6"]);
    let mut browser = Browser::new(&server);
    browser.login(DEMO_HETU);
    let aggregated =
        "The line is each interval's mean and the shaded band spans its lowest to highest value";
    let week = browser.get("/portal/data/blood-glucose?range=week&lang=en");
    assert_eq!(week.status, StatusCode::OK);
    assert!(week.body.contains(aggregated), "{}", week.body);
    assert!(week.body.contains("<svg"), "a chart is drawn");
    assert!(
        week.body.contains("<polygon class=\"spread\""),
        "{}",
        week.body
    );
    assert!(week.body.contains("<polyline"), "the line of means");
    assert!(
        !week
            .body
            .contains("The chart shows one entry per time interval"),
        "nothing is sampled"
    );
    // The range's own lowest and highest reading are said: every reading is counted.
    assert!(week.body.contains(" Min "), "{}", week.body);
    // Time in range, in the description and as a table, with shares summing to the count.
    assert!(
        week.body.contains("Time in range: Below 3.9 mmol/l"),
        "{}",
        week.body
    );
    let table = week
        .body
        .split("<table id=\"time-in-range\">")
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .expect("a time-in-range table");
    let counts: Vec<u64> = table
        .split("<tr><th scope=\"row\">")
        .skip(1)
        .filter_map(|row| row.split("<td>").nth(2)?.split('<').next()?.parse().ok())
        .collect();
    assert_eq!(counts.len(), 3, "{table}");
    let shown_count: u64 = week
        .body
        .split("<p class=\"hint\">")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the entry count");
    assert_eq!(counts.iter().sum::<u64>(), shown_count, "{table}");
    let fi = browser.get("/portal/data/blood-glucose?range=week&lang=fi");
    assert!(fi.body.contains("Aika tavoitealueella"), "{}", fi.body);
    let weight = browser.get("/portal/data/body-weight?range=year&lang=en");
    assert_eq!(weight.status, StatusCode::OK);
    assert!(
        !weight.body.contains(aggregated) && !weight.body.contains("time-in-range"),
        "a sparse range is drawn whole, and weight has no target range"
    );
}
