//! Each lab's API socket, served (see `insitu_core::labs::api_socket` for
//! where it lives and when it comes and goes): a task per lab accepting
//! on its Unix socket and serving [`crate::routes::lab_router`], the
//! pipelines and runs rows of the route table and nothing else. Every
//! request there is the lab's owner (`Via::Lab`): [`authorize`] reads the
//! owner afresh (a disabled account is refused) and checks the route's
//! role; cookies and tokens sent along are ignored, so a request there
//! needs no CSRF token and no secret. Anything else is refused with
//! `not_on_lab_socket`.

use std::collections::HashMap;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use insitu_api::ErrorCode;
use insitu_core::labs::LabApi;
use insitu_domain::{LabId, UserId};
use tokio::net::UnixListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::access::Access;
use crate::error::ApiFailure;
use crate::state::AppState;

/// Connections open at once on one lab's socket; past that, new ones
/// wait in the socket's backlog.
const CONNECTIONS_PER_LAB: usize = 32;
/// How long a client has to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(15);

/// Whose socket a request came on: put in each request's extensions.
#[derive(Debug, Clone)]
pub struct LabCaller {
    pub lab: LabId,
    pub owner: UserId,
}

/// The labs' sockets served by this process.
pub struct LabSockets {
    /// The router, once the application's state exists (labs adopted
    /// before that wait for it, their connections in the backlog).
    router: watch::Sender<Option<Router>>,
    tasks: Mutex<HashMap<LabId, tokio::task::AbortHandle>>,
}

impl LabSockets {
    pub fn new() -> Arc<LabSockets> {
        Arc::new(LabSockets {
            router: watch::channel(None).0,
            tasks: Mutex::new(HashMap::new()),
        })
    }

    /// Starts answering on every lab's socket with `router`.
    pub fn set_router(&self, router: Router) {
        self.router.send_replace(Some(router));
    }

    /// Stops serving every socket and lets the router (and the state it
    /// holds) go: the server is shutting down.
    pub fn shut(&self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            for (_, t) in tasks.drain() {
                t.abort();
            }
        }
        self.router.send_replace(None);
    }
}

impl LabApi for LabSockets {
    fn serve(&self, lab_id: &LabId, owner: &UserId, listener: StdUnixListener) {
        let listener = match UnixListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(lab = %lab_id, error = %e, "cannot serve the lab's API socket");
                return;
            }
        };
        let caller = LabCaller {
            lab: lab_id.clone(),
            owner: owner.clone(),
        };
        let router = self.router.subscribe();
        let task = tokio::spawn(serve(listener, router, caller));
        if let Ok(mut tasks) = self.tasks.lock()
            && let Some(old) = tasks.insert(lab_id.clone(), task.abort_handle())
        {
            old.abort();
        }
    }

    fn close(&self, lab_id: &LabId) {
        if let Ok(mut tasks) = self.tasks.lock()
            && let Some(t) = tasks.remove(lab_id)
        {
            t.abort();
        }
    }
}

/// Accepts on one lab's socket until aborted; its connections are held
/// in a set, so they end with it.
async fn serve(
    listener: UnixListener,
    mut router: watch::Receiver<Option<Router>>,
    caller: LabCaller,
) {
    let Ok(router) = router.wait_for(Option::is_some).await.map(|r| r.clone()) else {
        return;
    };
    let Some(router) = router else { return };
    let app = router.layer(axum::Extension(caller.clone()));
    let slots = Arc::new(Semaphore::new(CONNECTIONS_PER_LAB));
    let mut connections = JoinSet::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true);
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        // Reap the connections that ended.
        while connections.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(lab = %caller.lab, error = %e, "accepting on a lab's socket failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let lab = caller.lab.clone();
        connections.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(lab = %lab, error = %e, "lab socket connection ended with an error");
            }
            drop(slot);
        });
    }
}

/// Per-route check on a lab's socket: the caller is the lab's owner, read
/// afresh, and must have the route's role.
pub async fn authorize(
    State((state, access)): State<(AppState, Access)>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(caller) = req.extensions().get::<LabCaller>().cloned() else {
        return refused(req.into_body()).await;
    };
    let owner = match state
        .platform
        .accounts()
        .lab_owner(&caller.owner, &caller.lab)
        .await
    {
        Ok(p) => p,
        Err(e) => return ApiFailure::from(e).into_response(),
    };
    if let Access::Role(required) = access
        && !owner.role.allows(required)
    {
        return ApiFailure::new(
            ErrorCode::Forbidden,
            format!("this needs the {required} role; you are {}", owner.role),
        )
        .into_response();
    }
    req.extensions_mut().insert(owner);
    next.run(req).await
}

/// What a refused request's body is read of at most, so that the client,
/// still sending it, gets the answer rather than a broken pipe.
const REFUSED_BODY_READ: usize = 1 << 20;

/// The answer to anything a lab's socket does not serve.
pub async fn refused(body: axum::body::Body) -> Response {
    let _ = axum::body::to_bytes(body, REFUSED_BODY_READ).await;
    ApiFailure::new(
        ErrorCode::NotOnLabSocket,
        "a lab's socket serves only the pipelines and runs API (/api/v1/pipelines…, /api/v1/runs…); use the platform's address for the rest",
    )
    .into_response()
}
