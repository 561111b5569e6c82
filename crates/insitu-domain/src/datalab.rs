//! Datalab definitions: what the catalogue holds about a launchable tool.
//!
//! A definition is one TOML file per datalab. Parsing collects every problem
//! (field and reason) instead of stopping at the first, so an operator can fix
//! a file in one pass.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::name::Name;
use crate::spdx;

/// Placeholders a launch command or environment value may contain.
pub const PLACEHOLDERS: [&str; 5] = ["port", "base_url", "workspace", "user", "listen"];

/// The placeholder for the lab's own secret (see [`ToolCredential`]). Only
/// `launch.env` values may hold it: a command line is visible to every
/// process of the host.
pub const SECRET_PLACEHOLDER: &str = "secret";

/// The placeholder for the file a lab is launched on: the file's path
/// inside the lab. Only `launch.file_arguments` may hold it.
pub const FILE_PLACEHOLDER: &str = "file";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatalabKind {
    /// A tool that serves HTTP itself (JupyterLab, a web IDE).
    Web,
    /// An X11 program shown in the browser through VNC.
    Desktop,
}

impl DatalabKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DatalabKind::Web => "web",
            DatalabKind::Desktop => "desktop",
        }
    }
}

/// What kind of work a tool is for; a facet of the catalogue.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Property {
    AnalysisTool,
    VisualisationTool,
    QueryTool,
    DevelopmentTool,
}

impl Property {
    pub const ALL: [Property; 4] = [
        Property::AnalysisTool,
        Property::VisualisationTool,
        Property::QueryTool,
        Property::DevelopmentTool,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Property::AnalysisTool => "analysis_tool",
            Property::VisualisationTool => "visualisation_tool",
            Property::QueryTool => "query_tool",
            Property::DevelopmentTool => "development_tool",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Property::AnalysisTool => "Analysis tool",
            Property::VisualisationTool => "Visualisation tool",
            Property::QueryTool => "Query tool",
            Property::DevelopmentTool => "Development tool",
        }
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a lab's tool takes the lab's own secret, which the lab proxy then
/// presents on every request it forwards (in place of anything the browser
/// sends): code that reaches the tool's port without the proxy (another
/// lab on the host's network, a process of the host) is refused by the
/// tool itself. The tool gets the secret in its environment only, as
/// `INSITU_LAB_SECRET` and wherever `launch.env` says `{secret}`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ToolCredential {
    /// The tool requires nothing: anyone who reaches its port may use it
    /// (the default for third-party web tools).
    #[default]
    None,
    /// `Authorization: token <secret>`: JupyterLab, given the secret as
    /// `JUPYTER_TOKEN`.
    JupyterToken,
    /// `Authorization: Basic` of `insitu:<secret>`: websockify in desktop
    /// labs (and tools that take a password).
    Basic,
    /// `Authorization: Bearer <secret>`.
    Bearer,
}

impl ToolCredential {
    /// Every form, in the order the definition's error message lists them.
    pub const ALL: [ToolCredential; 4] = [
        ToolCredential::JupyterToken,
        ToolCredential::Basic,
        ToolCredential::Bearer,
        ToolCredential::None,
    ];

    /// The user name of the Basic form.
    pub const BASIC_USER: &str = "insitu";

    /// The name used in definitions (`launch.credential`).
    pub fn as_str(self) -> &'static str {
        match self {
            ToolCredential::None => "none",
            ToolCredential::JupyterToken => "jupyter-token",
            ToolCredential::Basic => "basic",
            ToolCredential::Bearer => "bearer",
        }
    }

    /// Whether the tool takes a secret at all.
    pub fn requires_secret(self) -> bool {
        self != ToolCredential::None
    }
}

impl fmt::Display for ToolCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ToolCredential {
    type Err = UnknownCredential;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ToolCredential::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCredential(s.to_owned()))
    }
}

