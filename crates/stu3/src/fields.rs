//! The walk over one JSON object being converted: every element of the source is either
//! handled (copied, renamed, converted) or reported, so nothing is dropped silently.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::{ConvertError, Version};

/// The elements of one source object, tracking which have been handled.
pub(crate) struct Fields<'a> {
    src: &'a Map<String, Value>,
    taken: HashSet<&'a str>,
    /// FHIRPath of this object, e.g. `Observation.component[0]`.
    pub path: String,
    pub from: Version,
}

impl<'a> Fields<'a> {
    pub fn new(src: &'a Map<String, Value>, path: impl Into<String>, from: Version) -> Self {
        Fields {
            src,
            taken: HashSet::new(),
            path: path.into(),
            from,
        }
    }

    pub fn of(
        value: &'a Value,
        path: impl Into<String>,
        from: Version,
    ) -> Result<Self, ConvertError> {
        let path = path.into();
        match value.as_object() {
            Some(src) => Ok(Fields::new(src, path, from)),
            None => Err(ConvertError::malformed(
                &path,
                from.other(),
                "must be a JSON object",
            )),
        }
    }

    pub fn to(&self) -> Version {
        self.from.other()
    }

    pub fn at(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    /// Whether the element (or its primitive extension `_name`) is present.
    pub fn has(&self, name: &str) -> bool {
        self.src.contains_key(name) || self.src.contains_key(&format!("_{name}"))
    }

    /// The element's value, marking it handled (its primitive extension `_name` is not: an
    /// element converted rather than copied reports an extension it cannot carry).
    pub fn take(&mut self, name: &str) -> Option<&'a Value> {
        let (key, value) = self.src.get_key_value(name)?;
        self.taken.insert(key.as_str());
        Some(value)
    }

    fn take_extension(&mut self, name: &str) -> Option<&'a Value> {
        let (key, value) = self.src.get_key_value(&format!("_{name}"))?;
        self.taken.insert(key.as_str());
        Some(value)
    }

    /// Copies the elements `names` unchanged (with their primitive extensions).
    pub fn copy(&mut self, out: &mut Map<String, Value>, names: &[&str]) {
        for name in names {
            self.rename(out, name, name);
        }
    }

    /// Copies `from` as `to` (with its primitive extension).
    pub fn rename(&mut self, out: &mut Map<String, Value>, from: &str, to: &str) {
        if let Some(ext) = self.take_extension(from) {
            out.insert(format!("_{to}"), ext.clone());
        }
        if let Some(value) = self.take(from) {
            out.insert(to.to_string(), value.clone());
        }
    }

    /// Reports `names` as elements the target version cannot hold.
    pub fn refuse(&mut self, names: &[&str], why: &str) -> Result<(), ConvertError> {
        for name in names {
            if self.has(name) {
                return Err(ConvertError::not_expressible(
                    &self.at(name),
                    self.to(),
                    why,
                ));
            }
        }
        Ok(())
    }

    /// A choice element `base[x]`: copies whichever type is present when both versions allow
    /// it; a type only the source allows cannot cross, one neither allows is unknown.
    pub fn choice(
        &mut self,
        out: &mut Map<String, Value>,
        base: &str,
        source_types: &[&str],
        target_types: &[&str],
    ) -> Result<(), ConvertError> {
        let present: Vec<&'a str> = self
            .src
            .keys()
            .filter_map(|k| {
                let k = k.strip_prefix('_').unwrap_or(k);
                let suffix = k.strip_prefix(base)?;
                suffix
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_uppercase())
                    .then_some(suffix)
            })
            .collect();
        for suffix in present {
            let name = format!("{base}{suffix}");
            if !source_types.contains(&suffix) {
                return Err(ConvertError::unknown(&self.at(&name), self.from));
            }
            if !target_types.contains(&suffix) {
                return Err(ConvertError::not_expressible(
                    &self.at(&name),
                    self.to(),
                    format!("{base}[x] has no type {suffix} there"),
                ));
            }
            self.rename(out, &name, &name);
        }
        Ok(())
    }

    /// Converts each item of an array element with `convert`, storing it as `to`.
    pub fn each(
        &mut self,
        out: &mut Map<String, Value>,
        from: &str,
        to: &str,
        mut convert: impl FnMut(&Value, String) -> Result<Value, ConvertError>,
    ) -> Result<(), ConvertError> {
        let Some(value) = self.take(from) else {
            return Ok(());
        };
        let path = self.at(from);
        let items = value
            .as_array()
            .ok_or_else(|| ConvertError::malformed(&path, self.to(), "must be a JSON array"))?;
        let mut converted = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            converted.push(convert(item, format!("{path}[{i}]"))?);
        }
        out.insert(to.to_string(), Value::Array(converted));
        Ok(())
    }

    /// Every element not handled is reported: the input is not of the source version's shape.
    pub fn finish(self) -> Result<(), ConvertError> {
        for key in self.src.keys() {
            if self.taken.contains(key.as_str()) {
                continue;
            }
            match key.strip_prefix('_') {
                Some(name) if self.taken.contains(name) => {
                    return Err(ConvertError::not_expressible(
                        &self.at(name),
                        self.to(),
                        "the extensions on this primitive value cannot be carried over",
                    ));
                }
                Some(name) => return Err(ConvertError::unknown(&self.at(name), self.from)),
                None => return Err(ConvertError::unknown(&self.at(key), self.from)),
            }
        }
        Ok(())
    }
}
