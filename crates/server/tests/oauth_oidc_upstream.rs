//! Production login through an upstream OpenID Connect provider that the test starts (the
//! shared test provider, `phr-test-oidc`): the relying party's discovery, PKCE, state, nonce
//! and ID-token checks against a real HTTP provider.

mod common;

use common::*;
use phr_auth::{
    AppStatus, ClientType, Interaction, Mode, NewApp, NewOrganisation, OidcUpstreamConfig,
    ProfessionalOidcConfig, UpstreamClientAuth,
};
use phr_test_oidc::Provider;
use serde_json::json;

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    ClaimInIdToken,
    ClaimInUserinfo,
    WrongNonce,
    /// A professionals' provider: the identifier, name and organisation claims (the
    /// organisation OID is the `hetu` argument).
    Professional,
}

/// A provider (the shared test provider) for the client `phr-rp` whose next sign-ins name
/// the citizen `hetu` as `behaviour` says; returns its issuer.
async fn start_provider(hetu: String, behaviour: Behaviour) -> String {
    let provider = Provider::start("phr-rp", "upstream-secret");
    let identity = json!({ "urn:oid:1.2.246.21": hetu });
    match behaviour {
        Behaviour::ClaimInIdToken => provider.sign_in_as(identity),
        Behaviour::ClaimInUserinfo => provider.userinfo(identity),
        Behaviour::WrongNonce => {
            provider.sign_in_as(identity);
            provider.wrong_nonce(true);
        }
        Behaviour::Professional => provider.sign_in_as(json!({
            "professional_id": "vv-77",
            "name": "Doctor Upstream",
            "organization_oid": format!("urn:oid:{hetu}"),
        })),
    }
    provider.issuer.clone()
}

async fn production_harness(issuer: String) -> Harness {
    start(move |config| {
        config.mode = Mode::Production;
        config.oidc = Some(OidcUpstreamConfig {
            issuer,
            client_id: "phr-rp".into(),
            client_secret: "upstream-secret".into(),
            hetu_claim: "urn:oid:1.2.246.21".into(),
            scopes: vec!["profile".into()],
            client_auth: UpstreamClientAuth::ClientSecretBasic,
            acr_values: None,
        });
    })
    .await
}

/// authorize → our login → upstream → our callback; returns the callback response.
async fn through_upstream(h: &Harness, browser: &mut Browser, app: &str) -> Page {
    let challenge = phr_auth::secrets::pkce_s256_challenge(VERIFIER);
    let page = browser
        .get(
            &h.http,
            &authorize_url(
                h,
                app,
                "patient/Observation.read offline_access",
                Some(&challenge),
            ),
        )
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some("/oauth/login"),
        "{}",
        page.body
    );
    let login = browser
        .get(&h.http, &format!("{}/oauth/login", h.base))
        .await;
    assert_eq!(login.status, 303, "{}", login.body);
    let upstream = login.location.unwrap();
    // The upstream provider is another site: no cookies of ours go there.
    let response = h.http.get(&upstream).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let callback = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        callback.starts_with(&format!("{}/oauth/callback?", h.base)),
        "{callback}"
    );
    browser.get(&h.http, &callback).await
}

#[tokio::test]
async fn production_login_goes_through_the_upstream_provider() {
    let provider = start_provider(hetu("150385", '-', 123), Behaviour::ClaimInIdToken).await;
    let h = production_harness(provider).await;
    let (app, _) = register(
        &h,
        ClientType::Public,
        "patient/Observation.read offline_access",
        AppStatus::Accepted,
    );
    let mut browser = Browser::default();
    let after = through_upstream(&h, &mut browser, &app).await;
    assert_eq!(
        after.location.as_deref(),
        Some("/oauth/terms"),
        "{}",
        after.body
    );
    let terms = browser
        .get(&h.http, &format!("{}/oauth/terms", h.base))
        .await;
    browser
        .post(
            &h.http,
            &format!("{}/oauth/terms", h.base),
            &[("csrf", &csrf_of(&terms.body)), ("decision", "accept")],
        )
        .await;
    let consent = browser
        .get(&h.http, &format!("{}/oauth/consent", h.base))
        .await;
    assert!(
        !consent.body.contains("Testiympäristö"),
        "no sandbox notice in production"
    );
    let done = browser
        .post(
            &h.http,
            &format!("{}/oauth/consent", h.base),
            &[
                ("csrf", &csrf_of(&consent.body)),
                ("decision", "allow"),
                ("item", "0"),
            ],
        )
        .await;
    let code = query_param(&done.location.unwrap(), "code").unwrap();
    let (status, token) = exchange(&h, &app, &code, VERIFIER).await;
    assert_eq!(status, 200, "{token}");
    assert!(
        h.service
            .authorize(Some(&bearer(&token)), "Observation", Interaction::Read)
            .is_ok()
    );
}

