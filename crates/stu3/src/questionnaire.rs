//! Questionnaire and QuestionnaireResponse, STU3 ⇄ R4. Questionnaire items: `enableWhen`
//! `hasAnswer`/`answer[x]` ⇄ `operator` `exists`/`=` (several conditions: STU3 enables on
//! any, R4 says so with `enableBehavior`), `options` ⇄ `answerValueSet`, `option` ⇄
//! `answerOption`, `initial[x]` ⇄ `initial`. Responses: `parent` ⇄ `partOf`, `context` ⇄
//! `encounter`, the questionnaire Reference ⇄ canonical.

use serde_json::{Map, Value, json};

use crate::convert::reference_to_canonical;
use crate::fields::Fields;
use crate::{ConvertError, Version};

const ENABLE_ANSWER_STU3: &[&str] = &[
    "Boolean",
    "Decimal",
    "Integer",
    "Date",
    "DateTime",
    "Time",
    "String",
    "Uri",
    "Attachment",
    "Coding",
    "Quantity",
    "Reference",
];
const ENABLE_ANSWER_R4: &[&str] = &[
    "Boolean",
    "Decimal",
    "Integer",
    "Date",
    "DateTime",
    "Time",
    "String",
    "Coding",
    "Quantity",
    "Reference",
];
const OPTION_STU3: &[&str] = &["Integer", "Date", "Time", "String", "Coding"];
const OPTION_R4: &[&str] = &["Integer", "Date", "Time", "String", "Coding", "Reference"];
/// `initial[x]`, and the answer values of a response: the same in both versions.
const VALUES: &[&str] = &[
    "Boolean",
    "Decimal",
    "Integer",
    "Date",
    "DateTime",
    "Time",
    "String",
    "Uri",
    "Attachment",
    "Coding",
    "Quantity",
    "Reference",
];

fn types(
    from: Version,
    stu3: &'static [&'static str],
    r4: &'static [&'static str],
) -> (&'static [&'static str], &'static [&'static str]) {
    match from {
        Version::Stu3 => (stu3, r4),
        Version::R4 => (r4, stu3),
    }
}

pub(crate) fn questionnaire(
    f: &mut Fields<'_>,
    out: &mut Map<String, Value>,
) -> Result<(), ConvertError> {
    let from = f.from;
    f.copy(out, &["url", "identifier", "version", "name", "title"]);
    if from == Version::R4 {
        f.refuse(&["derivedFrom"], "STU3 Questionnaire has no derivedFrom")?;
    }
    f.copy(
        out,
        &[
            "status",
            "experimental",
            "subjectType",
            "date",
            "publisher",
            "contact",
            "description",
            "useContext",
            "jurisdiction",
            "purpose",
            "copyright",
            "approvalDate",
            "lastReviewDate",
            "effectivePeriod",
            "code",
        ],
    );
    f.each(out, "item", "item", |i, path| item(i, path, from))?;
    Ok(())
}

fn item(i: &Value, path: String, from: Version) -> Result<Value, ConvertError> {
    let mut f = Fields::of(i, path, from)?;
    let mut out = Map::new();
    f.copy(
        &mut out,
        &[
            "id",
            "extension",
            "modifierExtension",
            "linkId",
            "definition",
            "code",
            "prefix",
            "text",
        ],
    );
    if let Some(kind) = f.take("type") {
        if from == Version::Stu3 && kind == "question" {
            return Err(ConvertError::not_expressible(
                &f.at("type"),
                Version::R4,
                "R4 has no item type 'question': name the answer's type (string, choice...)",
            ));
        }
        out.insert("type".into(), kind.clone());
    }
    enable_when(&mut f, &mut out)?;
    f.copy(&mut out, &["required", "repeats", "readOnly", "maxLength"]);
    match from {
        Version::Stu3 => {
            reference_to_canonical(&mut f, &mut out, "options", "answerValueSet")?;
            f.each(&mut out, "option", "answerOption", |o, path| {
                option(o, path, from)
            })?;
            let mut initial = Map::new();
            f.choice(&mut initial, "initial", VALUES, VALUES)?;
            if let Some((key, value)) = initial.into_iter().find(|(k, _)| !k.starts_with('_')) {
                let suffix = key.trim_start_matches("initial");
                out.insert(
                    "initial".into(),
                    json!([{ format!("value{suffix}"): value }]),
                );
            }
        }
        Version::R4 => {
            reference_to_canonical(&mut f, &mut out, "options", "answerValueSet")?;
            f.each(&mut out, "answerOption", "option", |o, path| {
                option(o, path, from)
            })?;
            if let Some(initial) = f.take("initial") {
                let at = f.at("initial");
                let one = match initial.as_array().map(Vec::as_slice) {
                    Some([one]) => one,
                    _ => {
                        return Err(ConvertError::not_expressible(
                            &at,
                            Version::Stu3,
                            "STU3 holds one initial value",
                        ));
                    }
                };
                let mut v = Fields::of(one, format!("{at}[0]"), from)?;
                let mut value = Map::new();
                v.choice(&mut value, "value", VALUES, VALUES)?;
                v.finish()?;
                for (key, value) in value {
                    let name = match key.strip_prefix('_') {
                        Some(k) => format!("_initial{}", k.trim_start_matches("value")),
                        None => format!("initial{}", key.trim_start_matches("value")),
                    };
                    out.insert(name, value);
                }
            }
        }
    }
    f.each(&mut out, "item", "item", |i, path| item(i, path, from))?;
    f.finish()?;
    Ok(Value::Object(out))
}

