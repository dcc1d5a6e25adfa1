//! `phr demo` and `phr serve --demo`: loads the demo sandbox into a data folder — the test
//! citizens (taken into use through the authorization service, which gives each a
//! pseudonymous Patient), the sample applications, and a year of seeded wellbeing data per
//! citizen, written through the application core's write pipeline, as the API writes (Kanta
//! rules, validation, indexing), in large batches on every core.
//!
//! A `demo.json` in the data folder records what was loaded (seed, period, Patient ids — never
//! an identity code); a second run finds it and loads nothing.

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use phr_demo::people::{APPS, CITIZENS, DEMO_APP, DemoApp};
use phr_demo::{Generated, Period, Progress, Rng, Timeline};
use phr_server::{Config, Core};
use phr_service::{App, Caller, FhirService};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::import::Outcome;

/// Resources per batch Bundle while loading (the API's 300-entry limit does not apply to the
/// operator's own loader; bigger batches mean fewer commits).
const LOAD_BATCH: usize = 2000;
/// The file recording a finished demo load.
pub const MARKER: &str = "demo.json";

#[derive(Args, Debug)]
pub struct DemoArgs {
    #[command(flatten)]
    place: crate::Place,
    /// Seed of the generated data: the same seed gives the same data.
    #[arg(long, default_value_t = phr_demo::DEFAULT_SEED)]
    seed: u64,
    /// Days of data per citizen, ending yesterday.
    #[arg(long, default_value_t = 365)]
    days: u32,
}

/// What `demo.json` records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Marker {
    pub seed: u64,
    pub first_day: String,
    pub days: u32,
    /// Patient ids in the order of the demo citizens.
    pub patients: Vec<String>,
    pub created: u64,
    pub existing: u64,
    pub failed: u64,
}

impl Marker {
    pub fn read(data: &Path) -> Option<Marker> {
        let text = std::fs::read_to_string(data.join(MARKER)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub seed: u64,
    pub period: Period,
    pub progress: bool,
    /// The public URL of the server the demo runs in: its professional viewer is registered
    /// with a redirect URI there (`phr demo` without a server registers none).
    pub viewer_base: Option<String>,
}

/// The demo's service provider.
pub const DEMO_ORG: &str = "1.2.246.10.99999999.10.0";
/// What the demo's citizen 010190-900P shares with Demo Health Centre.
const DEMO_SHARED: [&str; 2] = ["blood-pressure", "blood-glucose"];

/// What a load did.
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub marker: Marker,
    /// True when the folder already held the demo and nothing was loaded.
    pub already_loaded: bool,
    pub seconds: f64,
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let config = args.place.config()?;
    let data = config.data.clone();
    let core = crate::serve::open_core(&config)?;
    let options = DemoOptions {
        seed: args.seed,
        period: Period::last_days(args.days),
        progress: true,
        viewer_base: None,
    };
    let report = load(&core, &data, &options)?;
    print_summary(&report);
    Ok(())
}

/// The demo's default seed, `days` days of data ending yesterday.
pub fn options(days: u32) -> DemoOptions {
    DemoOptions {
        seed: phr_demo::DEFAULT_SEED,
        period: Period::last_days(days),
        progress: true,
        viewer_base: None,
    }
}

fn print_summary(report: &DemoReport) {
    let m = &report.marker;
    if report.already_loaded {
        println!(
            "demo data already loaded (seed {}, {} days from {}): nothing to do",
            m.seed, m.days, m.first_day
        );
    } else {
        let total = m.created + m.existing;
        println!(
            "demo data loaded: {} resources stored ({} new, {} already there, {} failed) in {:.1} s ({:.0}/s)",
            total,
            m.created,
            m.existing,
            m.failed,
            report.seconds,
            total as f64 / report.seconds.max(1e-9)
        );
    }
    for (citizen, patient) in CITIZENS.iter().zip(&m.patients) {
        println!(
            "  test login {}  Patient/{patient}  ({})",
            citizen.hetu, citizen.label
        );
    }
}

/// The caller the demo writes an app's data as: the operator, writing as that app.
fn caller(app: &DemoApp) -> Caller {
    Caller::Operator {
        app: Some(App {
            id: app.id.to_string(),
            name: app.name.to_string(),
        }),
    }
}

/// The Patient of each demo citizen: seeded pseudonyms (before authorization is wired in, the
/// demo itself decides them; the authorization service will own them).
fn patient_ids(seed: u64) -> Vec<String> {
    (0..CITIZENS.len())
        .map(|i| Rng::derive(seed, &format!("patient/{i}")).uuid())
        .collect()
}

/// A Finnish PHR Patient: nothing but the pseudonym.
pub fn pseudonym_patient(id: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "id": id,
        "meta": {"profile": ["http://phr.kanta.fi/StructureDefinition/fiphr-sd-patient"]},
        "language": "fi",
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{id}")}],
        "active": true,
    })
}

