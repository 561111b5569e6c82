#!/usr/bin/env python3
"""Launch overhead: JupyterLab started through the platform (launch request ->
first 200 from the lab's /api/status through the authenticating proxy, as a
browser would get it) against the same JupyterLab started bare on the host
(spawn -> first 200 from /api/status), in one run, alternating. Usage: bench/launch.py [rounds]  (after scripts/venv.sh
and a release build; bench/launch.sh does both)."""
import json, os, signal, statistics, subprocess, sys, tempfile, time, urllib.request

from benchlib import free_port, release_and_remove

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv", "bin")


def http(method, url, token=None, body=None):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def answers(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status < 500
    except urllib.error.HTTPError as e:
        return e.code < 500 and e.code != 404
    except Exception:
        return False


def bare_start(work):
    port = free_port()
    base = "/labs/bare/"
    cmd = [os.path.join(VENV, "jupyter-lab"), "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--ServerApp.base_url={base}", f"--ServerApp.root_dir={work}", "--IdentityProvider.token=",
           "--ServerApp.password=", "--allow-root"]
    env = dict(os.environ, HOME=work, JUPYTER_CONFIG_DIR=os.path.join(work, ".jupyter"))
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    while not answers(f"http://127.0.0.1:{port}{base}api/status"):
        time.sleep(0.005)
    t = time.perf_counter() - t0
    os.killpg(p.pid, signal.SIGTERM); p.wait()
    return t


STEPS = []


def platform_start(url, token):
    t0 = time.perf_counter()
    lab = http("POST", url + "/api/v1/labs", token, {"datalab": "jupyterlab", "volumes": []})
    while lab["state"] in ("pending", "starting"):
        time.sleep(0.005)
        lab = http("GET", f"{url}/api/v1/labs/{lab['id']}", token)
    assert lab["state"] == "running", lab
    steps = {s["step"]: s["at_ms"] for s in lab.get("progress", [])}
    t_running = time.perf_counter() - t0
    # Sign in to the lab's origin with the single-use link, then ask the lab.
    link = http("POST", f"{url}/api/v1/labs/{lab['id']}/open", token)["url"]
    jar = urllib.request.HTTPCookieProcessor()
    opener = urllib.request.build_opener(jar)
    with opener.open(link, timeout=10) as r:
        r.read()
    proxy = link.split("/labs/")[0]
    with opener.open(f"{proxy}/labs/{lab['id']}/api/status", timeout=10) as r:
        assert r.status == 200, r.status
        r.read()
    t = time.perf_counter() - t0
    http("POST", f"{url}/api/v1/labs/{lab['id']}/stop", token)
    STEPS.append((steps, t_running, t))
    return t


def main():
    work = tempfile.mkdtemp(prefix="insitu-bench-launch-")
    os.chmod(work, 0o711)
    port, proxy_port = free_port(), free_port()
    env = dict(os.environ, INSITU_LISTEN=f"127.0.0.1:{port}", INSITU_DATA_DIR=os.path.join(work, "data"),
               INSITU_PROXY__LISTEN=f"127.0.0.1:{proxy_port}",
               # urllib cannot resolve per-lab names under .localhost
               INSITU_PROXY__PUBLIC_URL=f"http://127.0.0.1:{proxy_port}",
               INSITU_ADMIN__PASSWORD="bench-password-123", INSITU_LOG="warn")
    server = subprocess.Popen([os.path.join(ROOT, "target/release/insitu"), "demo"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        while not answers(url + "/healthz"):
            time.sleep(0.05)
        token = http("POST", url + "/api/v1/auth/token", None,
                     {"username": "admin", "password": "bench-password-123", "token_name": "bench"})["token"]
        bare, plat = [], []
        for i in range(ROUNDS):
            bare.append(bare_start(tempfile.mkdtemp(dir=work)))
            plat.append(platform_start(url, token))
        mb, mp = statistics.median(bare), statistics.median(plat)
        print(f"JupyterLab bare start      median {mb*1000:7.0f} ms  ({', '.join(f'{x*1000:.0f}' for x in bare)})")
        print(f"JupyterLab through Insitu (to first proxied 200) median {mp*1000:7.0f} ms  ({', '.join(f'{x*1000:.0f}' for x in plat)})")
        print(f"launch overhead (median difference) {1000*(mp-mb):+.0f} ms over {ROUNDS} rounds")
        med = lambda xs: statistics.median(xs) if xs else float("nan")
        for name in ("sandbox_prepared", "process_started", "ready"):
            print(f"  step {name:<18} median at {med([s[0].get(name, float('nan')) for s in STEPS]):6.0f} ms")
        print(f"  seen running by the client   median at {1000*med([s[1] for s in STEPS]):6.0f} ms")
    finally:
        server.terminate(); server.wait()
        release_and_remove(work)


if __name__ == "__main__":
    main()
