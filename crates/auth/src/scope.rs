//! OAuth scopes: Kanta style (`patient/Observation.read|write`), SMART v1 (`patient/*.read`),
//! SMART v2 (`patient/Observation.rs`, `.cud`, granular `?category=system|code`) and the
//! context scopes (`launch/patient`, `openid`, `fhirUser`, `offline_access`).
//!
//! A [`ScopeSet`] is the checkable form: the FHIR layer asks it whether an interaction on a
//! resource type is allowed and under which granular filters. Grants are computed as the
//! intersection of what the app is registered for, what it asked and what the citizen
//! approved ([`ScopeSet::intersect`]); a scope that survives unchanged keeps the exact text
//! the client asked for, so clients comparing strings see their own spelling back.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

/// The FHIR interactions a scope can permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interaction {
    /// read, vread, history of one resource.
    Read,
    /// search, history of a type.
    Search,
    Create,
    Update,
    Delete,
}

impl Interaction {
    fn bit(self) -> Perms {
        match self {
            Interaction::Create => Perms::C,
            Interaction::Read => Perms::R,
            Interaction::Update => Perms::U,
            Interaction::Delete => Perms::D,
            Interaction::Search => Perms::S,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Interaction::Read => "read",
            Interaction::Search => "search",
            Interaction::Create => "create",
            Interaction::Update => "update",
            Interaction::Delete => "delete",
        }
    }

    pub fn is_write(self) -> bool {
        matches!(
            self,
            Interaction::Create | Interaction::Update | Interaction::Delete
        )
    }
}

/// SMART v2 permission letters `c r u d s`, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Perms(u8);

impl Perms {
    pub const C: Perms = Perms(1);
    pub const R: Perms = Perms(2);
    pub const U: Perms = Perms(4);
    pub const D: Perms = Perms(8);
    pub const S: Perms = Perms(16);
    pub const NONE: Perms = Perms(0);
    /// v1 `.read`.
    pub const READ: Perms = Perms(2 | 16);
    /// v1 `.write`.
    pub const WRITE: Perms = Perms(1 | 4 | 8);
    pub const ALL: Perms = Perms(31);

    pub fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn and(self, other: Perms) -> Perms {
        Perms(self.0 & other.0)
    }
    pub fn or(self, other: Perms) -> Perms {
        Perms(self.0 | other.0)
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// True when the permission includes any of read/search.
    pub fn reads(self) -> bool {
        self.0 & Perms::READ.0 != 0
    }
    /// True when the permission includes any of create/update/delete.
    pub fn writes(self) -> bool {
        self.0 & Perms::WRITE.0 != 0
    }

    /// Parses the part after the dot: v1 `read`/`write`/`*`, or v2 letters in `cruds` order.
    fn parse(text: &str) -> Option<Perms> {
        match text {
            "read" => return Some(Perms::READ),
            "write" => return Some(Perms::WRITE),
            "*" => return Some(Perms::ALL),
            _ => {}
        }
        let order = [
            ('c', Perms::C),
            ('r', Perms::R),
            ('u', Perms::U),
            ('d', Perms::D),
            ('s', Perms::S),
        ];
        let mut perms = Perms::NONE;
        let mut next = 0;
        for ch in text.chars() {
            // Letters in c-r-u-d-s order, each at most once.
            let (offset, (_, bit)) = order
                .get(next..)?
                .iter()
                .enumerate()
                .find(|(_, (letter, _))| *letter == ch)?;
            perms = perms.or(*bit);
            next += offset + 1;
        }
        if perms.is_empty() { None } else { Some(perms) }
    }

    /// The v2 letters.
    pub fn letters(self) -> String {
        [
            ('c', Perms::C),
            ('r', Perms::R),
            ('u', Perms::U),
            ('d', Perms::D),
            ('s', Perms::S),
        ]
        .iter()
        .filter(|(_, bit)| self.contains(*bit))
        .map(|(letter, _)| *letter)
        .collect()
    }
}

/// Whose data a resource scope speaks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeContext {
    /// `patient/`: the patient in context (the citizen who granted).
    Patient,
    /// `user/`: what the signed-in user may see (for a citizen: their own data).
    User,
    /// `system/`: backend services (client_credentials), no user.
    System,
}

