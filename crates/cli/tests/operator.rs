//! The operator page at `/operator`, driven through the real binary: an operator signs in
//! with a one-time link from `phr operator login` (once, and not after it expired), sees the
//! applications and an acceptance report, records a joint-testing round and accepts a data
//! content through the page, which changes what `phr app show` shows; forged forms, notes
//! holding an identity code and unknown contents change nothing.

mod common;

use common::browser::{Browser, Page, csrf};
use common::*;
use reqwest::StatusCode;
use serde_json::Value;

/// The path of the sign-in link `phr operator login` prints.
fn sign_in_link(server: &Server, extra: &[&str]) -> String {
    let mut args = vec!["operator", "login"];
    args.extend_from_slice(extra);
    let out = server.admin(&args);
    let url = out
        .lines()
        .find(|l| l.contains("/operator/login?link="))
        .unwrap_or_else(|| panic!("no link: {out}"))
        .trim()
        .to_string();
    assert!(url.starts_with(&server.root), "{url}");
    url.trim_start_matches(&server.root).to_string()
}

/// Follows a sign-in link and posts its form.
fn use_link(browser: &mut Browser, link: &str) -> Page {
    let page = browser.get(link);
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let token = csrf(&page.body);
    let secret = link.split("link=").nth(1).unwrap().to_string();
    browser.post("/operator/login", &[("csrf", &token), ("link", &secret)])
}

fn show(server: &Server, id: &str) -> Value {
    serde_json::from_str(&server.admin(&["app", "show", id, "--json"])).unwrap()
}

