//! User-developed datalabs: what a developer writes (a definition, an OCI
//! `Containerfile` and the few small files it copies), the templates a
//! draft starts from, the rules a Containerfile must keep before podman
//! sees it, build versions, the states of builds and of publication, and
//! the licences a published datalab may carry.
//!
//! A Containerfile may build only on the platform's own base images (or
//! on its own earlier stages): never on another datalab's image, which may
//! be private. It may not mount anything into a build step (`RUN --mount`
//! would share a cache or files between builds of different users) and may
//! not change the parser's escape character, so that what is checked here
//! is what podman reads.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::datalab::{DatalabKind, DatalabSpec, DefinitionError};
use crate::name::Name;

/// The build file's name in a draft and in the build's context.
pub const CONTAINERFILE: &str = "Containerfile";

/// A Python requirements list, which the `python` template turns into a
/// JupyterLab image.
pub const REQUIREMENTS: &str = "requirements.txt";

/// The Containerfile and its files together, in bytes.
pub const MAX_SOURCE_BYTES: usize = 128 * 1024;

/// Files beside the Containerfile.
pub const MAX_FILES: usize = 16;

/// Licences a developer chooses from (SPDX identifiers and their names).
pub const LICENSES: [(&str, &str); 16] = [
    ("Apache-2.0", "Apache License 2.0"),
    ("BSD-2-Clause", "BSD 2-Clause \"Simplified\" License"),
    (
        "BSD-3-Clause",
        "BSD 3-Clause \"New\" or \"Revised\" License",
    ),
    ("MIT", "MIT License"),
    ("GPL-2.0-only", "GNU General Public License v2.0 only"),
    ("GPL-3.0-only", "GNU General Public License v3.0 only"),
    (
        "GPL-3.0-or-later",
        "GNU General Public License v3.0 or later",
    ),
    (
        "LGPL-2.1-or-later",
        "GNU Lesser General Public License v2.1 or later",
    ),
    (
        "LGPL-3.0-or-later",
        "GNU Lesser General Public License v3.0 or later",
    ),
    (
        "AGPL-3.0-or-later",
        "GNU Affero General Public License v3.0 or later",
    ),
    ("MPL-2.0", "Mozilla Public License 2.0"),
    ("EUPL-1.2", "European Union Public License 1.2"),
    ("CECILL-2.1", "CeCILL Free Software License Agreement v2.1"),
    (
        "CC-BY-4.0",
        "Creative Commons Attribution 4.0 International",
    ),
    (
        "CC-BY-NC-4.0",
        "Creative Commons Attribution Non Commercial 4.0 International",
    ),
    ("Unlicense", "The Unlicense"),
];

/// Whether `id` is one of [`LICENSES`].
pub fn is_offered_license(id: &str) -> bool {
    LICENSES.iter().any(|(l, _)| *l == id)
}

/// What a developer writes about their datalab: the catalogue's fields and
/// how the lab starts. It becomes a [`DatalabSpec`] (checked by
/// [`DevlabDefinition::spec`]) whose image is the build's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DevlabDefinition {
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// The datalab's version (`1.4.0`); builds are numbered below it
    /// (`1.4.0-0`, `1.4.0-1`, …).
    pub version: String,
    /// Who made it, as the catalogue shows it.
    pub author: String,
    /// One of the offered SPDX licences (`GET /api/v1/devlabs/licenses`).
    pub license: String,
    /// `web` or `desktop`.
    pub kind: DatalabKind,
    /// Program and arguments in the image; `{port}`, `{base_url}`,
    /// `{workspace}` and `{user}` are filled in at launch.
    pub command: Vec<String>,
    /// Path below the lab's base URL that answers once the tool is ready.
    #[serde(default = "default_readiness")]
    pub readiness_path: String,
    /// How the tool takes the lab's secret: `bearer`, `basic`,
    /// `jupyter-token` or `none` (desktop labs: `basic`).
    #[serde(default = "default_credential")]
    pub credential: String,
    /// Environment of the tool; values may hold the placeholders and
    /// `{secret}`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// CPU cores.
    #[serde(default = "default_cpu")]
    pub cpu: f64,
    /// Memory limit, e.g. `2GiB`.
    #[serde(default = "default_memory")]
    pub memory: String,
    #[serde(default)]
    pub domain: Vec<String>,
    #[serde(default)]
    pub mission: Vec<String>,
    /// `analysis_tool`, `visualisation_tool`, `query_tool`, `development_tool`.
    #[serde(default)]
    pub properties: Vec<String>,
}

