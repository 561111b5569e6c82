//! Who may see a catalogued thing (a data volume today; datalabs and
//! pipelines that users publish privately later): everyone, or only the
//! holders of the listed grants. Each grant and each viewer is reduced to
//! *keys* (`public`, `user:alice`, `role:developer`, `team:gaia-dpac`); a
//! viewer sees a thing when they share a key with it. The search index
//! filters on the same keys, so what [`Audience::admits`] says and what a
//! search finds cannot differ.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::name::{Name, NameError, Username};
use crate::role::{Role, UnknownRole};

/// The key every viewer holds and every public thing carries.
pub const PUBLIC_KEY: &str = "public";

/// One entry of a restricted audience.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Grant {
    /// The one who published it (datalabs and pipelines of users, later).
    Owner(Username),
    /// A named user.
    User(Username),
    /// Everyone whose role is at least this one (`role:developer` admits
    /// developers, moderators and administrators).
    Role(Role),
    /// The members of a team.
    Team(Name),
}

/// Why a grant was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("{0:?} is not a grant: write user:<name>, owner:<name>, role:<role> or team:<name>")]
    Form(String),
    #[error("{grant:?}: the name {reason}")]
    Name { grant: String, reason: NameError },
    #[error("{grant:?}: {reason}")]
    Role { grant: String, reason: UnknownRole },
}

impl FromStr for Grant {
    type Err = GrantError;
    fn from_str(s: &str) -> Result<Grant, GrantError> {
        let (kind, value) = s
            .split_once(':')
            .ok_or_else(|| GrantError::Form(s.to_owned()))?;
        let name_err = |reason| GrantError::Name {
            grant: s.to_owned(),
            reason,
        };
        match kind {
            "user" => value.parse().map(Grant::User).map_err(name_err),
            "owner" => value.parse().map(Grant::Owner).map_err(name_err),
            "team" => value.parse().map(Grant::Team).map_err(name_err),
            "role" => value
                .parse()
                .map(Grant::Role)
                .map_err(|reason| GrantError::Role {
                    grant: s.to_owned(),
                    reason,
                }),
            _ => Err(GrantError::Form(s.to_owned())),
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grant::Owner(u) => write!(f, "owner:{u}"),
            Grant::User(u) => write!(f, "user:{u}"),
            Grant::Role(r) => write!(f, "role:{r}"),
            Grant::Team(t) => write!(f, "team:{t}"),
        }
    }
}

impl Grant {
    /// The key a viewer must hold to be admitted by this grant.
    pub fn key(&self) -> String {
        match self {
            // An owner is seen through the same key as a named user.
            Grant::Owner(u) | Grant::User(u) => format!("user:{u}"),
            Grant::Role(r) => format!("role:{r}"),
            Grant::Team(t) => format!("team:{t}"),
        }
    }
}

/// Who may see something: everyone, or only the holders of its grants.
/// It is written as the configuration writes it: no list for everyone, or
/// the list of grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Option<Vec<String>>", into = "Option<Vec<String>>")]
pub enum Audience {
    #[default]
    Public,
    /// Only these (an empty list admits nobody).
    Only(Vec<Grant>),
}

impl Audience {
    /// Parses a configuration's `visible_to` list: absent means public.
    pub fn parse(visible_to: Option<&[String]>) -> Result<Audience, GrantError> {
        match visible_to {
            None => Ok(Audience::Public),
            Some(list) => list
                .iter()
                .map(|g| g.parse())
                .collect::<Result<Vec<Grant>, _>>()
                .map(Audience::Only),
        }
    }

    pub fn is_public(&self) -> bool {
        matches!(self, Audience::Public)
    }

    /// The keys this audience is indexed under.
    pub fn keys(&self) -> Vec<String> {
        match self {
            Audience::Public => vec![PUBLIC_KEY.to_owned()],
            Audience::Only(grants) => {
                let mut keys: Vec<String> = grants.iter().map(Grant::key).collect();
                keys.sort();
                keys.dedup();
                keys
            }
        }
    }

    /// Whether the viewer may see what this audience guards.
    pub fn admits(&self, viewer: &Viewer) -> bool {
        let held = viewer.keys();
        self.keys().iter().any(|k| held.contains(k))
    }

