//! Search parsing, one behaviour per test, named after the rule it checks.

use phr_fhir::{Issue, IssueType, Severity};

use super::*;
use crate::dates;

fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn ok(rt: &str, query: &str) -> ParsedSearch {
    parse(rt, &pairs(query), &ParseOptions::default())
        .unwrap_or_else(|issues| panic!("{rt}?{query}: {issues:#?}"))
}

fn lenient() -> ParseOptions {
    ParseOptions {
        lenient: true,
        ..ParseOptions::default()
    }
}

fn ok_with(rt: &str, query: &str, options: &ParseOptions) -> ParsedSearch {
    parse(rt, &pairs(query), options).unwrap_or_else(|issues| panic!("{rt}?{query}: {issues:#?}"))
}

fn err(rt: &str, query: &str) -> Vec<Issue> {
    match parse(rt, &pairs(query), &ParseOptions::default()) {
        Ok(p) => panic!("{rt}?{query} parsed: {:#?}", p.query),
        Err(issues) => issues,
    }
}

/// The single error of a failed parse; its message must mention every `needle`.
fn single_error(rt: &str, query: &str, needles: &[&str]) -> Issue {
    let issues = err(rt, query);
    let errors: Vec<&Issue> = issues.iter().filter(|i| i.is_error()).collect();
    assert_eq!(errors.len(), 1, "{rt}?{query}: {issues:#?}");
    for needle in needles {
        assert!(
            errors[0].message.contains(needle),
            "{rt}?{query}: '{}' does not mention '{needle}'",
            errors[0].message
        );
    }
    errors[0].clone()
}

const P: &str = "patient=p1&";

fn obs(rest: &str) -> ParsedSearch {
    ok("Observation", &format!("{P}{rest}"))
}

fn obs_err(rest: &str, needles: &[&str]) -> Issue {
    single_error("Observation", &format!("{P}{rest}"), needles)
}

fn only_clause(p: &ParsedSearch) -> &Clause {
    assert_eq!(p.query.clauses.len(), 1, "{:#?}", p.query.clauses);
    &p.query.clauses[0]
}

fn token(system: Option<TokenSystem>, code: Option<&str>) -> QueryValue {
    QueryValue::Token {
        system,
        code: code.map(str::to_string),
    }
}

fn is(system: &str) -> Option<TokenSystem> {
    Some(TokenSystem::Is(system.to_string()))
}

// --- token ---------------------------------------------------------------------------

#[test]
fn token_forms_system_code_no_system_and_any_code() {
    let p = obs(
        "category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs,|local,http://x|,laboratory",
    );
    assert_eq!(
        only_clause(&p).values,
        [
            token(
                is("http://terminology.hl7.org/CodeSystem/observation-category"),
                Some("vital-signs")
            ),
            token(Some(TokenSystem::None), Some("local")),
            token(is("http://x"), None),
            token(None, Some("laboratory")),
        ]
    );
}

#[test]
fn observation_code_without_system_means_loinc() {
    let p = obs("code=14745-4,http://snomed.info/sct|271649006");
    assert_eq!(
        only_clause(&p).values,
        [
            token(is("http://loinc.org"), Some("14745-4")),
            token(is("http://snomed.info/sct"), Some("271649006")),
        ]
    );
}

#[test]
fn medication_administration_code_without_system_means_insulin_code() {
    let p = ok("MedicationAdministration", "patient=p1&code=ins-short-fast");
    assert_eq!(
        only_clause(&p).values,
        [token(
            is("http://phr.kanta.fi/CodeSystem/fiphr-cs-insulincode"),
            Some("ins-short-fast")
        )]
    );
}

#[test]
fn default_code_system_only_with_kanta_rules() {
    let options = ParseOptions {
        kanta_rules: false,
        ..ParseOptions::default()
    };
    let p = ok_with("Observation", "code=14745-4", &options);
    assert_eq!(only_clause(&p).values, [token(None, Some("14745-4"))]);
}

