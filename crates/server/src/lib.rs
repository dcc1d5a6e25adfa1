//! The HTTP face of PHR: the FHIR R4 REST API under `/fhir/r4` (and, as they land, OAuth,
//! the citizen portal and operations endpoints), wired on axum.
//!
//! Handlers are thin: they parse HTTP, call the domain (storage, validation, search,
//! authorization), and map errors to OperationOutcomes in one place (`fhir::error`).

pub mod config;
pub mod export;
pub mod fhir;
pub mod oauth;
pub mod ops;
pub mod portal;
pub mod retention;
pub mod time;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use phr_auth::AuthService;
use phr_store::Storage;
use serde_json::Value;

pub use config::Config;
use fhir::error::ApiError;
use fhir::pipeline::Pipeline;
use fhir::service::FhirService;

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
    /// Request counters and latency histograms for `/metrics`.
    pub metrics: ops::Metrics,
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
    Auth(#[from] phr_auth::AuthError),
    #[error(transparent)]
    Package(#[from] fhir::pipeline::PackageError),
}

impl AppState {
    /// Builds the application over `storage`, opening the authorization server in the same
    /// data folder.
    pub fn open(mut config: Config, storage: Arc<dyn Storage>) -> Result<Self, OpenError> {
        let base_url = config.base_url();
        config.auth.data_dir = config.data.clone();
        oauth::configure(&mut config.auth, &base_url, fhir::BASE_PATH);
        let auth = AuthService::open(config.auth.clone())?;
        let pipeline = Pipeline::with_packages(&config.packages)?;
        let capabilities = fhir::capabilities::capability_statement(
            &pipeline,
            &fhir::capabilities::ServerFacts {
                base_url: &base_url,
                version: env!("CARGO_PKG_VERSION"),
                open_sandbox: config.open_sandbox,
                max_bundle_entries: config.max_bundle_entries,
            },
        );
        let fhir = Arc::new(FhirService::new(storage, pipeline));
        auth.set_patient_registry(Arc::new(fhir::access::StoredPatients(fhir.clone())));
        Ok(AppState(Arc::new(Inner {
            config,
            base_url,
            fhir,
            auth,
            capabilities,
            metrics: ops::Metrics::default(),
        })))
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let app = Router::new()
        .nest(
            fhir::BASE_PATH,
            fhir::routes()
                .fallback(unknown_route)
                .method_not_allowed_fallback(wrong_method),
        )
        // The base with a trailing slash is the base too (nesting only matches it without).
        .route(
            &format!("{}/", fhir::BASE_PATH),
            axum::routing::post(fhir::transaction_or_batch),
        )
        .route("/health", axum::routing::get(ops::health))
        .route("/ready", axum::routing::get(ops::ready))
        .route("/metrics", axum::routing::get(ops::metrics))
        .with_state(state.clone());
    Router::new()
        .merge(app)
        .merge(oauth::router(state.auth.clone()))
        .merge(portal::router(&state))
        .fallback(unknown_route)
        // Inside the routing, so the middleware sees the matched route template.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::track,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("the server failed while handling this request").into_response()
        }))
}

async fn unknown_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("nothing is served at {}", uri.path()))
}

async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        phr_fhir::IssueType::NotSupported,
        format!("{method} is not supported on {}", uri.path()),
    )
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let maintenance = tokio::spawn(auth_maintenance(state.auth.clone()));
    let auth = state.auth.clone();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    maintenance.abort();
    // Every audit record of the requests just finished reaches the disk before exit.
    if let Err(e) = tokio::task::spawn_blocking(move || auth.flush_audit())
        .await
        .unwrap_or(Ok(()))
    {
        tracing::error!(error = %e, "could not flush the audit log at shutdown");
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
