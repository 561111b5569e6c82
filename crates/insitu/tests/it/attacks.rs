//! Attacks on the platform's boundaries, each from where an attacker
//! stands.

mod lab;
