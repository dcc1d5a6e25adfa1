//! `phr`: the one binary. `phr serve` runs the server; the other commands are the operator's
//! tools.

mod admin;
mod allocator;
mod bench;
mod demo;
mod export;
mod import;
mod migrate;
mod serve;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "phr",
    version,
    about = "PHR: a personal health record repository (FHIR R4, Kanta PHR compatible)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(serve::ServeArgs),
    /// Load the demo sandbox data into a data folder (without serving).
    Demo(demo::DemoArgs),
    /// Drive a running server's HTTP API with concurrent clients and report throughput and
    /// latency.
    Bench(bench::BenchArgs),
    /// Store NDJSON or Bundle files through the write pipeline.
    Import(import::ImportArgs),
    /// Write one citizen's or everyone's data as Bundle JSON or NDJSON.
    Export(export::ExportArgs),
    /// Manage registered applications: register, list, accept, suspend, revoke.
    App(admin::AppArgs),
    /// Print an access token for a sandbox test citizen and an application (the token is the
    /// last line of standard output).
    Token(admin::TokenArgs),
    /// Withdraw a test citizen's grant to an application.
    Grant(admin::GrantArgs),
    /// Register and list social welfare and healthcare organisations (service providers).
    Org(admin::OrgArgs),
    /// Record a test citizen's care relationship with an organisation (sandbox helper).
    Care(admin::CareArgs),
    /// Give or withdraw a test citizen's consent to share with professionals (sandbox
    /// helper).
    Consent(admin::ConsentArgs),
    /// Export the audit log or verify its hash chain.
    Audit(admin::AuditArgs),
    /// Rotate the token signing key.
    Key(admin::KeyArgs),
    /// Sign in to the operator page: print a one-time sign-in link.
    Operator(admin::OperatorArgs),
    /// Create or upgrade the PostgreSQL schema (nodes also do it when they start).
    Migrate(migrate::MigrateArgs),
    /// Copy an SQLite data folder (every version, the index, the authorization state and
    /// the audit chain) into a new PostgreSQL database, and check the copy.
    MigrateStore(migrate::MigrateStoreArgs),
    /// Validate FHIR JSON files against StructureDefinition snapshots (the built-in catalogue
    /// and folders of conformance JSON).
    Validate(validate::ValidateArgs),
}

fn main() -> ExitCode {
    allocator::tune();
    if !phr_store::sqlite::alloc::use_global_allocator() {
        eprintln!("warning: SQLite was in use before start-up; it allocates with malloc");
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Import(args) => import::run(args),
        Command::Export(args) => export::run(args),
        Command::App(args) => admin::app(args),
        Command::Token(args) => admin::token(args),
        Command::Grant(args) => admin::grant(args),
        Command::Org(args) => admin::org(args),
        Command::Care(args) => admin::care(args),
        Command::Consent(args) => admin::consent(args),
        Command::Audit(args) => admin::audit(args),
        Command::Key(args) => admin::key(args),
        Command::Operator(args) => admin::operator(args),
        Command::Migrate(args) => migrate::migrate(args),
        Command::MigrateStore(args) => migrate::migrate_store(args),
        Command::Validate(args) => validate::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("phr: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The data folder from a flag, `PHR_DATA`, or the default.
pub fn data_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(|| PathBuf::from("./phr-data"))
}

/// Where a command finds the data: a data folder (SQLite), or the PostgreSQL database the
/// servers share with the identity key file they are given.
#[derive(clap::Args, Debug, Clone)]
pub struct Place {
    /// Folder of the database files (created if missing).
    #[arg(long, env = "PHR_DATA")]
    pub data: Option<PathBuf>,
    /// A PostgreSQL URL (postgres://user@host/db) instead of a data folder.
    #[arg(long, env = "PHR_DATABASE")]
    pub database: Option<String>,
    /// The identity key file of the servers of --database.
    #[arg(long, env = "PHR_IDENTITY_KEY_FILE")]
    pub identity_key: Option<PathBuf>,
}

impl Place {
    /// A server configuration for this place (the data folder is created when missing).
    pub fn config(&self) -> anyhow::Result<phr_server::Config> {
        let data = data_dir(self.data.clone());
        std::fs::create_dir_all(&data).map_err(|e| {
            anyhow::anyhow!("cannot create the data folder {}: {e}", data.display())
        })?;
        let mut config = phr_server::Config {
            data,
            database: self.database.clone(),
            ..phr_server::Config::default()
        };
        config.auth.identity_key_file = self.identity_key.clone();
        Ok(config)
    }
}
