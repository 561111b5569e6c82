//! Teams: a user creates one (becoming its owner), owners invite users by
//! username, the invitee accepts, owners change roles and remove members,
//! anyone leaves; a team always keeps one accepted owner (checked in the
//! store's transaction, so concurrent changes cannot remove the last).
//! Only members and invitees see a team: to anyone else it does not
//! exist. Each team has a team workspace, a directory under the data
//! directory's `teams/`, mounted read-write at `team_workspaces/<team>`
//! in the labs of its accepted members (see [`Teams::workspaces_of`]):
//! membership changes apply at the next launch. Accepted members also
//! hold the team's `team:` audience key ([`Teams::member_of`]), at once.
//! Labs shared with a team admit its accepted members through the lab
//! proxy: every membership change is told to the labs' [`ShareTable`],
//! which cuts off who left at once.
//!
//! Owners rename a team (its members, shares and workspace directory go
//! with it; running labs keep the workspace at the old name until their
//! next launch) and delete it: its members and shares end at once, and
//! its team workspace is not deleted but moved aside, out of every lab's
//! reach, to `<data_dir>/teams-deleted/<team>-<unix time>`, for an
//! administrator to hand out or remove.

use std::path::PathBuf;
use std::sync::Arc;

use insitu_domain::{Name, TeamRole, UserId, Username};
use insitu_launcher::TeamWorkspace;
use insitu_store::{MemberChange, Store, TeamChange, TeamMemberRecord, TeamRename};

use crate::labs::share::ShareTable;

use crate::clock::now;
use crate::error::Error;

/// A team as a member or invitee sees it.
#[derive(Debug, Clone)]
pub struct TeamView {
    pub name: Name,
    /// The caller's own membership.
    pub me: TeamMemberRecord,
    pub members: Vec<TeamMemberRecord>,
}

pub struct Teams {
    store: Store,
    /// Where the team workspaces are, one directory each.
    dir: PathBuf,
    /// The lab user, who owns the team workspaces.
    run_as: (u32, u32),
    /// Who may use shared labs, told of every membership change.
    shares: Arc<ShareTable>,
}

impl Teams {
    pub fn new(
        store: Store,
        data_dir: &std::path::Path,
        run_as: (u32, u32),
        shares: Arc<ShareTable>,
    ) -> Teams {
        Teams {
            store,
            dir: data_dir.join("teams"),
            run_as,
            shares,
        }
    }

    fn team_name(raw: &str) -> Result<Name, Error> {
        raw.parse().map_err(|reason| Error::InvalidTeamName {
            name: raw.to_owned(),
            reason,
        })
    }

    /// Creates team `name` with the caller as its owner.
    pub async fn create(&self, caller: &UserId, name: &str) -> Result<TeamView, Error> {
        let name = Self::team_name(name)?;
        if !self.store.create_team(&name, caller, now()).await? {
            return Err(Error::TeamNameTaken(name.to_string()));
        }
        tracing::info!(team = %name, "team created");
        self.get(caller, name.as_str()).await
    }

    /// The teams the caller belongs to or is invited to.
    pub async fn mine(&self, caller: &UserId) -> Result<Vec<TeamView>, Error> {
        let mut out = Vec::new();
        for m in self.store.teams_of_user(caller).await? {
            out.push(self.get(caller, m.team.as_str()).await?);
        }
        Ok(out)
    }

    /// A team the caller belongs to or is invited to.
    pub async fn get(&self, caller: &UserId, team: &str) -> Result<TeamView, Error> {
        let not_found = || Error::TeamNotFound(team.to_owned());
        let name: Name = team.parse().map_err(|_| not_found())?;
        let members = self.store.team_members(&name).await?;
        let me = members
            .iter()
            .find(|m| &m.user_id == caller)
            .cloned()
            .ok_or_else(not_found)?;
        Ok(TeamView { name, me, members })
    }

    /// The team, when the caller is one of its accepted owners.
    async fn owned(&self, caller: &UserId, team: &str) -> Result<TeamView, Error> {
        let view = self.get(caller, team).await?;
        if view.me.role != TeamRole::Owner || !view.me.accepted {
            return Err(Error::NotTeamOwner(view.name.to_string()));
        }
        Ok(view)
    }

    /// Invites user `username` into the team (an owner's act); they become
    /// a member when they accept.
    pub async fn invite(
        &self,
        caller: &UserId,
        team: &str,
        username: &str,
        role: TeamRole,
    ) -> Result<TeamView, Error> {
        let view = self.owned(caller, team).await?;
        let user = self.user(username).await?;
        if &user.id == caller {
            return Err(Error::InviteYourself);
        }
        if user.disabled {
            return Err(Error::UserDisabled(user.username.to_string()));
        }
        if !self
            .store
            .invite_member(&view.name, &user.id, role, caller, now())
            .await?
        {
            return Err(Error::AlreadyInTeam {
                username: user.username.to_string(),
                team: view.name.to_string(),
            });
        }
        tracing::info!(team = %view.name, invited = %user.username, role = %role, "team invitation");
        self.get(caller, team).await
    }

    /// Accepts the caller's invitation into the team (again: no change).
    pub async fn accept(&self, caller: &UserId, team: &str) -> Result<TeamView, Error> {
        let view = self.get(caller, team).await?;
        if !view.me.accepted {
            self.apply(&view.name, caller, MemberChange::Accept).await?;
            self.shares.team_changed(&view.name).await?;
        }
        self.get(caller, team).await
    }

