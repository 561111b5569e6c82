#!/usr/bin/env python3
"""Pipelines through the platform against the CWL engine alone.

1. Throughput: U users (default 10) each submit R small runs (default 10,
   so 100 at once) of a three-job pipeline (a scatter of 2 and a join);
   from the first submission to the last run ended: runs per minute. The
   queue runs `--slots` at once, round robin between users.
2. Overhead: one run scattering a trivial tool over N strings (default
   1000), through the platform (submission to `succeeded`, outputs in the
   workspace) and with `insitu-cwl run` alone on the same files, twice:
   bare, and with the flags the platform gives it (confinement, events,
   step logs, provenance, cache). Prints medians, the ratio and the
   overhead per step: (platform - engine) / N.

Every tool runs in its bubblewrap sandbox in all cases. Usage:
bench/pipelines.py [--users 10] [--runs 10] [--n 1000] [--rounds 3]
[--slots 4] [--parallel P] (after a release build; bench/pipelines.sh does
it). INSITU_BIN and INSITU_CWL choose other builds.

Figures (2026-12-03, release builds, a shared 2-core machine, 4 slots,
--parallel 2): 264 runs/min (100 runs of 3 jobs from 10 users in 22.7 s);
the 1,000-job scatter in 3.05 s through the platform, 3.05 s with the
engine alone given the platform's flags, 1.55 s with the bare engine:
1.5 ms per step, all of it the engine's flags (cache, step logs,
provenance, events), none the platform's; against the bare engine that
is 1.97x, short of the 1.2x goal."""
import argparse, concurrent.futures, json, os, statistics, subprocess, sys
import tempfile, time, urllib.request

from benchlib import free_port, release_and_remove

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "bench-password-123"

SMALL = """cwlVersion: v1.2
class: Workflow
requirements:
  ScatterFeatureRequirement: {}
inputs:
  words: string[]
outputs:
  joined: {type: File, outputSource: join/out}
steps:
  say:
    run: echo.cwl
    scatter: msg
    in: {msg: words}
    out: [out]
  join:
    run:
      class: CommandLineTool
      baseCommand: [cat]
      inputs:
        parts: {type: 'File[]', inputBinding: {position: 1}}
      stdout: joined.txt
      outputs: {out: {type: stdout}}
    in: {parts: say/out}
    out: [out]
"""

ECHO = """cwlVersion: v1.2
class: CommandLineTool
baseCommand: echo
inputs:
  msg: {type: string, inputBinding: {position: 1}}
stdout: out.txt
outputs:
  out: {type: stdout}
"""

SCATTER = """cwlVersion: v1.2
class: Workflow
requirements:
  ScatterFeatureRequirement: {}
inputs:
  words: string[]
outputs:
  outs: {type: 'File[]', outputSource: say/out}
steps:
  say:
    run: echo.cwl
    scatter: msg
    in: {msg: words}
    out: [out]
"""


def http(method, url, token=None, body=None, timeout=90):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def healthy(url):
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
            return r.status == 200
    except Exception:
        return False


def wait_run(url, token, run_id):
    seen = 0
    while True:
        run = http("GET", f"{url}/api/v1/runs/{run_id}?since={seen}&wait=30", token)
        if run["state"] in ("succeeded", "failed", "cancelled"):
            return run
        seen = run["events_seen"]


