//! `phr serve`: configuration from defaults, an optional TOML file, environment and flags
//! (in that order of precedence, last wins), then the server until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use phr_server::{AppState, Config};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PHR_LISTEN")]
    listen: Option<SocketAddr>,
    /// Folder for the database files (created if missing).
    #[arg(long, env = "PHR_DATA")]
    data: Option<PathBuf>,
    /// A PostgreSQL URL (postgres://user@host/db): the FHIR store and all authorization state
    /// live there, so any number of nodes can serve it (needs --identity-key).
    #[arg(long, env = "PHR_DATABASE")]
    database: Option<String>,
    /// The file holding the secret key identity codes are hashed with; every node of one
    /// database needs the same file (default with SQLite: <data>/identity.key, created).
    #[arg(long, env = "PHR_IDENTITY_KEY_FILE")]
    identity_key: Option<PathBuf>,
    /// A TOML configuration file; flags and environment override it.
    #[arg(long, env = "PHR_CONFIG")]
    config: Option<PathBuf>,
    /// The public base URL, when behind a proxy (e.g. https://phr.example.fi).
    #[arg(long, env = "PHR_PUBLIC_URL")]
    public_url: Option<String>,
    /// Serve the FHIR API without authentication (Kanta's open sandbox). Loopback only,
    /// unless --i-know-this-is-open is also given.
    #[arg(long)]
    open_sandbox: bool,
    /// Allow --open-sandbox on a non-loopback address.
    #[arg(long)]
    i_know_this_is_open: bool,
    /// Largest accepted request body in bytes.
    #[arg(long, env = "PHR_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Most entries in one batch or transaction Bundle.
    #[arg(long, env = "PHR_MAX_BUNDLE_ENTRIES")]
    max_bundle_entries: Option<usize>,
    /// Load the demo sandbox (test citizens, sample apps, a year of data) unless the data
    /// folder already holds it, then serve.
    #[arg(long)]
    demo: bool,
    /// A folder of extra conformance JSON (StructureDefinitions, ValueSets, CodeSystems) to
    /// validate with, over the built-in catalogue; repeatable.
    #[arg(long = "package", value_name = "DIR")]
    packages: Vec<PathBuf>,
    /// Days of demo data per citizen (with --demo).
    #[arg(long, default_value_t = 365)]
    demo_days: u32,
    /// A reverse proxy (address or network, e.g. 10.0.0.0/8) whose Forwarded or
    /// X-Forwarded-For header names the client in the audit log; repeatable. Replaces the
    /// configuration file's `trusted_proxies`.
    #[arg(
        long = "trusted-proxy",
        value_name = "ADDRESS",
        env = "PHR_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<String>,
    /// Serve HTTPS with this PEM certificate chain (the server's certificate first).
    #[arg(long, env = "PHR_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "PHR_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// A PEM bundle of the trusted issuers of application certificates: clients are asked
    /// for a certificate (optional at the TLS level), and applications registered with
    /// --certificate-oid must present one from these issuers.
    #[arg(long, env = "PHR_CLIENT_CA", value_name = "FILE")]
    client_ca: Option<PathBuf>,
    /// The header in which a TLS-terminating proxy (one of --trusted-proxy) passes the client
    /// certificate as URL-encoded PEM (nginx: $ssl_client_escaped_cert).
    #[arg(long, env = "PHR_CLIENT_CERTIFICATE_HEADER", value_name = "NAME")]
    client_certificate_header: Option<String>,
}

