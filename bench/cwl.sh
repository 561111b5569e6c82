#!/usr/bin/env bash
# Benchmark: Insitu's CWL engine side by side with cwltool (PyPI, run with
# --no-container; --parallel for the scatters) and, when it builds, the Rust
# peer commonwl (crates.io, cwl_engine), in one run: one trivial tool, a
# 1,000-job scatter of it, and the same scatter with a JavaScript expression
# in every job. Prints medians and ratios (bench/cwl_bench.py does the timing).
#
# Usage: bench/cwl.sh [extra cwl_bench.py flags, e.g. --runs 10 --n 1000, or
#        --insitu-before OLD/insitu-cwl to measure an earlier build in the same rounds]
# Environment:
#   CWL_BENCH_DIR       where the cwltool venv and the commonwl driver live
#                       (default var/bench, ignored by git; reused across runs)
#   CWLTOOL_VERSION     pip requirement for cwltool (default: newest)
#   CWL_BENCH_COMMONWL  0 to skip the commonwl peer (building it takes minutes)
#   CWL_BENCH_BUILD_ONLY 1 to build and install everything, then stop
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dir=${CWL_BENCH_DIR:-$root/var/bench}
mkdir -p "$dir"

echo "== building insitu-cwl (release)" >&2
(cd crates/insitu-cwl && cargo build --release --locked -q --bin insitu-cwl)
insitu=$root/crates/insitu-cwl/target/release/insitu-cwl

echo "== cwltool from PyPI in $dir/venv" >&2
if [ ! -x "$dir/venv/bin/cwltool" ]; then
  python3 -m venv "$dir/venv"
  "$dir/venv/bin/pip" install -q --upgrade pip
  "$dir/venv/bin/pip" install -q "${CWLTOOL_VERSION:-cwltool}"
fi
"$dir/venv/bin/cwltool" --version >&2

# commonwl publishes no binary (`cargo install commonwl` has nothing to
# install: its CLI lives only in its repository), so a small driver that
# calls its library (LocalBackend, the same path its own conformance test
# uses) is built from crates.io in $dir, outside our lockfiles.
commonwl_args=()
if [ "${CWL_BENCH_COMMONWL:-1}" = 0 ]; then
  commonwl_args=(--commonwl-skip "skipped (CWL_BENCH_COMMONWL=0)")
else
  echo "== commonwl driver from crates.io in $dir/commonwl-driver" >&2
  drv=$dir/commonwl-driver
  mkdir -p "$drv/src"
  cat >"$drv/Cargo.toml" <<'TOML'
[package]
name = "commonwl-driver"
version = "0.0.0"
edition = "2024"
publish = false

[workspace]

[dependencies]
commonwl = { version = "0.15", features = ["engine"] }
tokio = { version = "1", features = ["full"] }
tokio-util = "0.7"
serde_json = "1"
TOML
  cat >"$drv/src/main.rs" <<'RS'
//! Runs one CWL document with commonwl's local backend:
//! `commonwl-driver TOOL.cwl JOB.json OUTDIR`; prints the output object.
use commonwl::engine::{
    ContainerEngine, LocalBackend, TaskBackend, create_execution_request_with_inputs, execute,
    load_input_file_from_file,
};
use commonwl::storage::{StorageBackend, StoragePath};
use std::path::Path;
use std::sync::Arc;

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 4 {
        eprintln!("usage: commonwl-driver TOOL.cwl JOB.json OUTDIR");
        std::process::exit(2);
    }
    let tool = Path::new(&a[1]);
    let base = tool.parent().unwrap_or(Path::new("."));
    let run = async {
        let inputs = load_input_file_from_file(&a[2], base)?;
        let request =
            create_execution_request_with_inputs(tool, inputs, Some(Path::new(&a[3])), None)?;
        let storage = Arc::new(StorageBackend::new());
        let backend = Arc::new(LocalBackend::new(
            ContainerEngine::Docker,
            storage,
            StoragePath::from_local(Path::new("/tmp")),
        ));
        execute(
            backend.task_scoped(),
            &request,
            tokio_util::sync::CancellationToken::new(),
        )
        .await
    };
    match run.await {
        Ok(r) => println!(
            "{}",
            serde_json::to_string(&r.outputs).unwrap_or_else(|_| "{}".into())
        ),
        Err(e) => {
            eprintln!("{e:?}");
            std::process::exit(1);
        }
    }
}
RS
  if (cd "$drv" && cargo build --release -q 2>"$drv/build.log"); then
    commonwl_args=(--commonwl "$drv/target/release/commonwl-driver")
  else
    reason=$(grep -m1 -E '^error' "$drv/build.log" || tail -n1 "$drv/build.log")
    echo "commonwl could not be built: $reason (see $drv/build.log)" >&2
    commonwl_args=(--commonwl-skip "could not be built from crates.io: $reason")
  fi
fi

if [ "${CWL_BENCH_BUILD_ONLY:-0}" = 1 ]; then
  echo "built: $insitu, $dir/venv/bin/cwltool, ${commonwl_args[*]}" >&2
  exit 0
fi
echo "== machine: $(nproc) cores, $(uname -sr); bwrap $(bwrap --version 2>/dev/null | awk '{print $2}')" >&2
python3 bench/cwl_bench.py --insitu "$insitu" --cwltool "$dir/venv/bin/cwltool" "${commonwl_args[@]}" "$@"
