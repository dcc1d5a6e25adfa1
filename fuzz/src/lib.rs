//! What the fuzz targets share: a storage that stores nothing (so the whole write path runs
//! without a database), the application core over it, the callers a request can come from,
//! JSON built from fuzzer bytes, and structural mutations of valid resources.
//!
//! Never used outside the fuzz targets: it builds nothing a server would run, and its
//! `assert!`s are the targets' oracles (a failed one is a finding, like a panic in the code
//! under test).

use std::sync::{Arc, OnceLock};

use arbitrary::{Result as ArbResult, Unstructured};
use phr_auth::{AccessContext, ScopeSet};
use phr_service::{Caller, ErrorKind, FhirService, Pipeline, Settings};
use phr_store::{
    Atomicity, Erasure, HistoryPage, HistoryQuery, IdentifierCondition, Rejection, SearchPage,
    SearchQuery, Storage, StoredResource, WriteOp, WriteOutcome,
};
use serde_json::{Map, Value, json};

pub mod seeds;

/// The Patient every fake read finds: Kanta resources must refer to an existing Patient, and
/// the fuzzer should get past that check to the validator and the index extraction.
pub const PATIENT: &str = "7b0c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e";

/// A storage that keeps nothing: every Patient exists, nothing else does, every write is
/// accepted (as version 1, or the next version of an update), every search is empty.
pub struct NullStore;

impl Storage for NullStore {
    fn read(&self, resource_type: &str, id: &str) -> phr_store::Result<Option<StoredResource>> {
        if resource_type != "Patient" {
            return Ok(None);
        }
        let body = json!({"resourceType": "Patient", "id": id, "meta": {"versionId": "1"}});
        Ok(Some(StoredResource {
            resource_type: "Patient".into(),
            id: id.into(),
            version: 1,
            last_updated: 0,
            deleted: false,
            body: serde_json::to_vec(&body).unwrap_or_default(),
            patient: Some(id.into()),
            app: None,
            created_by: None,
        }))
    }

    fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version: u64,
    ) -> phr_store::Result<Option<StoredResource>> {
        Ok(self
            .read(resource_type, id)?
            .filter(|r| r.version == version))
    }

    fn find_by_identifier(
        &self,
        _resource_type: &str,
        _compartment: Option<&str>,
        _condition: &IdentifierCondition,
    ) -> phr_store::Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn write(
        &self,
        ops: Vec<WriteOp>,
        _atomicity: Atomicity,
    ) -> phr_store::Result<Vec<Result<WriteOutcome, Rejection>>> {
        Ok(ops
            .into_iter()
            .map(|op| match op {
                WriteOp::Create { new, .. } => Ok(WriteOutcome::Created {
                    version: new.version,
                }),
                WriteOp::Update { new, .. } => Ok(WriteOutcome::Updated {
                    version: new.version,
                }),
                WriteOp::Delete { version, .. } => Ok(WriteOutcome::Deleted { version }),
            })
            .collect())
    }

    fn history(&self, _query: &HistoryQuery) -> phr_store::Result<HistoryPage> {
        Ok(HistoryPage::default())
    }

    fn search(&self, _query: &SearchQuery, _page: Option<&str>) -> phr_store::Result<SearchPage> {
        Ok(SearchPage::default())
    }

    fn erase(&self, _patient: &str, _what: &Erasure) -> phr_store::Result<u64> {
        Ok(0)
    }
}

/// The application core over [`NullStore`] with the catalogue's definitions, built once.
pub fn service() -> &'static FhirService {
    static SERVICE: OnceLock<FhirService> = OnceLock::new();
    SERVICE
        .get_or_init(|| FhirService::new(Arc::new(NullStore), Pipeline::new(), Settings::default()))
}

/// The callers a client request can come from: the open sandbox, a citizen in the portal,
/// an application with a citizen's grant, a backend application with system scopes.
pub fn caller(which: u8) -> Caller {
    match which % 4 {
        0 => Caller::OpenSandbox,
        1 => Caller::Citizen {
            patient: PATIENT.into(),
        },
        2 => app_caller(Some(PATIENT), "patient/*.* launch/patient"),
        _ => app_caller(None, "system/*.*"),
    }
}

fn app_caller(patient: Option<&str>, scope: &str) -> Caller {
    Caller::App(AccessContext {
        patient: patient.map(str::to_owned),
        app_id: "fuzz-app".into(),
        app_name: "Fuzz".into(),
        scopes: ScopeSet::parse(scope).unwrap_or_default(),
        scope: scope.into(),
        grant_id: patient.map(|_| "fuzz-grant".to_owned()),
        token_id: "fuzz-token".into(),
        expires_at: i64::MAX,
        org: None,
        professional: None,
        contents: None,
        fhir_versions: None,
    })
}

