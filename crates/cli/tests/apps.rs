//! The application registry's joint testing and the public application list, driven through
//! the real binary: operator commands record test rounds and accepted data contents, and
//! `/apps` lists accepted applications and hides suspended ones at once.

mod common;

use common::*;
use serde_json::Value;

fn register_sandbox_app(server: &Server, id: &str, name: &str) {
    server.admin(&[
        "app",
        "register",
        "--sandbox",
        "--id",
        id,
        "--name",
        name,
        "--scope",
        "patient/Observation.cruds patient/Patient.read",
        "--redirect-uri",
        "http://127.0.0.1:9/callback",
        "--supplier",
        "Askel Oy",
        "--platform",
        "ios",
    ]);
}

fn show(server: &Server, id: &str) -> Value {
    serde_json::from_str(&server.admin(&["app", "show", id, "--json"])).expect("show --json")
}

#[test]
fn joint_testing_rounds_and_accepted_contents_are_recorded_and_shown() {
    let server = Server::start(&[]);
    register_sandbox_app(&server, "steps-app", "Askelmittari");

    let error = server.admin_fails(&["app", "accept", "steps-app", "--content", "steps"]);
    assert!(error.contains("no joint-testing round"), "{error}");
    let error = server.admin_fails(&[
        "app",
        "round",
        "steps-app",
        "--content",
        "nonsense",
        "--outcome",
        "pass",
    ]);
    assert!(
        error.contains("not a data content") && error.contains("blood-pressure"),
        "{error}"
    );
    let error = server.admin_fails(&[
        "app",
        "round",
        "steps-app",
        "--content",
        "steps",
        "--outcome",
        "maybe",
    ]);
    assert!(error.contains("pass or fail"), "{error}");

    let out = server.admin(&[
        "app",
        "round",
        "steps-app",
        "--content",
        "steps",
        "--outcome",
        "fail",
        "--note",
        "duplicates on resync",
    ]);
    assert!(out.contains("steps round 1 fail"), "{out}");
    let error = server.admin_fails(&["app", "accept", "steps-app", "--content", "steps"]);
    assert!(error.contains("failed joint-testing round 1"), "{error}");
    server.admin(&[
        "app",
        "round",
        "steps-app",
        "--content",
        "steps",
        "--outcome",
        "pass",
    ]);
    server.admin(&[
        "app",
        "round",
        "steps-app",
        "--content",
        "body-weight",
        "--outcome",
        "pass",
    ]);
    let out = server.admin(&[
        "app",
        "accept",
        "steps-app",
        "--content",
        "steps",
        "--write",
    ]);
    assert!(
        out.contains("steps-app is accepted for steps (write)"),
        "{out}"
    );
    assert!(out.contains("steps-app is now accepted"), "{out}");
    server.admin(&[
        "app",
        "accept",
        "steps-app",
        "--content",
        "body-weight",
        "--read",
    ]);
    server.admin(&["app", "update", "steps-app", "--platform", "android"]);

    let app = show(&server, "steps-app");
    assert_eq!(app["status"], "accepted");
    assert_eq!(app["supplier"], "Askel Oy");
    assert_eq!(app["platform"], "android");
    let contents: Vec<(String, bool, bool)> = app["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["content"].as_str().unwrap().to_string(),
                c["read"].as_bool().unwrap(),
                c["write"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        contents,
        [
            ("body-weight".to_string(), true, false),
            ("steps".to_string(), false, true)
        ]
    );
    let rounds: Vec<(String, u64, String)> = app["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["content"].as_str().unwrap().to_string(),
                r["round"].as_u64().unwrap(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rounds,
        [
            ("body-weight".to_string(), 1, "pass".to_string()),
            ("steps".to_string(), 1, "fail".to_string()),
            ("steps".to_string(), 2, "pass".to_string()),
        ]
    );
    assert_eq!(app["rounds"][1]["note"], "duplicates on resync");

    let text = server.admin(&["app", "show", "steps-app"]);
    assert!(text.contains("content: steps (write) since"), "{text}");
    assert!(text.contains("round: steps #1"), "{text}");
    let list: Value = serde_json::from_str(&server.admin(&["app", "list", "--json"])).unwrap();
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["app_id"] == "steps-app")
        .expect("listed");
    assert_eq!(listed["contents"].as_array().unwrap().len(), 2);
    let table = server.admin(&["app", "list"]);
    assert!(
        table.contains("[body-weight (read); steps (write)]"),
        "{table}"
    );

    // A personal identity code is refused in a note, and changes nothing.
    let error = server.admin_fails(&[
        "app",
        "round",
        "steps-app",
        "--content",
        "heart-rate",
        "--outcome",
        "fail",
        "--note",
        "tested as 010190-901R",
    ]);
    assert!(
        error.contains("identity code") && !error.contains("010190-901R"),
        "{error}"
    );
    assert_eq!(
        show(&server, "steps-app")["rounds"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let error = server.admin_fails(&["app", "show", "nobody"]);
    assert!(error.contains("no application nobody"), "{error}");

    // In sandbox mode the accepted contents limit nothing: the app writes what its
    // scopes allow.
    let (patient, token) = server.token(
        &test_hetu("010190", 901),
        "steps-app",
        "patient/Observation.cruds",
    );
    let response = server.post_as(
        &token,
        "Observation",
        &glucose(&patient, "2026-11-01T08:00:00+02:00", 5.5),
    );
    assert_eq!(response.status(), 201, "{}", response.text().unwrap());
}

/// Registers a sandbox app, passes one round of each content and accepts them.
fn accepted_app(server: &Server, id: &str, name: &str, write: &[&str], read: &[&str]) {
    register_sandbox_app(server, id, name);
    for content in write.iter().chain(read) {
        server.admin(&[
            "app",
            "round",
            id,
            "--content",
            content,
            "--outcome",
            "pass",
        ]);
    }
    for content in write {
        server.admin(&["app", "accept", id, "--content", content, "--write"]);
    }
    for content in read {
        server.admin(&["app", "accept", id, "--content", content, "--read"]);
    }
}

fn get(server: &Server, path: &str, accept: Option<&str>) -> reqwest::blocking::Response {
    let mut request = server.client.get(format!("{}{path}", server.root));
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    request.send().expect("GET")
}

#[test]
fn the_public_list_shows_accepted_apps_and_hides_a_suspended_one_at_once() {
    let server = Server::start(&[]);
    accepted_app(
        &server,
        "steps-app",
        "Askelmittari",
        &["steps"],
        &["body-weight"],
    );
    accepted_app(&server, "sugar-app", "Sokerikirja", &["blood-glucose"], &[]);
    // Registered but never tested: not listed.
    register_sandbox_app(&server, "draft-app", "Keskeneräinen");

    let page = get(&server, "/apps?lang=en", None);
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{headers:?}"
    );
    let cache = headers["cache-control"].to_str().unwrap();
    assert!(
        cache.starts_with("public") && cache.contains("max-age="),
        "{cache}"
    );
    assert!(headers.contains_key("content-security-policy"));
    assert!(
        !headers.contains_key("set-cookie"),
        "a public page sets no cookie"
    );
    let html = page.text().unwrap();
    assert!(html.contains("<html lang=\"en\">"), "{html}");
    for expected in [
        "Askelmittari",
        "Sokerikirja",
        "Askel Oy",
        "iOS",
        "Steps",
        "Blood glucose",
    ] {
        assert!(html.contains(expected), "{expected} missing: {html}");
    }
    assert!(!html.contains("Keskeneräinen"), "{html}");
    let finnish = get(&server, "/apps?lang=fi", None).text().unwrap();
    assert!(
        finnish.contains("Askelmäärä") && finnish.contains("Tallentaa"),
        "{finnish}"
    );

    let json: Value = get(&server, "/apps.json", None).json().unwrap();
    let apps = json["applications"].as_array().expect("applications");
    assert_eq!(apps.len(), 2, "{json}");
    let steps = apps
        .iter()
        .find(|a| a["id"] == "steps-app")
        .expect("steps-app");
    assert_eq!(steps["name"], "Askelmittari");
    assert_eq!(steps["supplier"], "Askel Oy");
    assert_eq!(steps["platform"], "ios");
    assert_eq!(steps["writes"][0]["code"], "steps");
    assert_eq!(steps["writes"][0]["name"]["en"], "Steps");
    assert_eq!(steps["reads"][0]["code"], "body-weight");
    assert_eq!(steps["writes"].as_array().unwrap().len(), 1);
    let since = steps["since"].as_str().expect("since");
    assert_eq!(since.len(), 10, "a date: {since}");
    assert!(steps.get("contact").is_none() && steps.get("redirect_uris").is_none());
    let negotiated = get(&server, "/apps", Some("application/json"));
    assert!(
        negotiated.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let negotiated: Value = negotiated.json().unwrap();
    assert_eq!(negotiated, json);

    server.admin(&["app", "suspend", "sugar-app"]);
    let json: Value = get(&server, "/apps.json", None).json().unwrap();
    let ids: Vec<&str> = json["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["steps-app"]);
    let html = get(&server, "/apps", None).text().unwrap();
    assert!(
        !html.contains("Sokerikirja") && html.contains("Askelmittari"),
        "{html}"
    );
    server.admin(&["app", "revoke", "steps-app"]);
    let json: Value = get(&server, "/apps.json", None).json().unwrap();
    assert_eq!(
        json["applications"].as_array().map(Vec::len),
        Some(0),
        "{json}"
    );
    // The sandbox's old registration address leads to the developer console's page.
    let moved = common::browser::Browser::new(&server).get("/apps/register");
    assert_eq!(moved.status, 308);
    assert_eq!(moved.location.as_deref(), Some("/developer/register"));
}

/// The acceptance report of `app` for `content` as JSON, and whether the command passed.
fn acceptance(server: &Server, app: &str, content: &str) -> (bool, Value, String) {
    let args = server.admin_args(&["app", "acceptance", app, "--content", content, "--json"]);
    let output = phr()
        .args(engine_args_for(&args))
        .output()
        .expect("run phr");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.success(), report, stdout)
}

/// `args` with the engine's arguments (PostgreSQL runs), as `phr_ok` adds them.
fn engine_args_for(args: &[String]) -> Vec<String> {
    let mut all = args.to_vec();
    let data = args
        .iter()
        .position(|a| a == "--data")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from)
        .expect("--data");
    all.extend(engine_args(&data));
    all
}

fn failed_checks(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// A token from `phr token` with its refresh token: (Patient id, access token, refresh token).
fn token_with_refresh(
    server: &Server,
    hetu: &str,
    app: &str,
    scope: &str,
) -> (String, String, String) {
    let out = server.admin(&["token", "--hetu", hetu, "--app", app, "--scope", scope]);
    let line = |prefix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("phr token prints {prefix}: {out}"))
            .to_string()
    };
    let token = out.lines().last().unwrap().to_string();
    (line("patient: "), token, line("refresh_token: "))
}

/// The refresh-token grant of the public client `app`: (status, answer).
fn refresh(server: &Server, app: &str, refresh_token: &str) -> (u16, Value) {
    let response = server
        .client
        .post(format!("{}/oauth/token", server.root))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                    ("client_id", app),
                ])
                .finish(),
        )
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// Waits until a change made by an operator command (another process) reaches the running
/// server: it looks for such changes at most every half second, on its next request (on
/// PostgreSQL it is notified). Polling with the application's own calls would add to the
/// traffic being judged.
fn let_the_server_see_the_change() {
    std::thread::sleep(std::time::Duration::from_millis(700));
}

