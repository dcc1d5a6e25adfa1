//! Page language and the words pages share: which language a page is shown in (`?lang=` or
//! `?ui_locales=`, remembered in a cookie; then the cookie; then `Accept-Language`; then
//! Finnish), and the display names of data contents (resource types, categories) and of the
//! rights a scope gives, used on the consent page and in the portal's list of applications.
//!
//! Data, not code: each name is one row of a table with its Finnish, Swedish and English
//! forms. The names are a small built-in list until the catalogue publishes display names.

use axum::http::{HeaderMap, header};
use axum::response::Response;
use phr_auth::ScopeSet;
use serde::{Deserialize, Serialize};

use super::Cookies;

/// The cookie remembering a chosen language.
pub const COOKIE: &str = "phr_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Fi,
    Sv,
    En,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::Fi, Lang::Sv, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Fi => "fi",
            Lang::Sv => "sv",
            Lang::En => "en",
        }
    }

    pub fn parse(text: &str) -> Option<Lang> {
        match text.trim().to_ascii_lowercase().as_str() {
            "fi" | "fi-fi" => Some(Lang::Fi),
            "sv" | "sv-fi" | "sv-se" => Some(Lang::Sv),
            "en" | "en-gb" | "en-us" => Some(Lang::En),
            _ => None,
        }
    }

    /// The first supported language of an `Accept-Language` header.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        header
            .split(',')
            .filter_map(|part| part.split(';').next())
            .find_map(|tag| {
                let tag = tag.trim();
                Lang::parse(tag).or_else(|| tag.split('-').next().and_then(Lang::parse))
            })
    }

    /// The language's own name, for the switch.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::Fi => "Suomeksi",
            Lang::Sv => "På svenska",
            Lang::En => "In English",
        }
    }
}

/// Which language a page is shown in, and whether the request chose it (then it is
/// remembered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLang {
    pub lang: Lang,
    pub chosen: bool,
}

impl PageLang {
    /// The language of a request with `query` parameters and `headers`.
    pub fn of(query: &[(String, String)], headers: &HeaderMap, cookies: Cookies) -> PageLang {
        let chosen = query
            .iter()
            .filter(|(k, _)| k == "lang" || k == "ui_locales")
            .find_map(|(_, v)| v.split_whitespace().find_map(Lang::parse));
        let lang = chosen
            .or_else(|| cookies.read(headers, COOKIE).and_then(Lang::parse))
            .or_else(|| {
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Lang::from_accept_language)
            })
            .unwrap_or_default();
        PageLang {
            lang,
            chosen: chosen.is_some(),
        }
    }

    /// Remembers a chosen language in a cookie for a year.
    pub fn remember(&self, cookies: Cookies, response: &mut Response) {
        if self.chosen {
            cookies.add(response, COOKIE, self.lang.code(), 365 * 24 * 3600);
        }
    }
}

fn pick(names: &[&'static str; 3], lang: Lang) -> &'static str {
    let [fi, sv, en] = *names;
    match lang {
        Lang::Fi => fi,
        Lang::Sv => sv,
        Lang::En => en,
    }
}

/// Display names of resource types (data contents) as [fi, sv, en].
const RESOURCE_NAMES: &[(&str, [&str; 3])] = &[
    (
        "Observation",
        [
            "Mittaus- ja havaintotiedot (esim. verenpaine, paino, verensokeri, askeleet)",
            "Mät- och observationsuppgifter (t.ex. blodtryck, vikt, blodsocker, steg)",
            "Measurements and observations (e.g. blood pressure, weight, blood glucose, steps)",
        ],
    ),
    (
        "MedicationAdministration",
        [
            "Lääkkeen annostelu (insuliini)",
            "Läkemedelsdosering (insulin)",
            "Medication dosing (insulin)",
        ],
    ),
    (
        "QuestionnaireResponse",
        ["Kyselyvastaukset", "Enkätsvar", "Questionnaire answers"],
    ),
    ("Questionnaire", ["Kyselyt", "Enkäter", "Questionnaires"]),
    (
        "CarePlan",
        [
            "Hoito- ja hyvinvointisuunnitelmat",
            "Vård- och välbefinnandeplaner",
            "Care and wellbeing plans",
        ],
    ),
    ("Goal", ["Tavoitteet", "Mål", "Goals"]),
    (
        "Patient",
        [
            "Käyttäjätunniste (ei nimeä eikä henkilötunnusta)",
            "Användaridentifierare (inget namn eller personbeteckning)",
            "User identifier (no name or identity code)",
        ],
    ),
    (
        "AuditEvent",
        [
            "Tietojesi käsittelyn loki",
            "Logg över behandlingen av dina uppgifter",
            "Log of the use of your data",
        ],
    ),
    ("Consent", ["Suostumukset", "Samtycken", "Consents"]),
];

/// Display names of observation categories as [fi, sv, en].
const CATEGORY_NAMES: &[(&str, [&str; 3])] = &[
    (
        "vital-signs",
        ["Elintoiminnot", "Vitala funktioner", "Vital signs"],
    ),
    ("activity", ["Liikunta", "Motion", "Activity"]),
    (
        "laboratory",
        ["Laboratoriotulokset", "Laboratorieresultat", "Laboratory"],
    ),
    ("survey", ["Kyselyt", "Enkäter", "Survey"]),
    ("exam", ["Tutkimukset", "Undersökningar", "Exam"]),
    ("social-history", ["Elintavat", "Levnadsvanor", "Lifestyle"]),
];

/// What "all data", "read" and "write" are called, as [fi, sv, en].
const ALL_DATA: [&str; 3] = [
    "Kaikki hyvinvointitietosi",
    "Alla dina välbefinnandeuppgifter",
    "All your wellbeing data",
];
const READ: [&str; 3] = ["lukea", "läsa", "read"];
const WRITE: [&str; 3] = [
    "tallentaa, muuttaa ja poistaa omia tallennuksiaan",
    "spara, ändra och radera sina egna sparade uppgifter",
    "save, change and delete what it has saved",
];

/// The display name of a resource type, or the type itself when unknown.
pub fn resource_name(resource_type: &str, lang: Lang) -> String {
    RESOURCE_NAMES
        .iter()
        .find(|(t, _)| *t == resource_type)
        .map(|(_, names)| pick(names, lang).to_owned())
        .unwrap_or_else(|| resource_type.to_owned())
}

/// The display name of a category code, or the code when unknown.
pub fn category_name(code: &str, lang: Lang) -> String {
    CATEGORY_NAMES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, names)| pick(names, lang).to_owned())
        .unwrap_or_else(|| code.to_owned())
}

