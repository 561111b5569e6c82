//! Loading the server configuration: built-in defaults, then a TOML file,
//! then `INSITU_*` environment variables (`INSITU_LISTEN=0.0.0.0:8080`,
//! `INSITU_SESSION__IDLE_TIMEOUT=30m`: a double underscore goes one table
//! deeper). Values are read as TOML where they parse (numbers, booleans,
//! arrays) and as strings otherwise.

use std::path::Path;

use anyhow::Context;
use insitu_web::ServerConfig;
use toml::Value;

/// Top-level keys the environment may set; other `INSITU_*` variables
/// (the client's `INSITU_URL`, `INSITU_TOKEN`) are not server settings.
const SERVER_KEYS: [&str; 17] = [
    "listen",
    "public_url",
    "data_dir",
    "database_url",
    "catalogue_dir",
    "max_body_bytes",
    "session",
    "login",
    "http",
    "metrics",
    "admin",
    "labs",
    "pipelines",
    "proxy",
    "volumes",
    "access",
    "zones",
];

pub const EXAMPLE: &str = include_str!("../../../insitu.example.toml");

pub fn load(
    file: Option<&Path>,
    env: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<ServerConfig> {
    let mut table = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str::<toml::Table>(&text)
                .with_context(|| format!("parsing {}", path.display()))?
        }
        None => toml::Table::new(),
    };
    for (key, raw) in env {
        let Some(rest) = key.strip_prefix("INSITU_") else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
        if !SERVER_KEYS.contains(&path[0].as_str()) {
            continue;
        }
        let value = parse_env_value(&raw);
        set_path(&mut table, &path, value)
            .with_context(|| format!("environment variable {key}"))?;
    }
    let source = file.map_or_else(|| "the environment".to_owned(), |p| p.display().to_string());
    Value::Table(table)
        .try_into::<ServerConfig>()
        .map_err(|e| anyhow::anyhow!("invalid configuration in {source}: {e}"))
}

fn parse_env_value(raw: &str) -> Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_owned()))
}

fn set_path(table: &mut toml::Table, path: &[String], value: Value) -> anyhow::Result<()> {
    match path {
        [] => Ok(()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| Value::Table(toml::Table::new()));
            match entry {
                Value::Table(t) => set_path(t, rest, value),
                _ => anyhow::bail!("{first} is not a table"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_file_and_nests() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "listen = \"127.0.0.1:1\"\n[session]\nidle_timeout = \"5m\"\n",
        )
        .unwrap();
        let env = [
            ("INSITU_LISTEN", "127.0.0.1:9999"),
            ("INSITU_SESSION__LIFETIME", "3h"),
            ("INSITU_HTTP__MAX_CONNECTIONS", "64"),
            ("INSITU_LOGIN__FAILURES_PER_CLIENT", "5"),
            ("INSITU_URL", "http://client-setting"),
            ("HOME", "/root"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let c = load(Some(&f), env.into_iter()).unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.session.lifetime_secs(), 3 * 3600);
        assert_eq!(c.session.idle_secs(), 300);
        assert_eq!(c.http.max_connections, 64);
        assert_eq!(c.login.failures_per_client, 5);
    }

    #[test]
    fn typos_are_errors_not_silence() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "lisen = \"127.0.0.1:1\"\n").unwrap();
        let err = load(Some(&f), std::iter::empty()).unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");
    }

    #[test]
    fn the_example_configuration_loads() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("example.toml");
        std::fs::write(&f, EXAMPLE).unwrap();
        let c = load(Some(&f), std::iter::empty()).unwrap();
        assert_eq!(c.volumes.len(), 1);
        // So are the developed datalabs' settings.
        let (shown, default) = (&c.devlabs, insitu_web::DevlabsConfig::default());
        assert_eq!(
            (&shown.python_image, &shown.build_network, shown.keep_builds),
            (
                &default.python_image,
                &default.build_network,
                default.keep_builds
            )
        );
        assert_eq!(
            (
                &shown.build_timeout,
                &shown.max_import_size,
                shown.build_cpus
            ),
            (
                &default.build_timeout,
                &default.max_import_size,
                default.build_cpus
            )
        );
        // The lab proxy's settings it shows are the defaults.
        let (shown, default) = (&c.proxy, insitu_web::ProxyConfig::default());
        assert_eq!(shown.header_read_timeout, default.header_read_timeout);
        assert_eq!(shown.keep_alive_timeout, default.keep_alive_timeout);
        assert_eq!(shown.max_connections, default.max_connections);
        assert_eq!(
            shown.max_connections_per_client,
            default.max_connections_per_client
        );
    }

    #[test]
    fn the_proxy_settings_come_from_the_environment_too() {
        let env = [
            ("INSITU_PROXY__PUBLIC_URL", "https://{lab}.labs.example.org"),
            ("INSITU_PROXY__KEEP_ALIVE_TIMEOUT", "30s"),
            ("INSITU_PROXY__MAX_CONNECTIONS_PER_CLIENT", "0"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let c = load(None, env.into_iter()).unwrap();
        let proxy = c.proxy.settings("/".into()).unwrap();
        assert!(proxy.public_url.unwrap().per_lab() && proxy.cookie_secure);
        assert_eq!(proxy.keep_alive_timeout.as_secs(), 30);
        assert_eq!(proxy.max_connections_per_client, 0);
    }
}
