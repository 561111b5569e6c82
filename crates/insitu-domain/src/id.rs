//! Ids of records: a lab, a user, an API token. Each is its own type, so one
//! cannot be passed where another is meant; each is parsed once where it
//! comes in (a URL, a database row) and trusted afterwards.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

/// Why an id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an id is 1 to 64 ASCII letters, digits, '-' or '_'")]
pub struct IdError;

fn check(s: &str) -> Result<(), IdError> {
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(IdError) }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(String);

        impl $ty {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $ty {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                check(s)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $ty {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                check(&s)?;
                Ok(Self(s))
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

        /// Maps keyed by this id can be searched with a plain `&str`.
        impl Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A lab's id: random, 12 lowercase hex digits for labs made here.
    LabId
);
id_type!(
    /// A user's id (a UUID), never shown to people: they see the username.
    UserId
);
id_type!(
    /// A pipeline run's id: random, 12 lowercase hex digits for runs made
    /// here.
    RunId
);
id_type!(
    /// A personal API token's id (a UUID); the token's secret is another
    /// thing, never stored.
    TokenId
);

id_type!(
    /// An access request's id (a UUIDv7, so ids sort in the order of
    /// application); moderators see it, the applicant holds a secret
    /// link instead.
    AccessRequestId
);

impl AccessRequestId {
    /// The id of this UUID.
    pub fn from_uuid(value: u128) -> AccessRequestId {
        AccessRequestId(uuid_text(value))
    }
}

impl LabId {
    /// The id made of these random bytes, in lowercase hex.
    pub fn from_random(bytes: [u8; 6]) -> LabId {
        LabId(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }
}

impl RunId {
    /// The id made of these random bytes, in lowercase hex.
    pub fn from_random(bytes: [u8; 6]) -> RunId {
        RunId(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// A UUID as UUIDs are written: `8-4-4-4-12` lowercase hex digits.
fn uuid_text(value: u128) -> String {
    let hex = format!("{value:032x}");
    [
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..],
    ]
    .join("-")
}

impl UserId {
    /// The id of this UUID.
    pub fn from_uuid(value: u128) -> UserId {
        UserId(uuid_text(value))
    }
}

impl TokenId {
    /// The id of this UUID.
    pub fn from_uuid(value: u128) -> TokenId {
        TokenId(uuid_text(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_what_could_leave_a_path_or_a_url() {
        for ok in [
            "a1b2c3d4e5f6",
            "0190c0de-7a6b-7c3e-9d2f-000000000001",
            "lab_1",
        ] {
            assert!(ok.parse::<LabId>().is_ok(), "{ok}");
        }
        for bad in ["", "../x", "a/b", "a b", "é", &"x".repeat(65)] {
            assert_eq!(bad.parse::<UserId>(), Err(IdError), "{bad}");
        }
    }

    #[test]
    fn ids_of_uuids_are_written_as_uuids() {
        let id = TokenId::from_uuid(0x0190_c0de_7a6b_7c3e_9d2f_0000_0000_0001);
        assert_eq!(id.as_str(), "0190c0de-7a6b-7c3e-9d2f-000000000001");
        assert_eq!(
            UserId::from_uuid(0)
                .as_str()
                .parse::<UserId>()
                .map(|u| u.to_string()),
            Ok("00000000-0000-0000-0000-000000000000".to_owned())
        );
    }

    #[test]
    fn random_lab_ids_are_hex() {
        let id = LabId::from_random([0, 1, 0xab, 0xcd, 0xef, 0xff]);
        assert_eq!(id.as_str(), "0001abcdefff");
        assert_eq!(id.as_str().parse::<LabId>(), Ok(id));
    }
}
