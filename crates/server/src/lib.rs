//! The HTTP face of PHR, wired on axum: the FHIR R4 REST API under `/fhir/r4` (and its
//! deprecated STU3 view under `/fhir/stu3`), the
//! authorization server's endpoints and pages, the citizen portal, the developer console,
//! the public application list, and the operations
//! endpoints (`/health`, `/ready`, `/metrics`).
//!
//! Handlers are thin: they parse HTTP, call the application core (`phr-service`) on the
//! blocking pool, and map its typed errors to statuses and OperationOutcomes in one place
//! (`fhir::error`). Cross-cutting work is done once, by layers around the router: one audit
//! record per request (`audit`), metrics and the request log (`ops::track`), and a last-resort
//! guard that turns a panic into a 500.
//!
//! Never decides what a caller may do or what a resource must look like: that is the
//! service's.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod applist;
pub mod audit;
pub mod bulk;
pub mod config;
pub mod developer;
pub mod fhir;
pub mod limits;
pub mod oauth;
pub mod operator;
pub mod ops;
pub mod portal;
pub mod retention;
pub mod tls;
pub mod traffic;
pub mod viewer;
pub mod web;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use axum::Router;
use axum::response::IntoResponse;
use phr_auth::AuthService;
use phr_service::capabilities::{OAuthUris, ServerFacts, capability_statement};
use phr_service::{Error, FhirService, Pipeline, StoredPatients};
use phr_store::Storage;
use serde_json::Value;

pub use config::Config;
use fhir::error::FhirError;

