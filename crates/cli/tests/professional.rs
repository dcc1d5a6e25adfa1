//! Professional access, black-box: the real `phr` binary, organisations and professional
//! applications registered with the operator commands (`phr org`, `phr app`), professionals'
//! tokens minted with `phr token --professional`, care relationships and consents recorded
//! with the sandbox helpers (`phr care add`, `phr consent give|withdraw`), and every answer
//! checked over HTTP: consent × care relationship × application status × interaction.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const ORG: &str = "1.2.246.10.1111111.10.0";
const OTHER_ORG: &str = "1.2.246.10.2222222.10.0";
const PRO_SCOPE: &str = "user/Observation.rs user/Patient.rs";
const WELLBEING_SCOPE: &str = "patient/Observation.cruds patient/Patient.read patient/Consent.cruds patient/EpisodeOfCare.cruds";
const GLUCOSE_PROFILE: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodglucose";
const WEIGHT_PROFILE: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-sd-bodyweight";

fn register_orgs(server: &Server) {
    server.admin(&[
        "org",
        "register",
        "--oid",
        ORG,
        "--name",
        "Testin terveysasema",
        "--name-sv",
        "Testets hälsocentral",
        "--name-en",
        "Test Health Centre",
    ]);
    server.admin(&["org", "register", "--oid", OTHER_ORG, "--name", "Toinen"]);
}

fn register_pro_app(server: &Server, id: &str, org: &str, sandbox: bool) {
    let mut args = vec![
        "app",
        "register",
        "--id",
        id,
        "--name",
        "Potilastietojärjestelmä",
        "--kind",
        "professional",
        "--org",
        org,
        "--scope",
        PRO_SCOPE,
        "--redirect-uri",
        "http://127.0.0.1:9/callback",
    ];
    if sandbox {
        args.push("--sandbox");
    }
    server.admin(&args);
}

fn pro_token(server: &Server, app: &str, professional: &str) -> String {
    let out = server.admin(&[
        "token",
        "--professional",
        professional,
        "--professional-name",
        "Doctor Test Person",
        "--org",
        ORG,
        "--app",
        app,
        "--scope",
        PRO_SCOPE,
    ]);
    assert!(out.contains(&format!("org: {ORG}")), "{out}");
    out.lines().last().expect("a token").to_string()
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn eventually_status(what: &str, status: u16, request: impl Fn() -> reqwest::blocking::Response) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let got = request().status().as_u16();
        if got == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {got} after 3 s, expected {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn organisations_are_registered_by_oid_and_professional_apps_bound_to_one() {
    let server = Server::start(&[]);
    register_orgs(&server);
    let json: Value = serde_json::from_str(&server.admin(&[
        "org",
        "register",
        "--oid",
        "urn:oid:1.2.246.10.3",
        "--name",
        "Kolmas",
        "--json",
    ]))
    .expect("JSON");
    assert_eq!(json["oid"], "1.2.246.10.3");
    assert_eq!(json["name_en"], "Kolmas");
    let listed: Value =
        serde_json::from_str(&server.admin(&["org", "list", "--json"])).expect("JSON list");
    let test = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["oid"] == ORG)
        .expect("listed");
    assert_eq!(
        (&test["name_fi"], &test["name_sv"], &test["name_en"]),
        (
            &json!("Testin terveysasema"),
            &json!("Testets hälsocentral"),
            &json!("Test Health Centre")
        )
    );
    assert!(
        server
            .admin(&["org", "list"])
            .contains("Test Health Centre")
    );
    let taken = server.admin_fails(&["org", "register", "--oid", ORG, "--name", "X"]);
    assert!(taken.contains("already registered"), "{taken}");
    let bad = server.admin_fails(&["org", "register", "--oid", "1.2.x", "--name", "X"]);
    assert!(bad.contains("not an OID"), "{bad}");

    // A professional application belongs to a registered organisation and only reads.
    let register = |scope: &str, org: Option<&str>| -> Vec<String> {
        let mut args = vec![
            "app",
            "register",
            "--name",
            "Pro",
            "--kind",
            "professional",
            "--scope",
            scope,
            "--redirect-uri",
            "http://127.0.0.1:9/cb",
        ];
        if let Some(org) = org {
            args.extend(["--org", org]);
        }
        args.into_iter().map(str::to_string).collect()
    };
    let register = |scope: &str, org: Option<&str>| register(scope, org);
    let no_org = server.admin_fails(&refs(&register(PRO_SCOPE, None)));
    assert!(no_org.contains("organisation"), "{no_org}");
    let unknown = server.admin_fails(&refs(&register(PRO_SCOPE, Some("1.2.246.10.9"))));
    assert!(unknown.contains("not registered"), "{unknown}");
    for scope in [
        "user/Observation.write",
        "user/Observation.cruds",
        "patient/Observation.rs",
        "user/Observation.rs user/Observation.c",
    ] {
        let refused = server.admin_fails(&refs(&register(scope, Some(ORG))));
        assert!(refused.contains("may only read"), "{scope}: {refused}");
    }
    server.admin(&refs(&register(PRO_SCOPE, Some(ORG))));
    let wellbeing_with_org = server.admin_fails(&[
        "app",
        "register",
        "--name",
        "W",
        "--org",
        ORG,
        "--scope",
        "patient/Observation.rs",
        "--redirect-uri",
        "http://127.0.0.1:9/cb",
    ]);
    assert!(
        wellbeing_with_org.contains("only professional"),
        "{wellbeing_with_org}"
    );
    let apps = server.admin(&["app", "list"]);
    assert!(apps.contains(&format!("(organisation {ORG})")), "{apps}");

    // Tokens: only for a professional app of the professional's own organisation.
    register_pro_app(&server, "pro-app", ORG, false);
    server.register_app("wellbeing-app", WELLBEING_SCOPE);
    let token = |app: &str, org: &str| {
        server.admin_args(&[
            "token",
            "--professional",
            "tp-1",
            "--org",
            org,
            "--app",
            app,
            "--scope",
            PRO_SCOPE,
        ])
    };
    let as_strs = |v: &Vec<String>| v.iter().map(String::clone).collect::<Vec<_>>();
    let run_fails = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        phr_fails(&refs)
    };
    let other_org = run_fails(as_strs(&token("pro-app", OTHER_ORG)));
    assert!(
        other_org.contains("not a professional application of"),
        "{other_org}"
    );
    let wellbeing = run_fails(as_strs(&token("wellbeing-app", ORG)));
    assert!(
        wellbeing.contains("not a professional application of"),
        "{wellbeing}"
    );
}