fn default_readiness() -> String {
    "/".to_owned()
}

fn default_credential() -> String {
    "bearer".to_owned()
}

fn default_cpu() -> f64 {
    1.0
}

fn default_memory() -> String {
    "2GiB".to_owned()
}

/// The definition file's own form, written from a [`DevlabDefinition`].
#[derive(Serialize)]
struct File<'a> {
    name: &'a str,
    title: &'a str,
    description: &'a str,
    version: &'a str,
    kind: &'a str,
    license: &'a str,
    launch: FileLaunch<'a>,
    resources: FileResources<'a>,
    tags: FileTags<'a>,
}

#[derive(Serialize)]
struct FileLaunch<'a> {
    command: &'a [String],
    readiness_path: &'a str,
    credential: &'a str,
    env: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
}

#[derive(Serialize)]
struct FileResources<'a> {
    cpu: f64,
    memory: &'a str,
}

#[derive(Serialize)]
struct FileTags<'a> {
    domain: &'a [String],
    mission: &'a [String],
    properties: &'a [String],
}

impl DevlabDefinition {
    /// The datalab this definition describes, with `image` as its image
    /// (none for a draft not built yet), or every problem found: the
    /// catalogue's own checks, and a developer's version, author and
    /// licence (one of [`LICENSES`]).
    pub fn spec(
        &self,
        name: &Name,
        image: Option<&str>,
    ) -> Result<DatalabSpec, Vec<DefinitionError>> {
        let file = File {
            name: name.as_str(),
            title: &self.title,
            description: &self.description,
            version: &self.version,
            kind: self.kind.as_str(),
            license: &self.license,
            launch: FileLaunch {
                command: &self.command,
                readiness_path: &self.readiness_path,
                credential: &self.credential,
                env: &self.env,
                image,
            },
            resources: FileResources {
                cpu: self.cpu,
                memory: &self.memory,
            },
            tags: FileTags {
                domain: &self.domain,
                mission: &self.mission,
                properties: &self.properties,
            },
        };
        let mut errors = Vec::new();
        let mut err = |field: &str, reason: String| {
            errors.push(DefinitionError {
                field: field.to_owned(),
                reason,
            });
        };
        if let Err(reason) = check_version(&self.version) {
            err("version", reason);
        }
        let author = self.author.trim();
        if author.is_empty() || author.chars().count() > 100 || author.contains(['\n', '\r']) {
            err(
                "author",
                "must be 1 to 100 characters on one line".to_owned(),
            );
        }
        if !is_offered_license(&self.license) {
            err(
                "license",
                format!(
                    "{:?} is not one of the offered licences: {}",
                    self.license,
                    LICENSES.map(|(id, _)| id).join(", ")
                ),
            );
        }
        if self.title.chars().count() > 200 || self.description.chars().count() > 4000 {
            err(
                "title",
                "a title holds at most 200 characters and a description 4000".to_owned(),
            );
        }
        // The catalogue's checks; their messages name the same fields.
        let checked = match toml::to_string(&file) {
            Ok(text) => DatalabSpec::from_toml(name.as_str(), &text),
            Err(e) => Err(vec![DefinitionError {
                field: "file".to_owned(),
                reason: e.to_string(),
            }]),
        };
        match checked {
            Ok(spec) if errors.is_empty() => Ok(spec),
            Ok(_) => Err(errors),
            Err(more) => {
                errors.extend(more);
                Err(errors)
            }
        }
    }

    /// The definition of a datalab as the catalogue holds it (an import's).
    pub fn from_spec(spec: &DatalabSpec, author: &str) -> DevlabDefinition {
        DevlabDefinition {
            title: spec.title.clone(),
            description: spec.description.clone(),
            version: spec.version.clone(),
            author: author.to_owned(),
            license: spec.license.clone(),
            kind: spec.kind,
            command: spec.launch.command.clone(),
            readiness_path: spec.launch.readiness_path.clone(),
            credential: spec.launch.credential.as_str().to_owned(),
            env: spec.launch.env.clone(),
            cpu: spec.resources.cpu,
            memory: crate::datalab::size_setting(spec.resources.memory_bytes),
            domain: spec.tags.domain.clone(),
            mission: spec.tags.mission.clone(),
            properties: spec
                .tags
                .properties
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
        }
    }
}