impl ScopeContext {
    fn prefix(self) -> &'static str {
        match self {
            ScopeContext::Patient => "patient",
            ScopeContext::User => "user",
            ScopeContext::System => "system",
        }
    }
}

/// One granular restriction `param=[system|]code` from a SMART v2 scope's query part.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeFilter {
    pub param: String,
    pub system: Option<String>,
    pub code: String,
}

impl ScopeFilter {
    fn to_query(&self) -> String {
        match &self.system {
            Some(system) => format!("{}={}|{}", self.param, system, self.code),
            None => format!("{}={}", self.param, self.code),
        }
    }

    /// Whether `resource` carries a matching coding in the element named like the
    /// parameter (`category`, `code`); elements may be one CodeableConcept or a list.
    pub fn matches(&self, resource: &Value) -> bool {
        let Some(element) = resource.get(&self.param) else {
            return false;
        };
        let concepts: Vec<&Value> = match element {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        concepts
            .iter()
            .filter_map(|concept| concept.get("coding").and_then(Value::as_array))
            .flatten()
            .any(|coding| {
                let code_matches =
                    coding.get("code").and_then(Value::as_str) == Some(self.code.as_str());
                let system_matches = match &self.system {
                    Some(system) => {
                        coding.get("system").and_then(Value::as_str) == Some(system.as_str())
                    }
                    None => true,
                };
                code_matches && system_matches
            })
    }
}

/// One resource-level scope, e.g. `patient/Observation.rs?category=…|vital-signs`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceScope {
    pub context: ScopeContext,
    /// `None` is `*` (every type).
    pub resource_type: Option<String>,
    pub perms: Perms,
    /// All must match (SMART: the query part of one scope is a conjunction).
    pub filters: BTreeSet<ScopeFilter>,
    /// The text the client wrote, kept while the scope is granted unchanged.
    original: Option<String>,
}

impl ResourceScope {
    pub fn new(context: ScopeContext, resource_type: Option<&str>, perms: Perms) -> Self {
        ResourceScope {
            context,
            resource_type: resource_type.map(str::to_owned),
            perms,
            filters: BTreeSet::new(),
            original: None,
        }
    }

