//! Terminology: CodeSystems, ValueSet membership from `compose` (include/exclude by system
//! and concepts, whole code systems, `is-a`/descendant filters on hierarchical code
//! systems, imported value sets), displays, and syntax checks for the grammar-based
//! systems (BCP-47 language tags, UCUM units, MIME types). A value set that cannot be
//! expanded answers `Unknown`, which the validator reports as a warning, never an error.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

pub const BCP47: &str = "urn:ietf:bcp:47";
pub const UCUM: &str = "http://unitsofmeasure.org";
pub const MIME: &str = "urn:ietf:bcp:13";

/// A concept of a CodeSystem.
#[derive(Debug, Clone)]
pub struct Concept {
    pub display: Option<String>,
    /// Codes of the concepts nested directly under this one.
    pub children: Vec<String>,
}

/// A CodeSystem with its concepts (flattened, hierarchy kept as child lists).
#[derive(Debug)]
pub struct CodeSystem {
    pub url: String,
    pub version: Option<String>,
    pub name: Option<String>,
    /// `complete`, `fragment`, `example`, `not-present`, `supplement`.
    pub content: String,
    pub case_sensitive: bool,
    pub concepts: HashMap<String, Concept>,
    /// Codes at the top of the hierarchy, in order.
    pub roots: Vec<String>,
    /// The codes of the properties the code system declares (`CodeSystem.property.code`).
    pub properties: Vec<String>,
}

impl CodeSystem {
    pub fn from_json(cs: &Value) -> Option<CodeSystem> {
        let url = cs["url"].as_str()?.to_string();
        let mut concepts = HashMap::new();
        let mut roots = Vec::new();
        fn walk(list: &Value, out: &mut HashMap<String, Concept>, codes: &mut Vec<String>) {
            for c in list.as_array().into_iter().flatten() {
                let Some(code) = c["code"].as_str() else {
                    continue;
                };
                let mut children = Vec::new();
                walk(&c["concept"], out, &mut children);
                out.insert(
                    code.to_string(),
                    Concept {
                        display: c["display"].as_str().map(str::to_string),
                        children,
                    },
                );
                codes.push(code.to_string());
            }
        }
        walk(&cs["concept"], &mut concepts, &mut roots);
        Some(CodeSystem {
            url,
            version: cs["version"].as_str().map(str::to_string),
            name: cs["name"].as_str().map(str::to_string),
            content: cs["content"].as_str().unwrap_or("complete").to_string(),
            case_sensitive: cs["caseSensitive"].as_bool().unwrap_or(true),
            concepts,
            roots,
            properties: cs
                .get("property")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p.get("code").and_then(Value::as_str).map(str::to_string))
                .collect(),
        })
    }

    /// True when this is a supplement (it adds designations or properties to another code
    /// system and defines no codes of its own).
    pub fn is_supplement(&self) -> bool {
        self.content == "supplement"
    }

    /// True when every code of the system is listed.
    pub fn is_complete(&self) -> bool {
        self.content == "complete"
    }

    pub fn display(&self, code: &str) -> Option<&str> {
        self.concepts.get(code)?.display.as_deref()
    }

    /// `code` and all concepts below it.
    fn descendants(&self, code: &str, include_self: bool, out: &mut HashSet<String>) {
        let Some(c) = self.concepts.get(code) else {
            return;
        };
        if include_self {
            out.insert(code.to_string());
        }
        for child in &c.children {
            self.descendants(child, true, out);
        }
    }
}

/// A ValueSet: its `compose` and (once asked) its expansion.
#[derive(Debug)]
pub struct ValueSet {
    pub url: String,
    pub version: Option<String>,
    pub name: Option<String>,
    pub compose: Value,
    /// `expansion.contains` when the resource carried one.
    pub given_expansion: Value,
}

impl ValueSet {
    pub fn from_json(vs: &Value) -> Option<ValueSet> {
        Some(ValueSet {
            url: vs["url"].as_str()?.to_string(),
            version: vs["version"].as_str().map(str::to_string),
            name: vs["name"].as_str().map(str::to_string),
            compose: vs["compose"].clone(),
            given_expansion: vs
                .pointer("/expansion/contains")
                .cloned()
                .unwrap_or(Value::Null),
        })
    }
}