#[test]
fn escaped_comma_and_bar_are_part_of_the_value() {
    let p = obs(r"identifier=urn:x\|y|a\,b,c");
    assert_eq!(
        only_clause(&p).values,
        [token(is("urn:x|y"), Some("a,b")), token(None, Some("c"))]
    );
}

#[test]
fn token_with_two_bars_is_an_error() {
    obs_err("identifier=a|b|c", &["identifier", "more than one '|'"]);
}

#[test]
fn repetition_is_and_commas_are_or() {
    let p = obs("code=1,2&code=3");
    assert_eq!(p.query.clauses.len(), 2);
    assert_eq!(p.query.clauses[0].values.len(), 2);
    assert_eq!(p.query.clauses[1].values.len(), 1);
}

// --- modifiers -----------------------------------------------------------------------

#[test]
fn token_modifiers_not_text_in_above_below() {
    let p = obs("status:not=final");
    assert_eq!(only_clause(&p).modifier, Some(Modifier::Not));
    assert_eq!(only_clause(&p).values, [token(None, Some("final"))]);
    let p = obs("code:text=Blood%20Glucose".replace("%20", " ").as_str());
    assert_eq!(only_clause(&p).modifier, Some(Modifier::Text));
    assert_eq!(only_clause(&p).values, [token(None, Some("blood glucose"))]);
    let p = obs("code:in=http://phr.kanta.fi/ValueSet/fiphr-vs-vitalsigns");
    assert_eq!(
        only_clause(&p).values,
        [QueryValue::Uri(
            "http://phr.kanta.fi/ValueSet/fiphr-vs-vitalsigns".into()
        )]
    );
    assert_eq!(
        obs("code:not-in=http://x/vs").query.clauses[0].modifier,
        Some(Modifier::NotIn)
    );
    assert_eq!(
        obs("code:below=http://snomed.info/sct|235862008")
            .query
            .clauses[0]
            .modifier,
        Some(Modifier::Below)
    );
    assert_eq!(
        obs("code:above=http://snomed.info/sct|235862008")
            .query
            .clauses[0]
            .modifier,
        Some(Modifier::Above)
    );
}

#[test]
fn of_type_on_identifiers() {
    let p = ok(
        "Patient",
        "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|12345",
    );
    assert_eq!(
        only_clause(&p).values,
        [QueryValue::Composite(vec![
            token(
                is("http://terminology.hl7.org/CodeSystem/v2-0203"),
                Some("MR")
            ),
            token(None, Some("12345")),
        ])]
    );
    single_error(
        "Patient",
        "identifier:of-type=MR|12345",
        &["system|code|value"],
    );
}

#[test]
fn of_type_is_only_for_identifiers() {
    obs_err("code:of-type=a|b|c", &["code:of-type", ":of-type", "token"]);
}

#[test]
fn missing_takes_true_or_false_and_no_values() {
    let p = obs("value-quantity:missing=true");
    assert_eq!(only_clause(&p).modifier, Some(Modifier::Missing(true)));
    assert!(only_clause(&p).values.is_empty());
    assert_eq!(
        obs("date:missing=false").query.clauses[0].modifier,
        Some(Modifier::Missing(false))
    );
    obs_err("date:missing=maybe", &["date:missing", "true or false"]);
}

#[test]
fn string_default_is_normalized_exact_keeps_text() {
    let p = ok(
        "Patient",
        "name=Mäkinen&name:exact=Mäkinen&name:contains=KINE",
    );
    let c = &p.query.clauses;
    assert_eq!(
        (c[0].modifier, &c[0].values[..]),
        (None, &[QueryValue::String("makinen".into())][..])
    );
    assert_eq!(c[1].modifier, Some(Modifier::Exact));
    assert_eq!(c[1].values, [QueryValue::String("Mäkinen".into())]);
    assert_eq!(c[2].modifier, Some(Modifier::Contains));
    assert_eq!(c[2].values, [QueryValue::String("kine".into())]);
}

