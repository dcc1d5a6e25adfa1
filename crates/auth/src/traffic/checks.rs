//! The acceptance checks run over an application's sandbox traffic, per data content: data,
//! one declaration per check ([`CHECKS`]) with its title and rationale in Finnish, Swedish
//! and English, the Kanta rule it comes from, and a plain function that judges the observed
//! rows. A report names each failed check with example requests (times, interactions,
//! statuses, identifiers, hashes and issues: never personal data).
//!
//! Checks on resources look at the rows of the one data content; checks on requests
//! (Bundles, the budget, searches of the content's resource type, tokens, deletes) at the
//! application's requests of the period.
//!
//! A check needs evidence to pass: one that saw nothing to judge (no resource of the
//! content, no refresh-token grant, no call after the withdrawn-grant probe) is
//! "not yet observed", never passed.

use serde::Serialize;
use serde_json::Value;

use super::{RowKind, TrafficRow};

/// What a check is judged on.
pub struct Observed<'a> {
    /// The data content (catalogue code).
    pub content: &'a str,
    /// The resource type the content is stored as.
    pub resource_type: &'a str,
    /// Every row of the application in the period, oldest first.
    pub rows: &'a [TrafficRow],
    /// When the withdrawn-grant probe last started (microseconds since the epoch), if ever.
    pub probe_since: Option<i64>,
}

impl Observed<'_> {
    fn resources(&self) -> impl Iterator<Item = &TrafficRow> {
        self.rows
            .iter()
            .filter(|r| r.kind == RowKind::Resource && r.content.as_deref() == Some(self.content))
    }

    fn requests(&self) -> impl Iterator<Item = &TrafficRow> {
        self.rows.iter().filter(|r| r.kind == RowKind::Request)
    }

    fn searches(&self) -> impl Iterator<Item = &TrafficRow> {
        self.requests()
            .filter(|r| r.interaction.starts_with("search"))
            .filter(|r| r.resource_type.as_deref() == Some(self.resource_type))
    }
}

/// A text in the service's three languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Text {
    pub fi: &'static str,
    pub sv: &'static str,
    pub en: &'static str,
}

impl Text {
    /// The text in `lang` (`fi`, `sv`; anything else is English).
    pub fn get(&self, lang: &str) -> &'static str {
        match lang {
            "fi" => self.fi,
            "sv" => self.sv,
            _ => self.en,
        }
    }
}

/// One acceptance check.
pub struct Check {
    pub id: &'static str,
    pub title: Text,
    /// Why it matters.
    pub rationale: Text,
    /// The Kanta rule it comes from (as the specifications say it, in English).
    pub kanta_rule: &'static str,
    pub judge: fn(&Observed<'_>) -> Verdict,
}

/// What a check found: failing rows (the examples), or why it could not pass.
pub struct Verdict {
    pub failing: Vec<TrafficRow>,
    /// Set when there was nothing to judge: the check is not yet observed.
    pub missing: Option<Text>,
}

impl Verdict {
    fn of(failing: Vec<TrafficRow>) -> Verdict {
        Verdict {
            failing,
            missing: None,
        }
    }