/// The answer to "is this code in the value set?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    Member,
    NotMember,
    /// The value set (or part of it) cannot be expanded here; the reason says why.
    Unknown(String),
}

/// Whole code systems a value set includes that cannot be listed.
#[derive(Debug, Clone)]
enum OpenSystem {
    /// Checked by a grammar (BCP-47, UCUM, MIME).
    Grammar(fn(&str) -> bool),
    /// Not available here.
    Unknown(String),
}

/// A value set expanded as far as possible.
#[derive(Debug, Default)]
pub struct Expansion {
    /// system -> codes (with displays).
    pub codes: HashMap<String, HashMap<String, Option<String>>>,
    open: Vec<(String, OpenSystem)>,
    /// Codes excluded from open systems.
    excluded: HashSet<(String, String)>,
    /// Why part of the value set could not be expanded (filters we do not support, ...).
    pub incomplete: Option<String>,
}

impl Expansion {
    /// Membership of `code` in `system` (any system when `None`, as for a bare `code`).
    pub fn contains(&self, system: Option<&str>, code: &str) -> Membership {
        match system {
            Some(s) => {
                if self.codes.get(s).is_some_and(|c| c.contains_key(code)) {
                    return Membership::Member;
                }
                for (open_system, kind) in &self.open {
                    if open_system == s {
                        return self.open_membership(s, kind, code);
                    }
                }
            }
            None => {
                if self.codes.values().any(|c| c.contains_key(code)) {
                    return Membership::Member;
                }
                let mut unknown = None;
                for (s, kind) in &self.open {
                    match self.open_membership(s, kind, code) {
                        Membership::Member => return Membership::Member,
                        Membership::Unknown(r) => unknown = Some(r),
                        Membership::NotMember => {}
                    }
                }
                if let Some(r) = unknown {
                    return Membership::Unknown(r);
                }
            }
        }
        match &self.incomplete {
            Some(reason) => Membership::Unknown(reason.clone()),
            None => Membership::NotMember,
        }
    }

    fn open_membership(&self, system: &str, kind: &OpenSystem, code: &str) -> Membership {
        if self
            .excluded
            .contains(&(system.to_string(), code.to_string()))
        {
            return Membership::NotMember;
        }
        match kind {
            OpenSystem::Grammar(ok) if ok(code) => Membership::Member,
            OpenSystem::Grammar(_) => Membership::NotMember,
            OpenSystem::Unknown(r) => Membership::Unknown(r.clone()),
        }
    }

    /// The display of a listed code.
    pub fn display(&self, system: &str, code: &str) -> Option<&str> {
        self.codes.get(system)?.get(code)?.as_deref()
    }

    /// Systems the value set draws codes from.
    pub fn systems(&self) -> impl Iterator<Item = &str> {
        self.codes
            .keys()
            .map(String::as_str)
            .chain(self.open.iter().map(|(s, _)| s.as_str()))
    }
}

/// What expansion needs from the registry.
pub trait TerminologySource {
    fn code_system(&self, url: &str) -> Option<&CodeSystem>;
    fn value_set_expansion(&self, url: &str, depth: usize) -> Option<Arc<Expansion>>;
}

/// The grammar that decides membership of a whole grammar-based code system.
pub fn grammar_for(system: &str) -> Option<fn(&str) -> bool> {
    match system {
        BCP47 => Some(is_bcp47),
        UCUM => Some(is_ucum),
        MIME => Some(is_mime_type),
        _ => None,
    }
}

