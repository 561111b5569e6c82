//! Slow clients and connection floods: header and keep-alive timeouts,
//! connection limits overall and per client address. WebSockets are never
//! timed out.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{
    LAB, OWNER, Rig, closed_within, echo, eventually, open_websocket, raw_exchange, read_response,
};

fn request(rig: &Rig, cookie: &str) -> String {
    format!(
        "GET /labs/{LAB}/ HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\n\r\n",
        rig.addr
    )
}

#[tokio::test]
async fn a_client_that_sends_half_a_header_is_cut_after_the_timeout() {
    let rig = Rig::with(
        |c, _| {
            c.header_read_timeout = Duration::from_millis(400);
            c.keep_alive_timeout = Duration::from_secs(30);
        },
        None,
    )
    .await;
    // Half a request, then nothing.
    let mut half = TcpStream::connect(rig.addr).await.unwrap();
    let started = Instant::now();
    half.write_all(b"GET /labs/lab-1/ HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(closed_within(&mut half, Duration::from_secs(5)).await);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(350),
        "cut too early: {took:?}"
    );

    // A header trickled a byte at a time does not reset the clock.
    let mut trickle = TcpStream::connect(rig.addr).await.unwrap();
    let started = Instant::now();
    let mut cut = false;
    for byte in b"GET /labs/lab-1/ HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
        if trickle.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        cut || closed_within(&mut trickle, Duration::from_secs(5)).await,
        "a trickling client keeps its connection"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "cut only after {:?}",
        started.elapsed()
    );

    // A connection that sends nothing at all goes the same way.
    let mut silent = TcpStream::connect(rig.addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await);

    // A prompt client is served.
    let cookie = rig.sign_in(LAB, OWNER).await;
    let mut prompt = TcpStream::connect(rig.addr).await.unwrap();
    let (status, _) = raw_exchange(&mut prompt, &request(&rig, &cookie))
        .await
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let rig = Rig::with(
        |c, _| {
            c.header_read_timeout = Duration::from_millis(300);
            c.keep_alive_timeout = Duration::from_millis(1500);
        },
        None,
    )
    .await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    let mut stream = TcpStream::connect(rig.addr).await.unwrap();
    let (status, _) = raw_exchange(&mut stream, &request(&rig, &cookie))
        .await
        .unwrap();
    assert_eq!(status, 200);
    // Idle for longer than the header timeout, shorter than keep-alive:
    // the connection is still there for the next request.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (status, _) = raw_exchange(&mut stream, &request(&rig, &cookie))
        .await
        .expect("the kept-alive connection serves a second request");
    assert_eq!(status, 200);
    // Then left idle: closed after the keep-alive timeout.
    let started = Instant::now();
    assert!(closed_within(&mut stream, Duration::from_secs(10)).await);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1300),
        "closed too early: {took:?}"
    );
}

#[tokio::test]
async fn an_idle_websocket_outlives_every_timeout() {
    let rig = Rig::with(
        |c, _| {
            c.header_read_timeout = Duration::from_millis(200);
            c.keep_alive_timeout = Duration::from_millis(300);
        },
        None,
    )
    .await;
    let cookie = rig.sign_in(LAB, OWNER).await;
    let origin = format!("http://{}", rig.addr);
    let mut socket = open_websocket(
        &rig,
        "/labs/lab-1/ws",
        &[("cookie", &cookie), ("origin", &origin)],
    )
    .await
    .unwrap();
    echo(&mut socket, Message::text("hello")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    echo(&mut socket, Message::text("still open after 1.5 s idle")).await;
    assert_eq!(rig.proxy.open_websockets(LAB), 1);
}

/// Opens a connection from `local` (an address of the loopback network)
/// and has it served once, so that the proxy has surely counted it.
async fn served_connection(rig: &Rig, cookie: &str, local: [u8; 4]) -> TcpStream {
    let mut stream = connect_from(rig.addr, local).await;
    let (status, _) = raw_exchange(&mut stream, &request(rig, cookie))
        .await
        .expect("served");
    assert_eq!(status, 200);
    stream
}

async fn connect_from(to: SocketAddr, local: [u8; 4]) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((local, 0))).unwrap();
    socket.connect(to).await.unwrap()
}

/// The refused connection gets the `too_many_connections` page, or is
/// closed before it could be read.
async fn assert_refused(rig: &Rig, local: [u8; 4], cookie: &str) {
    let mut stream = connect_from(rig.addr, local).await;
    let _ = stream.write_all(request(rig, cookie).as_bytes()).await;
    match tokio::time::timeout(Duration::from_secs(5), read_response(&mut stream))
        .await
        .expect("answered or closed at once")
    {
        None => {}
        Some((status, body)) => {
            assert_eq!(status, 503, "{body}");
            assert!(body.contains("<code>too_many_connections</code>"), "{body}");
            assert!(closed_within(&mut stream, Duration::from_secs(5)).await);
        }
    }
}

#[tokio::test]
async fn connections_past_the_limit_are_refused_while_open_ones_keep_working() {
    let rig = Rig::with(
        |c, _| {
            c.max_connections = 3;
            c.max_connections_per_client = 0;
        },
        None,
    )
    .await;
    // Signing in takes a connection of the rig's pooled client: keep it
    // counted among the three.
    let cookie = rig.sign_in(LAB, OWNER).await;
    let origin = format!("http://{}", rig.addr);
    let mut socket = open_websocket(
        &rig,
        "/labs/lab-1/ws",
        &[("cookie", &cookie), ("origin", &origin)],
    )
    .await
    .unwrap();
    let mut open = served_connection(&rig, &cookie, [127, 0, 0, 1]).await;
    assert_eq!(rig.proxy.open_connections(), 3);

    for _ in 0..5 {
        assert_refused(&rig, [127, 0, 0, 1], &cookie).await;
    }
    // Those open keep working, the WebSocket too.
    let (status, _) = raw_exchange(&mut open, &request(&rig, &cookie))
        .await
        .unwrap();
    assert_eq!(status, 200);
    echo(&mut socket, Message::text("still relayed")).await;

    // A closed WebSocket frees its place.
    socket.close(None).await.unwrap();
    drop(socket);
    assert!(eventually(|| rig.proxy.open_connections() == 2).await);
    served_connection(&rig, &cookie, [127, 0, 0, 1]).await;
}

#[tokio::test]
async fn one_client_address_cannot_take_every_connection() {
    let rig = Rig::with(
        |c, _| {
            c.max_connections = 0;
            c.max_connections_per_client = 2;
        },
        None,
    )
    .await;
    // Signing in takes one place of 127.0.0.1 (the rig's pooled client).
    let cookie = rig.sign_in(LAB, OWNER).await;
    let _one = served_connection(&rig, &cookie, [127, 0, 0, 1]).await;
    assert_refused(&rig, [127, 0, 0, 1], &cookie).await;
    // Another client is still served.
    let _other = served_connection(&rig, &cookie, [127, 0, 0, 2]).await;
    let _other2 = served_connection(&rig, &cookie, [127, 0, 0, 2]).await;
    assert_refused(&rig, [127, 0, 0, 2], &cookie).await;
    assert_eq!(rig.proxy.open_connections(), 4);
}
