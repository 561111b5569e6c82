//! Pages of user-developed datalabs: "Developed by me", a datalab's
//! development page (metadata, source, builds with their live log,
//! testing, visibility, publication, export and import), a build's page,
//! and the moderators' queue. Thin adapters over `insitu_core::devlabs`,
//! like the API beside them.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use insitu_core::Principal;
use insitu_core::devlabs::{Audience, NewDevlab};
use insitu_domain::devlab::Template;
use insitu_domain::{DatalabKind, DevlabDefinition, DevlabSource, Property};
use minijinja::context;
use serde::Deserialize;

use super::{Banner, error_banner, outcome, page, see_other, segment, ser, with_banner};
use crate::error::{PageBody, PageForm, PagePath};
use crate::error_page::failure_page;
use crate::redirect::safe_target;
use crate::state::AppState;
use crate::wire;

/// The most of a build's log a page shows at once.
const PAGE_LOG_BYTES: u64 = 2 << 20;

fn templates() -> Vec<minijinja::Value> {
    Template::ALL
        .iter()
        .map(|t| context! { name => t.as_str(), title => t.title() })
        .collect()
}

pub async fn mine(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    banner: Banner,
) -> Response {
    let views = match s.platform.devlabs().mine(&p).await {
        Ok(v) => v,
        Err(e) => return failure_page(e),
    };
    let items: Vec<_> = views.iter().map(wire::devlab).collect();
    page(
        &s,
        "devlabs.html",
        Some(&p),
        "devlabs",
        &banner,
        context! { items => ser(&items), templates => templates() },
    )
}

#[derive(Deserialize)]
pub struct CreateForm {
    name: String,
    template: String,
    #[serde(default)]
    title: String,
}

pub async fn create(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PageForm(f): PageForm<CreateForm>,
) -> Response {
    let new = NewDevlab {
        name: f.name.trim().to_owned(),
        template: f.template,
        title: Some(f.title),
        author: None,
    };
    match s
        .platform
        .devlabs()
        .create(s.platform.datalabs(), &p, new)
        .await
    {
        Ok(d) => with_banner(
            &format!("/devlabs/{}", d.name),
            "notice",
            "Draft created from the template: edit it, then build it.",
        ),
        Err(e) => error_banner("/devlabs", e),
    }
}

/// The log of a build, as much as a page shows, and the byte offset it
/// ends at (where the page's script follows it from).
async fn log_to_now(s: &AppState, p: &Principal, name: &str, number: i64) -> (String, u64) {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < PAGE_LOG_BYTES {
        match s.platform.devlabs().log(p, name, number, offset).await {
            Ok(c) if !c.bytes.is_empty() => {
                offset = c.next;
                out.extend(c.bytes);
            }
            _ => break,
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), offset)
}

async fn whole_log(s: &AppState, p: &Principal, name: &str, number: i64) -> String {
    log_to_now(s, p, name, number).await.0
}

pub async fn one(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(name): PagePath<String>,
    banner: Banner,
) -> Response {
    let view = match s.platform.devlabs().own(&p, &name).await {
        Ok(v) => v,
        Err(e) => return failure_page(e),
    };
    let d = wire::devlab(&view);
    let latest = d.builds.first().cloned();
    let latest_log = match &latest {
        Some(b) => whole_log(&s, &p, &name, b.number).await,
        None => String::new(),
    };
    let volumes = s.platform.volumes();
    let my_volumes: Vec<_> = volumes
        .mine(&p.user_id)
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|n| volumes.get(n))
        .map(|v| wire::volume(v, true))
        .collect();
    let licenses: Vec<_> = s
        .platform
        .devlabs()
        .licenses()
        .iter()
        .map(|&(id, title)| context! { id, title })
        .collect();
    let properties: Vec<_> = Property::ALL
        .iter()
        .map(|p| context! { value => p.as_str(), label => p.label() })
        .collect();
    let def = &d.definition;
    let form = context! {
        command => def.command.join("\n"),
        env => def.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n"),
        domain => def.domain.join(", "),
        mission => def.mission.join(", "),
        users => d.shared_with.join(", "),
    };
    page(
        &s,
        "devlab.html",
        Some(&p),
        "devlabs",
        &banner,
        context! {
            d => ser(&d),
            latest => ser(&latest),
            latest_log,
            my_volumes => ser(&my_volumes),
            licenses,
            properties,
            form,
            credentials => ["bearer", "basic", "jupyter-token", "none"],
        },
    )
}

