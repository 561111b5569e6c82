//! The engine's lints are the workspace's. The engine is a package of its
//! own (the root workspace excludes it), so it cannot inherit
//! `[workspace.lints]`: its `Cargo.toml` carries a copy in `[lints]`, and
//! this test keeps the copy equal to the root's table.

use toml::Table;

fn manifest(path: &std::path::Path) -> Table {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.parse::<Table>()
        .unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()))
}

fn lints(t: &Table, path: &[&str]) -> Table {
    let mut v = t;
    for key in path {
        v = v
            .get(*key)
            .and_then(toml::Value::as_table)
            .unwrap_or_else(|| panic!("no [{}] table", path.join(".")));
    }
    v.clone()
}

#[test]
fn the_crate_lints_are_the_workspace_lints() {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let own = lints(&manifest(&here.join("Cargo.toml")), &["lints"]);
    let root = lints(
        &manifest(&here.join("../../Cargo.toml")),
        &["workspace", "lints"],
    );
    assert_eq!(
        own, root,
        "crates/insitu-cwl/Cargo.toml [lints] must equal the root's [workspace.lints]"
    );
}