fn enable_when(f: &mut Fields<'_>, out: &mut Map<String, Value>) -> Result<(), ConvertError> {
    let from = f.from;
    match from {
        Version::Stu3 => {
            let Some(conditions) = f.take("enableWhen") else {
                return Ok(());
            };
            let at = f.at("enableWhen");
            let items = conditions
                .as_array()
                .ok_or_else(|| ConvertError::malformed(&at, Version::R4, "must be a JSON array"))?;
            let mut converted = Vec::with_capacity(items.len());
            for (i, c) in items.iter().enumerate() {
                let mut w = Fields::of(c, format!("{at}[{i}]"), from)?;
                let mut o = Map::new();
                w.copy(
                    &mut o,
                    &["id", "extension", "modifierExtension", "question"],
                );
                let has_answer = w.take("hasAnswer").cloned();
                let (source, target) = types(from, ENABLE_ANSWER_STU3, ENABLE_ANSWER_R4);
                w.choice(&mut o, "answer", source, target)?;
                let answered = o.keys().any(|k| k.starts_with("answer"));
                match (has_answer, answered) {
                    (Some(_), true) => {
                        return Err(ConvertError::malformed(
                            &w.path,
                            Version::R4,
                            "has both hasAnswer and answer[x]",
                        ));
                    }
                    (Some(b), false) => {
                        o.insert("operator".into(), json!("exists"));
                        o.insert("answerBoolean".into(), b);
                    }
                    (None, true) => {
                        o.insert("operator".into(), json!("="));
                    }
                    (None, false) => {
                        return Err(ConvertError::malformed(
                            &w.path,
                            Version::R4,
                            "has neither hasAnswer nor answer[x]",
                        ));
                    }
                }
                w.finish()?;
                converted.push(Value::Object(reorder(o)));
            }
            if converted.len() > 1 {
                out.insert("enableWhen".into(), Value::Array(converted));
                out.insert("enableBehavior".into(), json!("any"));
            } else {
                out.insert("enableWhen".into(), Value::Array(converted));
            }
        }
        Version::R4 => {
            let behavior = f.take("enableBehavior").and_then(Value::as_str);
            let Some(conditions) = f.take("enableWhen") else {
                if behavior.is_some() {
                    return Err(ConvertError::malformed(
                        &f.at("enableBehavior"),
                        Version::Stu3,
                        "without enableWhen",
                    ));
                }
                return Ok(());
            };
            let at = f.at("enableWhen");
            let items = conditions.as_array().ok_or_else(|| {
                ConvertError::malformed(&at, Version::Stu3, "must be a JSON array")
            })?;
            if items.len() > 1 && behavior != Some("any") {
                return Err(ConvertError::not_expressible(
                    &f.at("enableBehavior"),
                    Version::Stu3,
                    "STU3 enables an item when any condition holds; 'all' cannot be said",
                ));
            }
            let mut converted = Vec::with_capacity(items.len());
            for (i, c) in items.iter().enumerate() {
                let path = format!("{at}[{i}]");
                let mut w = Fields::of(c, path.clone(), from)?;
                let mut o = Map::new();
                w.copy(
                    &mut o,
                    &["id", "extension", "modifierExtension", "question"],
                );
                let operator = w.take("operator").and_then(Value::as_str);
                match operator {
                    Some("exists") => {
                        let answer = w.take("answerBoolean").ok_or_else(|| {
                            ConvertError::malformed(
                                &path,
                                Version::Stu3,
                                "operator exists needs answerBoolean",
                            )
                        })?;
                        o.insert("hasAnswer".into(), answer.clone());
                    }
                    Some("=") => {
                        let (source, target) = types(from, ENABLE_ANSWER_STU3, ENABLE_ANSWER_R4);
                        w.choice(&mut o, "answer", source, target)?;
                    }
                    other => {
                        return Err(ConvertError::not_expressible(
                            &format!("{path}.operator"),
                            Version::Stu3,
                            format!(
                                "STU3 conditions are 'answered' or 'equals', not {}",
                                other.unwrap_or("none")
                            ),
                        ));
                    }
                }
                w.finish()?;
                converted.push(Value::Object(o));
            }
            out.insert("enableWhen".into(), Value::Array(converted));
        }
    }
    Ok(())
}