#[test]
fn modifier_not_allowed_for_the_type_is_an_error() {
    obs_err("code:exact=x", &["code:exact", "cannot be used", "token"]);
    obs_err("date:contains=2020", &["date:contains"]);
    obs_err("subject:text=x", &["subject:text"]);
    single_error("Patient", "name:not=x", &["name:not"]);
}

#[test]
fn unknown_modifier_is_an_error() {
    obs_err("code:fuzzy=x", &["code:fuzzy", "unknown modifier"]);
}

// --- dates ---------------------------------------------------------------------------

#[test]
fn date_prefixes_all_parse() {
    for (code, prefix) in [
        ("eq", Prefix::Eq),
        ("ne", Prefix::Ne),
        ("gt", Prefix::Gt),
        ("lt", Prefix::Lt),
        ("ge", Prefix::Ge),
        ("le", Prefix::Le),
        ("sa", Prefix::Sa),
        ("eb", Prefix::Eb),
        ("ap", Prefix::Ap),
    ] {
        let p = obs(&format!("date={code}2024-05"));
        let (low, high) = dates::range("2024-05").unwrap();
        assert_eq!(
            only_clause(&p).values,
            [QueryValue::Date { prefix, low, high }],
            "{code}"
        );
    }
}

#[test]
fn date_without_prefix_is_eq_at_its_precision() {
    let p = obs("date=2024-05-01T10:00:00+03:00");
    let (low, high) = dates::range("2024-05-01T10:00:00+03:00").unwrap();
    assert_eq!(
        only_clause(&p).values,
        [QueryValue::Date {
            prefix: Prefix::Eq,
            low,
            high
        }]
    );
}

#[test]
fn date_range_by_repetition() {
    let p = obs("date=ge2024-01-01&date=lt2024-02-01");
    assert_eq!(p.query.clauses.len(), 2);
    assert!(matches!(
        p.query.clauses[0].values[0],
        QueryValue::Date {
            prefix: Prefix::Ge,
            ..
        }
    ));
    assert!(matches!(
        p.query.clauses[1].values[0],
        QueryValue::Date {
            prefix: Prefix::Lt,
            ..
        }
    ));
}

#[test]
fn a_plus_decoded_as_space_in_a_time_zone_is_accepted() {
    let p = obs("date=ge2024-05-01T10:00:00 03:00");
    let (low, _) = dates::range("2024-05-01T10:00:00+03:00").unwrap();
    assert!(matches!(only_clause(&p).values[0], QueryValue::Date { low: l, .. } if l == low));
}

#[test]
fn malformed_dates_and_prefixes_name_the_parameter() {
    obs_err("date=2024-13-01", &["date", "2024-13-01", "month"]);
    obs_err("date=xx2024", &["date", "unknown prefix 'xx'"]);
    obs_err("date=ge", &["date"]);
    single_error(
        "MedicationAdministration",
        "patient=p1&effective-time=yesterday",
        &["effective-time", "yesterday"],
    );
    obs_err("_lastUpdated=gt2024-02-30", &["_lastUpdated", "day"]);
}

// --- numbers and quantities ----------------------------------------------------------

#[test]
fn number_with_prefix_and_precision() {
    let p = ok("RiskAssessment", "probability=gt0.50");
    let QueryValue::Number {
        prefix,
        value,
        low,
        high,
    } = only_clause(&p).values[0]
    else {
        panic!("not a number");
    };
    assert_eq!(prefix, Prefix::Gt);
    assert!(
        (value - 0.5).abs() < 1e-12 && (low - 0.495).abs() < 1e-12 && (high - 0.505).abs() < 1e-12
    );
    single_error(
        "RiskAssessment",
        "probability=lots",
        &["probability", "'lots' is not a valid number"],
    );
}

