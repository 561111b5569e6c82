//! `spawn_app`: a real server with its own data directory, database,
//! catalogue (the shipped one plus deliberately broken definitions) and demo
//! volumes.

use std::path::{Path, PathBuf};

use insitu_web::{App, AppHandle, Secret, ServerConfig};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// The slow test tool's shell: waits for `~/go-<lab id>` (the lab id is the
/// base URL's last part), then runs the test web app.
const SLOW_START: &str = "id=$(basename \\\"$3\\\"); while [ ! -e \\\"$HOME/go-$id\\\" ]; do sleep 0.05; done; exec python3 \\\"$1\\\" \\\"$2\\\" \\\"$3\\\"";
pub const PASSWORD: &str = "a-long-enough-password";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// The backends this run covers: SQLite always; PostgreSQL when the test
/// command started one (and required when it says so).
pub fn backends() -> Vec<Db> {
    let mut v = vec![Db::Sqlite];
    if std::env::var("INSITU_TEST_POSTGRES_URL").is_ok() {
        v.push(Db::Postgres);
    } else {
        assert!(
            std::env::var("INSITU_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "INSITU_REQUIRE_POSTGRES=1 but INSITU_TEST_POSTGRES_URL is not set"
        );
    }
    v
}

pub struct TestApp {
    pub url: String,
    /// The lab proxy's URL as browsers reach it (`{lab}` for a lab's id
    /// with per-lab origins); a new port after a restart unless fixed.
    pub proxy_url: String,
    pub dir: tempfile::TempDir,
    /// The running platform and lab proxy (a new one after a restart).
    pub handle: AppHandle,
    config: ServerConfig,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{t:x}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct Options {
    pub db: Db,
    pub idle_timeout: &'static str,
    pub lab_idle_timeout: &'static str,
    pub gpus: Vec<String>,
    /// Serve every lab from an origin of its own, `http://<lab>.localhost:P`.
    pub per_lab_origins: bool,
    /// Data volumes offered beside the demo ones.
    pub extra_volumes: Vec<insitu_domain::volume::VolumeConfig>,
    /// `labs.max_starting`.
    pub max_starting: usize,
    /// `labs.network_linger`.
    pub network_linger: &'static str,
    /// Labs share the host's network (`labs.network = "host"`).
    pub network_host: bool,
    /// Keep workspaces in file system images (`quotas.workspace_images`);
    /// off for tests that do not test quotas, so that they leave no loop
    /// devices behind when they fail.
    pub workspace_images: bool,
    /// OpenID providers to log in with.
    pub oidc: Vec<insitu_web::OidcProviderConfig>,
    /// Any further change to the configuration.
    pub configure: fn(&mut ServerConfig),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            db: Db::Sqlite,
            idle_timeout: "2h",
            lab_idle_timeout: "0s",
            gpus: Vec::new(),
            per_lab_origins: false,
            extra_volumes: Vec::new(),
            max_starting: 10,
            network_linger: "5m",
            network_host: false,
            workspace_images: false,
            oidc: Vec::new(),
            configure: |_| {},
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

pub async fn spawn_on(db: Db) -> TestApp {
    spawn_with(Options {
        db,
        ..Options::default()
    })
    .await
}

pub async fn spawn_with(opts: Options) -> TestApp {
    spawn_configured(opts, |_| {}).await
}

/// [`spawn_with`], with a last change to the configuration that may hold
/// what the test knows (a cluster's `slurm.conf`).
pub async fn spawn_configured(opts: Options, change: impl FnOnce(&mut ServerConfig)) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), &opts).await;
    change(&mut config);
    let (url, proxy_url, handle, shutdown, task) = start(config.clone()).await;
    TestApp {
        url,
        proxy_url,
        dir,
        handle,
        config,
        shutdown: Some(shutdown),
        task: Some(task),
    }
}

