//! The operator's commands on the authorization state (a data folder's `<data>/auth.db`, or
//! the PostgreSQL database given with `--database`):
//! the application registry (`phr app`), sandbox test tokens (`phr token`), withdrawing a
//! test citizen's grant (`phr grant withdraw`), the audit log (`phr audit export|verify`) and
//! the token signing key (`phr key rotate`).
//!
//! They may run while servers serve the same folder or database: every server learns of a
//! status another process changed within a second (SQLite: a counter polled every half
//! second; PostgreSQL: a notification), so a suspension or a withdrawal cuts the app's
//! tokens almost at once. Settings come from the same places as for
//! `phr serve` (`--config` file, environment, flags), because a token is only accepted by a
//! server whose public URL is the token's issuer. Without `--public-url`, the URL is the one
//! the server serving the data folder (or database) recorded there at start-up.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use phr_auth::traffic::checks::State;
use phr_auth::{
    AppKind, AppStatus, AuthService, ClientType, Clock, FhirVersions, ManualClock, NewApp,
    Platform, RoundOutcome, SystemClock,
};
use phr_server::Config;

/// Where the authorization database is and which server it belongs to.
#[derive(Args, Debug, Clone)]
pub struct AuthArgs {
    /// Folder of the database files.
    #[arg(long, env = "PHR_DATA", global = true)]
    data: Option<PathBuf>,
    /// The PostgreSQL database the servers share (instead of a data folder).
    #[arg(long, env = "PHR_DATABASE", global = true)]
    database: Option<String>,
    /// The identity key file the servers of `--database` are given.
    #[arg(long, env = "PHR_IDENTITY_KEY_FILE", global = true)]
    identity_key: Option<PathBuf>,
    /// The server's TOML configuration file (its `[auth]` table: mode, lifetimes, ...).
    #[arg(long, env = "PHR_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// The server's public base URL, the issuer of its tokens (default: the one the server
    /// recorded in the data folder or database, else from the configuration, else
    /// http://<listen address>).
    #[arg(long, env = "PHR_PUBLIC_URL", global = true)]
    public_url: Option<String>,
}

impl AuthArgs {
    /// The server configuration these commands act for, after file, environment and flags.
    fn server_config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_toml_file(path)?,
            None => Config::default(),
        };
        if let Some(data) = &self.data {
            config.data = data.clone();
        }
        if let Some(database) = &self.database {
            config.database = Some(database.clone());
        }
        if let Some(key) = &self.identity_key {
            config.auth.identity_key_file = Some(key.clone());
        }
        if let Some(url) = &self.public_url {
            config.public_url = Some(url.clone());
        }
        Ok(config)
    }

    /// Opens the authorization state as the server would (same issuer, same identity key),
    /// on `clock`. `create` allows a first use of an empty data folder.
    fn open_with_clock(&self, create: bool, clock: Arc<dyn Clock>) -> anyhow::Result<AuthService> {
        let mut config = self.server_config()?;
        let place = match &config.database {
            Some(url) => crate::serve::redact(url),
            None => {
                if !create && !config.data.join("auth.db").exists() {
                    bail!(
                        "{} holds no authorization database (has `phr serve` run there?)",
                        config.data.display()
                    );
                }
                config.data.display().to_string()
            }
        };
        // Without --public-url, act for the server that recorded its URL there.
        phr_server::open_auth(&mut config, clock, true)
            .map_err(|e| anyhow::anyhow!("cannot open the authorization state in {place}: {e}"))
    }
}

/// Runs `f` on the service, then writes out the audit records it queued (operator actions
/// are audited too) before the process exits.
fn with_service<T>(
    auth: &AuthArgs,
    create: bool,
    f: impl FnOnce(&AuthService) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    with_service_at(auth, create, Arc::new(SystemClock), f)
}

/// [`with_service`] on a service whose clock is `clock`.
fn with_service_at<T>(
    auth: &AuthArgs,
    create: bool,
    clock: Arc<dyn Clock>,
    f: impl FnOnce(&AuthService) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let service = auth.open_with_clock(create, clock)?;
    let result = f(&service);
    service
        .flush_audit()
        .map_err(|e| anyhow::anyhow!("cannot write the audit log: {e}"))?;
    result
}

