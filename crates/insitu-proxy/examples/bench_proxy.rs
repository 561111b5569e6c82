//! The lab proxy alone, for benchmarks: serves one lab `bench` owned by
//! `bench-user` whose upstream is the address given, prints the cookie a
//! browser would hold after opening it, then serves until killed.
//!
//! `cargo run --release -p insitu-proxy --example bench_proxy -- 127.0.0.1:8000 127.0.0.1:9000`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;

use insitu_proxy::{LabDirectory, LabRoute, LabState, Proxy, ProxyConfig};

struct One(SocketAddr);

impl LabDirectory for One {
    fn route(&self, lab_id: &str) -> Option<LabRoute> {
        (lab_id == "bench").then(|| LabRoute {
            upstream: self.0,
            network: None,
            owner: "bench-user".into(),
            shared_with: Vec::new(),
            state: LabState::Running,
            credential: None,
        })
    }
    fn record_activity(&self, _: &str) {}
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let upstream: SocketAddr = args[1].parse().unwrap();
    let listen: SocketAddr = args[2].parse().unwrap();
    let mut cfg = ProxyConfig::new("http://127.0.0.1/");
    cfg.cookie_secure = false;
    // Thousands of connections come from this one address: the benchmark
    // measures relaying, not the connection limits.
    cfg.max_connections = 0;
    cfg.max_connections_per_client = 0;
    // BENCH_PROXY_THREADS overrides the proxy's default thread count.
    if let Some(t) = std::env::var("BENCH_PROXY_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        cfg.threads = t;
    }
    let proxy = Proxy::new(cfg, Arc::new(One(upstream)));
    let ticket = proxy.issue_ticket("bench", "bench-user");
    let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
    let serving = tokio::spawn(proxy.serve(listener, std::future::pending()));
    // Redeem the ticket as a browser would, and print the cookie.
    let mut stream = tokio::net::TcpStream::connect(listen).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let req = format!(
        "GET /labs/bench/_insitu/auth?ticket={ticket} HTTP/1.1\r\nHost: {listen}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut head = String::new();
    stream.read_to_string(&mut head).await.unwrap();
    let cookie = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .expect("a cookie");
    println!("{cookie}");
    serving.await.unwrap().unwrap();
}