/// The oracle on every answer of the application core to client input: a refusal is the
/// client's fault (4xx), never "the server failed" — [`NullStore`] never fails, so an
/// internal error here comes from the code under test.
pub fn check_answer<T>(answer: &phr_service::Result<T>) {
    if let Err(e) = answer {
        assert!(
            !matches!(e.kind(), ErrorKind::Internal | ErrorKind::Unavailable),
            "client input gave a server failure: {e}"
        );
        assert!(!e.issues().is_empty(), "an error without issues: {e:?}");
    }
}

/// Property names that occur in FHIR resources, so built JSON often means something.
const KEYS: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "profile",
    "versionId",
    "lastUpdated",
    "status",
    "code",
    "coding",
    "system",
    "display",
    "text",
    "value",
    "valueQuantity",
    "valueString",
    "valueBoolean",
    "valueInteger",
    "valueCodeableConcept",
    "valuePeriod",
    "unit",
    "subject",
    "reference",
    "identifier",
    "effectiveDateTime",
    "effectivePeriod",
    "start",
    "end",
    "issued",
    "performer",
    "category",
    "component",
    "extension",
    "url",
    "modifierExtension",
    "contained",
    "_status",
    "_value",
    "div",
    "entry",
    "request",
    "method",
    "fullUrl",
    "resource",
    "type",
    "valueDateTime",
    "dataAbsentReason",
    "note",
    "device",
    "hasMember",
    "derivedFrom",
    "interpretation",
    "referenceRange",
    "low",
    "high",
    "comparator",
    "birthDate",
    "gender",
    "name",
    "family",
    "given",
    "active",
    "period",
    "dosage",
    "dose",
    "route",
    "effectiveInstant",
    "valueSampledData",
    "origin",
    "data",
    "dimensions",
    "language",
];

const STRINGS: &[&str] = &[
    "",
    "Observation",
    "Patient",
    "Bundle",
    "final",
    "amended",
    "preliminary",
    "http://loinc.org",
    "29463-7",
    "85354-9",
    "8480-6",
    "8462-4",
    "http://unitsofmeasure.org",
    "kg",
    "mm[Hg]",
    "Patient/7b0c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
    "urn:uuid:6f1e1a4e-7c1e-4c1a-9a47-3c8a1e4d2b11",
    "#c1",
    "http://phr.kanta.fi/StructureDefinition/fiphr-sd-bodyweight",
    "http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodpressure",
    "http://hl7.org/fhir/StructureDefinition/vitalsigns",
    "vital-signs",
    "http://terminology.hl7.org/CodeSystem/observation-category",
    "2024-05-01",
    "2024-05-01T10:00:00+03:00",
    "2024-13-45T25:61:61Z",
    "0001-01-01",
    "9999-12-31T23:59:59Z",
    "\u{0}",
    "\u{202e}",
    "e\u{301}",
    "\u{fffd}",
    "\u{1f600}",
    "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>",
    "batch",
    "transaction",
    "POST",
    "PUT",
    "GET",
    "DELETE",
    "Observation/x",
    "Patient?identifier=a|b",
];

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "0.0000000001",
    "1e308",
    "-1e-308",
    "1E400",
    "18446744073709551616",
    "-9223372036854775809",
    "9223372036854775807",
    "3.14159265358979323846264338327950288",
    "1.50",
    "100000000000000000000000000000000000000",
    "2147483648",
    "-2147483649",
    "1e-400",
];

/// A JSON value built from fuzzer bytes: FHIR-like keys and strings most of the time, any
/// text some of the time, numbers at the edges of every range, nesting up to `depth`.
pub fn json_value(u: &mut Unstructured, depth: u32) -> ArbResult<Value> {
    let choice = if depth == 0 {
        u.int_in_range(0..=4)?
    } else {
        u.int_in_range(0..=6)?
    };
    Ok(match choice {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => number(u)?,
        3 => Value::String(string(u)?),
        4 => Value::String(u.arbitrary()?),
        5 => {
            let n = u.int_in_range(0..=3)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(json_value(u, depth - 1)?);
            }
            Value::Array(items)
        }
        _ => {
            let n = u.int_in_range(0..=4)?;
            let mut map = Map::new();
            for _ in 0..n {
                let key = key(u)?;
                map.insert(key, json_value(u, depth - 1)?);
            }
            Value::Object(map)
        }
    })
}

pub fn key(u: &mut Unstructured) -> ArbResult<String> {
    Ok(if u.ratio(7, 8)? {
        (*u.choose(KEYS)?).to_owned()
    } else {
        u.arbitrary()?
    })
}

pub fn string(u: &mut Unstructured) -> ArbResult<String> {
    Ok((*u.choose(STRINGS)?).to_owned())
}

