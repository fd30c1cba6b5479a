//! The registry's event types as run-time descriptions
//! ([`tidings::publish::DynamicType`]), for the commands that publish or
//! read events without generated Rust types (`publish`, `tail`, `replay`).
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use tidings::publish::DynamicType;
use tidings_codegen::registry::load::{load, EventFile};
use tidings_codegen::registry::Source;

/// The `--schemas` flag of the commands that read event types.
#[derive(clap::Args, Debug, Clone)]
pub struct RegistryArgs {
    /// The registry directory (holding tidings.toml and the schemas).
    #[arg(long, default_value = "schemas", value_name = "DIR")]
    pub schemas: std::path::PathBuf,
}

/// Every event type of a registry, each version's schema file by number.
pub struct Registry {
    types: BTreeMap<String, BTreeMap<u32, EventFile>>,
    dir: String,
}

impl Registry {
    /// Loads the registry in `dir`; schema files with errors are skipped
    /// when they cannot be used (`tidings check` reports them).
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        if !dir.is_dir() {
            bail!(
                "registry directory {} not found (use --schemas DIR)",
                dir.display()
            );
        }
        let source =
            Source::from_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        let loaded = load(&source);
        let mut types: BTreeMap<String, BTreeMap<u32, EventFile>> = BTreeMap::new();
        for file in loaded.events {
            if let (Some(event_type), Some(version)) = (&file.event_type, file.version) {
                types
                    .entry(event_type.to_string())
                    .or_default()
                    .insert(version, file);
            }
        }
        Ok(Self {
            types,
            dir: dir.display().to_string(),
        })
    }

    /// The event type `name` at `version` (its latest when `None`).
    pub fn dynamic(&self, name: &str, version: Option<u32>) -> anyhow::Result<DynamicType> {
        let versions = self.versions(name)?;
        let file = match version {
            Some(v) => versions.get(&v).with_context(|| {
                let known: Vec<String> = versions.keys().map(|v| v.to_string()).collect();
                format!(
                    "{name} has no version {v} in {} (it has {})",
                    self.dir,
                    known.join(", ")
                )
            })?,
            None => versions
                .values()
                .next_back()
                .with_context(|| format!("{name} has no version in {}", self.dir))?,
        };
        dynamic(file)
    }

    /// The stream of `name` (from its latest version's `x-stream`).
    pub fn stream_of(&self, name: &str) -> anyhow::Result<String> {
        self.versions(name)?
            .values()
            .rev()
            .find_map(|f| f.stream.clone())
            .with_context(|| format!("{name} declares no x-stream in {}", self.dir))
    }

    /// Every event type's name with its stream.
    pub fn streams(&self) -> BTreeMap<String, String> {
        self.types
            .keys()
            .filter_map(|name| Some((name.clone(), self.stream_of(name).ok()?)))
            .collect()
    }

    fn versions(&self, name: &str) -> anyhow::Result<&BTreeMap<u32, EventFile>> {
        self.types.get(name).with_context(|| {
            format!(
                "event type {name:?} is not in the registry {} (`tidings check` lists problems; types look like auth.user.created)",
                self.dir
            )
        })
    }
}

/// The run-time description of one schema file.
fn dynamic(file: &EventFile) -> anyhow::Result<DynamicType> {
    let (Some(event_type), Some(version), Some(stream)) =
        (&file.event_type, file.version, &file.stream)
    else {
        bail!(
            "{} lacks x-event-type, x-schema-version or x-stream",
            file.path
        );
    };
    let bundled = file.bundled.as_ref().with_context(|| {
        format!(
            "{}: its $refs do not resolve; run `tidings check`",
            file.path
        )
    })?;
    DynamicType::new(
        &event_type.to_string(),
        version,
        stream,
        &bundled.value,
        file.entity_key.as_deref(),
    )
    .with_context(|| format!("in {}", file.path))
}