impl ServeArgs {
    fn config(self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_toml_file(path)?,
            None => Config::default(),
        };
        if let Some(v) = self.listen {
            config.listen = v;
        }
        if let Some(v) = self.data {
            config.data = v;
        }
        if let Some(v) = self.database {
            config.database = Some(v);
        }
        if let Some(v) = self.identity_key {
            config.auth.identity_key_file = Some(v);
        }
        if let Some(v) = self.public_url {
            config.public_url = Some(v);
        }
        config.open_sandbox |= self.open_sandbox;
        config.i_know_this_is_open |= self.i_know_this_is_open;
        if let Some(v) = self.max_body_bytes {
            config.max_body_bytes = v;
        }
        if let Some(v) = self.max_bundle_entries {
            config.max_bundle_entries = v;
        }
        config.packages.extend(self.packages);
        if let Some(v) = self.tls_cert {
            config.tls.cert = Some(v);
        }
        if let Some(v) = self.tls_key {
            config.tls.key = Some(v);
        }
        if let Some(v) = self.client_ca {
            config.tls.client_ca = Some(v);
        }
        if let Some(v) = self.client_certificate_header {
            config.tls.client_certificate_header = Some(v);
        }
        if !self.trusted_proxies.is_empty() {
            config.trusted_proxies =
                phr_server::config::TrustedProxies::parse(&self.trusted_proxies)
                    .map_err(anyhow::Error::msg)?;
        }
        config.check()?;
        Ok(config)
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let demo = args.demo;
    let demo_days = args.demo_days;
    let config = args.config()?;
    init_logging();
    std::fs::create_dir_all(&config.data)
        .with_context(|| format!("cannot create the data folder {}", config.data.display()))?;
    let storage = open_storage(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(config.limits.blocking_threads)
        .enable_all()
        .build()?;
    let grace = std::time::Duration::from_secs(config.limits.grace_seconds);
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let address = listener.local_addr()?;
        // Opening talks to the database with a blocking client: not on an async worker.
        let state = tokio::task::spawn_blocking(move || {
            AppState::open(
                Config {
                    listen: address,
                    ..config
                },
                storage,
            )
        })
        .await??;
        let demo_report = if demo {
            let core = phr_server::Core {
                fhir: state.fhir.clone(),
                auth: state.auth.clone(),
            };
            let data = state.config.data.clone();
            let options = crate::demo::DemoOptions {
                viewer_base: Some(state.config.base_url()),
                ..crate::demo::options(demo_days)
            };
            Some(
                tokio::task::spawn_blocking(move || crate::demo::load(&core, &data, &options))
                    .await??,
            )
        } else {
            None
        };
        // Sandbox retention runs only where data is test data by definition.
        let sandbox = state.config.open_sandbox || demo;
        if let Some(schedule) = state.config.retention.schedule(sandbox)? {
            let auth = state.auth.clone();
            tokio::spawn(phr_server::retention::run_scheduled(
                state.fhir.storage.clone(),
                schedule,
                time::OffsetDateTime::now_utc,
                Arc::new(move |due| {
                    auth.claim_job("sandbox-retention", due)
                        .unwrap_or_else(|e| {
                            tracing::error!(error = %e, "claiming the retention run failed");
                            false
                        })
                }),
            ));
        }
        let mut banner = format!("PHR is serving FHIR R4 at {}/fhir/r4\n", state.base_url);
        if let Some(report) = &demo_report {
            banner.push_str(&crate::demo::welcome(&state.config, report));
        }
        if state.config.open_sandbox {
            banner.push_str("open sandbox: no authentication; do not store real personal data\n");
        }
        // One write, and a closed stdout (a supervisor that stopped reading) is no reason to
        // stop serving: println! would panic on it.
        let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), banner.as_bytes());
        tracing::info!(address = %address, "listening");
        phr_server::serve(state, listener, shutdown_signal()).await?;
        tracing::info!("stopped");
        anyhow::Ok(())
    });
    // Blocking work of requests cut off at the end of the grace period is not waited for
    // beyond it.
    runtime.shutdown_timeout(grace);
    served
}

/// The application core on `config`'s data folder, for the operator's commands that write
/// without serving (import, demo).
pub fn open_core(config: &Config) -> anyhow::Result<phr_server::Core> {
    let storage = open_storage(config)?;
    Ok(phr_server::open_core(config, storage)?)
}

/// The FHIR store of `config`: PostgreSQL when it names a database (its schema migrated at
/// open, a newer one refused), else SQLite in the data folder.
pub fn open_storage(config: &Config) -> anyhow::Result<Arc<dyn phr_store::Storage>> {
    if let Some(url) = &config.database {
        let store = phr_store::postgres::PostgresStore::open_with(config.store.postgres(url))
            .with_context(|| format!("cannot open the database {}", redact(url)))?;
        return Ok(Arc::new(store));
    }
    let store = phr_store::sqlite::SqliteStore::open_with(
        &config.data.join("phr.db"),
        config.store.sqlite(),
    )
    .with_context(|| format!("cannot open the database in {}", config.data.display()))?;
    Ok(Arc::new(store))
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PHR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