#[tokio::test]
async fn identity_code_may_come_from_userinfo() {
    let provider = start_provider(hetu("150385", '-', 124), Behaviour::ClaimInUserinfo).await;
    let h = production_harness(provider).await;
    let (app, _) = register(
        &h,
        ClientType::Public,
        "patient/Observation.read",
        AppStatus::Accepted,
    );
    let after = through_upstream(&h, &mut Browser::default(), &app).await;
    assert_eq!(
        after.location.as_deref(),
        Some("/oauth/terms"),
        "{}",
        after.body
    );
}

#[tokio::test]
async fn id_token_with_wrong_nonce_is_refused() {
    let provider = start_provider(hetu("150385", '-', 125), Behaviour::WrongNonce).await;
    let h = production_harness(provider).await;
    let (app, _) = register(
        &h,
        ClientType::Public,
        "patient/Observation.read",
        AppStatus::Accepted,
    );
    let after = through_upstream(&h, &mut Browser::default(), &app).await;
    assert_eq!(after.status, 401);
    assert!(after.location.is_none());
}

#[tokio::test]
async fn callback_with_forged_state_is_refused() {
    let provider = start_provider(hetu("150385", '-', 126), Behaviour::ClaimInIdToken).await;
    let h = production_harness(provider).await;
    let (app, _) = register(
        &h,
        ClientType::Public,
        "patient/Observation.read",
        AppStatus::Accepted,
    );
    let mut browser = Browser::default();
    let challenge = phr_auth::secrets::pkce_s256_challenge(VERIFIER);
    browser
        .get(
            &h.http,
            &authorize_url(&h, &app, "patient/Observation.read", Some(&challenge)),
        )
        .await;
    browser
        .get(&h.http, &format!("{}/oauth/login", h.base))
        .await;
    let page = browser
        .get(
            &h.http,
            &format!("{}/oauth/callback?code=x&state=forged", h.base),
        )
        .await;
    assert_eq!(page.status, 403);
}