    /// The grants as written in the configuration (empty when public).
    pub fn grants(&self) -> Vec<String> {
        match self {
            Audience::Public => Vec::new(),
            Audience::Only(grants) => grants.iter().map(ToString::to_string).collect(),
        }
    }
}

impl TryFrom<Option<Vec<String>>> for Audience {
    type Error = GrantError;
    fn try_from(list: Option<Vec<String>>) -> Result<Audience, GrantError> {
        Audience::parse(list.as_deref())
    }
}

impl From<Audience> for Option<Vec<String>> {
    fn from(a: Audience) -> Option<Vec<String>> {
        (!a.is_public()).then(|| a.grants())
    }
}

/// Someone looking at the catalogues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub username: Username,
    pub role: Role,
    pub teams: Vec<Name>,
}

impl Viewer {
    pub fn new(username: Username, role: Role) -> Viewer {
        Viewer {
            username,
            role,
            teams: Vec::new(),
        }
    }

    /// The keys the viewer holds: `public`, their own `user:` key, a
    /// `role:` key for their role and every role below it, and their teams.
    pub fn keys(&self) -> Vec<String> {
        let mut keys = vec![PUBLIC_KEY.to_owned(), format!("user:{}", self.username)];
        keys.extend(
            Role::ALL
                .iter()
                .filter(|r| self.role.allows(**r))
                .map(|r| format!("role:{r}")),
        );
        keys.extend(self.teams.iter().map(|t| format!("team:{t}")));
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(name: &str, role: Role) -> Viewer {
        Viewer::new(name.parse().unwrap(), role)
    }

    #[test]
    fn grants_parse_and_print_as_written() {
        for g in [
            "user:alice",
            "owner:bob",
            "role:developer",
            "team:gaia-dpac",
        ] {
            assert_eq!(g.parse::<Grant>().unwrap().to_string(), g);
        }
        for bad in ["alice", "user:", "user:Alice", "role:boss", "group:x", ""] {
            assert!(bad.parse::<Grant>().is_err(), "{bad}");
        }
    }

    #[test]
    fn public_admits_everyone_and_restricted_only_its_grants() {
        let alice = viewer("alice", Role::User);
        let bob = viewer("bob", Role::User);
        let dev = viewer("dora", Role::Developer);
        let admin = viewer("root", Role::Admin);
        assert!(Audience::Public.admits(&bob));
        let list = ["user:alice".to_owned(), "role:developer".to_owned()];
        let a = Audience::parse(Some(&list)).unwrap();
        assert!(a.admits(&alice));
        assert!(!a.admits(&bob));
        assert!(a.admits(&dev));
        assert!(a.admits(&admin), "a role grant admits the roles above it");
        let only_alice = Audience::parse(Some(&["user:alice".to_owned()])).unwrap();
        assert!(!only_alice.admits(&admin), "administrators are not special");
        assert!(!Audience::Only(Vec::new()).admits(&alice));
        let mut team_member = viewer("carl", Role::User);
        team_member.teams.push("gaia-dpac".parse().unwrap());
        let team = Audience::parse(Some(&["team:gaia-dpac".to_owned()])).unwrap();
        assert!(team.admits(&team_member) && !team.admits(&alice));
        let owned = Audience::parse(Some(&["owner:alice".to_owned()])).unwrap();
        assert!(owned.admits(&alice) && !owned.admits(&bob));
        assert_eq!(Audience::parse(None).unwrap(), Audience::Public);
    }

    #[test]
    fn audiences_round_trip_through_serde() {
        let a = Audience::parse(Some(&["user:alice".to_owned()])).unwrap();
        let text = toml::to_string(&std::collections::BTreeMap::from([("a", a.clone())])).unwrap();
        let back: std::collections::BTreeMap<String, Audience> = toml::from_str(&text).unwrap();
        assert_eq!(back["a"], a);
        let nobody: Result<std::collections::BTreeMap<String, Audience>, _> =
            toml::from_str("a = [\"nobody\"]");
        assert!(nobody.is_err());
    }
}