fn auth_error(e: phr_auth::AuthError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

// ---------------------------------------------------------------- phr app

#[derive(Args, Debug)]
pub struct AppArgs {
    #[command(flatten)]
    auth: AuthArgs,
    #[command(subcommand)]
    command: AppCommand,
}

#[derive(Subcommand, Debug)]
enum AppCommand {
    /// Register an application (accepted, unless --sandbox). A confidential client's secret
    /// is printed once.
    Register(RegisterArgs),
    /// List the registered applications.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one application: its registration, the data contents it is accepted for and
    /// its joint-testing rounds.
    Show {
        app_id: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change what the public application list shows of an application.
    Update {
        app_id: String,
        /// Who makes the application.
        #[arg(long)]
        supplier: Option<String>,
        /// web, ios, android or server.
        #[arg(long, value_parser = parse_platform)]
        platform: Option<Platform>,
    },
    /// Accept an application, or reinstate a suspended one. With --content: accept it for
    /// those data contents (each must have passed its last joint-testing round); a sandbox
    /// application becomes accepted.
    Accept {
        app_id: String,
        /// A data content code of the catalogue (blood-pressure, steps, ...); repeatable.
        #[arg(long = "content", value_name = "CODE")]
        contents: Vec<String>,
        /// The application may read the contents in production (with --write: both;
        /// neither: both).
        #[arg(long, requires = "contents")]
        read: bool,
        /// The application may write the contents in production.
        #[arg(long, requires = "contents")]
        write: bool,
    },
    /// Run the acceptance checks over the application's sandbox traffic (the last 30 days)
    /// for one data content; exits non-zero when a check fails.
    Acceptance {
        app_id: String,
        /// The data content to judge.
        #[arg(long, value_name = "CODE")]
        content: String,
        /// The report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The withdrawn-grant probe (sandbox mode): with --start, withdraw every grant the
    /// application holds now, so that its tokens stop working, and judge its next calls in
    /// the `withdrawn-grant` acceptance check; without, say when the last probe started.
    Probe {
        app_id: String,
        /// Start the probe now.
        #[arg(long)]
        start: bool,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Record a joint-testing round of one data content (at most three per content).
    Round {
        app_id: String,
        /// The data content tested.
        #[arg(long, value_name = "CODE")]
        content: String,
        /// pass or fail.
        #[arg(long, value_parser = parse_outcome)]
        outcome: RoundOutcome,
        /// The operator's note (no personal data).
        #[arg(long)]
        note: Option<String>,
    },
    /// Suspend an application: every token it holds stops working at once.
    Suspend { app_id: String },
    /// Revoke an application for good.
    Revoke { app_id: String },
}

#[derive(Args, Debug)]
struct RegisterArgs {
    /// The application's name, shown to citizens on the consent page.
    #[arg(long)]
    name: String,
    /// The application id (e.g. the OID Kela issued); generated when absent. It is the
    /// OAuth client_id and the id in `creatingApplication`.
    #[arg(long = "id")]
    app_id: Option<String>,
    /// The scopes the application may ask for, space separated
    /// (e.g. "patient/Observation.read patient/Observation.write offline_access").
    #[arg(long)]
    scope: String,
    /// Redirect URI (repeat for several).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// public (PKCE), confidential (client secret) or private_key_jwt.
    #[arg(long, default_value = "public", value_parser = parse_client_type)]
    client_type: ClientType,
    /// wellbeing or professional.
    #[arg(long, default_value = "wellbeing", value_parser = parse_kind)]
    kind: AppKind,
    /// A contact address of the developer.
    #[arg(long)]
    contact: Option<String>,
    /// A JSON file with the public keys (JWK Set) of a private_key_jwt client.
    #[arg(long)]
    jwks: Option<PathBuf>,
    /// Where the public keys of a private_key_jwt client are published.
    #[arg(long)]
    jwks_uri: Option<String>,
    /// The organisation (OID, registered with `phr org register`) a professional
    /// application belongs to; required with --kind professional.
    #[arg(long)]
    org: Option<String>,
    /// The OID in the Subject serialNumber of the application's client certificate (its
    /// service certificate): the application must then present that certificate at the token
    /// endpoint and on every FHIR call, and its tokens are bound to it. Required for
    /// wellbeing applications in production mode.
    #[arg(long, value_name = "OID")]
    certificate_oid: Option<String>,
    /// Who makes the application (shown on the public application list).
    #[arg(long)]
    supplier: Option<String>,
    /// Where it runs: web, ios, android or server (shown on the public application list).
    #[arg(long, value_parser = parse_platform)]
    platform: Option<Platform>,
    /// The FHIR versions the application uses: r4, stu3 (deprecated), or both (r4,stu3).
    /// In production it is served on those only; by default a new registration uses R4 only
    /// in production and both in the sandbox.
    #[arg(long, value_name = "r4|stu3", value_parser = parse_fhir_versions)]
    fhir_version: Option<FhirVersions>,
    /// Register with status `sandbox` (usable in sandbox mode only) instead of `accepted`.
    #[arg(long)]
    sandbox: bool,
    /// Print the registration as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_client_type(text: &str) -> Result<ClientType, String> {
    ClientType::parse(text)
        .ok_or_else(|| format!("'{text}': use public, confidential or private_key_jwt"))
}

fn parse_fhir_versions(text: &str) -> Result<FhirVersions, String> {
    FhirVersions::parse(text).ok_or_else(|| format!("'{text}': use r4, stu3 or r4,stu3"))
}

fn parse_platform(text: &str) -> Result<Platform, String> {
    Platform::parse(text).ok_or_else(|| format!("'{text}': use web, ios, android or server"))
}

fn parse_outcome(text: &str) -> Result<RoundOutcome, String> {
    RoundOutcome::parse(text).ok_or_else(|| format!("'{text}': use pass or fail"))
}

/// A data content code the catalogue knows; an unknown one is an error naming the known.
fn check_content(code: &str) -> anyhow::Result<()> {
    let contents = phr_catalog::Catalog::get().contents();
    if contents.iter().any(|c| c.kind.key() == code) {
        return Ok(());
    }
    bail!(
        "'{code}' is not a data content; use one of: {}",
        contents
            .iter()
            .map(|c| c.kind.key())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A content with its rights, as `phr app show` and `list` print it: `steps (read, write)`.
fn content_line(content: &phr_auth::AcceptedContent) -> String {
    let rights = match (content.read, content.write) {
        (true, true) => "read, write",
        (true, false) => "read",
        (false, true) => "write",
        (false, false) => "none",
    };
    format!("{} ({rights})", content.content)
}

/// A UTC date of seconds since the epoch.
fn date(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| seconds.to_string())
}

fn print_details(details: &phr_auth::AppDetails) -> anyhow::Result<()> {
    let app = &details.app;
    let mut out = std::io::stdout().lock();
    writeln!(out, "app_id: {}", app.app_id)?;
    writeln!(out, "name: {}", app.name)?;
    writeln!(out, "status: {}", app.status.code())?;
    writeln!(out, "kind: {}", app.kind.code())?;
    writeln!(out, "client_type: {}", app.client_type.code())?;
    writeln!(out, "scope: {}", app.scope)?;
    writeln!(out, "fhir_versions: {}", app.fhir_versions.code())?;
    if let Some(supplier) = &app.supplier {
        writeln!(out, "supplier: {supplier}")?;
    }
    if let Some(platform) = app.platform {
        writeln!(out, "platform: {}", platform.code())?;
    }
    if let Some(org) = &app.org {
        writeln!(out, "org: {org}")?;
    }
    if let Some(oid) = &app.certificate_oid {
        writeln!(out, "certificate_oid: {oid}")?;
    }
    for uri in &app.redirect_uris {
        writeln!(out, "redirect_uri: {uri}")?;
    }
    writeln!(out, "registered: {}", date(app.created_at))?;
    for content in &details.contents {
        writeln!(
            out,
            "content: {} since {}",
            content_line(content),
            date(content.accepted_at)
        )?;
    }
    for round in &details.rounds {
        writeln!(
            out,
            "round: {} #{} {} {}{}",
            round.content,
            round.round,
            date(round.at),
            round.outcome.code(),
            round
                .note
                .as_deref()
                .map(|n| format!(" — {n}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

/// An instant of microseconds since the epoch, RFC 3339 in UTC.
fn instant(micros: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| micros.to_string())
}

fn print_report(report: &phr_auth::traffic::checks::Report, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, report)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "acceptance of {} for {}: {} ({} requests, {} resources of the content, {} to {})",
        report.app_id,
        report.content,
        if report.passed { "passed" } else { "FAILED" },
        report.requests,
        report.resources,
        instant(report.since_us),
        instant(report.until_us)
    )?;
    if let Some(probe) = report.probe_started_us {
        writeln!(out, "withdrawn-grant probe started {}", instant(probe))?;
    }
    for check in &report.checks {
        writeln!(
            out,
            "{} {} — {}",
            match check.state {
                State::Passed => "PASS",
                State::Failed => "FAIL",
                State::NotObserved => "NOT YET OBSERVED",
            },
            check.id,
            check.title
        )?;
        if !check.passed {
            writeln!(out, "     rule: {}", check.kanta_rule)?;
            if let Some(reason) = check.reason {
                writeln!(out, "     {reason}")?;
            }
            if check.failures > 0 {
                writeln!(out, "     {} failing, for example:", check.failures)?;
            }
            for example in &check.examples {
                let mut line = format!(
                    "     {} {} {} → {}",
                    instant(example.at_us),
                    example.interaction,
                    example.resource_type.as_deref().unwrap_or("-"),
                    example.status
                );
                if let Some(identifier) = example.detail.get("identifier").and_then(|v| v.as_str())
                {
                    line.push_str(&format!(" identifier {identifier}"));
                }
                if let Some(issues) = example
                    .detail
                    .pointer("/outcome/issue")
                    .and_then(|v| v.as_array())
                {
                    for issue in issues.iter().take(3) {
                        line.push_str(&format!(
                            "\n       {} {}",
                            issue
                                .pointer("/expression/0")
                                .and_then(|v| v.as_str())
                                .unwrap_or(""),
                            issue
                                .get("diagnostics")
                                .and_then(|v| v.as_str())
                                .unwrap_or("")
                        ));
                    }
                }
                writeln!(out, "{line}")?;
            }
        }
    }
    Ok(())
}

fn parse_kind(text: &str) -> Result<AppKind, String> {
    AppKind::parse(text).ok_or_else(|| format!("'{text}': use wellbeing or professional"))
}

pub fn app(args: AppArgs) -> anyhow::Result<()> {
    match args.command {
        AppCommand::Register(register) => {
            with_service(&args.auth, true, |auth| register_app(auth, register))
        }
        AppCommand::List { json } => with_service(&args.auth, false, |auth| {
            let apps = auth.list_app_details().map_err(auth_error)?;
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &apps)?;
                writeln!(out)?;
            } else {
                writeln!(
                    out,
                    "{:<40} {:<10} {:<16} {:<13} NAME",
                    "APP ID", "STATUS", "CLIENT", "KIND"
                )?;
                for details in &apps {
                    let app = &details.app;
                    let contents: Vec<String> = details.contents.iter().map(content_line).collect();
                    writeln!(
                        out,
                        "{:<40} {:<10} {:<16} {:<13} {}{}{}",
                        app.app_id,
                        app.status.code(),
                        app.client_type.code(),
                        app.kind.code(),
                        app.name,
                        app.org
                            .as_deref()
                            .map(|o| format!(" (organisation {o})"))
                            .unwrap_or_default(),
                        if contents.is_empty() {
                            String::new()
                        } else {
                            format!(" [{}]", contents.join("; "))
                        }
                    )?;
                }
            }
            Ok(())
        }),
        AppCommand::Show { app_id, json } => with_service(&args.auth, false, |auth| {
            let details = auth
                .app_details(&app_id)
                .map_err(auth_error)?
                .ok_or_else(|| anyhow::anyhow!("no application {app_id}"))?;
            if json {
                let mut out = std::io::stdout().lock();
                serde_json::to_writer_pretty(&mut out, &details)?;
                writeln!(out)?;
                Ok(())
            } else {
                print_details(&details)
            }
        }),
        AppCommand::Update {
            app_id,
            supplier,
            platform,
        } => {
            if supplier.is_none() && platform.is_none() {
                bail!("nothing to change: give --supplier or --platform");
            }
            with_service(&args.auth, false, |auth| {
                let app = auth
                    .update_app_listing(&app_id, supplier.as_deref(), platform)
                    .map_err(auth_error)?;
                println!(
                    "{}: supplier {}, platform {}",
                    app.app_id,
                    app.supplier.as_deref().unwrap_or("-"),
                    app.platform.map_or("-", Platform::code)
                );
                Ok(())
            })
        }
        AppCommand::Accept {
            app_id,
            contents,
            read,
            write,
        } if !contents.is_empty() => {
            for content in &contents {
                check_content(content)?;
            }
            let (read, write) = if read || write {
                (read, write)
            } else {
                (true, true)
            };
            with_service(&args.auth, false, |auth| {
                let (app, accepted) = auth
                    .accept_app_contents(&app_id, &contents, read, write)
                    .map_err(auth_error)?;
                for content in &accepted {
                    println!("{} is accepted for {}", app.app_id, content_line(content));
                }
                println!("{} is now {}", app.app_id, app.status.code());
                Ok(())
            })
        }
        AppCommand::Accept { app_id, .. } => set_status(&args.auth, &app_id, AppStatus::Accepted),
        AppCommand::Acceptance {
            app_id,
            content,
            json,
        } => {
            check_content(&content)?;
            let resource_type = phr_catalog::Catalog::get()
                .contents()
                .iter()
                .find(|c| c.kind.key() == content)
                .map(|c| c.resource_type)
                .unwrap_or("Observation");
            let report = with_service(&args.auth, false, |auth| {
                auth.acceptance_report(&app_id, &content, resource_type)
                    .map_err(auth_error)
            })?;
            print_report(&report, json)?;
            if !report.passed {
                let unobserved = report
                    .checks
                    .iter()
                    .filter(|c| c.state == State::NotObserved)
                    .count();
                bail!(
                    "{app_id} fails {} of {} acceptance checks for {content}{}",
                    report
                        .checks
                        .iter()
                        .filter(|c| c.state == State::Failed)
                        .count(),
                    report.checks.len(),
                    if unobserved > 0 {
                        format!("; {unobserved} not yet observed")
                    } else {
                        String::new()
                    }
                );
            }
            Ok(())
        }
        AppCommand::Probe {
            app_id,
            start,
            json,
        } => with_service(&args.auth, false, |auth| {
            let mut out = std::io::stdout().lock();
            if start {
                let probe = auth.start_probe(&app_id, "operator").map_err(auth_error)?;
                if json {
                    serde_json::to_writer_pretty(&mut out, &probe)?;
                    writeln!(out)?;
                } else {
                    writeln!(
                        out,
                        "probe of {} started {}: {} grant(s) withdrawn; its next calls are judged by the withdrawn-grant check (phr app acceptance)",
                        probe.app_id,
                        instant(probe.started_us),
                        probe.grants_withdrawn
                    )?;
                }
                return Ok(());
            }
            if auth.app(&app_id).map_err(auth_error)?.is_none() {
                bail!("no application {app_id}");
            }
            let started = auth.probe_started(&app_id).map_err(auth_error)?;
            if json {
                serde_json::to_writer_pretty(
                    &mut out,
                    &serde_json::json!({"app_id": app_id, "started_us": started}),
                )?;
                writeln!(out)?;
            } else {
                match started {
                    Some(at) => writeln!(out, "probe of {app_id} started {}", instant(at))?,
                    None => writeln!(out, "no probe of {app_id} yet (start one with --start)")?,
                }
            }
            Ok(())
        }),
        AppCommand::Round {
            app_id,
            content,
            outcome,
            note,
        } => {
            check_content(&content)?;
            with_service(&args.auth, false, |auth| {
                let round = auth
                    .record_test_round(&app_id, &content, outcome, note.as_deref())
                    .map_err(auth_error)?;
                println!(
                    "{app_id}: {} round {} {}",
                    round.content,
                    round.round,
                    round.outcome.code()
                );
                Ok(())
            })
        }
        AppCommand::Suspend { app_id } => set_status(&args.auth, &app_id, AppStatus::Suspended),
        AppCommand::Revoke { app_id } => set_status(&args.auth, &app_id, AppStatus::Revoked),
    }
}

fn register_app(auth: &AuthService, args: RegisterArgs) -> anyhow::Result<()> {
    let jwks = match &args.jwks {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", path.display()))?,
            )
        }
        None => None,
    };
    if phr_auth::apps::needs_certificate(auth.config().mode, args.kind)
        && args.certificate_oid.is_none()
    {
        anyhow::bail!(
            "in production a wellbeing application is bound to its service certificate: give its OID with --certificate-oid"
        );
    }
    let status = if args.sandbox {
        AppStatus::Sandbox
    } else {
        AppStatus::Accepted
    };
    let registered = auth
        .register_app(
            NewApp {
                app_id: args.app_id,
                name: args.name,
                kind: args.kind,
                client_type: args.client_type,
                redirect_uris: args.redirect_uris,
                scope: args.scope,
                contact: args.contact,
                jwks,
                jwks_uri: args.jwks_uri,
                org: args.org,
                certificate_oid: args.certificate_oid,
                supplier: args.supplier,
                platform: args.platform,
                fhir_versions: args.fhir_version,
            },
            status,
        )
        .map_err(auth_error)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &registered)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "app_id: {}", registered.app.app_id)?;
    writeln!(out, "status: {}", registered.app.status.code())?;
    writeln!(out, "scope: {}", registered.app.scope)?;
    writeln!(
        out,
        "fhir_versions: {}",
        registered.app.fhir_versions.code()
    )?;
    if let Some(oid) = &registered.app.certificate_oid {
        writeln!(out, "certificate_oid: {oid}")?;
    }
    if let Some(secret) = &registered.client_secret {
        writeln!(out, "client_secret: {secret}")?;
        eprintln!("phr: the client secret is shown only now; store it in the application");
    }
    Ok(())
}

fn set_status(auth: &AuthArgs, app_id: &str, status: AppStatus) -> anyhow::Result<()> {
    with_service(auth, false, |service| {
        let app = service.set_app_status(app_id, status).map_err(auth_error)?;
        println!("{} is now {}", app.app_id, app.status.code());
        Ok(())
    })
}

// ---------------------------------------------------------------- phr token

#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(flatten)]
    auth: AuthArgs,
    /// A test personal identity code (individual number 900–999); the citizen is taken into
    /// use if needed.
    #[arg(
        long,
        required_unless_present = "professional",
        conflicts_with = "professional"
    )]
    hetu: Option<String>,
    /// Instead of a citizen: a test professional's identifier, for a professional
    /// application of their organisation (--org). The token names no citizen: each request
    /// reads only what a citizen's consent and a care relationship with the organisation
    /// open.
    #[arg(long, requires = "org")]
    professional: Option<String>,
    /// The test professional's name (shown to the citizen in the access log).
    #[arg(long, requires = "professional")]
    professional_name: Option<String>,
    /// The professional's organisation (OID).
    #[arg(long, requires = "professional")]
    org: Option<String>,
    /// The application the token is for.
    #[arg(long)]
    app: String,
    /// The scopes to grant (∩ the application's registration), space separated.
    #[arg(long)]
    scope: String,
    /// Issue the token as if this many seconds ago (tests of expiry: with at least the
    /// token lifetime, it arrives expired). Sandbox only, as the command itself.
    #[arg(long, hide = true, default_value_t = 0)]
    issued_seconds_ago: u32,
}