/// The comma- or line-separated values of a form field.
fn list(text: &str) -> Vec<String> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The development page's form, read field by field (repeated properties
/// and file pairs keep their order).
fn read_draft(body: &[u8]) -> Result<(DevlabDefinition, DevlabSource), String> {
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let (mut properties, mut names, mut bodies) = (Vec::new(), Vec::new(), Vec::new());
    for (k, v) in form_urlencoded::parse(body) {
        match k.as_ref() {
            "property" => properties.push(v.into_owned()),
            "file_name" => names.push(v.into_owned()),
            "file_body" => bodies.push(v.into_owned()),
            _ => {
                fields.insert(k.into_owned(), v.into_owned());
            }
        }
    }
    let field = |k: &str| fields.get(k).cloned().unwrap_or_default();
    let kind = match field("kind").as_str() {
        "desktop" => DatalabKind::Desktop,
        "web" | "" => DatalabKind::Web,
        other => return Err(format!("kind {other:?} is neither web nor desktop")),
    };
    let cpu = field("cpu")
        .trim()
        .parse::<f64>()
        .map_err(|_| "CPU must be a number of cores".to_owned())?;
    let mut env = BTreeMap::new();
    for line in field("env")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("environment line {line:?} is not NAME=value"))?;
        env.insert(k.trim().to_owned(), v.to_owned());
    }
    let definition = DevlabDefinition {
        title: field("title"),
        description: field("description"),
        version: field("version").trim().to_owned(),
        author: field("author"),
        license: field("license"),
        kind,
        command: field("command")
            .lines()
            .map(|l| l.trim_end_matches('\r').to_owned())
            .filter(|l| !l.is_empty())
            .collect(),
        readiness_path: field("readiness_path").trim().to_owned(),
        credential: field("credential"),
        env,
        cpu,
        memory: field("memory").trim().to_owned(),
        domain: list(&field("domain")),
        mission: list(&field("mission")),
        properties,
    };
    let mut files = BTreeMap::new();
    for (name, text) in names.into_iter().zip(bodies) {
        let name = name.trim().to_owned();
        if name.is_empty() {
            continue;
        }
        files.insert(name, text.replace("\r\n", "\n"));
    }
    let source = DevlabSource {
        containerfile: field("containerfile").replace("\r\n", "\n"),
        files,
    };
    Ok((definition, source))
}

pub async fn save(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(name): PagePath<String>,
    PageBody(body): PageBody,
) -> Response {
    let back = format!("/devlabs/{}", segment(&name));
    let (definition, source) = match read_draft(&body) {
        Ok(d) => d,
        Err(why) => return with_banner(&back, "error", &why),
    };
    let r = s
        .platform
        .devlabs()
        .update(&p, &name, definition, source)
        .await
        .map(|_| "Draft saved.".to_owned());
    outcome(&back, r)
}

pub async fn build(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(name): PagePath<String>,
) -> Response {
    match s
        .platform
        .devlabs()
        .start_build(s.platform.datalabs(), &p, &name)
        .await
    {
        Ok(b) => see_other(&format!("/devlabs/{}/builds/{}", b.devlab, b.number)),
        Err(e) => error_banner(&format!("/devlabs/{}", segment(&name)), e),
    }
}

pub async fn build_page(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath((name, number)): PagePath<(String, String)>,
    banner: Banner,
) -> Response {
    let number = match crate::api::devlabs::build_number(&name, &number) {
        Ok(n) => n,
        Err(e) => return failure_page(e),
    };
    let view = match s.platform.devlabs().own(&p, &name).await {
        Ok(v) => v,
        Err(e) => return failure_page(e),
    };
    let Some(b) = view.builds.iter().find(|b| b.number == number) else {
        return failure_page(insitu_core::Error::BuildNotFound {
            datalab: name,
            number,
        });
    };
    let build = wire::build(b, view.release_of(number));
    let (log, log_end) = log_to_now(&s, &p, &name, number).await;
    // A running build's log is followed live by the page's script.
    let follow = b.state.is_active().then(|| {
        format!(
            "/api/v1/devlabs/{}/builds/{number}/log?offset={log_end}&follow=true",
            segment(&name)
        )
    });
    page(
        &s,
        "devlab_build.html",
        Some(&p),
        "devlabs",
        &banner,
        context! { b => ser(&build), log, running => b.state.is_active(), follow, name },
    )
}

#[derive(Deserialize)]
pub struct AudienceForm {
    visibility: String,
    #[serde(default)]
    users: String,
}

