//! Accounts reached through an OpenID provider: which account a provider's
//! identity is (linked by its subject, or by a verified e-mail address when
//! the operator allows it), a new account on first login when allowed, and
//! the role a provider's claim gives. The protocol (discovery, the
//! authorization code flow, the ID token's checks) is the web crate's; this
//! service sees only an identity whose token passed them.

use insitu_domain::{Role, UserId, Username};
use insitu_store::{NewUser, StoreError, UserRecord, UserUpdate};

use super::Accounts;
use crate::clock::now;
use crate::error::Error;

/// The password hash of an account made through a provider: no Argon2
/// string, so no password ever matches it.
const NO_PASSWORD: &str = "!oidc";

/// Who a provider says the caller is, from a checked ID token.
#[derive(Debug, Clone)]
pub struct ProviderIdentity {
    /// The provider's name in the configuration.
    pub provider: String,
    /// The provider's `sub`: stable and unique within the provider.
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub preferred_username: Option<String>,
}

/// What the operator allows for a provider.
#[derive(Debug, Clone, Copy)]
pub struct LinkPolicy {
    /// Link an unlinked identity to the account with its e-mail address,
    /// when the provider says the address is verified.
    pub link_by_email: bool,
    /// Create an account for an identity no account is linked to.
    pub create_accounts: bool,
    /// The role the provider's claim gives (set when a roles claim is
    /// configured): applied at every login, so the provider stays the
    /// source of truth.
    pub role: Option<Role>,
}

impl Accounts {
    /// The account a provider's identity logs in as, linking or creating
    /// it as the policy allows. A disabled account is refused, as at the
    /// password login.
    pub async fn provider_login(
        &self,
        id: &ProviderIdentity,
        policy: LinkPolicy,
    ) -> Result<UserRecord, Error> {
        let user = match self
            .store
            .user_by_identity(&id.provider, &id.subject)
            .await?
        {
            Some(user) => user,
            None => self.link_or_create(id, policy).await?,
        };
        if user.disabled {
            return Err(Error::AccountDisabled);
        }
        let user = match policy.role {
            Some(role) if role != user.role => self.apply_role(user, role).await?,
            _ => user,
        };
        self.store.record_login(&user.id, now()).await?;
        Ok(user)
    }

    async fn link_or_create(
        &self,
        id: &ProviderIdentity,
        policy: LinkPolicy,
    ) -> Result<UserRecord, Error> {
        let email = id.email.as_deref().filter(|e| !e.is_empty());
        if policy.link_by_email
            && let Some(email) = email
            && let Some(user) = self.store.user_by_email(email).await?
        {
            if !id.email_verified {
                return Err(Error::ProviderEmailUnverified {
                    provider: id.provider.clone(),
                });
            }
            return self.link(id, user).await;
        }
        if !policy.create_accounts {
            return Err(Error::ProviderNotLinked {
                provider: id.provider.clone(),
            });
        }
        let user = self
            .create_provider_account(id, policy.role.unwrap_or(Role::User))
            .await?;
        // Only a verified address is the account's own; one another
        // account has already stays that account's.
        if let (Some(email), true) = (email, id.email_verified) {
            match self.store.set_user_email(&user.id, Some(email)).await {
                Ok(()) | Err(StoreError::EmailTaken(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        tracing::info!(username = %user.username, provider = %id.provider, "account created on first login through an OpenID provider");
        self.link(id, user).await
    }

    /// Links the identity to `user`; when another login linked it first,
    /// the account it was linked to wins.
    async fn link(&self, id: &ProviderIdentity, user: UserRecord) -> Result<UserRecord, Error> {
        if self
            .store
            .link_identity(&id.provider, &id.subject, &user.id, now())
            .await?
        {
            tracing::info!(username = %user.username, provider = %id.provider, "provider identity linked");
            return Ok(user);
        }
        self.store
            .user_by_identity(&id.provider, &id.subject)
            .await?
            .ok_or(Error::AccountGone)
    }

    /// A new account named after the identity: its preferred username, else
    /// its e-mail address's local part, else the provider's name, made to
    /// fit the naming rules, with a number added while the name is taken.
    async fn create_provider_account(
        &self,
        id: &ProviderIdentity,
        role: Role,
    ) -> Result<UserRecord, Error> {
        let stem = [
            id.preferred_username.as_deref(),
            id.email.as_deref().and_then(|e| e.split('@').next()),
            Some(id.provider.as_str()),
        ]
        .into_iter()
        .flatten()
        .map(username_stem)
        .find(|s| s.len() >= 2)
        .unwrap_or_else(|| "user".to_owned());
        for n in 1..=100u32 {
            let candidate = if n == 1 {
                stem.clone()
            } else {
                format!("{stem}-{n}")
            };
            let Ok(username) = candidate.parse::<Username>() else {
                continue;
            };
            match self
                .store
                .create_user(NewUser {
                    username,
                    password_hash: NO_PASSWORD.to_owned(),
                    role,
                    now: now(),
                })
                .await
            {
                Ok(user) => return Ok(user),
                Err(StoreError::UsernameTaken(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::UsernameTaken(stem))
    }

    /// Gives `user` the role the provider's claim says; a change that would
    /// leave no active administrator is not made (and logged).
    async fn apply_role(&self, user: UserRecord, role: Role) -> Result<UserRecord, Error> {
        match self.store.update_user(&user.id, Some(role), None).await? {
            UserUpdate::Done => {
                tracing::info!(username = %user.username, from = %user.role, to = %role, "role set from the provider's claim");
                self.evict_user(&user.id);
                Ok(UserRecord { role, ..user })
            }
            UserUpdate::WouldLeaveNoAdmin => {
                tracing::warn!(username = %user.username, to = %role, "role from the provider's claim not applied: it would leave no active administrator");
                Ok(user)
            }
        }
    }

    /// Sets or removes an account's e-mail address (an administrator's
    /// act), which a provider's verified address may link to.
    pub async fn set_email(&self, user_id: &UserId, email: Option<&str>) -> Result<(), Error> {
        let email = email.map(str::trim).filter(|e| !e.is_empty());
        if let Some(e) = email
            && !valid_email(e)
        {
            return Err(Error::InvalidEmail(e.to_owned()));
        }
        match self.store.set_user_email(user_id, email).await {
            Ok(()) => Ok(()),
            Err(StoreError::EmailTaken(e)) => Err(Error::EmailTaken(e)),
            Err(e) => Err(e.into()),
        }
    }

    /// An account's e-mail address.
    pub async fn email(&self, user_id: &UserId) -> Result<Option<String>, Error> {
        Ok(self.store.user_email(user_id).await?)
    }
}

/// `local@domain`, printable, no spaces, at most 254 characters.
fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    e.len() <= 254
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && e.chars().all(|c| c.is_ascii_graphic() || !c.is_ascii())
}

/// A name made to fit the username rules: lower case, letters, digits,
/// `-` and `_`, 32 characters at most.
fn username_stem(name: &str) -> String {
    let s: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-');
    s.chars().take(28).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_to_fit_the_rules() {
        assert_eq!(username_stem("Alice Smith"), "alice-smith");
        assert_eq!(username_stem("bob.jones"), "bob-jones");
        assert_eq!(username_stem("..x"), "x");
        assert_eq!(username_stem(&"a".repeat(40)).len(), 28);
        assert!(valid_email("a@b.org"));
        assert!(!valid_email("no-at"));
        assert!(!valid_email("a b@c"));
        assert!(!valid_email("a@b@c"));
    }
}