/// A developer's version, which names images (`<version>-<build>`): 1 to
/// 64 letters, digits, `.`, `_` and `-`, starting with a letter or digit.
pub fn check_version(version: &str) -> Result<(), String> {
    let ok = !version.is_empty()
        && version.len() <= 64
        && version.starts_with(|c: char| c.is_ascii_alphanumeric())
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{version:?} must be 1 to 64 letters, digits, '.', '_' and '-', starting with a letter or digit (it names the image)"
        ))
    }
}

/// The version of build `number` of a datalab at `version`: `1.4.0-3`.
pub fn build_version(version: &str, number: i64) -> String {
    format!("{version}-{number}")
}

/// The Containerfile and the files beside it: the build's whole context.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DevlabSource {
    pub containerfile: String,
    /// Files the Containerfile may `COPY`, by name (no directories).
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

/// Images a Containerfile may build on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRules {
    pub base_images: Vec<String>,
}

/// What is wrong with a draft's source; `line` counts from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("the Containerfile and its files hold {bytes} bytes; at most {max} are allowed")]
    TooLarge { bytes: usize, max: usize },
    #[error("at most {max} files may go beside the Containerfile")]
    TooManyFiles { max: usize },
    #[error(
        "file name {0:?}: 1 to 64 letters, digits, '.', '_' and '-', starting with a letter or digit, and not the Containerfile's"
    )]
    FileName(String),
    #[error("file {0:?} is not text")]
    NotText(String),
    #[error("Containerfile line {line}: {reason}")]
    Containerfile { line: usize, reason: String },
    #[error("requirements.txt line {line}: {reason}")]
    Requirements { line: usize, reason: String },
}

impl DevlabSource {
    /// Every problem of the source: sizes, file names, the
    /// Containerfile's rules (see the module's text) and a requirements
    /// list's lines.
    pub fn check(&self, rules: &BuildRules) -> Vec<SourceError> {
        let mut errors = Vec::new();
        let bytes = self.containerfile.len()
            + self
                .files
                .iter()
                .map(|(n, t)| n.len() + t.len())
                .sum::<usize>();
        if bytes > MAX_SOURCE_BYTES {
            errors.push(SourceError::TooLarge {
                bytes,
                max: MAX_SOURCE_BYTES,
            });
        }
        if self.files.len() > MAX_FILES {
            errors.push(SourceError::TooManyFiles { max: MAX_FILES });
        }
        for (name, text) in &self.files {
            if !file_name_ok(name) {
                errors.push(SourceError::FileName(name.clone()));
            }
            if text.contains('\0') {
                errors.push(SourceError::NotText(name.clone()));
            }
        }
        errors.extend(check_containerfile(&self.containerfile, rules));
        if let Some(requirements) = self.files.get(REQUIREMENTS) {
            errors.extend(check_requirements(requirements));
        }
        errors
    }
}

fn file_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !name.eq_ignore_ascii_case(CONTAINERFILE)
        && !name.eq_ignore_ascii_case("Dockerfile")
}

