//! String normalization for search: FHIR string search is case- and accent-insensitive, so
//! index entries and query values are both lower-cased with combining marks removed
//! (`Mäkinen` and `MAKINEN` both become `makinen`).

use icu_normalizer::DecomposingNormalizerBorrowed;

/// Lower-cases `text` and removes accents (NFD decomposition without combining marks).
pub fn normalize(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    let nfd = DecomposingNormalizerBorrowed::new_nfd();
    let mut out = String::with_capacity(text.len());
    for c in nfd.normalize_iter(text.chars()) {
        if is_combining_mark(c) {
            continue;
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Combining diacritical marks (the blocks NFD moves accents into).
fn is_combining_mark(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_and_finnish_accents() {
        assert_eq!(normalize("Mäkinen"), "makinen");
        assert_eq!(normalize("ÅSTRÖM"), "astrom");
        assert_eq!(normalize("Šebestián Žák"), "sebestian zak");
    }

    #[test]
    fn ascii_is_only_lower_cased() {
        assert_eq!(normalize("Blood Glucose 5.4"), "blood glucose 5.4");
    }

    #[test]
    fn characters_without_decomposition_are_kept() {
        // ø and ß have no canonical decomposition; they stay (lower-cased).
        assert_eq!(normalize("Ørsted"), "ørsted");
        assert_eq!(normalize("Straße"), "straße");
    }
}
