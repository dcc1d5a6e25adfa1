//! The words on the login, terms, consent and registration pages in Finnish, Swedish and
//! English, and the display names of data contents (resource types and categories).
//!
//! Data, not code: each language is one table. The data content names are a small built-in
//! list until the catalogue crate publishes its display names.

use serde::{Deserialize, Serialize};

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
                Lang::parse(tag).or_else(|| Lang::parse(tag.split('-').next().unwrap_or("")))
            })
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::Fi => &FI,
            Lang::Sv => &SV,
            Lang::En => &EN,
        }
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

pub struct Texts {
    pub service: &'static str,
    pub skip_to_content: &'static str,
    pub language: &'static str,
    pub sandbox_notice: &'static str,
    pub login_title: &'static str,
    pub login_intro: &'static str,
    pub hetu_label: &'static str,
    pub hetu_hint: &'static str,
    pub login_button: &'static str,
    pub hetu_invalid: &'static str,
    pub hetu_not_test: &'static str,
    pub under_age_title: &'static str,
    pub under_age_text: &'static str,
    pub terms_title: &'static str,
    pub terms_text: &'static str,
    pub terms_accept: &'static str,
    pub terms_decline: &'static str,
    pub consent_title: &'static str,
    pub consent_intro: &'static str,
    pub consent_read: &'static str,
    pub consent_write: &'static str,
    pub consent_all_data: &'static str,
    pub consent_category: &'static str,
    pub consent_offline: &'static str,
    pub consent_withdraw_note: &'static str,
    pub consent_allow: &'static str,
    pub consent_deny: &'static str,
    pub error_title: &'static str,
    pub session_expired: &'static str,
    pub request_invalid: &'static str,
    pub upstream_failed: &'static str,
    pub register_title: &'static str,
    pub register_intro: &'static str,
    pub register_name: &'static str,
    pub register_redirects: &'static str,
    pub register_redirects_hint: &'static str,
    pub register_scope: &'static str,
    pub register_client_type: &'static str,
    pub register_public: &'static str,
    pub register_confidential: &'static str,
    pub register_contact: &'static str,
    pub register_button: &'static str,
    pub registered_title: &'static str,
    pub registered_secret_note: &'static str,
    pub not_available: &'static str,
}

pub static FI: Texts = Texts {
    service: "Omatietovaranto",
    skip_to_content: "Siirry sisältöön",
    language: "Kieli",
    sandbox_notice: "Testiympäristö: käytä vain testihenkilötunnuksia (yksilönumero 900–999). Älä tallenna oikeita tietoja.",
    login_title: "Tunnistaudu",
    login_intro: "Tunnistaudu, jotta voit antaa sovellukselle oikeuden hyvinvointitietoihisi.",
    hetu_label: "Henkilötunnus",
    hetu_hint: "Muodossa PPKKVV-NNNT, esimerkiksi 010190-900P",
    login_button: "Tunnistaudu",
    hetu_invalid: "Henkilötunnus ei ole kelvollinen. Tarkista se.",
    hetu_not_test: "Testiympäristössä kelpaavat vain testihenkilötunnukset (yksilönumero 900–999).",
    under_age_title: "Palvelu on 16 vuotta täyttäneille",
    under_age_text: "Omatietovarannon voi ottaa käyttöön 16 vuotta täytettyään. Et voi vielä antaa sovelluksille oikeuksia tietoihisi.",
    terms_title: "Ota Omatietovaranto käyttöön",
    terms_text: "Omatietovarantoon tallennetaan hyvinvointitietoja, jotka itse tai antamallasi luvalla sovellukset tallentavat. Päätät itse, mitkä sovellukset saavat lukea ja tallentaa tietojasi, ja voit perua oikeudet milloin tahansa. Jokainen tietojesi käsittely kirjataan, ja näet kirjaukset itse.",
    terms_accept: "Hyväksyn käyttöehdot ja otan palvelun käyttöön",
    terms_decline: "En hyväksy",
    consent_title: "Anna sovellukselle oikeudet",
    consent_intro: "Sovellus pyytää oikeutta seuraaviin tietoihisi. Voit poistaa valinnan kohdista, joihin et anna oikeutta.",
    consent_read: "lukea",
    consent_write: "tallentaa, muuttaa ja poistaa omia tallennuksiaan",
    consent_all_data: "Kaikki hyvinvointitietosi",
    consent_category: "luokka",
    consent_offline: "Sovellus voi käyttää oikeuksia myös silloin, kun et käytä sovellusta, kunnes perut ne.",
    consent_withdraw_note: "Voit perua oikeudet milloin tahansa Omatietovarannossa.",
    consent_allow: "Anna oikeudet",
    consent_deny: "Älä anna oikeuksia",
    error_title: "Toimintoa ei voitu suorittaa",
    session_expired: "Istunto on vanhentunut. Palaa sovellukseen ja aloita uudelleen.",
    request_invalid: "Sovelluksen pyyntö ei ole kelvollinen.",
    upstream_failed: "Tunnistautuminen ei onnistunut. Yritä uudelleen.",
    register_title: "Rekisteröi testisovellus",
    register_intro: "Testiympäristön sovellukset toimivat vain testiympäristössä. Tuotantoon pääsy vaatii hyväksynnän.",
    register_name: "Sovelluksen nimi",
    register_redirects: "Paluuosoitteet (redirect URI)",
    register_redirects_hint: "Yksi osoite riville.",
    register_scope: "Oikeudet (scope)",
    register_client_type: "Asiakastyyppi",
    register_public: "Julkinen (PKCE, ei salaisuutta)",
    register_confidential: "Luottamuksellinen (client secret)",
    register_contact: "Yhteyshenkilön sähköposti",
    register_button: "Rekisteröi",
    registered_title: "Sovellus rekisteröity",
    registered_secret_note: "Tallenna salaisuus nyt: sitä ei näytetä uudelleen.",
    not_available: "Tämä toiminto ei ole käytössä tässä ympäristössä.",
};

