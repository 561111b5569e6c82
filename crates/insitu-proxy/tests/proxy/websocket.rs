//! WebSocket upgrades through the proxy.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use insitu_proxy::LabState;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::{LAB, OWNER, Rig, eventually};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(rig: &Rig, cookie: Option<&str>) -> Result<Socket, StatusCode> {
    let mut request = format!("ws://{}/labs/lab-1/api/kernels/k/ws?session=s", rig.addr)
        .into_client_request()
        .unwrap();
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", cookie.parse().unwrap());
    }
    // As a browser does, from a page of the proxy's own origin.
    request
        .headers_mut()
        .insert("origin", format!("http://{}", rig.addr).parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, response)) => {
            assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
            assert_eq!(response.headers()["x-upstream"], "ws");
            Ok(socket)
        }
        Err(Error::Http(response)) => Err(response.status()),
        Err(other) => panic!("unexpected error: {other}"),
    }
}

async fn echo(socket: &mut Socket, message: Message) {
    socket.send(message.clone()).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply, message);
}

#[tokio::test]
async fn websocket_frames_are_relayed_and_count_as_activity() {
    let rig = Rig::start().await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    let started = Instant::now();
    let mut socket = connect(&rig, Some(&cookie)).await.unwrap();
    echo(&mut socket, Message::text("hello")).await;
    echo(&mut socket, Message::binary(vec![7u8; 100_000])).await;
    let reported = rig.directory.activity(LAB);
    assert!(reported >= 1, "the upgrade is activity");
    if started.elapsed() < Duration::from_millis(900) {
        assert_eq!(reported, 1, "rate-limited to once a second");
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    echo(&mut socket, Message::text("still here")).await;
    assert!(
        eventually(|| rig.directory.activity(LAB) > reported).await,
        "relayed frames record activity"
    );
    socket.close(None).await.unwrap();
    // The close handshake completes through the proxy.
    let rest = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .unwrap();
    assert!(matches!(
        rest,
        None | Some(Ok(Message::Close(_))) | Some(Err(_))
    ));
}

#[tokio::test]
async fn upgrades_are_refused_with_the_right_status() {
    let rig = Rig::start().await;
    assert_eq!(
        connect(&rig, None).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );

    let mallory = rig.sign_in(LAB, "mallory").await;
    assert_eq!(
        connect(&rig, Some(&mallory)).await.err(),
        Some(StatusCode::FORBIDDEN)
    );

    let cookie = rig.sign_in(LAB, OWNER).await;
    rig.directory
        .set(LAB, rig.upstream.addr, OWNER, LabState::Starting);
    assert_eq!(
        connect(&rig, Some(&cookie)).await.err(),
        Some(StatusCode::SERVICE_UNAVAILABLE)
    );
    rig.directory
        .set(LAB, rig.upstream.addr, OWNER, LabState::Stopped);
    assert_eq!(
        connect(&rig, Some(&cookie)).await.err(),
        Some(StatusCode::NOT_FOUND)
    );
    assert_eq!(rig.upstream.connections(), 0, "nothing reached the lab");
}

#[tokio::test]
async fn revocation_closes_open_websockets() {
    let rig = Rig::start().await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    let mut socket = connect(&rig, Some(&cookie)).await.unwrap();
    echo(&mut socket, Message::text("before")).await;
    assert_eq!(rig.proxy.open_websockets(LAB), 1);
    rig.proxy.revoke_lab(LAB);
    let next = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("the proxy closes the socket");
    assert!(
        matches!(next, None | Some(Err(_))),
        "connection closed, got {next:?}"
    );
    assert!(eventually(|| rig.proxy.open_websockets(LAB) == 0).await);
    assert_eq!(
        connect(&rig, Some(&cookie)).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
}

#[tokio::test]
async fn shutdown_stops_serving_and_closes_websockets() {
    let mut rig = Rig::start().await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    let mut socket = connect(&rig, Some(&cookie)).await.unwrap();
    echo(&mut socket, Message::text("before")).await;
    rig.shut_down().await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("the proxy closes the socket");
    assert!(matches!(next, None | Some(Err(_))), "got {next:?}");
    assert!(
        TcpStream::connect(rig.addr).await.is_err(),
        "no longer listening"
    );
}
