//! The application registry's joint testing, driven through the real binary: operator
//! commands record test rounds and accepted data contents.

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