/// A `launch.credential` that is none of the known forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not one of \"jupyter-token\", \"basic\", \"bearer\", \"none\"")]
pub struct UnknownCredential(pub String);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LaunchSpec {
    /// Program and arguments; may hold `{port}`, `{base_url}`, `{workspace}`, `{user}`,
    /// `{listen}` (the address to listen on: loopback on this machine, every
    /// address on a cluster's node, where the proxy reaches it).
    pub command: Vec<String>,
    /// Environment set for the tool; values may hold the same placeholders,
    /// and `{secret}` (the lab's secret) when the tool takes one.
    pub env: BTreeMap<String, String>,
    /// Path (below the lab's base URL) that answers 200 once the tool is ready.
    pub readiness_path: String,
    /// Arguments appended to `command` when the lab is launched on a file,
    /// holding `{file}` (the file's path inside the lab) and the other
    /// placeholders; empty when the datalab opens no files.
    pub file_arguments: Vec<String>,
    /// How the tool takes the lab's secret (`launch.credential`): `none`
    /// by default for web tools; desktop labs always take `basic`
    /// (websockify's).
    pub credential: ToolCredential,
    /// The OCI image the lab runs in (`launch.image`): such a datalab is
    /// launched by the container launcher (podman), every other one in a
    /// sandbox of the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

impl LaunchSpec {
    /// Whether the datalab can be launched on a file.
    pub fn opens_files(&self) -> bool {
        !self.file_arguments.is_empty()
    }

    /// Which launcher starts the datalab's labs.
    pub fn launcher(&self) -> Launcher<'_> {
        match &self.image {
            Some(image) => Launcher::Container { image },
            None => Launcher::Sandbox,
        }
    }
}

/// Where a datalab's labs run: a bubblewrap sandbox over the host's own
/// programs, or an OCI container of the datalab's image (podman).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launcher<'a> {
    Sandbox,
    Container { image: &'a str },
}

/// Checks an OCI image reference as podman takes it: `[host/]path[:tag]`
/// or `…@sha256:…`, printable ASCII without spaces, never starting with
/// `-` (it would read as an option).
pub fn check_image_reference(image: &str) -> Result<(), String> {
    if image.is_empty() || image.len() > 255 {
        return Err("must be 1 to 255 characters".to_owned());
    }
    if image.starts_with(['-', '/', '.', ':']) {
        return Err(format!("{image:?} must start with a letter or digit"));
    }
    match image
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '_' | '-' | ':' | '@')))
    {
        Some(c) => Err(format!(
            "{image:?} holds {c:?}: an image reference is letters, digits and . / _ - : @"
        )),
        None if image.contains("//") || image.contains("..") => {
            Err(format!("{image:?} is not an image reference"))
        }
        None => Ok(()),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Resources {
    /// CPU cores the lab may use.
    pub cpu: f64,
    /// Memory limit in bytes.
    pub memory_bytes: u64,
    /// Number of GPUs the lab needs.
    pub gpu: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Tags {
    pub domain: Vec<String>,
    pub mission: Vec<String>,
    pub properties: Vec<Property>,
}

/// A validated datalab definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatalabSpec {
    pub name: Name,
    pub title: String,
    pub description: String,
    pub version: String,
    pub kind: DatalabKind,
    pub launch: LaunchSpec,
    pub resources: Resources,
    /// SPDX licence expression, e.g. `BSD-3-Clause` or `GPL-2.0-or-later`.
    pub license: String,
    pub tags: Tags,
}

/// One problem found in a definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DefinitionError {
    /// Dotted path of the field, or `file` when the file as a whole is wrong.
    pub field: String,
    pub reason: String,
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefinition {
    name: Option<String>,
    title: String,
    description: String,
    version: String,
    kind: String,
    license: String,
    launch: RawLaunch,
    #[serde(default)]
    resources: RawResources,
    #[serde(default)]
    tags: RawTags,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLaunch {
    command: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default = "default_readiness")]
    readiness_path: String,
    #[serde(default)]
    file_arguments: Vec<String>,
    credential: Option<String>,
    image: Option<String>,
}