#[test]
fn an_operator_signs_in_once_with_a_link_records_a_round_and_accepts_a_content() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    server.admin(&[
        "app",
        "register",
        "--sandbox",
        "--id",
        "glucose-app",
        "--name",
        "Sokerimittari",
        "--scope",
        "patient/Observation.cruds patient/Patient.read",
        "--redirect-uri",
        "http://127.0.0.1:9/callback",
    ]);

    // Signed out: the page says how to sign in and shows nothing else.
    let mut browser = Browser::new(&server);
    let page = browser.get("/operator");
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.body.contains("phr operator login"), "{}", page.body);
    assert!(!page.body.contains("glucose-app"));
    assert!(page.csp.is_some(), "the pages' security headers");
    assert_eq!(
        browser.get("/operator/apps/glucose-app").status,
        StatusCode::UNAUTHORIZED
    );

    // Following the link signs no one in; the form does, once, and only with its token.
    let link = sign_in_link(&server, &[]);
    let page = browser.get(&link);
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(browser.get("/operator").status, StatusCode::UNAUTHORIZED);
    let secret = link.split("link=").nth(1).unwrap().to_string();
    let forged = browser.post("/operator/login", &[("csrf", "forged"), ("link", &secret)]);
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let signed_in = use_link(&mut browser, &link);
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    assert_eq!(signed_in.location.as_deref(), Some("/operator"));
    let home = browser.get("/operator");
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(
        home.body.contains("id=\"app-glucose-app\""),
        "{}",
        home.body
    );
    assert!(home.body.contains("sandbox"));

    let mut second = Browser::new(&server);
    let again = use_link(&mut second, &link);
    assert_eq!(again.status, StatusCode::FORBIDDEN, "a link works once");
    assert!(again.body.contains("phr operator login"));
    assert_eq!(second.get("/operator").status, StatusCode::UNAUTHORIZED);
    let expired = sign_in_link(&server, &["--minutes", "1", "--issued-seconds-ago", "120"]);
    assert_eq!(
        use_link(&mut second, &expired).status,
        StatusCode::FORBIDDEN,
        "an expired link signs no one in"
    );
    assert_eq!(
        use_link(&mut second, "/operator/login?link=made-up").status,
        StatusCode::FORBIDDEN
    );

    // The application's page and its acceptance report, in the page's language.
    let app_page = browser.get("/operator/apps/glucose-app");
    assert_eq!(app_page.status, StatusCode::OK, "{}", app_page.body);
    let token = csrf(&app_page.body);
    let report = browser.get("/operator/apps/glucose-app/acceptance?content=blood-glucose&lang=fi");
    assert_eq!(report.status, StatusCode::OK);
    assert!(report.body.contains("id=\"check-withdrawn-grant\""));
    assert!(report.body.contains("ei vielä havaittu"), "{}", report.body);
    assert_eq!(
        browser
            .get("/operator/apps/glucose-app/acceptance?content=nonsense&lang=en")
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        browser.get("/operator/apps/no-such-app").status,
        StatusCode::NOT_FOUND
    );

    // Forms without the session's token, with an identity code in the note, or an unknown
    // content change nothing.
    let round = "/operator/apps/glucose-app/round";
    let forged = browser.post(
        round,
        &[
            ("csrf", "forged"),
            ("content", "blood-glucose"),
            ("outcome", "pass"),
        ],
    );
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let hetu = test_hetu("010190", 913);
    let personal = browser.post(
        round,
        &[
            ("csrf", &token),
            ("content", "blood-glucose"),
            ("outcome", "fail"),
            ("note", &format!("tested with {hetu}")),
        ],
    );
    assert_eq!(personal.status, StatusCode::BAD_REQUEST);
    assert!(
        personal.body.contains("role=\"alert\""),
        "{}",
        personal.body
    );
    assert!(!personal.body.contains(&hetu));
    let unknown = browser.post(
        round,
        &[
            ("csrf", &token),
            ("content", "nonsense"),
            ("outcome", "pass"),
        ],
    );
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(show(&server, "glucose-app")["rounds"], Value::Array(vec![]));

    // Accepting before a passed round is refused with the reason.
    let accept = "/operator/apps/glucose-app/accept";
    let early = browser.post(accept, &[("csrf", &token), ("content", "blood-glucose")]);
    assert_eq!(early.status, StatusCode::BAD_REQUEST, "{}", early.body);
    assert!(
        early.body.contains("no joint-testing round"),
        "{}",
        early.body
    );

    // A round and an acceptance through the page are what `phr app show` shows.
    let recorded = browser.post(
        round,
        &[
            ("csrf", &token),
            ("content", "blood-glucose"),
            ("outcome", "pass"),
            ("note", "hourly sync and paging fine"),
        ],
    );
    assert_eq!(recorded.status, StatusCode::SEE_OTHER, "{}", recorded.body);
    let shown = show(&server, "glucose-app");
    assert_eq!(shown["rounds"][0]["outcome"], "pass", "{shown}");
    assert_eq!(shown["rounds"][0]["note"], "hourly sync and paging fine");
    let accepted = browser.post(
        accept,
        &[
            ("csrf", &token),
            ("content", "blood-glucose"),
            ("read", "on"),
        ],
    );
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.body);
    let shown = show(&server, "glucose-app");
    assert_eq!(shown["status"], "accepted", "{shown}");
    assert_eq!(shown["contents"][0]["content"], "blood-glucose");
    assert_eq!(shown["contents"][0]["read"], true);
    assert_eq!(shown["contents"][0]["write"], false);
    let page = browser.get("/operator/apps/glucose-app?lang=sv");
    assert!(
        page.body.contains("id=\"status\">accepted"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Godkända datainnehåll"));

    // Signing out needs the form's token; afterwards the page asks to sign in again.
    assert_eq!(
        browser
            .post("/operator/logout", &[("csrf", "forged")])
            .status,
        StatusCode::FORBIDDEN
    );
    let token = csrf(&browser.get("/operator").body);
    assert_eq!(
        browser.post("/operator/logout", &[("csrf", &token)]).status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(browser.get("/operator").status, StatusCode::UNAUTHORIZED);

    // Every step is audited as the operator's (read once the server has stopped and
    // written out its queue).
    let data = server.data.display().to_string();
    server.terminate();
    let audit = phr_ok(&["audit", "export", "--data", &data]);
    for interaction in [
        "\"operator-link\"",
        "\"operator-sign-in\"",
        "\"app-round:pass\"",
        "\"app-contents\"",
    ] {
        assert!(audit.contains(interaction), "{interaction} audited");
    }
    assert!(!audit.contains(&hetu), "no identity code in the audit log");
}
