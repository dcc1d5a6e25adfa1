//! One audit record for every request, by anyone, whatever the outcome (401, 403, 4xx and 5xx
//! too): written by one layer around the whole router ([`record`]), never by handlers.
//!
//! The layer starts a record for the request (the client address, the usage of the route),
//! puts an [`AuditSlot`] in the request's extensions, and writes the record once the response
//! is ready. What only the extractors and handlers learn (who the caller is, the interaction,
//! the resources touched, the search criteria) they put in the slot; a failure's issue comes
//! from the response ([`crate::fhir::error::Failure`]).
//!
//! Not audited: the liveness and readiness probes and the metrics scrape (a load balancer or
//! Prometheus calls them every few seconds; they touch no personal data and would drown the
//! log the citizen reads) and the stylesheets (static files). Every other route is, including
//! unknown paths, the discovery documents and every OAuth and portal page.
//!
//! Never records a token, a cookie, a query string of an OAuth or portal page, or a personal
//! identity code: only what the Kela log register asks for.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use phr_auth::{AuditRecord, Usage};
use phr_service::Caller;

use crate::AppState;
use crate::config::TrustedProxies;
use crate::fhir::error::Failure;

/// Route templates that are not audited (see the module documentation).
pub const UNAUDITED_ROUTES: &[&str] = &[
    "/health",
    "/ready",
    "/metrics",
    crate::portal::STYLE_PATH,
    crate::oauth::STYLE_PATH,
];

/// The audit record of the request being handled, shared between the audit layer and the
/// extractors and handlers that fill it in.
#[derive(Clone)]
pub struct AuditSlot(Arc<Mutex<AuditRecord>>);

impl AuditSlot {
    pub fn new(record: AuditRecord) -> Self {
        AuditSlot(Arc::new(Mutex::new(record)))
    }

    /// The slot of a request, or a detached one when the request did not pass the audit
    /// layer (a route that is not audited).
    pub fn of(extensions: &axum::http::Extensions) -> Self {
        extensions
            .get::<AuditSlot>()
            .cloned()
            .unwrap_or_else(|| AuditSlot::new(AuditRecord::new(Usage::Application, "anonymous")))
    }

    /// Changes the record.
    pub fn update(&self, change: impl FnOnce(&mut AuditRecord)) {
        change(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// The record as filled in, leaving an empty one behind.
    fn take(&self) -> AuditRecord {
        let mut record = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut record, AuditRecord::new(Usage::Application, ""))
    }

    /// Who is calling: actor, usage, application, the citizen the caller is confined to, the
    /// rights of the token.
    pub fn caller(&self, caller: &Caller) {
        self.update(|record| describe_caller(record, caller));
    }

    /// The FHIR interaction (`read`, `search-type`, ...) and the resource type it was on.
    pub fn interaction(&self, code: &str, resource_type: Option<&str>) {
        self.update(|record| {
            record.interaction = Some(code.to_owned());
            record.resource_type = resource_type.map(str::to_owned);
        });
    }

    /// The data subject, when the caller's identity does not say (open sandbox, system
    /// tokens).
    pub fn subject(&self, patient: Option<String>) {
        self.update(|record| {
            if record.patient_id.is_none() {
                record.patient_id = patient;
            }
        });
    }

    /// `Type/id` of what was read or written; the amount is their number.
    pub fn touched(&self, resources: Vec<String>) {
        self.update(|record| {
            record.amount = resources.len() as u64;
            record.resources = resources;
        });
    }

    /// What a professional was shown: the citizen, the care relationship it was allowed
    /// under and the data contents read.
    pub fn shown(&self, shown: Option<phr_service::professional::Shown>) {
        let Some(shown) = shown else { return };
        self.update(|record| {
            record.patient_id.get_or_insert(shown.patient);
            record.care_id = Some(shown.care);
            record.contents = shown.contents;
        });
    }

    pub fn search_criteria(&self, criteria: String) {
        self.update(|record| record.search_criteria = Some(criteria));
    }
}

/// The request's slot, for handlers that take nothing else from the request.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for AuditSlot {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(AuditSlot::of(&parts.extensions))
    }
}