fn default_readiness() -> String {
    "/".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResources {
    #[serde(default = "default_cpu")]
    cpu: f64,
    #[serde(default = "default_memory")]
    memory: String,
    #[serde(default)]
    gpu: u32,
}

impl Default for RawResources {
    fn default() -> Self {
        RawResources {
            cpu: default_cpu(),
            memory: default_memory(),
            gpu: 0,
        }
    }
}

fn default_cpu() -> f64 {
    1.0
}

fn default_memory() -> String {
    "2GiB".to_owned()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTags {
    #[serde(default)]
    domain: Vec<String>,
    #[serde(default)]
    mission: Vec<String>,
    #[serde(default)]
    properties: Vec<String>,
}

impl DatalabSpec {
    /// Parses a definition file. `stem` is the file name without extension;
    /// the datalab's name defaults to it and, when given, must equal it.
    pub fn from_toml(stem: &str, text: &str) -> Result<DatalabSpec, Vec<DefinitionError>> {
        let raw: RawDefinition = toml::from_str(text).map_err(|e| vec![toml_error(&e)])?;
        let mut errors = Vec::new();
        let mut err = |field: &str, reason: String| {
            errors.push(DefinitionError {
                field: field.to_owned(),
                reason,
            })
        };

        let name_text = raw.name.as_deref().unwrap_or(stem);
        let name = match name_text.parse::<Name>() {
            Ok(n) => Some(n),
            Err(e) => {
                err("name", format!("{name_text:?} {e}"));
                None
            }
        };
        if raw.name.as_deref().is_some_and(|n| n != stem) {
            err("name", format!("must match the file name {stem:?}"));
        }
        if raw.title.trim().is_empty() {
            err("title", "must not be empty".to_owned());
        }
        if raw.version.trim().is_empty() {
            err("version", "must not be empty".to_owned());
        }
        let kind = match raw.kind.as_str() {
            "web" => Some(DatalabKind::Web),
            "desktop" => Some(DatalabKind::Desktop),
            other => {
                err(
                    "kind",
                    format!("{other:?} is not one of \"web\", \"desktop\""),
                );
                None
            }
        };
        if let Err(reason) = spdx::check_expression(&raw.license) {
            err("license", reason.to_string());
        }
        if raw.launch.command.is_empty() || raw.launch.command[0].trim().is_empty() {
            err("launch.command", "must name a program".to_owned());
        }
        for (i, arg) in raw.launch.command.iter().enumerate() {
            if let Err(reason) = check_placeholders(arg, Place::Command) {
                err(&format!("launch.command[{i}]"), reason.to_string());
            }
        }
        for (i, arg) in raw.launch.file_arguments.iter().enumerate() {
            if let Err(reason) = check_placeholders(arg, Place::FileArguments) {
                err(&format!("launch.file_arguments[{i}]"), reason.to_string());
            }
        }
        let file = format!("{{{FILE_PLACEHOLDER}}}");
        if !raw.launch.file_arguments.is_empty()
            && !raw.launch.file_arguments.iter().any(|a| a.contains(&file))
        {
            err(
                "launch.file_arguments",
                format!("must hold {file} somewhere (the file's path in the lab)"),
            );
        }
        for (k, v) in &raw.launch.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                err(
                    &format!("launch.env.{k}"),
                    "is not a valid variable name".to_owned(),
                );
            }
            if let Err(reason) = check_placeholders(v, Place::Env) {
                err(&format!("launch.env.{k}"), reason.to_string());
            }
        }
        let credential = parse_credential(
            raw.launch.credential.as_deref(),
            kind,
            &raw.launch.env,
            &mut err,
        );
        if !raw.launch.readiness_path.starts_with('/') {
            err("launch.readiness_path", "must start with '/'".to_owned());
        }
        if let Some(image) = &raw.launch.image
            && let Err(reason) = check_image_reference(image)
        {
            err("launch.image", reason);
        }
        if !(raw.resources.cpu.is_finite()
            && raw.resources.cpu > 0.0
            && raw.resources.cpu <= 1024.0)
        {
            err(
                "resources.cpu",
                "must be a number of cores above 0 and at most 1024".to_owned(),
            );
        }
        let memory = match parse_bytes(&raw.resources.memory) {
            Ok(b) if b >= 16 * 1024 * 1024 => Some(b),
            Ok(_) => {
                err("resources.memory", "must be at least 16MiB".to_owned());
                None
            }
            Err(reason) => {
                err("resources.memory", reason.to_string());
                None
            }
        };
        let mut properties = Vec::new();
        for (i, p) in raw.tags.properties.iter().enumerate() {
            match Property::ALL.into_iter().find(|q| q.as_str() == p) {
                Some(q) => properties.push(q),
                None => err(
                    &format!("tags.properties[{i}]"),
                    format!(
                        "{p:?} is not one of {}",
                        Property::ALL.map(|q| q.as_str()).join(", ")
                    ),
                ),
            }
        }
        for (field, values) in [
            ("tags.domain", &raw.tags.domain),
            ("tags.mission", &raw.tags.mission),
        ] {
            for (i, v) in values.iter().enumerate() {
                if v.trim().is_empty() || v.len() > 64 {
                    err(
                        &format!("{field}[{i}]"),
                        "must be 1 to 64 characters".to_owned(),
                    );
                }
            }
        }

        match (name, kind, memory) {
            (Some(name), Some(kind), Some(memory_bytes)) if errors.is_empty() => Ok(DatalabSpec {
                name,
                title: raw.title,
                description: raw.description,
                version: raw.version,
                kind,
                launch: LaunchSpec {
                    command: raw.launch.command,
                    env: raw.launch.env,
                    readiness_path: raw.launch.readiness_path,
                    file_arguments: raw.launch.file_arguments,
                    credential,
                    image: raw.launch.image,
                },
                resources: Resources {
                    cpu: raw.resources.cpu,
                    memory_bytes,
                    gpu: raw.resources.gpu,
                },
                license: raw.license,
                tags: Tags {
                    domain: raw.tags.domain,
                    mission: raw.tags.mission,
                    properties,
                },
            }),
            _ => Err(errors),
        }
    }

    /// Every tag of the datalab as `(facet, value)`, for filters and display.
    pub fn tag_pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.tags
            .domain
            .iter()
            .map(|d| ("domain", d.as_str()))
            .chain(self.tags.mission.iter().map(|m| ("mission", m.as_str())))
            .chain(
                self.tags
                    .properties
                    .iter()
                    .map(|p| ("property", p.as_str())),
            )
    }
}

