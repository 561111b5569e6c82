//! Integration tests: a real proxy on `127.0.0.1:0` in front of a small
//! upstream (echo, streaming, WebSocket echo) written with hyper, and of
//! the real websockify and JupyterLab with their credentials.

// The rig's helpers are test code too (clippy.toml only covers `#[test]` fns).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod credentials;
mod http;
mod limits;
mod origins;
mod restart;
mod streaming;
mod support;
mod websocket;