/// The check `id` of a report.
fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}: {report:#}"))
}

const ALL_CHECKS: [&str; 11] = [
    "valid-resources",
    "conditional-create",
    "no-duplicates",
    "bundle-limit",
    "hourly-budget",
    "search-patient",
    "search-paging",
    "token-refresh",
    "withdrawn-grant",
    "delete-own",
    "rejected-resend",
];

#[test]
fn acceptance_checks_pass_a_careful_client_and_fail_a_careless_one_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("phr.toml");
    // Sixteen requests per citizen and application, no refill within the test; Bundles of
    // at most five entries.
    std::fs::write(&config, "[limits.citizen]\nburst = 16\nper_hour = 1\n").unwrap();
    let config = config.display().to_string();
    let server = Server::start_in(
        dir.path(),
        &["--config", &config, "--max-bundle-entries", "5"],
    );
    let scope = "patient/Observation.cruds patient/Patient.read offline_access";
    server.register_app("careful-app", scope);
    server.register_app("careless-app", scope);
    let careful_hetu = test_hetu("010190", 911);
    let careless_hetu = test_hetu("020290", 912);
    let (anna, careful, careful_refresh) =
        token_with_refresh(&server, &careful_hetu, "careful-app", scope);
    let (bert, careless) = server.token(&careless_hetu, "careless-app", scope);

    // The careful client: conditional batches within the limit, resent after a "failure"
    // without duplicates, one conditional single create, a search that names the citizen
    // and pages with the server's next links to the end, a refresh before the token
    // expires, and a delete of its own reading.
    let readings: Vec<Value> = (0..3)
        .map(|i| {
            glucose(
                &anna,
                &format!("2026-11-0{}T08:00:00+02:00", i + 1),
                5.0 + f64::from(i),
            )
        })
        .collect();
    for _ in 0..2 {
        let response = server.post_as(&careful, "", &conditional_batch(&readings));
        assert_eq!(response.status(), 200);
    }
    let conditional_post = |token: &str, resource: &Value| {
        let identifier = resource["identifier"][0]["value"]
            .as_str()
            .unwrap()
            .to_string();
        server
            .json(
                server
                    .client
                    .post(server.url("Observation"))
                    .bearer_auth(token)
                    .header("If-None-Exist", format!("identifier={identifier}")),
                resource,
            )
            .send()
            .unwrap()
    };
    let single = glucose(&anna, "2026-11-05T08:00:00+02:00", 6.1);
    let response = conditional_post(&careful, &single);
    assert_eq!(response.status(), 201);
    let own_id = body(response)["id"].as_str().unwrap().to_string();
    let (status, refreshed) = refresh(&server, "careful-app", &careful_refresh);
    assert_eq!(status, 200, "{refreshed}");
    let careful = refreshed["access_token"].as_str().unwrap().to_string();
    let mut next = Some(format!(
        "Observation?patient={anna}&code=http://loinc.org|14745-4&_count=2"
    ));
    let mut pages = 0;
    while let Some(link) = next.take() {
        let page = body(server.get_as(&careful, &link));
        pages += 1;
        next = page["link"]
            .as_array()
            .and_then(|links| links.iter().find(|l| l["relation"] == "next"))
            .and_then(|l| l["url"].as_str())
            .map(str::to_string);
    }
    assert_eq!(pages, 2, "four readings, two a page");
    assert_eq!(
        server
            .delete_as(&careful, &format!("Observation/{own_id}"))
            .status(),
        204
    );

    // Another application's reading in the careless client's citizen's data.
    let (_, careful_for_bert) = server.token(&careless_hetu, "careful-app", scope);
    let others = conditional_post(
        &careful_for_bert,
        &glucose(&bert, "2026-11-06T08:00:00+02:00", 5.5),
    );
    assert_eq!(others.status(), 201);
    let others_id = body(others)["id"].as_str().unwrap().to_string();

    // Before the probe the careful client's report passes everything else and says the
    // withdrawn grant is not yet observed: not a pass.
    let (passed, report, _) = acceptance(&server, "careful-app", "blood-glucose");
    assert!(!passed);
    assert_eq!(failed_checks(&report), ["withdrawn-grant"], "{report:#}");
    let withdrawn = check(&report, "withdrawn-grant");
    assert_eq!(withdrawn["state"], "not-observed");
    assert_eq!(withdrawn["failures"], 0);
    assert!(
        withdrawn["reason"]
            .as_str()
            .unwrap()
            .starts_with("not yet observed"),
        "{withdrawn}"
    );

    // The probe withdraws the careful app's grants; no call since: still not observed.
    let started = server.admin(&["app", "probe", "careful-app", "--start", "--json"]);
    let started: Value = serde_json::from_str(&started).unwrap();
    assert_eq!(started["grants_withdrawn"], 2, "{started}");
    let (_, report, _) = acceptance(&server, "careful-app", "blood-glucose");
    assert_eq!(check(&report, "withdrawn-grant")["state"], "not-observed");
    assert!(report["probe_started_us"].is_i64());
    let_the_server_see_the_change();
    // Its next call is refused; it tries its refresh token once (refused too), asks the
    // citizen again and carries on.
    assert_eq!(
        server.get_as(&careful, &format!("Patient/{anna}")).status(),
        401
    );
    let (status, _) = refresh(
        &server,
        "careful-app",
        refreshed["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(status, 400, "the refresh token died with its grant");
    let (_, careful) = server.token(&careful_hetu, "careful-app", scope);
    assert_eq!(
        server.get_as(&careful, &format!("Patient/{anna}")).status(),
        200
    );
    let (passed, report, _) = acceptance(&server, "careful-app", "blood-glucose");
    assert!(failed_checks(&report).is_empty(), "{report:#}");
    assert!(passed);
    assert_eq!(report["checks"].as_array().unwrap().len(), ALL_CHECKS.len());
    assert!(
        report["checks"][0]["kanta_rule"].is_string()
            && report["checks"][0]["rationale"].is_string()
    );

    // The careless client: the same reading twice without a condition, an invalid reading
    // (its status is an identity code, which the error echoes) sent twice, a Bundle over the
    // limit, a search without patient, a huge page and a first page it never pages on from, a call with an
    // expired token and no refresh, a delete of another application's reading, and
    // requests until it is throttled.
    let reading = glucose(&bert, "2026-11-01T08:00:00+02:00", 7.0);
    for _ in 0..2 {
        assert_eq!(
            server.post_as(&careless, "Observation", &reading).status(),
            201
        );
    }
    let mut invalid = glucose(&bert, "2026-11-02T08:00:00+02:00", 7.5);
    invalid["status"] = Value::String(careless_hetu.clone());
    for _ in 0..2 {
        assert_eq!(
            server.post_as(&careless, "Observation", &invalid).status(),
            422
        );
    }
    let too_many: Vec<Value> = (0..6)
        .map(|i| glucose(&bert, &format!("2026-11-1{i}T08:00:00+02:00"), 6.0))
        .collect();
    assert_eq!(
        server
            .post_as(&careless, "", &conditional_batch(&too_many))
            .status(),
        413
    );
    assert_eq!(
        server
            .get_as(&careless, "Observation?code=http://loinc.org|14745-4")
            .status(),
        400
    );
    assert_eq!(
        server
            .get_as(
                &careless,
                &format!("Observation?patient={bert}&_count=5000")
            )
            .status(),
        200
    );
    assert_eq!(
        server
            .get_as(&careless, &format!("Observation?patient={bert}&_count=1"))
            .status(),
        200
    );
    let expired = server.admin(&[
        "token",
        "--hetu",
        &careless_hetu,
        "--app",
        "careless-app",
        "--scope",
        scope,
        "--issued-seconds-ago",
        "7200",
    ]);
    let expired = expired.lines().last().unwrap();
    assert_eq!(
        server.get_as(expired, &format!("Patient/{bert}")).status(),
        401
    );
    assert_eq!(
        server
            .delete_as(&careless, &format!("Observation/{others_id}"))
            .status(),
        403
    );
    let throttled = (0..20).any(|_| {
        server
            .get_as(&careless, &format!("Patient/{bert}"))
            .status()
            == 429
    });
    assert!(throttled, "the careless client reaches its budget");
    // The probe: the careless client keeps calling with its dead token.
    server.admin(&["app", "probe", "careless-app", "--start"]);
    let_the_server_see_the_change();
    for _ in 0..6 {
        assert_eq!(
            server
                .get_as(&careless, &format!("Patient/{bert}"))
                .status(),
            401
        );
    }

    let (passed, report, text) = acceptance(&server, "careless-app", "blood-glucose");
    assert!(!passed, "a failed report exits non-zero");
    assert_eq!(failed_checks(&report), ALL_CHECKS, "{report:#}");
    for id in ALL_CHECKS {
        assert_eq!(check(&report, id)["state"], "failed", "{id}");
    }
    let abandoned = &check(&report, "search-paging")["examples"];
    assert!(
        abandoned
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["detail"]["next"].is_string()),
        "the first page it did not follow: {abandoned:#}"
    );
    let invalid_example = &check(&report, "valid-resources")["examples"][0];
    assert_eq!(invalid_example["status"], 422);
    assert_eq!(
        invalid_example["detail"]["profile"],
        "http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodglucose"
    );
    assert!(
        invalid_example["detail"]["outcome"]["issue"].is_array(),
        "{invalid_example}"
    );
    let duplicate = &check(&report, "no-duplicates")["examples"][0];
    assert_eq!(
        duplicate["detail"]["identifier"],
        reading["identifier"][0]["value"]
    );
    let resent = &check(&report, "rejected-resend")["examples"][0];
    assert_eq!(resent["status"], 422);
    assert!(resent["detail"]["body_hash"].is_string(), "{resent}");
    assert_eq!(
        check(&report, "search-paging")["examples"][0]["detail"]["count"],
        5000
    );
    assert_eq!(
        check(&report, "token-refresh")["examples"][0]["detail"]["auth"],
        "expired"
    );
    let storm = check(&report, "withdrawn-grant");
    assert_eq!(
        storm["failures"], 5,
        "the first 401 and three retries are allowed"
    );
    assert_eq!(storm["examples"][0]["detail"]["auth"], "withdrawn");
    let refused_call = storm["examples"][0]["interaction"].as_str().unwrap();
    assert!(
        refused_call.starts_with("GET /fhir/r4/") && !refused_call.contains(&bert),
        "a refused call is named by its method and route template: {refused_call}"
    );
    assert_eq!(
        check(&report, "delete-own")["examples"][0]["interaction"],
        "delete"
    );
    assert!(
        !text.contains(&careless_hetu) && !text.contains(&careful_hetu),
        "no identity code in a report: {text}"
    );
    assert!(!text.contains(&careless), "no token in a report");
    assert!(
        !text.contains(&format!("patient={bert}")) && !text.contains("_count=5000"),
        "no query value in a report: {text}"
    );
    let text = server.admin_fails(&[
        "app",
        "acceptance",
        "careless-app",
        "--content",
        "blood-glucose",
    ]);
    assert!(text.contains("fails 11 of 11 acceptance checks"), "{text}");
    let args = server.admin_args(&[
        "app",
        "acceptance",
        "careless-app",
        "--content",
        "blood-glucose",
    ]);
    let output = phr().args(engine_args_for(&args)).output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("FAIL no-duplicates") && text.contains("rule: "),
        "{text}"
    );
    // The careful app's report knows nothing of the careless one's traffic.
    let (passed, _, _) = acceptance(&server, "careful-app", "blood-glucose");
    assert!(passed);
    // A content the careful app never wrote cannot pass: not observed, not failed.
    let (passed, report, _) = acceptance(&server, "careful-app", "body-weight");
    assert!(!passed);
    assert_eq!(
        failed_checks(&report),
        ["valid-resources", "conditional-create"]
    );
    assert_eq!(check(&report, "valid-resources")["state"], "not-observed");
    let text = server.admin_fails(&[
        "app",
        "acceptance",
        "careful-app",
        "--content",
        "body-weight",
    ]);
    assert!(
        text.contains("fails 0 of 11 acceptance checks for body-weight; 2 not yet observed"),
        "{text}"
    );
    // The probe is for the sandbox and for registered applications only.
    let text = server.admin_fails(&["app", "probe", "no-such-app", "--start"]);
    assert!(text.contains("no-such-app"), "{text}");
}
