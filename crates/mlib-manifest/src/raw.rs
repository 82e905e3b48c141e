//! The manifest exactly as written: serde types that keep every value's source location.
//!
//! Nothing here is checked beyond its YAML shape; `resolve` turns these into the public types and
//! reports problems with the `Spanned` locations kept here. The JSON schema is generated from
//! these types, so the doc comments below are what editors show as field descriptions.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::model::{LinkMode, StoreLayout};
use crate::preset::Preset;
use crate::rules::{HASH_PATTERN, NAME_PATTERN};
use crate::spanned::Spanned;

/// An mlib manifest (`models.yaml`): the models one environment needs and the apps they are
/// linked into.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "mlib manifest (models.yaml)")]
pub(crate) struct RawManifest {
    /// Manifest format version. Only `1` exists.
    #[schemars(with = "Version")]
    pub version: Spanned<u32>,
    /// Directory holding every model's bytes exactly once. `${VAR}`, `${VAR:-default}` and a
    /// leading `~` expand; a relative path resolves against the manifest's directory.
    #[schemars(with = "String")]
    pub store: Spanned<String>,
    /// Store layout: `nested` (`{type}/{family}/{name}/`, the default) or `flat` (`{type}/{file}`,
    /// like a ComfyUI models folder).
    #[serde(default)]
    #[schemars(with = "Option<StoreLayout>")]
    pub layout: Option<Spanned<StoreLayout>>,
    /// Where mlib keeps its state for this store (the link registry and the apply lock), when
    /// not in the store's own `.mlib` folder (a read-only or shared store). `${VAR}`,
    /// `${VAR:-default}` and a leading `~` expand; a relative path resolves against the
    /// manifest's directory.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub state: Option<Spanned<String>>,
    /// The name of the environment that owns this manifest's links in the store's registry
    /// (same rules as model names). Without it, the environment is this manifest file with its
    /// store and app roots; with it, manifests (or copies of one) that give the same name share
    /// their links.
    #[serde(default)]
    #[schemars(with = "Option<String>", pattern(NAME_PATTERN), length(max = 128))]
    pub environment: Option<Spanned<String>>,
    /// Team mirrors tried in order before each model's origin: `s3://BUCKET/PREFIX` (AWS S3,
    /// R2, MinIO...; endpoint, region and credentials from the `AWS_*` variables and
    /// profiles) or `https://HOST/PREFIX` (a static server or CDN). Objects are named by
    /// sha256, so one mirror serves every manifest; `mlib mirror push` fills it.
    /// `MLIB_MIRRORS` replaces this list.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub mirrors: Vec<Spanned<String>>,
    /// The models, by name. A name uses letters, digits, `.`, `_` and `-`, starts with a letter or
    /// digit, and is at most 128 characters.
    #[serde(default)]
    pub models: KeyedMap<RawModel>,
    /// The apps that receive links to the models, by name (same rules as model names).
    #[serde(default)]
    pub apps: KeyedMap<RawApp>,
}

/// One model: where it comes from, how to check it, and what kind of model it is.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Model")]
pub(crate) struct RawModel {
    /// Where the bytes come from: a local path (`./x.safetensors`, `/data/x`, `~/x`, `${VAR}`
    /// expands), `https://...`, `hf://{org}/{repo}[/path/in/repo]`, `civitai:{model}@{version}`
    /// or a Civitai AIR (`urn:air:{ecosystem}:{type}:civitai:{model}@{version}`).
    #[schemars(with = "String")]
    pub source: Spanned<String>,
    /// For `hf://` sources: the branch, tag or commit to fetch (default `main`); the lock pins
    /// the commit.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub revision: Option<Spanned<String>>,
    /// Expected SHA-256 of the file (64 hex digits).
    #[serde(default)]
    #[schemars(with = "Option<String>", pattern(HASH_PATTERN))]
    pub sha256: Option<Spanned<String>>,
    /// Expected BLAKE3 of the file (64 hex digits).
    #[serde(default)]
    #[schemars(with = "Option<String>", pattern(HASH_PATTERN))]
    pub blake3: Option<Spanned<String>>,
    /// Model type: which app folder it links into (`checkpoints`, `loras`, `vae`,
    /// `text_encoders`, `diffusion_models`, `controlnet`, `embeddings`, `upscale_models`,
    /// `diffusers`, ...).
    #[serde(rename = "type")]
    #[schemars(with = "String", pattern(NAME_PATTERN), length(max = 128))]
    pub model_type: Spanned<String>,
    /// Model family (`sdxl`, `sd15`, `flux`, ...): groups the store's nested layout.
    #[serde(default)]
    #[schemars(with = "Option<String>", pattern(NAME_PATTERN), length(max = 128))]
    pub family: Option<Spanned<String>>,
    /// For folder and repository sources: glob patterns of the files to take (default: all).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub include: Vec<Spanned<String>>,
    /// For folder and repository sources: glob patterns of files to leave out.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub exclude: Vec<Spanned<String>>,
    /// Tags: an app's `models:` list may name a tag to select every model carrying it.
    #[serde(default)]
    #[schemars(with = "Vec<String>", inner(pattern(NAME_PATTERN)))]
    pub tags: Vec<Spanned<String>>,
    /// File name in the store and the app folders, when it should differ from the source's.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub file: Option<Spanned<String>>,
    /// The app versions this model works with, as PEP 440 specifiers (quoted: `">=0.3.40"`,
    /// `">=1.10,<2"`, `"~=2.0"`), keyed by preset (`comfyui`, `a1111`, `forge`, `sdnext`,
    /// `fooocus`, `swarmui`: every app with that preset) or by app name (that app alone). An
    /// app whose version does not match gets no link to the model; the plan says why.
    #[serde(default)]
    #[schemars(with = "KeyedMap<String>")]
    pub requires: KeyedMap<Spanned<String>>,
}