#[tokio::test]
async fn production_serves_only_accepted_apps_and_has_no_sandbox_pages() {
    let provider = start_provider(hetu("150385", '-', 127), Behaviour::ClaimInIdToken).await;
    let h = production_harness(provider).await;
    let (sandbox_app, _) = register(
        &h,
        ClientType::Public,
        "patient/Observation.read",
        AppStatus::Sandbox,
    );
    let challenge = phr_auth::secrets::pkce_s256_challenge(VERIFIER);
    let page = Browser::default()
        .get(
            &h.http,
            &authorize_url(
                &h,
                &sandbox_app,
                "patient/Observation.read",
                Some(&challenge),
            ),
        )
        .await;
    assert_eq!(
        query_param(&page.location.unwrap(), "error").as_deref(),
        Some("unauthorized_client")
    );
    // The registration page moved to the developer console (which answers 501 in
    // production: crates/cli/tests/developer.rs).
    let page = Browser::default()
        .get(&h.http, &format!("{}/apps/register", h.base))
        .await;
    assert_eq!(page.status, 308);
    let response = h
        .http
        .post(format!("{}/oauth/register", h.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert!(
        h.service
            .issue_token_for_cli(&adult(), &sandbox_app, "patient/Observation.read")
            .is_err()
    );
}

const PRO_ORG: &str = "1.2.246.10.5555555.10.0";

/// Production with the citizens' provider and a professionals' provider at `issuer`.
async fn professional_harness(issuer: String) -> Harness {
    start(move |config| {
        config.mode = Mode::Production;
        config.oidc = Some(OidcUpstreamConfig {
            issuer: issuer.clone(),
            client_id: "phr-rp".into(),
            client_secret: "upstream-secret".into(),
            hetu_claim: "urn:oid:1.2.246.21".into(),
            scopes: vec![],
            client_auth: UpstreamClientAuth::ClientSecretBasic,
            acr_values: None,
        });
        config.professional_oidc = Some(ProfessionalOidcConfig {
            issuer,
            client_id: "phr-rp".into(),
            client_secret: "upstream-secret".into(),
            scopes: vec![],
            client_auth: UpstreamClientAuth::ClientSecretBasic,
            acr_values: None,
            id_claim: "professional_id".into(),
            name_claim: "name".into(),
            org_claim: "organization_oid".into(),
        });
    })
    .await
}

fn professional_app(h: &Harness) -> String {
    h.service
        .register_org(NewOrganisation {
            oid: PRO_ORG.into(),
            name_fi: "Terveysasema".into(),
            ..NewOrganisation::default()
        })
        .unwrap();
    h.service
        .register_app(
            NewApp {
                app_id: Some("pro-app".into()),
                name: "Potilastietojärjestelmä".into(),
                kind: phr_auth::AppKind::Professional,
                client_type: ClientType::Public,
                redirect_uris: vec![REDIRECT.into()],
                scope: "user/Observation.rs user/Patient.rs".into(),
                contact: None,
                jwks: None,
                jwks_uri: None,
                org: Some(PRO_ORG.into()),
                certificate_oid: None,
                supplier: None,
                platform: None,
                fhir_versions: None,
            },
            AppStatus::Accepted,
        )
        .unwrap()
        .app
        .app_id
}

/// authorize → the professionals' login → upstream → our professional callback.
async fn professional_through_upstream(h: &Harness, app: &str) -> Page {
    let mut browser = Browser::default();
    let challenge = phr_auth::secrets::pkce_s256_challenge(VERIFIER);
    let page = browser
        .get(
            &h.http,
            &authorize_url(
                h,
                app,
                "openid fhirUser user/Observation.rs",
                Some(&challenge),
            ),
        )
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some("/oauth/professional-login"),
        "{}",
        page.body
    );
    let login = browser
        .get(&h.http, &format!("{}/oauth/professional-login", h.base))
        .await;
    assert_eq!(login.status, 303, "{}", login.body);
    let response = h.http.get(login.location.unwrap()).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let callback = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        callback.starts_with(&format!("{}/oauth/professional-callback?", h.base)),
        "{callback}"
    );
    browser.get(&h.http, &callback).await
}

#[tokio::test]
async fn production_professionals_sign_in_at_their_identity_provider() {
    let provider = start_provider(PRO_ORG.into(), Behaviour::Professional).await;
    let h = professional_harness(provider).await;
    let app = professional_app(&h);
    let back = professional_through_upstream(&h, &app).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let location = back.location.unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    let code = query_param(&location, "code").unwrap();
    let (status, token) = exchange(&h, &app, &code, VERIFIER).await;
    assert_eq!(status, 200, "{token}");
    let context = h
        .service
        .authenticate(Some(&bearer(&token)))
        .expect("a professional's token");
    let professional = context.professional.expect("names the professional");
    assert_eq!(professional.id, "vv-77");
    assert_eq!(professional.name.as_deref(), Some("Doctor Upstream"));
    assert_eq!(professional.org, PRO_ORG);
    assert!(context.patient.is_none());
}

#[tokio::test]
async fn a_professional_of_another_organisation_is_refused() {
    let provider = start_provider("1.2.246.10.9999999.10.0".into(), Behaviour::Professional).await;
    let h = professional_harness(provider).await;
    let app = professional_app(&h);
    let back = professional_through_upstream(&h, &app).await;
    assert_eq!(back.status, 403, "{}", back.body);
    assert!(back.body.contains("toisen organisaation"), "{}", back.body);
}