def push(url, token, name, main, files):
    http("POST", url + "/api/v1/pipelines", token, {
        "name": name, "version": "1", "description": "bench", "keywords": [], "author": "bench",
        "licence": "MIT", "main": main, "files": files})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--slots", type=int, default=4)
    ap.add_argument("--parallel", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    binary = os.environ.get("INSITU_BIN", os.path.join(ROOT, "target/release/insitu"))
    engine = os.environ.get("INSITU_CWL", os.path.join(ROOT, "crates/insitu-cwl/target/release/insitu-cwl"))
    work = tempfile.mkdtemp(prefix="insitu-bench-pipelines-")
    os.chmod(work, 0o711)
    port, proxy_port = free_port(), free_port()
    config = os.path.join(work, "insitu.toml")
    with open(config, "w") as f:
        f.write(f'listen = "127.0.0.1:{port}"\ndata_dir = {json.dumps(os.path.join(work, "data"))}\n'
                f'catalogue_dir = {json.dumps(os.path.join(ROOT, "catalogue/datalabs"))}\n'
                f'[admin]\npassword = "{PASSWORD}"\n'
                f'[proxy]\nlisten = "127.0.0.1:{proxy_port}"\n'
                f'[pipelines]\ncatalogue_dir = {json.dumps(os.path.join(ROOT, "catalogue/pipelines"))}\n'
                f'engine = {json.dumps(engine)}\nslots = {a.slots}\nmax_running_per_user = {a.slots}\n'
                f'max_queued_per_user = {a.runs}\nparallel = {a.parallel}\n')
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([binary, "serve", "--config", config], cwd=work,
                              env=dict(os.environ, INSITU_LOG="warn"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not healthy(url):
            time.sleep(0.05)
        admin = http("POST", url + "/api/v1/auth/token", None,
                     {"username": "admin", "password": PASSWORD, "token_name": "bench"})["token"]
        tokens = []
        for i in range(a.users):
            name = f"bench{i}"
            http("POST", url + "/api/v1/admin/users", admin, {"username": name, "password": PASSWORD, "role": "user"})
            t = http("POST", url + "/api/v1/auth/token", None,
                     {"username": name, "password": PASSWORD, "token_name": "bench"})["token"]
            push(url, t, "small", "main.cwl", {"main.cwl": SMALL, "echo.cwl": ECHO})
            tokens.append((name, t))

        # 1. Throughput.
        t0 = time.perf_counter()
        submitted = []
        for r in range(a.runs):
            for name, t in tokens:
                run = http("POST", url + "/api/v1/runs", t,
                           {"pipeline": f"{name}/small", "job": {"words": [f"{name}-{r}", "x"]}})
                submitted.append((t, run["id"]))
        with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
            ends = list(pool.map(lambda tr: wait_run(url, tr[0], tr[1]), submitted))
        elapsed = time.perf_counter() - t0
        bad = [e for e in ends if e["state"] != "succeeded"]
        assert not bad, bad[:2]
        total = len(submitted)
        print(f"throughput: {total} runs of 3 jobs from {a.users} users, {a.slots} slots, "
              f"parallel {a.parallel}: {elapsed:.1f} s, {total / elapsed * 60:.0f} runs/min")

        # 2. Overhead on the N-job scatter.
        name, t = tokens[0]
        push(url, t, "scatter", "main.cwl", {"main.cwl": SCATTER, "echo.cwl": ECHO})
        words = [f"w{i}" for i in range(a.n)]
        src = os.path.join(work, "alone")
        os.makedirs(src)
        for fname, text in (("main.cwl", SCATTER), ("echo.cwl", ECHO)):
            with open(os.path.join(src, fname), "w") as f:
                f.write(text)
        with open(os.path.join(src, "job.json"), "w") as f:
            json.dump({"words": words}, f)
        os.chmod(src, 0o755)
        plat, bare, flagged = [], [], []
        for r in range(a.rounds):
            t1 = time.perf_counter()
            run = http("POST", url + "/api/v1/runs", t, {"pipeline": f"{name}/scatter", "job": {"words": words}})
            end = wait_run(url, t, run["id"])
            plat.append(time.perf_counter() - t1)
            assert end["state"] == "succeeded", end
            for kind, times in (("bare", bare), ("flagged", flagged)):
                d = os.path.join(work, f"{kind}-{r}")
                os.makedirs(d)
                os.chmod(d, 0o711)
                args = [engine, "run", "--quiet", "--outdir", os.path.join(d, "out"), f"--parallel={a.parallel}"]
                if kind == "flagged":
                    args += ["--events", os.path.join(d, "events.jsonl"), "--step-logs", os.path.join(d, "logs"),
                             "--workdir", os.path.join(d, "work"), "--provenance", os.path.join(d, "prov"),
                             "--cachedir", os.path.join(d, "cache"), "--run-as", "65534:65534",
                             "--allow-root", src, "--allow-root", d]
                args += [os.path.join(src, "main.cwl"), os.path.join(src, "job.json")]
                t2 = time.perf_counter()
                p = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=d)
                times.append(time.perf_counter() - t2)
                assert p.returncode == 0, p.stderr.decode()[-2000:]
            print(f"round {r + 1}: platform {plat[-1]:.2f} s, engine alone {bare[-1]:.2f} s, "
                  f"engine with the platform's flags {flagged[-1]:.2f} s")
        mp, mb, mf = statistics.median(plat), statistics.median(bare), statistics.median(flagged)
        print(f"\n{a.n}-job scatter, medians of {a.rounds}:")
        print(f"| | time | ratio to the engine alone | overhead per step |")
        print(f"|---|---|---|---|")
        print(f"| engine alone (`insitu-cwl run`) | {mb:.2f} s | 1.00 | |")
        print(f"| engine with the platform's flags | {mf:.2f} s | {mf / mb:.2f} | {(mf - mb) / a.n * 1000:.2f} ms |")
        print(f"| through the platform | {mp:.2f} s | {mp / mb:.2f} | {(mp - mb) / a.n * 1000:.2f} ms |")
    finally:
        server.terminate()
        server.wait()
        release_and_remove(work)


if __name__ == "__main__":
    sys.exit(main())
