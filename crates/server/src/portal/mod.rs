//! The citizen portal ("My PHR", Kanta's OmaKanta PHR pages), served at `/portal` (and `/`
//! redirects there): server-rendered pages in Finnish, Swedish and English that work without
//! JavaScript. The citizen logs in through the authorization server as a first-party client
//! (same identity providers, terms of use and age rule as for apps), then sees, charts, enters,
//! deletes and exports their data, withdraws application rights, decides on sharing with
//! professionals and reads the log of who accessed their data.
//!
//! `mod.rs` wires the routes (under the one security-header layer of [`crate::web`]);
//! `session.rs` holds the browser session (in the authorization server's session store,
//! with the web module's cookies and CSRF check); `pages.rs` the thin handlers; `data.rs` reads the
//! citizen's data through the FHIR service; `chart.rs` draws SVG; `entry.rs` turns entry
//! forms into Kanta-profiled Observations; `texts.rs` holds the words.
//!
//! Never shows, logs or puts in a URL a personal identity code or a token: the session
//! knows only the pseudonymous Patient id, and pages show the birth date at most.

pub(crate) mod chart;
mod data;
// Public (with the words they need) so the fuzz targets can feed the entry forms directly.
pub mod entry;
pub(crate) mod format;
mod pages;
mod session;
pub mod texts;

use axum::Router;
use axum::routing::{get, post};

use phr_service::Caller;

use crate::AppState;
use crate::web::see_other;

pub use phr_service::caller::{PORTAL_APP_ID, PORTAL_APP_NAME};
/// What the portal asks for at login; it reads and writes through the FHIR service itself,
/// as the citizen, so the scope only records what the portal is.
const PORTAL_SCOPE: &str = "openid patient/*.read";
pub const ROOT: &str = "/portal";
pub const CALLBACK_PATH: &str = "/portal/callback";
pub const STYLE_PATH: &str = "/portal/static/portal.css";

/// Registers the portal as a first-party client of the authorization server (idempotent;
/// the redirect URI follows the public base URL). Blocks on storage: [`AppState::open`]
/// calls it, off the async workers.
pub fn register_client(auth: &phr_auth::AuthService, base_url: &str) {
    if let Err(e) = auth.register_first_party_client(
        PORTAL_APP_ID,
        PORTAL_APP_NAME,
        &format!("{base_url}{CALLBACK_PATH}"),
        PORTAL_SCOPE,
    ) {
        tracing::error!(error = %e, "could not register the portal at the authorization server");
    }
}

/// The portal's routes, with the state applied.
pub fn router(state: &AppState) -> Router {
    Router::new()
        .route("/", get(|| async { see_other(ROOT) }))
        .route(ROOT, get(pages::overview))
        .route("/portal/", get(|| async { see_other(ROOT) }))
        .route("/portal/login", get(pages::login))
        .route(CALLBACK_PATH, get(pages::callback))
        .route("/portal/logout", post(pages::logout))
        .route("/portal/data/{kind}", get(pages::data_page))
        .route("/portal/entry/{type}/{id}", get(pages::detail))
        .route("/portal/enter", get(pages::enter_choose))
        .route(
            "/portal/enter/{kind}",
            get(pages::enter_form).post(pages::enter_submit),
        )
        .route(
            "/portal/delete",
            get(pages::delete_page).post(pages::delete_submit),
        )
        .route("/portal/apps", get(pages::apps))
        .route("/portal/apps/withdraw", post(pages::withdraw))
        .route(
            "/portal/sharing",
            get(pages::sharing).post(pages::sharing_submit),
        )
        .route("/portal/sharing/entry", post(pages::sharing_entry))
        .route("/portal/log", get(pages::access_log))
        .route("/portal/export", get(pages::export_page))
        .route("/portal/export/bundle.json", get(pages::export_bundle))
        .route("/portal/export/{file}", get(pages::export_ndjson))
        .route(
            STYLE_PATH,
            get(|| async { crate::web::stylesheet(include_str!("../../static/portal.css")) }),
        )
        .layer(axum::middleware::from_fn(crate::web::headers::layer))
        .with_state(state.clone())
}

/// The FHIR caller the portal acts as: the citizen, in their own compartment, with the
/// portal as the creating application; may delete anything of theirs.
pub fn caller(patient_id: &str) -> Caller {
    Caller::Citizen {
        patient: patient_id.to_owned(),
    }
}