/// Everything a request handler can reach.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub base_url: String,
    pub fhir: Arc<FhirService>,
    /// The authorization server: tokens, grants, the application registry, the audit log.
    pub auth: AuthService,
    /// Generated once at start-up: it only changes when the software does.
    pub capabilities: Value,
    /// The STU3 endpoint's statement, derived from `capabilities`.
    pub stu3_capabilities: Value,
    /// Request counters and latency histograms for `/metrics`.
    pub metrics: ops::Metrics,
    /// The origins browser apps may call from.
    pub cors: web::cors::Origins,
    /// Budgets, requests in flight, timeouts, drain.
    pub limits: limits::Limits,
    /// The trusted issuers of application certificates, when client certificates are read.
    pub client_certificates: Option<Arc<tls::client::ClientCertificates>>,
    /// The TLS acceptor, when the server speaks HTTPS itself.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Lower-priority threads for Bundles.
    pub bulk: bulk::BulkLane,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Why the application cannot start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open the authorization server: {0}")]
    Auth(phr_auth::AuthError),
    #[error(transparent)]
    Package(#[from] phr_service::PackageError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot start the bulk threads: {0}")]
    Threads(#[from] std::io::Error),
}

// Not `#[from]`: the message already holds the cause, which must not be printed twice.
impl From<phr_auth::AuthError> for OpenError {
    fn from(e: phr_auth::AuthError) -> Self {
        OpenError::Auth(e)
    }
}

/// The application core on a data folder, without any HTTP: the FHIR service and the
/// authorization server, wired together (the authorization server stores a citizen's Patient
/// through the service when they take PHR into use). The server and the operator's commands
/// both open it here.
pub struct Core {
    pub fhir: Arc<FhirService>,
    pub auth: AuthService,
}

/// Opens the authorization server of `config`: on its database when it names one (the
/// identity key then comes from the configured file), else in its data folder. With
/// `recorded_url`, a configuration without a public URL takes the one the serving node
/// recorded (in the database or the data folder): the operator's commands act for it.
pub fn open_auth(
    config: &mut Config,
    clock: Arc<dyn phr_auth::Clock>,
    recorded_url: bool,
) -> Result<AuthService, OpenError> {
    match config.database.clone() {
        Some(url) => {
            let key = phr_auth::service::identity_key_for_database(&config.auth_config())?;
            let stores = phr_auth::Stores::postgres(&url, clock.clone())?;
            if recorded_url && config.public_url.is_none() {
                config.public_url = stores.cluster.setting(phr_auth::cluster::PUBLIC_URL)?;
            }
            Ok(AuthService::assemble(
                config.auth_config(),
                stores,
                key,
                clock,
            )?)
        }
        None => {
            if recorded_url && config.public_url.is_none() {
                config.public_url = config::recorded_public_url(&config.data);
            }
            Ok(AuthService::open_with_clock(config.auth_config(), clock)?)
        }
    }
}

/// Opens the application core of `config` over `storage`.
pub fn open_core(config: &Config, storage: Arc<dyn Storage>) -> Result<Core, OpenError> {
    let auth = open_auth(&mut config.clone(), Arc::new(phr_auth::SystemClock), false)?;
    let pipeline = Pipeline::with_packages(&config.packages)?;
    let fhir = Arc::new(FhirService::new(
        storage,
        pipeline,
        config.service_settings(),
    ));
    auth.set_patient_registry(Arc::new(StoredPatients(fhir.clone())));
    Ok(Core { fhir, auth })
}

/// Builds everything the server derives from the embedded R4 definitions (validation, the
/// Finnish catalogue, search), then lets the unpacked JSON they were built from go: about
/// 70 MB that would otherwise stay allocated beside the compact forms for the process's
/// life.
fn build_definitions() {
    let _ = phr_fhir::Definitions::r4();
    let _ = phr_catalog::Catalog::get();
    let _ = phr_search::Registry::global();
    phr_fhir::defs::release_unpacked();
}

impl AppState {
    /// Builds the application over `storage`, opening the authorization server in the same
    /// data folder.
    pub fn open(mut config: Config, storage: Arc<dyn Storage>) -> Result<Self, OpenError> {
        let base_url = config.base_url();
        config.auth = config.auth_config();
        let Core { fhir, auth } = open_core(&config, storage)?;
        portal::register_client(&auth, &base_url);
        let endpoints = &auth.config().endpoints;
        let capabilities = capability_statement(
            &fhir.pipeline,
            &ServerFacts {
                base_url: &fhir.settings.base_url,
                version: env!("CARGO_PKG_VERSION"),
                open_sandbox: config.open_sandbox,
                max_bundle_entries: config.max_bundle_entries,
                max_page_size: fhir.settings.max_page_size,
                oauth: OAuthUris {
                    authorize: &endpoints.authorization,
                    token: &endpoints.token,
                    introspect: &endpoints.introspection,
                    revoke: &endpoints.revocation,
                },
            },
        );
        let stu3_capabilities = phr_stu3::capability::capability_statement(
            &capabilities,
            &format!("{base_url}{}", fhir::stu3::STU3_BASE_PATH),
            &fhir.settings.base_url,
        );
        let cors = web::cors::Origins::new(&config.cors, &base_url, auth.clone());
        let limits = limits::Limits::new(config.limits.clone());
        let client_certificates = tls::client_certificates(&config.tls)?.map(Arc::new);
        let tls = tls::acceptor(&config.tls, client_certificates.as_deref())?;
        let bulk = bulk::BulkLane::start()?;
        build_definitions();
        Ok(AppState(Arc::new(Inner {
            config,
            base_url,
            fhir,
            auth,
            capabilities,
            stu3_capabilities,
            metrics: ops::Metrics::default(),
            cors,
            limits,
            client_certificates,
            tls,
            bulk,
        })))
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let app = Router::new()
        .nest(fhir::BASE_PATH, fhir::routes())
        // The base with a trailing slash is the base too (nesting only matches it without).
        .route(
            &format!("{}/", fhir::BASE_PATH),
            axum::routing::post(fhir::bundle::transaction_or_batch)
                .fallback(fhir::wrong_method)
                .layer(axum::middleware::from_fn(fhir::negotiated)),
        )
        .nest(
            fhir::stu3::STU3_BASE_PATH,
            fhir::stu3::routes(state.clone()),
        )
        .route(
            &format!("{}/", fhir::stu3::STU3_BASE_PATH),
            axum::routing::post(fhir::bundle::transaction_or_batch)
                .fallback(fhir::wrong_method)
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    fhir::stu3::convert,
                ))
                .layer(axum::middleware::from_fn(fhir::negotiated))
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    fhir::stu3::deprecated,
                )),
        )
        .route("/health", axum::routing::get(ops::health))
        .route("/ready", axum::routing::get(ops::ready))
        .route("/metrics", axum::routing::get(ops::metrics))
        .with_state(state.clone());
    Router::new()
        .merge(app)
        .merge(oauth::router(state.auth.clone()))
        .merge(portal::router(&state))
        .merge(applist::router(&state))
        .merge(viewer::router(&state))
        .merge(developer::router(&state))
        .merge(operator::router(&state))
        .fallback(fhir::unknown_route)
        // Route layers, innermost first: they see the matched route template. The panic guard
        // is the last resort (client input never reaches it); the audit layer sits outside it
        // so that even such a request leaves its record.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            FhirError(Error::internal(
                "the server failed while handling this request",
            ))
            .into_response()
        }))
        // The in-flight limit and the request timeout, inside the audit layer: a request
        // refused or abandoned leaves its record too.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::record,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::track,
        ))
        // Every answer, refusals too (429, 503), carries the CORS headers, so that a browser
        // app can read it.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::cors::layer,
        ))
        // Outermost: the peer's address and client certificate, for every layer inside.
        .layer(axum::middleware::from_fn_with_state(
            state,
            tls::client::layer,
        ))
}