#[test]
fn quantity_with_and_without_units() {
    let p = obs("value-quantity=ge5.4|http://unitsofmeasure.org|mmol/L,5.4||mmol/L,lt10");
    let values = &only_clause(&p).values;
    assert!(
        matches!(&values[0], QueryValue::Quantity { prefix: Prefix::Ge, system: Some(s), code: Some(c), .. }
        if s == "http://unitsofmeasure.org" && c == "mmol/L")
    );
    assert!(
        matches!(&values[1], QueryValue::Quantity { prefix: Prefix::Eq, system: None, code: Some(c), .. } if c == "mmol/L")
    );
    assert!(
        matches!(&values[2], QueryValue::Quantity { prefix: Prefix::Lt, system: None, code: None, value, .. } if *value == 10.0)
    );
    obs_err(
        "value-quantity=5|mmol/L",
        &["value-quantity", "number|system|code"],
    );
    obs_err(
        "value-quantity=five",
        &["value-quantity", "not a valid number"],
    );
}

// --- references ----------------------------------------------------------------------

#[test]
fn patient_sets_the_compartment() {
    let p = ok("Observation", "patient=Patient/f1fa0b52&code=14745-4");
    assert_eq!(p.query.compartment.as_deref(), Some("f1fa0b52"));
    assert_eq!(p.query.clauses.len(), 1, "patient is not also a clause");
    let p = ok("Observation", "patient:Patient=f1fa0b52");
    assert_eq!(p.query.compartment.as_deref(), Some("f1fa0b52"));
}

#[test]
fn patient_as_absolute_url_of_this_server_is_local() {
    let options = ParseOptions {
        base_url: Some("https://phr.example/fhir/r4/".into()),
        ..ParseOptions::default()
    };
    let p = ok_with(
        "Observation",
        "patient=https://phr.example/fhir/r4/Patient/p7",
        &options,
    );
    assert_eq!(p.query.compartment.as_deref(), Some("p7"));
}

#[test]
fn reference_forms_and_types() {
    let p = obs("subject=Patient/p1&performer:Practitioner=pr1&based-on=CarePlan/c1/_history/2");
    let c = &p.query.clauses;
    assert_eq!(
        c[0].values,
        [QueryValue::Reference {
            target_type: Some("Patient".into()),
            id: "p1".into(),
            version: None,
            url: None
        }]
    );
    assert_eq!(c[1].modifier, Some(Modifier::Type));
    assert_eq!(
        c[1].values,
        [QueryValue::Reference {
            target_type: Some("Practitioner".into()),
            id: "pr1".into(),
            version: None,
            url: None
        }]
    );
    assert!(matches!(&c[2].values[0], QueryValue::Reference { version: Some(v), .. } if v == "2"));
    let p = obs("subject=https://other.example/fhir/Patient/9");
    assert!(
        matches!(&only_clause(&p).values[0], QueryValue::Reference { url: Some(u), id, .. } if u.ends_with("/Patient/9") && id.is_empty())
    );
}

#[test]
fn reference_to_a_type_the_parameter_cannot_hold_is_an_error() {
    obs_err(
        "subject=Medication/m1",
        &["subject", "cannot refer to a Medication"],
    );
    obs_err(
        "subject:Medication=m1",
        &["subject:Medication", "cannot refer to a Medication"],
    );
    obs_err(
        "performer:Patient=Practitioner/x",
        &["performer:Patient", "not a Patient reference"],
    );
}

#[test]
fn reference_identifier_modifier_gives_a_token() {
    let p = obs("subject:identifier=urn:oid:1.2.246.21|010101-123N");
    assert_eq!(only_clause(&p).modifier, Some(Modifier::Identifier));
    assert_eq!(
        only_clause(&p).values,
        [token(is("urn:oid:1.2.246.21"), Some("010101-123N"))]
    );
}