/// Prints `patient:`, `scope:`, `expires_in:` (and `refresh_token:` with offline_access)
/// lines, then the access token alone as the last line, for scripts.
pub fn token(args: TokenArgs) -> anyhow::Result<()> {
    // The clock only moves back: a token can be made to expire early, never to live longer
    // than its lifetime.
    let clock: Arc<dyn Clock> = match args.issued_seconds_ago {
        0 => Arc::new(SystemClock),
        ago => Arc::new(ManualClock::at_micros(
            SystemClock.now_micros() - i64::from(ago) * 1_000_000,
        )),
    };
    with_service_at(&args.auth, true, clock, |auth| {
        if let (Some(professional), Some(org)) = (&args.professional, &args.org) {
            let issued = phr_auth::flows::token::issue_professional_for_cli(
                auth,
                professional,
                args.professional_name.as_deref(),
                org,
                &args.app,
                &args.scope,
            )
            .map_err(auth_error)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "professional: {}", issued.professional)?;
            writeln!(out, "org: {}", issued.org)?;
            writeln!(out, "scope: {}", issued.token.scope)?;
            writeln!(out, "expires_in: {}", issued.token.expires_in)?;
            writeln!(out, "{}", issued.token.access_token)?;
            return Ok(());
        }
        let hetu = args.hetu.as_deref().unwrap_or_default();
        let issued = auth
            .issue_token_for_cli(hetu, &args.app, &args.scope)
            .map_err(auth_error)?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "patient: {}", issued.patient_id)?;
        writeln!(out, "scope: {}", issued.token.scope)?;
        writeln!(out, "expires_in: {}", issued.token.expires_in)?;
        if let Some(refresh) = &issued.token.refresh_token {
            writeln!(out, "refresh_token: {refresh}")?;
        }
        writeln!(out, "{}", issued.token.access_token)?;
        Ok(())
    })
}