    fn not_observed(missing: Text) -> Verdict {
        Verdict {
            failing: Vec::new(),
            missing: Some(missing),
        }
    }
}

/// A `_count` above this is a huge page: the application should page with the server's
/// `next` links instead (it is also the server's default largest page).
pub const LARGEST_COUNT: u64 = 1000;

/// After the first 401 on a withdrawn grant (or a revoked token), at most this many more
/// calls with that grant; after a 429, at most this many more throttled calls in a row.
pub const RETRIES_ALLOWED: usize = 3;

/// Every check, in the order a report lists them.
pub static CHECKS: &[Check] = &[
    Check {
        id: "valid-resources",
        title: Text {
            fi: "Jokainen kirjoitettu resurssi on ilmoittamansa profiilin mukainen",
            sv: "Varje skriven resurs är giltig enligt den profil den anger",
            en: "Every resource written is valid against the profile it claims",
        },
        rationale: Text {
            fi: "Kanta validoi jokaisen resurssin ilmoitettua suomalaista PHR-profiilia vasten ja hylkää ne, jotka eivät ole sen mukaisia; virheellistä tietoa lähettävä sovellus menettää tiedon.",
            sv: "Kanta validerar varje resurs mot den angivna finländska PHR-profilen och avvisar dem som inte överensstämmer; en applikation som skickar ogiltiga data förlorar dem.",
            en: "Kanta validates every resource against its declared Finnish PHR profile and rejects the ones that do not conform; an application that sends invalid data loses it.",
        },
        kanta_rule: "Profile declaration mandatory; the server validates against the declared profile and rejects non-conforming content (language, narrative, urn:uuid identifier, creatingApplication included)",
        judge: valid_resources,
    },
    Check {
        id: "conditional-create",
        title: Text {
            fi: "Luonnit ovat ehdollisia liiketoimintatunnisteen perusteella",
            sv: "Skapanden är villkorade av affärsidentifieraren",
            en: "Creates are conditional on the business identifier",
        },
        rationale: Text {
            fi: "Tiedonsiirtohäiriön jälkeen sovellus ei voi tietää, onnistuiko luonti; If-None-Exist: identifier=… tekee uudelleenlähetyksestä turvallisen.",
            sv: "Efter ett kommunikationsfel kan applikationen inte veta om skapandet lyckades; If-None-Exist: identifier=… gör det säkert att skicka på nytt.",
            en: "After a communication failure the application cannot know whether a create succeeded; If-None-Exist: identifier=… makes resending safe.",
        },
        kanta_rule: "Business identifier mandatory and globally unique (urn:ietf:rfc:3986 + urn:uuid) so that clients can check whether a create succeeded (conditional create by identifier)",
        judge: conditional_create,
    },
    Check {
        id: "no-duplicates",
        title: Text {
            fi: "Mitään resurssia ei luoda kahdesti",
            sv: "Ingen resurs skapas två gånger",
            en: "No resource is created twice",
        },
        rationale: Text {
            fi: "Tunneittaisen synkronoinnin toistaminen ei saa muuttaa mitään: kahdesti tallennettu mittaus näkyy kahdesti kansalaiselle ja ammattilaisille.",
            sv: "Den timvisa synkroniseringen ska kunna upprepas utan verkan: en mätning som lagras två gånger syns två gånger för medborgaren och för yrkesutbildade personer.",
            en: "Repeated hourly sync must be idempotent: the same measurement stored twice shows twice to the citizen and to professionals.",
        },
        kanta_rule: "Conditional create by identifier: a resource with a known identifier is not created again",
        judge: no_duplicates,
    },
    Check {
        id: "bundle-limit",
        title: Text {
            fi: "Bundlet pysyvät merkintärajan sisällä",
            sv: "Bundlar håller sig inom gränsen för antalet poster",
            en: "Bundles stay within the entry limit",
        },
        rationale: Text {
            fi: "Rajan ylittävät erät hylätään kokonaan; sovelluksen on jaettava synkronointinsa osiin.",
            sv: "Batcher över gränsen avvisas i sin helhet; applikationen måste dela upp sin synkronisering.",
            en: "Batches over the limit are refused whole; the application must split its sync.",
        },
        kanta_rule: "Batch and transaction Bundles of at most the configured number of entries (300 in Kanta practice)",
        judge: bundle_limit,
    },
    Check {
        id: "hourly-budget",
        title: Text {
            fi: "Pyynnöt pysyvät tuntikohtaisessa kiintiössä",
            sv: "Anropen håller sig inom timbudgeten",
            en: "Requests stay within the hourly budget",
        },
        rationale: Text {
            fi: "Tiedot synkronoidaan kerran tunnissa; kiintiönsä ylittävää sovellusta rajoitetaan (429), ja sen on hidastettava.",
            sv: "Data synkroniseras en gång i timmen; en applikation som överskrider sin budget stryps (429) och måste vänta.",
            en: "Data is synchronised once an hour; an application over its request budget is throttled (429) and must back off.",
        },
        kanta_rule: "New data is updated into Kanta PHR from the application every hour; request budgets per application and citizen",
        judge: hourly_budget,
    },
    Check {
        id: "search-patient",
        title: Text {
            fi: "Haut sisältävät patient-parametrin",
            sv: "Sökningar anger patient",
            en: "Searches carry patient",
        },
        rationale: Text {
            fi: "Jokainen kansalaisen tietojen haku rajataan yhteen osastoon (compartment); haku ilman patient-parametria hylätään.",
            sv: "Varje sökning i medborgarens data begränsas till ett fack (compartment); en sökning utan patient avvisas.",
            en: "Every search of the citizen's data is confined to one compartment; a search without patient is refused.",
        },
        kanta_rule: "Searching Observation, MedicationAdministration, QuestionnaireResponse and CarePlan needs the patient parameter",
        judge: search_patient,
    },
    Check {
        id: "search-paging",
        title: Text {
            fi: "Haut sivutetaan next-linkeillä loppuun asti eikä valtavilla _count-arvoilla",
            sv: "Sökningar bläddras med next-länkar till slutet, inte med enorma _count",
            en: "Searches page with next links to the end, not with huge _counts",
        },
        rationale: Text {
            fi: "Palvelin rajaa sivun koon; sovellus, joka pyytää valtavan sivun eikä seuraa next-linkkiä, menettää tulokset ensimmäisen sivun jälkeen.",
            sv: "Servern begränsar sidstorleken; en applikation som begär en enorm sida och inte följer next-länken förlorar resultaten efter första sidan.",
            en: "The server caps the page size; an application that asks for a huge page and does not follow the next link loses every result after the first page.",
        },
        kanta_rule: "Searchset Bundles carry link[next] (HAPI paging); clients follow next links rather than rely on one page",
        judge: search_paging,
    },
    Check {
        id: "token-refresh",
        title: Text {
            fi: "Tunnisteet uusitaan ennen vanhenemista tai sen hetkellä",
            sv: "Token förnyas före eller vid utgången",
            en: "Tokens are refreshed before or on expiry",
        },
        rationale: Text {
            fi: "Pääsytunniste on lyhytikäinen; tunneittain synkronoiva sovellus uusii sen refresh tokenilla eikä kutsu palvelua vanhentuneella tunnisteella.",
            sv: "Åtkomsttoken är kortlivad; en applikation som synkroniserar varje timme förnyar den med sin refresh token och anropar inte tjänsten med en utgången token.",
            en: "Access tokens are short-lived; an application that synchronises every hour renews them with its refresh token and never calls with an expired one.",
        },
        kanta_rule: "OAuth 2.0 authorization code flow with refresh tokens (offline access); an expired access token is refused with 401",
        judge: token_refresh,
    },
    Check {
        id: "withdrawn-grant",
        title: Text {
            fi: "Peruttua suostumusta ei käytetä: 401 käsitellään ilman toistokierrettä",
            sv: "Ett återkallat samtycke används inte: 401 hanteras utan upprepningsstorm",
            en: "A withdrawn grant is not used: 401 is handled without a retry storm",
        },
        rationale: Text {
            fi: "Kansalainen voi perua sovelluksen oikeudet milloin tahansa; sovelluksen on lopetettava kutsut tai pyydettävä uusi suostumus, ei toistettava hylättyä kutsua.",
            sv: "Medborgaren kan när som helst återkalla applikationens rättigheter; applikationen ska sluta anropa eller be om nytt samtycke, inte upprepa det avvisade anropet.",
            en: "The citizen may withdraw the application's rights at any time; the application must stop or ask for consent again, not repeat the refused call.",
        },
        kanta_rule: "The citizen grants and withdraws application rights in My Kanta; tokens issued under a withdrawn grant are refused",
        judge: withdrawn_grant,
    },
    Check {
        id: "delete-own",
        title: Text {
            fi: "Sovellus poistaa vain itse luomaansa tietoa",
            sv: "Applikationen raderar bara data som den själv har skapat",
            en: "The application deletes only what it created",
        },
        rationale: Text {
            fi: "Tiedon saa poistaa vain sen tallentanut sovellus tai kansalainen itse; muiden tietojen poistoyritys kertoo virheellisestä synkronointilogiikasta.",
            sv: "Data får raderas bara av applikationen som lagrade den eller av medborgaren själv; ett försök att radera andras data tyder på en felaktig synkroniseringslogik.",
            en: "Only the application that stored data, or the citizen, may delete it; an attempt to delete anything else shows a faulty sync logic.",
        },
        kanta_rule: "Deletion is restricted to the creating application (creatingApplication) or the citizen",
        judge: delete_own,
    },
    Check {
        id: "rejected-resend",
        title: Text {
            fi: "Hylättyä tietoa ei lähetetä silmukassa uudelleen (422, 412, 429)",
            sv: "Avvisade data skickas inte om i en slinga (422, 412, 429)",
            en: "Rejected data is not resent in a loop (422, 412, 429)",
        },
        rationale: Text {
            fi: "Hylätty resurssi hylätään uudelleen; sovelluksen on korjattava se tai lopetettava, ja rajoitettuna (429) odotettava.",
            sv: "En avvisad resurs avvisas igen; applikationen måste rätta den eller sluta, och vänta när den stryps (429).",
            en: "A refused resource is refused again; the application must correct it or stop, and wait when throttled (429).",
        },
        kanta_rule: "Non-conforming content is rejected with an OperationOutcome (422); version conflicts answer 412; request budgets answer 429",
        judge: rejected_resend,
    },
];

fn valid_resources(o: &Observed<'_>) -> Verdict {
    let written: Vec<&TrafficRow> = o.resources().collect();
    let failing: Vec<TrafficRow> = written
        .iter()
        .filter(|r| r.status == 422)
        .map(|r| (*r).clone())
        .collect();
    if failing.is_empty() && !written.iter().any(|r| (200..300).contains(&r.status)) {
        return Verdict::not_observed(Text {
            fi: "jaksolla ei tallennettu yhtään tämän tietosisällön resurssia",
            sv: "ingen resurs med detta datainnehåll lagrades under perioden",
            en: "no resource of this content was stored in the period",
        });
    }
    Verdict::of(failing)
}

fn conditional_create(o: &Observed<'_>) -> Verdict {
    let creates: Vec<&TrafficRow> = o
        .resources()
        .filter(|r| r.interaction == "create")
        .collect();
    if creates.is_empty() {
        return Verdict::not_observed(Text {
            fi: "jaksolla ei havaittu yhtään tämän tietosisällön luontia",
            sv: "inget skapande av detta datainnehåll observerades under perioden",
            en: "no create of this content was observed in the period",
        });
    }
    Verdict::of(
        creates
            .into_iter()
            .filter(|r| r.detail.get("conditional").and_then(Value::as_bool) != Some(true))
            .cloned()
            .collect(),
    )
}

fn no_duplicates(o: &Observed<'_>) -> Verdict {
    let mut seen = std::collections::HashSet::new();
    Verdict::of(
        o.resources()
            .filter(|r| r.status == 201)
            .filter(|r| {
                r.detail
                    .get("identifier")
                    .and_then(Value::as_str)
                    .is_some_and(|id| !seen.insert(id.to_string()))
            })
            .cloned()
            .collect(),
    )
}

fn bundle_limit(o: &Observed<'_>) -> Verdict {
    Verdict::of(
        o.requests()
            .filter(|r| matches!(r.interaction.as_str(), "batch" | "transaction"))
            .filter(|r| r.status == 413)
            .cloned()
            .collect(),
    )
}

fn hourly_budget(o: &Observed<'_>) -> Verdict {
    Verdict::of(o.requests().filter(|r| r.status == 429).cloned().collect())
}

fn search_patient(o: &Observed<'_>) -> Verdict {
    Verdict::of(
        o.searches()
            .filter(|r| r.detail.get("patient").and_then(Value::as_bool) == Some(false))
            .cloned()
            .collect(),
    )
}

/// A search asking a page over [`LARGEST_COUNT`], or answered with a `next` link that no
/// later request followed (the record keeps a digest of each link's cursor and of the
/// cursor a paging request sent, never the search's values).
fn search_paging(o: &Observed<'_>) -> Verdict {
    let searches: Vec<&TrafficRow> = o.searches().collect();
    let followed: std::collections::HashSet<&str> = o
        .requests()
        .filter_map(|r| r.detail.get("page").and_then(Value::as_str))
        .collect();
    Verdict::of(
        searches
            .into_iter()
            .filter(|r| {
                let huge = r
                    .detail
                    .get("count")
                    .and_then(Value::as_u64)
                    .is_some_and(|count| count > LARGEST_COUNT);
                let abandoned = r
                    .detail
                    .get("next")
                    .and_then(Value::as_str)
                    .is_some_and(|next| !followed.contains(next));
                huge || abandoned
            })
            .cloned()
            .collect(),
    )
}

/// How a bearer token was refused (`expired`, `revoked`, `withdrawn`), when it was ours.
fn refusal(row: &TrafficRow) -> Option<&str> {
    (row.status == 401)
        .then(|| row.detail.get("auth").and_then(Value::as_str))
        .flatten()
}

fn token_refresh(o: &Observed<'_>) -> Verdict {
    let expired: Vec<TrafficRow> = o
        .requests()
        .filter(|r| refusal(r) == Some("expired"))
        .cloned()
        .collect();
    let refreshed = o
        .requests()
        .any(|r| r.interaction == "token:refresh_token" && r.status == 200);
    if expired.is_empty() && !refreshed {
        return Verdict::not_observed(Text {
            fi: "jaksolla ei havaittu refresh token -uusintaa",
            sv: "ingen förnyelse med refresh token observerades under perioden",
            en: "no refresh-token grant was observed in the period",
        });
    }
    Verdict::of(expired)
}

/// After the first call refused because its grant was withdrawn (or its token revoked):
/// at most [`RETRIES_ALLOWED`] more calls under that grant. With a probe, only the calls
/// since it started count, and without any such call the check is not yet observed.
fn withdrawn_grant(o: &Observed<'_>) -> Verdict {
    let since = o.probe_since.unwrap_or(i64::MIN);
    let after: Vec<&TrafficRow> = o.requests().filter(|r| r.at_us >= since).collect();
    let refused: Vec<&TrafficRow> = after
        .iter()
        .copied()
        .filter(|r| matches!(refusal(r), Some("withdrawn" | "revoked")))
        .collect();
    if refused.is_empty() {
        return match o.probe_since {
            Some(_) if !after.is_empty() => Verdict::of(Vec::new()),
            Some(_) => Verdict::not_observed(Text {
                fi: "ei vielä havaittu: sovellus ei ole kutsunut palvelua koetuksen alkamisen jälkeen",
                sv: "ännu inte observerat: applikationen har inte anropat tjänsten sedan testet startade",
                en: "not yet observed: the application has made no call since the probe started",
            }),
            None => Verdict::not_observed(Text {
                fi: "ei vielä havaittu: käynnistä koetus, joka peruu sovelluksen testisuostumukset (phr app probe APP --start tai konsolin painike)",
                sv: "ännu inte observerat: starta testet som återkallar applikationens testsamtycken (phr app probe APP --start eller knappen i konsolen)",
                en: "not yet observed: start the probe that withdraws the application's test grants (phr app probe APP --start, or the console's button)",
            }),
        };
    }
    let mut per_grant: std::collections::HashMap<&str, Vec<&TrafficRow>> =
        std::collections::HashMap::new();
    for row in refused {
        let grant = row
            .detail
            .get("grant")
            .and_then(Value::as_str)
            .unwrap_or("");
        per_grant.entry(grant).or_default().push(row);
    }
    let mut failing: Vec<TrafficRow> = per_grant
        .into_values()
        .filter(|calls| calls.len() > RETRIES_ALLOWED + 1)
        .flat_map(|calls| calls.into_iter().skip(1).cloned().collect::<Vec<_>>())
        .collect();
    failing.sort_by_key(|r| r.at_us);
    Verdict::of(failing)
}

fn delete_own(o: &Observed<'_>) -> Verdict {
    Verdict::of(
        o.requests()
            .filter(|r| r.interaction == "delete" && r.status == 403)
            .cloned()
            .collect(),
    )
}

/// The same refused body (422, 412; by digest, never the body) sent again, or more than
/// [`RETRIES_ALLOWED`] calls in a row after a 429.
fn rejected_resend(o: &Observed<'_>) -> Verdict {
    let mut refused = std::collections::HashSet::new();
    let mut failing: Vec<TrafficRow> = o
        .resources()
        .filter(|r| matches!(r.status, 412 | 422))
        .filter(|r| {
            r.detail
                .get("body_hash")
                .and_then(Value::as_str)
                .is_some_and(|hash| !refused.insert(hash.to_string()))
        })
        .cloned()
        .collect();
    let mut run = 0;
    for request in o
        .requests()
        .filter(|r| !r.interaction.starts_with("token:"))
    {
        if request.status == 429 {
            run += 1;
            if run > RETRIES_ALLOWED + 1 {
                failing.push(request.clone());
            }
        } else {
            run = 0;
        }
    }
    failing.sort_by_key(|r| r.at_us);
    Verdict::of(failing)
}

/// At most this many examples per failed check.
const EXAMPLES: usize = 5;

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Passed,
    Failed,
    /// Nothing to judge yet: not a pass.
    NotObserved,
}