#[test]
fn canonical_reference_with_version() {
    let p = ok(
        "QuestionnaireResponse",
        "patient=p1&questionnaire=http://phr.kanta.fi/Questionnaire/q1|2.0",
    );
    assert!(matches!(&only_clause(&p).values[0],
        QueryValue::Reference { url: Some(u), version: Some(v), .. } if u == "http://phr.kanta.fi/Questionnaire/q1" && v == "2.0"));
}

#[test]
fn careplan_supporting_info_is_searchable() {
    let p = ok(
        "CarePlan",
        "patient=p1&supporting-info=QuestionnaireResponse/qr1",
    );
    assert_eq!(only_clause(&p).param, "supporting-info");
}

// --- uri and composite ---------------------------------------------------------------

#[test]
fn uri_values_and_below() {
    let p = ok("Questionnaire", "url=http://phr.kanta.fi/Questionnaire/q1");
    assert_eq!(
        only_clause(&p).values,
        [QueryValue::Uri(
            "http://phr.kanta.fi/Questionnaire/q1".into()
        )]
    );
    let p = ok(
        "Questionnaire",
        "_profile:below=http://phr.kanta.fi/StructureDefinition/",
    );
    assert_eq!(only_clause(&p).modifier, Some(Modifier::Below));
}

#[test]
fn composite_code_value_quantity() {
    let p =
        obs("code-value-quantity=http://loinc.org|14745-4$gt5.0|http://unitsofmeasure.org|mmol/L");
    let QueryValue::Composite(parts) = &only_clause(&p).values[0] else {
        panic!("not a composite");
    };
    assert_eq!(parts[0], token(is("http://loinc.org"), Some("14745-4")));
    assert!(
        matches!(&parts[1], QueryValue::Quantity { prefix: Prefix::Gt, code: Some(c), .. } if c == "mmol/L")
    );
    obs_err(
        "code-value-quantity=14745-4",
        &["code-value-quantity", "2 parts"],
    );
}

#[test]
fn component_composite_with_escaped_dollar() {
    let p = obs(r"component-code-value-quantity=8480-6$lt140");
    assert!(matches!(&only_clause(&p).values[0], QueryValue::Composite(parts) if parts.len() == 2));
    let p = obs(r"code-value-string=x$a\$b");
    assert!(
        matches!(&only_clause(&p).values[0], QueryValue::Composite(parts) if parts[1] == QueryValue::String("a$b".into()))
    );
}

// --- chaining and _has ---------------------------------------------------------------

#[test]
fn chain_with_explicit_type() {
    let p = obs("subject:Patient.identifier=urn:ietf:rfc:3986|urn:uuid:1");
    let c = only_clause(&p);
    assert_eq!(c.param, "subject");
    assert!(c.values.is_empty());
    let Some(Chain::Forward { target_type, inner }) = c.chain.as_deref() else {
        panic!("not a forward chain: {c:?}");
    };
    assert_eq!(target_type, "Patient");
    assert_eq!(inner.param, "identifier");
    assert_eq!(
        inner.values,
        [token(is("urn:ietf:rfc:3986"), Some("urn:uuid:1"))]
    );
}

#[test]
fn chain_without_type_covers_every_target_defining_the_parameter() {
    let p = obs("subject.identifier=x");
    let Some(Chain::Forward { target_type, .. }) = only_clause(&p).chain.as_deref() else {
        panic!("not a chain");
    };
    assert_eq!(
        target_type, "",
        "Group, Device, Patient and Location all have identifier"
    );
    let p = obs("patient.identifier=x");
    let Some(Chain::Forward { target_type, .. }) = only_clause(&p).chain.as_deref() else {
        panic!("not a chain");
    };
    assert_eq!(target_type, "Patient");
    // Only Patient among subject's targets has `gender`.
    let p = obs("subject.gender=female");
    assert!(
        matches!(only_clause(&p).chain.as_deref(), Some(Chain::Forward { target_type, .. }) if target_type == "Patient")
    );
}

