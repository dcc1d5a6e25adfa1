//! Writes every StructureDefinition, CodeSystem and ValueSet of the catalogue as JSON files
//! into a folder, for reading them or loading them into another validator:
//!
//!     cargo run -p phr-catalog --example export -- /tmp/phr-catalog

use std::path::PathBuf;

use phr_catalog::Catalog;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "phr-catalog".into()),
    );
    std::fs::create_dir_all(&dir)?;
    let mut count = 0;
    for resource in Catalog::get().conformance_resources() {
        let name = format!(
            "{}-{}.json",
            resource["resourceType"].as_str().unwrap_or("Resource"),
            resource["id"].as_str().unwrap_or("unknown")
        );
        let text = serde_json::to_string_pretty(resource).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(name), text)?;
        count += 1;
    }
    println!("{count} resources written to {}", dir.display());
    Ok(())
}
