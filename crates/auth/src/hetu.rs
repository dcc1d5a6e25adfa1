//! The Finnish personal identity code (henkilötunnus, HETU): parsing, check character,
//! century signs (including the 2023 additions) and the birth date it carries.
//!
//! A [`Hetu`] never leaves this crate in clear text: it has no `Display`, no `Serialize`,
//! and its `Debug` output is redacted, so it cannot end up in a log line, a URL or a FHIR
//! resource by accident. The only things derived from it that are stored are a keyed hash
//! (for lookup) and the birth date (for the age rule).

use time::{Date, Month};

/// Check characters indexed by `DDMMYYNNN mod 31`.
const CHECK_CHARS: &[u8; 31] = b"0123456789ABCDEFHJKLMNPRSTUVWXY";

/// Individual numbers 900–999 are reserved for temporary and test identities.
const TEST_INDIVIDUAL_NUMBERS: std::ops::RangeInclusive<u16> = 900..=999;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HetuError {
    #[error("a personal identity code has 11 characters")]
    Length,
    #[error("the birth date part is not a date")]
    Date,
    #[error("unknown century sign")]
    CenturySign,
    #[error("the individual number must be three digits from 002 to 999")]
    IndividualNumber,
    #[error("the check character does not match")]
    CheckCharacter,
}

/// A validated personal identity code. Deliberately not printable.
#[derive(Clone, PartialEq, Eq)]
pub struct Hetu {
    /// Canonical form: upper case, as written by the authority.
    text: String,
    birth_date: Date,
    individual_number: u16,
}

impl std::fmt::Debug for Hetu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hetu(<redacted>)")
    }
}

impl Hetu {
    /// Parses and validates `DDMMYYCNNNQ`. Surrounding white space is ignored and lower-case
    /// letters are accepted (people type them).
    pub fn parse(input: &str) -> Result<Hetu, HetuError> {
        let text = input.trim().to_ascii_uppercase();
        let Ok(&[.., century_sign, _, _, _, check]) = <&[u8; 11]>::try_from(text.as_bytes()) else {
            return Err(HetuError::Length);
        };
        if !text.is_ascii() {
            return Err(HetuError::Length);
        }
        let digits = |range: std::ops::Range<usize>| -> Option<u32> {
            let part = text.get(range)?;
            if part.bytes().all(|b| b.is_ascii_digit()) {
                part.parse().ok()
            } else {
                None
            }
        };
        let day = digits(0..2).ok_or(HetuError::Date)?;
        let month = digits(2..4).ok_or(HetuError::Date)?;
        let year_in_century = digits(4..6).ok_or(HetuError::Date)?;
        let century = match century_sign {
            b'+' => 1800,
            b'-' | b'Y' | b'X' | b'W' | b'V' | b'U' => 1900,
            b'A' | b'B' | b'C' | b'D' | b'E' | b'F' => 2000,
            _ => return Err(HetuError::CenturySign),
        };
        let individual = digits(7..10).ok_or(HetuError::IndividualNumber)?;
        if individual < 2 {
            return Err(HetuError::IndividualNumber);
        }
        let month = u8::try_from(month)
            .ok()
            .and_then(|m| Month::try_from(m).ok())
            .ok_or(HetuError::Date)?;
        let year = i32::try_from(century + year_in_century).map_err(|_| HetuError::Date)?;
        let day = u8::try_from(day).map_err(|_| HetuError::Date)?;
        let birth_date = Date::from_calendar_date(year, month, day).map_err(|_| HetuError::Date)?;

        let number = day as u64 * 10_000_000
            + u8::from(month) as u64 * 100_000
            + year_in_century as u64 * 1000
            + individual as u64;
        let expected = CHECK_CHARS.get((number % 31) as usize);
        if expected != Some(&check) {
            return Err(HetuError::CheckCharacter);
        }
        Ok(Hetu {
            text,
            birth_date,
            individual_number: individual as u16,
        })
    }

    pub fn birth_date(&self) -> Date {
        self.birth_date
    }

    /// True for the 900–999 individual numbers used by test identities (the only ones the
    /// sandbox identity provider accepts).
    pub fn is_test_identity(&self) -> bool {
        TEST_INDIVIDUAL_NUMBERS.contains(&self.individual_number)
    }

    /// Age in whole years on `today`.
    pub fn age_on(&self, today: Date) -> u32 {
        age_on(self.birth_date, today)
    }

    /// The canonical text, for keyed hashing inside this crate only.
    pub(crate) fn canonical(&self) -> &str {
        &self.text
    }
}

/// Age in whole years on `today` for someone born on `birth` (a 29 February birthday is
/// reached on 1 March in common years).
pub fn age_on(birth: Date, today: Date) -> u32 {
    let mut years = today.year() - birth.year();
    if (today.month() as u8, today.day()) < (birth.month() as u8, birth.day()) {
        years -= 1;
    }
    u32::try_from(years).unwrap_or(0)
}