/// The result of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub id: &'static str,
    /// In English; [`CheckResult::title_in`] for the others.
    pub title: &'static str,
    pub rationale: &'static str,
    pub kanta_rule: &'static str,
    pub passed: bool,
    pub state: State,
    /// How many requests or resources failed it.
    pub failures: usize,
    /// Why the check is not yet observed (English).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// Up to five failing requests or resources.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<TrafficRow>,
    #[serde(skip)]
    texts: (Text, Text, Option<Text>),
}

impl CheckResult {
    pub fn title_in(&self, lang: &str) -> &'static str {
        self.texts.0.get(lang)
    }
    pub fn rationale_in(&self, lang: &str) -> &'static str {
        self.texts.1.get(lang)
    }
    pub fn reason_in(&self, lang: &str) -> Option<&'static str> {
        self.texts.2.map(|t| t.get(lang))
    }
}

/// The acceptance report of one application and data content.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub app_id: String,
    pub content: String,
    /// The period observed (microseconds since the epoch).
    pub since_us: i64,
    pub until_us: i64,
    /// When the withdrawn-grant probe last started, if ever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_started_us: Option<i64>,
    pub requests: usize,
    pub resources: usize,
    pub passed: bool,
    pub checks: Vec<CheckResult>,
}

/// Runs every check over the rows of `app_id`.
pub fn report(app_id: &str, observed: &Observed<'_>, since_us: i64, until_us: i64) -> Report {
    let checks: Vec<CheckResult> = CHECKS
        .iter()
        .map(|check| {
            let verdict = (check.judge)(observed);
            let state = if !verdict.failing.is_empty() {
                State::Failed
            } else if verdict.missing.is_some() {
                State::NotObserved
            } else {
                State::Passed
            };
            CheckResult {
                id: check.id,
                title: check.title.en,
                rationale: check.rationale.en,
                kanta_rule: check.kanta_rule,
                passed: state == State::Passed,
                state,
                failures: verdict.failing.len(),
                reason: verdict.missing.map(|t| t.en),
                examples: verdict.failing.into_iter().take(EXAMPLES).collect(),
                texts: (check.title, check.rationale, verdict.missing),
            }
        })
        .collect();
    Report {
        app_id: app_id.to_string(),
        content: observed.content.to_string(),
        since_us,
        until_us,
        probe_started_us: observed.probe_since,
        requests: observed.requests().count(),
        resources: observed.resources().count(),
        passed: checks.iter().all(|c| c.passed),
        checks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: RowKind, interaction: &str, status: u16, detail: Value) -> TrafficRow {
        TrafficRow {
            app_id: "a".into(),
            at_us: 1,
            kind,
            interaction: interaction.into(),
            resource_type: Some("Observation".into()),
            status,
            content: (kind == RowKind::Resource).then(|| "steps".to_string()),
            detail,
        }
    }

    fn at(mut row: TrafficRow, at_us: i64) -> TrafficRow {
        row.at_us = at_us;
        row
    }

    fn judged(rows: &[TrafficRow], probe_since: Option<i64>) -> Report {
        let observed = Observed {
            content: "steps",
            resource_type: "Observation",
            rows,
            probe_since,
        };
        report("a", &observed, 0, 2)
    }

    fn failed(rows: &[TrafficRow]) -> Vec<&'static str> {
        judged(rows, None)
            .checks
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| c.id)
            .collect()
    }

    fn state(rows: &[TrafficRow], probe: Option<i64>, id: &str) -> State {
        judged(rows, probe)
            .checks
            .into_iter()
            .find(|c| c.id == id)
            .map(|c| c.state)
            .unwrap()
    }

    fn refused(reason: &str, grant: &str, at_us: i64) -> TrafficRow {
        at(
            row(
                RowKind::Request,
                "request",
                401,
                serde_json::json!({"auth": reason, "grant": grant}),
            ),
            at_us,
        )
    }

    fn good() -> Vec<TrafficRow> {
        vec![
            row(
                RowKind::Request,
                "batch",
                200,
                serde_json::json!({"entries": 2}),
            ),
            row(
                RowKind::Resource,
                "create",
                201,
                serde_json::json!({"conditional": true, "identifier": "urn:uuid:1"}),
            ),
            row(
                RowKind::Resource,
                "create",
                200,
                serde_json::json!({"conditional": true, "identifier": "urn:uuid:1"}),
            ),
            row(
                RowKind::Request,
                "search-type",
                200,
                serde_json::json!({"patient": true, "count": 50, "next": "c1"}),
            ),
            row(
                RowKind::Request,
                "search-type",
                200,
                serde_json::json!({"patient": true, "page": "c1"}),
            ),
            row(RowKind::Request, "token:refresh_token", 200, Value::Null),
            refused("withdrawn", "g1", 5),
            at(
                row(RowKind::Request, "token:refresh_token", 400, Value::Null),
                6,
            ),
            at(row(RowKind::Request, "read", 200, Value::Null), 7),
        ]
    }

    #[test]
    fn a_careful_client_passes_and_each_misstep_fails_its_check() {
        assert!(failed(&good()).is_empty(), "{:?}", failed(&good()));
        let mut bad = vec![
            row(
                RowKind::Resource,
                "create",
                201,
                serde_json::json!({"conditional": false, "identifier": "urn:uuid:2"}),
            ),
            row(
                RowKind::Resource,
                "create",
                201,
                serde_json::json!({"conditional": false, "identifier": "urn:uuid:2"}),
            ),
            row(
                RowKind::Resource,
                "create",
                422,
                serde_json::json!({"conditional": true, "body_hash": "h"}),
            ),
            row(
                RowKind::Resource,
                "create",
                422,
                serde_json::json!({"conditional": true, "body_hash": "h"}),
            ),
            row(
                RowKind::Request,
                "batch",
                413,
                serde_json::json!({"entries": 400}),
            ),
            row(RowKind::Request, "create", 429, serde_json::json!({})),
            row(
                RowKind::Request,
                "search-type",
                400,
                serde_json::json!({"patient": false}),
            ),
            row(
                RowKind::Request,
                "search-type",
                200,
                serde_json::json!({"patient": true, "count": 20000, "next": "c9"}),
            ),
            refused("expired", "g1", 1),
            row(RowKind::Request, "delete", 403, Value::Null),
        ];
        bad.extend((0..5).map(|i| refused("withdrawn", "g2", 10 + i)));
        assert_eq!(
            failed(&bad),
            [
                "valid-resources",
                "conditional-create",
                "no-duplicates",
                "bundle-limit",
                "hourly-budget",
                "search-patient",
                "search-paging",
                "token-refresh",
                "withdrawn-grant",
                "delete-own",
                "rejected-resend"
            ]
        );
        let none: Vec<State> = judged(&[], None).checks.iter().map(|c| c.state).collect();
        assert_eq!(
            failed(&[]),
            [
                "valid-resources",
                "conditional-create",
                "token-refresh",
                "withdrawn-grant"
            ],
            "no evidence"
        );
        assert!(
            none.iter()
                .all(|s| matches!(s, State::Passed | State::NotObserved)),
            "nothing observed is never a failure: {none:?}"
        );
    }

    #[test]
    fn a_probe_without_later_traffic_is_not_yet_observed_never_passed() {
        let before = vec![at(row(RowKind::Request, "read", 200, Value::Null), 5)];
        assert_eq!(
            state(&before, Some(10), "withdrawn-grant"),
            State::NotObserved
        );
        let report = judged(&before, Some(10));
        let check = report
            .checks
            .iter()
            .find(|c| c.id == "withdrawn-grant")
            .unwrap();
        assert!(check.reason.unwrap().starts_with("not yet observed"));
        assert!(check.reason_in("fi").unwrap().starts_with("ei vielä"));
        assert!(!report.passed);
        // A storm before the probe does not count against the calls since.
        let mut rows: Vec<TrafficRow> = (0..6).map(|i| refused("withdrawn", "g0", i)).collect();
        rows.push(refused("withdrawn", "g1", 11));
        rows.push(at(row(RowKind::Request, "read", 200, Value::Null), 12));
        assert_eq!(state(&rows, Some(10), "withdrawn-grant"), State::Passed);
        assert_eq!(state(&rows, None, "withdrawn-grant"), State::Failed);
        // Re-authorising counts per grant: three retries are allowed, the fifth call fails.
        let retries: Vec<TrafficRow> = (0..4).map(|i| refused("revoked", "g1", 20 + i)).collect();
        assert_eq!(state(&retries, Some(10), "withdrawn-grant"), State::Passed);
        let storm: Vec<TrafficRow> = (0..5).map(|i| refused("revoked", "g1", 20 + i)).collect();
        let report = judged(&storm, Some(10));
        let check = report
            .checks
            .iter()
            .find(|c| c.id == "withdrawn-grant")
            .unwrap();
        assert_eq!((check.state, check.failures), (State::Failed, 4));
        assert_eq!(check.examples.first().map(|r| r.at_us), Some(21));
    }

    #[test]
    fn paging_counts_a_link_followed_only_by_its_own_cursor() {
        let search = |detail: Value| row(RowKind::Request, "search-type", 200, detail);
        let unfollowed = [
            search(serde_json::json!({"patient": true, "next": "c1"})),
            search(serde_json::json!({"patient": true, "page": "c2"})),
        ];
        assert_eq!(
            state(&unfollowed, None, "search-paging"),
            State::Failed,
            "another cursor does not follow this one"
        );
        let followed = [
            search(serde_json::json!({"patient": true, "next": "c1", "count": 1000})),
            search(serde_json::json!({"patient": true, "page": "c1"})),
        ];
        assert_eq!(state(&followed, None, "search-paging"), State::Passed);
    }

    #[test]
    fn resending_a_different_body_after_a_refusal_is_fine_and_short_throttling_too() {
        let refused_body = |hash: &str| {
            row(
                RowKind::Resource,
                "create",
                422,
                serde_json::json!({"body_hash": hash}),
            )
        };
        assert_eq!(
            state(
                &[refused_body("a"), refused_body("b")],
                None,
                "rejected-resend"
            ),
            State::Passed
        );
        let throttled = |n: usize| -> Vec<TrafficRow> {
            (0..n)
                .map(|_| row(RowKind::Request, "read", 429, Value::Null))
                .collect()
        };
        assert_eq!(state(&throttled(4), None, "rejected-resend"), State::Passed);
        assert_eq!(state(&throttled(5), None, "rejected-resend"), State::Failed);
    }

    #[test]
    fn every_check_speaks_three_languages() {
        for check in CHECKS {
            for text in [check.title, check.rationale] {
                assert!(
                    !text.fi.is_empty() && !text.sv.is_empty() && !text.en.is_empty(),
                    "{}",
                    check.id
                );
                assert!(text.fi != text.en && text.sv != text.en, "{}", check.id);
            }
        }
        let ids: std::collections::HashSet<&str> = CHECKS.iter().map(|c| c.id).collect();
        assert_eq!(ids.len(), CHECKS.len(), "ids are unique");
    }
}
