#!/usr/bin/env python3
"""Developed datalabs, in one run of `insitu demo`:

1. Rebuild of an unchanged datalab (goal: <= 2 s): a JupyterLab datalab made
   from the Python template (JupyterLab installed from PyPI by its first
   build, which is not timed), then built again unchanged: from the build
   request to the build seen SUCCEEDED through the API, every layer from
   podman's cache.
2. Launch overhead of the container launcher against the sandbox launcher
   for the same tool, JupyterLab (goal: <= 200 ms more): the shipped
   `jupyterlab` datalab (bubblewrap sandbox, the checkout's virtualenv) and
   the developed one (podman container, runtime runc), launched
   alternately, each from the launch request to the first 200 from the
   lab's /api/status through the authenticating proxy, as a browser gets it.

Usage: bench/devlabs.py [rounds]  (after scripts/venv.sh,
scripts/devlab-images.sh and a release build; bench/devlabs.sh does them).
INSITU_BIN names another server binary (a debug build, say)."""
import json, os, statistics, subprocess, sys, tempfile, time, urllib.request

from benchlib import free_port, release_and_remove

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("INSITU_BIN", os.path.join(ROOT, "target/release/insitu"))
PASSWORD = "bench-password-123"
NAME = "benchjupyter"


def http(method, url, token=None, body=None, timeout=30):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def answers(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status < 500
    except Exception:
        return False


def build(url, token):
    """Build request -> build seen ended; the build and the seconds."""
    t0 = time.perf_counter()
    b = http("POST", f"{url}/api/v1/devlabs/{NAME}/builds", token)
    while b["state"] in ("queued", "running"):
        time.sleep(0.01)
        b = http("GET", f"{url}/api/v1/devlabs/{NAME}/builds/{b['number']}", token)
    return b, time.perf_counter() - t0


def launch(url, token, datalab):
    """Launch request -> first 200 from /api/status through the proxy."""
    t0 = time.perf_counter()
    lab = http("POST", url + "/api/v1/labs", token, {"datalab": datalab, "volumes": []})
    while lab["state"] in ("pending", "starting"):
        time.sleep(0.005)
        lab = http("GET", f"{url}/api/v1/labs/{lab['id']}", token)
    assert lab["state"] == "running", lab
    link = http("POST", f"{url}/api/v1/labs/{lab['id']}/open", token)["url"]
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(link, timeout=10) as r:
        r.read()
    proxy = link.split("/labs/")[0]
    with opener.open(f"{proxy}/labs/{lab['id']}/api/status", timeout=10) as r:
        assert r.status == 200, r.status
        r.read()
    t = time.perf_counter() - t0
    steps = {s["step"]: s["at_ms"] for s in lab.get("progress", [])}
    http("POST", f"{url}/api/v1/labs/{lab['id']}/stop", token, timeout=60)
    return t, steps


def main():
    work = tempfile.mkdtemp(prefix="insitu-bench-devlabs-")
    os.chmod(work, 0o711)
    port, proxy_port = free_port(), free_port()
    env = dict(os.environ, INSITU_LISTEN=f"127.0.0.1:{port}", INSITU_DATA_DIR=os.path.join(work, "data"),
               INSITU_PROXY__LISTEN=f"127.0.0.1:{proxy_port}",
               # urllib cannot resolve per-lab names under .localhost
               INSITU_PROXY__PUBLIC_URL=f"http://127.0.0.1:{proxy_port}",
               INSITU_ADMIN__PASSWORD=PASSWORD, INSITU_LOG="warn")
    server = subprocess.Popen([BIN, "demo"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    token = None
    try:
        while not answers(url + "/healthz"):
            time.sleep(0.05)
        token = http("POST", url + "/api/v1/auth/token", None,
                     {"username": "admin", "password": PASSWORD, "token_name": "bench"})["token"]
        http("POST", url + "/api/v1/devlabs", token,
             {"name": NAME, "template": "python", "title": "JupyterLab (container)"})
        d = http("GET", f"{url}/api/v1/devlabs/{NAME}", token)
        d["source"]["files"]["requirements.txt"] = "# JupyterLab alone\n"
        http("PUT", f"{url}/api/v1/devlabs/{NAME}", token,
             {"definition": d["definition"], "source": d["source"]})
        first, t_first = build(url, token)
        assert first["state"] == "succeeded", first
        print(f"first build (JupyterLab from PyPI, or podman's cache): {t_first:.1f} s")
        rebuilds = []
        for _ in range(ROUNDS):
            b, t = build(url, token)
            assert b["state"] == "succeeded", b
            rebuilds.append(t)
        print(f"rebuild of an unchanged datalab  median {statistics.median(rebuilds)*1000:6.0f} ms  "
              f"({', '.join(f'{x*1000:.0f}' for x in rebuilds)})  goal <= 2000 ms")
        sandbox, container = [], []
        for _ in range(ROUNDS):
            sandbox.append(launch(url, token, "jupyterlab"))
            container.append(launch(url, token, NAME))
        ms = statistics.median(t for t, _ in sandbox)
        mc = statistics.median(t for t, _ in container)
        print(f"JupyterLab in a sandbox   (to first proxied 200) median {ms*1000:6.0f} ms  "
              f"({', '.join(f'{t*1000:.0f}' for t, _ in sandbox)})")
        print(f"JupyterLab in a container (to first proxied 200) median {mc*1000:6.0f} ms  "
              f"({', '.join(f'{t*1000:.0f}' for t, _ in container)})")
        print(f"container launcher overhead (median difference) {1000*(mc-ms):+.0f} ms over {ROUNDS} rounds  goal <= +200 ms")
        med = lambda xs: statistics.median(xs) if xs else float("nan")
        for name in ("sandbox_prepared", "process_started", "ready"):
            s = med([st.get(name, float("nan")) for _, st in sandbox])
            c = med([st.get(name, float("nan")) for _, st in container])
            print(f"  step {name:<18} median at {s:6.0f} ms (sandbox)  {c:6.0f} ms (container)")
    finally:
        # The datalab goes with its images.
        try:
            http("DELETE", f"{url}/api/v1/devlabs/{NAME}", token)
        except Exception as e:
            print(f"could not delete {NAME}: {e}", file=sys.stderr)
        server.terminate(); server.wait()
        release_and_remove(work)


if __name__ == "__main__":
    main()
