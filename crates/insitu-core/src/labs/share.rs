//! Sharing a running lab: its owner names users, or teams they belong to,
//! who may use it through the lab proxy, each with sessions of their own.
//! A team share admits the team's accepted members for as long as they
//! are members: the team service tells the [`ShareTable`] of every
//! membership change (accepting, leaving, removal, a team renamed or
//! deleted), and whoever lost their way in is cut off at once, open
//! WebSockets included. The proxy's route
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
use std::sync::{Arc, OnceLock, RwLock};

use insitu_domain::{LabId, LabState, Name, TeamRole, UserId, Username};
use insitu_store::Store;

use super::{LabProxy, Labs};
use crate::clock::now;
use crate::error::Error;

/// Who may use each shared lab besides its owner: named users, and the
/// accepted members of the teams it is shared with, as the store has
/// them; what the proxy's route carries.
pub struct ShareTable {
    store: Store,
    users: RwLock<HashMap<LabId, Vec<UserId>>>,
    teams: RwLock<HashMap<LabId, Vec<Name>>>,
    /// The accepted members of each team some lab is shared with.
    members: RwLock<HashMap<Name, Vec<UserId>>>,
    proxy: OnceLock<Arc<dyn LabProxy>>,
}

impl ShareTable {
    pub fn new(store: Store) -> ShareTable {
        ShareTable {
            store,
            users: RwLock::new(HashMap::new()),
            teams: RwLock::new(HashMap::new()),
            members: RwLock::new(HashMap::new()),
            proxy: OnceLock::new(),
        }
    }

    pub(super) fn set_proxy(&self, proxy: Arc<dyn LabProxy>) {
        let _ = self.proxy.set(proxy);
    }

    /// Everyone a lab is shared with: named users and the teams' members.
    pub fn audience(&self, lab_id: &str) -> Vec<UserId> {
        let mut out: Vec<UserId> = self
            .users
            .read()
            .ok()
            .and_then(|s| s.get(lab_id).cloned())
            .unwrap_or_default();
        let teams = self
            .teams
            .read()
            .ok()
            .and_then(|t| t.get(lab_id).cloned())
            .unwrap_or_default();
        if let Ok(members) = self.members.read() {
            for team in &teams {
                for user in members.get(team).into_iter().flatten() {
                    if !out.contains(user) {
                        out.push(user.clone());
                    }
                }
            }
        }
        out
    }

    async fn accepted_members(&self, team: &Name) -> Result<Vec<UserId>, Error> {
        Ok(self
            .store
            .team_members(team)
            .await?
            .into_iter()
            .filter(|m| m.accepted)
            .map(|m| m.user_id)
            .collect())
    }

    /// Reads every share and the shared teams' members from the store.
    async fn load(&self) -> Result<(), Error> {
        let mut users: HashMap<LabId, Vec<UserId>> = HashMap::new();
        for (lab, user) in self.store.all_lab_shares().await? {
            users.entry(lab).or_default().push(user);
        }
        let mut teams: HashMap<LabId, Vec<Name>> = HashMap::new();
        let mut members: HashMap<Name, Vec<UserId>> = HashMap::new();
        for (lab, team) in self.store.all_lab_team_shares().await? {
            if !members.contains_key(&team) {
                members.insert(team.clone(), self.accepted_members(&team).await?);
            }
            teams.entry(lab).or_default().push(team);
        }
        if let (Ok(mut u), Ok(mut t), Ok(mut m)) =
            (self.users.write(), self.teams.write(), self.members.write())
        {
            *u = users;
            *t = teams;
            *m = members;
        }
        Ok(())
    }

