//! `spawn_app`: a real server with its own data directory, database,
//! catalogue (the shipped one plus deliberately broken definitions) and demo
//! volumes.

use std::path::{Path, PathBuf};

use insitu_web::{App, AppHandle, Secret, ServerConfig};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
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
    /// Labs share the host's network (`labs.network = "host"`).
    pub network_host: bool,
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
            network_host: false,
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
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    // Labs run unprivileged and must reach their volumes and workspace.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let catalogue = dir.path().join("catalogue");
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
    let volumes = insitu::demo::demo_volumes(&dir.path().join("volumes")).unwrap();
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
        data_dir: dir.path().join("data"),
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
    if opts.network_host {
        config.labs.network = insitu_web::LabNetworkMode::Host;
    }
    let venv = repo_root().join(".venv/bin");
    if venv.join("jupyter-lab").exists() {
        config.labs.tool_path.push(venv);
    }
    (opts.configure)(&mut config);
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

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
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

    pub async fn login(&self, username: &str, password: &str) -> Session {
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
    pub async fn token(&self, username: &str, password: &str) -> String {
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

    pub async fn admin_token(&self) -> String {
        self.token("admin", ADMIN_PASSWORD).await
    }

    /// Creates a user with the role and returns an API token of theirs.
    pub async fn user_with_role(&self, username: &str, role: &str) -> String {
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