// ---------------------------------------------------------------- phr org

#[derive(Args, Debug)]
pub struct OrgArgs {
    #[command(flatten)]
    auth: AuthArgs,
    #[command(subcommand)]
    command: OrgCommand,
}

#[derive(Subcommand, Debug)]
enum OrgCommand {
    /// Register a social welfare or healthcare organisation (a service provider) by its OID.
    Register {
        /// The OID in the national register of social and health care organisations.
        #[arg(long)]
        oid: String,
        /// The name in Finnish (and in Swedish and English unless given).
        #[arg(long)]
        name: String,
        /// The name in Swedish.
        #[arg(long)]
        name_sv: Option<String>,
        /// The name in English.
        #[arg(long)]
        name_en: Option<String>,
        /// Print the organisation as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the registered organisations.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn org(args: OrgArgs) -> anyhow::Result<()> {
    match args.command {
        OrgCommand::Register {
            oid,
            name,
            name_sv,
            name_en,
            json,
        } => with_service(&args.auth, true, |auth| {
            let org = auth
                .register_org(phr_auth::NewOrganisation {
                    oid,
                    name_fi: name,
                    name_sv,
                    name_en,
                })
                .map_err(auth_error)?;
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &org)?;
                writeln!(out)?;
            } else {
                writeln!(out, "registered organisation {} ({})", org.oid, org.name_fi)?;
            }
            Ok(())
        }),
        OrgCommand::List { json } => with_service(&args.auth, false, |auth| {
            let orgs = auth.list_orgs().map_err(auth_error)?;
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &orgs)?;
                writeln!(out)?;
            } else {
                writeln!(out, "{:<32} NAME (fi / sv / en)", "OID")?;
                for org in &orgs {
                    writeln!(
                        out,
                        "{:<32} {} / {} / {}",
                        org.oid, org.name_fi, org.name_sv, org.name_en
                    )?;
                }
            }
            Ok(())
        }),
    }
}

