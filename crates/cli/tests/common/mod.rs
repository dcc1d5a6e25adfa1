//! Black-box test support: starts the real `phr` binary on a free port with its own data
//! folder and talks HTTP to it.
//!
//! The engine: by default every server stores in SQLite files in its data folder. With
//! `PHR_TEST_ENGINE=postgres` every server gets a fresh PostgreSQL database instead
//! (`--database`, on the cluster `PHR_TEST_POSTGRES_URL` names or a private one) and an
//! identity key file in its data folder; the data folder remembers its database, so a
//! restart on the same folder and the operator commands run through [`phr_ok`] /
//! [`phr_fails`] / [`Server::admin`] with `--data` reach the same database.

#![allow(dead_code)]

pub mod browser;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::Value;

pub const FHIR_JSON: &str = "application/fhir+json";

pub struct Server {
    child: Child,
    /// e.g. `http://127.0.0.1:41234`
    pub root: String,
    /// e.g. `http://127.0.0.1:41234/fhir/r4`
    pub base: String,
    pub data: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub client: Client,
}

pub fn phr() -> Command {
    Command::new(env!("CARGO_BIN_EXE_phr"))
}

/// The variable that chooses the black-box suites' engine (`sqlite`, the default, or
/// `postgres`).
pub const ENGINE_VAR: &str = "PHR_TEST_ENGINE";

/// Whether servers started by this harness store in PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var(ENGINE_VAR).is_ok_and(|v| v == "postgres")
}

/// The file in a data folder naming the database its servers use (PostgreSQL runs only).
const DATABASE_FILE: &str = "test-database";

/// A fresh PostgreSQL database and an identity key file in `data`, unless `data` has them
/// already; returns the `--database URL --identity-key FILE` arguments.
pub fn database_args(data: &Path) -> Vec<String> {
    let file = data.join(DATABASE_FILE);
    let url = match std::fs::read_to_string(&file) {
        Ok(url) => url.trim().to_string(),
        Err(_) => {
            let url = phr_test_postgres::database("blackbox");
            std::fs::write(&file, &url).expect("remember the database");
            url
        }
    };
    let key = data.join("identity.key");
    if !key.exists() {
        let bytes: Vec<u8> = (0..32).map(|_| fastrand_byte()).collect();
        std::fs::write(&key, bytes).expect("write the identity key");
    }
    vec![
        "--database".into(),
        url,
        "--identity-key".into(),
        key.display().to_string(),
    ]
}

/// The engine's arguments for a command on the data folder `data`: none on SQLite.
pub fn engine_args(data: &Path) -> Vec<String> {
    if on_postgres() {
        database_args(data)
    } else {
        vec![]
    }
}

/// Commands that take `--database` like `--data`.
const DATABASE_COMMANDS: &[&str] = &[
    "app", "token", "grant", "audit", "key", "import", "export", "demo", "org", "care", "consent",
    "operator",
];

/// `args` with the engine's arguments for the data folder they name (PostgreSQL runs).
fn with_engine(args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let takes_database = args.first().is_some_and(|c| DATABASE_COMMANDS.contains(c));
    let data = args
        .iter()
        .position(|a| *a == "--data")
        .and_then(|i| args.get(i + 1))
        .map(Path::new);
    if let (true, true, Some(data)) = (on_postgres(), takes_database, data)
        && data.join(DATABASE_FILE).exists()
    {
        all.extend(database_args(data));
    }
    all
}

impl Server {
    /// An open-sandbox server on a fresh data folder.
    pub fn open_sandbox() -> Server {
        Server::start(&["--open-sandbox"])
    }

    pub fn start(args: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data = tmp.path().to_path_buf();
        let mut server = Server::start_in(&data, args);
        server._tmp = Some(tmp);
        server
    }

    /// Starts on an existing data folder (to restart after a crash, say).
    pub fn start_in(data: &Path, args: &[&str]) -> Server {
        Server::spawn(data, "127.0.0.1:0", args, None)
    }

    /// Starts on a free local port with the public URL `public_url` (as behind a proxy): the
    /// server names itself by that URL, the test reaches it on the port.
    pub fn start_behind(data: &Path, public_url: &str, args: &[&str]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut all = vec!["--public-url", public_url];
        all.extend(args);
        Server::spawn(
            data,
            &format!("127.0.0.1:{port}"),
            &all,
            Some(format!("http://127.0.0.1:{port}/fhir/r4")),
        )
    }