/// The rules a Containerfile keeps. Every physical line is looked at, not
/// only the instructions podman will read, so that no continuation or
/// quoting trick hides an instruction: a line that starts with `FROM` is
/// checked as one wherever it is, and `--mount` and `--from=` are looked
/// for anywhere.
pub fn check_containerfile(text: &str, rules: &BuildRules) -> Vec<SourceError> {
    let mut errors = Vec::new();
    let mut err = |line: usize, reason: String| {
        errors.push(SourceError::Containerfile { line, reason });
    };
    if text.contains('\0') {
        err(1, "holds a NUL byte".to_owned());
        return errors;
    }
    let mut stages: Vec<String> = Vec::new();
    let mut froms = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if let Some(comment) = trimmed.strip_prefix('#') {
            let directive = comment.trim_start().to_ascii_lowercase();
            if ["escape", "syntax", "check"].iter().any(|d| {
                directive.starts_with(d) && directive[d.len()..].trim_start().starts_with('=')
            }) {
                err(
                    line,
                    "parser directives (escape, syntax) are not allowed".to_owned(),
                );
            }
            continue;
        }
        let lower = trimmed.to_ascii_lowercase();
        if lower.contains("--mount") {
            err(
                line,
                "RUN --mount is not allowed: a build step sees only its own image and files"
                    .to_owned(),
            );
        }
        let mut rest = lower.as_str();
        while let Some(at) = rest.find("--from") {
            let after = &rest[at + "--from".len()..];
            let start = trimmed.len() - after.len();
            let value: String = trimmed[start..]
                .trim_start_matches([' ', '='])
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '\'' && *c != ',')
                .collect();
            if !base_allowed(&value, &stages, rules) && value.parse::<usize>().is_err() {
                err(
                    line,
                    format!(
                        "--from={value:?} copies from an image that is neither an earlier stage nor one of the base images: {}",
                        rules.base_images.join(", ")
                    ),
                );
            }
            rest = after;
        }
        let mut words = trimmed.split_whitespace();
        if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
            continue;
        }
        froms += 1;
        let words: Vec<&str> = words.filter(|w| !w.starts_with("--")).collect();
        let Some(image) = words.first() else {
            err(line, "FROM names no image".to_owned());
            continue;
        };
        if image.contains('$') {
            err(line, "FROM must name its image, not a variable".to_owned());
        } else if !base_allowed(image, &stages, rules) {
            err(
                line,
                format!(
                    "FROM {image}: a datalab builds on one of the base images ({}) or an earlier stage",
                    rules.base_images.join(", ")
                ),
            );
        }
        match (words.get(1), words.get(2)) {
            (Some(a), Some(stage)) if a.eq_ignore_ascii_case("AS") => {
                stages.push(stage.to_ascii_lowercase());
            }
            (None, None) => {}
            _ => err(
                line,
                "FROM takes an image and, optionally, AS <stage>".to_owned(),
            ),
        }
    }
    if froms == 0 {
        err(1, "the Containerfile names no base image (FROM)".to_owned());
    }
    errors
}

fn base_allowed(image: &str, stages: &[String], rules: &BuildRules) -> bool {
    rules.base_images.iter().any(|b| b == image)
        || stages.iter().any(|s| s.eq_ignore_ascii_case(image))
}

/// Checks a requirements list: one requirement per line as pip reads it;
/// options (`-r`, `--index-url`, `-e`) are not requirements.
pub fn check_requirements(text: &str) -> Vec<SourceError> {
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let reason = if line.starts_with('-') {
            Some("options are not requirements: write one package per line, such as astropy>=6")
        } else if !line.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            Some("a requirement starts with a package name")
        } else if line.len() > 200 || line.chars().any(char::is_control) {
            Some("a requirement is one line of at most 200 characters")
        } else {
            None
        };
        if let Some(reason) = reason {
            errors.push(SourceError::Requirements {
                line: i + 1,
                reason: reason.to_owned(),
            });
        }
    }
    errors
}

/// The base images of the templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImages {
    /// Debian with Python 3, venv and pip.
    pub python: String,
    /// The same with the desktop session's programs (Xvnc, websockify,
    /// noVNC, a window manager).
    pub desktop: String,
}

/// What a new draft starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Template {
    /// A web tool of the developer's own (a small Python example to start
    /// from), served on the lab's port with the lab's secret as a bearer
    /// token.
    WebTool,
    /// A desktop program shown in the browser (an X11 program from
    /// Debian's packages in the desktop base image).
    DesktopTool,
    /// A Python requirements list, turned into JupyterLab with those
    /// packages.
    Python,
}

impl Template {
    pub const ALL: [Template; 3] = [Template::WebTool, Template::DesktopTool, Template::Python];

