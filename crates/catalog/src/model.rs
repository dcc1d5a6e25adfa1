//! The vocabulary the catalogue is declared in: element rules (what a StructureDefinition
//! differential says about one element), invariants, bindings, slicing, and names in the three
//! languages of the service. Nothing here knows a particular profile.

use std::fmt;

/// A language the service speaks to people in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Fi,
    Sv,
    En,
}

impl Lang {
    /// The BCP-47 code (`fi`, `sv`, `en`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fi => "fi",
            Lang::Sv => "sv",
            Lang::En => "en",
        }
    }

    /// Parses `fi`, `sv`, `en`, also with a region (`fi-FI`, `sv-FI`, `en-GB`).
    pub fn parse(code: &str) -> Option<Lang> {
        let primary = code.split(['-', '_']).next().unwrap_or("");
        match primary.to_ascii_lowercase().as_str() {
            "fi" => Some(Lang::Fi),
            "sv" => Some(Lang::Sv),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// A name in Finnish, Swedish and English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Names {
    pub fi: &'static str,
    pub sv: &'static str,
    pub en: &'static str,
}

impl Names {
    pub const fn new(fi: &'static str, sv: &'static str, en: &'static str) -> Self {
        Names { fi, sv, en }
    }

    pub fn get(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::Fi => self.fi,
            Lang::Sv => self.sv,
            Lang::En => self.en,
        }
    }
}

/// `ElementDefinition.max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Max {
    N(u32),
    Many,
}

impl fmt::Display for Max {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Max::N(n) => write!(f, "{n}"),
            Max::Many => f.write_str("*"),
        }
    }
}

/// A `fixed[x]` value of a primitive element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fixed {
    Uri(&'static str),
    Code(&'static str),
    String(&'static str),
    Canonical(&'static str),
}

impl Fixed {
    /// The ElementDefinition property name (`fixedUri`, ...).
    pub fn property(&self) -> &'static str {
        match self {
            Fixed::Uri(_) => "fixedUri",
            Fixed::Code(_) => "fixedCode",
            Fixed::String(_) => "fixedString",
            Fixed::Canonical(_) => "fixedCanonical",
        }
    }

    pub fn value(&self) -> &'static str {
        match self {
            Fixed::Uri(v) | Fixed::Code(v) | Fixed::String(v) | Fixed::Canonical(v) => v,
        }
    }
}

/// `ElementDefinition.type`: a type code with optional profiles and target profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeRef {
    pub code: &'static str,
    pub profile: &'static [&'static str],
    pub target_profile: &'static [&'static str],
}

impl TypeRef {
    pub const fn code(code: &'static str) -> Self {
        TypeRef {
            code,
            profile: &[],
            target_profile: &[],
        }
    }

    /// `Extension` constrained to the extension definition `url`.
    pub const fn extension(url: &'static [&'static str]) -> Self {
        TypeRef {
            code: "Extension",
            profile: url,
            target_profile: &[],
        }
    }

    /// `Reference` (or `canonical`) to `targets`.
    pub const fn reference(code: &'static str, targets: &'static [&'static str]) -> Self {
        TypeRef {
            code,
            profile: &[],
            target_profile: targets,
        }
    }
}

/// `ElementDefinition.binding.strength`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    Required,
    Extensible,
    Preferred,
    Example,
}

impl Strength {
    pub fn code(self) -> &'static str {
        match self {
            Strength::Required => "required",
            Strength::Extensible => "extensible",
            Strength::Preferred => "preferred",
            Strength::Example => "example",
        }
    }
}

/// `ElementDefinition.binding`; `value_set: None` keeps the value set of the base element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub strength: Strength,
    pub value_set: Option<&'static str>,
}

/// `ElementDefinition.slicing.discriminator.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscriminatorType {
    Value,
    Pattern,
    Type,
    Profile,
    Exists,
}

impl DiscriminatorType {
    pub fn code(self) -> &'static str {
        match self {
            DiscriminatorType::Value => "value",
            DiscriminatorType::Pattern => "pattern",
            DiscriminatorType::Type => "type",
            DiscriminatorType::Profile => "profile",
            DiscriminatorType::Exists => "exists",
        }
    }
}

/// `ElementDefinition.slicing.rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlicingRules {
    Open,
    Closed,
}

/// `ElementDefinition.slicing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slicing {
    pub discriminator: Vec<(DiscriminatorType, &'static str)>,
    pub rules: SlicingRules,
}

impl Slicing {
    /// Sliced by the value at `paths` (e.g. `system` and `code` of a Coding).
    pub fn by_value(paths: &[&'static str], rules: SlicingRules) -> Self {
        Slicing {
            discriminator: paths
                .iter()
                .map(|p| (DiscriminatorType::Value, *p))
                .collect(),
            rules,
        }
    }

    /// A choice element sliced by its type (`value[x]:valueQuantity`).
    pub fn by_type() -> Self {
        Slicing {
            discriminator: vec![(DiscriminatorType::Type, "$this")],
            rules: SlicingRules::Open,
        }
    }
}

/// `ElementDefinition.constraint.severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvariantSeverity {
    Error,
    Warning,
}

