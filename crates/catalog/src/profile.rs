//! How one profile is declared. `ProfileDecl` is the general form (element rules, as in a
//! differential); `ObservationProfile` is the form of Observation data contents, which says
//! what Kanta says — codes, unit, components, effective[x], dataAbsentReason — and lowers to
//! element rules and to the portal's `DataContent`.

use crate::content::{ChartKind, Code, DataContent, Group, Kind, Series, Unit};
use crate::model::{El, Invariant, Max, Names, Slicing, SlicingRules, Strength, TypeRef, el};
use crate::urls;

/// `StructureDefinition.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdKind {
    Resource,
    ComplexType,
}

impl SdKind {
    pub fn code(self) -> &'static str {
        match self {
            SdKind::Resource => "resource",
            SdKind::ComplexType => "complex-type",
        }
    }
}

/// One StructureDefinition of the catalogue, as a differential.
#[derive(Debug, Clone)]
pub struct ProfileDecl {
    /// Canonical URL; the logical id is its last segment.
    pub url: &'static str,
    /// Computable name.
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub names: Names,
    pub version: &'static str,
    /// The constrained type (`Observation`, `Extension` ...).
    pub type_name: &'static str,
    pub kind: SdKind,
    /// Canonical URL of the parent definition.
    pub parent: &'static str,
    pub is_abstract: bool,
    /// Where an extension may be used (element paths); empty for profiles.
    pub context: &'static [&'static str],
    /// The differential, parents before children.
    pub rules: Vec<El>,
    /// Portal metadata, for profiles that are a data content of their own.
    pub content: Option<DataContent>,
}

impl ProfileDecl {
    pub fn id(&self) -> &'static str {
        urls::id_of(self.url)
    }
}

/// The Observation families: each is an abstract-ish base profile with its own category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    VitalSigns,
    Fitness,
    Nutrition,
}

impl Family {
    pub fn parent(self) -> &'static str {
        match self {
            Family::VitalSigns => urls::VITAL_SIGNS,
            Family::Fitness => urls::FITNESS,
            Family::Nutrition => urls::NUTRITION,
        }
    }

    pub fn group(self) -> Group {
        match self {
            Family::VitalSigns => Group::VitalSigns,
            Family::Fitness => Group::Fitness,
            Family::Nutrition => Group::Nutrition,
        }
    }

    /// The slice of `code.coding` the family base declares, if any.
    fn base_code_slice(self) -> Option<&'static str> {
        match self {
            Family::Nutrition => Some("fiphrCode"),
            _ => None,
        }
    }
}

/// A Coding that must (or may) appear in a CodeableConcept, declared as a slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodingSlot {
    pub slice: &'static str,
    pub system: &'static str,
    pub code: &'static str,
    pub min: u32,
    pub max: u32,
    pub display_required: bool,
}

impl CodingSlot {
    /// A LOINC coding that must appear exactly once, with a display.
    pub const fn loinc(slice: &'static str, code: &'static str) -> Self {
        CodingSlot {
            slice,
            system: urls::LOINC,
            code,
            min: 1,
            max: 1,
            display_required: true,
        }
    }

    pub const fn optional(self) -> Self {
        CodingSlot { min: 0, ..self }
    }

    pub const fn display_optional(self) -> Self {
        CodingSlot {
            display_required: false,
            ..self
        }
    }

    pub const fn system(self, system: &'static str) -> Self {
        CodingSlot { system, ..self }
    }

    pub fn as_code(&self) -> Code {
        Code {
            system: self.system,
            code: self.code,
        }
    }
}

/// Rules on `Observation.code`.
#[derive(Debug, Clone)]
pub struct CodeRule {
    /// Extensible binding of the whole CodeableConcept.
    pub value_set: Option<&'static str>,
    /// Discriminator paths of the `coding` slicing (empty: no new slicing).
    pub discriminator: &'static [&'static str],
    pub slots: &'static [CodingSlot],
    /// Codes identifying the content when they are not slots (an invariant lists them).
    pub other_codes: &'static [Code],
}

/// Rules on `Observation.value[x]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRule {
    /// A Quantity in `unit`; `required` makes value[x] 1..1.
    Quantity { unit: Unit, required: bool },
    /// No value: the content is carried by components.
    Prohibited,
}

/// Rules on `Observation.effective[x]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EffectiveRule {
    /// As the family says.
    Inherit,
    /// A dateTime, required.
    DateTime,
}

/// Rules on `Observation.dataAbsentReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataAbsentRule {
    /// As the family says.
    Inherit,
    /// Allowed, and then it must be coded.
    Coded,
    /// Never.
    Prohibited,
}

/// The value of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentValue {
    Quantity(Unit),
    /// A CodeableConcept bound (extensible) to `value_set`, with one coding of `system`
    /// carrying code and display.
    Coded {
        value_set: &'static str,
        system: &'static str,
    },
}

