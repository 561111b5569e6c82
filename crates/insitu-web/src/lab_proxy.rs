//! The lab proxy wired to the labs service: the proxy finds labs through
//! [`Directory`], and labs reach the proxy through [`Door`]. The labs
//! service knows nothing of the proxy's crate; these adapters are the
//! only place the two meet.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use insitu_core::labs::{LabProxy, Labs, UserNetwork};
use insitu_domain::{LabId, UserId};
use insitu_proxy::{LabDirectory, LabNetwork, LabRoute, Proxy};

/// The labs, as the proxy looks them up.
pub struct Directory(pub Arc<Labs>);

impl LabDirectory for Directory {
    fn route(&self, lab_id: &str) -> Option<LabRoute> {
        let route = self.0.route(lab_id)?;
        Some(LabRoute {
            upstream: route.upstream,
            network: route
                .network
                .map(|n| Arc::new(Namespace(n)) as Arc<dyn LabNetwork>),
            owner: route.owner.to_string(),
            state: route.state,
            credential: None,
        })
    }

    fn record_activity(&self, lab_id: &str) {
        if let Ok(id) = lab_id.parse::<LabId>() {
            self.0.record_activity(&id);
        }
    }
}

/// A user's network namespace, where the proxy connects to their labs.
#[derive(Debug)]
struct Namespace(Arc<UserNetwork>);

impl LabNetwork for Namespace {
    fn connect(
        &self,
        addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<tokio::net::TcpStream>> + Send>> {
        let network = Arc::clone(&self.0);
        Box::pin(async move { network.connect(addr).await })
    }
}

/// The proxy, as labs use it: tickets into a lab, and revocation when it
/// stops or its user is logged out or disabled.
pub struct Door {
    pub proxy: Proxy,
    /// The proxy's URL as browsers reach it; `{lab}` in it is the lab's id.
    pub url: String,
}

impl LabProxy for Door {
    fn entry_link(&self, lab_id: &LabId, user_id: &UserId) -> String {
        let ticket = self.proxy.issue_ticket(lab_id.as_str(), user_id.as_str());
        // `{lab}` in the proxy's URL gives every lab an origin of its own.
        format!(
            "{}/labs/{lab_id}/_insitu/auth?ticket={ticket}&next=/labs/{lab_id}/",
            self.url.replace("{lab}", lab_id.as_str()),
        )
    }

    fn revoke_lab(&self, lab_id: &LabId) {
        self.proxy.revoke_lab(lab_id.as_str());
    }

    fn revoke_user(&self, user_id: &UserId) {
        self.proxy.revoke_user(user_id.as_str());
    }
}
