//! Professional access: what a social welfare or healthcare professional may read of one
//! citizen's wellbeing data, decided at every request from the data itself.
//!
//! Three conditions must hold at the moment of the request: the citizen's active sharing
//! Consent (Kanta consent category `1`, `provision.type = permit`), an active
//! `EpisodeOfCare` of the citizen whose `managingOrganization` is the professional's
//! organisation and whose `period` covers now, and a usable application (the enforcer checks
//! that before a request gets here). Both resources live in the citizen's compartment, so
//! withdrawing the consent or ending the care relationship cuts access at the very next
//! request, also for tokens issued before.
//!
//! What the consent opens is a set of data contents of the catalogue, kept in the Consent as
//! `provision.class` codings of the contents' profiles (`urn:ietf:rfc:3986` | profile URL);
//! without any class the consent covers every data content. Searches get a `_profile`
//! clause for exactly those profiles, so what is not shared is never read, counted or paged;
//! reads and instance history check the resource's declared profile. The citizen's own
//! Patient resource is visible whenever anything is.
//!
//! Never sees a personal identity code: the web layer resolves one to the pseudonymous
//! Patient id before asking here.

use std::collections::BTreeSet;

use phr_catalog::Catalog;
use phr_search::{ParseOptions, SearchQuery};
use phr_store::{SearchPage, StoredResource};
use serde_json::{Value, json};

use crate::caller::Caller;
use crate::error::{Error, ErrorKind, Result};
use crate::service::FhirService;
use crate::written::Written;

/// Kanta's consent categories; code `1` is sharing with service providers.
pub const CONSENT_CATEGORY: &str = "http://phr.kanta.fi/fiphr-cs-consentcategory";
/// The consent category of sharing wellbeing data with professionals.
pub const SHARING_CATEGORY_CODE: &str = "1";
/// The system of `provision.class` codings naming a data content by its profile URL, and
/// of the organisation identifier (`urn:oid:…`) in `managingOrganization`.
pub const URI_SYSTEM: &str = "urn:ietf:rfc:3986";

/// What a professional may see of one citizen now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permit {
    pub patient: String,
    /// The Consent that opens the data.
    pub consent: String,
    /// The EpisodeOfCare (care relationship) with the professional's organisation.
    pub care: String,
    /// The profiles of the shared data contents.
    pub profiles: BTreeSet<String>,
}

/// The code system of confidentiality labels (`meta.security`).
pub const CONFIDENTIALITY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
/// The label of an entry the citizen has excluded from sharing: professionals never see it.
pub const RESTRICTED: &str = "R";

/// Whether the entry carries the restricted label (excluded from sharing by the citizen).
pub fn is_restricted(resource: &Value) -> bool {
    resource
        .pointer("/meta/security")
        .and_then(Value::as_array)
        .is_some_and(|labels| {
            labels
                .iter()
                .any(|l| l["system"] == CONFIDENTIALITY_SYSTEM && l["code"] == RESTRICTED)
        })
}

/// `resource` with the restricted label set (`restricted`) or removed; other labels stay.
pub fn with_restricted(mut resource: Value, restricted: bool) -> Value {
    let Some(object) = resource.as_object_mut() else {
        return resource;
    };
    let meta = object.entry("meta").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return resource;
    };
    let mut labels: Vec<Value> = meta
        .get("security")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    labels.retain(|l| !(l["system"] == CONFIDENTIALITY_SYSTEM && l["code"] == RESTRICTED));
    if restricted {
        labels.push(json!({
            "system": CONFIDENTIALITY_SYSTEM,
            "code": RESTRICTED,
            "display": "restricted"
        }));
    }
    if labels.is_empty() {
        meta.remove("security");
    } else {
        meta.insert("security".into(), Value::Array(labels));
    }
    resource
}