    fn parse(text: &str) -> Result<Option<ResourceScope>, ScopeError> {
        let Some((prefix, rest)) = text.split_once('/') else {
            return Ok(None);
        };
        let context = match prefix {
            "patient" => ScopeContext::Patient,
            "user" => ScopeContext::User,
            "system" => ScopeContext::System,
            _ => return Ok(None),
        };
        let invalid = || ScopeError::Invalid(text.to_owned());
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        let (type_part, perm_part) = path.rsplit_once('.').ok_or_else(invalid)?;
        let resource_type = match type_part {
            "*" => None,
            name if is_resource_type_name(name) => Some(name.to_owned()),
            _ => return Err(invalid()),
        };
        let perms = Perms::parse(perm_part).ok_or_else(invalid)?;
        let v1 = matches!(perm_part, "read" | "write" | "*");
        let mut filters = BTreeSet::new();
        if let Some(query) = query {
            if v1 {
                // Granular filters are a SMART v2 feature only.
                return Err(invalid());
            }
            for pair in query.split('&') {
                let (param, value) = pair.split_once('=').ok_or_else(invalid)?;
                let value = percent_encoding::percent_decode_str(value)
                    .decode_utf8()
                    .map_err(|_| invalid())?;
                if param.is_empty()
                    || value.is_empty()
                    || !param
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Err(invalid());
                }
                let (system, code) = match value.rsplit_once('|') {
                    Some((system, code)) => (
                        (!system.is_empty()).then(|| system.to_owned()),
                        code.to_owned(),
                    ),
                    None => (None, value.into_owned()),
                };
                if code.is_empty() {
                    return Err(invalid());
                }
                filters.insert(ScopeFilter {
                    param: param.to_owned(),
                    system,
                    code,
                });
            }
        }
        Ok(Some(ResourceScope {
            context,
            resource_type,
            perms,
            filters,
            original: Some(text.to_owned()),
        }))
    }

    /// True when every access this scope allows is also allowed by `other`.
    pub fn is_subset_of(&self, other: &ResourceScope) -> bool {
        self.context == other.context
            && (other.resource_type.is_none() || other.resource_type == self.resource_type)
            && other.perms.contains(self.perms)
            && other.filters.is_subset(&self.filters)
    }

    /// The accesses both allow, if any.
    pub fn intersect(&self, other: &ResourceScope) -> Option<ResourceScope> {
        if self.context != other.context {
            return None;
        }
        let resource_type = match (&self.resource_type, &other.resource_type) {
            (None, t) | (t, None) => t.clone(),
            (Some(a), Some(b)) if a == b => Some(a.clone()),
            _ => return None,
        };
        let perms = self.perms.and(other.perms);
        if perms.is_empty() {
            return None;
        }
        let filters: BTreeSet<ScopeFilter> = self.filters.union(&other.filters).cloned().collect();
        let mut result = ResourceScope {
            context: self.context,
            resource_type,
            perms,
            filters,
            original: None,
        };
        // Unchanged from the left operand: keep the client's own spelling.
        if result.is_subset_of(self) && self.is_subset_of(&result) {
            result.original = self.original.clone();
        }
        Some(result)
    }

    /// SMART v2 text, e.g. `patient/Observation.rs?category=http://…|vital-signs`.
    pub fn to_v2(&self) -> String {
        let mut text = format!(
            "{}/{}.{}",
            self.context.prefix(),
            self.resource_type.as_deref().unwrap_or("*"),
            self.perms.letters()
        );
        if !self.filters.is_empty() {
            text.push('?');
            let parts: Vec<String> = self.filters.iter().map(ScopeFilter::to_query).collect();
            text.push_str(&parts.join("&"));
        }
        text
    }

    fn covers(&self, context: ScopeContext, resource_type: &str, perm: Perms) -> bool {
        self.context == context
            && self
                .resource_type
                .as_deref()
                .is_none_or(|t| t == resource_type)
            && self.perms.contains(perm)
    }
}

impl fmt::Display for ResourceScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.original {
            Some(text) => f.write_str(text),
            None => f.write_str(&self.to_v2()),
        }
    }
}

fn is_resource_type_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase()) && chars.all(|c| c.is_ascii_alphanumeric())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("malformed scope {0:?}")]
    Invalid(String),
}

/// The context (non-resource) scopes this server understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Special {
    LaunchPatient,
    OpenId,
    FhirUser,
    OfflineAccess,
    OnlineAccess,
    /// SMART EHR launch: the authorization request carries a `launch` issued by the
    /// organisation's system.
    Launch,
}

impl Special {
    const ALL: [(Special, &'static str); 6] = [
        (Special::LaunchPatient, "launch/patient"),
        (Special::OpenId, "openid"),
        (Special::FhirUser, "fhirUser"),
        (Special::OfflineAccess, "offline_access"),
        (Special::OnlineAccess, "online_access"),
        (Special::Launch, "launch"),
    ];

    pub fn text(self) -> &'static str {
        Special::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map(|(_, t)| *t)
            .unwrap_or("")
    }

    fn parse(text: &str) -> Option<Special> {
        Special::ALL
            .iter()
            .find(|(_, t)| *t == text)
            .map(|(s, _)| *s)
    }
}

/// What an interaction on a resource type is allowed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Denied,
    /// Allowed for every resource of the type.
    Unrestricted,
    /// Allowed only for resources matching at least one of these filter sets (each set is a
    /// conjunction): searches must add them to the query, reads and writes must check them.
    Filtered(Vec<BTreeSet<ScopeFilter>>),
}