pub fn number(u: &mut Unstructured) -> ArbResult<Value> {
    let text = match u.int_in_range(0..=3)? {
        0 => (*u.choose(NUMBERS)?).to_owned(),
        1 => u.arbitrary::<i64>()?.to_string(),
        2 => u.arbitrary::<u64>()?.to_string(),
        _ => {
            let f: f64 = u.arbitrary()?;
            if f.is_finite() {
                f.to_string()
            } else {
                "1e308".into()
            }
        }
    };
    // arbitrary_precision keeps the number's text exactly as written.
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Every path into `value` (object keys and array indices), root first.
fn paths(value: &Value, at: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                at.push(PathStep::Key(k.clone()));
                paths(v, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                at.push(PathStep::Index(i));
                paths(v, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn at_path<'a>(value: &'a mut Value, path: &[PathStep]) -> Option<&'a mut Value> {
    let mut node = value;
    for step in path {
        node = match step {
            PathStep::Key(k) => node.as_object_mut()?.get_mut(k)?,
            PathStep::Index(i) => node.as_array_mut()?.get_mut(*i)?,
        };
    }
    Some(node)
}

/// Applies up to `max` structural mutations chosen by the fuzzer to `value`: a node replaced
/// by built JSON (so a wrong type anywhere), removed, emptied, wrapped in an array or an
/// object, an unknown property added, a number or string swapped for an edge case.
pub fn mutate(u: &mut Unstructured, value: &mut Value, max: usize) -> ArbResult<()> {
    let n = u.int_in_range(0..=max)?;
    for _ in 0..n {
        let mut all = Vec::new();
        paths(value, &mut Vec::new(), &mut all);
        let path = u.choose(&all)?.clone();
        let op = u.int_in_range(0..=8)?;
        if op == 1 && !path.is_empty() {
            // Remove the node from its parent.
            let (last, parent_path) = path.split_last().unwrap_or((&PathStep::Index(0), &[]));
            if let Some(parent) = at_path(value, parent_path) {
                match (parent, last) {
                    (Value::Object(map), PathStep::Key(k)) => {
                        map.shift_remove(k);
                    }
                    (Value::Array(items), PathStep::Index(i)) if *i < items.len() => {
                        items.remove(*i);
                    }
                    _ => {}
                }
            }
            continue;
        }
        let replacement = match op {
            0 => json_value(u, 3)?,
            2 => match u.int_in_range(0..=2)? {
                0 => json!(""),
                1 => json!([]),
                _ => json!({}),
            },
            3 => number(u)?,
            4 => Value::String(string(u)?),
            5 | 6 => {
                let Some(node) = at_path(value, &path) else {
                    continue;
                };
                if op == 5 {
                    Value::Array(vec![node.take()])
                } else {
                    let mut map = Map::new();
                    map.insert(key(u)?, node.take());
                    Value::Object(map)
                }
            }
            7 => {
                let Some(Value::Object(map)) = at_path(value, &path) else {
                    continue;
                };
                let k = key(u)?;
                let v = json_value(u, 2)?;
                map.insert(k, v);
                continue;
            }
            _ => {
                // A copy of another node of the same resource: plausible shapes in the wrong
                // place.
                let other = u.choose(&all)?.clone();
                match at_path(value, &other) {
                    Some(v) => v.clone(),
                    None => continue,
                }
            }
        };
        if let Some(node) = at_path(value, &path) {
            *node = replacement;
        }
    }
    Ok(())
}

/// The application core over a real SQLite store in a temporary folder holding the seed
/// resources, built once: searches run their SQL against it, cursors are read by it.
pub fn sqlite_service() -> &'static FhirService {
    static SERVICE: OnceLock<(tempfile::TempDir, FhirService)> = OnceLock::new();
    let (_, fhir) = SERVICE.get_or_init(|| {
        // In memory when the system has a RAM disk: the writes below fsync.
        let dir = match std::path::Path::new("/dev/shm").is_dir() {
            true => tempfile::Builder::new()
                .prefix("phr-fuzz")
                .tempdir_in("/dev/shm"),
            false => tempfile::tempdir(),
        }
        .expect("a temporary folder for the fuzz store");
        let store = phr_store::sqlite::SqliteStore::open(&dir.path().join("phr.db"))
            .expect("the fuzz store opens");
        let fhir = FhirService::new(Arc::new(store), Pipeline::new(), Settings::default());
        fhir.update(&Caller::System, "Patient", PATIENT, seeds::patient(), None)
            .expect("the seed Patient is stored");
        let citizen = caller(1);
        for resource in [seeds::body_weight(), seeds::blood_pressure()] {
            fhir.create(&citizen, resource, None)
                .expect("a seed resource is stored");
        }
        (dir, fhir)
    });
    fhir
}

/// Whether JSON text repeats a property name in one object, names compared as serde reads
/// them (escapes decoded); `None` when it is not JSON. The oracle for the duplicate check of
/// `phr_fhir::json::parse`, written independently of it.
pub fn has_duplicate_names(bytes: &[u8]) -> Option<bool> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

    struct Names(bool);

    impl<'de> DeserializeSeed<'de> for &mut Names {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for &mut Names {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(&mut *self)?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(name) = map.next_key::<String>()? {
                if !seen.insert(name) {
                    self.0 = true;
                }
                map.next_value_seed(&mut *self)?;
            }
            Ok(())
        }
    }

    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut names = Names(false);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.deserialize_any(&mut names).ok()?;
    de.end().ok()?;
    Some(names.0)
}