/// Expands a value set's compose (or uses its given expansion).
pub fn expand(vs: &ValueSet, source: &dyn TerminologySource, depth: usize) -> Expansion {
    let mut out = Expansion::default();
    if depth > 8 {
        out.incomplete = Some(format!("value set {} imports too deeply", vs.url));
        return out;
    }
    if vs.compose.is_null() {
        if let Some(contains) = vs.given_expansion.as_array() {
            add_contains(&mut out, contains);
        } else {
            out.incomplete = Some(format!("value set {} has no compose or expansion", vs.url));
        }
        return out;
    }
    for inc in vs
        .compose
        .get("include")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        include(&mut out, inc, source, depth);
    }
    for exc in vs
        .compose
        .get("exclude")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut removed = Expansion::default();
        include(&mut removed, exc, source, depth);
        for (system, codes) in removed.codes {
            if let Some(have) = out.codes.get_mut(&system) {
                for code in codes.keys() {
                    have.remove(code);
                }
            }
            for code in codes.into_keys() {
                out.excluded.insert((system.clone(), code));
            }
        }
        if !removed.open.is_empty() || removed.incomplete.is_some() {
            out.incomplete.get_or_insert_with(|| {
                format!("value set {} excludes codes we cannot list", vs.url)
            });
        }
    }
    out
}

fn add_contains(out: &mut Expansion, contains: &[Value]) {
    for c in contains {
        if let (Some(s), Some(code)) = (c["system"].as_str(), c["code"].as_str()) {
            out.codes
                .entry(s.to_string())
                .or_default()
                .insert(code.to_string(), c["display"].as_str().map(str::to_string));
        }
        if let Some(nested) = c["contains"].as_array() {
            add_contains(out, nested);
        }
    }
}