// ---------------------------------------------------------------- phr care, phr consent

/// The FHIR store and authorization state of these commands' server, and the citizen of a
/// test identity (sandbox mode only; taken into use if needed).
fn sandbox_citizen(auth_args: &AuthArgs, hetu: &str) -> anyhow::Result<(phr_server::Core, String)> {
    let config = auth_args.server_config()?;
    let core = crate::serve::open_core(&config)?;
    if !core.auth.config().mode.is_sandbox() {
        bail!("this test helper works in sandbox mode only");
    }
    let hetu = phr_auth::Hetu::parse(hetu).map_err(|e| anyhow::anyhow!("identity code: {e}"))?;
    let citizen = core
        .auth
        .citizen_for_sandbox_identity(&hetu)
        .map_err(auth_error)?;
    Ok((core, citizen.patient_id))
}

#[derive(Args, Debug)]
pub struct CareArgs {
    #[command(flatten)]
    auth: AuthArgs,
    #[command(subcommand)]
    command: CareCommand,
}

#[derive(Subcommand, Debug)]
enum CareCommand {
    /// Record a care relationship (an EpisodeOfCare) between a test citizen and an
    /// organisation, as the organisation's system would (sandbox test helper).
    Add {
        /// The test personal identity code (individual number 900–999).
        #[arg(long)]
        hetu: String,
        /// The organisation (OID).
        #[arg(long)]
        org: String,
        /// The last day of the relationship (YYYY-MM-DD, or a date-time); open-ended when
        /// absent.
        #[arg(long)]
        until: Option<String>,
        /// The first day (YYYY-MM-DD, or a date-time); now when absent.
        #[arg(long)]
        from: Option<String>,
    },
}