/// A test server's configuration in `dir`: its data directory, a fresh
/// database, the shipped catalogue with test datalabs beside it and demo
/// volumes, listening on port 0.
pub async fn test_config(dir: &Path, opts: &Options) -> ServerConfig {
    // Labs run unprivileged and must reach their volumes and workspace.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    let catalogue = dir.join("catalogue");
    std::fs::create_dir_all(&catalogue).unwrap();
    for entry in std::fs::read_dir(repo_root().join("catalogue/datalabs")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, catalogue.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        catalogue.join("broken-kind.toml"),
        "title = \"Broken\"\ndescription = \"\"\nversion = \"1\"\nkind = \"hologram\"\nlicense = \"MIT\"\n[launch]\ncommand = [\"x\"]\n",
    )
    .unwrap();
    std::fs::write(
        catalogue.join("bad-syntax.toml"),
        "title = \"unterminated\n",
    )
    .unwrap();
    let webapp = repo_root().join("crates/insitu/tests/it/fixtures/webapp.py");
    let testapp = format!(
        "title = \"Test web app\"\ndescription = \"Answers every request\"\nversion = \"1\"\nkind = \"web\"\n\
         license = \"MIT\"\n[launch]\ncommand = [\"python3\", \"{}\", \"{{port}}\", \"{{base_url}}\"]\nreadiness_path = \"/\"\n",
        webapp.display()
    );
    std::fs::write(catalogue.join("testapp.toml"), &testapp).unwrap();
    std::fs::write(
        catalogue.join("gpuapp.toml"),
        format!("{testapp}[resources]\ngpu = 1\n"),
    )
    .unwrap();
    let crashes = "title = \"Crashes\"\ndescription = \"Exits at once\"\nversion = \"1\"\nkind = \"web\"\n\
        license = \"MIT\"\n[launch]\n\
        command = [\"sh\", \"-c\", \"echo starting up; echo 'fatal: no licence server' >&2; exit 3\"]\n";
    std::fs::write(catalogue.join("crashes.toml"), crashes).unwrap();
    let memhog = "title = \"Memory hog\"\ndescription = \"Wants more than its limit\"\nversion = \"1\"\n\
        kind = \"web\"\nlicense = \"MIT\"\n[launch]\n\
        command = [\"python3\", \"-c\", \"print('allocating', flush=True); b = bytearray(512 << 20); print('allocated')\"]\n\
        [resources]\nmemory = \"96MiB\"\ncpu = 0.5\n";
    std::fs::write(catalogue.join("memhog.toml"), memhog).unwrap();
    let mut volumes = insitu::demo::demo_volumes(&dir.join("volumes")).unwrap();
    volumes.extend(opts.extra_volumes.clone());
    let database_url = match opts.db {
        Db::Sqlite => None,
        Db::Postgres => {
            let admin = std::env::var("INSITU_TEST_POSTGRES_URL").unwrap();
            Some(Secret::new(
                insitu_store::create_postgres_database(&admin, &format!("insitu_it_{}", unique()))
                    .await
                    .unwrap(),
            ))
        }
    };
    let mut config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        database_url,
        catalogue_dir: catalogue,
        volumes,
        ..ServerConfig::default()
    };
    config.admin.password = Some(Secret::new(ADMIN_PASSWORD));
    config.session.idle_timeout = opts.idle_timeout.to_owned();
    config.labs.start_timeout = "90s".to_owned();
    config.proxy.listen = "127.0.0.1:0".parse().unwrap();
    if opts.per_lab_origins {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        config.proxy.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        config.proxy.public_url = Some(format!("http://{{lab}}.localhost:{port}"));
    }
    // The test tool and JupyterLab live in the checkout, wherever it is.
    config.labs.expose = vec![repo_root()];
    config.labs.idle_timeout = Some(opts.lab_idle_timeout.to_owned());
    config.labs.gpus = Some(opts.gpus.clone());
    config.labs.max_starting = opts.max_starting;
    config.labs.network_linger = opts.network_linger.to_owned();
    if opts.network_host {
        config.labs.network = insitu_web::LabNetworkMode::Host;
    }
    let venv = repo_root().join(".venv/bin");
    if venv.join("jupyter-lab").exists() {
        config.labs.tool_path.push(venv);
    }
    config.quotas.workspace_images = opts.workspace_images;
    config.oidc = opts.oidc.clone();
    (opts.configure)(&mut config);
    config
}

type Running = (
    String,
    String,
    AppHandle,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
);

async fn start(config: ServerConfig) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (app, initial) = App::build(config).await.unwrap();
    assert!(
        initial.is_none(),
        "a configured admin password is not printed"
    );
    let handle = app.handle();
    let proxy_url = app.proxy_url().to_owned();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(app.serve(listener, async move {
        let _ = rx.await;
    }));
    (url, proxy_url, handle, tx, task)
}

/// Adds the slow test tool to a catalogue: it answers only once
/// `~/go-<lab id>` exists in the workspace, so a test decides how long the
/// lab waits for readiness (see `lifecycle::let_answer`).
pub fn add_slowapp(catalogue: &Path) {
    let webapp = repo_root().join("crates/insitu/tests/it/fixtures/webapp.py");
    std::fs::write(
        catalogue.join("slowapp.toml"),
        format!(
            "title = \"Slow web app\"\ndescription = \"Ready when told\"\nversion = \"1\"\nkind = \"web\"\n\
             license = \"MIT\"\n[launch]\ncommand = [\"sh\", \"-c\", \"{SLOW_START}\", \"slowapp\", \"{}\", \"{{port}}\", \"{{base_url}}\"]\n\
             readiness_path = \"/\"\n",
            webapp.display()
        ),
    )
    .unwrap();
}

