//! Opening connections to labs.
//!
//! Labs on the proxy's own network are reached with hyper's
//! `HttpConnector`. A lab in a network of its own (its user's network
//! namespace) is named in the request URI as `<lab-id>.lab:<port>`; the
//! connector looks the lab up in the directory and lets the lab's
//! [`LabNetwork`](crate::LabNetwork) open the connection inside.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::LabDirectory;

/// Host-name suffix that marks a lab in a network of its own.
pub(crate) const LAB_HOST_SUFFIX: &str = ".lab";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone)]
pub(crate) struct LabConnector {
    http: HttpConnector,
    directory: Arc<dyn LabDirectory>,
}

impl LabConnector {
    pub(crate) fn new(directory: Arc<dyn LabDirectory>) -> LabConnector {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        LabConnector { http, directory }
    }
}

impl tower_service::Service<Uri> for LabConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        tower_service::Service::<Uri>::poll_ready(&mut self.http, cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let Some(lab_id) = uri.host().and_then(|h| h.strip_suffix(LAB_HOST_SUFFIX)) else {
            let connecting = self.http.call(uri);
            return Box::pin(async move { connecting.await.map_err(Into::into) });
        };
        let route = self.directory.route(lab_id);
        Box::pin(async move {
            let route = route.ok_or("the lab is gone")?;
            let network = route.network.ok_or("the lab has no network of its own")?;
            let stream = network.connect(route.upstream).await?;
            stream.set_nodelay(true)?;
            Ok(TokioIo::new(stream))
        })
    }
}