/// How the demo's sample applications appear on the public application list (`/apps`):
/// supplier, platform and the data contents they are accepted to read and write. The
/// general demo application is left unlisted (accepted, no content), as one registered
/// before joint testing.
const LISTINGS: &[(&str, &str, phr_auth::Platform, &[&str])] = &[
    (
        "demo-glucose",
        "Sokeritasku Oy (demo)",
        phr_auth::Platform::Ios,
        &["blood-glucose", "insulin-dosing"],
    ),
    (
        "demo-activity",
        "Askelkello Oy (demo)",
        phr_auth::Platform::Android,
        &["steps", "exercise"],
    ),
];

/// Wires the demo into the authorization server: the sample applications are registered
/// (accepted) and each test citizen has taken the service into use with their seeded Patient,
/// so logging in as them (portal, apps, `phr token`) reaches their demo data.
fn enroll(auth: &phr_auth::AuthService, patients: &[String]) -> anyhow::Result<()> {
    for app in APPS {
        if auth.app(app.id)?.is_none() {
            let listing = LISTINGS.iter().find(|l| l.0 == app.id);
            auth.register_app(
                phr_auth::NewApp {
                    app_id: Some(app.id.to_owned()),
                    name: app.name.to_owned(),
                    kind: phr_auth::AppKind::Wellbeing,
                    client_type: phr_auth::ClientType::Confidential,
                    redirect_uris: vec![app.redirect_uri.to_owned()],
                    scope: app.scope.to_owned(),
                    contact: None,
                    jwks: None,
                    jwks_uri: None,
                    org: None,
                    certificate_oid: None,
                    supplier: listing.map(|l| l.1.to_owned()),
                    platform: listing.map(|l| l.2),
                    fhir_versions: None,
                },
                phr_auth::AppStatus::Accepted,
            )?;
            // As if through joint testing: one passed round per content, then accepted.
            if let Some((_, _, _, contents)) = listing {
                let contents: Vec<String> = contents.iter().map(|c| (*c).to_owned()).collect();
                for content in &contents {
                    auth.record_test_round(
                        app.id,
                        content,
                        phr_auth::RoundOutcome::Pass,
                        Some("demo data"),
                    )?;
                }
                auth.accept_app_contents(app.id, &contents, true, true)?;
            }
        }
    }
    for (citizen, patient) in CITIZENS.iter().zip(patients) {
        let hetu = phr_auth::Hetu::parse(citizen.hetu)
            .map_err(|e| anyhow::anyhow!("demo identity: {e}"))?;
        auth.enroll_sandbox_identity(&hetu, patient)?;
    }
    if auth.org(DEMO_ORG)?.is_none() {
        auth.register_org(phr_auth::NewOrganisation {
            oid: DEMO_ORG.to_owned(),
            name_fi: "Demon terveysasema".to_owned(),
            name_sv: Some("Demo hälsocentral".to_owned()),
            name_en: Some("Demo Health Centre".to_owned()),
        })?;
    }
    Ok(())
}