/// `question`, `operator`, then `answer[x]`: R4's element order.
fn reorder(o: Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    let (answers, rest): (Vec<_>, Vec<_>) = o
        .into_iter()
        .partition(|(k, _)| k.starts_with("answer") || k.starts_with("_answer"));
    out.extend(rest);
    out.extend(answers);
    out
}

fn option(o: &Value, path: String, from: Version) -> Result<Value, ConvertError> {
    let mut f = Fields::of(o, path, from)?;
    let mut out = Map::new();
    f.copy(&mut out, &["id", "extension", "modifierExtension"]);
    let (source, target) = types(from, OPTION_STU3, OPTION_R4);
    f.choice(&mut out, "value", source, target)?;
    if from == Version::R4 {
        f.refuse(&["initialSelected"], "STU3 options have no initialSelected")?;
    }
    f.finish()?;
    Ok(Value::Object(out))
}

pub(crate) fn response(
    f: &mut Fields<'_>,
    out: &mut Map<String, Value>,
) -> Result<(), ConvertError> {
    let from = f.from;
    f.copy(out, &["identifier", "basedOn"]);
    match from {
        Version::Stu3 => {
            f.rename(out, "parent", "partOf");
            reference_to_canonical(f, out, "questionnaire", "questionnaire")?;
        }
        Version::R4 => {
            f.rename(out, "partOf", "parent");
            reference_to_canonical(f, out, "questionnaire", "questionnaire")?;
        }
    }
    f.copy(out, &["status", "subject"]);
    match from {
        Version::Stu3 => {
            if let Some(context) = f.take("context") {
                let target = context
                    .get("reference")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if target.starts_with("EpisodeOfCare/") {
                    return Err(ConvertError::not_expressible(
                        &f.at("context"),
                        Version::R4,
                        "R4 encounter refers to an Encounter only",
                    ));
                }
                out.insert("encounter".into(), context.clone());
            }
        }
        Version::R4 => f.rename(out, "encounter", "context"),
    }
    f.copy(out, &["authored", "author", "source"]);
    f.each(out, "item", "item", |i, path| response_item(i, path, from))?;
    Ok(())
}

fn response_item(i: &Value, path: String, from: Version) -> Result<Value, ConvertError> {
    let mut f = Fields::of(i, path, from)?;
    let mut out = Map::new();
    f.copy(
        &mut out,
        &[
            "id",
            "extension",
            "modifierExtension",
            "linkId",
            "definition",
            "text",
        ],
    );
    if from == Version::Stu3 {
        f.refuse(&["subject"], "R4 response items have no subject")?;
    }
    f.each(&mut out, "answer", "answer", |a, path| {
        let mut a = Fields::of(a, path, from)?;
        let mut o = Map::new();
        a.copy(&mut o, &["id", "extension", "modifierExtension"]);
        a.choice(&mut o, "value", VALUES, VALUES)?;
        a.each(&mut o, "item", "item", |i, path| {
            response_item(i, path, from)
        })?;
        a.finish()?;
        Ok(Value::Object(o))
    })?;
    f.each(&mut out, "item", "item", |i, path| {
        response_item(i, path, from)
    })?;
    f.finish()?;
    Ok(Value::Object(out))
}