    pub fn as_str(self) -> &'static str {
        match self {
            Template::WebTool => "web-tool",
            Template::DesktopTool => "desktop-tool",
            Template::Python => "python",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Template::WebTool => "Web tool (Containerfile)",
            Template::DesktopTool => "Desktop tool (Containerfile)",
            Template::Python => "JupyterLab from a Python requirements list",
        }
    }

    /// The definition a draft of this template starts with.
    pub fn definition(self, title: &str, author: &str) -> DevlabDefinition {
        let base = DevlabDefinition {
            title: title.to_owned(),
            description: String::new(),
            version: "0.1.0".to_owned(),
            author: author.to_owned(),
            license: "BSD-3-Clause".to_owned(),
            kind: DatalabKind::Web,
            command: Vec::new(),
            readiness_path: "/".to_owned(),
            credential: "bearer".to_owned(),
            env: BTreeMap::new(),
            cpu: 1.0,
            memory: "1GiB".to_owned(),
            domain: Vec::new(),
            mission: Vec::new(),
            properties: vec!["analysis_tool".to_owned()],
        };
        match self {
            Template::WebTool => DevlabDefinition {
                command: ["python3", "/opt/tool/app.py", "{port}", "{base_url}"]
                    .map(str::to_owned)
                    .to_vec(),
                ..base
            },
            Template::DesktopTool => DevlabDefinition {
                kind: DatalabKind::Desktop,
                command: vec!["xclock".to_owned()],
                credential: "basic".to_owned(),
                properties: vec!["visualisation_tool".to_owned()],
                ..base
            },
            Template::Python => DevlabDefinition {
                command: [
                    "jupyter-lab",
                    "--no-browser",
                    "--ip=127.0.0.1",
                    "--port={port}",
                    "--ServerApp.port_retries=0",
                    "--ServerApp.base_url={base_url}",
                    "--ServerApp.root_dir={workspace}",
                    "--ServerApp.allow_remote_access=True",
                ]
                .map(str::to_owned)
                .to_vec(),
                readiness_path: "/api/status".to_owned(),
                credential: "jupyter-token".to_owned(),
                env: BTreeMap::from([
                    ("JUPYTER_TOKEN".to_owned(), "{secret}".to_owned()),
                    (
                        "JUPYTER_CONFIG_DIR".to_owned(),
                        "{workspace}/.jupyter".to_owned(),
                    ),
                ]),
                memory: "2GiB".to_owned(),
                properties: vec!["analysis_tool".to_owned(), "development_tool".to_owned()],
                ..base
            },
        }
    }

    /// The source a draft of this template starts with.
    pub fn source(self, bases: &BaseImages) -> DevlabSource {
        match self {
            Template::WebTool => DevlabSource {
                containerfile: format!(
                    "{WEB_TOOL_HEADER}FROM {}\nCOPY app.py /opt/tool/app.py\n",
                    bases.python
                ),
                files: BTreeMap::from([("app.py".to_owned(), WEB_TOOL_APP.to_owned())]),
            },
            Template::DesktopTool => DevlabSource {
                containerfile: format!(
                    "{DESKTOP_TOOL_HEADER}FROM {}\nRUN apt-get update && \\\n    apt-get install -y --no-install-recommends x11-apps && \\\n    rm -rf /var/lib/apt/lists/*\n",
                    bases.desktop
                ),
                files: BTreeMap::new(),
            },
            Template::Python => {
                let requirements = "# One package per line, as pip reads them.\nnumpy\n";
                DevlabSource {
                    containerfile: requirements_containerfile(&bases.python),
                    files: BTreeMap::from([(REQUIREMENTS.to_owned(), requirements.to_owned())]),
                }
            }
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Template {
    type Err = String;
    fn from_str(s: &str) -> Result<Template, String> {
        Template::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "{s:?} is not a template: {}",
                    Template::ALL.map(Template::as_str).join(", ")
                )
            })
    }
}

/// The Containerfile that turns `requirements.txt` into JupyterLab with
/// those packages, in a virtualenv of the Python base image.
pub fn requirements_containerfile(python_base: &str) -> String {
    format!(
        "# Made from requirements.txt: JupyterLab with the packages it lists,\n\
         # installed from PyPI when the datalab is built.\n\
         FROM {python_base}\n\
         COPY requirements.txt /opt/insitu/requirements.txt\n\
         RUN python3 -m venv /opt/venv && \\\n    \
         /opt/venv/bin/pip install --no-cache-dir jupyterlab -r /opt/insitu/requirements.txt\n\
         ENV PATH=/opt/venv/bin:$PATH\n"
    )
}