impl Access {
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Access::Denied)
    }

    /// Whether `resource` (JSON) falls under this access.
    pub fn permits_resource(&self, resource: &Value) -> bool {
        match self {
            Access::Denied => false,
            Access::Unrestricted => true,
            Access::Filtered(sets) => sets
                .iter()
                .any(|set| set.iter().all(|filter| filter.matches(resource))),
        }
    }
}

/// A parsed scope string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet {
    pub resources: Vec<ResourceScope>,
    pub special: BTreeSet<Special>,
}

impl ScopeSet {
    /// Parses a space-separated scope string. Scopes this server does not know (`profile`,
    /// `launch`, …) are dropped: OAuth lets a server grant less than asked, and the token
    /// response's `scope` says what was granted. A malformed resource scope is an error.
    pub fn parse(text: &str) -> Result<ScopeSet, ScopeError> {
        let mut set = ScopeSet::default();
        for token in text.split_ascii_whitespace() {
            if let Some(special) = Special::parse(token) {
                set.special.insert(special);
            } else if let Some(scope) = ResourceScope::parse(token)?
                && !set.resources.contains(&scope)
            {
                set.resources.push(scope);
            }
        }
        Ok(set)
    }

    pub fn has(&self, special: Special) -> bool {
        self.special.contains(&special)
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty() && self.special.is_empty()
    }

    /// The accesses allowed by both sets. Scopes of `self` that survive unchanged keep
    /// their text.
    pub fn intersect(&self, other: &ScopeSet) -> ScopeSet {
        let mut resources: Vec<ResourceScope> = Vec::new();
        for mine in &self.resources {
            for theirs in &other.resources {
                if let Some(both) = mine.intersect(theirs) {
                    resources.push(both);
                }
            }
        }
        ScopeSet {
            resources: minimal(resources),
            special: self.special.intersection(&other.special).copied().collect(),
        }
    }

    /// True when `other` allows nothing beyond what `self` allows.
    pub fn contains(&self, other: &ScopeSet) -> bool {
        other.special.is_subset(&self.special)
            && other
                .resources
                .iter()
                .all(|theirs| self.resources.iter().any(|mine| theirs.is_subset_of(mine)))
    }

    /// Whether `interaction` on `resource_type` is allowed, for data of the patient in
    /// context (patient/ and user/ scopes) or, with `system`, for backend services.
    pub fn access(&self, resource_type: &str, interaction: Interaction, system: bool) -> Access {
        let contexts: &[ScopeContext] = if system {
            &[ScopeContext::System]
        } else {
            &[ScopeContext::Patient, ScopeContext::User]
        };
        let mut sets = Vec::new();
        for scope in &self.resources {
            if contexts
                .iter()
                .any(|c| scope.covers(*c, resource_type, interaction.bit()))
            {
                if scope.filters.is_empty() {
                    return Access::Unrestricted;
                }
                sets.push(scope.filters.clone());
            }
        }
        if sets.is_empty() {
            Access::Denied
        } else {
            Access::Filtered(sets)
        }
    }

    /// The resource scopes only (for listing on the consent page).
    pub fn resource_scopes(&self) -> &[ResourceScope] {
        &self.resources
    }

    /// True when some resource scope has the system context.
    pub fn has_system_scopes(&self) -> bool {
        self.resources
            .iter()
            .any(|r| r.context == ScopeContext::System)
    }

    /// True when some resource scope has the patient or user context.
    pub fn has_patient_scopes(&self) -> bool {
        self.resources
            .iter()
            .any(|r| r.context != ScopeContext::System)
    }
}

/// Drops scopes contained in another one, keeping the first of equal ones.
fn minimal(scopes: Vec<ResourceScope>) -> Vec<ResourceScope> {
    let mut kept: Vec<ResourceScope> = Vec::new();
    for (i, scope) in scopes.iter().enumerate() {
        let redundant = scopes.iter().enumerate().any(|(j, other)| {
            j != i && scope.is_subset_of(other) && (!other.is_subset_of(scope) || j < i)
        });
        if !redundant {
            kept.push(scope.clone());
        }
    }
    kept
}