/// Fills in the record's fields that say who the caller is.
fn describe_caller(record: &mut AuditRecord, caller: &Caller) {
    let (usage, actor) = match caller {
        Caller::App(context) => {
            record.patient_id = context.patient.clone();
            record.user_rights = Some(context.scope.clone());
            let actor = match &context.patient {
                Some(patient) => format!("Patient/{patient}"),
                None => "system".to_owned(),
            };
            (Usage::Application, actor)
        }
        Caller::Citizen { patient } => {
            record.patient_id = Some(patient.clone());
            (Usage::CitizenPortal, format!("Patient/{patient}"))
        }
        Caller::Operator { .. } => (Usage::Operator, "operator".to_owned()),
        Caller::System => (Usage::Operator, "system".to_owned()),
        Caller::OpenSandbox => (Usage::OpenSandbox, "anonymous".to_owned()),
        Caller::Professional(context) => {
            record.user_rights = Some(context.scope.clone());
            let actor = match &context.professional {
                Some(p) => {
                    record.professional_id = Some(p.id.clone());
                    record.professional_name = p.name.clone();
                    record.org_oid = Some(p.org.clone());
                    format!("Practitioner/{}", p.id)
                }
                None => "professional".to_owned(),
            };
            (Usage::Application, actor)
        }
    };
    record.usage = usage;
    record.actor = actor;
    if let Some(app) = caller.app() {
        record.app_id = Some(app.id.to_owned());
        record.app_name = Some(app.name.to_owned());
    }
}

/// How a request to `route` reached PHR, before anyone says who is calling.
fn usage_of(route: Option<&str>) -> Usage {
    match route {
        Some(r)
            if r.starts_with("/oauth") || r.starts_with("/apps") || r.contains("/.well-known") =>
        {
            Usage::Authorization
        }
        Some(r) if r == "/" || r.starts_with(crate::portal::ROOT) => Usage::CitizenPortal,
        Some(r) if r.starts_with(crate::operator::ROOT) => Usage::Operator,
        _ => Usage::Application,
    }
}

/// The audit layer: one record per request (see the module documentation). Sits inside the
/// routing, so it sees the matched route template, and outside the handlers' panic guard, so
/// a request that failed unexpectedly is recorded with its 500.
pub async fn record(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    if route
        .as_deref()
        .is_some_and(|r| UNAUDITED_ROUTES.contains(&r))
    {
        return next.run(request).await;
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    let mut start = AuditRecord::new(usage_of(route.as_deref()), "anonymous");
    start.client_address = client_address(peer, request.headers(), &state.config.trusted_proxies)
        .map(|a| a.to_string());
    start.route = route;
    start.method = Some(request.method().as_str().to_owned());
    let slot = AuditSlot::new(start);
    request.extensions_mut().insert(slot.clone());
    let traffic = state
        .auth
        .config()
        .mode
        .is_sandbox()
        .then(crate::traffic::TrafficSlot::default);
    if let Some(traffic) = &traffic {
        request.extensions_mut().insert(traffic.clone());
    }
    let response = next.run(request).await;
    let mut record = slot.take();
    record.status = response.status().as_u16();
    if let Some(Failure(error)) = response.extensions().get::<Failure>()
        && let Some(issue) = error.issues().first()
    {
        record.error_code = Some(issue.code.code().to_owned());
        record.error_detail = Some(issue.message.clone());
    }
    // The sandbox traffic record of an application's FHIR request, for the acceptance
    // checks: queued before the answer leaves, and a report flushes the queue before it
    // reads, so a report asked for next sees it.
    if let Some(traffic) = traffic
        && record.usage == Usage::Application
        && record
            .route
            .as_deref()
            .is_some_and(|r| r.starts_with(crate::fhir::BASE_PATH))
    {
        let rows = traffic.rows(&record, phr_service::time::now_micros());
        let left = state.auth.try_record_traffic(rows);
        if !left.is_empty() {
            let auth = state.auth.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || auth.record_traffic(left)).await
            {
                tracing::warn!(error = %e, "could not record sandbox traffic");
            }
        }
    }
    // Queued on the async worker when the queue has room (it holds 10 000 records); naming
    // a professional's organisation, or waiting for room, happens off it.
    if record.org_oid.is_none() || record.org_name.is_some() {
        match state.auth.try_audit(record) {
            Ok(()) => return response,
            Err(back) => record = *back,
        }
    }
    let auth = state.auth.clone();
    let queued = tokio::task::spawn_blocking(move || {
        name_organisation(&auth, &mut record);
        auth.audit(record)
    })
    .await;
    match queued {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "could not queue an audit record"),
        Err(e) => tracing::error!(error = %e, "queuing an audit record stopped unexpectedly"),
    }
    response
}