const WEB_TOOL_HEADER: &str = "\
# A web tool for Insitu. A lab runs the definition's command in this image
# as an unprivileged user without capabilities, with the user's workspace
# at /home/user (the only place it can write) and data volumes read-only
# under /media/data. The tool serves HTTP on 127.0.0.1:{port} below
# {base_url}, and answers only requests that carry
# \"Authorization: Bearer $INSITU_LAB_SECRET\" (the lab proxy adds it).
# Install what your tool needs below; the build reaches PyPI and Debian.
";

const DESKTOP_TOOL_HEADER: &str = "\
# A desktop tool for Insitu: the lab shows the definition's command (an X11
# program) in the browser. The base image holds the desktop session (a
# VNC server, websockify and noVNC); install your program below, from
# Debian's packages or PyPI.
";

/// The web tool template's example program.
pub const WEB_TOOL_APP: &str = r#""""An example web tool: a page listing the data volumes and the workspace."""
import html
import http.server
import os
import sys

port, base_url = int(sys.argv[1]), sys.argv[2]
secret = os.environ.get("INSITU_LAB_SECRET", "")


def listing(path):
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


class Tool(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        # Only the lab proxy holds the lab's secret.
        if self.headers.get("Authorization") != f"Bearer {secret}":
            self.send_error(401)
            return
        if not self.path.startswith(base_url):
            self.send_error(404)
            return
        items = "".join(f"<li>{html.escape(v)}</li>" for v in listing("/media/data"))
        files = "".join(f"<li>{html.escape(f)}</li>" for f in listing("/home/user"))
        body = (
            "<!doctype html><meta charset=utf-8><title>My datalab</title>"
            "<h1>Hello from my datalab</h1>"
            f"<h2>Data volumes</h2><ul>{items}</ul>"
            f"<h2>Workspace</h2><ul>{files}</ul>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


print(f"listening on 127.0.0.1:{port}", flush=True)
http.server.ThreadingHTTPServer(("127.0.0.1", port), Tool).serve_forever()
"#;

/// Where a build is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BuildState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl BuildState {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildState::Queued => "queued",
            BuildState::Running => "running",
            BuildState::Succeeded => "succeeded",
            BuildState::Failed => "failed",
        }
    }

    /// Whether the build has not ended yet.
    pub fn is_active(self) -> bool {
        matches!(self, BuildState::Queued | BuildState::Running)
    }
}

impl fmt::Display for BuildState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BuildState {
    type Err = String;
    fn from_str(s: &str) -> Result<BuildState, String> {
        [
            BuildState::Queued,
            BuildState::Running,
            BuildState::Succeeded,
            BuildState::Failed,
        ]
        .into_iter()
        .find(|b| b.as_str() == s)
        .ok_or_else(|| format!("{s:?} is not a build state"))
    }
}

/// Where a build submitted for publication is: waiting for a moderator,
/// published, or refused with a reason its developer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseState {
    Submitted,
    Approved,
    Rejected,
}

impl ReleaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseState::Submitted => "submitted",
            ReleaseState::Approved => "approved",
            ReleaseState::Rejected => "rejected",
        }
    }
}