/// Serves until `shutdown` completes, then drains: `/ready` answers 503 for the configured
/// drain time while requests are still served, then the server stops accepting and the
/// requests in flight have the grace period to finish before it returns anyway.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The operator's commands read the URL the server answers at from here (`phr token`).
    let recorded = match &state.config.database {
        Some(_) => {
            let (auth, url) = (state.auth.clone(), state.base_url.clone());
            tokio::task::spawn_blocking(move || {
                auth.set_setting(phr_auth::cluster::PUBLIC_URL, &url)
                    .map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
        }
        None => config::record_public_url(&state.config.data, &state.base_url)
            .map_err(|e| e.to_string()),
    };
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "could not record the public URL");
    }
    let maintenance = tokio::spawn(auth_maintenance(state.auth.clone()));
    let auth = state.auth.clone();
    let drain = std::time::Duration::from_secs(state.config.limits.drain_seconds);
    let grace = std::time::Duration::from_secs(state.config.limits.grace_seconds);
    let stopping = Arc::new(tokio::sync::Notify::new());
    let drained = {
        let (state, stopping) = (state.clone(), stopping.clone());
        async move {
            shutdown.await;
            state.limits.start_draining();
            tracing::info!(
                seconds = drain.as_secs(),
                "shutting down: /ready answers 503, still serving"
            );
            tokio::time::sleep(drain).await;
            tracing::info!(
                seconds = grace.as_secs(),
                "shutting down: no longer accepting, finishing requests in flight"
            );
            stopping.notify_one();
        }
    };
    let served: std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> =
        match state.tls.clone() {
            Some(acceptor) => {
                let clients = state.client_certificates.clone();
                let app = router(state).into_make_service_with_connect_info::<tls::Peer>();
                let listener = tls::TlsListener::new(listener, acceptor, clients)?;
                Box::pin(
                    axum::serve(listener, app)
                        .with_graceful_shutdown(drained)
                        .into_future(),
                )
            }
            None => {
                let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
                Box::pin(
                    axum::serve(listener, app)
                        .with_graceful_shutdown(drained)
                        .into_future(),
                )
            }
        };
    let served = tokio::select! {
        served = served => served,
        () = async {
            stopping.notified().await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!("shutting down: the grace period is over, requests still in flight are cut off");
            Ok(())
        }
    };
    maintenance.abort();
    // Every audit record (and sandbox traffic row) of the requests just finished reaches the
    // disk before exit.
    if let Err(e) =
        tokio::task::spawn_blocking(move || auth.flush_traffic().and(auth.flush_audit()))
            .await
            .unwrap_or(Ok(()))
    {
        tracing::error!(error = %e, "could not flush the audit log or the traffic record at shutdown");
    }
    served
}

/// Key rotation by age, expired sessions and codes: once a minute.
async fn auth_maintenance(auth: AuthService) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        let auth = auth.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || auth.maintenance()).await {
            tracing::warn!(error = %e, "authorization maintenance failed");
        }
    }
}
