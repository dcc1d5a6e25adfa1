//! `phr bench` against the real server: it drives the API, counts what was stored, and ends
//! with a machine-readable JSON summary.

mod common;

use common::*;

fn bench(server: &Server, workload: &str) -> serde_json::Value {
    let output = phr()
        .args([
            "bench",
            "--url",
            &server.root,
            "--workload",
            workload,
            "--clients",
            "2",
            "--duration",
            "2",
            "--batch",
            "50",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().expect("output");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {stdout}"))
}

#[test]
fn ingest_bench_stores_batches_and_reports_json() {
    let server = Server::open_sandbox();
    let summary = bench(&server, "ingest");
    assert_eq!(summary["workload"], "ingest");
    assert_eq!(summary["errors"], 0, "{summary}");
    assert!(summary["requests"].as_u64().unwrap() >= 1, "{summary}");
    assert!(
        summary["observations_per_s"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    assert!(summary["latency"]["p99_ms"].as_f64().unwrap() > 0.0);
    // The server runs here, so its memory is found from the port's owner.
    assert_eq!(
        summary["server_pid"].as_u64(),
        Some(server.pid() as u64),
        "{summary}"
    );
    assert!(summary["server_rss_mib"].as_f64().unwrap() > 1.0);
}

#[test]
fn read_bench_reads_what_its_setup_stored() {
    let server = Server::open_sandbox();
    let summary = bench(&server, "read");
    assert_eq!(summary["errors"], 0, "{summary}");
    assert!(summary["requests"].as_u64().unwrap() > 10, "{summary}");
}

// A scale load into a fresh folder, then a server with authorization on: the load's citizens
// must have tokens, or every read and search is a 401 (as it was when the load stored bare
// Patients).
#[test]
fn a_scale_load_is_read_and_searched_with_authorization_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    phr_ok(&["bench", "--scale", "600", "--data", &data]);
    // Thousands of requests for a few citizens: their budgets (edges.rs) are off here.
    let config = dir.path().join("phr.toml");
    std::fs::write(
        &config,
        "[limits.citizen]\nburst = 0\nper_hour = 0\n[limits.app]\nburst = 0\nper_hour = 0\n",
    )
    .unwrap();
    let config = config.display().to_string();
    let server = Server::start_sqlite(dir.path(), &["--config", &config]);
    for workload in ["read", "search"] {
        let output = phr()
            .args([
                "bench",
                "--url",
                &server.root,
                "--workload",
                workload,
                "--clients",
                "2",
                "--duration",
                "2",
                "--data",
                &data,
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(output.status.success(), "{stdout}");
        let summary: serde_json::Value =
            serde_json::from_str(stdout.lines().last().expect("output")).unwrap();
        assert_eq!(summary["authorization"], true, "{summary}");
        assert_eq!(summary["errors"], 0, "{workload}: {stdout}");
        assert!(summary["requests"].as_u64().unwrap() > 10, "{summary}");
    }
}