impl fmt::Display for ReleaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReleaseState {
    type Err = String;
    fn from_str(s: &str) -> Result<ReleaseState, String> {
        [
            ReleaseState::Submitted,
            ReleaseState::Approved,
            ReleaseState::Rejected,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| format!("{s:?} is not a publication state"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> BuildRules {
        BuildRules {
            base_images: vec!["localhost/insitu/python:3".to_owned()],
        }
    }

    fn bases() -> BaseImages {
        BaseImages {
            python: "localhost/insitu/python:3".to_owned(),
            desktop: "localhost/insitu/desktop:1".to_owned(),
        }
    }

    fn reasons(text: &str) -> Vec<String> {
        check_containerfile(text, &rules())
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn every_template_is_a_valid_datalab_with_a_valid_source() {
        let mut r = rules();
        r.base_images.push(bases().desktop);
        let name: Name = "my-tool".parse().unwrap();
        for t in Template::ALL {
            let spec = t
                .definition("My tool", "Ada")
                .spec(&name, Some("localhost/insitu-devlab/my-tool:0.1.0-0"))
                .unwrap();
            assert!(spec.launch.credential.requires_secret(), "{t}");
            assert_eq!(t.source(&bases()).check(&r), Vec::new(), "{t}");
            assert_eq!(t.as_str().parse::<Template>(), Ok(t));
        }
    }

    #[test]
    fn a_containerfile_builds_only_on_the_base_images() {
        assert!(reasons("FROM localhost/insitu/python:3\nRUN true\n").is_empty());
        assert!(
            reasons("FROM localhost/insitu/python:3 AS build\nRUN true\nFROM build\nCOPY --from=build /a /b\nCOPY --from=0 /a /c\n")
                .is_empty()
        );
        for bad in [
            "FROM localhost/insitu-devlab/someone-else:1.0-0\n",
            "from docker.io/library/debian:stable-slim\n",
            "ARG IMG=localhost/insitu/python:3\nFROM $IMG\n",
            "FROM localhost/insitu/python:3\nCOPY --from=localhost/insitu-devlab/secret:1-0 /x /x\n",
            "FROM localhost/insitu/python:3\nCOPY --from localhost/insitu-devlab/secret:1-0 /x /x\n",
            "FROM localhost/insitu/python:3\nRUN echo \\\nFROM localhost/insitu-devlab/other:1-0\n",
            "FROM localhost/insitu/python:3\nRUN --mount=type=cache,target=/root/.cache true\n",
            "FROM localhost/insitu/python:3\nRUN --MOUNT=type=bind,source=/,target=/h true\n",
            "# escape=`\nFROM localhost/insitu/python:3\n",
            "#syntax = docker/dockerfile:1\nFROM localhost/insitu/python:3\n",
            "RUN true\n",
            "",
            "FROM localhost/insitu/python:3 AS\n",
        ] {
            assert!(!reasons(bad).is_empty(), "accepted: {bad:?}");
        }
        let r = reasons("FROM localhost/insitu/python:3\nRUN --mount=type=cache,target=/c true\n");
        assert!(
            r[0].starts_with("Containerfile line 2: RUN --mount"),
            "{r:?}"
        );
    }

    #[test]
    fn sources_are_small_text_files_with_plain_names() {
        let mut s = Template::WebTool.source(&bases());
        s.files.insert("../escape".to_owned(), "x".to_owned());
        s.files.insert("Dockerfile".to_owned(), "x".to_owned());
        s.files.insert("bin".to_owned(), "a\0b".to_owned());
        let errors = s.check(&rules());
        assert!(errors.contains(&SourceError::FileName("../escape".to_owned())));
        assert!(errors.contains(&SourceError::FileName("Dockerfile".to_owned())));
        assert!(errors.contains(&SourceError::NotText("bin".to_owned())));
        let big = DevlabSource {
            containerfile: format!(
                "FROM localhost/insitu/python:3\n#{}\n",
                "x".repeat(MAX_SOURCE_BYTES)
            ),
            files: BTreeMap::new(),
        };
        assert!(matches!(
            big.check(&rules())[0],
            SourceError::TooLarge { .. }
        ));
    }

    #[test]
    fn requirements_are_packages_not_options() {
        assert!(
            check_requirements("astropy>=6\n# comment\n\nnumpy==2.1 ; python_version>'3'\n")
                .is_empty()
        );
        let e = check_requirements("numpy\n--index-url http://evil\n-r /etc/passwd\n");
        assert_eq!(e.len(), 2);
        assert!(e[0].to_string().starts_with("requirements.txt line 2"));
    }

    #[test]
    fn a_definition_is_checked_with_the_catalogue_rules_and_the_developer_rules() {
        let name: Name = "t".parse().unwrap();
        let mut d = Template::WebTool.definition("T", "Ada");
        d.license = "GPL-2.0+".to_owned();
        d.version = "1.0 beta".to_owned();
        d.credential = "magic".to_owned();
        d.memory = "lots".to_owned();
        let fields: Vec<String> = d
            .spec(&name, None)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        for f in [
            "license",
            "version",
            "launch.credential",
            "resources.memory",
        ] {
            assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
        }
        assert_eq!(build_version("1.4.0", 3), "1.4.0-3");
        assert!(check_version("-1").is_err() && check_version("1.4.0-rc1").is_ok());
    }
}