impl fmt::Display for ScopeSet {
    /// Resource scopes first (in order), then context scopes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.resources.iter().map(ToString::to_string).collect();
        parts.extend(self.special.iter().map(|s| s.text().to_owned()));
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CAT: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

    fn set(text: &str) -> ScopeSet {
        ScopeSet::parse(text).unwrap()
    }

    #[test]
    fn kanta_read_scope_allows_read_and_search_only() {
        let scopes = set("patient/Observation.read");
        assert_eq!(
            scopes.access("Observation", Interaction::Read, false),
            Access::Unrestricted
        );
        assert_eq!(
            scopes.access("Observation", Interaction::Search, false),
            Access::Unrestricted
        );
        for write in [
            Interaction::Create,
            Interaction::Update,
            Interaction::Delete,
        ] {
            assert_eq!(scopes.access("Observation", write, false), Access::Denied);
        }
        assert_eq!(
            scopes.access("MedicationAdministration", Interaction::Read, false),
            Access::Denied
        );
    }

    #[test]
    fn kanta_write_scope_allows_create_update_delete() {
        let scopes = set("patient/Observation.write");
        assert!(
            scopes
                .access("Observation", Interaction::Create, false)
                .is_allowed()
        );
        assert!(
            scopes
                .access("Observation", Interaction::Update, false)
                .is_allowed()
        );
        assert!(
            scopes
                .access("Observation", Interaction::Delete, false)
                .is_allowed()
        );
        assert!(
            !scopes
                .access("Observation", Interaction::Read, false)
                .is_allowed()
        );
    }

    #[test]
    fn smart_v1_wildcard_covers_every_type() {
        let scopes = set("patient/*.read");
        assert!(
            scopes
                .access("QuestionnaireResponse", Interaction::Search, false)
                .is_allowed()
        );
        assert!(
            !scopes
                .access("QuestionnaireResponse", Interaction::Create, false)
                .is_allowed()
        );
    }

    #[test]
    fn smart_v2_letters_are_exact() {
        let scopes = set("patient/Observation.rs patient/MedicationAdministration.cud");
        assert!(
            scopes
                .access("Observation", Interaction::Search, false)
                .is_allowed()
        );
        assert!(
            !scopes
                .access("Observation", Interaction::Create, false)
                .is_allowed()
        );
        assert!(
            scopes
                .access("MedicationAdministration", Interaction::Update, false)
                .is_allowed()
        );
        assert!(
            !scopes
                .access("MedicationAdministration", Interaction::Read, false)
                .is_allowed()
        );
    }

    #[test]
    fn v2_letters_out_of_order_or_repeated_are_malformed() {
        for bad in [
            "patient/Observation.sr",
            "patient/Observation.rr",
            "patient/Observation.x",
            "patient/Observation.",
        ] {
            assert!(ScopeSet::parse(bad).is_err(), "{bad}");
        }
        assert!(ScopeSet::parse("patient/observation.read").is_err());
        assert!(ScopeSet::parse("patient/Observation.read?category=x").is_err());
    }

    #[test]
    fn unknown_scopes_are_dropped_not_errors() {
        let scopes = set("profile launch/encounter openid fhirUser offline_access launch/patient");
        assert!(scopes.resources.is_empty());
        assert!(
            set("launch").has(Special::Launch),
            "the EHR launch scope is known"
        );
        assert!(scopes.has(Special::OpenId) && scopes.has(Special::FhirUser));
        assert!(scopes.has(Special::OfflineAccess) && scopes.has(Special::LaunchPatient));
        assert_eq!(
            scopes.to_string(),
            "launch/patient openid fhirUser offline_access"
        );
    }