#[test]
fn chain_errors() {
    obs_err("subject.organization.name=x", &["only one level"]);
    obs_err(
        "code.system=x",
        &["code is a token parameter", "only references"],
    );
    obs_err(
        "subject:Medication.code=x",
        &["cannot refer to a Medication"],
    );
    obs_err(
        "subject:Patient.birthdate=notadate",
        &["subject:Patient.birthdate", "notadate"],
    );
}

#[test]
fn has_finds_resources_referenced_from_matching_ones() {
    let p = ok("Patient", "_has:Observation:patient:code=14745-4");
    let c = only_clause(&p);
    assert_eq!(c.param, "_has");
    let Some(Chain::Reverse {
        source_type,
        reference_param,
        inner,
    }) = c.chain.as_deref()
    else {
        panic!("not a reverse chain");
    };
    assert_eq!(
        (source_type.as_str(), reference_param.as_str()),
        ("Observation", "patient")
    );
    assert_eq!(
        inner.values,
        [token(is("http://loinc.org"), Some("14745-4"))]
    );
}

#[test]
fn has_errors() {
    single_error(
        "Patient",
        "_has:Observation:patient:_has:X:y:z=1",
        &["one level"],
    );
    single_error(
        "Patient",
        "_has:Observation:code:status=final",
        &["does not refer to Patient"],
    );
    single_error(
        "Patient",
        "_has:Observation=1",
        &["_has:Type:reference:parameter"],
    );
    single_error(
        "Patient",
        "_has:Nope:patient:code=1",
        &["'Nope' is not a resource type"],
    );
}

// --- result parameters ---------------------------------------------------------------

#[test]
fn sort_keys_in_order_with_descending() {
    let p = obs("_sort=-date,_lastUpdated,_id");
    let keys: Vec<(&str, bool)> = p
        .query
        .sort
        .iter()
        .map(|k| (k.param.as_str(), k.descending))
        .collect();
    assert_eq!(
        keys,
        [("date", true), ("_lastUpdated", false), ("_id", false)]
    );
    let p = ok(
        "MedicationAdministration",
        "patient=p1&_sort=effective-time",
    );
    assert_eq!(p.query.sort[0].param, "effective-time");
    let p = ok("QuestionnaireResponse", "patient=p1&_sort=-authored");
    assert!(p.query.sort[0].descending);
}

#[test]
fn sort_by_unknown_or_unsortable_parameter_fails_naming_the_sortable_ones_unless_lenient() {
    let issue = obs_err(
        "_sort=shoe-size",
        &["shoe-size", "can be sorted by", "date"],
    );
    assert_eq!(issue.code, IssueType::NotSupported);
    obs_err(
        "_sort=code-value-quantity",
        &[
            "cannot sort Observation by 'code-value-quantity'",
            "_lastUpdated",
        ],
    );
    single_error(
        "MedicationAdministration",
        "patient=p1&_sort=date",
        &["'date'", "effective-time"],
    );
    let p = ok_with(
        "Observation",
        "patient=p1&_sort=shoe-size,-date",
        &lenient(),
    );
    assert_eq!(p.query.sort.len(), 1);
    assert_eq!(p.warnings.len(), 1);
    assert!(p.warnings[0].message.contains("shoe-size"));
    assert_eq!(p.warnings[0].severity, Severity::Warning);
    obs_err("_sort=date&_sort=_id", &["_sort may be given only once"]);
}