/// A definition as its file writes it (the inverse of [`RawDefinition`]).
#[derive(Serialize)]
struct FileDefinition<'a> {
    name: &'a str,
    title: &'a str,
    description: &'a str,
    version: &'a str,
    kind: &'a str,
    license: &'a str,
    launch: FileLaunch<'a>,
    resources: FileResources,
    tags: FileTags<'a>,
}

#[derive(Serialize)]
struct FileLaunch<'a> {
    command: &'a [String],
    readiness_path: &'a str,
    credential: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    file_arguments: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    env: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct FileResources {
    cpu: f64,
    memory: String,
    gpu: u32,
}

#[derive(Serialize)]
struct FileTags<'a> {
    domain: &'a [String],
    mission: &'a [String],
    properties: Vec<&'static str>,
}

/// A size as a definition writes it: whole GiB or MiB where it is one,
/// else bytes.
pub fn size_setting(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    if bytes.is_multiple_of(1 << 30) {
        format!("{}GiB", bytes >> 30)
    } else if bytes.is_multiple_of(MIB) {
        format!("{}MiB", bytes / MIB)
    } else {
        bytes.to_string()
    }
}

impl DatalabSpec {
    /// The definition file that [`DatalabSpec::from_toml`] reads back as
    /// this definition.
    pub fn to_toml(&self) -> String {
        let file = FileDefinition {
            name: self.name.as_str(),
            title: &self.title,
            description: &self.description,
            version: &self.version,
            kind: self.kind.as_str(),
            license: &self.license,
            launch: FileLaunch {
                command: &self.launch.command,
                readiness_path: &self.launch.readiness_path,
                credential: self.launch.credential.as_str(),
                file_arguments: &self.launch.file_arguments,
                image: self.launch.image.as_deref(),
                env: &self.launch.env,
            },
            resources: FileResources {
                cpu: self.resources.cpu,
                memory: size_setting(self.resources.memory_bytes),
                gpu: self.resources.gpu,
            },
            tags: FileTags {
                domain: &self.tags.domain,
                mission: &self.tags.mission,
                properties: self.tags.properties.iter().map(|p| p.as_str()).collect(),
            },
        };
        // Every field is a plain string, number, list or table of strings:
        // writing it cannot fail.
        toml::to_string(&file).unwrap_or_default()
    }
}

fn toml_error(e: &toml::de::Error) -> DefinitionError {
    let message = e.message().to_owned();
    // toml reports the offending key in its message; the span gives the place.
    DefinitionError {
        field: "file".to_owned(),
        reason: message,
    }
}

