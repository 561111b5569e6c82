//! `insitu cwl …`: the CWL engine (`crates/insitu-cwl`), run as the program
//! `insitu-cwl` installed beside `insitu`.
//!
//! The engine is its own package: it keeps JSON numbers exact with
//! serde_json's `arbitrary_precision`, a feature that would change how
//! every other crate of the platform reads JSON if it were linked into this
//! binary. So this command finds the engine and replaces itself with it:
//! arguments, standard streams and the exit status (0, 33 for an
//! unsupported requirement, other codes for failures) are the engine's own.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The engine's program name.
pub const ENGINE: &str = "insitu-cwl";

/// Where the engine is: `INSITU_CWL_ENGINE`, beside this executable, in
/// the checkout this executable was built in, or on `PATH`.
pub fn find_engine() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("INSITU_CWL_ENGINE") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let beside = exe.with_file_name(ENGINE);
    if beside.is_file() {
        return Some(beside);
    }
    // A development checkout: target/<profile>/insitu, and the engine in
    // crates/insitu-cwl/target/<profile>/ (the same profile first).
    let profile = exe.parent()?.file_name()?.to_owned();
    for dir in exe.ancestors().skip(2) {
        let targets = dir.join("crates/insitu-cwl/target");
        if targets.is_dir() {
            let mut profiles = vec![profile.clone()];
            profiles.extend(["release", "debug"].map(OsString::from));
            return profiles
                .into_iter()
                .map(|p| targets.join(p).join(ENGINE))
                .find(|p| p.is_file());
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(ENGINE))
            .find(|p| p.is_file())
    })
}

/// Replaces this process with the engine; returns only on failure.
pub fn exec(args: Vec<OsString>) -> ExitCode {
    let Some(engine) = find_engine() else {
        eprintln!(
            "error: the CWL engine ({ENGINE}) is not installed beside insitu; build it with \
             `cargo build --release --manifest-path crates/insitu-cwl/Cargo.toml` \
             or set INSITU_CWL_ENGINE"
        );
        return ExitCode::from(1);
    };
    let error = std::process::Command::new(&engine).args(args).exec();
    eprintln!(
        "error: cannot run the CWL engine {}: {error}",
        show(&engine)
    );
    ExitCode::from(1)
}

fn show(p: &Path) -> String {
    p.display().to_string()
}