    #[test]
    fn granular_category_filter_restricts_resources() {
        let scopes = set(&format!(
            "patient/Observation.rs?category={CAT}|vital-signs"
        ));
        let access = scopes.access("Observation", Interaction::Search, false);
        let Access::Filtered(sets) = &access else {
            panic!("expected filtered, got {access:?}")
        };
        assert_eq!(sets.len(), 1);
        let vital = json!({"resourceType": "Observation", "category": [{"coding": [{"system": CAT, "code": "vital-signs"}]}]});
        let activity = json!({"resourceType": "Observation", "category": [{"coding": [{"system": CAT, "code": "activity"}]}]});
        assert!(access.permits_resource(&vital));
        assert!(!access.permits_resource(&activity));
        assert!(!access.permits_resource(&json!({"resourceType": "Observation"})));
    }

    #[test]
    fn unfiltered_scope_wins_over_filtered_one() {
        let scopes = set(&format!(
            "patient/Observation.rs?category={CAT}|vital-signs patient/Observation.rs"
        ));
        assert_eq!(
            scopes.access("Observation", Interaction::Read, false),
            Access::Unrestricted
        );
    }

    #[test]
    fn system_scopes_do_not_grant_patient_access_and_vice_versa() {
        let system = set("system/Observation.rs");
        assert!(
            !system
                .access("Observation", Interaction::Read, false)
                .is_allowed()
        );
        assert!(
            system
                .access("Observation", Interaction::Read, true)
                .is_allowed()
        );
        let patient = set("patient/Observation.rs");
        assert!(
            !patient
                .access("Observation", Interaction::Read, true)
                .is_allowed()
        );
    }

    #[test]
    fn grant_is_intersection_and_keeps_client_spelling() {
        let registered = set("patient/Observation.read patient/Observation.write offline_access");
        let requested = set(
            "patient/Observation.read patient/MedicationAdministration.read offline_access openid",
        );
        let approved = set("patient/*.* offline_access openid");
        let granted = requested.intersect(&registered).intersect(&approved);
        assert_eq!(
            granted.to_string(),
            "patient/Observation.read offline_access"
        );
    }

    #[test]
    fn narrowed_scopes_are_written_in_v2() {
        let registered = set("patient/Observation.rs");
        let requested = set("patient/*.*");
        let granted = requested.intersect(&registered);
        assert_eq!(granted.to_string(), "patient/Observation.rs");
        let granular = set(&format!(
            "patient/Observation.rs?category={CAT}|vital-signs"
        ));
        assert_eq!(
            set("patient/Observation.read")
                .intersect(&granular)
                .to_string(),
            format!("patient/Observation.rs?category={CAT}|vital-signs")
        );
    }

    #[test]
    fn intersection_never_widens() {
        let a = set("patient/Observation.cruds patient/*.rs");
        let b = set("patient/Observation.r user/Observation.rs");
        let both = a.intersect(&b);
        assert!(a.contains(&both) && b.contains(&both));
        assert_eq!(both.to_string(), "patient/Observation.r");
    }

    #[test]
    fn contains_checks_every_scope() {
        let family = set("patient/Observation.read offline_access");
        assert!(family.contains(&set("patient/Observation.rs")));
        assert!(family.contains(&set("patient/Observation.r")));
        assert!(!family.contains(&set("patient/Observation.write")));
        assert!(!family.contains(&set("openid")));
    }

    #[test]
    fn filter_value_may_be_percent_encoded_and_without_system() {
        let scopes = set("patient/Observation.rs?category=http%3A%2F%2Fexample.org%7Cx&code=123");
        let filters: Vec<_> = scopes.resources[0].filters.iter().cloned().collect();
        assert_eq!(
            filters[0],
            ScopeFilter {
                param: "category".into(),
                system: Some("http://example.org".into()),
                code: "x".into()
            }
        );
        assert_eq!(
            filters[1],
            ScopeFilter {
                param: "code".into(),
                system: None,
                code: "123".into()
            }
        );
    }
}