/// One component slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentSlot {
    pub slice: &'static str,
    pub names: Names,
    pub code: CodingSlot,
    pub min: u32,
    pub value: ComponentValue,
    /// Extensible binding of `component.code`.
    pub code_value_set: Option<&'static str>,
    pub reference_range_max: Option<u32>,
    pub short: Option<&'static str>,
    /// Whether the portal draws this component's values as a series.
    pub charted: bool,
}

/// Rules on `Observation.component`.
#[derive(Debug, Clone)]
pub enum ComponentRule {
    /// As the family says.
    Inherit,
    Prohibited,
    /// Components sliced by their code (closed: no other components).
    Sliced {
        min: u32,
        max: u32,
        slots: &'static [ComponentSlot],
    },
}

/// An extension slice on the resource or on `value[x]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionSlot {
    /// Element the extension sits on (`Observation` or `Observation.value[x]`).
    pub on: &'static str,
    pub slice: &'static str,
    pub url: &'static [&'static str],
    pub max: u32,
    pub short: Option<&'static str>,
}

/// An Observation data content, as Kanta describes it.
#[derive(Debug, Clone)]
pub struct ObservationProfile {
    pub url: &'static str,
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub version: &'static str,
    pub family: Family,
    pub kind: Kind,
    pub names: Names,
    pub chart: ChartKind,
    pub code: CodeRule,
    pub value: ValueRule,
    pub effective: EffectiveRule,
    pub data_absent: DataAbsentRule,
    pub components: ComponentRule,
    pub extensions: &'static [ExtensionSlot],
    pub invariants: &'static [Invariant],
    /// Element rules beyond the above (e.g. `interpretation` prohibited).
    pub extra: Vec<El>,
}

const OBS: &str = "Observation";

