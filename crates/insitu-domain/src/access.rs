//! Access requests: a stranger applies for an account (name, e-mail,
//! affiliation, reason, the username they would like), waits in the
//! waiting list, and a moderator approves or denies the application with
//! a message. Here are the application's checks and the request's states;
//! what they do lives in the platform's services.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::name::{NameError, Username};

/// Where an access request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccessState {
    /// In the waiting list, for a moderator to decide.
    Waiting,
    /// Approved: the account exists; the applicant sets its password.
    Approved,
    /// Denied, with the moderator's message.
    Denied,
}

impl AccessState {
    pub const ALL: [AccessState; 3] = [
        AccessState::Waiting,
        AccessState::Approved,
        AccessState::Denied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccessState::Waiting => "waiting",
            AccessState::Approved => "approved",
            AccessState::Denied => "denied",
        }
    }
}

impl fmt::Display for AccessState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown access request state {0:?}: expected waiting, approved or denied")]
pub struct UnknownAccessState(pub String);

impl FromStr for AccessState {
    type Err = UnknownAccessState;
    fn from_str(s: &str) -> Result<Self, UnknownAccessState> {
        AccessState::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownAccessState(s.to_owned()))
    }
}

/// Longest name, in characters.
pub const MAX_NAME: usize = 100;
/// Longest e-mail address, in characters (RFC 5321's path limit).
pub const MAX_EMAIL: usize = 254;
/// Longest affiliation, in characters.
pub const MAX_AFFILIATION: usize = 200;
/// Longest reason, in characters.
pub const MAX_REASON: usize = 2000;
/// Longest moderator's message, in characters.
pub const MAX_MESSAGE: usize = 2000;

/// What is wrong with an application; the text names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplicationError {
    #[error("{field} is required")]
    Missing { field: &'static str },
    #[error("{field} is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("{field} holds control characters")]
    ControlCharacters { field: &'static str },
    #[error("the e-mail address is not of the form name@domain.example")]
    Email,
    #[error("the username is not valid: {0}")]
    Username(NameError),
}

/// An application as checked: every field trimmed, within its length,
/// free of control characters (the reason may hold line breaks and tabs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub name: String,
    /// As typed, trimmed; compared in lowercase.
    pub email: String,
    pub affiliation: String,
    pub reason: String,
    pub username: Username,
}

/// A free-text field, trimmed and checked.
pub fn text_field(
    field: &'static str,
    raw: &str,
    max: usize,
    required: bool,
    multiline: bool,
) -> Result<String, ApplicationError> {
    let value = raw.trim();
    if required && value.is_empty() {
        return Err(ApplicationError::Missing { field });
    }
    if value.chars().count() > max {
        return Err(ApplicationError::TooLong { field, max });
    }
    let allowed = |c: char| multiline && (c == '\n' || c == '\t' || c == '\r');
    // Bidirectional overrides and zero-width marks can disguise a name on a
    // moderator's page; refused like control characters.
    let hidden = |c: char| matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}');
    if value
        .chars()
        .any(|c| (c.is_control() && !allowed(c)) || hidden(c))
    {
        return Err(ApplicationError::ControlCharacters { field });
    }
    Ok(value.to_owned())
}

fn email(raw: &str) -> Result<String, ApplicationError> {
    let value = text_field("e-mail", raw, MAX_EMAIL, true, false)?;
    let Some((local, domain)) = value.rsplit_once('@') else {
        return Err(ApplicationError::Email);
    };
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && !local
            .chars()
            .any(|c| c.is_whitespace() || "<>()[]\\,;:\"".contains(c));
    if !domain_ok || !local_ok {
        return Err(ApplicationError::Email);
    }
    Ok(value)
}

impl Application {
    /// Checks what a stranger typed into the form.
    pub fn parse(
        name: &str,
        email_address: &str,
        affiliation: &str,
        reason: &str,
        username: &str,
    ) -> Result<Application, ApplicationError> {
        Ok(Application {
            name: text_field("name", name, MAX_NAME, true, false)?,
            email: email(email_address)?,
            affiliation: text_field("affiliation", affiliation, MAX_AFFILIATION, false, false)?,
            reason: text_field("reason", reason, MAX_REASON, true, true)?,
            username: username
                .trim()
                .parse()
                .map_err(ApplicationError::Username)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Result<Application, ApplicationError> {
        Application::parse(
            " Ada Lovelace ",
            "ada@example.org",
            "",
            "Light curves\nof variable stars",
            "ada",
        )
    }

    #[test]
    fn a_good_application_is_trimmed() {
        let a = ok().unwrap();
        assert_eq!(a.name, "Ada Lovelace");
        assert_eq!(a.username.as_str(), "ada");
        assert!(a.reason.contains('\n'));
    }

    #[test]
    fn bad_fields_are_named() {
        let long = "x".repeat(MAX_NAME + 1);
        assert_eq!(
            Application::parse(&long, "a@b.c", "", "r", "ada"),
            Err(ApplicationError::TooLong {
                field: "name",
                max: MAX_NAME
            })
        );
        for bad in [
            "", "a", "a@b", "@b.c", "a b@c.d", "a@b..", "<a>@b.c", "a@b_c.d",
        ] {
            assert!(
                Application::parse("A", bad, "", "r", "ada").is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            Application::parse("A\u{202e}B", "a@b.c", "", "r", "ada"),
            Err(ApplicationError::ControlCharacters { field: "name" })
        );
        assert_eq!(
            Application::parse("A", "a@b.c", "x\ny", "r", "ada"),
            Err(ApplicationError::ControlCharacters {
                field: "affiliation"
            })
        );
        assert!(matches!(
            Application::parse("A", "a@b.c", "", "r", "Not A Name"),
            Err(ApplicationError::Username(_))
        ));
        assert_eq!(
            Application::parse("A", "a@b.c", "", "  ", "ada"),
            Err(ApplicationError::Missing { field: "reason" })
        );
    }

    #[test]
    fn states_round_trip() {
        for s in AccessState::ALL {
            assert_eq!(s.as_str().parse::<AccessState>(), Ok(s));
        }
        assert!("enrolled".parse::<AccessState>().is_err());
    }
}
