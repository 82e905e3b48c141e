//! The JSON schema of `models.yaml`, generated from the raw serde types so it cannot drift from
//! what the parser accepts. `schemas/models.schema.json` is this output, checked by a test.

use schemars::generate::SchemaSettings;

use crate::raw::RawManifest;

/// The manifest's JSON schema (draft-07, which editors' YAML language servers support best),
/// pretty-printed with a trailing newline.
pub fn schema() -> String {
    let generator = SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<RawManifest>();
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema is always valid JSON");
    text.push('\n');
    text
}