    /// Removes `username` from the team: the caller themself (leaving, or
    /// declining an invitation), or anyone when the caller is an owner.
    pub async fn remove(&self, caller: &UserId, team: &str, username: &str) -> Result<(), Error> {
        let view = self.get(caller, team).await?;
        let target = self.member(&view, username)?;
        if &target.user_id != caller {
            self.owned(caller, team).await?;
        }
        self.apply(&view.name, &target.user_id, MemberChange::Remove)
            .await?;
        // Out of the team's shared labs before this answers.
        self.shares.team_changed(&view.name).await?;
        tracing::info!(team = %view.name, removed = %target.username, "team member removed");
        Ok(())
    }

    /// Renames the team (an owner's act): members, invitations, lab shares
    /// and the workspace's directory go with it.
    pub async fn rename(&self, caller: &UserId, team: &str, new: &str) -> Result<TeamView, Error> {
        let view = self.owned(caller, team).await?;
        let new = Self::team_name(new)?;
        if new == view.name {
            return Ok(view);
        }
        match self.store.rename_team(&view.name, &new).await? {
            TeamRename::Done => {}
            TeamRename::Taken => return Err(Error::TeamNameTaken(new.to_string())),
            TeamRename::NotFound => return Err(Error::TeamNotFound(team.to_owned())),
        }
        self.shares.team_renamed(&view.name, &new);
        let (from, to) = (self.workspace_dir(&view.name), self.workspace_dir(&new));
        if from.exists() && !to.exists() {
            std::fs::rename(&from, &to).map_err(Error::TeamWorkspace)?;
        }
        tracing::info!(team = %view.name, to = %new, "team renamed");
        self.get(caller, new.as_str()).await
    }

    /// Deletes the team (an owner's act): members and shares end at once;
    /// its workspace is moved aside for an administrator (see the module's
    /// documentation). Answers where the workspace went, if it existed.
    pub async fn delete(&self, caller: &UserId, team: &str) -> Result<Option<PathBuf>, Error> {
        let view = self.owned(caller, team).await?;
        if !self.store.delete_team(&view.name).await? {
            return Err(Error::TeamNotFound(team.to_owned()));
        }
        self.shares.team_deleted(&view.name).await?;
        let from = self.workspace_dir(&view.name);
        let kept = if from.exists() {
            let aside =
                self.dir
                    .with_file_name("teams-deleted")
                    .join(format!("{}-{}", view.name, now()));
            std::fs::create_dir_all(aside.parent().unwrap_or(&self.dir))
                .and_then(|()| std::fs::rename(&from, &aside))
                .map_err(Error::TeamWorkspace)?;
            Some(aside)
        } else {
            None
        };
        tracing::info!(team = %view.name, workspace_kept = ?kept, "team deleted");
        Ok(kept)
    }

    /// Changes a member's role (an owner's act).
    pub async fn set_role(
        &self,
        caller: &UserId,
        team: &str,
        username: &str,
        role: TeamRole,
    ) -> Result<TeamView, Error> {
        let view = self.owned(caller, team).await?;
        let target = self.member(&view, username)?;
        self.apply(&view.name, &target.user_id, MemberChange::SetRole(role))
            .await?;
        self.get(caller, team).await
    }

    fn member(&self, view: &TeamView, username: &str) -> Result<TeamMemberRecord, Error> {
        view.members
            .iter()
            .find(|m| m.username.as_str() == username)
            .cloned()
            .ok_or_else(|| Error::NotInTeam {
                username: username.to_owned(),
                team: view.name.to_string(),
            })
    }

    async fn user(&self, username: &str) -> Result<insitu_store::UserRecord, Error> {
        let not_found = || Error::UserNotFound(username.to_owned());
        let name: Username = username.parse().map_err(|_| not_found())?;
        self.store
            .user_by_username(&name)
            .await?
            .ok_or_else(not_found)
    }

    async fn apply(&self, team: &Name, user: &UserId, change: MemberChange) -> Result<(), Error> {
        match self.store.change_member(team, user, change).await? {
            TeamChange::Done => Ok(()),
            TeamChange::NotMember => Err(Error::TeamNotFound(team.to_string())),
            TeamChange::WouldLeaveNoOwner => Err(Error::LastOwner(team.to_string())),
        }
    }

    /// The teams `user` is an accepted member of (an invitee is not yet
    /// one): the `team:` grants of a restricted audience that admit them.
    pub async fn member_of(&self, user: &UserId) -> Result<Vec<Name>, Error> {
        Ok(self.store.member_teams(user).await?)
    }

    /// Where labs see a team's workspace.
    pub fn lab_path(team: &Name) -> String {
        format!(
            "{}/{}/{team}",
            insitu_launcher::HOME_PATH,
            insitu_launcher::home::TEAM_WORKSPACES
        )
    }

    /// The host directory of a team's workspace.
    pub fn workspace_dir(&self, team: &Name) -> PathBuf {
        self.dir.join(team.as_str())
    }

    /// The team workspaces of the teams `user` is an accepted member of,
    /// each made (owned by the lab user) if missing: what a lab or a
    /// pipeline run of theirs mounts.
    pub async fn workspaces_of(&self, user: &UserId) -> Result<Vec<TeamWorkspace>, Error> {
        let teams = self.store.teams_of_user(user).await?;
        let mut out = Vec::new();
        for m in teams.into_iter().filter(|m| m.accepted) {
            let source = self.workspace_dir(&m.team);
            std::fs::create_dir_all(&source).map_err(Error::TeamWorkspace)?;
            std::os::unix::fs::chown(&source, Some(self.run_as.0), Some(self.run_as.1))
                .map_err(Error::TeamWorkspace)?;
            out.push(TeamWorkspace {
                name: m.team.to_string(),
                source,
            });
        }
        Ok(out)
    }
}