/// A professional's organisation by its name at the time of the access (Finnish, the
/// register's own language; the portal shows the citizen's language from the registry and
/// falls back to this). An organisation missing from the registry keeps only its OID.
fn name_organisation(auth: &phr_auth::AuthService, record: &mut AuditRecord) {
    let Some(oid) = record.org_oid.as_deref() else {
        return;
    };
    if record.org_name.is_none() {
        match auth.org(oid) {
            Ok(org) => record.org_name = org.map(|o| o.name("fi").to_owned()),
            Err(e) => {
                tracing::warn!(error = %e, "could not name an organisation for the audit log")
            }
        }
    }
}

/// The address of the client: the peer's, or when the peer is a trusted proxy, the nearest
/// address in its `Forwarded` (RFC 7239) or `X-Forwarded-For` chain that is not itself a
/// trusted proxy. A forwarded header from any other peer is ignored: anyone can write one.
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(peer) {
        return Some(peer);
    }
    let chain = forwarded_chain(headers);
    // Walk from the nearest hop outwards; the first address not ours is the client.
    let mut client = peer;
    for hop in chain.iter().rev() {
        let Some(address) = hop else {
            // An obfuscated or unparsable hop: nothing further out can be trusted.
            break;
        };
        client = *address;
        if !trusted.contains(*address) {
            break;
        }
    }
    Some(client)
}

/// The forwarded-for addresses, outermost first: `Forwarded: for=` if present, else
/// `X-Forwarded-For`. A hop that is not an IP address is `None`.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (name, value) = pair.trim().split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| parse_node(value.trim()))
                })
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| parse_node(hop.trim()))
        .collect()
}

/// An RFC 7239 node (`192.0.2.1`, `"192.0.2.1:80"`, `"[2001:db8::1]:4711"`) as an address.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim_matches('"');
    if let Ok(address) = text.parse::<IpAddr>() {
        return Some(address);
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    let inner = text.strip_prefix('[')?.split(']').next()?;
    inner.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_peer_is_the_client_unless_it_is_a_trusted_proxy() {
        let h = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(
            client_address(Some(ip("198.51.100.2")), &h, &trusted(&["10.0.0.0/8"])),
            Some(ip("198.51.100.2"))
        );
        assert_eq!(
            client_address(Some(ip("10.1.2.3")), &h, &trusted(&["10.0.0.0/8"])),
            Some(ip("203.0.113.7"))
        );
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.5")]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &h, &trusted(&["10.0.0.0/8"])),
            Some(ip("203.0.113.7"))
        );
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for_and_takes_ports_and_brackets() {
        let h = headers(&[
            ("forwarded", "for=\"[2001:db8:cafe::17]:4711\";proto=https"),
            ("x-forwarded-for", "1.1.1.1"),
        ]);
        assert_eq!(
            client_address(Some(ip("127.0.0.1")), &h, &trusted(&["127.0.0.1"])),
            Some(ip("2001:db8:cafe::17"))
        );
        let h = headers(&[("forwarded", "for=192.0.2.60;by=203.0.113.43, for=10.0.0.9")]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &h, &trusted(&["10.0.0.0/8"])),
            Some(ip("192.0.2.60"))
        );
    }

    #[test]
    fn an_unknown_hop_stops_the_walk() {
        let h = headers(&[("forwarded", "for=unknown, for=10.0.0.9")]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &h, &trusted(&["10.0.0.0/8"])),
            Some(ip("10.0.0.9"))
        );
    }

    #[test]
    fn routes_have_their_usage() {
        assert_eq!(usage_of(Some("/oauth/token")), Usage::Authorization);
        assert_eq!(
            usage_of(Some("/.well-known/smart-configuration")),
            Usage::Authorization
        );
        assert_eq!(usage_of(Some("/portal/log")), Usage::CitizenPortal);
        assert_eq!(usage_of(Some("/operator/apps/{id}")), Usage::Operator);
        assert_eq!(usage_of(Some("/fhir/r4/{type}")), Usage::Application);
        assert_eq!(usage_of(None), Usage::Application);
    }
}