fn include(out: &mut Expansion, inc: &Value, source: &dyn TerminologySource, depth: usize) {
    let system = inc["system"].as_str();
    let imports: Vec<&str> = inc["valueSet"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    // Codes this include selects (before intersecting with imported value sets).
    let mut part = Expansion::default();
    if let Some(system) = system {
        let concepts = inc["concept"].as_array();
        let filters = inc["filter"].as_array().filter(|f| !f.is_empty());
        let cs = source.code_system(system);
        if let Some(concepts) = concepts {
            let codes = part.codes.entry(system.to_string()).or_default();
            for c in concepts {
                if let Some(code) = c["code"].as_str() {
                    let display = c["display"]
                        .as_str()
                        .or_else(|| cs.and_then(|cs| cs.display(code)))
                        .map(str::to_string);
                    codes.insert(code.to_string(), display);
                }
            }
        } else if let Some(filters) = filters {
            match cs {
                Some(cs) => filter(&mut part, cs, filters),
                None => {
                    part.incomplete = Some(format!(
                        "code system {system} is not available to evaluate a filter"
                    ))
                }
            }
        } else if let Some(grammar) = grammar_for(system) {
            part.open
                .push((system.to_string(), OpenSystem::Grammar(grammar)));
        } else {
            match cs {
                Some(cs) if cs.is_complete() => {
                    let codes = part.codes.entry(system.to_string()).or_default();
                    for (code, c) in &cs.concepts {
                        codes.insert(code.clone(), c.display.clone());
                    }
                }
                Some(cs) => {
                    let codes = part.codes.entry(system.to_string()).or_default();
                    for (code, c) in &cs.concepts {
                        codes.insert(code.clone(), c.display.clone());
                    }
                    part.open.push((
                        system.to_string(),
                        OpenSystem::Unknown(format!(
                            "code system {system} is not complete here (content: {})",
                            cs.content
                        )),
                    ));
                }
                None => part.open.push((
                    system.to_string(),
                    OpenSystem::Unknown(format!("code system {system} is not available")),
                )),
            }
        }
    }
    let mut imported: Option<Expansion> = None;
    for url in imports {
        let url = crate::sd::canonical_without_version(url);
        let Some(exp) = source.value_set_expansion(url, depth + 1) else {
            out.incomplete
                .get_or_insert_with(|| format!("imported value set {url} is not available"));
            return;
        };
        imported = Some(match imported {
            None => copy(&exp),
            Some(prev) => intersect(&prev, &exp),
        });
    }
    let selected = match (system.is_some(), imported) {
        (true, Some(imp)) => intersect(&part, &imp),
        (false, Some(imp)) => imp,
        (_, None) => part,
    };
    merge(out, selected);
}

fn copy(e: &Expansion) -> Expansion {
    Expansion {
        codes: e.codes.clone(),
        open: e.open.clone(),
        excluded: e.excluded.clone(),
        incomplete: e.incomplete.clone(),
    }
}

fn intersect(a: &Expansion, b: &Expansion) -> Expansion {
    let mut out = Expansion::default();
    for (system, codes) in &a.codes {
        for (code, display) in codes {
            if b.contains(Some(system), code) == Membership::Member {
                out.codes
                    .entry(system.clone())
                    .or_default()
                    .insert(code.clone(), display.clone());
            }
        }
    }
    for (system, codes) in &b.codes {
        for (code, display) in codes {
            if a.contains(Some(system), code) == Membership::Member {
                out.codes
                    .entry(system.clone())
                    .or_default()
                    .insert(code.clone(), display.clone());
            }
        }
    }
    if !a.open.is_empty() && !b.open.is_empty() || a.incomplete.is_some() || b.incomplete.is_some()
    {
        out.incomplete = Some("intersection of value sets we cannot list".to_string());
    }
    out
}

fn merge(out: &mut Expansion, part: Expansion) {
    for (system, codes) in part.codes {
        out.codes.entry(system).or_default().extend(codes);
    }
    out.open.extend(part.open);
    out.excluded.extend(part.excluded);
    if out.incomplete.is_none() {
        out.incomplete = part.incomplete;
    }
}

fn filter(out: &mut Expansion, cs: &CodeSystem, filters: &[Value]) {
    let mut selected: Option<HashSet<String>> = None;
    for f in filters {
        let (property, op, value) = (
            f["property"].as_str().unwrap_or_default(),
            f["op"].as_str().unwrap_or_default(),
            f["value"].as_str().unwrap_or_default(),
        );
        let mut set = HashSet::new();
        match (property, op) {
            ("concept", "is-a") => cs.descendants(value, true, &mut set),
            ("concept", "descendent-of") => cs.descendants(value, false, &mut set),
            ("concept", "is-not-a") => {
                let mut below = HashSet::new();
                cs.descendants(value, true, &mut below);
                set = cs
                    .concepts
                    .keys()
                    .filter(|c| !below.contains(*c))
                    .cloned()
                    .collect();
            }
            ("concept", "in") => set = value.split(',').map(|s| s.trim().to_string()).collect(),
            _ => {
                out.incomplete = Some(format!(
                    "filter {property} {op} {value} on {} is not supported",
                    cs.url
                ));
                return;
            }
        }
        selected = Some(match selected {
            None => set,
            Some(prev) => prev.intersection(&set).cloned().collect(),
        });
    }
    let codes = out.codes.entry(cs.url.clone()).or_default();
    for code in selected.unwrap_or_default() {
        let display = cs.display(&code).map(str::to_string);
        codes.insert(code, display);
    }
    if !cs.is_complete() {
        out.incomplete = Some(format!(
            "code system {} is not complete here (content: {})",
            cs.url, cs.content
        ));
    }
}

/// BCP-47 language tag syntax (RFC 5646 `langtag`, private use and the regular
/// grandfathered tags); subtags are not checked against the IANA registry.
pub fn is_bcp47(tag: &str) -> bool {
    if tag.is_empty() || !tag.is_ascii() {
        return false;
    }
    let lower = tag.to_ascii_lowercase();
    const GRANDFATHERED: &[&str] = &[
        "art-lojban",
        "cel-gaulish",
        "no-bok",
        "no-nyn",
        "zh-guoyu",
        "zh-hakka",
        "zh-min",
        "zh-min-nan",
        "zh-xiang",
        "en-gb-oed",
        "i-ami",
        "i-bnn",
        "i-default",
        "i-enochian",
        "i-hak",
        "i-klingon",
        "i-lux",
        "i-mingo",
        "i-navajo",
        "i-pwn",
        "i-tao",
        "i-tay",
        "i-tsu",
        "sgn-be-fr",
        "sgn-be-nl",
        "sgn-ch-de",
    ];
    if GRANDFATHERED.contains(&lower.as_str()) {
        return true;
    }
    let parts: Vec<&str> = lower.split('-').collect();
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    let alpha = |s: &str| s.bytes().all(|c| c.is_ascii_lowercase());
    let digit = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    let alnum = |s: &str| s.bytes().all(|c| c.is_ascii_alphanumeric());
    let private_use = |rest: &[&str]| {
        !rest.is_empty() && rest.iter().all(|s| (1..=8).contains(&s.len()) && alnum(s))
    };
    if part(0) == "x" {
        return private_use(parts.get(1..).unwrap_or_default());
    }
    let mut i = 0;
    let lang = part(0);
    if !(alpha(lang) && (2..=8).contains(&lang.len())) {
        return false;
    }
    i += 1;
    // extlang: up to three 3-letter subtags after a 2-3 letter language.
    if lang.len() <= 3 {
        let mut n = 0;
        while n < 3 && i < parts.len() && part(i).len() == 3 && alpha(part(i)) {
            i += 1;
            n += 1;
        }
    }
    if i < parts.len() && part(i).len() == 4 && alpha(part(i)) {
        i += 1; // script
    }
    if i < parts.len()
        && ((part(i).len() == 2 && alpha(part(i))) || (part(i).len() == 3 && digit(part(i))))
    {
        i += 1; // region
    }
    while i < parts.len() {
        let p = part(i);
        let variant = ((5..=8).contains(&p.len()) && alnum(p))
            || (p.len() == 4 && p.as_bytes().first().is_some_and(u8::is_ascii_digit) && alnum(p));
        if !variant {
            break;
        }
        i += 1;
    }
    while i < parts.len() && part(i).len() == 1 && part(i) != "x" && alnum(part(i)) {
        i += 1;
        let start = i;
        while i < parts.len() && (2..=8).contains(&part(i).len()) && alnum(part(i)) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    if i < parts.len() && part(i) == "x" {
        return private_use(parts.get(i + 1..).unwrap_or_default());
    }
    i == parts.len()
}

/// UCUM unit expression syntax (the grammar of the UCUM specification §2: terms of
/// components joined by `.` and `/`, exponents, `10*3`-style factors, `[...]` atoms,
/// `{annotations}`, parentheses). Atoms are not checked against the UCUM table.
pub fn is_ucum(unit: &str) -> bool {
    if unit.is_empty() || !unit.is_ascii() || unit.bytes().any(|c| c.is_ascii_whitespace()) {
        return false;
    }
    let b = unit.as_bytes();
    let mut p = 0usize;
    // main-term: '/' term | term
    if b.first() == Some(&b'/') {
        p = 1;
    }
    ucum_term(b, &mut p, 0) && p == b.len()
}

fn ucum_term(b: &[u8], p: &mut usize, depth: usize) -> bool {
    if depth > 16 || !ucum_component(b, p, depth) {
        return false;
    }
    while matches!(b.get(*p), Some(b'.' | b'/')) {
        *p += 1;
        if !ucum_component(b, p, depth) {
            return false;
        }
    }
    true
}

fn ucum_component(b: &[u8], p: &mut usize, depth: usize) -> bool {
    match b.get(*p) {
        None => false,
        Some(b'(') => {
            *p += 1;
            if !ucum_term(b, p, depth + 1) || b.get(*p) != Some(&b')') {
                return false;
            }
            *p += 1;
            ucum_annotation(b, p)
        }
        Some(b'{') => ucum_annotation(b, p),
        Some(c) if c.is_ascii_digit() => {
            // factor, or 10*n / 10^n
            while b.get(*p).is_some_and(u8::is_ascii_digit) {
                *p += 1;
            }
            if matches!(b.get(*p), Some(b'*' | b'^')) {
                *p += 1;
                ucum_exponent(b, p)
            } else {
                ucum_annotation(b, p)
            }
        }
        Some(_) => {
            // simple unit: atom symbols (letters and bracketed parts), then an exponent.
            let start = *p;
            while let Some(&c0) = b.get(*p) {
                match c0 {
                    b'[' => {
                        let Some(end) = b
                            .get(*p..)
                            .unwrap_or_default()
                            .iter()
                            .position(|&c| c == b']')
                        else {
                            return false;
                        };
                        *p += end + 1;
                    }
                    b'.' | b'/' | b'(' | b')' | b'{' | b'}' | b']' => break,
                    b'+' | b'-' => break,
                    c if c.is_ascii_digit() => break,
                    b'\'' | b'%' | b'*' | b'^' | b'_' | b'!' | b'"' | b'#' | b'$' | b'&' | b','
                    | b':' | b';' | b'<' | b'=' | b'>' | b'?' | b'@' | b'\\' | b'`' | b'|'
                    | b'~' => {
                        if matches!(
                            c0,
                            b'\''
                                | b'%'
                                | b'_'
                                | b'!'
                                | b'"'
                                | b'#'
                                | b'$'
                                | b'&'
                                | b','
                                | b':'
                                | b';'
                                | b'<'
                                | b'='
                                | b'>'
                                | b'?'
                                | b'@'
                                | b'\\'
                                | b'`'
                                | b'|'
                                | b'~'
                        ) {
                            *p += 1;
                        } else {
                            break;
                        }
                    }
                    _ => *p += 1,
                }
            }
            if *p == start {
                return false;
            }
            if b.get(*p)
                .is_some_and(|c| *c == b'+' || *c == b'-' || c.is_ascii_digit())
            {
                ucum_exponent(b, p) && ucum_annotation(b, p)
            } else {
                ucum_annotation(b, p)
            }
        }
    }
}

fn ucum_exponent(b: &[u8], p: &mut usize) -> bool {
    if matches!(b.get(*p), Some(b'+' | b'-')) {
        *p += 1;
    }
    let start = *p;
    while b.get(*p).is_some_and(u8::is_ascii_digit) {
        *p += 1;
    }
    *p > start
}

fn ucum_annotation(b: &[u8], p: &mut usize) -> bool {
    if b.get(*p) == Some(&b'{') {
        let Some(end) = b
            .get(*p..)
            .unwrap_or_default()
            .iter()
            .position(|&c| c == b'}')
        else {
            return false;
        };
        if b.get(*p + 1..*p + end).is_some_and(|s| s.contains(&b'{')) {
            return false;
        }
        *p += end + 1;
    }
    true
}

/// MIME type syntax (RFC 2045/6838: `type/subtype` tokens and optional `; parameter=value`).
pub fn is_mime_type(s: &str) -> bool {
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
    };
    let mut parts = s.split(';');
    let Some(main) = parts.next() else {
        return false;
    };
    let Some((ty, sub)) = main.trim().split_once('/') else {
        return false;
    };
    token(ty)
        && token(sub)
        && parts.all(|p| match p.trim().split_once('=') {
            Some((k, v)) => token(k.trim()) && !v.trim().is_empty(),
            None => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Source {
        systems: HashMap<String, CodeSystem>,
        sets: HashMap<String, ValueSet>,
    }

    impl TerminologySource for Source {
        fn code_system(&self, url: &str) -> Option<&CodeSystem> {
            self.systems.get(url)
        }
        fn value_set_expansion(&self, url: &str, depth: usize) -> Option<Arc<Expansion>> {
            self.sets
                .get(url)
                .map(|vs| Arc::new(expand(vs, self, depth)))
        }
    }

    fn source() -> Source {
        let cs = CodeSystem::from_json(&json!({
            "url": "http://x/cs", "content": "complete",
            "concept": [
                {"code": "animal", "display": "Animal", "concept": [
                    {"code": "dog", "display": "Dog"},
                    {"code": "cat", "display": "Cat"}]},
                {"code": "plant", "display": "Plant"}]
        }))
        .unwrap();
        let imported = ValueSet::from_json(&json!({
            "url": "http://x/vs-plants",
            "compose": {"include": [{"system": "http://x/cs", "concept": [{"code": "plant"}]}]}
        }))
        .unwrap();
        Source {
            systems: HashMap::from([(cs.url.clone(), cs)]),
            sets: HashMap::from([(imported.url.clone(), imported)]),
        }
    }

    fn vs(compose: Value) -> ValueSet {
        ValueSet::from_json(&json!({"url": "http://x/vs", "compose": compose})).unwrap()
    }

    #[test]
    fn is_a_filter_takes_the_subtree() {
        let s = source();
        let e = expand(
            &vs(json!({"include": [{"system": "http://x/cs",
                "filter": [{"property": "concept", "op": "is-a", "value": "animal"}]}]})),
            &s,
            0,
        );
        assert_eq!(e.contains(Some("http://x/cs"), "dog"), Membership::Member);
        assert_eq!(
            e.contains(Some("http://x/cs"), "animal"),
            Membership::Member
        );
        assert_eq!(
            e.contains(Some("http://x/cs"), "plant"),
            Membership::NotMember
        );
        assert_eq!(e.display("http://x/cs", "cat"), Some("Cat"));
    }

    #[test]
    fn excludes_whole_systems_and_imports() {
        let s = source();
        let e = expand(
            &vs(json!({
                "include": [{"system": "http://x/cs"}, {"valueSet": ["http://x/vs-plants"]}],
                "exclude": [{"system": "http://x/cs", "concept": [{"code": "cat"}]}]})),
            &s,
            0,
        );
        assert_eq!(
            e.contains(Some("http://x/cs"), "cat"),
            Membership::NotMember
        );
        assert_eq!(e.contains(Some("http://x/cs"), "plant"), Membership::Member);
        assert_eq!(e.contains(None, "dog"), Membership::Member);
    }

    #[test]
    fn unknown_systems_are_unknown_not_wrong() {
        let s = source();
        let e = expand(
            &vs(json!({"include": [{"system": "http://loinc.org"}]})),
            &s,
            0,
        );
        assert!(matches!(
            e.contains(Some("http://loinc.org"), "1234-5"),
            Membership::Unknown(_)
        ));
        assert_eq!(e.contains(Some("http://other"), "x"), Membership::NotMember);
    }

    #[test]
    fn grammar_systems_check_syntax() {
        let s = source();
        let e = expand(&vs(json!({"include": [{"system": BCP47}]})), &s, 0);
        assert_eq!(e.contains(Some(BCP47), "fi-FI"), Membership::Member);
        assert_eq!(e.contains(Some(BCP47), "not a tag"), Membership::NotMember);
    }

    #[test]
    fn bcp47_tags() {
        for ok in [
            "fi",
            "sv-FI",
            "en-US",
            "zh-Hant-TW",
            "x-klingon",
            "de-CH-1996",
            "i-klingon",
            "es-419",
            "en-a-bbb-x-a-ccc",
        ] {
            assert!(is_bcp47(ok), "{ok}");
        }
        for bad in [
            "",
            "f",
            "fi_FI",
            "english-language-tag-x",
            "fi-",
            "-fi",
            "en-a",
            "123",
        ] {
            assert!(!is_bcp47(bad), "{bad}");
        }
    }

    #[test]
    fn ucum_units() {
        for ok in [
            "kg",
            "mm[Hg]",
            "mmol/L",
            "mL/kg/min",
            "[MET]",
            "1",
            "%",
            "/min",
            "10*3/uL",
            "kg/m2",
            "[iU]/h",
            "{steps}",
            "cm",
            "kcal",
            "g.m-2",
            "m/s2",
            "[in_i]",
            "(kg.m)/s2",
            "10^6",
        ] {
            assert!(is_ucum(ok), "{ok}");
        }
        for bad in ["", "mm Hg", "kg//m", "mm[Hg", "{a", "kg.", "()", "/"] {
            assert!(!is_ucum(bad), "{bad}");
        }
    }

    #[test]
    fn mime_types() {
        assert!(is_mime_type("application/fhir+json"));
        assert!(is_mime_type("text/plain; charset=utf-8"));
        assert!(!is_mime_type("text"));
        assert!(!is_mime_type("text/"));
        assert!(!is_mime_type("text/plain; charset"));
    }
}
