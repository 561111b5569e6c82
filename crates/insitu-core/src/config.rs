//! Settings of the platform's services, and what is wrong with them.

use insitu_domain::DefinitionError;

/// A setting that stops the platform from starting; the text names it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("data volume {name:?} in the configuration: {}", list(problems))]
    Volume {
        name: String,
        problems: Vec<DefinitionError>,
    },
    #[error("data volume {0:?} is defined twice")]
    VolumeTwice(String),
}

fn list(problems: &[DefinitionError]) -> String {
    let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
    list.join("; ")
}
