//! Page templates, compiled into the binary and rendered with minijinja
//! (auto-escaping HTML).

use minijinja::Environment;

const TEMPLATES: [(&str, &str); 30] = [
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("datalabs.html", include_str!("templates/datalabs.html")),
    ("datalab.html", include_str!("templates/datalab.html")),
    ("volumes.html", include_str!("templates/volumes.html")),
    ("volume.html", include_str!("templates/volume.html")),
    ("zones.html", include_str!("templates/zones.html")),
    ("account.html", include_str!("templates/account.html")),
    (
        "admin_users.html",
        include_str!("templates/admin_users.html"),
    ),
    (
        "admin_catalogue.html",
        include_str!("templates/admin_catalogue.html"),
    ),
    ("admin_labs.html", include_str!("templates/admin_labs.html")),
    ("error.html", include_str!("templates/error.html")),
    ("labs.html", include_str!("templates/labs.html")),
    ("lab.html", include_str!("templates/lab.html")),
    ("discover.html", include_str!("templates/discover.html")),
    (
        "admin_search.html",
        include_str!("templates/admin_search.html"),
    ),
    ("teams.html", include_str!("templates/teams.html")),
    ("team.html", include_str!("templates/team.html")),
    ("pipelines.html", include_str!("templates/pipelines.html")),
    ("pipeline.html", include_str!("templates/pipeline.html")),
    ("develop.html", include_str!("templates/develop.html")),
    ("runs.html", include_str!("templates/runs.html")),
    ("run.html", include_str!("templates/run.html")),
    ("devlabs.html", include_str!("templates/devlabs.html")),
    ("devlab.html", include_str!("templates/devlab.html")),
    (
        "devlab_build.html",
        include_str!("templates/devlab_build.html"),
    ),
    ("moderation.html", include_str!("templates/moderation.html")),
    (
        "access_apply.html",
        include_str!("templates/access_apply.html"),
    ),
    (
        "access_status.html",
        include_str!("templates/access_status.html"),
    ),
    (
        "access_requests.html",
        include_str!("templates/access_requests.html"),
    ),
];

pub const STYLESHEET: &str = include_str!("static/insitu.css");
pub const SCRIPT: &str = include_str!("static/insitu.js");

pub fn environment() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    env.add_filter("bytes", |b: u64| insitu_domain::datalab::format_bytes(b));
    env.add_filter("truncate", truncate);
    Ok(env)
}

/// Shortens text to at most `n` characters at a word boundary, adding "…".
fn truncate(s: String, n: usize) -> String {
    if s.chars().count() <= n {
        return s;
    }
    let cut: String = s.chars().take(n).collect();
    let ends_word = s.chars().nth(n).is_some_and(char::is_whitespace);
    let at = if ends_word {
        cut.len()
    } else {
        cut.rfind(' ').filter(|i| *i > n / 2).unwrap_or(cut.len())
    };
    format!("{}…", cut[..at].trim_end_matches([',', '.', ';', ':']))
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncates_at_words() {
        assert_eq!(super::truncate("short".into(), 10), "short");
        assert_eq!(
            super::truncate("an interactive sky atlas".into(), 18),
            "an interactive sky…"
        );
    }

    #[test]
    fn every_template_compiles() {
        assert!(super::environment().is_ok());
    }
}
