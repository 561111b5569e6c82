//! A lab's own secret: generated at launch for a tool that takes one (the
//! datalab's `launch.credential`), given to the tool in its environment
//! only, and presented by the lab proxy on every request it forwards, so
//! that code reaching the tool's port any other way (another lab on the
//! same network, a process of the host) is refused by the tool itself.
//!
//! It is kept, with the form the tool takes it in, in a file of mode 0600
//! in the lab's directory under the data directory (which no sandbox
//! sees), so that a lab adopted after a restart gets its credential back;
//! never in the database, a log or a command line. `Debug` never shows it.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use insitu_domain::ToolCredential;

/// The variable every tool that takes a secret finds it in.
pub const SECRET_VARIABLE: &str = "INSITU_LAB_SECRET";

/// 256 random bits as 64 lowercase hex digits. `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct ToolSecret(Arc<str>);

impl ToolSecret {
    pub fn generate() -> ToolSecret {
        let bytes: [u8; 32] = rand::random();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        ToolSecret(hex.into())
    }

    /// The secret itself, for the tool's environment and the proxy.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ToolSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ToolSecret(..)")
    }
}

/// What a lab's tool demands of every request: its secret, in its form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolAccess {
    pub form: ToolCredential,
    pub secret: ToolSecret,
}

/// Why a lab's secret could not be kept or read back.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot write the lab's secret: {0}")]
    Write(std::io::Error),
    #[error("cannot read the lab's secret: {0}")]
    Read(std::io::Error),
    #[error("the lab's secret file is not in the expected form")]
    Malformed,
}

impl ToolAccess {
    /// A new secret for a tool that takes one in `form`; `None` for a tool
    /// that takes none.
    pub fn generate(form: ToolCredential) -> Option<ToolAccess> {
        form.requires_secret().then(|| ToolAccess {
            form,
            secret: ToolSecret::generate(),
        })
    }

    /// The `Authorization` value the tool expects (what the readiness
    /// probe sends; the proxy builds the same from the form and secret).
    pub fn authorization(&self) -> Option<String> {
        let secret = self.secret.expose();
        match self.form {
            ToolCredential::None => None,
            ToolCredential::JupyterToken => Some(format!("token {secret}")),
            ToolCredential::Bearer => Some(format!("Bearer {secret}")),
            ToolCredential::Basic => {
                let pair = format!("{}:{secret}", ToolCredential::BASIC_USER);
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))
            }
        }
    }

    /// Writes `<form> <secret>` to a new file readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), SecretFileError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(SecretFileError::Write)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(SecretFileError::Write)?;
        writeln!(file, "{} {}", self.form, self.secret.expose()).map_err(SecretFileError::Write)
    }

    /// Reads back what [`ToolAccess::save`] wrote; `None` when there is no
    /// file (a tool that takes no secret).
    pub fn load(path: &Path) -> Result<Option<ToolAccess>, SecretFileError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SecretFileError::Read(e)),
        };
        let (form, secret) = text
            .trim_end()
            .split_once(' ')
            .ok_or(SecretFileError::Malformed)?;
        let form: ToolCredential = form.parse().map_err(|_| SecretFileError::Malformed)?;
        let valid = secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit());
        if !form.requires_secret() || !valid {
            return Err(SecretFileError::Malformed);
        }
        Ok(Some(ToolAccess {
            form,
            secret: ToolSecret(secret.into()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_secret_is_kept_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab/secret");
        assert!(ToolAccess::generate(ToolCredential::None).is_none());
        let access = ToolAccess::generate(ToolCredential::JupyterToken).unwrap();
        assert_ne!(
            access.secret,
            ToolAccess::generate(ToolCredential::JupyterToken)
                .unwrap()
                .secret
        );
        assert!(!format!("{access:?}").contains(access.secret.expose()));
        access.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(ToolAccess::load(&path).unwrap(), Some(access));
        assert!(
            ToolAccess::load(&dir.path().join("none"))
                .unwrap()
                .is_none()
        );
        std::fs::write(&path, "basic short\n").unwrap();
        assert!(matches!(
            ToolAccess::load(&path),
            Err(SecretFileError::Malformed)
        ));
    }

    #[test]
    fn the_probe_presents_the_secret_in_the_tools_form() {
        let secret = ToolSecret("0123456789abcdef0123456789abcdef".into());
        let access = |form| ToolAccess {
            form,
            secret: secret.clone(),
        };
        assert_eq!(
            access(ToolCredential::JupyterToken)
                .authorization()
                .unwrap(),
            "token 0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            access(ToolCredential::Bearer).authorization().unwrap(),
            "Bearer 0123456789abcdef0123456789abcdef"
        );
        // The same value the proxy's `LabCredential::basic("insitu", …)` sends.
        assert_eq!(
            access(ToolCredential::Basic).authorization().unwrap(),
            "Basic aW5zaXR1OjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVm"
        );
    }
}
