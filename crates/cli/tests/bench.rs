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