#[test]
fn count_default_maximum_and_errors() {
    assert_eq!(obs("").query.count, 50);
    assert_eq!(obs("_count=10").query.count, 10);
    assert_eq!(obs("_count=0").query.count, 0);
    // Above the maximum: lowered silently, leniently or not.
    let p = obs("_count=20000");
    assert_eq!(p.query.count, 1000);
    assert!(p.warnings.is_empty());
    let p = ok_with("Observation", "patient=p1&_count=20000", &lenient());
    assert_eq!(p.query.count, 1000);
    assert!(p.warnings.is_empty());
    let small = ParseOptions {
        max_count: 100,
        default_count: 500,
        ..ParseOptions::default()
    };
    assert_eq!(
        ok_with("Observation", "patient=p1", &small).query.count,
        100
    );
    assert_eq!(
        ok_with("Observation", "patient=p1&_count=200", &small)
            .query
            .count,
        100
    );
    obs_err("_count=-1", &["_count", "'-1'"]);
    obs_err("_count=ten", &["_count"]);
}

#[test]
fn total_and_summary_values() {
    assert_eq!(obs("_total=accurate").query.total, TotalMode::Accurate);
    assert_eq!(obs("_total=estimate").query.total, TotalMode::Estimate);
    assert_eq!(obs("_total=none").query.total, TotalMode::None);
    obs_err("_total=all", &["_total", "'all'"]);
    for (v, s) in [
        ("count", Summary::Count),
        ("true", Summary::True),
        ("data", Summary::Data),
        ("text", Summary::Text),
        ("false", Summary::False),
    ] {
        assert_eq!(obs(&format!("_summary={v}")).query.summary, s);
    }
    obs_err("_summary=brief", &["_summary", "'brief'"]);
}

#[test]
fn elements_are_checked_against_the_type() {
    let p = obs("_elements=code,valueQuantity,effective");
    assert_eq!(p.query.elements, ["code", "valueQuantity", "effective"]);
    obs_err(
        "_elements=code,nonsense",
        &["no element 'nonsense'", "value[x]"],
    );
    let p = ok_with(
        "Observation",
        "patient=p1&_elements=code,nonsense",
        &lenient(),
    );
    assert_eq!(p.query.elements, ["code"]);
    assert_eq!(p.warnings.len(), 1);
    assert!(p.warnings[0].message.contains("nonsense"));
}

#[test]
fn include_and_revinclude() {
    let p = obs(
        "_include=Observation:subject:Patient&_include=Observation:performer&_include:iterate=Patient:link",
    );
    assert_eq!(
        p.query.include,
        [
            Include {
                source_type: "Observation".into(),
                param: "subject".into(),
                target_type: Some("Patient".into()),
                iterate: false
            },
            Include {
                source_type: "Observation".into(),
                param: "performer".into(),
                target_type: None,
                iterate: false
            },
            Include {
                source_type: "Patient".into(),
                param: "link".into(),
                target_type: None,
                iterate: true
            },
        ]
    );
    let p = ok(
        "Patient",
        "_revinclude=Observation:subject&_revinclude:iterate=Provenance:target",
    );
    assert_eq!(p.query.revinclude.len(), 2);
    assert!(p.query.revinclude[1].iterate);
}

#[test]
fn include_errors() {
    obs_err(
        "_include=Patient:link",
        &["source type must be Observation"],
    );
    obs_err("_include=Observation:code", &["not a reference parameter"]);
    obs_err(
        "_include=Observation:subject:Medication",
        &["never refers to a Medication"],
    );
    obs_err("_include=Observation", &["Source:parameter[:Target]"]);
    single_error(
        "Patient",
        "_revinclude=Observation:specimen",
        &["never refers to a Patient"],
    );
}

#[test]
fn include_of_unknown_parameter_fails_unless_lenient() {
    obs_err("_include=Observation:nope", &["nope", "subject"]);
    let p = ok_with(
        "Observation",
        "patient=p1&_include=Observation:nope",
        &lenient(),
    );
    assert!(p.query.include.is_empty());
    assert!(p.warnings[0].message.contains("nope"));
}

// --- Kanta rules and handling --------------------------------------------------------