/// The application named by a resource's `creatingApplication`, if any.
fn creating_application(resource: &Value) -> Option<crate::caller::App> {
    let extension = resource["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"] == phr_catalog::urls::EXT_CREATING_APPLICATION)?;
    let part = |name: &str| {
        extension["extension"]
            .as_array()?
            .iter()
            .find(|p| p["url"] == name)?["valueString"]
            .as_str()
            .map(str::to_string)
    };
    let id = part("applicationId")?;
    Some(crate::caller::App {
        name: part("name").unwrap_or_else(|| id.clone()),
        id,
    })
}

/// What a professional was shown, for the audit log: the citizen, the care relationship the
/// access was allowed under and the data contents read (catalogue keys, sorted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub patient: String,
    pub care: String,
    pub contents: Vec<String>,
}

/// The data contents (catalogue keys) of `resources`, each once, sorted.
pub fn contents_of<'a>(resources: impl IntoIterator<Item = &'a StoredResource>) -> Vec<String> {
    let catalog = Catalog::get();
    let keys: BTreeSet<&str> = resources
        .into_iter()
        .filter(|r| !r.deleted && r.resource_type != "Patient")
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .filter_map(|resource| catalog.content_of(&resource).map(|c| c.kind.key()))
        .collect();
    keys.into_iter().map(str::to_string).collect()
}

impl Permit {
    /// What showing `resources` under this permit means for the audit log.
    pub fn shown<'a>(&self, resources: impl IntoIterator<Item = &'a StoredResource>) -> Shown {
        Shown {
            patient: self.patient.clone(),
            care: self.care.clone(),
            contents: contents_of(resources),
        }
    }

    /// Whether `stored` (a version in the citizen's compartment) may be shown.
    pub fn covers(&self, stored: &StoredResource) -> bool {
        if !stored.is_in(&self.patient) {
            return false;
        }
        if stored.resource_type == "Patient" {
            return stored.id == self.patient;
        }
        let Ok(resource) = serde_json::from_slice::<Value>(&stored.body) else {
            return false;
        };
        !is_restricted(&resource)
            && declared_profiles(&resource)
                .iter()
                .any(|p| self.profiles.contains(*p))
    }
}

/// The profiles a resource declares, without `|version`.
fn declared_profiles(resource: &Value) -> Vec<&str> {
    resource
        .pointer("/meta/profile")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(|p| p.split('|').next().unwrap_or(p))
                .collect()
        })
        .unwrap_or_default()
}

/// The profile of every data content of the catalogue (what "all data" shares).
pub fn all_content_profiles() -> BTreeSet<String> {
    Catalog::get()
        .contents()
        .iter()
        .map(|c| c.profile.to_string())
        .collect()
}