pub async fn audience(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(name): PagePath<String>,
    PageForm(f): PageForm<AudienceForm>,
) -> Response {
    let audience = Audience {
        public: f.visibility == "public",
        users: list(&f.users.replace(' ', ",")),
    };
    let r = s
        .platform
        .devlabs()
        .set_audience(s.platform.datalabs(), &p, &name, audience)
        .await
        .map(|d| {
            if d.public {
                "Visibility: public. Published versions are in everyone's catalogue.".to_owned()
            } else {
                format!(
                    "Visibility: private, shared with {}.",
                    if d.shared_with.is_empty() {
                        "nobody".to_owned()
                    } else {
                        d.shared_with
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                )
            }
        });
    outcome(&format!("/devlabs/{}", segment(&name)), r)
}

#[derive(Deserialize)]
pub struct SubmitForm {
    build: String,
}

pub async fn submit(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(name): PagePath<String>,
    PageForm(f): PageForm<SubmitForm>,
) -> Response {
    let back = format!("/devlabs/{}", segment(&name));
    let submitted = async {
        let number = crate::api::devlabs::build_number(&name, f.build.trim())?;
        s.platform.devlabs().submit(&p, &name, number).await
    };
    let r = submitted.await.map(|r| {
        format!(
            "Build {} submitted: a moderator reviews it.",
            insitu_domain::devlab::build_version(&r.version, r.number)
        )
    });
    outcome(&back, r)
}

pub async fn remove(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(name): PagePath<String>,
) -> Response {
    match s
        .platform
        .devlabs()
        .delete(s.platform.datalabs(), &p, &name)
        .await
    {
        Ok(()) => with_banner("/devlabs", "notice", &format!("{name} deleted.")),
        Err(e) => error_banner(&format!("/devlabs/{}", segment(&name)), e),
    }
}

pub async fn queue(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    banner: Banner,
) -> Response {
    let q = match s.platform.devlabs().queue().await {
        Ok(q) => q,
        Err(e) => return failure_page(e),
    };
    let items: Vec<_> = q.iter().map(wire::submission).collect();
    page(
        &s,
        "moderation.html",
        Some(&p),
        "moderation",
        &banner,
        context! { items => ser(&items) },
    )
}

pub async fn approve(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath((name, number)): PagePath<(String, String)>,
) -> Response {
    let decided = async {
        let number = crate::api::devlabs::build_number(&name, &number)?;
        s.platform
            .devlabs()
            .decide(s.platform.datalabs(), &p, &name, number, true, None)
            .await
    };
    let r = decided
        .await
        .map(|r| format!("{} {} published.", r.devlab, r.version));
    outcome("/moderation", r)
}

#[derive(Deserialize)]
pub struct RejectForm {
    #[serde(default)]
    reason: String,
}

pub async fn reject(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath((name, number)): PagePath<(String, String)>,
    PageForm(f): PageForm<RejectForm>,
) -> Response {
    let decided = async {
        let number = crate::api::devlabs::build_number(&name, &number)?;
        s.platform
            .devlabs()
            .decide(
                s.platform.datalabs(),
                &p,
                &name,
                number,
                false,
                Some(f.reason),
            )
            .await
    };
    let r = decided
        .await
        .map(|r| format!("{} {} rejected.", r.devlab, r.version));
    outcome("/moderation", r)
}

#[derive(Deserialize)]
pub struct StarForm {
    #[serde(default)]
    on: String,
    #[serde(default)]
    back: String,
}

pub async fn star(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    PagePath(name): PagePath<String>,
    PageForm(f): PageForm<StarForm>,
) -> Response {
    let on = f.on != "false";
    let target = safe_target(Some(&f.back), &format!("/datalabs/{}", segment(&name)));
    let r = s
        .platform
        .devlabs()
        .star(s.platform.datalabs(), &p, &name, on)
        .await
        .map(|()| if on { "Starred." } else { "Star taken back." }.to_owned());
    outcome(&target, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_development_form_reads_back_as_a_definition_and_a_source() {
        let body = "title=My+tool&version=1.0&author=Ada&license=MIT&kind=web&\
            command=python3%0D%0A%2Fopt%2Fapp.py%0D%0A%7Bport%7D&readiness_path=%2F&credential=bearer&\
            env=A%3Db%3Dc&cpu=0.5&memory=1GiB&domain=astronomy%2C+helio&property=query_tool&\
            property=analysis_tool&containerfile=FROM+x%0D%0A&file_name=app.py&file_body=print()&\
            file_name=&file_body=";
        let (d, s) = read_draft(body.as_bytes()).unwrap();
        assert_eq!(d.command, ["python3", "/opt/app.py", "{port}"]);
        assert_eq!(d.env["A"], "b=c");
        assert_eq!(d.domain, ["astronomy", "helio"]);
        assert_eq!(d.properties, ["query_tool", "analysis_tool"]);
        assert_eq!(s.containerfile, "FROM x\n");
        assert_eq!(s.files.len(), 1);
        assert!(read_draft(b"cpu=lots").is_err());
        assert!(read_draft(b"cpu=1&env=no-equals").is_err());
    }
}