fn check_fhir_date(text: &str) -> anyhow::Result<()> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    if time::Date::parse(text, &format).is_ok() || phr_service::time::parse_instant(text).is_some()
    {
        Ok(())
    } else {
        bail!("'{text}': use a date like 2026-12-31 or a date-time like 2026-12-31T16:00:00+02:00")
    }
}

pub fn care(args: CareArgs) -> anyhow::Result<()> {
    match args.command {
        CareCommand::Add {
            hetu,
            org,
            until,
            from,
        } => {
            for date in until.iter().chain(&from) {
                check_fhir_date(date)?;
            }
            let (core, patient) = sandbox_citizen(&args.auth, &hetu)?;
            let organisation = core
                .auth
                .org(&org)
                .map_err(auth_error)?
                .ok_or_else(|| anyhow::anyhow!("organisation {org} is not registered"))?;
            let start = from
                .unwrap_or_else(|| phr_service::time::to_instant(phr_service::time::now_micros()));
            let episode = phr_service::professional::episode_of_care(
                &patient,
                &organisation.oid,
                &organisation.name_fi,
                &start,
                until.as_deref(),
            );
            let written = core
                .fhir
                .create(&phr_service::Caller::Operator { app: None }, episode, None)
                .map_err(|e| anyhow::anyhow!("{}", crate::import::rejection_text(&e)))?;
            core.auth.flush_audit().map_err(auth_error)?;
            println!(
                "care relationship {} of Patient/{patient} with {}",
                written.version.reference(),
                organisation.oid
            );
            Ok(())
        }
    }
}

