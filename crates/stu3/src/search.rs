//! Search parameters at the STU3 endpoint: the same parameters as R4; values that carry a
//! version-specific code system (the observation category) are translated.

use crate::Version;
use crate::observation::{CATEGORY_R4, CATEGORY_STU3, category_system};

/// The R4 form of a STU3 search's parameters.
pub fn params_to_r4(params: &[(String, String)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(name, value)| {
            let base = name.split(':').next().unwrap_or(name);
            if base == "category" {
                (name.clone(), token_values(value, Version::Stu3))
            } else {
                (name.clone(), value.clone())
            }
        })
        .collect()
}

/// Each comma-separated `system|code` with its system translated.
fn token_values(value: &str, from: Version) -> String {
    value
        .split(',')
        .map(|token| match token.split_once('|') {
            Some((system, code)) => format!("{}|{code}", category_system(system, from)),
            None => token.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A URL (a searchset's `self` or `next` link) with R4 category systems in its query shown
/// as STU3 ones, in both the plain and the percent-encoded form.
pub fn link_to_stu3(url: &str) -> String {
    let encoded = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    url.replace(CATEGORY_R4, CATEGORY_STU3)
        .replace(&encoded(CATEGORY_R4), &encoded(CATEGORY_STU3))
}

/// A request URL of a batch entry (`Observation?category=...`) in R4 terms.
pub fn request_url_to_r4(url: &str) -> String {
    let Some((path, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let translated = params_to_r4(&params);
    if translated == params {
        return url.to_string();
    }
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(translated)
        .finish();
    format!("{path}?{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_systems_are_translated_in_searches() {
        let params = vec![
            ("patient".to_string(), "p1".to_string()),
            (
                "category".to_string(),
                format!(
                    "{CATEGORY_STU3}|vital-signs,http://phr.kanta.fi/CodeSystem/fiphr-cs-observationcategory|nutrition,laboratory"
                ),
            ),
        ];
        let r4 = params_to_r4(&params);
        assert_eq!(r4[0], params[0]);
        assert_eq!(
            r4[1].1,
            format!(
                "{CATEGORY_R4}|vital-signs,http://phr.kanta.fi/CodeSystem/fiphr-cs-observationcategory|nutrition,laboratory"
            )
        );
    }

    #[test]
    fn links_show_the_stu3_system() {
        let link = "http://x/fhir/stu3/Observation?category=http%3A%2F%2Fterminology.hl7.org%2FCodeSystem%2Fobservation-category%7Cvital-signs";
        assert_eq!(
            link_to_stu3(link),
            "http://x/fhir/stu3/Observation?category=http%3A%2F%2Fhl7.org%2Ffhir%2Fobservation-category%7Cvital-signs"
        );
        assert_eq!(
            request_url_to_r4(&format!("Observation?category={CATEGORY_STU3}|vital-signs")),
            "Observation?category=http%3A%2F%2Fterminology.hl7.org%2FCodeSystem%2Fobservation-category%7Cvital-signs"
        );
    }
}
