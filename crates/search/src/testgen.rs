//! Random R4 resources for tests, generated from the element model with a fixed seed: every
//! element is present with some probability, choice elements take a random type, and values
//! are drawn from small pools that exercise search semantics (references of every shape,
//! dates of every precision, decimals with trailing zeros, codes the R4 `where()` filters
//! look for). Structurally plausible, not valid against every invariant.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::elements::{ElementDef, ElementModel, choice_suffix};

/// A small, fixed-seed xorshift generator: reproducible across platforms and crate versions.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

pub struct Generator<'m> {
    model: &'m ElementModel,
    children: HashMap<String, Vec<(String, ElementDef)>>,
}

const SKIP: &[&str] = &["extension", "modifierExtension", "contained", "text", "div"];

const CODES: &[&str] = &[
    "final",
    "active",
    "email",
    "phone",
    "composed-of",
    "depends-on",
    "derived-from",
    "predecessor",
    "successor",
    "official",
    "completed",
];

const STRINGS: &[&str] = &[
    "Mäkinen",
    "anna",
    "Åström",
    "Blood glucose",
    "x y z",
    "ÉLISE",
];

const URIS: &[&str] = &[
    "http://loinc.org",
    "http://snomed.info/sct",
    "http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodglucose",
    "http://example.org/fhir/Questionnaire/q1|1.0",
    "urn:uuid:7b3c6f2e-1d7a-4c7e-9a7e-2f3b9e0f4a11",
    "urn:oid:1.2.246.537.6.55",
];

const REFERENCES: &[&str] = &[
    "Patient/p1",
    "Patient/p2/_history/3",
    "Practitioner/pr1",
    "Group/g1",
    "Organization/o1",
    "Location/l1",
    "Device/d1",
    "RelatedPerson/r1",
    "QuestionnaireResponse/qr1",
    "https://other.example/fhir/Patient/p9",
    "#contained1",
    "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0",
];

const DATES: &[&str] = &[
    "2020",
    "2021-02",
    "2019-12-31",
    "2020-10-05T10:00:00+03:00",
    "2020-10-05T10:00:00.130Z",
    "2024-02-29T23:59:59-05:00",
];

const DECIMALS: &[&str] = &["1.50", "100", "0.001", "-3.2", "6.30", "1e2", "72"];

impl<'m> Generator<'m> {
    pub fn new(model: &'m ElementModel) -> Self {
        let mut children: HashMap<String, Vec<(String, ElementDef)>> = HashMap::new();
        for (path, def) in model.iter() {
            if let Some((parent, name)) = path.rsplit_once('.') {
                children
                    .entry(parent.to_string())
                    .or_default()
                    .push((name.to_string(), def.clone()));
            }
        }
        for list in children.values_mut() {
            list.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Generator { model, children }
    }

    /// A random resource of `resource_type`.
    pub fn resource(&self, resource_type: &str, rng: &mut Rng) -> Value {
        let mut obj = self.object(resource_type, 0, rng);
        obj.insert("resourceType".into(), json!(resource_type));
        obj.insert("id".into(), json!(format!("gen{}", rng.below(1000))));
        Value::Object(obj)
    }

    fn object(&self, context: &str, depth: usize, rng: &mut Rng) -> Map<String, Value> {
        let mut obj = Map::new();
        let root = self.model.type_root(context);
        let Some(list) = self.children.get(root) else {
            return obj;
        };
        let presence = match depth {
            0 => 70,
            1 => 60,
            2 => 45,
            _ => 30,
        };
        let mut present: Vec<bool> = list
            .iter()
            .map(|(name, def)| {
                let untyped = def.types.is_empty() && def.children_at.is_none();
                let skipped = SKIP.contains(&name.as_str()) || (name == "id" && depth > 0);
                !skipped && !untyped && rng.chance(presence)
            })
            .collect();
        // rh-fhirpath resolves an absent element to a sibling whose name it prefixes
        // (`Encounter.status` yields `statusHistory` when `status` is missing), so the
        // shorter element is always written when the longer one is.
        for i in 0..list.len() {
            if !present[i] {
                continue;
            }
            for j in 0..list.len() {
                let (long, short) = (&list[i].0, &list[j].0);
                let usable = !SKIP.contains(&short.as_str()) && !list[j].1.types.is_empty();
                if i != j && usable && long.starts_with(short.as_str()) {
                    present[j] = true;
                }
            }
        }
        for ((name, def), present) in list.iter().zip(present) {
            if !present {
                continue;
            }
            let ty = if def.choice {
                rng.pick(&def.types).clone()
            } else {
                def.types.first().cloned().unwrap_or_default()
            };
            let key = if def.choice {
                format!("{name}{}", choice_suffix(&ty))
            } else {
                name.clone()
            };
            let count = if def.repeats { 1 + rng.below(3) } else { 1 };
            let mut items = Vec::new();
            // A complex value can come out empty; retry so a chosen element is written.
            for _ in 0..count * 6 {
                if let Some(v) = self.value(&ty, def.children_at.as_deref(), name, depth, rng) {
                    items.push(v);
                }
                if items.len() == count {
                    break;
                }
            }
            if items.is_empty() {
                continue;
            }
            let value = if def.repeats {
                Value::Array(items)
            } else {
                items.remove(0)
            };
            obj.insert(key, value);
        }
        obj
    }

    fn value(
        &self,
        ty: &str,
        children_at: Option<&str>,
        name: &str,
        depth: usize,
        rng: &mut Rng,
    ) -> Option<Value> {
        if depth > 4 {
            return None;
        }
        if let Some(path) = children_at {
            let obj = self.object(path, depth + 1, rng);
            return (!obj.is_empty()).then_some(Value::Object(obj));
        }
        let number = |text: &str| -> Value { serde_json::from_str(text).unwrap_or(json!(0)) };
        Some(match ty {
            "boolean" => json!(rng.chance(50)),
            "integer" | "unsignedInt" | "positiveInt" => json!(1 + rng.below(200)),
            "decimal" => {
                let text = *rng.pick::<&str>(DECIMALS);
                number(text)
            }
            "string" | "markdown" => json!(rng.pick(STRINGS)),
            "code" => json!(rng.pick(CODES)),
            "id" => json!(format!("id{}", rng.below(100))),
            "uri" | "url" | "canonical" | "oid" | "uuid" => json!(rng.pick(URIS)),
            "date" => json!(rng.pick(&["2020", "2021-02", "2019-12-31", "2024-02-29"])),
            "dateTime" | "instant" => json!(rng.pick(DATES)),
            "time" => json!("10:30:00"),
            "base64Binary" => json!("AAAA"),
            "xhtml" => return None,
            "Reference" => {
                if rng.chance(15) {
                    json!({"identifier": {"system": "urn:oid:1.2.246.21", "value": "ref-id"}})
                } else {
                    json!({"reference": rng.pick(REFERENCES), "display": "shown"})
                }
            }
            "Resource" => {
                json!({"resourceType": "Patient", "id": format!("inner{}", rng.below(9))})
            }
            "Extension" | "Narrative" => return None,
            _ if name == "resource" => json!({"resourceType": "Basic", "id": "b1"}),
            complex => {
                let obj = self.object(complex, depth + 1, rng);
                if obj.is_empty() {
                    return None;
                }
                Value::Object(obj)
            }
        })
    }
}