/// One app: a program with a models folder that receives links.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "App")]
pub(crate) struct RawApp {
    /// Folder table to use. Without a preset the app is custom and gets only the types listed in
    /// `folders`.
    #[serde(default)]
    #[schemars(with = "Option<Preset>")]
    pub preset: Option<Spanned<Preset>>,
    /// The app's root directory (`${VAR}` and `~` expand; relative resolves against the manifest's
    /// directory).
    #[schemars(with = "String")]
    pub root: Spanned<String>,
    /// Which models this app gets: `all` (the default) or a list of model names, tags and
    /// `family:NAME` (every model declared with that family).
    #[serde(default)]
    #[schemars(with = "Option<RawSelection>")]
    pub models: Option<Spanned<RawSelection>>,
    /// How to place models in the app's folders: `auto` (the default: the best the filesystem
    /// supports), `symlink`, `hardlink`, `copy`, or `folder` (the app's whole models folder is
    /// one link to the store's root; needs `layout: flat`).
    #[serde(default)]
    #[schemars(with = "Option<LinkMode>")]
    pub link: Option<Spanned<LinkMode>>,
    /// Model types whose whole folder in this app is one link to the store's folder of that
    /// type (`[loras, checkpoints]`; needs `layout: flat`). Every model of the type in the
    /// store is then seen by the app, and what the app writes there lands in the store.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub link_folders: Option<Spanned<Vec<Spanned<String>>>>,
    /// The app runs in a container that sees the store (and its own root) at other paths:
    /// symlinks are written as the container resolves them.
    #[serde(default)]
    #[schemars(with = "Option<RawContainer>")]
    pub container: Option<Spanned<RawContainer>>,
    /// Model type → folder relative to `root`. Overrides or extends the preset's table.
    #[serde(default)]
    #[schemars(with = "KeyedMap<String>")]
    pub folders: KeyedMap<Spanned<String>>,
    /// The app's version (PEP 440, e.g. `0.3.40`), checked against models' `requires:`. Without
    /// it, mlib reads the version from the app's tree (ComfyUI's `comfyui_version.py`, A1111's
    /// git tag or `CHANGELOG.md`, Forge's `modules_forge/forge_version.py`, Fooocus's
    /// `fooocus_version.py`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub version: Option<Spanned<String>>,
}

/// How a container sees the paths an app's links involve.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Container")]
pub(crate) struct RawContainer {
    /// Where the store is mounted inside the container (absolute, e.g. `/models`): symlinks
    /// into this app name the store there, so they resolve in the container (and not on the
    /// host).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub store: Option<Spanned<String>>,
    /// Where the app's root is inside the container (absolute, e.g. `/app/ComfyUI`); with it
    /// and without `store`, the plan warns that links into the store would dangle there.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub root: Option<Spanned<String>>,
}

/// `models: all` or `models: [name, tag, ...]`.
#[derive(Debug)]
pub(crate) enum RawSelection {
    All,
    List(Vec<Spanned<String>>),
    /// Any other word; `resolve` explains what to write instead.
    Other(String),
}

impl<'de> Deserialize<'de> for RawSelection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SelectionVisitor;
        impl<'de> Visitor<'de> for SelectionVisitor {
            type Value = RawSelection;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`all` or a list of model names and tags")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSelection, E> {
                Ok(if v == "all" {
                    RawSelection::All
                } else {
                    RawSelection::Other(v.to_owned())
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawSelection, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    items.push(item);
                }
                Ok(RawSelection::List(items))
            }
        }
        deserializer.deserialize_any(SelectionVisitor)
    }
}

impl JsonSchema for RawSelection {
    fn schema_name() -> Cow<'static, str> {
        "ModelSelection".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`all`, or a list of model names and tags.",
            "anyOf": [
                { "const": "all" },
                { "type": "array", "items": { "type": "string", "pattern": NAME_PATTERN } }
            ]
        })
    }
}

/// A YAML mapping whose keys are names, kept in file order with their locations so that errors
/// about a name point at the key. Repeated keys are kept too: `resolve` reports them.
#[derive(Debug)]
pub(crate) struct KeyedMap<T> {
    pub entries: Vec<(Spanned<String>, T)>,
}

impl<T> Default for KeyedMap<T> {
    fn default() -> Self {
        KeyedMap {
            entries: Vec::new(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for KeyedMap<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for MapVisitor<T> {
            type Value = KeyedMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of names")
            }
            // `models:` with nothing after it is an empty mapping, not a type error.
            fn visit_unit<E: de::Error>(self) -> Result<KeyedMap<T>, E> {
                Ok(KeyedMap::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<KeyedMap<T>, E> {
                Ok(KeyedMap::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyedMap<T>, A::Error> {
                // Sized up front where the reader knows the count (the block reader does):
                // grown by doubling, 10,000 models' entries were ~9 MB, 40% of it unused.
                let known = map.size_hint().unwrap_or(0).min(1 << 20);
                let mut entries = Vec::with_capacity(known);
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let value = map.next_value::<T>()?;
                    entries.push((key, value));
                }
                Ok(KeyedMap { entries })
            }
        }
        // `deserialize_any` so that an empty value reaches `visit_unit` instead of failing.
        deserializer.deserialize_any(MapVisitor(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for KeyedMap<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("Map_of_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let values = generator.subschema_for::<T>();
        json_schema!({
            "type": "object",
            "propertyNames": { "pattern": NAME_PATTERN, "maxLength": 128 },
            "additionalProperties": values
        })
    }
}

/// Schema stand-in for `version`: editors should offer `1` and nothing else.
struct Version;

impl JsonSchema for Version {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Version".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "const": 1 })
    }
}
