//! Cost of the enforcement call the FHIR layer makes on every request, warm caches.
//! `cargo run --release -p phr-auth --example enforce_bench` prints one JSON summary line.

use std::time::Instant;

use phr_auth::{AppKind, AppStatus, AuthConfig, AuthService, ClientType, Interaction, NewApp};

fn main() {
    let dir = std::env::temp_dir().join(format!("phr-auth-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let service = AuthService::open(AuthConfig::sandbox(&dir, "http://127.0.0.1:1")).expect("open");
    let app = service
        .register_app(
            NewApp {
                app_id: Some("bench-app".into()),
                name: "Bench".into(),
                kind: AppKind::Wellbeing,
                client_type: ClientType::Public,
                redirect_uris: vec!["http://127.0.0.1/cb".into()],
                scope: "patient/Observation.read patient/Observation.write".into(),
                contact: None,
                jwks: None,
                jwks_uri: None,
                org: None,
                certificate_oid: None,
                supplier: None,
                platform: None,
                fhir_versions: None,
            },
            AppStatus::Sandbox,
        )
        .expect("register");
    // Test identity 010190-901 with its check character.
    let number: u64 = 10_190_901;
    let check = "0123456789ABCDEFHJKLMNPRSTUVWXY".as_bytes()[(number % 31) as usize] as char;
    let hetu = format!("010190-901{check}");
    let issued = service
        .issue_token_for_cli(&hetu, &app.app.app_id, "patient/Observation.read")
        .expect("token");
    let header = format!("Bearer {}", issued.token.access_token);

    let cold = Instant::now();
    service
        .authorize(Some(&header), "Observation", Interaction::Search)
        .expect("allowed");
    let cold_ns = cold.elapsed().as_nanos();

    let rounds = 200_000u32;
    let start = Instant::now();
    for _ in 0..rounds {
        service
            .authorize(Some(&header), "Observation", Interaction::Search)
            .expect("allowed");
    }
    let warm_ns = start.elapsed().as_nanos() / u128::from(rounds);
    println!(
        r#"{{"bench":"authorize","rounds":{rounds},"first_call_ns":{cold_ns},"warm_ns_per_call":{warm_ns}}}"#
    );
    drop(service);
    let _ = std::fs::remove_dir_all(&dir);
}