#[derive(Args, Debug)]
pub struct ConsentArgs {
    #[command(flatten)]
    auth: AuthArgs,
    #[command(subcommand)]
    command: ConsentCommand,
}

#[derive(Subcommand, Debug)]
enum ConsentCommand {
    /// Give a test citizen's consent to share with professionals, as they would in the
    /// portal: all data, or the data contents named (sandbox test helper).
    Give {
        /// The test personal identity code (individual number 900–999).
        #[arg(long)]
        hetu: String,
        /// A data content to share (blood-pressure, blood-glucose, ...; repeat for
        /// several); all data when absent.
        #[arg(long = "content")]
        contents: Vec<String>,
    },
    /// Withdraw a test citizen's consent to share with professionals.
    Withdraw {
        /// The test personal identity code (individual number 900–999).
        #[arg(long)]
        hetu: String,
    },
}

pub fn consent(args: ConsentArgs) -> anyhow::Result<()> {
    let (hetu, give) = match &args.command {
        ConsentCommand::Give { hetu, contents } => (hetu, Some(contents)),
        ConsentCommand::Withdraw { hetu } => (hetu, None),
    };
    let profiles = match give {
        Some(contents) if !contents.is_empty() => Some(
            phr_service::professional::profiles_of_contents(contents)
                .map_err(|e| anyhow::anyhow!(e))?,
        ),
        _ => None,
    };
    let (core, patient) = sandbox_citizen(&args.auth, hetu)?;
    let caller = phr_service::Caller::Citizen {
        patient: patient.clone(),
    };
    let fail = |e: phr_service::Error| anyhow::anyhow!("{}", crate::import::rejection_text(&e));
    let written = match give {
        Some(_) => core
            .fhir
            .give_sharing(
                &caller,
                &patient,
                profiles.as_ref(),
                "en",
                "Consent to share wellbeing information with social welfare and healthcare service providers",
            )
            .map_err(fail)?,
        None => core.fhir.withdraw_sharing(&caller, &patient).map_err(fail)?,
    };
    core.auth
        .set_professional_sharing(&patient, give.is_some())
        .map_err(auth_error)?;
    core.auth.flush_audit().map_err(auth_error)?;
    match (give, written.last()) {
        (Some(_), Some(last)) => println!(
            "Patient/{patient} shares {} with professionals ({})",
            if profiles.is_some() {
                "the chosen data"
            } else {
                "all data"
            },
            last.version.reference()
        ),
        (None, _) => println!(
            "Patient/{patient} shares nothing with professionals ({} consent(s) withdrawn)",
            written.len()
        ),
        (Some(_), None) => {}
    }
    Ok(())
}

// ---------------------------------------------------------------- phr grant

#[derive(Args, Debug)]
pub struct GrantArgs {
    #[command(flatten)]
    auth: AuthArgs,
    #[command(subcommand)]
    command: GrantCommand,
}

#[derive(Subcommand, Debug)]
enum GrantCommand {
    /// Withdraw a test citizen's grant to an application (sandbox test helper): its tokens
    /// stop working at once.
    Withdraw {
        /// The test personal identity code (individual number 900–999).
        #[arg(long)]
        hetu: String,
        #[arg(long)]
        app: String,
    },
}

pub fn grant(args: GrantArgs) -> anyhow::Result<()> {
    match args.command {
        GrantCommand::Withdraw { hetu, app } => with_service(&args.auth, false, |auth| {
            let grant = auth
                .withdraw_for_sandbox_identity(&hetu, &app)
                .map_err(auth_error)?;
            println!(
                "withdrew grant {} of Patient/{} to {}",
                grant.grant_id, grant.patient_id, grant.app_id
            );
            Ok(())
        }),
    }
}

// ---------------------------------------------------------------- phr audit

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(flatten)]
    auth: AuthArgs,
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Write the audit records as NDJSON, oldest first, each with its hash-chain value.
    Export {
        /// Records from this time on (RFC 3339, or a date meaning its UTC midnight).
        #[arg(long, value_parser = parse_time)]
        since: Option<i64>,
        /// Records before this time (RFC 3339, or a date meaning its UTC midnight).
        #[arg(long, value_parser = parse_time)]
        until: Option<i64>,
        /// The file to write (created readable by its owner only); default standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Recompute the hash chain over every record; fails naming the first altered record.
    Verify,
}

