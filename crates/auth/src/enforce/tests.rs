//! The enforcer against a status source and signal the tests control, with real signing
//! keys.

use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use super::*;
use crate::clock::ManualClock;
use crate::error::AuthError;
use crate::keys::SqliteKeyStore;

const ISSUER: &str = "https://phr.example.fi";
const AUDIENCE: &str = "https://phr.example.fi/fhir/r4";

#[derive(Default)]
struct Source {
    apps: Mutex<HashMap<String, AppStanding>>,
    grants: Mutex<HashMap<String, GrantState>>,
    families: Mutex<HashMap<String, bool>>,
    revoked: Mutex<Vec<(String, i64)>>,
    lookups: AtomicUsize,
}

impl StatusSource for Source {
    fn app(&self, app_id: &str) -> Result<Option<AppStanding>> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        Ok(self.apps.lock().unwrap().get(app_id).cloned())
    }
    fn grant(&self, grant_id: &str) -> Result<GrantState> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        Ok(self
            .grants
            .lock()
            .unwrap()
            .get(grant_id)
            .copied()
            .unwrap_or(GrantState {
                active: false,
                cacheable: true,
            }))
    }
    fn family_active(&self, family_id: &str) -> Result<bool> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        Ok(self
            .families
            .lock()
            .unwrap()
            .get(family_id)
            .copied()
            .unwrap_or(false))
    }
    fn revoked_access_tokens(&self) -> Result<Vec<(String, i64)>> {
        Ok(self.revoked.lock().unwrap().clone())
    }
}

/// A signal another process bumps.
#[derive(Default)]
struct Signal(AtomicI64);

