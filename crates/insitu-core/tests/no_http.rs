//! The platform's services know nothing of HTTP: the web crate adapts them
//! to it. This keeps any HTTP library (or the crates that bring one) out of
//! insitu-core's normal dependencies, however deep.

use std::collections::BTreeSet;
use std::process::Command;

/// HTTP libraries, and our crates built on them.
const HTTP: [&str; 14] = [
    "axum",
    "axum-core",
    "axum-extra",
    "hyper",
    "hyper-util",
    "http",
    "http-body",
    "http-body-util",
    "reqwest",
    "tower",
    "tower-http",
    "tower-service",
    "insitu-proxy",
    "insitu-web",
];

#[test]
fn the_services_depend_on_no_http_library() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "insitu-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
            "--locked",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cargo tree failed: {stderr}");
    let tree = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"insitu-store") && names.contains(&"tokio"),
        "the tree should list insitu-core's dependencies:\n{tree}"
    );
    let http: BTreeSet<&str> = names.iter().copied().filter(|n| HTTP.contains(n)).collect();
    assert!(
        http.is_empty(),
        "insitu-core must not depend on HTTP libraries, but pulls in {http:?}:\n{tree}"
    );
}