pub static SV: Texts = Texts {
    service: "Egna datalagret",
    skip_to_content: "Gå till innehållet",
    language: "Språk",
    sandbox_notice: "Testmiljö: använd endast testpersonbeteckningar (individnummer 900–999). Spara inga riktiga uppgifter.",
    login_title: "Identifiera dig",
    login_intro: "Identifiera dig för att ge applikationen rätt till dina välbefinnandeuppgifter.",
    hetu_label: "Personbeteckning",
    hetu_hint: "I formen DDMMÅÅ-NNNK, till exempel 010190-900P",
    login_button: "Identifiera dig",
    hetu_invalid: "Personbeteckningen är inte giltig. Kontrollera den.",
    hetu_not_test: "I testmiljön godkänns endast testpersonbeteckningar (individnummer 900–999).",
    under_age_title: "Tjänsten är avsedd för personer som fyllt 16 år",
    under_age_text: "Du kan ta i bruk Egna datalagret när du har fyllt 16 år. Du kan ännu inte ge applikationer rätt till dina uppgifter.",
    terms_title: "Ta i bruk Egna datalagret",
    terms_text: "I Egna datalagret sparas välbefinnandeuppgifter som du själv eller applikationer med ditt tillstånd sparar. Du bestämmer själv vilka applikationer som får läsa och spara dina uppgifter och kan återkalla rättigheterna när som helst. All behandling av dina uppgifter loggas och du kan se loggarna.",
    terms_accept: "Jag godkänner användarvillkoren och tar tjänsten i bruk",
    terms_decline: "Jag godkänner inte",
    consent_title: "Ge applikationen rättigheter",
    consent_intro: "Applikationen begär rätt till följande uppgifter. Du kan avmarkera det du inte vill ge rätt till.",
    consent_read: "läsa",
    consent_write: "spara, ändra och radera sina egna sparade uppgifter",
    consent_all_data: "Alla dina välbefinnandeuppgifter",
    consent_category: "kategori",
    consent_offline: "Applikationen kan använda rättigheterna även när du inte använder den, tills du återkallar dem.",
    consent_withdraw_note: "Du kan återkalla rättigheterna när som helst i Egna datalagret.",
    consent_allow: "Ge rättigheter",
    consent_deny: "Ge inte rättigheter",
    error_title: "Åtgärden kunde inte utföras",
    session_expired: "Sessionen har gått ut. Gå tillbaka till applikationen och börja om.",
    request_invalid: "Applikationens begäran är inte giltig.",
    upstream_failed: "Identifieringen misslyckades. Försök igen.",
    register_title: "Registrera en testapplikation",
    register_intro: "Testmiljöns applikationer fungerar endast i testmiljön. Produktion kräver godkännande.",
    register_name: "Applikationens namn",
    register_redirects: "Returadresser (redirect URI)",
    register_redirects_hint: "En adress per rad.",
    register_scope: "Rättigheter (scope)",
    register_client_type: "Klienttyp",
    register_public: "Offentlig (PKCE, ingen hemlighet)",
    register_confidential: "Konfidentiell (client secret)",
    register_contact: "Kontaktpersonens e-post",
    register_button: "Registrera",
    registered_title: "Applikationen har registrerats",
    registered_secret_note: "Spara hemligheten nu: den visas inte igen.",
    not_available: "Den här funktionen är inte i bruk i den här miljön.",
};