/// The demo's professional side: the certified professional application of Demo Health
/// Centre that the viewer signs in with (redirecting to `base`), and for the first test
/// citizen a care relationship with the centre and a consent to share blood pressure and
/// glucose (only when the demo data is loaded, so a citizen's later choice is kept).
fn professional_demo(
    core: &Core,
    patients: &[String],
    base: Option<&str>,
    fresh: bool,
) -> anyhow::Result<()> {
    let auth = &core.auth;
    if let Some(base) = base
        && auth.app(phr_server::viewer::APP_ID)?.is_none()
    {
        auth.register_app(
            phr_auth::NewApp {
                app_id: Some(phr_server::viewer::APP_ID.to_owned()),
                name: "PHR professional viewer (demo)".to_owned(),
                kind: phr_auth::AppKind::Professional,
                client_type: phr_auth::ClientType::Public,
                redirect_uris: vec![format!(
                    "{}{}",
                    base.trim_end_matches('/'),
                    phr_server::viewer::CALLBACK_PATH
                )],
                scope: "user/Observation.rs user/Patient.rs".to_owned(),
                contact: None,
                jwks: None,
                jwks_uri: None,
                org: Some(DEMO_ORG.to_owned()),
                certificate_oid: None,
                supplier: None,
                platform: None,
                fhir_versions: None,
            },
            phr_auth::AppStatus::Accepted,
        )?;
    }
    let Some(patient) = patients.first() else {
        return Ok(());
    };
    if !fresh {
        return Ok(());
    }
    let fail = |e: phr_service::Error| anyhow::anyhow!("{}", crate::import::rejection_text(&e));
    let start = phr_service::time::to_instant(phr_service::time::now_micros());
    let episode = phr_service::professional::episode_of_care(
        patient,
        DEMO_ORG,
        "Demon terveysasema",
        &start,
        None,
    );
    core.fhir
        .create(&Caller::Operator { app: None }, episode, None)
        .map_err(fail)?;
    let keys: Vec<String> = DEMO_SHARED.iter().map(|k| (*k).to_owned()).collect();
    let profiles =
        phr_service::professional::profiles_of_contents(&keys).map_err(|e| anyhow::anyhow!(e))?;
    core.fhir
        .give_sharing(
            &Caller::Citizen {
                patient: patient.clone(),
            },
            patient,
            Some(&profiles),
            "fi",
            "Suostumus hyvinvointitietojen luovuttamiseen sosiaali- ja terveydenhuollon palvelunantajille",
        )
        .map_err(fail)?;
    auth.set_professional_sharing(patient, true)?;
    Ok(())
}

/// Stores the Patient `id` unless it exists (update-as-create, as the operator).
pub fn ensure_patient(fhir: &FhirService, id: &str) -> anyhow::Result<()> {
    if fhir.storage.read("Patient", id)?.is_some() {
        return Ok(());
    }
    fhir.update(
        &Caller::Operator { app: None },
        "Patient",
        id,
        pseudonym_patient(id),
        None,
    )
    .map_err(|e| anyhow::anyhow!("storing Patient/{id}: {}", e.summary()))?;
    Ok(())
}

/// Counts of one batch's answers.
#[derive(Debug, Default, Clone, Copy)]
pub struct BatchCounts {
    pub created: u64,
    pub existing: u64,
    pub failed: u64,
}

