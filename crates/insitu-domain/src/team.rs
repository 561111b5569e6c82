//! Teams: named groups of users sharing a team workspace. A member is an
//! owner (who invites, removes and changes roles) or a plain member; a
//! team always keeps at least one owner.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TeamRole {
    /// Invites and removes members, changes their roles.
    Owner,
    /// Uses the team workspace.
    Member,
}

impl TeamRole {
    pub const ALL: [TeamRole; 2] = [TeamRole::Owner, TeamRole::Member];

    pub fn as_str(self) -> &'static str {
        match self {
            TeamRole::Owner => "owner",
            TeamRole::Member => "member",
        }
    }
}

impl fmt::Display for TeamRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown team role {0:?}: expected owner or member")]
pub struct UnknownTeamRole(pub String);

impl FromStr for TeamRole {
    type Err = UnknownTeamRole;
    fn from_str(s: &str) -> Result<Self, UnknownTeamRole> {
        TeamRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownTeamRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_back_as_written() {
        for r in TeamRole::ALL {
            assert_eq!(r.as_str().parse::<TeamRole>(), Ok(r));
        }
        assert!("admin".parse::<TeamRole>().is_err());
    }
}
