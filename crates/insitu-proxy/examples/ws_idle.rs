//! Both ends of the idle-WebSocket benchmark (bench/websockets.sh):
//!
//! - `ws_idle serve ADDR`: a WebSocket echo server, the lab.
//! - `ws_idle hold URL N SECS [COOKIE]`: opens N WebSockets to URL, checks
//!   that each echoes a message, prints `open N` and keeps them idle for
//!   SECS seconds, then prints `closed`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => serve(&args[2]).await,
        Some("hold") => {
            let n: usize = args[3].parse().unwrap();
            let secs: u64 = args[4].parse().unwrap();
            hold(&args[2], n, secs, args.get(5).cloned()).await;
        }
        _ => {
            eprintln!("usage: ws_idle serve ADDR | hold URL N SECS [COOKIE]");
            std::process::exit(2);
        }
    }
}

async fn serve(addr: &str) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            while let Some(Ok(m)) = ws.next().await {
                if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                    break;
                }
            }
        });
    }
}

async fn hold(url: &str, n: usize, secs: u64, cookie: Option<String>) {
    let origin = url
        .replacen("ws://", "http://", 1)
        .split("/labs/")
        .next()
        .unwrap()
        .to_owned();
    let mut sockets = Vec::with_capacity(n);
    for i in 0..n {
        let mut request = url.into_client_request().unwrap();
        if let Some(c) = &cookie {
            request.headers_mut().insert("cookie", c.parse().unwrap());
        }
        // As a browser page of the proxy's origin: the lab proxy refuses
        // WebSocket upgrades from any other.
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        ws.send(Message::text(format!("hello {i}"))).await.unwrap();
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.as_str() == format!("hello {i}") => {}
            other => panic!("connection {i}: no echo: {other:?}"),
        }
        sockets.push(ws);
    }
    println!("open {}", sockets.len());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    for mut ws in sockets {
        let _ = ws.close(None).await;
    }
    println!("closed");
}