/// How the tool takes its secret: `launch.credential`, by default `none`
/// for a web tool and `basic` for a desktop lab (whose websockify takes
/// nothing else). A `{secret}` in `launch.env` needs a tool that takes one.
fn parse_credential(
    raw: Option<&str>,
    kind: Option<DatalabKind>,
    env: &BTreeMap<String, String>,
    err: &mut impl FnMut(&str, String),
) -> ToolCredential {
    let credential = match (raw, kind) {
        (None, Some(DatalabKind::Desktop)) => ToolCredential::Basic,
        (None, _) => ToolCredential::None,
        (Some(text), _) => match text.parse::<ToolCredential>() {
            Ok(c) => c,
            Err(e) => {
                err("launch.credential", e.to_string());
                return ToolCredential::None;
            }
        },
    };
    if kind == Some(DatalabKind::Desktop) && credential != ToolCredential::Basic {
        err(
            "launch.credential",
            format!(
                "{:?}: a desktop lab is served by websockify, which takes \"basic\"",
                credential.as_str()
            ),
        );
    }
    let secret = format!("{{{SECRET_PLACEHOLDER}}}");
    if !credential.requires_secret() {
        for (k, v) in env {
            if v.contains(&secret) {
                err(
                    &format!("launch.env.{k}"),
                    format!(
                        "{secret} needs a tool that takes the lab's secret: set launch.credential"
                    ),
                );
            }
        }
    }
    credential
}

/// Where a placeholder is written: each place allows its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Command,
    FileArguments,
    Env,
}

/// What is wrong with the placeholders of a launch argument or value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceholderError {
    #[error("has a '{{' without a closing '}}'")]
    Unclosed,
    #[error(
        "{{{0}}} may appear only in launch.env values: a command line is visible to every process of the host"
    )]
    SecretOutsideEnv(String),
    #[error(
        "{{{0}}} may appear only in launch.file_arguments, which are added when a lab is launched on a file"
    )]
    FileOutsideFileArguments(String),
    #[error(
        "unknown placeholder {{{key}}}: expected one of {}",
        known_placeholders()
    )]
    Unknown { key: String },
}

fn known_placeholders() -> String {
    PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
}

/// Checks the placeholders of a command argument or environment value:
/// `{file}` only in file arguments, `{secret}` only in the environment.
fn check_placeholders(s: &str, place: Place) -> Result<(), PlaceholderError> {
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(PlaceholderError::Unclosed);
        };
        let key = &after[..close];
        if key == FILE_PLACEHOLDER && place != Place::FileArguments {
            return Err(PlaceholderError::FileOutsideFileArguments(key.to_owned()));
        }
        if key == SECRET_PLACEHOLDER && place != Place::Env {
            return Err(PlaceholderError::SecretOutsideEnv(key.to_owned()));
        }
        let special = [FILE_PLACEHOLDER, SECRET_PLACEHOLDER];
        if !special.contains(&key) && !PLACEHOLDERS.contains(&key) {
            return Err(PlaceholderError::Unknown {
                key: key.to_owned(),
            });
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// What is wrong with a size or a duration; `text` is what was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("{0:?} is not a size such as \"512MiB\" or \"4GiB\"")]
    NotASize(String),
    #[error("unknown unit {unit:?} in {text:?}: use B, KiB, MiB, GiB, TiB")]
    SizeUnit { unit: String, text: String },
    #[error("{0:?} is too large")]
    TooLarge(String),
    #[error("{0:?} is not a duration such as \"30m\" or \"12h\"")]
    NotADuration(String),
    #[error("unknown unit {unit:?} in {text:?}: use s, m, h or d")]
    DurationUnit { unit: String, text: String },
    #[error("{0:?} must be above zero and not absurdly large")]
    DurationRange(String),
}

/// Parses a size such as `512MiB`, `4GiB`, `2G` or `1048576` into bytes.
pub fn parse_bytes(s: &str) -> Result<u64, QuantityError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| QuantityError::NotASize(s.to_owned()))?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" => 1000,
        "KiB" => 1 << 10,
        "M" | "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "G" | "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        "T" | "TB" => 1_000_000_000_000,
        "TiB" => 1 << 40,
        other => {
            return Err(QuantityError::SizeUnit {
                unit: other.to_owned(),
                text: s.to_owned(),
            });
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| QuantityError::TooLarge(s.to_owned()))
}

/// Parses a duration such as `90s`, `30m`, `12h` or `7d` into seconds.
pub fn parse_duration(s: &str) -> Result<u64, QuantityError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| QuantityError::NotADuration(s.to_owned()))?;
    let factor = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => {
            return Err(QuantityError::DurationUnit {
                unit: other.to_owned(),
                text: s.to_owned(),
            });
        }
    };
    n.checked_mul(factor)
        .filter(|v| *v > 0)
        .ok_or_else(|| QuantityError::DurationRange(s.to_owned()))
}