    /// Starts on the database `url` with the identity key `key` (whatever the engine of the
    /// run). Nodes behind one load balancer share one public URL: `public_url`, or without it
    /// this node's own address.
    pub fn start_node(
        data: &Path,
        url: &str,
        key: &Path,
        public_url: Option<&str>,
        args: &[&str],
    ) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let own = format!("http://127.0.0.1:{port}");
        let key = key.display().to_string();
        let mut all = vec![
            "--public-url",
            public_url.unwrap_or(&own),
            "--database",
            url,
            "--identity-key",
            &key,
        ];
        all.extend(args);
        Server::spawn_with(
            data,
            &format!("127.0.0.1:{port}"),
            &all,
            Some(format!("{own}/fhir/r4")),
        )
    }

    /// Starts on an existing data folder listening on `listen` (e.g. a port chosen before).
    pub fn start_listening(data: &Path, listen: &str, args: &[&str]) -> Server {
        Server::spawn(data, listen, args, None)
    }

    /// Starts on SQLite files in `data`, whatever the engine of the run.
    pub fn start_sqlite(data: &Path, args: &[&str]) -> Server {
        Server::spawn_with(data, "127.0.0.1:0", args, None)
    }

    fn spawn(data: &Path, listen: &str, args: &[&str], local_base: Option<String>) -> Server {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(engine_args(data));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        Server::spawn_with(data, listen, &all, local_base)
    }

    fn spawn_with(data: &Path, listen: &str, args: &[&str], local_base: Option<String>) -> Server {
        let mut child = phr()
            .arg("serve")
            .arg("--listen")
            .arg(listen)
            .arg("--data")
            .arg(data)
            .args(args)
            .env("PHR_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start phr");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let base = loop {
            assert!(
                Instant::now() < deadline,
                "phr did not report its address in time"
            );
            let line = lines
                .next()
                .expect("phr exited before serving")
                .expect("read stdout");
            if let Some(rest) = line.strip_prefix("PHR is serving FHIR R4 at ") {
                break rest.trim().to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let base = local_base.unwrap_or(base);
        let root = base.trim_end_matches("/fhir/r4").to_string();
        Server {
            child,
            root,
            base,
            data: data.to_path_buf(),
            _tmp: None,
            client: Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("client"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `path` under the FHIR base, or `path` itself when it is already absolute (a link the
    /// server wrote).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_string();
        }
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    pub fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().expect("GET")
    }

    pub fn post(&self, path: &str, body: &Value) -> Response {
        self.json(self.client.post(self.url(path)), body)
            .send()
            .expect("POST")
    }

    pub fn put(&self, path: &str, body: &Value) -> Response {
        self.json(self.client.put(self.url(path)), body)
            .send()
            .expect("PUT")
    }

    pub fn delete(&self, path: &str) -> Response {
        self.client.delete(self.url(path)).send().expect("DELETE")
    }

    pub fn json(&self, request: RequestBuilder, body: &Value) -> RequestBuilder {
        request
            .header("Content-Type", FHIR_JSON)
            .body(serde_json::to_vec(body).expect("json"))
    }

    /// Kills the server with SIGKILL: no shutdown, no flush.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        self.child.wait().expect("wait")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The body as JSON, with the status in the panic message when it is not JSON.
pub fn body(response: Response) -> Value {
    let status = response.status();
    let text = response.text().expect("body");
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text}"))
}

/// The repository's sibling `shared` folder with the Kanta reference data.
pub fn shared(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(path)
}

pub fn kanta_example(name: &str) -> Value {
    let path = shared(&format!("kanta/examples/{name}"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("example is JSON")
}

/// The Kanta PHR Patient the examples point at, as our profile wants it.
pub fn kanta_patient(id: &str) -> Value {
    serde_json::json!({
        "resourceType": "Patient",
        "id": id,
        "meta": {"profile": ["http://phr.kanta.fi/StructureDefinition/fiphr-sd-patient"]},
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{id}")}],
        "active": true,
    })
}

/// The issue codes and expressions of an OperationOutcome, for assertions.
pub fn issues(outcome: &Value) -> Vec<(String, String, String)> {
    outcome["issue"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|i| {
                    (
                        i["severity"].as_str().unwrap_or("").to_string(),
                        i["code"].as_str().unwrap_or("").to_string(),
                        i["expression"][0].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A body weight Observation valid under the Kanta profile, for `patient`.
pub fn weight(patient: &str, kg: f64) -> Value {
    let id = uuid();
    serde_json::json!({
        "resourceType": "Observation",
        "meta": {"profile": ["http://phr.kanta.fi/StructureDefinition/fiphr-sd-bodyweight"]},
        "language": "fi",
        "text": {"status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">Paino {kg} kg</div>")},
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{id}")}],
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": "2024-05-01T08:00:00+03:00",
        "issued": "2024-05-01T08:00:00+03:00",
        "performer": [{"reference": format!("Patient/{patient}")}],
        "valueQuantity": {"value": kg, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
    })
}

/// A blood glucose Observation valid under the Kanta profile, for `patient` at `when` (an
/// instant), as a CGM uploader writes it.
pub fn glucose(patient: &str, when: &str, mmol: f64) -> Value {
    let id = uuid();
    serde_json::json!({
        "resourceType": "Observation",
        "meta": {"profile": ["http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodglucose"]},
        "language": "fi",
        "text": {"status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">Verensokeri {mmol} mmol/l</div>")},
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{id}")}],
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "14745-4", "display": "Glucose [Moles/volume] in Body fluid"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": when,
        "issued": when,
        "performer": [{"reference": format!("Patient/{patient}")}],
        "valueQuantity": {"value": mmol, "unit": "mmol/l", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
    })
}

/// A batch Bundle creating `resources` conditionally by their first identifier, as Kanta's
/// uploaders send them (`POST Observation/` with `ifNoneExist`).
pub fn conditional_batch(resources: &[Value]) -> Value {
    let entries: Vec<Value> = resources
        .iter()
        .map(|r| {
            serde_json::json!({
                "resource": r,
                "request": {
                    "method": "POST",
                    "url": format!("{}/", r["resourceType"].as_str().expect("resourceType")),
                    "ifNoneExist": format!("identifier={}", r["identifier"][0]["value"].as_str().expect("identifier")),
                },
            })
        })
        .collect();
    serde_json::json!({"resourceType": "Bundle", "type": "batch", "entry": entries})
}

/// A random UUID (tests must not depend on the server's id generator).
pub fn uuid() -> String {
    let mut bytes = [0u8; 16];
    for b in bytes.iter_mut() {
        *b = fastrand_byte();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn fastrand_byte() -> u8 {
    use std::cell::Cell;
    use std::hash::{BuildHasher, Hasher};
    thread_local!(static STATE: Cell<u64> = Cell::new(std::collections::hash_map::RandomState::new().build_hasher().finish() | 1));
    STATE.with(|s| {
        // xorshift64*
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        (x.wrapping_mul(0x2545F4914F6CDD1D) >> 56) as u8
    })
}

/// Creates the Kanta Patient `id` (PUT, update-as-create) and returns it.
pub fn create_patient(server: &Server, id: &str) -> String {
    let response = server.put(&format!("Patient/{id}"), &kanta_patient(id));
    assert!(
        response.status().is_success(),
        "creating Patient/{id}: {} {}",
        response.status(),
        response.text().unwrap()
    );
    id.to_string()
}

/// Runs `phr` with `args` and returns its standard output; panics with its error output
/// when it fails.
pub fn phr_ok(args: &[&str]) -> String {
    let output = phr().args(with_engine(args)).output().expect("run phr");
    assert!(
        output.status.success(),
        "phr {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("stdout is UTF-8")
}

/// Runs `phr` with `args`, expects it to fail, and returns its error output.
pub fn phr_fails(args: &[&str]) -> String {
    let output = phr().args(with_engine(args)).output().expect("run phr");
    assert!(
        !output.status.success(),
        "phr {args:?} succeeded: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stderr).expect("stderr is UTF-8")
}

/// A valid test personal identity code (individual number 900–999) of someone born on
/// `ddmmyy` in the 1900s (century sign `-`).
pub fn test_hetu(ddmmyy: &str, individual: u16) -> String {
    assert!(
        (900..=999).contains(&individual),
        "test identities are 900–999"
    );
    let number: u64 = format!("{ddmmyy}{individual:03}").parse().expect("digits");
    let check = b"0123456789ABCDEFHJKLMNPRSTUVWXY"[(number % 31) as usize] as char;
    format!("{ddmmyy}-{individual:03}{check}")
}

impl Server {
    /// `phr <args> --data <this server's data> --public-url <this server>`: an operator
    /// command on this server's data folder while it runs.
    pub fn admin_args(&self, args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend([
            "--data".to_string(),
            self.data.display().to_string(),
            "--public-url".to_string(),
            self.root.clone(),
        ]);
        all
    }

    /// Runs an operator command for this server (see [`Server::admin_args`]); panics when it
    /// fails. Returns its standard output.
    pub fn admin(&self, args: &[&str]) -> String {
        let all = self.admin_args(args);
        phr_ok(&all.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Runs an operator command expected to fail; returns its error output.
    pub fn admin_fails(&self, args: &[&str]) -> String {
        let all = self.admin_args(args);
        phr_fails(&all.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Registers an accepted public application with `phr app register`.
    pub fn register_app(&self, app_id: &str, scope: &str) {
        self.admin(&[
            "app",
            "register",
            "--id",
            app_id,
            "--name",
            &format!("Test app {app_id}"),
            "--scope",
            scope,
            "--redirect-uri",
            "http://127.0.0.1:9/callback",
        ]);
    }

    /// Mints an access token with `phr token` for the test citizen `hetu` and `app`:
    /// (Patient id, access token).
    pub fn token(&self, hetu: &str, app: &str, scope: &str) -> (String, String) {
        let out = self.admin(&["token", "--hetu", hetu, "--app", app, "--scope", scope]);
        let patient = out
            .lines()
            .find_map(|l| l.strip_prefix("patient: "))
            .expect("phr token prints the patient")
            .to_string();
        let token = out
            .lines()
            .last()
            .expect("phr token prints the token")
            .to_string();
        (patient, token)
    }

    pub fn get_as(&self, token: &str, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .expect("GET")
    }

    pub fn post_as(&self, token: &str, path: &str, body: &Value) -> Response {
        self.json(self.client.post(self.url(path)).bearer_auth(token), body)
            .send()
            .expect("POST")
    }

    pub fn put_as(&self, token: &str, path: &str, body: &Value) -> Response {
        self.json(self.client.put(self.url(path)).bearer_auth(token), body)
            .send()
            .expect("PUT")
    }

    pub fn delete_as(&self, token: &str, path: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .expect("DELETE")
    }
}
