//! Command-line parsing and the commands themselves.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use insitu_api::{
    AccessRequest, Build, Datalab, DatalabList, Devlab, DevlabTemplate, HarvestStatus, Lab,
    LabLogs, LabOpen, LabSharing, List, Me, OperatorLab, OperatorStopRequest, Release,
    SearchResponse, Team, TokenCreated, Volume, VolumeList, Zone, ZoneList,
};
use insitu_domain::BuildState;
use reqwest::Method;
use serde::Serialize;

use crate::client::{self, Client, ClientError, Credentials, exit};

#[derive(Parser)]
#[command(
    name = "insitu",
    version,
    about = "Insitu: bring your questions to the data"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the platform.
    Serve {
        /// TOML configuration file (see `insitu config example`).
        #[arg(long, env = "INSITU_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run the platform on its embedded default with demo data volumes.
    Demo {
        #[arg(long, env = "INSITU_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Log in to a platform and keep an API token for the other commands.
    Login {
        /// The platform's URL, e.g. http://127.0.0.1:8080
        url: String,
        #[arg(long, short)]
        username: Option<String>,
        /// Read the password from standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
        /// Name of the token, to tell it apart in the account page.
        #[arg(long)]
        token_name: Option<String>,
    },
    /// Revoke the stored token and forget it.
    Logout,
    /// Show who the stored token belongs to.
    Whoami {
        #[arg(long)]
        json: bool,
    },
    /// The datalab catalogue.
    #[command(subcommand)]
    Datalabs(DatalabsCommand),
    /// Data volumes and "my volumes".
    #[command(subcommand)]
    Volumes(VolumesCommand),
    /// Labs: launch datalabs, follow, stop, read logs.
    #[command(subcommand)]
    Labs(LabsCommand),
    /// Search datalabs, data volumes and datasets at once (the discovery
    /// portal): `insitu search "m31 OR andromeda" --facet mission=Gaia`,
    /// `insitu search --cone 10.68 41.27 0.5`.
    Search(SearchArgs),
    /// Harvest the data volumes into the discovery index now, or show how
    /// the harvest goes (administrators).
    Harvest {
        /// Only show the progress; start nothing.
        #[arg(long)]
        status: bool,
        /// Wait until the harvest finishes, showing its progress.
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// Teams and their workspaces: create, invite, accept, leave, remove.
    #[command(subcommand)]
    Teams(TeamsCommand),
    /// Your workspace and your teams': use and quotas (warned from 80 %);
    /// administrators set quotas.
    #[command(subcommand)]
    Workspace(crate::cli_workspace::WorkspaceCommand),
    /// Your quotas (workspaces, labs, CPU, memory, GPUs); administrators
    /// set a user's or a team's.
    #[command(subcommand)]
    Quota(crate::cli_workspace::QuotaCommand),
    /// Access requests (moderators): the waiting list, approve, deny.
    #[command(subcommand)]
    Access(AccessCommand),
    /// The datazones: where labs and runs execute, the volumes each holds,
    /// and its CPU, memory and GPUs free of all.
    Zones {
        #[arg(long)]
        json: bool,
    },
    /// The pipeline catalogue: list, show, validate and push CWL pipelines.
    #[command(subcommand)]
    Pipelines(crate::cli_pipelines::PipelinesCommand),
    /// Pipeline runs: submit, follow, read logs, cancel, resume, download.
    #[command(subcommand)]
    Runs(crate::cli_pipelines::RunsCommand),
    /// Datalabs you develop: drafts from templates, builds and their logs,
    /// submission for publication.
    #[command(subcommand)]
    Devlabs(DevlabsCommand),
    /// Configuration help.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the table of API error codes (Markdown).
    Errors,
    /// Run and validate CWL pipelines: `insitu cwl run [--outdir DIR]
    /// [--quiet] [--parallel N] [--provenance DIR] tool.cwl[#id] [job]`,
    /// `insitu cwl validate FILE` (the cwl-runner convention).
    #[command(disable_help_flag = true)]
    Cwl {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Subcommand)]
enum DatalabsCommand {
    /// Search the catalogue.
    List {
        #[command(flatten)]
        filter: DatalabFilter,
        #[arg(long)]
        json: bool,
    },
    /// Show one datalab.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct DatalabFilter {
    /// Free text; every word must match.
    #[arg(long, short)]
    query: Option<String>,
    /// web or desktop (repeatable).
    #[arg(long)]
    kind: Vec<String>,
    #[arg(long)]
    domain: Vec<String>,
    #[arg(long)]
    mission: Vec<String>,
    /// analysis_tool, visualisation_tool, query_tool, development_tool.
    #[arg(long)]
    property: Vec<String>,
}

#[derive(Args)]
struct SearchArgs {
    /// Free text (tantivy's query language: every word must match, OR,
    /// "quoted phrases", mission:gaia).
    query: Option<String>,
    /// A facet value to narrow by, name=value (repeatable): type, property,
    /// domain, mission, instrument, filter, year, volume.
    #[arg(long)]
    facet: Vec<String>,
    /// A cone: RA, Dec and radius in degrees (ICRS).
    #[arg(long, num_args = 3, value_names = ["RA", "DEC", "RADIUS"], allow_negative_numbers = true)]
    cone: Option<Vec<String>>,
    /// Observed on or after this day (YYYY-MM-DD).
    #[arg(long)]
    from: Option<String>,
    /// Observed on or before this day (YYYY-MM-DD).
    #[arg(long)]
    to: Option<String>,
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Print the facet counts too.
    #[arg(long)]
    counts: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum VolumesCommand {
    /// Search the volume catalogue.
    List {
        /// Only my volumes.
        #[arg(long)]
        mine: bool,
        #[arg(long, short)]
        query: Option<String>,
        #[arg(long)]
        domain: Vec<String>,
        #[arg(long)]
        mission: Vec<String>,
        #[arg(long)]
        instrument: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one volume.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Add a volume to my volumes.
    Add { name: String },
    /// Remove a volume from my volumes.
    Remove { name: String },
}

#[derive(Subcommand)]
enum AccessCommand {
    /// Access requests in the order of application, waiting ones with
    /// their place in the waiting list.
    Ls {
        /// waiting, approved, denied or all.
        #[arg(long, default_value = "waiting")]
        state: String,
        #[arg(long)]
        json: bool,
    },
    /// Approve a waiting request: its account is made, unless the
    /// admission cap is reached; the applicant sets the password through
    /// their status link.
    Approve {
        id: String,
        /// A message the applicant reads on their status page.
        #[arg(long, default_value = "")]
        message: String,
    },
    /// Deny a waiting request with a message the applicant reads.
    Deny {
        id: String,
        #[arg(long)]
        message: String,
    },
}

#[derive(Subcommand)]
enum TeamsCommand {
    /// My teams and invitations.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Create a team; I become its owner.
    Create { name: String },
    /// Show a team and its members.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Invite a user into a team (owners).
    Invite {
        team: String,
        username: String,
        /// Invite them as an owner.
        #[arg(long)]
        owner: bool,
    },
    /// Accept my invitation into a team.
    Accept { team: String },
    /// Leave a team, or decline an invitation.
    Leave { team: String },
    /// Remove a member from a team, or withdraw an invitation (owners).
    Remove { team: String, username: String },
    /// Rename a team (owners).
    Rename { team: String, new_name: String },
    /// Delete a team (owners): members and lab shares end; its workspace
    /// is kept aside for an administrator.
    Delete { team: String },
    /// Make a member an owner or a plain member (owners).
    Role {
        team: String,
        username: String,
        /// owner or member.
        role: insitu_domain::TeamRole,
    },
}

#[derive(Subcommand)]
enum LabsCommand {
    /// Launch a datalab.
    Launch {
        datalab: String,
        /// Data volume to mount read-only (repeatable).
        #[arg(long = "volume")]
        volumes: Vec<String>,
        /// A file to open, as the lab sees it: inside the mount path of a
        /// volume given with --volume (e.g. /media/data/deep-fields/x.fits);
        /// for datalabs that open files.
        #[arg(long)]
        file: Option<String>,
        /// The datazone to run in (see `insitu zones`); default: the one
        /// holding the volumes, or local.
        #[arg(long)]
        zone: Option<String>,
        /// Wait until the lab runs (or fails), showing each step.
        #[arg(long)]
        wait: bool,
        /// Wait, then print the link that opens the lab and hand it to the
        /// desktop's browser (xdg-open) when there is one.
        #[arg(long)]
        open: bool,
        #[arg(long)]
        json: bool,
    },
    /// List my labs.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Stop a lab (the workspace stays). Administrators stop any user's lab
    /// with --reason, which its user reads.
    Stop {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Every user's active labs with owner, age, idle time, memory and CPU
    /// (administrators).
    All {
        #[arg(long)]
        json: bool,
    },
    /// Show the last lines the lab's tool wrote.
    Logs { id: String },
    /// Print a single-use link that opens a running lab (mine, or one
    /// shared with me) on the lab proxy.
    Open { id: String },
    /// Share my running lab with a user: they open it with their own
    /// session, and can do nothing else with it.
    Share { id: String, username: String },
    /// Stop sharing my lab with a user: they are cut off at once.
    Unshare { id: String, username: String },
    /// Share my running lab with a team I am in: its members open it with
    /// their own sessions, for as long as they are members.
    ShareTeam { id: String, team: String },
    /// Stop sharing my lab with a team: its members are cut off at once.
    UnshareTeam { id: String, team: String },
    /// Who my lab is shared with, and who is connected to it.
    Shares {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Labs other users share with me.
    Shared {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DevlabsCommand {
    /// The templates a draft starts from.
    Templates,
    /// My datalabs in development.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Create a draft from a template (web-tool, desktop-tool, python).
    Create {
        name: String,
        #[arg(long, default_value = "web-tool")]
        template: String,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show a draft with its builds and publication.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Build a draft's image; `--follow` prints the log as it comes and
    /// exits non-zero when the build fails.
    Build {
        name: String,
        #[arg(long)]
        follow: bool,
    },
    /// Print a build's log.
    Log { name: String, build: i64 },
    /// Submit a successful build for publication.
    Submit { name: String, build: i64 },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print a commented example configuration.
    Example,
}

pub fn main() -> ExitCode {
    // `insitu cwl …` hands every argument to the CWL engine untouched
    // (cwltest passes cwltool's flags), so it is dispatched before parsing.
    let mut argv = std::env::args_os();
    if argv.nth(1).is_some_and(|a| a == "cwl") {
        return crate::cwl::exec(argv.collect());
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Serve { config } => server_exit(serve(config, false).await),
            Command::Demo { config } => server_exit(serve(config, true).await),
            Command::Config(ConfigCommand::Example) => {
                print!("{}", crate::config::EXAMPLE);
                ExitCode::SUCCESS
            }
            Command::Errors => {
                print!("{}", insitu_api::error::error_table_markdown());
                ExitCode::SUCCESS
            }
            other => match client_command(other).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(e.exit_code())
                }
            },
        }
    })
}

fn server_exit(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("INSITU_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::env::var("INSITU_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

async fn serve(config_file: Option<PathBuf>, demo: bool) -> anyhow::Result<()> {
    init_logging();
    let mut config = crate::config::load(config_file.as_deref(), std::env::vars())?;
    // Labs must not read the file that holds the platform's settings.
    config.config_file = config_file.map(std::fs::canonicalize).transpose()?;
    if demo {
        let root = config.data_dir.join("demo-volumes");
        let volumes = crate::demo::demo_volumes(&root)?;
        tracing::info!(count = volumes.len(), root = %root.display(), "demo data volumes ready");
        config.volumes.extend(volumes);
        config.pipelines.catalogue_dir = std::fs::canonicalize(&config.pipelines.catalogue_dir)
            .unwrap_or(config.pipelines.catalogue_dir);
        // JupyterLab from the virtualenv the run script makes.
        let venv = std::path::Path::new(".venv/bin");
        if venv.join("jupyter-lab").exists() && config.labs.tool_path.is_empty() {
            config.labs.tool_path.push(std::fs::canonicalize(venv)?);
        }
        // Every lab on an origin of its own: browsers resolve any name
        // under .localhost to this machine.
        let proxy = config.proxy.listen;
        if config.proxy.public_url.is_none() && proxy.ip().is_loopback() && proxy.port() != 0 {
            config.proxy.public_url = Some(format!("http://{{lab}}.localhost:{}", proxy.port()));
        }
    }
    // The engine is this program's companion, unless the configuration
    // says otherwise.
    if config.pipelines.engine.is_none() {
        config.pipelines.engine = crate::cwl::find_engine();
    }
    let data_dir = config.data_dir.clone();
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let bound = listener.local_addr()?;
    let url = config.public_url(bound);
    let admin_name = config.admin.username.clone();
    let (app, initial_admin) = insitu_web::App::build(config).await?;
    let password_file = data_dir.join("initial-admin-password");
    println!();
    println!("  Insitu is running: open {url}");
    match &initial_admin {
        Some(admin) => {
            println!(
                "  Log in as {} with password {}",
                admin.username, admin.password
            );
            println!("  (shown once; change it on the Account page)");
            if demo {
                write_private(&password_file, &admin.password)?;
            }
        }
        None if demo && password_file.exists() => {
            println!(
                "  Log in as {admin_name}; the first password is in {}",
                password_file.display()
            );
            println!("  (unless you changed it on the Account page)");
        }
        None => println!("  Log in with your account."),
    }
    println!();
    Ok(app.serve(listener, shutdown_signal()).await?)
}

fn write_private(path: &std::path::Path, secret: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    writeln!(f, "{secret}")?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

async fn client_command(cmd: Command) -> Result<(), ClientError> {
    match cmd {
        Command::Login {
            url,
            username,
            password_stdin,
            token_name,
        } => login(url, username, password_stdin, token_name).await,
        Command::Logout => logout().await,
        Command::Whoami { json } => {
            let c = Client::logged_in()?;
            let me: Me = c.call(Method::GET, "/api/v1/me", None).await?;
            if json {
                print_json(&me)
            } else {
                println!("{} ({}) at {}", me.username, me.role, c.base());
                Ok(())
            }
        }
        Command::Datalabs(DatalabsCommand::List { filter, json }) => {
            let c = Client::logged_in()?;
            let mut q = Vec::new();
            push_query(&mut q, "q", filter.query.iter());
            push_query(&mut q, "kind", filter.kind.iter());
            push_query(&mut q, "domain", filter.domain.iter());
            push_query(&mut q, "mission", filter.mission.iter());
            push_query(&mut q, "property", filter.property.iter());
            let list: DatalabList = c
                .call(Method::GET, &with_query("/api/v1/datalabs", &q), None)
                .await?;
            if json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .items
                .iter()
                .map(|d| {
                    vec![
                        d.name.clone(),
                        d.kind.as_str().to_owned(),
                        d.version.clone(),
                        d.title.clone(),
                    ]
                })
                .collect();
            print_table(&["NAME", "KIND", "VERSION", "TITLE"], &rows);
            Ok(())
        }
        Command::Datalabs(DatalabsCommand::Show { name, json }) => {
            let c = Client::logged_in()?;
            let d: Datalab = c
                .call(
                    Method::GET,
                    &format!("/api/v1/datalabs/{}", seg(&name)),
                    None,
                )
                .await?;
            if json {
                return print_json(&d);
            }
            println!(
                "{} {} ({}) — {}",
                d.name,
                d.version,
                d.kind.as_str(),
                d.title
            );
            println!("licence: {}", d.license);
            println!(
                "resources: {} CPU, {}, {} GPU",
                d.resources.cpu,
                insitu_domain::datalab::format_bytes(d.resources.memory_bytes),
                d.resources.gpu
            );
            if d.opens_files {
                println!("opens files: launch with --volume <v> --file /media/data/<v>/<file>");
            }
            println!("{}", d.description);
            Ok(())
        }
        Command::Volumes(VolumesCommand::List {
            mine,
            query,
            domain,
            mission,
            instrument,
            json,
        }) => {
            let c = Client::logged_in()?;
            let items = if mine {
                c.call::<List<Volume>>(Method::GET, "/api/v1/me/volumes", None)
                    .await?
                    .items
            } else {
                let mut q = Vec::new();
                push_query(&mut q, "q", query.iter());
                push_query(&mut q, "domain", domain.iter());
                push_query(&mut q, "mission", mission.iter());
                push_query(&mut q, "instrument", instrument.iter());
                c.call::<VolumeList>(Method::GET, &with_query("/api/v1/volumes", &q), None)
                    .await?
                    .items
            };
            if json {
                return print_json(&items);
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|v| {
                    vec![
                        v.name.clone(),
                        if v.in_my_volumes { "yes" } else { "" }.to_owned(),
                        v.mount_path.clone(),
                        v.file_count.to_string(),
                        insitu_domain::datalab::format_bytes(v.size_bytes),
                        v.title.clone(),
                    ]
                })
                .collect();
            print_table(
                &["NAME", "MINE", "MOUNT PATH", "FILES", "SIZE", "TITLE"],
                &rows,
            );
            Ok(())
        }
        Command::Volumes(VolumesCommand::Show { name, json }) => {
            let c = Client::logged_in()?;
            let v: Volume = c
                .call(
                    Method::GET,
                    &format!("/api/v1/volumes/{}", seg(&name)),
                    None,
                )
                .await?;
            if json {
                return print_json(&v);
            }
            println!("{} — {}", v.name, v.title);
            println!("mount path: {} (read-only), zone {}", v.mount_path, v.zone);
            println!(
                "{} files, {}",
                v.file_count,
                insitu_domain::datalab::format_bytes(v.size_bytes)
            );
            println!(
                "in my volumes: {}",
                if v.in_my_volumes { "yes" } else { "no" }
            );
            Ok(())
        }
        Command::Volumes(VolumesCommand::Add { name }) => {
            let c = Client::logged_in()?;
            let v: Volume = c
                .call(
                    Method::PUT,
                    &format!("/api/v1/me/volumes/{}", seg(&name)),
                    None,
                )
                .await?;
            println!("added {} ({}) to your volumes", v.name, v.mount_path);
            Ok(())
        }
        Command::Volumes(VolumesCommand::Remove { name }) => {
            let c = Client::logged_in()?;
            c.call_no_body(
                Method::DELETE,
                &format!("/api/v1/me/volumes/{}", seg(&name)),
            )
            .await?;
            println!("removed {name} from your volumes");
            Ok(())
        }
        Command::Labs(cmd) => labs_command(cmd).await,
        Command::Search(args) => search_command(args).await,
        Command::Harvest { status, wait, json } => harvest_command(status, wait, json).await,
        Command::Teams(cmd) => teams_command(cmd).await,
        Command::Workspace(cmd) => {
            crate::cli_workspace::workspace(&Client::logged_in()?, cmd).await
        }
        Command::Quota(cmd) => crate::cli_workspace::quota(&Client::logged_in()?, cmd).await,
        Command::Access(cmd) => access_command(cmd).await,
        Command::Zones { json } => {
            let c = Client::logged_in()?;
            let zones: ZoneList = c.call(Method::GET, "/api/v1/zones", None).await?;
            if json {
                return print_json(&zones.items);
            }
            let rows: Vec<Vec<String>> = zones.items.iter().map(zone_row).collect();
            print_table(
                &[
                    "NAME",
                    "KIND",
                    "VOLUMES",
                    "CPU FREE/ALL",
                    "MEMORY FREE/ALL",
                    "GPUS FREE/ALL",
                ],
                &rows,
            );
            Ok(())
        }
        Command::Pipelines(cmd) => {
            crate::cli_pipelines::pipelines(&Client::logged_in()?, cmd).await
        }
        Command::Runs(cmd) => crate::cli_pipelines::runs(&Client::logged_in()?, cmd).await,
        Command::Devlabs(cmd) => devlabs_command(cmd).await,
        Command::Serve { .. }
        | Command::Demo { .. }
        | Command::Config(_)
        | Command::Errors
        | Command::Cwl { .. } => Ok(()),
    }
}

async fn login(
    url: String,
    username: Option<String>,
    password_stdin: bool,
    token_name: Option<String>,
) -> Result<(), ClientError> {
    let stdin = std::io::stdin();
    let username = match username {
        Some(u) => u,
        None => {
            eprint!("Username: ");
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            stdin
                .lock()
                .read_line(&mut line)
                .map_err(|e| ClientError::Other(e.to_string()))?;
            line.trim().to_owned()
        }
    };
    let password = if password_stdin || !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| ClientError::Other(e.to_string()))?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        rpassword::prompt_password("Password: ").map_err(|e| ClientError::Other(e.to_string()))?
    };
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let token_name = token_name.unwrap_or_else(|| {
        format!(
            "insitu-cli@{}",
            if host.is_empty() { "unknown" } else { &host }
        )
    });
    let c = Client::new(&url, None)?;
    let body =
        serde_json::json!({"username": username, "password": password, "token_name": token_name});
    let created: TokenCreated = c
        .call(Method::POST, "/api/v1/auth/token", Some(&body))
        .await?;
    let path = client::save_credentials(&Credentials {
        url: c.base().to_owned(),
        token: created.token,
    })?;
    println!(
        "logged in to {} as {username}; token {} saved in {}",
        c.base(),
        created.info.prefix,
        path.display()
    );
    Ok(())
}

async fn logout() -> Result<(), ClientError> {
    let path = client::credentials_path()?;
    let creds = client::load_credentials()?;
    let c = Client::new(&creds.url, Some(creds.token.clone()))?;
    let tokens: List<insitu_api::ApiToken> = c.call(Method::GET, "/api/v1/me/tokens", None).await?;
    if let Some(t) = tokens
        .items
        .iter()
        .find(|t| creds.token.starts_with(&t.prefix))
    {
        c.call_no_body(Method::DELETE, &format!("/api/v1/me/tokens/{}", seg(&t.id)))
            .await?;
    }
    match std::fs::remove_file(&path) {
        Ok(()) => println!("logged out; removed {}", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => println!("logged out"),
        Err(e) => {
            return Err(ClientError::Other(format!(
                "removing {}: {e}",
                path.display()
            )));
        }
    }
    Ok(())
}

async fn search_command(a: SearchArgs) -> Result<(), ClientError> {
    let c = Client::logged_in()?;
    let mut q: Vec<(String, String)> = Vec::new();
    push_query(&mut q, "q", a.query.iter());
    for f in &a.facet {
        let Some((name, value)) = f.split_once('=') else {
            return Err(ClientError::Other(format!(
                "--facet {f:?} must be name=value, e.g. --facet mission=Gaia"
            )));
        };
        q.push(("facet".to_owned(), format!("{name}:{value}")));
    }
    if let Some(cone) = &a.cone {
        for (k, v) in ["ra", "dec", "radius"].iter().zip(cone) {
            q.push(((*k).to_owned(), v.clone()));
        }
    }
    push_query(&mut q, "date_from", a.from.iter());
    push_query(&mut q, "date_to", a.to.iter());
    q.push(("limit".to_owned(), a.limit.to_string()));
    let found: SearchResponse = c
        .call(Method::GET, &with_query("/api/v1/search", &q), None)
        .await?;
    if a.json {
        return print_json(&found);
    }
    let rows: Vec<Vec<String>> = found
        .items
        .iter()
        .map(|h| {
            let place = match (h.ra, h.dec) {
                (Some(ra), Some(dec)) => format!("{ra:.4} {dec:+.4}"),
                _ => String::new(),
            };
            vec![
                h.kind.clone(),
                h.volume
                    .as_ref()
                    .map_or_else(|| h.name.clone(), |v| format!("{v}/{}", h.name)),
                h.mission.join(","),
                h.instrument.join(","),
                place,
                h.title.clone(),
            ]
        })
        .collect();
    print_table(
        &["TYPE", "NAME", "MISSION", "INSTRUMENT", "RA DEC", "TITLE"],
        &rows,
    );
    println!("{} of {} shown", found.items.len(), found.total);
    if a.counts {
        for (facet, counts) in &found.facets {
            let list: Vec<String> = counts
                .iter()
                .map(|c| format!("{} ({})", c.value, c.count))
                .collect();
            if !list.is_empty() {
                println!("{facet}: {}", list.join(", "));
            }
        }
    }
    Ok(())
}

async fn harvest_command(status: bool, wait: bool, json: bool) -> Result<(), ClientError> {
    let c = Client::logged_in()?;
    let path = "/api/v1/admin/search/harvest";
    let mut h: HarvestStatus = if status {
        c.call(Method::GET, path, None).await?
    } else {
        c.call(Method::POST, path, None).await?
    };
    while wait && h.running {
        if !json {
            eprintln!(
                "{} seen, {} read, {} indexed, {} problems{}",
                h.files_seen,
                h.files_read,
                h.files_indexed,
                h.problem_count,
                h.volume
                    .as_deref()
                    .map(|v| format!(" ({v})"))
                    .unwrap_or_default()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        h = c.call(Method::GET, path, None).await?;
    }
    if json {
        return print_json(&h);
    }
    println!(
        "{}: {} seen, {} read, {} indexed, {} unchanged, {} removed, {} problems",
        if h.running {
            "harvesting"
        } else {
            "harvest done"
        },
        h.files_seen,
        h.files_read,
        h.files_indexed,
        h.files_unchanged,
        h.files_removed,
        h.problem_count
    );
    for p in &h.problems {
        println!("  {}/{}: {}", p.volume, p.file, p.reason);
    }
    Ok(())
}

/// A path segment, percent-encoded.
fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn push_query<'a>(
    q: &mut Vec<(String, String)>,
    key: &str,
    values: impl Iterator<Item = &'a String>,
) {
    q.extend(values.map(|v| (key.to_owned(), v.clone())));
}

fn with_query(path: &str, q: &[(String, String)]) -> String {
    if q.is_empty() {
        return path.to_owned();
    }
    let pairs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={}", seg(v))).collect();
    format!("{path}?{}", pairs.join("&"))
}

fn print_json<T: Serialize>(v: &T) -> Result<(), ClientError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| ClientError::Other(e.to_string()))?;
    println!("{text}");
    Ok(())
}

pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn print_team(t: &Team) {
    let me = if t.accepted {
        t.role.as_str().to_owned()
    } else {
        format!("invited as {}", t.role)
    };
    println!("{} ({me}), in labs at {}", t.name, t.workspace_path);
    let rows: Vec<Vec<String>> = t
        .members
        .iter()
        .map(|m| {
            vec![
                m.username.clone(),
                m.role.to_string(),
                if m.accepted { "member" } else { "invited" }.to_owned(),
            ]
        })
        .collect();
    print_table(&["USERNAME", "ROLE", "STATE"], &rows);
}

async fn access_command(cmd: AccessCommand) -> Result<(), ClientError> {
    let c = Client::logged_in()?;
    let decide = |id: &str, what: &str| format!("/api/v1/access/requests/{}/{what}", seg(id));
    match cmd {
        AccessCommand::Ls { state, json } => {
            let path = format!("/api/v1/access/requests?state={}", seg(&state));
            let list: List<AccessRequest> = c.call(Method::GET, &path, None).await?;
            if json {
                return print_json(&list.items);
            }
            let rows: Vec<Vec<String>> = list
                .items
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        r.position.map_or_else(|| "-".to_owned(), |p| p.to_string()),
                        r.username.clone(),
                        r.name.clone(),
                        r.email.clone(),
                        r.affiliation.clone(),
                        r.state.to_string(),
                        r.created_at.clone(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "ID",
                    "PLACE",
                    "USERNAME",
                    "NAME",
                    "E-MAIL",
                    "AFFILIATION",
                    "STATE",
                    "APPLIED",
                ],
                &rows,
            );
            Ok(())
        }
        AccessCommand::Approve { id, message } => {
            let body = serde_json::json!({ "message": message });
            let r: AccessRequest = c
                .call(Method::POST, &decide(&id, "approve"), Some(&body))
                .await?;
            println!(
                "approved {}: the account exists; they set its password through their status link",
                r.username
            );
            Ok(())
        }
        AccessCommand::Deny { id, message } => {
            let body = serde_json::json!({ "message": message });
            let r: AccessRequest = c
                .call(Method::POST, &decide(&id, "deny"), Some(&body))
                .await?;
            println!("denied {}'s request", r.username);
            Ok(())
        }
    }
}

async fn teams_command(cmd: TeamsCommand) -> Result<(), ClientError> {
    let c = Client::logged_in()?;
    let team_path = |team: &str| format!("/api/v1/teams/{}", seg(team));
    let member_path =
        |team: &str, user: &str| format!("/api/v1/teams/{}/members/{}", seg(team), seg(user));
    match cmd {
        TeamsCommand::List { json } => {
            let list: List<Team> = c.call(Method::GET, "/api/v1/teams", None).await?;
            if json {
                return print_json(&list.items);
            }
            let rows: Vec<Vec<String>> = list
                .items
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.role.to_string(),
                        if t.accepted { "member" } else { "invited" }.to_owned(),
                        t.members.len().to_string(),
                        t.workspace_path.clone(),
                    ]
                })
                .collect();
            print_table(&["TEAM", "ROLE", "STATE", "MEMBERS", "IN LABS AT"], &rows);
            Ok(())
        }
        TeamsCommand::Create { name } => {
            let body = serde_json::json!({ "name": name });
            let t: Team = c.call(Method::POST, "/api/v1/teams", Some(&body)).await?;
            println!(
                "created team {}; its workspace is at {} in your next labs",
                t.name, t.workspace_path
            );
            Ok(())
        }
        TeamsCommand::Show { name, json } => {
            let t: Team = c.call(Method::GET, &team_path(&name), None).await?;
            if json {
                return print_json(&t);
            }
            print_team(&t);
            Ok(())
        }
        TeamsCommand::Invite {
            team,
            username,
            owner,
        } => {
            let role = if owner { "owner" } else { "member" };
            let body = serde_json::json!({ "username": username, "role": role });
            let path = format!("{}/members", team_path(&team));
            let _: Team = c.call(Method::POST, &path, Some(&body)).await?;
            println!("invited {username} into {team} as {role}; they join when they accept");
            Ok(())
        }
        TeamsCommand::Accept { team } => {
            let path = format!("{}/accept", team_path(&team));
            let t: Team = c.call(Method::POST, &path, None).await?;
            println!(
                "joined {}; its workspace is at {} in your next labs",
                t.name, t.workspace_path
            );
            Ok(())
        }
        TeamsCommand::Leave { team } => {
            let me: Me = c.call(Method::GET, "/api/v1/me", None).await?;
            c.call_no_body(Method::DELETE, &member_path(&team, &me.username))
                .await?;
            println!("left {team}");
            Ok(())
        }
        TeamsCommand::Remove { team, username } => {
            c.call_no_body(Method::DELETE, &member_path(&team, &username))
                .await?;
            println!("removed {username} from {team}");
            Ok(())
        }
        TeamsCommand::Rename { team, new_name } => {
            let body = serde_json::json!({ "name": new_name });
            let t: Team = c
                .call(Method::PATCH, &team_path(&team), Some(&body))
                .await?;
            println!("renamed {team} to {}", t.name);
            Ok(())
        }
        TeamsCommand::Delete { team } => {
            c.call_no_body(Method::DELETE, &team_path(&team)).await?;
            println!("deleted team {team}");
            Ok(())
        }
        TeamsCommand::Role {
            team,
            username,
            role,
        } => {
            let body = serde_json::json!({ "role": role });
            let _: Team = c
                .call(Method::PATCH, &member_path(&team, &username), Some(&body))
                .await?;
            println!("{username} is now {role} of {team}");
            Ok(())
        }
    }
}

async fn labs_command(cmd: LabsCommand) -> Result<(), ClientError> {
    let c = Client::logged_in()?;
    match cmd {
        LabsCommand::Launch {
            datalab,
            volumes,
            file,
            zone,
            wait,
            open,
            json,
        } => {
            let wait = wait || open;
            let mut body = serde_json::json!({"datalab": datalab, "volumes": volumes});
            if let Some(file) = file {
                body["file"] = file.into();
            }
            if let Some(zone) = zone {
                body["zone"] = zone.into();
            }
            let mut lab: Lab = c.call(Method::POST, "/api/v1/labs", Some(&body)).await?;
            // A full workspace never blocks a launch: said, not hidden.
            if let Ok(w) = c
                .call::<insitu_api::Workspace>(Method::GET, "/api/v1/me/workspace", None)
                .await
            {
                crate::cli_workspace::warn(&w);
            }
            if wait {
                lab = follow(&c, lab, !json).await?;
            }
            if json {
                print_json(&lab)?;
            } else if !wait {
                println!(
                    "lab {} launched ({}); follow it with `insitu labs ls`",
                    lab.id, lab.state
                );
            }
            if open && lab.state == "running" {
                let link: insitu_api::LabOpen = c
                    .call(
                        Method::POST,
                        &format!("/api/v1/labs/{}/open", seg(&lab.id)),
                        None,
                    )
                    .await?;
                println!("{}", link.url);
                let _ = std::process::Command::new("xdg-open")
                    .arg(&link.url)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn();
            }
            match lab.state.as_str() {
                "failed" => Err(ClientError::Other(format!(
                    "lab {} failed: {}",
                    lab.id,
                    lab.reason.unwrap_or_default()
                ))),
                _ => Ok(()),
            }
        }
        LabsCommand::Ls { json } => {
            let list: List<Lab> = c.call(Method::GET, "/api/v1/labs", None).await?;
            if json {
                return print_json(&list.items);
            }
            let rows: Vec<Vec<String>> = list
                .items
                .iter()
                .map(|l| {
                    vec![
                        l.id.clone(),
                        l.datalab.clone(),
                        l.state.clone(),
                        l.zone.clone(),
                        l.volumes.join(","),
                        l.created_at.clone(),
                        l.reason.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "ID", "DATALAB", "STATE", "ZONE", "VOLUMES", "CREATED", "REASON",
                ],
                &rows,
            );
            Ok(())
        }
        LabsCommand::Stop { id, reason } => {
            let by_operator = reason.is_some();
            let lab: Lab = match reason {
                Some(reason) => {
                    let body = serde_json::to_value(OperatorStopRequest { reason })
                        .map_err(|e| ClientError::Other(e.to_string()))?;
                    c.call(
                        Method::POST,
                        &format!("/api/v1/admin/labs/{}/stop", seg(&id)),
                        Some(&body),
                    )
                    .await?
                }
                None => {
                    c.call(
                        Method::POST,
                        &format!("/api/v1/labs/{}/stop", seg(&id)),
                        None,
                    )
                    .await?
                }
            };
            println!("lab {} {}", lab.id, lab.state);
            if let Some(r) = lab.reason.filter(|_| by_operator) {
                println!("{r}");
            }
            Ok(())
        }
        LabsCommand::All { json } => {
            let list: List<OperatorLab> = c.call(Method::GET, "/api/v1/admin/labs", None).await?;
            if json {
                return print_json(&list.items);
            }
            let mib = |b: Option<u64>| b.map_or("-".to_owned(), |b| format!("{} MiB", b >> 20));
            let rows: Vec<Vec<String>> = list
                .items
                .iter()
                .map(|o| {
                    vec![
                        o.lab.id.clone(),
                        o.owner.clone(),
                        o.lab.datalab.clone(),
                        o.lab.state.clone(),
                        o.zone.clone(),
                        format!("{} s", o.age_seconds),
                        o.idle_seconds.map_or("-".to_owned(), |s| format!("{s} s")),
                        mib(o.memory_bytes),
                        o.cpu_seconds
                            .map_or("-".to_owned(), |c| format!("{c:.1} s")),
                    ]
                })
                .collect();
            print_table(
                &[
                    "ID", "OWNER", "DATALAB", "STATE", "ZONE", "AGE", "IDLE", "MEMORY", "CPU",
                ],
                &rows,
            );
            Ok(())
        }
        LabsCommand::Logs { id } => {
            let logs: LabLogs = c
                .call(
                    Method::GET,
                    &format!("/api/v1/labs/{}/logs", seg(&id)),
                    None,
                )
                .await?;
            for line in logs.lines {
                println!("{line}");
            }
            Ok(())
        }
        LabsCommand::Open { id } => {
            let link: LabOpen = c
                .call(
                    Method::POST,
                    &format!("/api/v1/labs/{}/open", seg(&id)),
                    None,
                )
                .await?;
            println!("{}", link.url);
            Ok(())
        }
        LabsCommand::Share { id, username } => {
            let path = format!("/api/v1/labs/{}/shares/{}", seg(&id), seg(&username));
            let _: LabSharing = c.call(Method::PUT, &path, None).await?;
            println!("lab {id} shared with {username}");
            Ok(())
        }
        LabsCommand::Unshare { id, username } => {
            let path = format!("/api/v1/labs/{}/shares/{}", seg(&id), seg(&username));
            c.call_no_body(Method::DELETE, &path).await?;
            println!("lab {id} no longer shared with {username}");
            Ok(())
        }
        LabsCommand::ShareTeam { id, team } => {
            let path = format!("/api/v1/labs/{}/team-shares/{}", seg(&id), seg(&team));
            let _: LabSharing = c.call(Method::PUT, &path, None).await?;
            println!("lab {id} shared with team {team}");
            Ok(())
        }
        LabsCommand::UnshareTeam { id, team } => {
            let path = format!("/api/v1/labs/{}/team-shares/{}", seg(&id), seg(&team));
            c.call_no_body(Method::DELETE, &path).await?;
            println!("lab {id} no longer shared with team {team}");
            Ok(())
        }
        LabsCommand::Shares { id, json } => {
            let path = format!("/api/v1/labs/{}/shares", seg(&id));
            let sharing: LabSharing = c.call(Method::GET, &path, None).await?;
            if json {
                return print_json(&sharing);
            }
            println!("shared with: {}", sharing.shared_with.join(", "));
            if !sharing.teams.is_empty() {
                println!("shared with teams: {}", sharing.teams.join(", "));
            }
            let rows: Vec<Vec<String>> = sharing
                .connected
                .iter()
                .map(|u| {
                    vec![
                        u.username.clone(),
                        u.sessions.to_string(),
                        u.websockets.to_string(),
                    ]
                })
                .collect();
            print_table(&["CONNECTED", "SESSIONS", "WEBSOCKETS"], &rows);
            Ok(())
        }
        LabsCommand::Shared { json } => {
            let list: List<Lab> = c.call(Method::GET, "/api/v1/labs/shared", None).await?;
            if json {
                return print_json(&list.items);
            }
            let rows: Vec<Vec<String>> = list
                .items
                .iter()
                .map(|l| vec![l.id.clone(), l.datalab.clone(), l.state.clone()])
                .collect();
            print_table(&["ID", "DATALAB", "STATE"], &rows);
            Ok(())
        }
    }
}

async fn devlabs_command(cmd: DevlabsCommand) -> Result<(), ClientError> {
    let c = Client::logged_in()?;
    match cmd {
        DevlabsCommand::Templates => {
            let t: List<DevlabTemplate> = c
                .call(Method::GET, "/api/v1/devlabs/templates", None)
                .await?;
            for t in t.items {
                println!("{:<14} {}", t.name, t.title);
            }
            Ok(())
        }
        DevlabsCommand::Ls { json } => {
            let mine: List<Devlab> = c.call(Method::GET, "/api/v1/devlabs", None).await?;
            if json {
                return print_json(&mine);
            }
            for d in mine.items {
                let build = d
                    .builds
                    .first()
                    .map(|b| format!("{} {}", b.build_version, b.state))
                    .unwrap_or_else(|| "not built".to_owned());
                println!(
                    "{:<24} {:<10} {:<10} {}",
                    d.name,
                    d.state.to_uppercase(),
                    d.definition.version,
                    build
                );
            }
            Ok(())
        }
        DevlabsCommand::Create {
            name,
            template,
            title,
            json,
        } => {
            let body = serde_json::json!({"name": name, "template": template, "title": title});
            let d: Devlab = c.call(Method::POST, "/api/v1/devlabs", Some(&body)).await?;
            if json {
                return print_json(&d);
            }
            println!("draft {} created from the {} template", d.name, d.template);
            Ok(())
        }
        DevlabsCommand::Show { name, json } => {
            let d: Devlab = c
                .call(
                    Method::GET,
                    &format!("/api/v1/devlabs/{}", seg(&name)),
                    None,
                )
                .await?;
            if json {
                return print_json(&d);
            }
            println!(
                "{} ({}) {}",
                d.name,
                d.definition.title,
                d.state.to_uppercase()
            );
            println!(
                "version {}, author {}, licence {}",
                d.definition.version, d.definition.author, d.definition.license
            );
            for b in &d.builds {
                let publication = b.publication.map(|p| format!(" {p}")).unwrap_or_default();
                println!(
                    "  build {:<14} {:<10} {}{}",
                    b.build_version,
                    b.state,
                    b.error.as_deref().unwrap_or(""),
                    publication
                );
            }
            for r in &d.releases {
                if let Some(reason) = &r.reason {
                    println!("  {} {}: {reason}", r.version, r.state);
                }
            }
            Ok(())
        }
        DevlabsCommand::Build { name, follow } => {
            let b: Build = c
                .call(
                    Method::POST,
                    &format!("/api/v1/devlabs/{}/builds", seg(&name)),
                    None,
                )
                .await?;
            if !follow {
                println!("build {} of {} queued", b.build_version, b.datalab);
                return Ok(());
            }
            follow_build(&c, &name, b.number).await
        }
        DevlabsCommand::Log { name, build } => {
            let log = c
                .bytes(&format!(
                    "/api/v1/devlabs/{}/builds/{build}/log?offset=0",
                    seg(&name)
                ))
                .await?;
            std::io::stdout()
                .write_all(&log)
                .map_err(|e| ClientError::Other(e.to_string()))
        }
        DevlabsCommand::Submit { name, build } => {
            let body = serde_json::json!({ "build": build });
            let r: Release = c
                .call(
                    Method::POST,
                    &format!("/api/v1/devlabs/{}/submissions", seg(&name)),
                    Some(&body),
                )
                .await?;
            println!("{} {} submitted for publication", r.datalab, r.version);
            Ok(())
        }
    }
}

/// Prints a build's log as it grows, until the build ends; a failed build
/// is an error with its error line.
async fn follow_build(c: &Client, name: &str, number: i64) -> Result<(), ClientError> {
    let mut offset: u64 = 0;
    let mut out = std::io::stdout();
    loop {
        let build: Build = c
            .call(
                Method::GET,
                &format!("/api/v1/devlabs/{}/builds/{number}", seg(name)),
                None,
            )
            .await?;
        let chunk = c
            .bytes(&format!(
                "/api/v1/devlabs/{}/builds/{number}/log?offset={offset}",
                seg(name)
            ))
            .await?;
        offset += chunk.len() as u64;
        let _ = out.write_all(&chunk);
        let _ = out.flush();
        if !chunk.is_empty() {
            continue;
        }
        match build.state {
            BuildState::Queued | BuildState::Running => {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
            BuildState::Succeeded => return Ok(()),
            BuildState::Failed => {
                return Err(ClientError::Other(format!(
                    "build {} failed: {}",
                    build.build_version,
                    build.error.unwrap_or_default()
                )));
            }
        }
    }
}

/// Polls a launching lab and draws its steps as a progress bar.
async fn follow(c: &Client, mut lab: Lab, show: bool) -> Result<Lab, ClientError> {
    const STEPS: [&str; 5] = [
        "queued",
        "sandbox_prepared",
        "process_started",
        "waiting_for_readiness",
        "ready",
    ];
    let mut shown = 0;
    let mut said: Option<String> = None;
    let started = std::time::Instant::now();
    loop {
        if show {
            // What the latest step waits for (a Slurm job's queue), once
            // each time it changes.
            let detail = lab.progress.last().and_then(|s| s.detail.clone());
            if detail.is_some() && detail != said {
                eprintln!("        {}", detail.as_deref().unwrap_or_default());
                said = detail;
            }
            for st in lab.progress.iter().skip(shown) {
                let done = STEPS
                    .iter()
                    .position(|s| *s == st.step)
                    .map_or(0, |i| i + 1);
                let bar: String = (0..STEPS.len())
                    .map(|i| if i < done { '#' } else { '.' })
                    .collect();
                eprintln!(
                    "[{bar}] {:<22} {:>6} ms",
                    st.step.replace('_', " "),
                    st.at_ms
                );
            }
            shown = lab.progress.len();
        }
        if !["pending", "starting"].contains(&lab.state.as_str()) {
            if show {
                match &lab.reason {
                    Some(r) => eprintln!("lab {} is {}: {r}", lab.id, lab.state),
                    None => eprintln!(
                        "lab {} is {} after {:.1} s",
                        lab.id,
                        lab.state,
                        started.elapsed().as_secs_f64()
                    ),
                }
            }
            return Ok(lab);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        lab = c
            .call(Method::GET, &format!("/api/v1/labs/{}", seg(&lab.id)), None)
            .await?;
    }
}

/// A datazone as a row of `insitu zones`: the default marked, figures as
/// free/all ("?" where unknown), or why its scheduler did not answer.
fn zone_row(z: &Zone) -> Vec<String> {
    let name = if z.default {
        format!("{} (default)", z.name)
    } else {
        z.name.clone()
    };
    let pair = |free: Option<String>, all: Option<String>| {
        format!(
            "{}/{}",
            free.unwrap_or_else(|| "?".into()),
            all.unwrap_or_else(|| "?".into())
        )
    };
    let gib = |b: Option<u64>| b.map(|b| format!("{:.1}GiB", b as f64 / f64::from(1u32 << 30)));
    let mut row = vec![name, z.kind.clone(), z.volumes.join(",")];
    if let Some(why) = &z.unavailable {
        row.extend([format!("unavailable: {why}"), String::new(), String::new()]);
    } else {
        row.extend([
            pair(
                z.free.cpu.map(|c| format!("{c}")),
                z.capacity.cpu.map(|c| format!("{c}")),
            ),
            pair(gib(z.free.memory_bytes), gib(z.capacity.memory_bytes)),
            pair(
                z.free.gpu.map(|g| g.to_string()),
                z.capacity.gpu.map(|g| g.to_string()),
            ),
        ]);
    }
    row
}