/// Reloads a server's catalogue (after a test added a datalab to it).
pub async fn reload_catalogue(app: &impl Server) {
    let r = plain()
        .post(app.u("/api/v1/admin/catalogue/reload"))
        .bearer_auth(app.admin_token().await)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A second server on the same database and data directory, as a second
/// server process of one platform runs; dropped, it stops and leaves the
/// labs to the first.
pub struct Twin {
    url: String,
    config: ServerConfig,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    pub async fn twin(&self) -> Twin {
        let (url, _, _, shutdown, task) = start(self.config.clone()).await;
        Twin {
            url,
            config: self.config.clone(),
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }
}

impl Drop for Twin {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Server for Twin {
    fn u(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    fn config(&self) -> &ServerConfig {
        &self.config
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
        end_sandboxes(&self.config.data_dir);
    }
}

/// Removes from the machine what a server on `data_dir` made there, and
/// only that (other tests and other people's servers run beside): the
/// sandboxes and containers of its labs and SAMP hubs, which outlive the server by design,
/// not the test; their control groups; and its users' network namespaces.
/// Found from the data directory alone, so it works after a failed test
/// and for a server that was killed.
pub fn end_sandboxes(data_dir: &Path) {
    let names = |dir: &str| -> Vec<String> {
        std::fs::read_dir(data_dir.join(dir))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (labs, users) = (names("labs"), names("samp"));
    for lab in &labs {
        insitu_launcher::process::kill_recorded(&data_dir.join("labs").join(lab).join("lab.log"));
        // A lab of a developed datalab runs in the podman container its
        // directory names.
        if let Ok(container) =
            std::fs::read_to_string(data_dir.join("labs").join(lab).join("container"))
            && container.trim().starts_with("insitu-lab-")
        {
            let _ = std::process::Command::new("podman")
                .args(["rm", "--force", "--ignore", "--time=0", container.trim()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
    for user in &users {
        insitu_launcher::process::kill_recorded(&data_dir.join("samp").join(user).join("hub.log"));
    }
    let cgroups = insitu_launcher::Cgroups::detect("insitu");
    for group in labs
        .iter()
        .cloned()
        .chain(users.iter().map(|u| format!("samp-{u}")))
    {
        if cgroups.dirs(&group).iter().any(|d| d.exists()) {
            cgroups.kill_and_remove(&group);
        }
    }
    for user in &users {
        let _ = insitu_launcher::NetNs::delete(&network_name(user));
    }
    // Workspaces mounted from their images: their loop devices go with
    // the last mount (the sandboxes' included, ended above).
    for mount in insitu_launcher::storage::mounts_under(data_dir) {
        let _ = insitu_launcher::storage::unmount_lazily(&mount);
    }
    // Runs' engines (and their tools) live in control groups of their own,
    // in network namespaces of their own.
    let runs = insitu_launcher::Cgroups::detect("insitu-runs");
    for run in names("runs") {
        if runs.dirs(&run).iter().any(|d| d.exists()) {
            runs.kill_and_remove(&run);
        }
        if insitu_launcher::NetNs::exists(&format!("insitu-run-{run}")) {
            let _ = insitu_launcher::NetNs::delete(&format!("insitu-run-{run}"));
        }
    }
}

/// The network namespace of the user with this id.
pub fn network_name(user_id: &str) -> String {
    format!("insitu-{}", user_id.replace('-', ""))
}

/// A client without cookies, for token and anonymous calls.
pub fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A browser-like client that keeps cookies and does not follow redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A browser-like client for the lab proxy that resolves each of the
/// labs' own hosts, `<lab>.localhost`, to the proxy at `port` (browsers
/// know names under .localhost are this machine; the resolver here does
/// not).
pub fn lab_browser(port: u16, lab_ids: &[&str]) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none());
    for id in lab_ids {
        builder = builder.resolve(
            &format!("{id}.localhost"),
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        );
    }
    builder.build().unwrap()
}

/// The stable code on one of the lab proxy's error pages.
pub fn proxy_code(page: &str) -> String {
    page.split("<code>")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .unwrap_or("")
        .to_owned()
}

/// A logged-in cookie session and its CSRF token.
pub struct Session {
    pub client: reqwest::Client,
    pub csrf: String,
}

impl Session {
    /// Asks the platform to open a lab, as the *Open* button does (a POST
    /// with the CSRF token): a redirect to the lab proxy with a ticket.
    pub async fn open_lab(&self, app: &TestApp, id: &str) -> reqwest::Response {
        self.client
            .post(app.u(&format!("/my-labs/{id}/open")))
            .form(&[("csrf", self.csrf.as_str())])
            .send()
            .await
            .unwrap()
    }
}

impl TestApp {
    /// Stops the server (labs keep running) and starts a new one on the same
    /// data directory and database, at a new address.
    pub async fn restart(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        let (url, proxy_url, handle, shutdown, task) = start(self.config.clone()).await;
        self.url = url;
        self.proxy_url = proxy_url;
        self.handle = handle;
        self.shutdown = Some(shutdown);
        self.task = Some(task);
    }

    pub fn u(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

impl Server for TestApp {
    fn u(&self, path: &str) -> String {
        TestApp::u(self, path)
    }

    fn config(&self) -> &ServerConfig {
        &self.config
    }
}

/// `insitu serve --config FILE` as a process of its own, as an operator
/// runs it; dropped, it ends with what it left on the machine.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub url: String,
    pub config: ServerConfig,
    pub config_path: PathBuf,
    /// Where its output goes (appended across restarts).
    pub out: PathBuf,
}

impl ServerProcess {
    /// Writes `config` to `config_path` (ports 0 replaced by free ones, so
    /// a restart finds the same addresses) and serves it; returns once the
    /// server answers.
    pub async fn start(mut config: ServerConfig, config_path: PathBuf) -> ServerProcess {
        let _ = rustls::crypto::ring::default_provider().install_default();
        for addr in [&mut config.listen, &mut config.proxy.listen] {
            if addr.port() == 0 {
                addr.set_port(free_port());
            }
        }
        std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();
        let out = config_path.with_extension("out");
        let mut server = ServerProcess {
            child: serve_process(&config_path, &out),
            url: format!("http://{}", config.listen),
            config,
            config_path,
            out,
        };
        server.wait_healthy().await;
        server
    }

    /// Ends the server's process alone with `signal` (`TERM`, `KILL`), as a
    /// service manager or a crash does, and waits for it.
    pub fn end(&mut self, signal: &str) {
        let sent = std::process::Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        self.child.wait().unwrap();
    }

    /// Serves the same configuration again, in a new process.
    pub async fn start_again(&mut self) {
        self.child = serve_process(&self.config_path, &self.out);
        self.wait_healthy().await;
    }

    async fn wait_healthy(&mut self) {
        for _ in 0..600 {
            if plain()
                .get(format!("{}/healthz", self.url))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return;
            }
            assert!(
                matches!(self.child.try_wait(), Ok(None)),
                "the server ended: {}",
                std::fs::read_to_string(&self.out).unwrap_or_default()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!(
            "the server did not come up: {}",
            std::fs::read_to_string(&self.out).unwrap_or_default()
        );
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        end_sandboxes(&self.config.data_dir);
    }
}

impl Server for ServerProcess {
    fn u(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    fn config(&self) -> &ServerConfig {
        &self.config
    }
}

/// `insitu serve` on `config`, its output appended to `out`.
fn serve_process(config: &Path, out: &Path) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_insitu"))
        .args(["serve", "--config"])
        .arg(config)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running server, in this process ([`TestApp`]) or as a process of its
/// own ([`ServerProcess`]), as tests call it.
#[allow(async_fn_in_trait)]
pub trait Server {
    /// The URL of `path` on the platform.
    fn u(&self, path: &str) -> String;

    fn config(&self) -> &ServerConfig;

    /// The id the platform gave a user (what names their network
    /// namespace and SAMP hub), read from the server's database.
    async fn user_id(&self, username: &str) -> String {
        let url = self.config().platform().database_url();
        let store = insitu_store::Store::connect(url.expose()).await.unwrap();
        let user = store
            .user_by_username(&username.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        store.close().await;
        user.id.to_string()
    }

    async fn login(&self, username: &str, password: &str) -> Session {
        let client = browser();
        let r = client
            .post(self.u("/api/v1/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "login as {username}");
        let body: Value = r.json().await.unwrap();
        Session {
            client,
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    /// A personal API token for the user.
    async fn token(&self, username: &str, password: &str) -> String {
        let r = plain()
            .post(self.u("/api/v1/auth/token"))
            .json(&json!({"username": username, "password": password, "token_name": "tests"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn admin_token(&self) -> String {
        self.token("admin", ADMIN_PASSWORD).await
    }

    /// Creates a user with the role and returns an API token of theirs.
    async fn user_with_role(&self, username: &str, role: &str) -> String {
        let admin = self.admin_token().await;
        let r = plain()
            .post(self.u("/api/v1/admin/users"))
            .bearer_auth(&admin)
            .json(&json!({"username": username, "password": PASSWORD, "role": role}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        self.token(username, PASSWORD).await
    }
}

pub async fn get_json(client: &reqwest::Client, url: &str, token: &str) -> (u16, Value) {
    let r = client.get(url).bearer_auth(token).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// POSTs `body` to the API at `path` with `token`: the status and the
/// answer (`Null` when it is not JSON).
pub async fn post_json(app: &impl Server, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = plain()
        .post(app.u(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}