/// Formats bytes for people: `4 GiB`, `512 MiB`.
pub fn format_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if (v - v.round()).abs() < 0.05 {
        format!("{} {}", v.round(), UNITS[i])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
title = "JupyterLab"
description = "Notebooks"
version = "4.2"
kind = "web"
license = "BSD-3-Clause"
[launch]
command = ["jupyter-lab", "--port={port}", "--ServerApp.base_url={base_url}"]
readiness_path = "/api/status"
[resources]
cpu = 2
memory = "4GiB"
[tags]
domain = ["astronomy"]
properties = ["analysis_tool"]
"#;

    #[test]
    fn parses_a_good_definition() {
        let d = DatalabSpec::from_toml("jupyterlab", GOOD).unwrap();
        assert_eq!(d.name.as_str(), "jupyterlab");
        assert_eq!(d.kind, DatalabKind::Web);
        assert_eq!(d.resources.memory_bytes, 4 << 30);
        assert_eq!(d.tags.properties, vec![Property::AnalysisTool]);
    }

    #[test]
    fn reports_every_problem_with_its_field() {
        let bad = GOOD
            .replace("kind = \"web\"", "kind = \"tui\"")
            .replace("BSD-3-Clause", "Not-A-Licence")
            .replace("{port}", "{prot}")
            .replace("4GiB", "lots")
            .replace("analysis_tool", "magic");
        let errs = DatalabSpec::from_toml("jupyterlab", &bad).unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "kind",
                "license",
                "launch.command[1]",
                "resources.memory",
                "tags.properties[0]"
            ]
        );
    }

    #[test]
    fn file_arguments_hold_the_file_placeholder_and_only_they_may() {
        let with = GOOD.replace(
            "readiness_path",
            "file_arguments = [\"-title\", \"{file}\", \"{file}\"]\nreadiness_path",
        );
        let d = DatalabSpec::from_toml("x", &with).unwrap();
        assert!(d.launch.opens_files());
        assert_eq!(d.launch.file_arguments, ["-title", "{file}", "{file}"]);
        assert!(
            !DatalabSpec::from_toml("x", GOOD)
                .unwrap()
                .launch
                .opens_files()
        );

        let without = GOOD.replace(
            "readiness_path",
            "file_arguments = [\"--open\"]\nreadiness_path",
        );
        let errs = DatalabSpec::from_toml("x", &without).unwrap_err();
        assert_eq!(errs[0].field, "launch.file_arguments", "{errs:?}");
        let in_command = GOOD.replace("--port={port}", "{file}");
        let errs = DatalabSpec::from_toml("x", &in_command).unwrap_err();
        assert_eq!(errs[0].field, "launch.command[1]", "{errs:?}");
        assert!(errs[0].reason.contains("file_arguments"), "{errs:?}");
    }

    #[test]
    fn the_credential_says_how_the_tool_takes_its_secret() {
        let web = DatalabSpec::from_toml("x", GOOD).unwrap();
        assert_eq!(web.launch.credential, ToolCredential::None, "web default");
        let with = |line: &str| GOOD.replace("readiness_path", &format!("{line}\nreadiness_path"));
        for (text, form) in [
            ("jupyter-token", ToolCredential::JupyterToken),
            ("basic", ToolCredential::Basic),
            ("bearer", ToolCredential::Bearer),
            ("none", ToolCredential::None),
        ] {
            let d =
                DatalabSpec::from_toml("x", &with(&format!("credential = \"{text}\""))).unwrap();
            assert_eq!(d.launch.credential, form);
            assert_eq!(form.as_str(), text);
        }
        let errs = DatalabSpec::from_toml("x", &with("credential = \"password\"")).unwrap_err();
        assert_eq!(errs[0].field, "launch.credential", "{errs:?}");
        assert!(errs[0].reason.contains("\"jupyter-token\""), "{errs:?}");

        let desktop = GOOD.replace("kind = \"web\"", "kind = \"desktop\"");
        let d = DatalabSpec::from_toml("x", &desktop).unwrap();
        assert_eq!(
            d.launch.credential,
            ToolCredential::Basic,
            "desktop default"
        );
        let bearer = desktop.replace("readiness_path", "credential = \"none\"\nreadiness_path");
        let errs = DatalabSpec::from_toml("x", &bearer).unwrap_err();
        assert!(errs[0].reason.contains("websockify"), "{errs:?}");
    }

    #[test]
    fn the_secret_goes_only_into_the_environment_of_a_tool_that_takes_one() {
        let env = |credential: &str| {
            GOOD.replace(
                "[resources]",
                &format!(
                    "credential = \"{credential}\"\n[launch.env]\nJUPYTER_TOKEN = \"{{secret}}\"\n[resources]"
                ),
            )
        };
        let d = DatalabSpec::from_toml("x", &env("jupyter-token")).unwrap();
        assert_eq!(d.launch.env["JUPYTER_TOKEN"], "{secret}");
        let errs = DatalabSpec::from_toml("x", &env("none")).unwrap_err();
        assert_eq!(errs[0].field, "launch.env.JUPYTER_TOKEN", "{errs:?}");

        let in_command = GOOD.replace("--port={port}", "--token={secret}");
        let errs = DatalabSpec::from_toml("x", &in_command).unwrap_err();
        assert_eq!(errs[0].field, "launch.command[1]", "{errs:?}");
        assert!(errs[0].reason.contains("launch.env"), "{errs:?}");
        let in_file_arguments = GOOD.replace(
            "readiness_path",
            "file_arguments = [\"{file}\", \"{secret}\"]\nreadiness_path",
        );
        let errs = DatalabSpec::from_toml("x", &in_file_arguments).unwrap_err();
        assert_eq!(errs[0].field, "launch.file_arguments[1]", "{errs:?}");
    }

    #[test]
    fn unknown_fields_and_syntax_errors_are_reported() {
        let errs = DatalabSpec::from_toml("x", &format!("colour = 1\n{GOOD}")).unwrap_err();
        assert!(errs[0].reason.contains("colour"), "{errs:?}");
        let errs = DatalabSpec::from_toml("x", "title = ").unwrap_err();
        assert_eq!(errs[0].field, "file");
    }

    #[test]
    fn name_must_match_file() {
        let errs =
            DatalabSpec::from_toml("jupyterlab", &format!("name = \"other\"\n{GOOD}")).unwrap_err();
        assert_eq!(errs[0].field, "name");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("2G"), Ok(2_000_000_000));
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("99999999999TiB").is_err());
        assert_eq!(format_bytes(4 << 30), "4 GiB");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(parse_duration("12h"), Ok(43_200));
        assert_eq!(parse_duration("2s"), Ok(2));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn a_definition_written_out_reads_back_as_itself() {
        let text = "title = \"Web tool\"\ndescription = \"Serves \\\"quotes\\\"\"\nversion = \"1.2.0\"\n\
            kind = \"web\"\nlicense = \"MIT\"\n[launch]\ncommand = [\"python3\", \"/opt/app.py\", \"{port}\"]\n\
            credential = \"bearer\"\nimage = \"localhost/insitu-devlab/web:1.2.0-3\"\n\
            [launch.env]\nTOKEN = \"{secret}\"\n[resources]\ncpu = 0.5\nmemory = \"96MiB\"\n\
            [tags]\ndomain = [\"astronomy\"]\nproperties = [\"query_tool\"]\n";
        let spec = DatalabSpec::from_toml("web", text).unwrap();
        assert_eq!(
            spec.launch.launcher(),
            Launcher::Container {
                image: "localhost/insitu-devlab/web:1.2.0-3"
            }
        );
        let again = DatalabSpec::from_toml("web", &spec.to_toml()).unwrap();
        assert_eq!(again, spec);
        let shipped = DatalabSpec::from_toml("jupyterlab", GOOD).unwrap();
        assert_eq!(shipped.launch.launcher(), Launcher::Sandbox);
        assert_eq!(
            DatalabSpec::from_toml("jupyterlab", &shipped.to_toml()).unwrap(),
            shipped
        );
    }

    #[test]
    fn an_image_must_be_a_plain_reference() {
        for ok in [
            "localhost/insitu/python:3",
            "docker.io/library/debian:stable-slim",
            "img@sha256:abc",
        ] {
            assert_eq!(check_image_reference(ok), Ok(()), "{ok}");
        }
        for bad in ["", "--privileged", "a b", "a/../b", "/abs", "x\ny", "a//b"] {
            assert!(check_image_reference(bad).is_err(), "{bad:?}");
        }
        let errs =
            DatalabSpec::from_toml("x", &GOOD.replace("[launch]", "[launch]\nimage = \"--rm\""))
                .unwrap_err();
        assert_eq!(errs[0].field, "launch.image");
    }
}
