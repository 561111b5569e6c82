//! Sharing a running lab: its owner names users who may use it through
//! the lab proxy, each with sessions of their own. The proxy's route
//! carries the list and admits those users on every request and
//! WebSocket upgrade; revoking a share removes it from the store (with the
//! user's proxy sessions in that lab), then from the route, then ends the
//! user's sessions in the proxy, closing their open WebSockets. A shared
//! user may open the lab, nothing else: stopping, sharing and the lab's
//! logs stay the owner's. Shares are loaded again at start, so a restart
//! changes nothing. With several server processes on one database, a
//! share is in the routes of the process that made it (and of every
//! process after its restart); a revocation holds at once for new
//! tickets everywhere (they are checked against the store) and reaches
//! another process's open sessions with its session recheck, as other
//! revocations do.

use std::collections::HashMap;

use insitu_domain::{LabId, LabState, UserId, Username};

use super::Labs;
use crate::clock::now;
use crate::error::Error;

/// A user connected to a lab through the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub user_id: String,
    /// Live proxy sessions (signed-in browsers).
    pub sessions: usize,
    /// Open WebSockets.
    pub websockets: usize,
}

/// Who a lab is shared with and who is connected to it.
#[derive(Debug, Clone, Default)]
pub struct Sharing {
    pub shared_with: Vec<Username>,
    /// Connected users by username (the owner among them), with their
    /// sessions and WebSockets.
    pub connected: Vec<(String, Connection)>,
}

impl Labs {
    /// Reads every share from the store (at start).
    pub async fn load_shares(&self) -> Result<(), Error> {
        let mut map: HashMap<LabId, Vec<UserId>> = HashMap::new();
        for (lab, user) in self.store.all_lab_shares().await? {
            map.entry(lab).or_default().push(user);
        }
        if let Ok(mut shares) = self.shares.write() {
            *shares = map;
        }
        Ok(())
    }

    /// The users a lab is shared with.
    pub(super) fn shared_with(&self, lab_id: &str) -> Vec<UserId> {
        self.shares
            .read()
            .ok()
            .and_then(|s| s.get(lab_id).cloned())
            .unwrap_or_default()
    }

    /// A lab the user owns or that is shared with them, as the store says
    /// (not this process's memory: another server process on the same
    /// database may have revoked the share).
    pub async fn own_or_shared(
        &self,
        user_id: &UserId,
        id: &LabId,
    ) -> Result<insitu_store::LabRecord, Error> {
        let not_found = || Error::LabNotFound(id.to_string());
        let lab = self.store.lab(id).await?.ok_or_else(not_found)?;
        if lab.user_id == *user_id
            || self
                .store
                .lab_shares(id)
                .await?
                .iter()
                .any(|(u, _)| u == user_id)
        {
            return Ok(lab);
        }
        Err(not_found())
    }

    /// The active labs shared with a user, newest first.
    pub async fn shared_with_me(
        &self,
        user_id: &UserId,
    ) -> Result<Vec<insitu_store::LabRecord>, Error> {
        let mut labs = Vec::new();
        for id in self.store.labs_shared_with(user_id).await? {
            if let Some(lab) = self.store.lab(&id).await?
                && LabState::ACTIVE.contains(&lab.state)
            {
                labs.push(lab);
            }
        }
        Ok(labs)
    }

    /// Shares one of the owner's active labs with user `username` (again:
    /// no change).
    pub async fn share(
        &self,
        owner: &UserId,
        owner_name: &str,
        id: &LabId,
        username: &str,
    ) -> Result<Sharing, Error> {
        let lab = self.own(owner, id).await?;
        if !LabState::ACTIVE.contains(&lab.state) {
            return Err(Error::LabNotRunning {
                id: lab.id,
                state: lab.state,
            });
        }
        let user = self.user_named(username).await?;
        if user.id == *owner {
            return Err(Error::ShareWithYourself);
        }
        if user.disabled {
            return Err(Error::UserDisabled(user.username.to_string()));
        }
        self.store.add_lab_share(id, &user.id, now()).await?;
        if let Ok(mut shares) = self.shares.write() {
            let users = shares.entry(id.clone()).or_default();
            if !users.contains(&user.id) {
                users.push(user.id.clone());
            }
        }
        tracing::info!(lab = %id, with = %user.username, "lab shared");
        self.sharing(owner, owner_name, id).await
    }

    /// Stops sharing one of the owner's labs with `username`: they are cut
    /// off at once, open WebSockets included, and after a restart too.
    pub async fn unshare(&self, owner: &UserId, id: &LabId, username: &str) -> Result<(), Error> {
        let lab = self.own(owner, id).await?;
        let not_shared = || Error::ShareNotFound(username.to_owned());
        let user = self.user_named(username).await.map_err(|_| not_shared())?;
        // The store first: no server process honours the share or the
        // user's sessions in this lab from here on, even after a restart.
        let was = self.store.remove_lab_share(&lab.id, &user.id).await?;
        if let Ok(mut shares) = self.shares.write()
            && let Some(users) = shares.get_mut(&lab.id)
        {
            users.retain(|u| u != &user.id);
        }
        if let Some(proxy) = self.proxy.get() {
            proxy.revoke_lab_user(&lab.id, &user.id);
        }
        if !was {
            return Err(not_shared());
        }
        tracing::info!(lab = %id, with = %user.username, "lab no longer shared");
        Ok(())
    }

    /// Who one of the owner's labs is shared with and who is connected.
    pub async fn sharing(
        &self,
        owner: &UserId,
        owner_name: &str,
        id: &LabId,
    ) -> Result<Sharing, Error> {
        let lab = self.own(owner, id).await?;
        let shared = self.store.lab_shares(&lab.id).await?;
        let connections = self
            .proxy
            .get()
            .map(|p| p.connected(&lab.id))
            .unwrap_or_default();
        let name_of = |user_id: &str| {
            if user_id == owner.as_str() {
                return Some(owner_name.to_owned());
            }
            shared
                .iter()
                .find(|(u, _)| u.as_str() == user_id)
                .map(|(_, name)| name.to_string())
        };
        Ok(Sharing {
            connected: connections
                .into_iter()
                .filter_map(|c| Some((name_of(&c.user_id)?, c)))
                .collect(),
            shared_with: shared.into_iter().map(|(_, name)| name).collect(),
        })
    }

    async fn user_named(&self, username: &str) -> Result<insitu_store::UserRecord, Error> {
        let not_found = || Error::UserNotFound(username.to_owned());
        let name: Username = username.parse().map_err(|_| not_found())?;
        self.store
            .user_by_username(&name)
            .await?
            .ok_or_else(not_found)
    }
}
