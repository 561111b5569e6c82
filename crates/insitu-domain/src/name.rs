//! Names of things users type and read: usernames, datalab and volume names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must be between {min} and {max} characters long")]
    Length { min: usize, max: usize },
    #[error("must start with a lowercase letter")]
    Start,
    #[error("may only contain lowercase letters, digits, '-' and '_' (found {0:?})")]
    Character(char),
    #[error("must not end with '-' or '_'")]
    End,
}

fn check(s: &str, min: usize, max: usize) -> Result<(), NameError> {
    let len = s.chars().count();
    if len < min || len > max {
        return Err(NameError::Length { min, max });
    }
    let mut chars = s.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_lowercase()) {
        return Err(NameError::Start);
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return Err(NameError::Character(c));
    }
    if s.ends_with('-') || s.ends_with('_') {
        return Err(NameError::End);
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $ty(String);

        impl $ty {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                check(s, $min, $max)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $ty {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                check(&s, $min, $max)?;
                Ok(Self(s))
            }
        }

        impl From<$ty> for String {
            fn from(n: $ty) -> String {
                n.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "minLength": $min,
                    "maxLength": $max,
                    "pattern": "^[a-z]([a-z0-9_-]*[a-z0-9])?$"
                })
            }
        }
    };
}

name_type!(
    /// A login name: 2–32 characters, lowercase letters, digits, `-`, `_`.
    Username, 2, 32
);
name_type!(
    /// The name of a catalogued thing (datalab, data volume, datazone, team):
    /// 1–64 characters, lowercase letters, digits, `-`, `_`. It appears in
    /// URLs and mount paths, so it never holds `/`, `.` or spaces.
    Name, 1, 64
);

impl Name {
    /// The name of this machine's sandbox zone ([`crate::zone::LOCAL_ZONE`]),
    /// which exists without configuration.
    pub fn local_zone() -> Name {
        Name(crate::zone::LOCAL_ZONE.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["jupyterlab", "ds9", "a", "gaia-dr3", "my_vol2"] {
            assert!(ok.parse::<Name>().is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_names_that_could_escape_a_path_or_url() {
        for bad in [
            "", "../etc", "a/b", "Upper", "dot.ted", "-lead", "trail-", "9start", "sp ace",
        ] {
            assert!(bad.parse::<Name>().is_err(), "{bad}");
        }
        assert_eq!(
            "a".parse::<Username>(),
            Err(NameError::Length { min: 2, max: 32 })
        );
        assert_eq!("ab/".parse::<Username>(), Err(NameError::Character('/')));
    }

    #[test]
    fn deserialization_validates() {
        let r: Result<Name, _> = serde_json_free_parse("\"../x\"");
        assert!(r.is_err());
    }

    fn serde_json_free_parse(s: &str) -> Result<Name, toml::de::Error> {
        #[derive(Deserialize)]
        struct W {
            n: Name,
        }
        toml::from_str::<W>(&format!("n = {s}")).map(|w| w.n)
    }
}