/// A FHIRPath invariant (`ElementDefinition.constraint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invariant {
    pub key: &'static str,
    pub severity: InvariantSeverity,
    pub human: &'static str,
    pub expression: &'static str,
}

/// What a differential says about one element. `id` is the element id, with `:sliceName`
/// on sliced segments (`Observation.code.coding:fiphrCode.system`); every other field is a
/// constraint added to what the base says, `None`/empty meaning "as in the base".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct El {
    pub id: String,
    pub min: Option<u32>,
    pub max: Option<Max>,
    pub fixed: Option<Fixed>,
    pub types: Vec<TypeRef>,
    pub binding: Option<Binding>,
    pub slicing: Option<Slicing>,
    pub invariants: Vec<Invariant>,
    pub short: Option<&'static str>,
}

/// Starts the rules about the element `id`.
pub fn el(id: impl Into<String>) -> El {
    El {
        id: id.into(),
        ..El::default()
    }
}

impl El {
    pub fn card(mut self, min: u32, max: Max) -> Self {
        self.min = Some(min);
        self.max = Some(max);
        self
    }

    /// Exactly one (`1..1`).
    pub fn one(self) -> Self {
        self.card(1, Max::N(1))
    }

    pub fn min(mut self, min: u32) -> Self {
        self.min = Some(min);
        self
    }

    pub fn max(mut self, max: u32) -> Self {
        self.max = Some(Max::N(max));
        self
    }

    /// Prohibited (`..0`).
    pub fn none(self) -> Self {
        self.max(0)
    }

    pub fn fixed(mut self, value: Fixed) -> Self {
        self.fixed = Some(value);
        self
    }

    pub fn fixed_uri(self, value: &'static str) -> Self {
        self.fixed(Fixed::Uri(value))
    }

    pub fn fixed_code(self, value: &'static str) -> Self {
        self.fixed(Fixed::Code(value))
    }

    pub fn fixed_string(self, value: &'static str) -> Self {
        self.fixed(Fixed::String(value))
    }

    pub fn fixed_canonical(self, value: &'static str) -> Self {
        self.fixed(Fixed::Canonical(value))
    }

    pub fn types(mut self, types: &[TypeRef]) -> Self {
        self.types = types.to_vec();
        self
    }

    pub fn of_type(self, code: &'static str) -> Self {
        self.types(&[TypeRef::code(code)])
    }

    pub fn bind(mut self, strength: Strength, value_set: &'static str) -> Self {
        self.binding = Some(Binding {
            strength,
            value_set: Some(value_set),
        });
        self
    }

    /// Changes only the strength of the base element's binding.
    pub fn strength(mut self, strength: Strength) -> Self {
        self.binding = Some(Binding {
            strength,
            value_set: None,
        });
        self
    }

    pub fn sliced(mut self, slicing: Slicing) -> Self {
        self.slicing = Some(slicing);
        self
    }

    pub fn invariant(mut self, invariant: Invariant) -> Self {
        self.invariants.push(invariant);
        self
    }

    pub fn short(mut self, short: &'static str) -> Self {
        self.short = Some(short);
        self
    }

    /// The slice name of the last segment, if that segment is a slice.
    pub fn slice_name(&self) -> Option<&str> {
        last_segment(&self.id).split_once(':').map(|(_, name)| name)
    }

    /// The element path: the id without slice names.
    pub fn path(&self) -> String {
        path_of(&self.id)
    }
}

/// The last dot-separated segment of an element id. Dots inside `[x]` do not occur, and slice
/// names in this catalogue never contain dots.
pub(crate) fn last_segment(id: &str) -> &str {
    id.rsplit('.').next().unwrap_or(id)
}

/// The path of an element id: every `:sliceName` removed.
pub fn path_of(id: &str) -> String {
    id.split('.')
        .map(|segment| segment.split(':').next().unwrap_or(segment))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_drops_every_slice_name() {
        assert_eq!(
            path_of("Observation.component:systolic.value[x]:valueQuantity.unit"),
            "Observation.component.value[x].unit"
        );
        let rule = el("Observation.code.coding:fiphrCode");
        assert_eq!(rule.slice_name(), Some("fiphrCode"));
        assert_eq!(el("Observation.code.coding").slice_name(), None);
    }

    #[test]
    fn language_codes_parse_with_regions() {
        assert_eq!(Lang::parse("fi-FI"), Some(Lang::Fi));
        assert_eq!(Lang::parse("SV"), Some(Lang::Sv));
        assert_eq!(Lang::parse("de"), None);
    }
}