/// The profiles of the data contents named by their keys (`blood-pressure`,
/// `blood-glucose`, …); an unknown key is an error naming the known ones. Contents stored
/// under the common vital-signs profile share it: choosing one of them shares that profile.
pub fn profiles_of_contents(keys: &[String]) -> std::result::Result<BTreeSet<String>, String> {
    let contents = Catalog::get().contents();
    keys.iter()
        .map(|key| {
            contents
                .iter()
                .find(|c| c.kind.key() == key)
                .map(|c| c.profile.to_string())
                .ok_or_else(|| {
                    format!(
                        "'{key}' is not a data content; use one of: {}",
                        contents
                            .iter()
                            .map(|c| c.kind.key())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
        })
        .collect()
}

/// Whether `resource` is a Consent to share with professionals (any status).
pub fn is_sharing_consent(resource: &Value) -> bool {
    resource["category"].as_array().is_some_and(|list| {
        list.iter().any(|c| {
            c["coding"].as_array().is_some_and(|codings| {
                codings
                    .iter()
                    .any(|x| x["system"] == CONSENT_CATEGORY && x["code"] == SHARING_CATEGORY_CODE)
            })
        })
    })
}

/// The profiles an active sharing Consent opens; `None` when `consent` opens nothing (not
/// a sharing consent, not active, not a permit).
pub fn shared_profiles(consent: &Value) -> Option<BTreeSet<String>> {
    if !is_sharing_consent(consent) || consent["status"] != "active" {
        return None;
    }
    let provision = consent.get("provision")?;
    if provision["type"] != "permit" {
        return None;
    }
    let known = all_content_profiles();
    match provision.get("class").and_then(Value::as_array) {
        None => Some(known),
        Some(classes) => Some(
            classes
                .iter()
                .filter(|c| c["system"] == URI_SYSTEM)
                .filter_map(|c| c["code"].as_str())
                .filter(|p| known.contains(*p))
                .map(str::to_string)
                .collect(),
        ),
    }
}

/// The Consent to share wellbeing data with professionals: every data content when
/// `profiles` is `None`, else those (each a `provision.class` coding).
pub fn sharing_consent(
    patient: &str,
    profiles: Option<&BTreeSet<String>>,
    lang: &str,
    narrative: &str,
    now_micros: i64,
) -> Value {
    let mut provision = json!({"type": "permit"});
    if let Some(profiles) = profiles {
        let contents = Catalog::get().contents();
        let classes: Vec<Value> = profiles
            .iter()
            .map(|p| {
                let names: Vec<&str> = contents
                    .iter()
                    .filter(|c| c.profile == p)
                    .map(|c| c.names.en)
                    .collect();
                json!({"system": URI_SYSTEM, "code": p, "display": names.join(", ")})
            })
            .collect();
        if let Some(map) = provision.as_object_mut() {
            map.insert("class".into(), Value::Array(classes));
        }
    }
    let escaped = narrative
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    json!({
        "resourceType": "Consent",
        "language": lang,
        "text": {
            "status": "generated",
            "div": format!(
                "<div xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"{lang}\" xml:lang=\"{lang}\">{escaped}</div>"
            ),
        },
        "status": "active",
        "scope": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
            "code": "patient-privacy",
            "display": "Privacy Consent"
        }]},
        "category": [{"coding": [{
            "system": CONSENT_CATEGORY,
            "code": SHARING_CATEGORY_CODE,
            "display": "Consent to share wellbeing information stored in My Kanta Pages Personal Health Record to social welfare and healthcare service providers"
        }]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "dateTime": crate::time::to_instant(now_micros),
        "policyRule": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "OPTIN",
            "display": "opt-in"
        }]},
        "provision": provision
    })
}

/// The organisation (OID) managing a care relationship.
pub fn care_organisation(episode: &Value) -> Option<&str> {
    let value = episode
        .pointer("/managingOrganization/identifier/value")
        .and_then(Value::as_str)?;
    Some(value.strip_prefix("urn:oid:").unwrap_or(value))
}