/// Microseconds since the Unix epoch from an RFC 3339 time or a `YYYY-MM-DD` date (UTC).
fn parse_time(text: &str) -> Result<i64, String> {
    use time::format_description::well_known::Rfc3339;
    let at = match time::OffsetDateTime::parse(text, &Rfc3339) {
        Ok(at) => at,
        Err(_) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(text, &format)
                .map_err(|_| format!("'{text}': use 2026-01-31 or 2026-01-31T12:00:00Z"))?
                .midnight()
                .assume_utc()
        }
    };
    i64::try_from(at.unix_timestamp_nanos() / 1000).map_err(|_| format!("'{text}' is out of range"))
}

pub fn audit(args: AuditArgs) -> anyhow::Result<()> {
    match args.command {
        AuditCommand::Export { since, until, out } => with_service(&args.auth, false, |auth| {
            let written = match &out {
                Some(path) => export_to_file(auth, path, since, until)?,
                None => {
                    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
                    let written = auth
                        .export_audit(&mut stdout, since, until)
                        .map_err(auth_error)?;
                    stdout.flush()?;
                    written
                }
            };
            eprintln!("phr: exported {written} audit records");
            Ok(())
        }),
        AuditCommand::Verify => with_service(&args.auth, false, |auth| {
            match auth.verify_audit_chain().map_err(auth_error)? {
                None => {
                    println!("the audit hash chain is intact");
                    Ok(())
                }
                Some(record) => bail!("the audit hash chain breaks at record {record}"),
            }
        }),
    }
}

/// The records hold pseudonymous patient ids and search criteria: the file is made readable
/// by its owner only, and is not left half written when the export fails.
fn export_to_file(
    auth: &AuthService,
    path: &Path,
    since: Option<i64>,
    until: Option<i64>,
) -> anyhow::Result<u64> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    let written = auth
        .export_audit(&mut writer, since, until)
        .map_err(auth_error)
        .and_then(|n| {
            writer.flush()?;
            writer.get_ref().sync_all()?;
            Ok(n)
        });
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written.with_context(|| format!("exporting the audit log to {}", path.display()))
}

// ---------------------------------------------------------------- phr key

#[derive(Args, Debug)]
pub struct KeyArgs {
    #[command(flatten)]
    auth: AuthArgs,
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Subcommand, Debug)]
enum KeyCommand {
    /// Make a new token signing key now; the old ones keep verifying the tokens they signed
    /// until those expire.
    Rotate,
}

pub fn key(args: KeyArgs) -> anyhow::Result<()> {
    match args.command {
        KeyCommand::Rotate => with_service(&args.auth, false, |auth| {
            let kid = auth.rotate_signing_key().map_err(auth_error)?;
            println!("new signing key {kid}");
            Ok(())
        }),
    }
}

// ---------------------------------------------------------------- phr operator

#[derive(Args, Debug)]
pub struct OperatorArgs {
    #[command(flatten)]
    auth: AuthArgs,
    #[command(subcommand)]
    command: OperatorCommand,
}

#[derive(Subcommand, Debug)]
enum OperatorCommand {
    /// Print a one-time sign-in link to the operator page (`/operator`). Whoever can run
    /// this (it needs the data folder or the database) is the operator; the link works once,
    /// for a few minutes, on every node.
    Login {
        /// How long the link is good for, in minutes (1 to 60).
        #[arg(long, default_value_t = phr_server::operator::LINK_MINUTES,
              value_parser = clap::value_parser!(i64).range(1..=60))]
        minutes: i64,
        /// Make the link as if this many seconds ago (tests of expiry: the link can only
        /// be made to expire early, never to live longer).
        #[arg(long, hide = true, default_value_t = 0)]
        issued_seconds_ago: u32,
    },
}

pub fn operator(args: OperatorArgs) -> anyhow::Result<()> {
    match args.command {
        OperatorCommand::Login {
            minutes,
            issued_seconds_ago,
        } => {
            let clock: Arc<dyn Clock> = match issued_seconds_ago {
                0 => Arc::new(SystemClock),
                ago => Arc::new(ManualClock::at_micros(
                    SystemClock.now_micros() - i64::from(ago) * 1_000_000,
                )),
            };
            with_service_at(&args.auth, false, clock, |auth| {
                let link = auth.operator_sign_in_link(minutes).map_err(auth_error)?;
                let mut out = std::io::stdout().lock();
                writeln!(
                    out,
                    "one-time sign-in link to the operator page, good for {minutes} minutes:"
                )?;
                writeln!(
                    out,
                    "{}{}?link={link}",
                    auth.config().issuer.trim_end_matches('/'),
                    phr_server::operator::LOGIN_PATH
                )?;
                Ok(())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc3339_or_utc_dates() {
        assert_eq!(parse_time("1970-01-02"), Ok(86_400_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Ok(1_000_000));
        assert_eq!(parse_time("1970-01-01T02:00:00+02:00"), Ok(0));
        assert!(parse_time("yesterday").is_err());
    }
}