impl StatusSignal for Signal {
    fn publish(&self) -> Result<i64> {
        Ok(self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn latest(&self) -> Result<i64> {
        Ok(self.0.load(Ordering::Relaxed))
    }
    fn latest_known(&self) -> Option<i64> {
        Some(self.0.load(Ordering::Relaxed))
    }
}

struct Fixture {
    enforcer: Enforcer,
    keys: Arc<KeyRing>,
    clock: Arc<ManualClock>,
    source: Arc<Source>,
    signal: Arc<Signal>,
}

fn fixture() -> Fixture {
    let clock = Arc::new(ManualClock::at_micros(1_800_000_000_000_000));
    let store = Arc::new(SqliteKeyStore::new(crate::sqlite::Sqlite::in_memory()));
    let keys = Arc::new(KeyRing::open(store, clock.now(), 86_400, 3600).unwrap());
    let source = Arc::new(Source::default());
    source
        .apps
        .lock()
        .unwrap()
        .insert("app".into(), AppStanding::new("Steps", AppStatus::Accepted));
    source.grants.lock().unwrap().insert(
        "g".into(),
        GrantState {
            active: true,
            cacheable: true,
        },
    );
    source.families.lock().unwrap().insert("f".into(), true);
    let signal = Arc::new(Signal::default());
    let enforcer = Enforcer::new(
        Expected {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            mode: Mode::Production,
        },
        keys.clone(),
        clock.clone(),
        source.clone(),
        signal.clone(),
    )
    .unwrap();
    Fixture {
        enforcer,
        keys,
        clock,
        source,
        signal,
    }
}

impl Fixture {
    fn claims(&self) -> AccessClaims {
        let now = self.clock.now();
        AccessClaims {
            iss: ISSUER.into(),
            sub: "p".into(),
            aud: AUDIENCE.into(),
            exp: now + 600,
            iat: now,
            jti: "j1".into(),
            client_id: "app".into(),
            scope: "patient/Observation.read".into(),
            patient: Some("p".into()),
            gid: Some("g".into()),
            fid: Some("f".into()),
            fhir_user: None,
            org: None,
            professional: None,
            professional_name: None,
            cnf: None,
        }
    }

    fn header(&self, claims: &AccessClaims) -> String {
        format!("Bearer {}", self.keys.sign(claims).unwrap())
    }

    fn check(&self, claims: &AccessClaims) -> Result<AccessContext, AccessError> {
        self.enforcer.authenticate(Some(&self.header(claims)))
    }
}

#[test]
fn a_valid_token_gives_its_context_and_warm_checks_read_no_storage() {
    let f = fixture();
    let header = f.header(&f.claims());
    let context = f.enforcer.authenticate(Some(&header)).unwrap();
    assert_eq!(context.patient.as_deref(), Some("p"));
    assert_eq!(
        (context.app_id.as_str(), context.app_name.as_str()),
        ("app", "Steps")
    );
    assert_eq!(context.grant_id.as_deref(), Some("g"));
    let cold = f.source.lookups.load(Ordering::Relaxed);
    assert_eq!(cold, 3, "app, grant and family looked up once");
    f.enforcer.authenticate(Some(&header)).unwrap();
    assert_eq!(f.source.lookups.load(Ordering::Relaxed), cold);
}

#[test]
fn missing_malformed_and_expired_tokens_are_refused() {
    let f = fixture();
    assert_eq!(
        f.enforcer.authenticate(None),
        Err(AccessError::MissingToken)
    );
    assert_eq!(
        f.enforcer.authenticate(Some("Basic abc")),
        Err(AccessError::InvalidToken)
    );
    assert_eq!(
        f.enforcer.authenticate(Some("Bearer not.a.jwt")),
        Err(AccessError::InvalidToken)
    );
    let header = f.header(&f.claims());
    f.clock.advance(600);
    assert_eq!(
        f.enforcer.authenticate(Some(&header)),
        Err(AccessError::Expired)
    );
}

#[test]
fn a_token_for_another_public_url_names_both() {
    let f = fixture();
    let mut claims = f.claims();
    claims.iss = "http://127.0.0.1:8080".into();
    let error = f.check(&claims).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the access token was issued by http://127.0.0.1:8080, this server is https://phr.example.fi"
    );
    assert_eq!(error.status(), 401);
    let mut claims = f.claims();
    claims.aud = "https://other.example/fhir/r4".into();
    assert_eq!(
        f.check(&claims),
        Err(AccessError::WrongAudience {
            audience: "https://other.example/fhir/r4".into(),
            expected: AUDIENCE.into()
        })
    );
}

#[test]
fn a_token_from_another_server_names_its_issuer() {
    let f = fixture();
    let other_store = Arc::new(SqliteKeyStore::new(crate::sqlite::Sqlite::in_memory()));
    let other_keys = KeyRing::open(other_store, f.clock.now(), 86_400, 3600).unwrap();
    let mut claims = f.claims();
    claims.iss = "https://elsewhere.example".into();
    let header = format!("Bearer {}", other_keys.sign(&claims).unwrap());
    assert!(matches!(
        f.enforcer.authenticate(Some(&header)),
        Err(AccessError::WrongIssuer { issued_by, .. }) if issued_by == "https://elsewhere.example"
    ));
    // Same issuer, unknown key: a forgery or a key long gone.
    let header = format!("Bearer {}", other_keys.sign(&f.claims()).unwrap());
    assert_eq!(
        f.enforcer.authenticate(Some(&header)),
        Err(AccessError::InvalidToken)
    );
}

#[test]
fn status_changes_in_this_process_apply_at_once() {
    let f = fixture();
    let claims = f.claims();
    assert!(f.check(&claims).is_ok());

    f.source.families.lock().unwrap().insert("f".into(), false);
    assert!(f.check(&claims).is_ok(), "cached until forgotten");
    f.enforcer.forget_family("f");
    assert_eq!(f.check(&claims), Err(AccessError::Revoked));

    f.source.families.lock().unwrap().insert("f".into(), true);
    f.source.grants.lock().unwrap().insert(
        "g".into(),
        GrantState {
            active: false,
            cacheable: true,
        },
    );
    f.enforcer.forget_grant("g", &["f".to_string()]);
    assert_eq!(f.check(&claims), Err(AccessError::GrantWithdrawn));

    f.source.apps.lock().unwrap().insert(
        "app".into(),
        AppStanding::new("Steps", AppStatus::Suspended),
    );
    f.enforcer.forget_app("app");
    assert_eq!(
        f.check(&claims),
        Err(AccessError::AppInactive("suspended".into()))
    );
}

#[test]
fn a_revoked_token_is_refused_until_it_would_have_expired() {
    let f = fixture();
    let claims = f.claims();
    f.enforcer.revoked(&claims.jti, claims.exp);
    assert_eq!(f.check(&claims), Err(AccessError::Revoked));
    f.enforcer.prune();
    assert_eq!(
        f.check(&claims),
        Err(AccessError::Revoked),
        "not expired yet"
    );
}

#[test]
fn a_grant_answer_that_may_not_be_cached_is_asked_again() {
    let f = fixture();
    f.source.grants.lock().unwrap().insert(
        "g".into(),
        GrantState {
            active: true,
            cacheable: false,
        },
    );
    let claims = f.claims();
    f.check(&claims).unwrap();
    let after_first = f.source.lookups.load(Ordering::Relaxed);
    f.check(&claims).unwrap();
    assert_eq!(f.source.lookups.load(Ordering::Relaxed), after_first + 1);
}

#[test]
fn another_processs_signal_drops_the_cache_and_rereads_revocations() {
    let f = fixture();
    let claims = f.claims();
    assert!(f.check(&claims).is_ok());
    // Another process withdraws the grant and revokes a token, then signals.
    f.source.grants.lock().unwrap().insert(
        "g".into(),
        GrantState {
            active: false,
            cacheable: true,
        },
    );
    let mut other = f.claims();
    other.jti = "j2".into();
    f.source
        .revoked
        .lock()
        .unwrap()
        .push(("j2".into(), other.exp));
    assert!(f.check(&claims).is_ok(), "no signal yet");
    f.signal.publish().unwrap();
    assert_eq!(f.check(&claims), Err(AccessError::GrantWithdrawn));
    assert_eq!(f.check(&other), Err(AccessError::Revoked));
}

#[test]
fn this_processs_own_announcement_does_not_drop_the_cache() {
    let f = fixture();
    let claims = f.claims();
    f.check(&claims).unwrap();
    let warm = f.source.lookups.load(Ordering::Relaxed);
    f.enforcer.announce();
    f.check(&claims).unwrap();
    assert_eq!(f.source.lookups.load(Ordering::Relaxed), warm);
}

#[test]
fn lookup_failures_are_internal_errors() {
    struct Broken;
    impl StatusSource for Broken {
        fn app(&self, _: &str) -> Result<Option<AppStanding>> {
            Err(AuthError::Storage("down".into()))
        }
        fn grant(&self, _: &str) -> Result<GrantState> {
            Err(AuthError::Storage("down".into()))
        }
        fn family_active(&self, _: &str) -> Result<bool> {
            Err(AuthError::Storage("down".into()))
        }
        fn revoked_access_tokens(&self) -> Result<Vec<(String, i64)>> {
            Ok(Vec::new())
        }
    }
    let f = fixture();
    let enforcer = Enforcer::new(
        Expected {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            mode: Mode::Production,
        },
        f.keys.clone(),
        f.clock.clone(),
        Arc::new(Broken),
        f.signal.clone(),
    )
    .unwrap();
    let error = enforcer
        .authenticate(Some(&f.header(&f.claims())))
        .unwrap_err();
    assert_eq!(
        (error.clone(), error.status()),
        (AccessError::Internal, 500)
    );
}

#[test]
fn a_certificate_bound_token_needs_its_certificate() {
    use crate::certificate::{Confirmation, PresentedCertificate};
    let f = fixture();
    let mut claims = f.claims();
    claims.cnf = Some(Confirmation {
        x5t_s256: "thumb".into(),
    });
    let header = f.header(&claims);
    let presenting = |thumbprint: &str, trust: Result<(), String>| PresentedCertificate {
        thumbprint: thumbprint.into(),
        serial_number: Some("1.2.246.10.1".into()),
        trust,
    };
    assert!(
        f.enforcer
            .authenticate_presenting(Some(&header), Some(&presenting("thumb", Ok(()))))
            .is_ok()
    );
    // Known from that check, the token still needs its certificate.
    assert!(
        f.enforcer
            .authenticate_known(Some(&header), Some(&presenting("thumb", Ok(()))))
            .is_some()
    );
    for unknown in [
        f.enforcer.authenticate_known(Some(&header), None),
        f.enforcer
            .authenticate_known(Some(&header), Some(&presenting("other", Ok(())))),
    ] {
        assert_eq!(unknown, None);
    }
    for refused in [
        f.enforcer.authenticate(Some(&header)),
        f.enforcer
            .authenticate_presenting(Some(&header), Some(&presenting("other", Ok(())))),
        f.enforcer.authenticate_presenting(
            Some(&header),
            Some(&presenting("thumb", Err("unknown issuer".into()))),
        ),
    ] {
        let error = refused.unwrap_err();
        assert!(
            matches!(error, AccessError::CertificateMismatch(_)),
            "{error:?}"
        );
        assert_eq!(error.status(), 401);
    }
    // An unbound token needs no certificate, and is not hurt by one.
    let unbound = f.header(&f.claims());
    assert!(
        f.enforcer
            .authenticate_presenting(Some(&unbound), Some(&presenting("thumb", Ok(()))))
            .is_ok()
    );
}

#[test]
fn a_known_answer_is_only_one_the_full_check_gave_before_and_reads_nothing() {
    let f = fixture();
    let header = f.header(&f.claims());
    assert_eq!(
        f.enforcer.authenticate_known(Some(&header), None),
        None,
        "a token never verified needs the full check"
    );
    assert_eq!(f.enforcer.authenticate_known(None, None), None);
    assert_eq!(f.enforcer.authenticate_known(Some("Basic abc"), None), None);
    let full = f.enforcer.authenticate(Some(&header)).unwrap();
    let warm = f.source.lookups.load(Ordering::Relaxed);
    assert_eq!(
        f.enforcer.authenticate_known(Some(&header), None),
        Some(full)
    );
    assert_eq!(f.source.lookups.load(Ordering::Relaxed), warm);
}

#[test]
fn every_change_sends_a_known_token_back_to_the_full_check() {
    let f = fixture();
    let claims = f.claims();
    let header = f.header(&claims);
    let known = || f.enforcer.authenticate_known(Some(&header), None);
    f.check(&claims).unwrap();
    assert!(known().is_some());

    // Another process signals a change: not known until the full check has synchronised.
    f.source.grants.lock().unwrap().insert(
        "g".into(),
        GrantState {
            active: false,
            cacheable: true,
        },
    );
    f.signal.publish().unwrap();
    assert_eq!(known(), None);
    assert_eq!(f.check(&claims), Err(AccessError::GrantWithdrawn));
    assert_eq!(known(), None, "a refusal is never a known answer");

    // This process withdraws and revokes: each change drops the known answer.
    let f = fixture();
    let header = f.header(&claims);
    let known = || f.enforcer.authenticate_known(Some(&header), None);
    f.enforcer.authenticate(Some(&header)).unwrap();
    f.enforcer.forget_grant("g", &["f".to_string()]);
    assert_eq!(known(), None, "the grant's status is no longer cached");
    f.enforcer.authenticate(Some(&header)).unwrap();
    assert!(known().is_some());
    f.enforcer.revoked(&claims.jti, claims.exp);
    assert_eq!(known(), None);
    assert_eq!(f.check(&claims), Err(AccessError::Revoked));

    // Expiry needs no change at all.
    let f = fixture();
    let header = f.header(&claims);
    let known = || f.enforcer.authenticate_known(Some(&header), None);
    f.enforcer.authenticate(Some(&header)).unwrap();
    assert!(known().is_some());
    f.clock.advance(600);
    assert_eq!(known(), None);
    assert_eq!(f.check(&claims), Err(AccessError::Expired));
}
