//! A synthetic registry for the `scripts/bench-check` benchmark: N event
//! types x M versions, each version adding an optional property (so the
//! history is compatible under FULL_TRANSITIVE), sharing common definitions
//! through cross-file `$ref`s, with examples and a lock.
use std::path::Path;

use anyhow::Context;
use serde_json::json;
use tidings_codegen::registry::{self, Source};

/// Writes the registry described by `spec` (`500x5`) into `dir`.
pub fn write(dir: &Path, spec: &str) -> anyhow::Result<()> {
    let (types, versions) = spec
        .split_once('x')
        .and_then(|(t, v)| Some((t.parse::<usize>().ok()?, v.parse::<u32>().ok()?)))
        .context("--generate-bench wants TYPESxVERSIONS, e.g. 500x5")?;
    let services = [
        "auth",
        "catalog",
        "ddmrp",
        "execution",
        "analytics",
        "ai_agent",
    ];
    std::fs::create_dir_all(dir.join("common"))?;
    let mut toml = String::from("[compatibility]\nmode = \"FULL_TRANSITIVE\"\npolicy = \"lenient\"\n\n[profiles.dev]\nreplicas = 1\n");
    for s in services {
        toml.push_str(&format!(
            "\n[streams.{}_EVENTS]\nsubjects = [\"{s}.>\"]\n",
            s.to_ascii_uppercase()
        ));
        std::fs::create_dir_all(dir.join(s))?;
    }
    std::fs::write(dir.join("tidings.toml"), toml)?;
    let common = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "description": "Shared ids.",
        "$defs": {
            "Id": {"type": "string", "format": "uuid"},
            "Money": {"type": "object", "properties": {"amount": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$"}, "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}, "required": ["amount", "currency"]}
        }
    });
    std::fs::write(
        dir.join("common/ids.json"),
        serde_json::to_string_pretty(&common)?,
    )?;
    for t in 0..types {
        let service = services[t % services.len()];
        let ty = format!("{service}.entity{t}.changed");
        for v in 1..=versions {
            let mut props = serde_json::Map::new();
            props.insert("id".into(), json!({"$ref": "../common/ids.json#/$defs/Id"}));
            props.insert(
                "organization_unit".into(),
                json!({"type": "string", "minLength": 1, "maxLength": 64}),
            );
            props.insert(
                "amount".into(),
                json!({"$ref": "../common/ids.json#/$defs/Money"}),
            );
            props.insert(
                "status".into(),
                json!({"type": "string", "enum": ["open", "closed"]}),
            );
            props.insert("count".into(), json!({"type": "integer", "minimum": 0}));
            for extra in 2..=v {
                props.insert(
                    format!("field_v{extra}"),
                    json!({"type": "string", "maxLength": 100, "description": "Added later."}),
                );
            }
            let doc = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": format!("Entity{t}Changed"),
                "description": "Synthetic benchmark event.",
                "x-event-type": ty,
                "x-schema-version": v,
                "x-stream": format!("{}_EVENTS", service.to_ascii_uppercase()),
                "type": "object",
                "properties": props,
                "required": ["id", "status"],
                "examples": [{"id": "0190f3a4-8c1e-7b2a-9d4f-1a2b3c4d5e6f", "status": "open", "count": 3, "amount": {"amount": "1.50", "currency": "EUR"}}]
            });
            let path = dir.join(format!("{service}/entity{t}.changed.v{v}.json"));
            std::fs::write(&path, serde_json::to_string_pretty(&doc)?)?;
        }
    }
    let source = Source::from_dir(dir)?;
    std::fs::write(
        dir.join("registry.lock"),
        registry::updated_lock(&source, None)?.to_text(),
    )?;
    Ok(())
}
