//! The attack suite: what one user, a lab, a page on another site or a
//! process of the host tries against the platform, run against the real
//! server, lab proxy and labs. Run it alone with
//! `cargo nextest run -p insitu attacks`; `docs/security-proxy.md` says
//! what each boundary of the lab proxy is meant to stop.
//!
//! - `lab`: from inside a lab: the platform's configuration, database and
//!   what the operator hides, the host's control groups and another lab's.
//! - `proxy`: labs through and around the lab proxy: another lab's code
//!   going straight to a tool's port, another lab's host, tickets on the
//!   wrong host, WebSockets from another origin, a squatted port, and a
//!   flood of tickets and sessions from one account.

mod lab;
mod proxy;
