//! The contract between search and storage: index entries written with each resource version,
//! and the parsed query the storage engine executes. Change it with care: both sides use it.

/// Instants are microseconds since the Unix epoch (UTC).
pub type Micros = i64;

/// One value of one search parameter of one resource version.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    /// The search parameter's `code`, e.g. `code`, `date`, `subject`, `_lastUpdated`.
    pub param: String,
    pub value: IndexValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IndexValue {
    /// Coding, Identifier, ContactPoint, code, boolean, ... `text` carries Coding.display /
    /// CodeableConcept.text / Identifier.type.text for `:text` searches, normalized like
    /// `String::normalized`. A CodeableConcept's text also gets an entry of its own with
    /// neither system nor code.
    ///
    /// Two extra shapes ride on existing variants: a reference parameter carries a `Token`
    /// (system, value) for each logical `Reference.identifier` (for `:identifier`), and a
    /// token parameter over Identifiers carries `Composite([Token(type coding), Token(None,
    /// value)])` for each `Identifier.type` coding (for `:of-type`).
    Token {
        system: Option<String>,
        code: Option<String>,
        text: Option<String>,
    },
    /// `normalized` is lower-cased with accents removed (for default and `:contains`
    /// matching); `exact` is the original text (for `:exact`).
    String {
        normalized: String,
        exact: String,
    },
    /// The period the value covers, both ends inclusive, at the value's own precision:
    /// `2024-05` is [2024-05-01T00:00:00, 2024-05-31T23:59:59.999999]. Values without a time
    /// zone are UTC; a Period's open end is `Micros::MIN` / `Micros::MAX`.
    Date {
        low: Micros,
        high: Micros,
    },
    /// The value and the range its written precision implies (`1.50` is [1.495, 1.505]).
    Number {
        value: f64,
        low: f64,
        high: f64,
    },
    /// A Quantity (or Money, Duration...). `system`/`code` are the coded unit (UCUM), `unit`
    /// the human unit text. `low`/`high` as for `Number`; a comparator opens the range
    /// (`<5` is [-inf, 5.5]); a Range gives its bounds (open side infinite) and their
    /// midpoint as `value`; Money has system `urn:iso:std:iso:4217` and the currency code.
    Quantity {
        value: f64,
        low: f64,
        high: f64,
        system: Option<String>,
        code: Option<String>,
        unit: Option<String>,
    },
    /// A literal reference, split: `Patient/123` is type `Patient`, id `123`. Absolute or
    /// canonical references keep the whole string in `url` and leave `id` empty (a
    /// canonical's `|version` goes to `version`; `target_type` is set when the URL ends in
    /// `Type/id`).
    Reference {
        target_type: Option<String>,
        id: String,
        version: Option<String>,
        url: Option<String>,
    },
    Uri(String),
    /// A composite parameter (`code-value-quantity`...): one component value per component,
    /// in the order of the SearchParameter's `component` list, taken from the same element.
    Composite(Vec<IndexValue>),
}

/// A parsed search, scoped to one resource type.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchQuery {
    pub resource_type: String,
    /// The patient compartment the search is confined to (Patient id). Set from the mandatory
    /// `patient` parameter and, with authorization, forced to the token's patient.
    pub compartment: Option<String>,
    /// Every clause must hold (AND); each clause holds when any of its values matches (OR).
    pub clauses: Vec<Clause>,
    pub sort: Vec<SortKey>,
    /// Page size after applying the default and the maximum.
    pub count: usize,
    pub total: TotalMode,
    pub summary: Summary,
    /// `_elements`, empty when absent.
    pub elements: Vec<String>,
    pub include: Vec<Include>,
    pub revinclude: Vec<Include>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    /// The search parameter's code.
    pub param: String,
    pub modifier: Option<Modifier>,
    /// A chained parameter (`subject:Patient.identifier=x`) or a reverse chain (`_has`).
    pub chain: Option<Box<Chain>>,
    /// OR-ed values; empty with `:missing` and with a chain (the values are then in the
    /// chain's inner clause).
    ///
    /// The value variant follows the parameter type, except: `:text` on a token gives
    /// `Token { system: None, code: Some(text) }` with the text normalized, to match
    /// `IndexValue::Token::text`; `:in`/`:not-in` give `Uri` (the ValueSet); `:of-type`
    /// gives `Composite([Token(type), Token(None, value)])`; `:identifier` on a reference
    /// gives `Token`; `:above`/`:below` on a reference give `Uri` (the canonical).
    pub values: Vec<QueryValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Chain {
    /// `param[:Type].inner` — follows the reference in `param` to a resource of
    /// `target_type` for which `inner` holds. `target_type` is empty when the reference may
    /// point at several types that all define `inner` (`subject.identifier`): the referenced
    /// resource's own type applies.
    Forward { target_type: String, inner: Clause },
    /// `_has:Type:refParam:inner` — resources referenced from a `source_type` resource by
    /// `reference_param` for which `inner` holds.
    Reverse {
        source_type: String,
        reference_param: String,
        inner: Clause,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    Missing(bool),
    Exact,
    Contains,
    Text,
    Not,
    Above,
    Below,
    In,
    NotIn,
    OfType,
    Identifier,
    /// `:Type` on a reference parameter; the type is in each value's `target_type`.
    Type,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Prefix {
    #[default]
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    Token {
        system: Option<TokenSystem>,
        code: Option<String>,
    },
    /// Matched per the clause's modifier: normalized (see `crate::text::normalize`) and
    /// matched as a prefix by default, anywhere with `:contains`; the exact original text
    /// with `:exact`.
    String(String),
    /// The value's implicit range at its precision, both ends inclusive.
    Date {
        prefix: Prefix,
        low: Micros,
        high: Micros,
    },
    Number {
        prefix: Prefix,
        value: f64,
        low: f64,
        high: f64,
    },
    Quantity {
        prefix: Prefix,
        value: f64,
        low: f64,
        high: f64,
        system: Option<String>,
        code: Option<String>,
    },
    Reference {
        target_type: Option<String>,
        id: String,
        version: Option<String>,
        url: Option<String>,
    },
    Uri(String),
    Composite(Vec<QueryValue>),
}

/// The system part of a token value: `system|code` (`Some(Is(..))`), `|code` (`Some(None)`:
/// the coding must have no system), or `code` (`None` in QueryValue: any system).
#[derive(Debug, Clone, PartialEq)]
pub enum TokenSystem {
    Is(String),
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub param: String,
    pub descending: bool,
}

/// `_total`. Without the parameter every searchset carries its total (Kanta's clients read
/// `Bundle.total` before the entries), as with `estimate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TotalMode {
    /// `_total=none`: never.
    None,
    /// `_total=estimate`, and the default: the exact count, free when the first page holds
    /// every match, else counted once on the first page (later pages carry it in their
    /// cursor).
    #[default]
    Estimate,
    /// `_total=accurate`: always counted.
    Accurate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Summary {
    #[default]
    False,
    True,
    Count,
    Data,
    Text,
}

/// `_include=Source:param[:Target]` or `_revinclude=Source:param[:Target]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Include {
    pub source_type: String,
    pub param: String,
    pub target_type: Option<String>,
    pub iterate: bool,
}