#[test]
fn patient_is_mandatory_for_kanta_types() {
    for rt in [
        "Observation",
        "MedicationAdministration",
        "QuestionnaireResponse",
        "CarePlan",
    ] {
        let issue = single_error(rt, "_count=5", &[rt, "patient"]);
        assert_eq!(issue.code, IssueType::Required);
    }
    for rt in ["Patient", "Questionnaire", "StructureDefinition"] {
        ok(rt, "_id=x");
    }
}

#[test]
fn patient_must_be_one_local_patient() {
    single_error("Observation", "patient=a,b", &["exactly one"]);
    single_error(
        "Observation",
        "patient=a&patient=b",
        &["given twice", "'a'", "'b'"],
    );
    single_error(
        "Observation",
        "patient=https://other.example/Patient/1",
        &["exactly one local Patient"],
    );
    single_error(
        "Observation",
        "patient=Group/g",
        &["patient", "cannot refer to a Group"],
    );
    ok("Observation", "patient=a&patient=Patient/a");
}

#[test]
fn unknown_parameters_fail_naming_the_supported_ones_unless_lenient() {
    let issue = obs_err(
        "shoe-size=42",
        &[
            "unknown search parameter 'shoe-size' for Observation",
            "code",
            "date",
            "_sort",
        ],
    );
    assert_eq!(issue.code, IssueType::NotSupported);
    obs_err(
        "_contained=true",
        &["'_contained' is not supported", "_count"],
    );
    let p = ok_with(
        "Observation",
        "patient=p1&shoe-size=42&_contained=true",
        &lenient(),
    );
    assert!(p.query.clauses.is_empty());
    assert_eq!(p.warnings.len(), 2);
    assert!(
        p.warnings
            .iter()
            .all(|w| w.severity == Severity::Warning && w.code == IssueType::NotSupported)
    );
    assert!(p.warnings[0].message.contains("shoe-size"));
}

#[test]
fn server_parameters_are_not_reported() {
    let p = obs("_format=json&_pretty=true&_page=abc&_cursor=xyz");
    assert!(p.warnings.is_empty() && p.query.clauses.is_empty());
}

#[test]
fn empty_values_are_skipped_silently() {
    let p = obs("code=&shoe-size=");
    assert!(p.query.clauses.is_empty());
    assert!(p.warnings.is_empty());
    obs_err("code=a,,b", &["empty value"]);
}

#[test]
fn a_compartment_from_the_path_satisfies_the_patient_rule() {
    let options = ParseOptions {
        compartment: Some("p1".into()),
        ..ParseOptions::default()
    };
    let p = ok_with("Observation", "code=14745-4", &options);
    assert_eq!(p.query.compartment.as_deref(), Some("p1"));
    assert_eq!(
        ok_with("Observation", "patient=p1", &options).query,
        ok("Observation", "patient=p1").query
    );
    let issues = parse("Observation", &pairs("patient=p2"), &options).unwrap_err();
    assert!(
        issues[0].message.contains("different values"),
        "{issues:#?}"
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let issues = err("Observation", "date=bad&_count=x&code:exact=1");
    let errors = issues.iter().filter(|i| i.is_error()).count();
    assert_eq!(
        errors, 4,
        "three bad values and the missing patient: {issues:#?}"
    );
}

#[test]
fn unknown_resource_type_is_an_error() {
    single_error("Nope", "", &["'Nope' is not a resource type"]);
}

#[test]
fn kanta_timeline_query() {
    let p = ok(
        "Observation",
        "patient=f1fa0b52&code=http://loinc.org|14745-4&date=ge2020-10-01&date=lt2020-11-01&_sort=date&_count=100&_total=accurate",
    );
    assert_eq!(p.query.compartment.as_deref(), Some("f1fa0b52"));
    assert_eq!(p.query.clauses.len(), 3);
    assert_eq!(
        p.query.sort,
        [SortKey {
            param: "date".into(),
            descending: false
        }]
    );
    assert_eq!(p.query.count, 100);
    assert_eq!(p.query.total, TotalMode::Accurate);
    assert!(p.warnings.is_empty());
}