/// One resource scope in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeItem {
    /// The data content ("Measurements and observations …", or all data).
    pub data: String,
    /// What may be done with it ("read, save, change …").
    pub rights: String,
    /// The categories a granular scope is limited to, if any.
    pub categories: Option<String>,
}

/// The resource scopes of `scopes`, in order, in words.
pub fn scope_items(scopes: &ScopeSet, lang: Lang) -> Vec<ScopeItem> {
    scopes
        .resource_scopes()
        .iter()
        .map(|scope| {
            let data = match &scope.resource_type {
                Some(rt) => resource_name(rt, lang),
                None => pick(&ALL_DATA, lang).to_owned(),
            };
            let mut rights = Vec::new();
            if scope.perms.reads() {
                rights.push(pick(&READ, lang));
            }
            if scope.perms.writes() {
                rights.push(pick(&WRITE, lang));
            }
            let categories = (!scope.filters.is_empty()).then(|| {
                scope
                    .filters
                    .iter()
                    .map(|f| category_name(&f.code, lang))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            ScopeItem {
                data,
                rights: rights.join(", "),
                categories,
            }
        })
        .collect()
}

/// What a grant's scope allows, per data content, in words: `(data, rights)` pairs such as
/// ("Mittaustiedot (Elintoiminnot)", "lukea, tallentaa"), for the portal's list of
/// applications.
pub fn scope_rights(scope: &str, lang: Lang) -> Vec<(String, String)> {
    let Ok(scopes) = ScopeSet::parse(scope) else {
        return Vec::new();
    };
    scope_items(&scopes, lang)
        .into_iter()
        .map(|item| match item.categories {
            Some(categories) => (format!("{} ({categories})", item.data), item.rights),
            None => (item.data, item.rights),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_first_supported() {
        assert_eq!(
            Lang::from_accept_language("de-DE,sv-FI;q=0.8,en;q=0.5"),
            Some(Lang::Sv)
        );
        assert_eq!(Lang::from_accept_language("en-AU"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("de"), None);
    }

    #[test]
    fn language_comes_from_the_query_then_the_cookie_then_the_browser() {
        use axum::http::HeaderValue;
        let cookies = Cookies::for_public_url("http://x");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("sv-FI,en"),
        );
        let query = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect()
        };
        assert_eq!(
            PageLang::of(&query(&[]), &headers, cookies),
            PageLang {
                lang: Lang::Sv,
                chosen: false
            }
        );
        headers.insert(header::COOKIE, HeaderValue::from_static("phr_lang=en"));
        assert_eq!(PageLang::of(&query(&[]), &headers, cookies).lang, Lang::En);
        assert_eq!(
            PageLang::of(&query(&[("ui_locales", "de fi")]), &headers, cookies),
            PageLang {
                lang: Lang::Fi,
                chosen: true
            }
        );
        assert_eq!(
            PageLang::of(&query(&[("lang", "xx")]), &HeaderMap::new(), cookies),
            PageLang {
                lang: Lang::Fi,
                chosen: false
            }
        );
    }

    #[test]
    fn scopes_read_as_data_and_rights() {
        let rights = scope_rights(
            "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs patient/*.cud",
            Lang::En,
        );
        assert_eq!(rights.len(), 2);
        assert!(rights[0].0.ends_with("(Vital signs)"), "{rights:?}");
        assert_eq!(rights[0].1, "read");
        assert_eq!(
            rights[1],
            (
                "All your wellbeing data".into(),
                "save, change and delete what it has saved".into()
            )
        );
    }

    #[test]
    fn names_fall_back_to_codes() {
        assert_eq!(
            resource_name("Observation", Lang::En).split(' ').next(),
            Some("Measurements")
        );
        assert_eq!(resource_name("Basic", Lang::Fi), "Basic");
        assert_eq!(category_name("vital-signs", Lang::Sv), "Vitala funktioner");
        assert_eq!(category_name("x", Lang::Sv), "x");
    }
}