impl ObservationProfile {
    pub fn id(&self) -> &'static str {
        urls::id_of(self.url)
    }

    /// The portal metadata this declaration implies.
    pub fn content(&self) -> DataContent {
        // A required coding identifies the content alone; otherwise any of the codes may.
        let required: Vec<Code> = self
            .code
            .slots
            .iter()
            .filter(|s| s.min > 0)
            .map(CodingSlot::as_code)
            .collect();
        let codes = if required.is_empty() {
            self.code
                .slots
                .iter()
                .map(CodingSlot::as_code)
                .chain(self.code.other_codes.iter().copied())
                .collect()
        } else {
            required
        };
        let unit = match self.value {
            ValueRule::Quantity { unit, .. } => Some(unit),
            ValueRule::Prohibited => None,
        };
        let series = match &self.components {
            ComponentRule::Sliced { slots, .. } => slots
                .iter()
                .filter(|slot| slot.charted)
                .filter_map(|slot| match slot.value {
                    ComponentValue::Quantity(unit) => Some(Series {
                        code: slot.code.as_code(),
                        names: slot.names,
                        unit,
                    }),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        DataContent {
            kind: self.kind,
            group: self.family.group(),
            names: self.names,
            profile: self.url,
            resource_type: OBS,
            codes,
            unit,
            series,
            chart: self.chart,
        }
    }

    /// The differential this declaration means, parents before children.
    pub fn rules(&self) -> Vec<El> {
        let mut rules = Vec::new();
        let root = el(OBS).invariants_from(self.invariants);
        rules.push(root);
        rules.extend(profile_slice(OBS, self.url));
        for ext in self.extensions.iter().filter(|e| e.on == OBS) {
            rules.extend(extension_slot(ext));
        }
        rules.extend(self.code_rules());
        match self.effective {
            EffectiveRule::Inherit => {}
            EffectiveRule::DateTime => {
                rules.push(el("Observation.effective[x]").min(1).of_type("dateTime"));
            }
        }
        match self.value {
            ValueRule::Prohibited => rules.push(el("Observation.value[x]").none()),
            ValueRule::Quantity { unit, required } => {
                let mut value = el("Observation.value[x]").of_type("Quantity");
                if required {
                    value = value.min(1);
                }
                rules.push(value);
                for ext in self.extensions.iter().filter(|e| e.on != OBS) {
                    rules.extend(extension_slot(ext));
                }
                rules.extend(quantity("Observation.value[x]", unit));
            }
        }
        match self.data_absent {
            DataAbsentRule::Inherit => {}
            DataAbsentRule::Coded => rules.push(el("Observation.dataAbsentReason.coding").min(1)),
            DataAbsentRule::Prohibited => rules.push(el("Observation.dataAbsentReason").none()),
        }
        match &self.components {
            ComponentRule::Inherit => {}
            ComponentRule::Prohibited => rules.push(el("Observation.component").none()),
            ComponentRule::Sliced { min, max, slots } => {
                rules.push(el("Observation.component").card(*min, Max::N(*max)).sliced(
                    Slicing::by_value(&["code.coding.code"], SlicingRules::Closed),
                ));
                for slot in slots.iter() {
                    rules.extend(component_slot(slot));
                }
            }
        }
        rules.extend(self.extra.iter().cloned());
        rules
    }

    fn code_rules(&self) -> Vec<El> {
        let mut rules = Vec::new();
        if let Some(vs) = self.code.value_set {
            rules.push(el("Observation.code").bind(Strength::Extensible, vs));
        }
        let coding = "Observation.code.coding";
        if !self.code.discriminator.is_empty() {
            rules.push(el(coding).min(1).sliced(Slicing::by_value(
                self.code.discriminator,
                SlicingRules::Open,
            )));
        }
        for slot in self.code.slots {
            if self.family.base_code_slice() == Some(slot.slice) {
                // The family base declares this slice; only the code is new here.
                rules.push(el(format!("{coding}:{}.code", slot.slice)).fixed_code(slot.code));
            } else {
                rules.extend(coding_slot(coding, slot));
            }
        }
        rules
    }
}

impl El {
    fn invariants_from(mut self, invariants: &[Invariant]) -> Self {
        self.invariants.extend_from_slice(invariants);
        self
    }
}

/// `meta.profile` sliced so that one entry is this profile's URL and others may follow.
pub(crate) fn profile_slice(resource: &str, url: &'static str) -> Vec<El> {
    vec![
        el(format!("{resource}.meta.profile"))
            .min(1)
            .sliced(Slicing::by_value(&["$this"], SlicingRules::Open)),
        el(format!("{resource}.meta.profile:fiphrProfile"))
            .one()
            .fixed_canonical(url),
    ]
}

/// A coding slice under `coding` (an element id of a `coding` list).
pub(crate) fn coding_slot(coding: &str, slot: &CodingSlot) -> Vec<El> {
    let id = format!("{coding}:{}", slot.slice);
    let mut rules = vec![
        el(id.clone()).card(slot.min, Max::N(slot.max)),
        el(format!("{id}.system")).min(1).fixed_uri(slot.system),
        el(format!("{id}.code")).min(1).fixed_code(slot.code),
    ];
    if slot.display_required {
        rules.push(el(format!("{id}.display")).min(1));
    }
    rules
}

/// A Quantity at `at` (an element id of type Quantity) in `unit`, value required.
pub(crate) fn quantity(at: &str, unit: Unit) -> Vec<El> {
    vec![
        el(format!("{at}.value")).min(1),
        el(format!("{at}.unit")).min(1).fixed_string(unit.unit),
        el(format!("{at}.system")).min(1).fixed_uri(urls::UCUM),
        el(format!("{at}.code")).min(1).fixed_code(unit.ucum),
    ]
}

fn extension_slot(ext: &ExtensionSlot) -> Vec<El> {
    let list = format!("{}.extension", ext.on);
    let mut slice = el(format!("{list}:{}", ext.slice))
        .card(0, Max::N(ext.max))
        .types(&[TypeRef::extension(ext.url)]);
    if let Some(short) = ext.short {
        slice = slice.short(short);
    }
    vec![
        el(list).sliced(Slicing::by_value(&["url"], SlicingRules::Open)),
        slice,
    ]
}

fn component_slot(slot: &ComponentSlot) -> Vec<El> {
    let id = format!("Observation.component:{}", slot.slice);
    let mut head = el(id.clone()).card(slot.min, Max::N(1));
    if let Some(short) = slot.short {
        head = head.short(short);
    }
    let mut rules = vec![head];
    if let Some(vs) = slot.code_value_set {
        rules.push(el(format!("{id}.code")).bind(Strength::Extensible, vs));
    }
    let coding = format!("{id}.code.coding");
    rules.push(el(coding.clone()).sliced(Slicing::by_value(&["code"], SlicingRules::Open)));
    rules.extend(coding_slot(&coding, &slot.code));
    let value = format!("{id}.value[x]");
    match slot.value {
        ComponentValue::Quantity(unit) => {
            rules.push(el(value.clone()).min(1).of_type("Quantity"));
            rules.extend(quantity(&value, unit));
        }
        ComponentValue::Coded { value_set, system } => {
            rules.push(
                el(value.clone())
                    .min(1)
                    .of_type("CodeableConcept")
                    .bind(Strength::Extensible, value_set),
            );
            let coding = format!("{value}.coding");
            rules.push(
                el(coding.clone())
                    .min(1)
                    .sliced(Slicing::by_value(&["system"], SlicingRules::Open)),
            );
            let slice = format!("{coding}:fiphrValue");
            rules.push(el(slice.clone()).one());
            rules.push(el(format!("{slice}.system")).min(1).fixed_uri(system));
            rules.push(el(format!("{slice}.code")).min(1));
            rules.push(el(format!("{slice}.display")).min(1));
        }
    }
    if let Some(max) = slot.reference_range_max {
        rules.push(el(format!("{id}.referenceRange")).max(max));
    }
    rules
}
