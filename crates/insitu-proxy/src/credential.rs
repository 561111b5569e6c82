//! The credential a lab's tool demands of every request, which only the
//! proxy knows and presents: browsers never see it, and a browser's own
//! `Authorization` never reaches a lab that has one.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use http::HeaderValue;

/// Shortest and longest secret accepted by [`LabSecret::new`].
const SECRET_LEN: std::ops::RangeInclusive<usize> = 32..=256;

/// A lab's own secret: random, URL- and command-line-safe text that the
/// tool is started with and the proxy presents. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct LabSecret(Arc<str>);

/// Why a secret or credential was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The secret is not 32 to 256 ASCII letters, digits, `-` or `_`.
    #[error("a lab secret is 32 to 256 ASCII letters, digits, '-' or '_'")]
    InvalidSecret,
    /// A Basic user name holds `:` or characters other than visible ASCII.
    #[error("a Basic user name is visible ASCII without ':'")]
    InvalidUser,
}

impl LabSecret {
    /// 256 random bits as 64 lowercase hex digits.
    pub fn generate() -> LabSecret {
        let (_, secret) = crate::sessions::Secret::generate();
        LabSecret(secret.into_string().into())
    }

    /// A secret kept from before (a lab adopted after a restart).
    pub fn new(secret: impl Into<String>) -> Result<LabSecret, CredentialError> {
        let secret = secret.into();
        let valid = SECRET_LEN.contains(&secret.len())
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(LabSecret(secret.into()))
        } else {
            Err(CredentialError::InvalidSecret)
        }
    }

    /// The secret itself, to start the tool with.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LabSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LabSecret(..)")
    }
}

/// The `Authorization` value the proxy adds to every request and WebSocket
/// upgrade it forwards to a lab, in the form the lab's tool requires.
/// `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct LabCredential {
    authorization: HeaderValue,
}

impl LabCredential {
    /// `token <secret>`: JupyterLab started with the secret as
    /// `IdentityProvider.token` (or `JUPYTER_TOKEN`).
    pub fn jupyter_token(secret: &LabSecret) -> LabCredential {
        LabCredential::from_text(&format!("token {}", secret.expose()))
    }

    /// `Basic base64(user:secret)`: websockify started with
    /// `--auth-plugin BasicHTTPAuth --auth-source user:<secret>` (and
    /// `--web-auth` so that its files need it too).
    pub fn basic(user: &str, secret: &LabSecret) -> Result<LabCredential, CredentialError> {
        if user.is_empty() || user.contains(':') || !user.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CredentialError::InvalidUser);
        }
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", secret.expose()));
        Ok(LabCredential::from_text(&format!("Basic {encoded}")))
    }

    /// `Bearer <secret>`: tools that take a bearer token.
    pub fn bearer(secret: &LabSecret) -> LabCredential {
        LabCredential::from_text(&format!("Bearer {}", secret.expose()))
    }

    /// Only called with a scheme, a space and header-safe ASCII.
    fn from_text(text: &str) -> LabCredential {
        let mut authorization =
            HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
        authorization.set_sensitive(true);
        LabCredential { authorization }
    }

    pub(crate) fn header(&self) -> &HeaderValue {
        &self.authorization
    }
}

impl fmt::Debug for LabCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self
            .authorization
            .as_bytes()
            .split(|&b| b == b' ')
            .next()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        write!(f, "LabCredential({scheme} ..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_checked_and_never_shown() {
        let a = LabSecret::generate();
        let b = LabSecret::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 64);
        assert_eq!(format!("{a:?}"), "LabSecret(..)");
        assert_eq!(LabSecret::new(a.expose()).unwrap(), a);
        for bad in [
            "short",
            &"x".repeat(257),
            &format!("{}!", "x".repeat(40)),
            &format!("{} ", "x".repeat(40)),
        ] {
            assert_eq!(
                LabSecret::new(bad),
                Err(CredentialError::InvalidSecret),
                "{bad}"
            );
        }
    }

    #[test]
    fn credentials_take_the_form_the_tool_requires() {
        let secret = LabSecret::new("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(
            LabCredential::jupyter_token(&secret).header(),
            "token 0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            LabCredential::bearer(&secret).header(),
            "Bearer 0123456789abcdef0123456789abcdef"
        );
        // echo -n 'insitu:0123456789abcdef0123456789abcdef' | base64
        assert_eq!(
            LabCredential::basic("insitu", &secret).unwrap().header(),
            "Basic aW5zaXR1OjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVm"
        );
        assert!(LabCredential::basic("a:b", &secret).is_err());
        assert!(LabCredential::basic("", &secret).is_err());
        let credential = LabCredential::basic("insitu", &secret).unwrap();
        assert!(credential.header().is_sensitive());
        let shown = format!("{credential:?}");
        assert_eq!(shown, "LabCredential(Basic ..)");
    }
}