/// Valid identity codes for unit tests elsewhere in the crate.
#[cfg(test)]
pub(crate) mod tests_support {
    /// A valid code born on `ddmmyy` in the century of `sign` with individual number
    /// `individual`, its check character computed from the published rule.
    pub fn hetu(ddmmyy: &str, sign: char, individual: u16) -> String {
        let n: u64 = format!("{ddmmyy}{individual:03}").parse().unwrap();
        let check = "0123456789ABCDEFHJKLMNPRSTUVWXY".as_bytes()[(n % 31) as usize] as char;
        format!("{ddmmyy}{sign}{individual:03}{check}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    /// Builds a valid code from its parts, computing the check character independently
    /// of `parse` from the published rule.
    fn make(ddmmyy: &str, sign: char, individual: &str) -> String {
        let n: u64 = format!("{ddmmyy}{individual}").parse().unwrap();
        let check = "0123456789ABCDEFHJKLMNPRSTUVWXY".as_bytes()[(n % 31) as usize] as char;
        format!("{ddmmyy}{sign}{individual}{check}")
    }

    #[test]
    fn accepts_the_published_example() {
        // The example used in the Digital and Population Data Services Agency's documentation.
        let hetu = Hetu::parse("131052-308T").unwrap();
        assert_eq!(hetu.birth_date(), date!(1952 - 10 - 13));
        assert!(!hetu.is_test_identity());
    }

    #[test]
    fn every_century_sign_maps_to_its_century() {
        for (sign, year) in [
            ('+', 1899),
            ('-', 1999),
            ('Y', 1999),
            ('X', 1999),
            ('W', 1999),
            ('V', 1999),
            ('U', 1999),
            ('A', 2099),
            ('B', 2099),
            ('C', 2099),
            ('D', 2099),
            ('E', 2099),
            ('F', 2099),
        ] {
            let hetu = Hetu::parse(&make("311299", sign, "123")).unwrap();
            assert_eq!(hetu.birth_date().year(), year, "sign {sign}");
        }
    }

    #[test]
    fn rejects_wrong_check_character() {
        assert_eq!(Hetu::parse("131052-308U"), Err(HetuError::CheckCharacter));
    }

    #[test]
    fn rejects_unknown_century_sign() {
        assert_eq!(Hetu::parse("131052G308T"), Err(HetuError::CenturySign));
    }

    #[test]
    fn rejects_impossible_dates() {
        assert_eq!(
            Hetu::parse(&make("300201", 'A', "123")),
            Err(HetuError::Date)
        );
        assert_eq!(
            Hetu::parse(&make("011301", 'A', "123")),
            Err(HetuError::Date)
        );
        // 2000 was a leap year, 1900 was not.
        assert!(Hetu::parse(&make("290200", 'A', "123")).is_ok());
        assert_eq!(
            Hetu::parse(&make("290200", '-', "123")),
            Err(HetuError::Date)
        );
    }

    #[test]
    fn rejects_bad_length_and_individual_number() {
        assert_eq!(Hetu::parse("131052-308"), Err(HetuError::Length));
        assert_eq!(
            Hetu::parse(&make("131052", '-', "001")),
            Err(HetuError::IndividualNumber)
        );
        assert_eq!(Hetu::parse("131052-3O8T"), Err(HetuError::IndividualNumber));
    }

    #[test]
    fn lower_case_and_spaces_are_tolerated() {
        let code = make("010203", 'A', "945").to_lowercase();
        assert!(Hetu::parse(&format!("  {code} ")).is_ok());
    }

    #[test]
    fn test_identities_are_900_to_999() {
        assert!(
            Hetu::parse(&make("010180", '-', "900"))
                .unwrap()
                .is_test_identity()
        );
        assert!(
            Hetu::parse(&make("010180", '-', "999"))
                .unwrap()
                .is_test_identity()
        );
        assert!(
            !Hetu::parse(&make("010180", '-', "899"))
                .unwrap()
                .is_test_identity()
        );
    }

    #[test]
    fn age_counts_whole_years() {
        let hetu = Hetu::parse(&make("150610", 'A', "901")).unwrap();
        assert_eq!(hetu.age_on(date!(2026 - 06 - 14)), 15);
        assert_eq!(hetu.age_on(date!(2026 - 06 - 15)), 16);
        assert_eq!(age_on(date!(2008 - 02 - 29), date!(2024 - 02 - 28)), 15);
        assert_eq!(age_on(date!(2008 - 02 - 29), date!(2024 - 02 - 29)), 16);
        assert_eq!(age_on(date!(2008 - 02 - 29), date!(2025 - 03 - 01)), 17);
    }

    #[test]
    fn debug_output_never_shows_the_code() {
        let hetu = Hetu::parse("131052-308T").unwrap();
        let shown = format!("{hetu:?}");
        assert!(!shown.contains("131052"), "{shown}");
    }
}