    /// The labs shared with a team, in this table.
    fn labs_of_team(&self, team: &Name) -> Vec<LabId> {
        self.teams
            .read()
            .map(|t| {
                t.iter()
                    .filter(|(_, teams)| teams.contains(team))
                    .map(|(lab, _)| lab.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Each lab's audience now, to compare after a change.
    fn audiences(&self, labs: &[LabId]) -> Vec<(LabId, Vec<UserId>)> {
        labs.iter()
            .map(|l| (l.clone(), self.audience(l.as_str())))
            .collect()
    }

    /// Cuts off whoever was in a lab's audience before and is not now
    /// (never its owner): their proxy sessions in the lab end, in the
    /// store and in the proxy, closing their WebSockets.
    async fn cut_off(&self, before: Vec<(LabId, Vec<UserId>)>) -> Result<(), Error> {
        for (lab, users) in before {
            let now_in = self.audience(lab.as_str());
            let owner = self.store.lab(&lab).await?.map(|l| l.user_id);
            for user in users {
                if now_in.contains(&user) || owner.as_ref() == Some(&user) {
                    continue;
                }
                self.store
                    .delete_proxy_sessions_of_lab_user(&lab, &user)
                    .await?;
                if let Some(proxy) = self.proxy.get() {
                    proxy.revoke_lab_user(&lab, &user);
                }
                tracing::info!(lab = %lab, user = %user, "no longer admitted to a shared lab");
            }
        }
        Ok(())
    }

    /// A team's membership changed (accepted, left, removed): its labs
    /// admit its members as they are now, and cut off who left.
    pub async fn team_changed(&self, team: &Name) -> Result<(), Error> {
        let labs = self.labs_of_team(team);
        if labs.is_empty() {
            return Ok(());
        }
        let before = self.audiences(&labs);
        let members = self.accepted_members(team).await?;
        if let Ok(mut m) = self.members.write() {
            m.insert(team.clone(), members);
        }
        self.cut_off(before).await
    }

    /// A team was deleted: its shares end, its members are cut off.
    pub async fn team_deleted(&self, team: &Name) -> Result<(), Error> {
        let labs = self.labs_of_team(team);
        let before = self.audiences(&labs);
        if let (Ok(mut t), Ok(mut m)) = (self.teams.write(), self.members.write()) {
            for teams in t.values_mut() {
                teams.retain(|x| x != team);
            }
            m.remove(team);
        }
        self.cut_off(before).await
    }

    /// A team was renamed: its shares go with it.
    pub fn team_renamed(&self, old: &Name, new: &Name) {
        if let (Ok(mut t), Ok(mut m)) = (self.teams.write(), self.members.write()) {
            for teams in t.values_mut() {
                for x in teams.iter_mut().filter(|x| *x == old) {
                    *x = new.clone();
                }
            }
            if let Some(members) = m.remove(old) {
                m.insert(new.clone(), members);
            }
        }
    }
}

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
    /// The teams it is shared with (their accepted members may use it).
    pub teams: Vec<Name>,
    /// Connected users by username (the owner among them), with their
    /// sessions and WebSockets.
    pub connected: Vec<(String, Connection)>,
}

impl Labs {
    /// Reads every share from the store (at start).
    pub async fn load_shares(&self) -> Result<(), Error> {
        self.shares.load().await
    }

    /// Everyone a lab is shared with (named users, and members of the
    /// teams it is shared with).
    pub(super) fn shared_with(&self, lab_id: &str) -> Vec<UserId> {
        self.shares.audience(lab_id)
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
            || self
                .store
                .labs_shared_with_teams_of(user_id)
                .await?
                .contains(id)
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
        let mut ids = self.store.labs_shared_with(user_id).await?;
        for id in self.store.labs_shared_with_teams_of(user_id).await? {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        for id in ids {
            if let Some(lab) = self.store.lab(&id).await?
                && lab.user_id != *user_id
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
        if let Ok(mut shares) = self.shares.users.write() {
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
        if let Ok(mut shares) = self.shares.users.write()
            && let Some(users) = shares.get_mut(&lab.id)
        {
            users.retain(|u| u != &user.id);
        }
        // Still a member of a team the lab is shared with: still admitted.
        if !self.shares.audience(lab.id.as_str()).contains(&user.id)
            && let Some(proxy) = self.proxy.get()
        {
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
        let mut shared = self.store.lab_shares(&lab.id).await?;
        let teams = self.store.lab_team_shares(&lab.id).await?;
        let named = shared.len();
        for team in &teams {
            for m in self.store.team_members(team).await? {
                if m.accepted && !shared.iter().any(|(u, _)| u == &m.user_id) {
                    shared.push((m.user_id, m.username));
                }
            }
        }
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
            shared_with: shared
                .into_iter()
                .take(named)
                .map(|(_, name)| name)
                .collect(),
            teams,
        })
    }

    /// Shares one of the owner's active labs with a team the owner is an
    /// accepted member of (again: no change): its accepted members may use
    /// it for as long as they are members.
    pub async fn share_with_team(
        &self,
        owner: &UserId,
        owner_name: &str,
        id: &LabId,
        team: &str,
    ) -> Result<Sharing, Error> {
        let lab = self.own(owner, id).await?;
        if !LabState::ACTIVE.contains(&lab.state) {
            return Err(Error::LabNotRunning {
                id: lab.id,
                state: lab.state,
            });
        }
        let team = self.team_of(owner, team).await?;
        self.store.add_lab_team_share(id, &team, now()).await?;
        let members = self.shares.accepted_members(&team).await?;
        if let (Ok(mut t), Ok(mut m)) = (self.shares.teams.write(), self.shares.members.write()) {
            let teams = t.entry(id.clone()).or_default();
            if !teams.contains(&team) {
                teams.push(team.clone());
            }
            m.insert(team.clone(), members);
        }
        tracing::info!(lab = %id, team = %team, "lab shared with a team");
        self.sharing(owner, owner_name, id).await
    }

    /// Stops sharing one of the owner's labs with a team: its members
    /// (unless the lab is shared with them otherwise) are cut off at once.
    pub async fn unshare_team(&self, owner: &UserId, id: &LabId, team: &str) -> Result<(), Error> {
        let lab = self.own(owner, id).await?;
        let not_shared = || Error::ShareNotFound(team.to_owned());
        let team: Name = team.parse().map_err(|_| not_shared())?;
        let before = self.shares.audiences(std::slice::from_ref(&lab.id));
        let was = self.store.remove_lab_team_share(&lab.id, &team).await?;
        if let Ok(mut t) = self.shares.teams.write()
            && let Some(teams) = t.get_mut(&lab.id)
        {
            teams.retain(|x| x != &team);
        }
        self.shares.cut_off(before).await?;
        if !was {
            return Err(not_shared());
        }
        tracing::info!(lab = %id, team = %team, "lab no longer shared with a team");
        Ok(())
    }

    /// A team the user is an accepted member of; any other answers as a
    /// team that does not exist.
    async fn team_of(&self, user: &UserId, team: &str) -> Result<Name, Error> {
        let not_found = || Error::TeamNotFound(team.to_owned());
        let name: Name = team.parse().map_err(|_| not_found())?;
        let member = self.store.team_members(&name).await?.into_iter().any(|m| {
            &m.user_id == user && m.accepted && matches!(m.role, TeamRole::Owner | TeamRole::Member)
        });
        if member { Ok(name) } else { Err(not_found()) }
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