pub static EN: Texts = Texts {
    service: "Personal Health Record",
    skip_to_content: "Skip to content",
    language: "Language",
    sandbox_notice: "Sandbox: use test identity codes only (individual number 900–999). Do not store real data.",
    login_title: "Identify yourself",
    login_intro: "Identify yourself to give the application rights to your wellbeing data.",
    hetu_label: "Personal identity code",
    hetu_hint: "In the form DDMMYY-NNNC, for example 010190-900P",
    login_button: "Identify",
    hetu_invalid: "The personal identity code is not valid. Please check it.",
    hetu_not_test: "The sandbox accepts test identity codes only (individual number 900–999).",
    under_age_title: "The service is for people aged 16 or over",
    under_age_text: "You can take the Personal Health Record into use when you are 16. You cannot give applications rights to your data yet.",
    terms_title: "Take the Personal Health Record into use",
    terms_text: "The Personal Health Record stores wellbeing data that you, or applications you allow, save. You decide which applications may read and save your data, and you can withdraw their rights at any time. Every use of your data is logged and you can see the log.",
    terms_accept: "I accept the terms of use and take the service into use",
    terms_decline: "I do not accept",
    consent_title: "Give the application rights",
    consent_intro: "The application asks for rights to the following data. You can untick anything you do not want to allow.",
    consent_read: "read",
    consent_write: "save, change and delete what it has saved",
    consent_all_data: "All your wellbeing data",
    consent_category: "category",
    consent_offline: "The application can use these rights also while you are not using it, until you withdraw them.",
    consent_withdraw_note: "You can withdraw the rights at any time in your Personal Health Record.",
    consent_allow: "Allow",
    consent_deny: "Do not allow",
    error_title: "This could not be done",
    session_expired: "Your session has expired. Return to the application and start again.",
    request_invalid: "The application's request is not valid.",
    upstream_failed: "Identification failed. Please try again.",
    register_title: "Register a sandbox application",
    register_intro: "Sandbox applications work in the sandbox only. Production access needs acceptance.",
    register_name: "Application name",
    register_redirects: "Redirect URIs",
    register_redirects_hint: "One per line.",
    register_scope: "Scopes",
    register_client_type: "Client type",
    register_public: "Public (PKCE, no secret)",
    register_confidential: "Confidential (client secret)",
    register_contact: "Contact e-mail",
    register_button: "Register",
    registered_title: "Application registered",
    registered_secret_note: "Save the secret now: it will not be shown again.",
    not_available: "This function is not available in this environment.",
};

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

fn index(lang: Lang) -> usize {
    match lang {
        Lang::Fi => 0,
        Lang::Sv => 1,
        Lang::En => 2,
    }
}

/// The display name of a resource type, or the type itself when unknown.
pub fn resource_name(resource_type: &str, lang: Lang) -> String {
    RESOURCE_NAMES
        .iter()
        .find(|(t, _)| *t == resource_type)
        .map(|(_, names)| names[index(lang)].to_owned())
        .unwrap_or_else(|| resource_type.to_owned())
}

/// The display name of a category code, or the code when unknown.
pub fn category_name(code: &str, lang: Lang) -> String {
    CATEGORY_NAMES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, names)| names[index(lang)].to_owned())
        .unwrap_or_else(|| code.to_owned())
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
