//! Who the demo is about: test citizens (sandbox personal identity codes, individual numbers
//! 900–999, which are never issued to real people) and the sample wellbeing applications.

use phr_catalog::Lang;

/// What kind of wellbeing data a citizen keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persona {
    /// Type 1 diabetes: CGM glucose every 5 minutes, insulin doses, carbohydrates, plus the
    /// everyday vital signs and activity.
    Diabetic,
    /// Elevated blood pressure: measured twice a day, a weight-loss plan, walking.
    Hypertensive,
    /// Runs and trains: many steps and exercise sessions, calorie intake.
    Active,
}

/// A test citizen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoCitizen {
    /// Sandbox personal identity code. Shown only as the test login; never stored in a resource.
    pub hetu: &'static str,
    /// How the demo describes this person on the console (no real name).
    pub label: &'static str,
    pub persona: Persona,
    /// The language the citizen's applications write narratives in.
    pub lang: Lang,
}

pub const CITIZENS: &[DemoCitizen] = &[
    DemoCitizen {
        hetu: "010190-900P",
        label: "type 1 diabetes, CGM and insulin (Finnish)",
        persona: Persona::Diabetic,
        lang: Lang::Fi,
    },
    DemoCitizen {
        hetu: "150585-901P",
        label: "blood pressure follow-up (Swedish)",
        persona: Persona::Hypertensive,
        lang: Lang::Sv,
    },
    DemoCitizen {
        hetu: "311299-902A",
        label: "active runner (English)",
        persona: Persona::Active,
        lang: Lang::En,
    },
];

/// A sample wellbeing application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoApp {
    /// Application id (`creatingApplication.applicationId`, the OAuth `client_id`).
    pub id: &'static str,
    pub name: &'static str,
    /// The scopes it is registered for.
    pub scope: &'static str,
    pub redirect_uri: &'static str,
}

/// Every PHR resource type a wellbeing application may read or write.
pub const PHR_TYPES: &[&str] = &[
    "Patient",
    "Observation",
    "MedicationAdministration",
    "CarePlan",
    "Questionnaire",
    "QuestionnaireResponse",
];

/// `patient/T.read patient/T.write` for every PHR type, plus what a server-side app needs.
pub const ALL_PHR_SCOPES: &str = "launch/patient openid fhirUser offline_access \
    patient/Patient.read patient/Patient.write \
    patient/Observation.read patient/Observation.write \
    patient/MedicationAdministration.read patient/MedicationAdministration.write \
    patient/CarePlan.read patient/CarePlan.write \
    patient/Questionnaire.read patient/Questionnaire.write \
    patient/QuestionnaireResponse.read patient/QuestionnaireResponse.write";

pub const DEMO_APP: DemoApp = DemoApp {
    id: "demo-app",
    name: "PHR Demo",
    scope: ALL_PHR_SCOPES,
    redirect_uri: "http://127.0.0.1:8765/callback",
};

pub const GLUCOSE_APP: DemoApp = DemoApp {
    id: "demo-glucose",
    name: "Sokeritasku",
    scope: "launch/patient offline_access patient/Patient.read \
            patient/Observation.read patient/Observation.write \
            patient/MedicationAdministration.read patient/MedicationAdministration.write",
    redirect_uri: "http://127.0.0.1:8765/glucose/callback",
};

pub const ACTIVITY_APP: DemoApp = DemoApp {
    id: "demo-activity",
    name: "Askelkello",
    scope: "launch/patient offline_access patient/Patient.read \
            patient/Observation.read patient/Observation.write",
    redirect_uri: "http://127.0.0.1:8765/activity/callback",
};

pub const APPS: &[DemoApp] = &[DEMO_APP, GLUCOSE_APP, ACTIVITY_APP];

const HETU_CHECK: &[u8; 31] = b"0123456789ABCDEFHJKLMNPRSTUVWXY";

/// The `n`-th generated sandbox identity code (individual number 900–999): valid check
/// character, birth dates between 1950 and 2005, so every one is at least 16 years old.
/// Distinct for distinct `n` below 100 × 20,000.
pub fn test_hetu(n: u64) -> String {
    let individual = 900 + n % 100;
    let day_index = n / 100;
    // Days from 1950-01-01; 20,000 days stays inside 2004.
    let date = time::Date::from_calendar_date(1950, time::Month::January, 1).expect("valid date")
        + time::Duration::days((day_index % 20_000) as i64);
    let (year, month, day) = (date.year(), date.month() as u8, date.day());
    let sign = if year >= 2000 { 'A' } else { '-' };
    let yy = year % 100;
    let digits = format!("{day:02}{month:02}{yy:02}{individual:03}");
    let number: u64 = digits.parse().expect("digits");
    let check = HETU_CHECK[(number % 31) as usize] as char;
    format!("{day:02}{month:02}{yy:02}{sign}{individual:03}{check}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_char(hetu: &str) -> char {
        let digits: String = hetu[0..6].chars().chain(hetu[7..10].chars()).collect();
        let n: u64 = digits.parse().unwrap();
        HETU_CHECK[(n % 31) as usize] as char
    }

    #[test]
    fn demo_citizens_have_valid_sandbox_identity_codes() {
        for c in CITIZENS {
            assert_eq!(c.hetu.len(), 11);
            assert_eq!(
                c.hetu.chars().last().unwrap(),
                check_char(c.hetu),
                "{}",
                c.hetu
            );
            let individual: u32 = c.hetu[7..10].parse().unwrap();
            assert!((900..=999).contains(&individual));
        }
    }

    #[test]
    fn generated_identity_codes_are_valid_distinct_sandbox_codes() {
        let mut seen = std::collections::HashSet::new();
        for n in 0..5000 {
            let h = test_hetu(n);
            assert_eq!(h.chars().last().unwrap(), check_char(&h), "{h}");
            let individual: u32 = h[7..10].parse().unwrap();
            assert!((900..=999).contains(&individual));
            assert!(seen.insert(h));
        }
    }
}