/// What the citizen has consented to share.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Consent {
    None,
    All,
    GlucoseOnly,
    Withdrawn,
}

/// The citizen's care relationship.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Care {
    None,
    Active,
    Expired,
    OtherOrg,
}

struct Subject {
    consent: Consent,
    care: Care,
    hetu: String,
    patient: String,
    glucose: String,
    weight: String,
}

/// The professional application's status when the requests are made.
#[derive(Debug, Clone, Copy, PartialEq)]
enum AppState {
    Sandbox,
    Certified,
    Suspended,
    Revoked,
}

fn entries(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .map(|list| list.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default()
}

fn profiles(resources: &[Value]) -> Vec<String> {
    resources
        .iter()
        .filter_map(|r| r.pointer("/meta/profile/0").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_authorization_matrix_of_professionals() {
    let server = Server::start(&[]);
    register_orgs(&server);
    server.register_app("wellbeing-app", WELLBEING_SCOPE);
    let apps = [
        ("pro-sandbox", AppState::Sandbox),
        ("pro-certified", AppState::Certified),
        ("pro-suspended", AppState::Suspended),
        ("pro-revoked", AppState::Revoked),
    ];
    for (id, state) in apps {
        register_pro_app(&server, id, ORG, state == AppState::Sandbox);
    }
    // Tokens are minted while every app is usable: suspension and revocation must cut
    // tokens already issued.
    let tokens: Vec<(AppState, String)> = apps
        .iter()
        .map(|(id, state)| (*state, pro_token(&server, id, "tp-1")))
        .collect();

    let consents = [
        Consent::None,
        Consent::All,
        Consent::GlucoseOnly,
        Consent::Withdrawn,
    ];
    let cares = [Care::None, Care::Active, Care::Expired, Care::OtherOrg];
    let mut subjects = Vec::new();
    let mut individual = 900;
    for consent in consents {
        for care in cares {
            individual += 1;
            let hetu = test_hetu("150375", individual);
            let (patient, token) = server.token(&hetu, "wellbeing-app", WELLBEING_SCOPE);
            let store = |resource: Value| {
                let response = server.post_as(&token, "Observation", &resource);
                assert_eq!(response.status(), 201, "{}", response.text().unwrap());
                body(response)["id"].as_str().unwrap().to_string()
            };
            let glucose = store(glucose(&patient, "2026-11-01T08:00:00+02:00", 5.6));
            let weight = store(weight(&patient, 80.5));
            match consent {
                Consent::None => {}
                Consent::All => {
                    server.admin(&["consent", "give", "--hetu", &hetu]);
                }
                Consent::GlucoseOnly => {
                    server.admin(&[
                        "consent",
                        "give",
                        "--hetu",
                        &hetu,
                        "--content",
                        "blood-glucose",
                    ]);
                }
                Consent::Withdrawn => {
                    server.admin(&["consent", "give", "--hetu", &hetu]);
                    server.admin(&["consent", "withdraw", "--hetu", &hetu]);
                }
            }
            match care {
                Care::None => {}
                Care::Active => {
                    server.admin(&["care", "add", "--hetu", &hetu, "--org", ORG]);
                }
                Care::Expired => {
                    server.admin(&[
                        "care",
                        "add",
                        "--hetu",
                        &hetu,
                        "--org",
                        ORG,
                        "--from",
                        "2020-01-01",
                        "--until",
                        "2021-12-31",
                    ]);
                }
                Care::OtherOrg => {
                    server.admin(&["care", "add", "--hetu", &hetu, "--org", OTHER_ORG]);
                }
            }
            subjects.push(Subject {
                consent,
                care,
                hetu,
                patient,
                glucose,
                weight,
            });
        }
    }
    let all_patients: Vec<String> = subjects.iter().map(|s| s.patient.clone()).collect();

    // Now cut the apps that should be cut, and wait until the server has heard of it.
    server.admin(&["app", "suspend", "pro-suspended"]);
    server.admin(&["app", "revoke", "pro-revoked"]);
    for (state, token) in &tokens {
        if matches!(state, AppState::Suspended | AppState::Revoked) {
            eventually_status("cut app", 401, || {
                server.get_as(
                    token,
                    &format!("Observation?patient={}", subjects[5].patient),
                )
            });
        }
    }

    let mut checked = 0;
    for (state, token) in &tokens {
        let usable = matches!(state, AppState::Sandbox | AppState::Certified);
        for s in &subjects {
            let what = format!("{state:?} app, consent {:?}, care {:?}", s.consent, s.care);
            let allowed = usable
                && matches!(s.consent, Consent::All | Consent::GlucoseOnly)
                && s.care == Care::Active;
            let weight_shared = allowed && s.consent == Consent::All;
            let expect =
                |response: reqwest::blocking::Response, status: u16, interaction: &str| -> Value {
                    let got = response.status().as_u16();
                    let text = response.text().unwrap();
                    let expected = if usable { status } else { 401 };
                    assert_eq!(got, expected, "{what}: {interaction}: {text}");
                    // Nobody else's data, ever.
                    for other in all_patients.iter().filter(|p| **p != s.patient) {
                        assert!(
                            !text.contains(other.as_str()),
                            "{what}: {interaction} leaks"
                        );
                    }
                    if !weight_shared {
                        assert!(
                            !text.contains(WEIGHT_PROFILE),
                            "{what}: {interaction} shows what was not shared: {text}"
                        );
                    }
                    serde_json::from_str(&text).unwrap_or(Value::Null)
                };

            // read
            expect(
                server.get_as(token, &format!("Observation/{}", s.glucose)),
                if allowed { 200 } else { 404 },
                "read glucose",
            );
            expect(
                server.get_as(token, &format!("Observation/{}", s.weight)),
                if weight_shared { 200 } else { 404 },
                "read weight",
            );
            expect(
                server.get_as(token, &format!("Patient/{}", s.patient)),
                if allowed { 200 } else { 404 },
                "read Patient",
            );

            // search
            let bundle = expect(
                server.get_as(token, &format!("Observation?patient={}", s.patient)),
                if allowed { 200 } else { 403 },
                "search",
            );
            if allowed {
                let mut found = profiles(&entries(&bundle));
                found.sort();
                let mut wanted = vec![GLUCOSE_PROFILE.to_string()];
                if weight_shared {
                    wanted.push(WEIGHT_PROFILE.to_string());
                    wanted.sort();
                }
                assert_eq!(found, wanted, "{what}: search");
                assert_eq!(bundle["total"], json!(wanted.len()), "{what}: total");
            }
            expect(
                server.get_as(token, "Observation"),
                if usable { 400 } else { 401 },
                "search without patient",
            );

            // _include
            let bundle = expect(
                server.get_as(
                    token,
                    &format!(
                        "Observation?patient={}&_include=Observation:subject",
                        s.patient
                    ),
                ),
                if allowed { 200 } else { 403 },
                "_include",
            );
            if allowed {
                let included: Vec<Value> = entries(&bundle)
                    .into_iter()
                    .filter(|r| r["resourceType"] == "Patient")
                    .collect();
                assert_eq!(
                    included.len(),
                    1,
                    "{what}: the citizen's Patient is included"
                );
                assert_eq!(included[0]["id"], json!(s.patient));
            }

            // history
            expect(
                server.get_as(token, &format!("Observation/{}/_history", s.glucose)),
                if allowed { 200 } else { 404 },
                "history",
            );
            expect(
                server.get_as(token, &format!("Observation/{}/_history", s.weight)),
                if weight_shared { 200 } else { 404 },
                "history of weight",
            );
            expect(
                server.get_as(token, "Observation/_history"),
                403,
                "type history",
            );

            // the citizen by identity code, GET and POST
            let lookup = expect(
                server.get_as(
                    token,
                    &format!("Patient?identifier=urn:oid:1.2.246.21|{}", s.hetu),
                ),
                200,
                "Patient by identity code",
            );
            if usable {
                let found = entries(&lookup);
                assert_eq!(found.len(), usize::from(allowed), "{what}: lookup");
                if allowed {
                    assert_eq!(found[0]["id"], json!(s.patient));
                }
                let text = lookup.to_string();
                assert!(
                    !text.contains(&s.hetu),
                    "{what}: the identity code is echoed"
                );
            }
            let posted = server
                .client
                .post(server.url("Patient/_search"))
                .bearer_auth(token)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("identifier=urn%3Aoid%3A1.2.246.21%7C{}", s.hetu))
                .send()
                .unwrap();
            let posted = expect(posted, 200, "POST Patient/_search");
            if usable {
                assert_eq!(entries(&posted).len(), usize::from(allowed), "{what}: POST");
            }

            // write and delete: never
            expect(
                server.post_as(
                    token,
                    "Observation",
                    &glucose(&s.patient, "2026-11-02T08:00:00+02:00", 6.1),
                ),
                403,
                "create",
            );
            let conditional = server
                .json(
                    server
                        .client
                        .post(server.url("Observation"))
                        .bearer_auth(token)
                        .header("If-None-Exist", "identifier=urn:ietf:rfc:3986|urn:uuid:x"),
                    &glucose(&s.patient, "2026-11-02T08:00:00+02:00", 6.1),
                )
                .send()
                .unwrap();
            expect(conditional, 403, "conditional create");
            expect(
                server.delete_as(token, &format!("Observation/{}", s.glucose)),
                403,
                "delete",
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 4 * 16);

    // The data is still all there for the citizen's own app.
    let (_, own) = server.token(&subjects[5].hetu, "wellbeing-app", WELLBEING_SCOPE);
    let bundle = body(server.get_as(
        &own,
        &format!("Observation?patient={}", subjects[5].patient),
    ));
    assert_eq!(bundle["total"], 2);
}

#[test]
fn withdrawing_consent_cuts_an_issued_token_at_once_and_giving_it_again_restores_it() {
    let server = Server::start(&[]);
    register_orgs(&server);
    server.register_app("wellbeing-app", WELLBEING_SCOPE);
    register_pro_app(&server, "pro-app", ORG, false);
    let hetu = test_hetu("010190", 950);
    let (patient, own) = server.token(&hetu, "wellbeing-app", WELLBEING_SCOPE);
    let response = server.post_as(
        &own,
        "Observation",
        &glucose(&patient, "2026-11-01T08:00:00+02:00", 5.0),
    );
    assert_eq!(response.status(), 201);
    // A wellbeing application cannot open the citizen's data to professionals.
    let forged_consent = json!({
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://phr.kanta.fi/fiphr-cs-consentcategory", "code": "1"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "provision": {"type": "permit"}
    });
    let refused = server.post_as(&own, "Consent", &forged_consent);
    assert_eq!(refused.status(), 403);
    assert!(refused.text().unwrap().contains("only the citizen"));
    let forged_care = json!({
        "resourceType": "EpisodeOfCare",
        "status": "active",
        "patient": {"reference": format!("Patient/{patient}")},
        "managingOrganization": {"identifier": {"system": "urn:ietf:rfc:3986", "value": format!("urn:oid:{ORG}")}},
        "period": {"start": "2026-01-01"}
    });
    let refused = server.post_as(&own, "EpisodeOfCare", &forged_care);
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .text()
            .unwrap()
            .contains("organisation's own system")
    );
    server.admin(&["care", "add", "--hetu", &hetu, "--org", ORG]);
    let token = pro_token(&server, "pro-app", "tp-2");
    let search = || server.get_as(&token, &format!("Observation?patient={patient}"));
    assert_eq!(search().status(), 403, "no consent yet");
    server.admin(&[
        "consent",
        "give",
        "--hetu",
        &hetu,
        "--content",
        "blood-glucose",
    ]);
    assert_eq!(search().status(), 200);
    server.admin(&["consent", "withdraw", "--hetu", &hetu]);
    assert_eq!(
        search().status(),
        403,
        "withdrawn: the same token is refused"
    );
    server.admin(&["consent", "give", "--hetu", &hetu]);
    assert_eq!(search().status(), 200);
    let bad = server.admin_fails(&["consent", "give", "--hetu", &hetu, "--content", "nonsense"]);
    assert!(bad.contains("not a data content"), "{bad}");
    let bad = server.admin_fails(&[
        "care", "add", "--hetu", &hetu, "--org", ORG, "--until", "tomorrow",
    ]);
    assert!(bad.contains("use a date"), "{bad}");
    let bad = server.admin_fails(&["care", "add", "--hetu", &hetu, "--org", "1.2.3.4"]);
    assert!(bad.contains("not registered"), "{bad}");
}

#[test]
fn a_professionals_access_is_in_the_citizens_log_naming_organisation_professional_and_contents() {
    let server = Server::start(&[]);
    register_orgs(&server);
    server.register_app("wellbeing-app", WELLBEING_SCOPE);
    server.register_app("log-app", "patient/AuditEvent.read");
    register_pro_app(&server, "pro-app", ORG, false);
    let hetu = test_hetu("010190", 951);
    let (patient, own) = server.token(&hetu, "wellbeing-app", WELLBEING_SCOPE);
    let created = server.post_as(
        &own,
        "Observation",
        &glucose(&patient, "2026-11-01T08:00:00+02:00", 5.4),
    );
    assert_eq!(created.status(), 201);
    let observation = body(created)["id"].as_str().expect("id").to_string();
    server.admin(&["care", "add", "--hetu", &hetu, "--org", ORG]);
    server.admin(&[
        "consent",
        "give",
        "--hetu",
        &hetu,
        "--content",
        "blood-glucose",
    ]);
    let token = pro_token(&server, "pro-app", "tp-7");
    let searched = server.get_as(&token, &format!("Observation?patient={patient}"));
    assert_eq!(searched.status(), 200);
    let read = server.get_as(&token, &format!("Observation/{observation}"));
    assert_eq!(read.status(), 200);
    server.admin(&["consent", "withdraw", "--hetu", &hetu]);
    let refused = server.get_as(&token, &format!("Observation/{observation}"));
    assert_eq!(refused.status(), 404, "withdrawn: not even its existence");
    let refused_search = server.get_as(&token, &format!("Observation?patient={patient}"));
    assert_eq!(refused_search.status(), 403);

    // The FHIR view of the log: the professional, the organisation, the care relationship
    // and the data content read.
    let (_, log_token) = server.token(&hetu, "log-app", "patient/AuditEvent.read");
    let events = body(server.get_as(&log_token, &format!("AuditEvent?patient={patient}")));
    let by_professional: Vec<&Value> = events["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["resource"])
        .filter(|e| {
            e["agent"].as_array().is_some_and(|agents| {
                agents
                    .iter()
                    .any(|a| a["who"]["identifier"]["value"] == "tp-7")
            })
        })
        .collect();
    // The refused read named no citizen it could be shown to (404 for what is not shared);
    // the refused search named the citizen.
    assert_eq!(
        by_professional.len(),
        3,
        "the search, the read, the refused search"
    );
    assert_eq!(
        by_professional
            .iter()
            .filter(|e| e["outcome"] == "4")
            .count(),
        1
    );
    let read_event = by_professional
        .iter()
        .find(|e| e["subtype"][0]["code"] == "read" && e["outcome"] == "0")
        .expect("the read");
    let text = read_event.to_string();
    for expected in [
        "Doctor Test Person",
        &format!("urn:oid:{ORG}"),
        "Testin terveysasema",
        "EpisodeOfCare/",
        "blood-glucose",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    assert!(!text.contains(&hetu), "never the identity code");

    // The portal's access log names them in the citizen's language.
    let mut browser = common::browser::Browser::new(&server);
    browser.login(&hetu);
    let log = browser.get("/portal/log?lang=en");
    assert_eq!(log.status, 200);
    assert!(
        log.body.contains("Test Health Centre, Doctor Test Person"),
        "{}",
        log.body
    );
    assert!(log.body.contains("viewed blood glucose"), "{}", log.body);
    let log = browser.get("/portal/log?lang=fi");
    assert!(
        log.body.contains("Testin terveysasema, Doctor Test Person"),
        "{}",
        log.body
    );
    assert!(log.body.contains("katsoi verensokeri"), "{}", log.body);
    assert!(log.body.contains("hylättiin (403)"), "{}", log.body);
}

#[test]
fn the_citizen_chooses_what_to_share_hides_single_entries_and_withdraws_in_the_portal() {
    use common::browser::{Browser, csrf};
    let server = Server::start(&[]);
    register_orgs(&server);
    server.register_app("wellbeing-app", WELLBEING_SCOPE);
    register_pro_app(&server, "pro-app", ORG, false);
    let hetu = test_hetu("010190", 952);
    let (patient, own) = server.token(&hetu, "wellbeing-app", WELLBEING_SCOPE);
    let mut glucose_ids = Vec::new();
    for (when, value) in [
        ("2026-11-01T08:00:00+02:00", 5.1),
        ("2026-11-02T08:00:00+02:00", 6.2),
    ] {
        let created = server.post_as(&own, "Observation", &glucose(&patient, when, value));
        assert_eq!(created.status(), 201);
        glucose_ids.push(body(created)["id"].as_str().unwrap().to_string());
    }
    assert_eq!(
        server
            .post_as(&own, "Observation", &weight(&patient, 71.5))
            .status(),
        201
    );
    server.admin(&["care", "add", "--hetu", &hetu, "--org", ORG]);
    let token = pro_token(&server, "pro-app", "tp-3");
    let search = || server.get_as(&token, &format!("Observation?patient={patient}"));
    let shared = || {
        let response = search();
        assert_eq!(response.status(), 200);
        let bundle = body(response);
        let ids: Vec<String> = entries(&bundle)
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        (bundle["total"].as_u64(), ids, profiles(&entries(&bundle)))
    };

    let mut browser = Browser::new(&server);
    browser.login(&hetu);
    let page = browser.get("/portal/sharing?lang=en");
    assert!(
        page.body.contains("You have not consented"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("value=\"blood-glucose\""),
        "{}",
        page.body
    );
    let token_field = csrf(&page.body);

    // Bad input: a readable page, and nothing changes.
    let none_chosen = browser.post(
        "/portal/sharing",
        &[
            ("csrf", &token_field),
            ("decision", "give"),
            ("scope", "chosen"),
        ],
    );
    assert_eq!(none_chosen.status, 400);
    assert!(
        none_chosen.body.contains("Choose at least one"),
        "{}",
        none_chosen.body
    );
    for form in [
        vec![
            ("decision", "give"),
            ("scope", "chosen"),
            ("content", "blood-glucose"),
            ("content", "nonsense"),
        ],
        vec![("decision", "give"), ("scope", "some")],
        vec![("decision", "perhaps")],
    ] {
        let mut fields = vec![("csrf", token_field.as_str())];
        fields.extend(form);
        let page = browser.post("/portal/sharing", &fields);
        assert_eq!(page.status, 400, "{fields:?}: {}", page.body);
    }
    let forged = browser.post(
        "/portal/sharing",
        &[("csrf", "forged"), ("decision", "give"), ("scope", "all")],
    );
    assert_eq!(forged.status, 403);
    assert_eq!(search().status(), 403, "still no consent");
    assert!(
        browser
            .get("/portal/sharing")
            .body
            .contains("You have not consented")
    );

    // Chosen contents: glucose only.
    let given = browser.post(
        "/portal/sharing",
        &[
            ("csrf", &token_field),
            ("decision", "give"),
            ("scope", "chosen"),
            ("content", "blood-glucose"),
        ],
    );
    assert_eq!(given.status, 303, "{}", given.body);
    let page = browser.get("/portal/sharing");
    assert!(page.body.contains("You share this data:"), "{}", page.body);
    let (total, ids, seen_profiles) = shared();
    assert_eq!(total, Some(2));
    assert_eq!(ids.len(), 2);
    assert!(seen_profiles.iter().all(|p| p == GLUCOSE_PROFILE));

    // One entry hidden: professionals never see it, its source still does, and it keeps
    // naming the application that made it.
    let hidden = &glucose_ids[0];
    let entry = browser.get(&format!("/portal/entry/Observation/{hidden}"));
    assert!(
        entry.body.contains("Hide from professionals"),
        "{}",
        entry.body
    );
    let hide = browser.post(
        "/portal/sharing/entry",
        &[
            ("csrf", &token_field),
            ("decision", "hide"),
            ("type", "Observation"),
            ("id", hidden),
        ],
    );
    assert_eq!(hide.status, 303, "{}", hide.body);
    assert!(
        browser
            .get(&format!("/portal/entry/Observation/{hidden}?lang=en"))
            .body
            .contains("This entry is hidden from professionals")
    );
    let (total, ids, _) = shared();
    assert_eq!(total, Some(1), "not counted either");
    assert_eq!(ids, vec![glucose_ids[1].clone()]);
    assert_eq!(
        server
            .get_as(&token, &format!("Observation/{hidden}"))
            .status(),
        404
    );
    assert_eq!(
        server
            .get_as(&token, &format!("Observation/{hidden}/_history"))
            .status(),
        404
    );
    let own_view = body(server.get_as(&own, &format!("Observation/{hidden}")));
    assert_eq!(own_view["meta"]["security"][0]["code"], "R");
    assert!(
        own_view
            .to_string()
            .contains("\"valueString\":\"wellbeing-app\""),
        "{own_view}"
    );
    let listed = browser.get("/portal/sharing");
    assert!(
        listed
            .body
            .contains(&format!("/portal/entry/Observation/{hidden}")),
        "{}",
        listed.body
    );
    for (decision, rtype, id, status) in [
        ("hide", "Bogus", hidden.as_str(), 404),
        ("hide", "Observation", "no-such-entry", 404),
        ("maybe", "Observation", hidden.as_str(), 400),
    ] {
        let page = browser.post(
            "/portal/sharing/entry",
            &[
                ("csrf", &token_field),
                ("decision", decision),
                ("type", rtype),
                ("id", id),
            ],
        );
        assert_eq!(
            page.status, status,
            "{decision} {rtype}/{id}: {}",
            page.body
        );
    }
    let show = browser.post(
        "/portal/sharing/entry",
        &[
            ("csrf", &token_field),
            ("decision", "show"),
            ("type", "Observation"),
            ("id", hidden),
        ],
    );
    assert_eq!(show.status, 303);
    assert_eq!(shared().0, Some(2));

    // All data, then withdrawal with one action.
    let all = browser.post(
        "/portal/sharing",
        &[
            ("csrf", &token_field),
            ("decision", "give"),
            ("scope", "all"),
        ],
    );
    assert_eq!(all.status, 303);
    assert_eq!(shared().0, Some(3));
    assert!(
        browser
            .get("/portal/sharing")
            .body
            .contains("You share all your wellbeing data")
    );
    let withdrawn = browser.post(
        "/portal/sharing",
        &[("csrf", &token_field), ("decision", "withdraw")],
    );
    assert_eq!(withdrawn.status, 303);
    assert_eq!(search().status(), 403, "withdrawn at once");
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An `application/x-www-form-urlencoded` body.
fn form_body(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

#[test]
fn a_professional_signs_in_with_a_smart_standalone_launch_and_reads_what_is_shared() {
    use common::browser::{Browser, csrf};
    use sha2::Digest;
    let server = Server::start(&[]);
    register_orgs(&server);
    server.register_app("wellbeing-app", WELLBEING_SCOPE);
    register_pro_app(&server, "pro-app", ORG, false);
    let hetu = test_hetu("010190", 953);
    let (patient, own) = server.token(&hetu, "wellbeing-app", WELLBEING_SCOPE);
    let created = server.post_as(
        &own,
        "Observation",
        &glucose(&patient, "2026-11-01T08:00:00+02:00", 5.5),
    );
    assert_eq!(created.status(), 201);
    server.admin(&["care", "add", "--hetu", &hetu, "--org", ORG]);
    server.admin(&["consent", "give", "--hetu", &hetu]);

    // Discovery describes the professional scopes.
    let smart = body(server.get("/.well-known/smart-configuration"));
    let scopes = smart["scopes_supported"].to_string();
    assert!(scopes.contains("user/*.rs"), "{scopes}");
    assert!(
        smart["capabilities"]
            .to_string()
            .contains("permission-user")
    );

    let verifier = "professional-launch-verifier-0123456789-abcdefghijklmnop";
    let challenge = base64url(&sha2::Sha256::digest(verifier.as_bytes()));
    let redirect = "http://127.0.0.1:9/callback";
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let scope = "openid fhirUser user/Observation.rs user/Patient.rs offline_access launch/patient";
    let mut browser = Browser::new(&server);
    let authorize = browser.get(&format!(
        "/oauth/authorize?response_type=code&client_id=pro-app&redirect_uri={}&scope={}&state=st-1&code_challenge={challenge}&code_challenge_method=S256",
        enc(redirect),
        enc(scope)
    ));
    assert_eq!(authorize.status, 303, "{}", authorize.body);
    assert_eq!(
        authorize.location.as_deref(),
        Some("/oauth/professional-login")
    );
    let page = browser.get("/oauth/professional-login");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Professional sign-in"), "{}", page.body);
    let token_field = csrf(&page.body);
    let bad = browser.post(
        "/oauth/professional-login",
        &[("csrf", &token_field), ("professional", "not valid!")],
    );
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Check the identifier"), "{}", bad.body);
    let forged = browser.post(
        "/oauth/professional-login",
        &[("csrf", "forged"), ("professional", "tp-9")],
    );
    assert_eq!(forged.status, 403);
    let signed_in = browser.post(
        "/oauth/professional-login",
        &[
            ("csrf", &token_field),
            ("professional", "tp-9"),
            ("name", "Doctor Test Person"),
        ],
    );
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let back = signed_in.location.expect("back to the application");
    assert!(back.starts_with(redirect), "{back}");
    assert_eq!(query_value(&back, "state").as_deref(), Some("st-1"));
    let code = query_value(&back, "code").expect("a code");

    let client = reqwest::blocking::Client::new();
    let exchange = || {
        client
            .post(format!("{}/oauth/token", server.root))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", redirect),
                ("client_id", "pro-app"),
                ("code_verifier", verifier),
            ]))
            .send()
            .expect("token request")
    };
    let response = exchange();
    assert_eq!(response.status(), 200);
    let tokens = body(response);
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    assert!(tokens.get("patient").is_none(), "{tokens}");
    assert!(!tokens["scope"].as_str().unwrap().contains("launch/patient"));
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    let payload = id_token.split('.').nth(1).expect("JWT payload");
    let claims: Value = {
        use base64::Engine;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(claims["sub"], "tp-9");
    assert!(
        claims["fhirUser"]
            .as_str()
            .unwrap()
            .ends_with("/Practitioner/tp-9"),
        "{claims}"
    );
    assert_eq!(exchange().status(), 400, "a code is used once");

    // The token reads what the citizen shares, after looking them up by identity code.
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let found = client
        .post(server.url("Patient/_search"))
        .bearer_auth(&access)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[(
            "identifier",
            &format!("urn:oid:1.2.246.21|{hetu}"),
        )]))
        .send()
        .expect("lookup");
    assert_eq!(found.status(), 200);
    let found = body(found);
    assert_eq!(found["entry"][0]["resource"]["id"], patient.as_str());
    assert!(!found.to_string().contains(&hetu));
    let observations = server.get_as(&access, &format!("Observation?patient={patient}"));
    assert_eq!(observations.status(), 200);
    assert_eq!(body(observations)["total"], 1);
    assert_eq!(
        server
            .post_as(
                &access,
                "Observation",
                &glucose(&patient, "2026-11-02T08:00:00+02:00", 5.0)
            )
            .status(),
        403,
        "a professional only reads"
    );
}

#[test]
fn production_without_a_professional_identity_provider_answers_501() {
    let dir = tempfile::tempdir().unwrap();
    // Production needs the citizens' upstream identity provider; nothing here talks to it.
    let config = dir.path().join("phr.toml");
    std::fs::write(
        &config,
        "[auth]\nmode = \"production\"\n\
         [auth.oidc]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"phr\"\nclient_secret = \"s\"\n",
    )
    .unwrap();
    let config = config.display().to_string();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = Server::start_behind(&data, "http://127.0.0.1:9", &["--config", &config]);
    let admin = |args: &[&str]| {
        let mut all = server.admin_args(args);
        all.extend(["--config".to_string(), config.clone()]);
        phr_ok(&all.iter().map(String::as_str).collect::<Vec<_>>())
    };
    admin(&[
        "org",
        "register",
        "--oid",
        ORG,
        "--name",
        "Testin terveysasema",
    ]);
    admin(&[
        "app",
        "register",
        "--id",
        "pro-app",
        "--name",
        "Pro",
        "--kind",
        "professional",
        "--org",
        ORG,
        "--scope",
        PRO_SCOPE,
        "--redirect-uri",
        "http://127.0.0.1:9/callback",
        "--certificate-oid",
        "1.2.246.10.1111111.10.7",
    ]);
    let mut browser = common::browser::Browser::new(&server);
    let authorize = browser.get(
        "/oauth/authorize?response_type=code&client_id=pro-app&scope=user%2FObservation.rs&state=s",
    );
    assert_eq!(authorize.status, 303, "{}", authorize.body);
    assert_eq!(
        authorize.location.as_deref(),
        Some("/oauth/professional-login")
    );
    let page = browser.get("/oauth/professional-login");
    assert_eq!(page.status, 501, "{}", page.body);
    assert!(
        page.body.contains("Professional sign-in is not set up"),
        "{}",
        page.body
    );
    drop(server);

    // With [auth.professional_oidc] the login goes to that provider (here unreachable: 502).
    let with_provider = dir.path().join("phr-pro.toml");
    std::fs::write(
        &with_provider,
        "[auth]\nmode = \"production\"\n\
         [auth.oidc]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"phr\"\nclient_secret = \"s\"\n\
         [auth.professional_oidc]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"phr-pro\"\n\
         client_secret = \"s\"\nid_claim = \"urn:oid:1.2.246.537.26\"\norg_claim = \"org\"\n",
    )
    .unwrap();
    let with_provider = with_provider.display().to_string();
    let server = Server::start_behind(&data, "http://127.0.0.1:9", &["--config", &with_provider]);
    let mut browser = common::browser::Browser::new(&server);
    let authorize = browser.get(
        "/oauth/authorize?response_type=code&client_id=pro-app&scope=user%2FObservation.rs&state=s",
    );
    assert_eq!(authorize.status, 303, "{}", authorize.body);
    let page = browser.get("/oauth/professional-login");
    assert_eq!(page.status, 502, "{}", page.body);
}
