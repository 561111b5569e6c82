//! Roles, ordered by what they may do: each role may do everything the roles
//! below it may.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Launches datalabs, runs pipelines, manages their own volumes and workspace.
    User,
    /// A user who also builds and shares datalabs and pipelines.
    Developer,
    /// A developer who also reviews submissions and access requests.
    Moderator,
    /// Runs the platform: accounts, roles, catalogue health.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::User, Role::Developer, Role::Moderator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Developer => "developer",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }

    /// Whether a holder of `self` may do what requires `required`.
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected one of user, developer, moderator, admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Admin.allows(Role::Moderator));
        assert!(Role::Moderator.allows(Role::Developer));
        assert!(Role::Developer.allows(Role::User));
        assert!(!Role::User.allows(Role::Developer));
        assert!(!Role::Moderator.allows(Role::Admin));
    }

    #[test]
    fn roles_round_trip_through_text() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
