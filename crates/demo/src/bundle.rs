//! Batch Bundles the way a wellbeing application syncs: each entry a `POST` with
//! `If-None-Exist: identifier=...`, so sending the same data twice stores it once.

use serde_json::{Value, json};

use crate::resources::identifier_of;

/// A `batch` Bundle of conditional creates of `resources`.
pub fn sync_batch(resources: impl IntoIterator<Item = Value>) -> Value {
    let entries: Vec<Value> = resources.into_iter().map(sync_entry).collect();
    json!({"resourceType": "Bundle", "type": "batch", "entry": entries})
}

/// One conditional-create entry.
pub fn sync_entry(resource: Value) -> Value {
    let resource_type = resource["resourceType"].as_str().unwrap_or("").to_string();
    let mut request = json!({"method": "POST", "url": resource_type});
    if let Some(identifier) = identifier_of(&resource) {
        request["ifNoneExist"] = json!(format!("identifier={identifier}"));
    }
    json!({"resource": resource, "request": request})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_conditional_creates_by_identifier() {
        let resource = json!({
            "resourceType": "Observation",
            "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:1b4e28ba-2fa1-41d2-883f-0016d3cca427"}]
        });
        let bundle = sync_batch([resource]);
        assert_eq!(bundle["type"], "batch");
        let request = &bundle["entry"][0]["request"];
        assert_eq!(request["method"], "POST");
        assert_eq!(request["url"], "Observation");
        assert_eq!(
            request["ifNoneExist"],
            "identifier=urn:uuid:1b4e28ba-2fa1-41d2-883f-0016d3cca427"
        );
    }
}