/// Writes `resources` as one batch Bundle of conditional creates through the write pipeline;
/// rejections are collected in `errors`.
pub fn write_batch(
    fhir: &FhirService,
    caller: &Caller,
    resources: Vec<Value>,
    errors: &Mutex<Vec<String>>,
) -> BatchCounts {
    let entries = resources
        .into_iter()
        .map(phr_demo::bundle::sync_entry)
        .collect();
    let mut counts = BatchCounts::default();
    for outcome in crate::import::write_entries(fhir, caller, entries) {
        match outcome {
            Outcome::Created => counts.created += 1,
            Outcome::Existing => counts.existing += 1,
            Outcome::Rejected(why) => {
                counts.failed += 1;
                if let Ok(mut list) = errors.lock() {
                    list.push(why);
                }
            }
        }
    }
    counts
}

/// Loads the demo into `core`'s storage unless the data folder `data` already holds it.
pub fn load(core: &Core, data: &Path, options: &DemoOptions) -> anyhow::Result<DemoReport> {
    let started = Instant::now();
    let fhir = core.fhir.as_ref();
    if let Some(marker) = Marker::read(data)
        && marker
            .patients
            .first()
            .is_some_and(|p| fhir.storage.read("Patient", p).ok().flatten().is_some())
    {
        enroll(&core.auth, &marker.patients)?;
        professional_demo(
            core,
            &marker.patients,
            options.viewer_base.as_deref(),
            false,
        )?;
        return Ok(DemoReport {
            marker,
            already_loaded: true,
            seconds: 0.0,
        });
    }
    let patients = patient_ids(options.seed);
    for id in &patients {
        ensure_patient(fhir, id)?;
    }
    enroll(&core.auth, &patients)?;
    let errors = Mutex::new(Vec::new());
    // The questionnaire the citizens answer: a definition, outside every compartment.
    let mut ids = Rng::derive(options.seed, "questionnaire");
    let questionnaire = phr_demo::resources::wellbeing_questionnaire(
        &DEMO_APP,
        &ids.uuid(),
        options.period.first_day,
    );
    let mut totals = write_batch(fhir, &caller(&DEMO_APP), vec![questionnaire], &errors);

    let timelines: Vec<(String, Timeline)> = CITIZENS
        .iter()
        .zip(&patients)
        .enumerate()
        .map(|(i, (c, p))| {
            (
                p.clone(),
                Timeline::new(
                    options.seed,
                    &format!("citizen-{i}"),
                    c.persona,
                    c.lang,
                    p,
                    options.period,
                ),
            )
        })
        .collect();
    let estimate: u64 = timelines.iter().map(|(_, t)| t.estimated_len()).sum();
    let progress = Mutex::new(if options.progress {
        Progress::new("loading demo data", estimate)
    } else {
        Progress::hidden()
    });
    // Batches go through a bounded queue to one worker per core: generation stays ahead of
    // validation without holding the year in memory.
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let (tx, rx) = crossbeam_channel::bounded::<(Caller, Vec<Value>)>(workers * 2);
    let counts = Mutex::new(BatchCounts::default());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let rx = rx.clone();
            let (errors, counts, progress) = (&errors, &counts, &progress);
            scope.spawn(move || {
                while let Ok((caller, resources)) = rx.recv() {
                    let n = resources.len() as u64;
                    let c = write_batch(fhir, &caller, resources, errors);
                    if let Ok(mut total) = counts.lock() {
                        total.created += c.created;
                        total.existing += c.existing;
                        total.failed += c.failed;
                    }
                    if let Ok(mut p) = progress.lock() {
                        p.add(n);
                    }
                }
            });
        }
        drop(rx);
        for (_, timeline) in timelines {
            let mut by_app: Vec<(&'static DemoApp, Vec<Value>)> =
                APPS.iter().map(|a| (a, Vec::new())).collect();
            for Generated { app, resource, .. } in timeline {
                let Some(slot) = by_app.iter_mut().find(|(a, _)| a.id == app.id) else {
                    continue;
                };
                slot.1.push(resource);
                if slot.1.len() >= LOAD_BATCH {
                    let batch = std::mem::take(&mut slot.1);
                    let _ = tx.send((caller(app), batch));
                }
            }
            for (app, rest) in by_app {
                if !rest.is_empty() {
                    let _ = tx.send((caller(app), rest));
                }
            }
        }
        drop(tx);
    });
    if let Ok(mut p) = progress.lock() {
        p.finish();
    }
    let c = counts.into_inner().unwrap_or_default();
    totals.created += c.created;
    totals.existing += c.existing;
    totals.failed += c.failed;
    let errors = errors.into_inner().unwrap_or_default();
    for e in errors.iter().take(10) {
        eprintln!("demo: rejected: {e}");
    }
    if errors.len() > 10 {
        eprintln!("demo: ... and {} more rejections", errors.len() - 10);
    }
    let marker = Marker {
        seed: options.seed,
        first_day: phr_demo::time::fhir_date(options.period.first_day),
        days: options.period.days,
        patients,
        created: totals.created,
        existing: totals.existing,
        failed: totals.failed,
    };
    if totals.failed > 0 {
        bail!(
            "{} demo resources were rejected (first: {})",
            totals.failed,
            errors.first().map(String::as_str).unwrap_or("?")
        );
    }
    professional_demo(core, &marker.patients, options.viewer_base.as_deref(), true)?;
    std::fs::write(data.join(MARKER), serde_json::to_vec_pretty(&marker)?)
        .with_context(|| format!("cannot write {}", data.join(MARKER).display()))?;
    Ok(DemoReport {
        marker,
        already_loaded: false,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// What a person needs to try the sandbox: the URLs, the test logins, a curl example.
pub fn welcome(config: &Config, report: &DemoReport) -> String {
    use std::fmt::Write as _;
    let base = &config.base_url();
    let mut out = String::new();
    let _ = writeln!(out);
    let _ = writeln!(out, "PHR demo sandbox");
    let _ = writeln!(out, "  FHIR API    {base}/fhir/r4");
    let _ = writeln!(out, "  portal      {base}/portal");
    let _ = writeln!(out, "  metrics     {base}/metrics");
    let _ = writeln!(
        out,
        "  professional viewer  {base}/viewer  (Demo Health Centre; sign in as test professional"
    );
    let _ = writeln!(
        out,
        "    tp-1 Doctor Test Person or tp-2 Nurse Test Person, look up 010190-900P: it shares"
    );
    let _ = writeln!(out, "    blood pressure and glucose)");
    let _ = writeln!(out, "  test logins (sandbox identity provider):");
    for (citizen, patient) in CITIZENS.iter().zip(&report.marker.patients) {
        let _ = writeln!(
            out,
            "    {}  {}  Patient/{patient}",
            citizen.hetu, citizen.label
        );
    }
    if let Some(patient) = report.marker.patients.first() {
        let glucose = "http://loinc.org%7C14745-4";
        if config.open_sandbox {
            let _ = writeln!(out, "  try (open sandbox, no token needed):");
            let _ = writeln!(
                out,
                "    curl '{base}/fhir/r4/Observation?patient={patient}&code={glucose}&_sort=-date&_count=5'"
            );
        } else {
            let _ = writeln!(
                out,
                "  try (with a token for the first test citizen and the app '{}'):",
                DEMO_APP.id
            );
            let place = match &config.database {
                Some(url) => format!(
                    "--database '{}' --identity-key {}",
                    crate::serve::redact(url),
                    config.auth.identity_key_path().display()
                ),
                None => format!("--data {}", config.data.display()),
            };
            let _ = writeln!(
                out,
                "    TOKEN=$(phr token {place} --hetu {} --app {} --scope 'patient/Observation.read' | tail -1)",
                CITIZENS[0].hetu, DEMO_APP.id
            );
            let _ = writeln!(
                out,
                "    curl -H \"Authorization: Bearer $TOKEN\" '{base}/fhir/r4/Observation?patient={patient}&code={glucose}&_sort=-date&_count=5'"
            );
        }
    }
    let _ = writeln!(out);
    out
}