/// A FHIR date or dateTime as microseconds: a date's start (`end_of_day` false) or its
/// end (`true`), in UTC.
fn moment(text: &str, end_of_day: bool) -> Option<i64> {
    if let Some(micros) = crate::time::parse_instant(text) {
        return Some(micros);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let day = time::Date::parse(text, &format).ok()?;
    let start = day.midnight().assume_utc().unix_timestamp() * 1_000_000;
    Some(if end_of_day {
        start + 86_400_000_000 - 1
    } else {
        start
    })
}

/// Whether the care relationship `episode` is active for `org` at `now`: status active and
/// a period (if any) that has begun and not ended. A period end given as a date lasts to
/// that day's end.
pub fn care_is_active(episode: &Value, org: &str, now: i64) -> bool {
    if episode["status"] != "active" || care_organisation(episode) != Some(org) {
        return false;
    }
    let started = match episode.pointer("/period/start").and_then(Value::as_str) {
        Some(start) => moment(start, false).is_some_and(|s| s <= now),
        None => true,
    };
    let not_ended = match episode.pointer("/period/end").and_then(Value::as_str) {
        Some(end) => moment(end, true).is_some_and(|e| now <= e),
        None => true,
    };
    started && not_ended
}

/// A care relationship of `patient` with the organisation `org` (named `org_name`) from
/// `start` (a FHIR dateTime) until `end` (a FHIR date or dateTime), if given.
pub fn episode_of_care(
    patient: &str,
    org: &str,
    org_name: &str,
    start: &str,
    end: Option<&str>,
) -> Value {
    let mut period = json!({"start": start});
    if let (Some(end), Some(map)) = (end, period.as_object_mut()) {
        map.insert("end".into(), json!(end));
    }
    json!({
        "resourceType": "EpisodeOfCare",
        "status": "active",
        "patient": {"reference": format!("Patient/{patient}")},
        "managingOrganization": {
            "identifier": {"system": URI_SYSTEM, "value": format!("urn:oid:{org}")},
            "display": org_name
        },
        "period": period
    })
}

fn not_allowed() -> Error {
    Error::forbidden(
        "no active consent of the citizen and care relationship with your organisation allow access to this citizen's data",
    )
}

impl FhirService {
    /// What the professional organisation `org` may see of `patient` now: `None` unless the
    /// citizen's sharing consent and an active care relationship with `org` both hold.
    pub fn professional_permit(&self, org: &str, patient: &str) -> Result<Option<Permit>> {
        let mut profiles = BTreeSet::new();
        let mut consent = None;
        for stored in crate::export::search_all(self.storage.as_ref(), "Consent", Some(patient))? {
            let Ok(resource) = serde_json::from_slice::<Value>(&stored.body) else {
                continue;
            };
            if let Some(shared) = shared_profiles(&resource) {
                profiles.extend(shared);
                consent.get_or_insert(stored.id);
            }
        }
        let Some(consent) = consent else {
            return Ok(None);
        };
        let now = crate::time::now_micros();
        let care =
            crate::export::search_all(self.storage.as_ref(), "EpisodeOfCare", Some(patient))?
                .into_iter()
                .find(|stored| {
                    serde_json::from_slice::<Value>(&stored.body)
                        .is_ok_and(|episode| care_is_active(&episode, org, now))
                });
        Ok(care.map(|care| Permit {
            patient: patient.to_string(),
            consent,
            care: care.id,
            profiles,
        }))
    }

    /// For a professional caller, whether `stored` may be shown (not found otherwise, so not
    /// even its existence leaks); the permit it was shown under. Nothing for other callers.
    pub(crate) fn professional_may_see(
        &self,
        caller: &Caller,
        stored: &StoredResource,
    ) -> Result<Option<Permit>> {
        let Some(org) = professional_org(caller) else {
            return Ok(None);
        };
        let hidden = || {
            Error::not_found(format!(
                "{}/{} is not known",
                stored.resource_type, stored.id
            ))
        };
        let patient = stored.patient.as_deref().ok_or_else(hidden)?;
        let permit = self.professional_permit(org, patient)?.ok_or_else(hidden)?;
        if stored.deleted || permit.covers(stored) {
            Ok(Some(permit))
        } else {
            Err(hidden())
        }
    }

    /// For a professional caller, confines a search to what is shared: it must name the
    /// citizen (`patient`), both conditions must hold, and only the shared contents'
    /// profiles are searched. Nothing for other callers.
    pub(crate) fn professional_search(
        &self,
        caller: &Caller,
        query: &mut SearchQuery,
    ) -> Result<Option<Permit>> {
        let Some(org) = professional_org(caller) else {
            return Ok(None);
        };
        let Some(patient) = query.compartment.clone() else {
            return Err(Error::invalid(
                "a professional's search names the citizen: add patient=[Patient id] (find the id with Patient?identifier=urn:oid:1.2.246.21|[identity code])",
            ));
        };
        let permit = self
            .professional_permit(org, &patient)?
            .ok_or_else(not_allowed)?;
        let profiles: Vec<&str> = permit.profiles.iter().map(String::as_str).collect();
        if query.resource_type == "Patient" {
            // The citizen's own Patient, found by the compartment alone.
        } else if profiles.is_empty() {
            return Err(not_allowed());
        } else {
            let options = ParseOptions {
                kanta_rules: false,
                ..ParseOptions::default()
            };
            // Entries the citizen excluded are never read, counted or paged either.
            let params = vec![
                ("_profile".to_string(), profiles.join(",")),
                (
                    "_security:not".to_string(),
                    format!("{CONFIDENTIALITY_SYSTEM}|{RESTRICTED}"),
                ),
            ];
            let parsed = phr_search::parse(&query.resource_type, &params, &options)
                .map_err(|issues| Error::with_issues(ErrorKind::Forbidden, issues))?;
            query.clauses.extend(parsed.query.clauses);
        }
        Ok(Some(permit))
    }

    /// `Patient?identifier=urn:oid:1.2.246.21|[identity code]` for a professional: the
    /// citizen's pseudonymous Patient when `patient` (the identity code's citizen, if they
    /// use the service) may be seen now, else nothing. The answer is the same for a person
    /// who does not use the service and for one who does but has not allowed access.
    pub fn professional_patient_lookup(
        &self,
        caller: &Caller,
        patient: Option<&str>,
    ) -> Result<(SearchPage, Option<Permit>)> {
        caller.permit("Patient", phr_auth::Interaction::Search)?;
        let Some(org) = professional_org(caller) else {
            return Err(Error::forbidden(
                "looking a citizen up by identity code is for professional applications",
            ));
        };
        let mut page = SearchPage {
            matches: Vec::new(),
            included: Vec::new(),
            total: Some(0),
            next: None,
            previous: None,
            this: None,
        };
        let Some(patient) = patient else {
            return Ok((page, None));
        };
        let Some(permit) = self.professional_permit(org, patient)? else {
            return Ok((page, None));
        };
        if let Some(stored) = self.storage.read_in(patient, "Patient", patient)?
            && !stored.deleted
        {
            page.matches.push(stored);
            page.total = Some(1);
        }
        Ok((page, Some(permit)))
    }
}

impl FhirService {
    /// The citizen's active sharing Consents.
    fn active_sharing_consents(&self, patient: &str) -> Result<Vec<(String, Value)>> {
        Ok(
            crate::export::search_all(self.storage.as_ref(), "Consent", Some(patient))?
                .into_iter()
                .filter_map(|stored| {
                    let resource: Value = serde_json::from_slice(&stored.body).ok()?;
                    (resource.get("status").and_then(Value::as_str) == Some("active")
                        && is_sharing_consent(&resource))
                    .then_some((stored.id, resource))
                })
                .collect(),
        )
    }

    /// Withdraws the citizen's sharing with professionals: every active sharing Consent
    /// becomes `inactive`. Access ends at the next request. Returns what was written.
    pub fn withdraw_sharing(&self, caller: &Caller, patient: &str) -> Result<Vec<Written>> {
        let mut written = Vec::new();
        for (id, mut consent) in self.active_sharing_consents(patient)? {
            if let Some(map) = consent.as_object_mut() {
                map.insert("status".into(), json!("inactive"));
            }
            written.push(self.update(caller, "Consent", &id, consent, None)?);
        }
        Ok(written)
    }

    /// Gives (or changes) the citizen's sharing with professionals: the previous sharing
    /// Consent is withdrawn and a new one records the choice (every data content when
    /// `profiles` is `None`). Returns what was written, the new Consent last.
    pub fn give_sharing(
        &self,
        caller: &Caller,
        patient: &str,
        profiles: Option<&BTreeSet<String>>,
        lang: &str,
        narrative: &str,
    ) -> Result<Vec<Written>> {
        if profiles.is_some_and(BTreeSet::is_empty) {
            return Err(Error::invalid(
                "choose at least one data content to share, or share all data",
            ));
        }
        let mut written = self.withdraw_sharing(caller, patient)?;
        let consent = sharing_consent(
            patient,
            profiles,
            lang,
            narrative,
            crate::time::now_micros(),
        );
        written.push(self.create(caller, consent, None)?);
        Ok(written)
    }

    /// What the citizen shares now: `None` when nothing, else the shared profiles.
    pub fn shared_now(&self, patient: &str) -> Result<Option<BTreeSet<String>>> {
        let mut shared: Option<BTreeSet<String>> = None;
        for (_, consent) in self.active_sharing_consents(patient)? {
            if let Some(profiles) = shared_profiles(&consent) {
                shared.get_or_insert_with(BTreeSet::new).extend(profiles);
            }
        }
        Ok(shared)
    }
}

impl FhirService {
    /// Excludes one entry of the citizen's from sharing (the restricted label) or shares it
    /// again. Only the citizen decides (the portal). The new version keeps its creating
    /// application and is attributed to the portal. `None` when nothing had to change.
    pub fn set_restricted(
        &self,
        caller: &Caller,
        resource_type: &str,
        id: &str,
        restricted: bool,
    ) -> Result<Option<Written>> {
        let Caller::Citizen { .. } = caller else {
            return Err(Error::forbidden(
                "only the citizen excludes entries from sharing with professionals",
            ));
        };
        let stored = self.read(caller, resource_type, id)?;
        if resource_type == "Patient" || resource_type == "Consent" {
            return Err(Error::invalid(format!(
                "{resource_type} is not a data entry that could be shared"
            )));
        }
        let resource: Value = serde_json::from_slice(&stored.body)
            .map_err(|_| Error::internal("a stored resource is not valid JSON"))?;
        if is_restricted(&resource) == restricted {
            return Ok(None);
        }
        let labelled = with_restricted(resource, restricted);
        // Labelling is not authoring: the entry keeps naming the application that made it.
        let writer = match creating_application(&labelled) {
            Some(app) if Some(app.id.as_str()) != caller.app_id() => {
                Caller::Operator { app: Some(app) }
            }
            _ => caller.clone(),
        };
        let op = match self.prepare_update(
            &writer,
            resource_type,
            id,
            labelled,
            Some(stored.version),
            &mut self.patients(),
        )? {
            phr_store::WriteOp::Update {
                mut new,
                create_if_missing,
            } => {
                new.app = caller.app_id().map(str::to_string);
                phr_store::WriteOp::Update {
                    new,
                    create_if_missing,
                }
            }
            other => other,
        };
        let result = self.write_one(&op)?;
        crate::update::finish_update(op, result).map(Some)
    }

    /// The citizen's entries excluded from sharing, newest first (at most `limit` of each
    /// type).
    pub fn restricted_entries(
        &self,
        caller: &Caller,
        patient: &str,
        limit: usize,
    ) -> Result<Vec<StoredResource>> {
        let params = vec![
            (
                "_security".to_string(),
                format!("{CONFIDENTIALITY_SYSTEM}|{RESTRICTED}"),
            ),
            ("_count".to_string(), limit.to_string()),
        ];
        let mut found = Vec::new();
        let served = self.pipeline.resource_types();
        for resource_type in crate::export::COMPARTMENT_TYPES {
            if !served.contains(resource_type) {
                continue;
            }
            let result = self.search(
                caller,
                crate::search::Scope::compartment(patient, resource_type),
                &params,
                false,
            )?;
            found.extend(result.page.matches);
        }
        found.sort_by_key(|r| std::cmp::Reverse(r.last_updated));
        Ok(found)
    }
}

/// The identifier system of the Finnish personal identity code.
pub const HETU_SYSTEM: &str = "urn:oid:1.2.246.21";

/// The personal identity code a `Patient?identifier=` search names, if it names one.
pub fn identity_code_searched(params: &[(String, String)]) -> Option<&str> {
    params
        .iter()
        .filter(|(name, _)| name == "identifier")
        .find_map(|(_, value)| value.strip_prefix(HETU_SYSTEM)?.strip_prefix('|'))
}

/// `params` with any personal identity code replaced by a placeholder, for audit records
/// and links.
pub fn without_identity_codes(params: &[(String, String)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(name, value)| {
            if name.starts_with("identifier") && value.contains(HETU_SYSTEM) {
                (name.clone(), format!("{HETU_SYSTEM}|[identity code]"))
            } else {
                (name.clone(), value.clone())
            }
        })
        .collect()
}

impl FhirService {
    /// The searchset Bundle of a professional's `Patient?identifier=` lookup (see
    /// [`FhirService::professional_patient_lookup`]); its links never carry the identity
    /// code. `Searched::patient` is the citizen only when they were found and may be seen.
    pub fn professional_patient_search(
        &self,
        caller: &Caller,
        patient: Option<&str>,
    ) -> Result<crate::search::Searched> {
        let (page, permit) = self.professional_patient_lookup(caller, patient)?;
        let resources = page
            .matches
            .iter()
            .map(|r| format!("{}/{}", r.resource_type, r.id))
            .collect();
        let shown = permit.as_ref().map(|p| p.shown(&page.matches));
        let result = crate::search::SearchResult {
            page,
            query: SearchQuery {
                resource_type: "Patient".into(),
                ..SearchQuery::default()
            },
            warnings: Vec::new(),
            permit: None,
        };
        let bundle = crate::searchset::searchset(
            &result,
            &self.settings.base_url,
            "Patient",
            &[],
            &self.subsetter,
        )?;
        Ok(crate::search::Searched {
            bundle,
            resources,
            patient: permit.map(|p| p.patient),
            shown,
            next_cursor: result.page.next,
        })
    }
}

/// Drops what `_include`/`_revinclude` brought in that the permit does not cover.
pub(crate) fn confine_included(page: &mut SearchPage, permit: &Permit) {
    page.included.retain(|r| permit.covers(r));
}

/// The organisation a professional caller acts for.
pub(crate) fn professional_org(caller: &Caller) -> Option<&str> {
    caller
        .professional()
        .and_then(|c| c.professional.as_ref())
        .map(|p| p.org.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BP: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodpressure";

    #[test]
    fn a_consent_shares_all_contents_or_the_chosen_ones() {
        let all = sharing_consent("p1", None, "en", "Share", 0);
        assert_eq!(shared_profiles(&all), Some(all_content_profiles()));
        let chosen = profiles_of_contents(&["blood-pressure".into()]).unwrap();
        assert!(chosen.contains(BP), "{chosen:?}");
        let some = sharing_consent("p1", Some(&chosen), "en", "Share <b>", 0);
        assert_eq!(shared_profiles(&some), Some(chosen));
        assert!(some["text"]["div"].as_str().unwrap().contains("&lt;b&gt;"));
        let mut withdrawn = some.clone();
        withdrawn["status"] = json!("inactive");
        assert_eq!(shared_profiles(&withdrawn), None);
        let mut deny = all.clone();
        deny["provision"]["type"] = json!("deny");
        assert_eq!(shared_profiles(&deny), None);
        assert!(profiles_of_contents(&["nonsense".into()]).is_err());
    }

    #[test]
    fn the_restricted_label_is_set_and_removed_leaving_other_labels() {
        let other = json!({"system": "urn:x", "code": "y"});
        let entry = json!({"resourceType": "Observation", "meta": {"security": [other.clone()]}});
        let hidden = with_restricted(entry, true);
        assert!(is_restricted(&hidden));
        assert_eq!(hidden["meta"]["security"][0], other);
        let shown = with_restricted(hidden, false);
        assert!(!is_restricted(&shown));
        assert_eq!(shown["meta"]["security"], json!([other]));
        let bare = with_restricted(json!({"resourceType": "Observation"}), false);
        assert!(bare["meta"].get("security").is_none());
    }

    #[test]
    fn a_care_relationship_is_active_for_its_organisation_within_its_period() {
        let now = crate::time::parse_instant("2026-12-04T12:00:00Z").unwrap();
        let open = episode_of_care("p1", "1.2.3", "Centre", "2026-01-01T00:00:00Z", None);
        assert!(care_is_active(&open, "1.2.3", now));
        assert!(!care_is_active(&open, "1.2.4", now));
        let today = episode_of_care("p1", "1.2.3", "C", "2026-01-01", Some("2026-12-04"));
        assert!(care_is_active(&today, "1.2.3", now));
        let ended = episode_of_care("p1", "1.2.3", "C", "2026-01-01", Some("2026-12-03"));
        assert!(!care_is_active(&ended, "1.2.3", now));
        let future = episode_of_care("p1", "1.2.3", "C", "2026-12-05", None);
        assert!(!care_is_active(&future, "1.2.3", now));
        let mut finished = open.clone();
        finished["status"] = json!("finished");
        assert!(!care_is_active(&finished, "1.2.3", now));
    }
}
