#!/usr/bin/env python3
"""Launch overhead: JupyterLab started through the platform (launch request ->
lab running, i.e. its readiness path answered inside the sandbox) against the
same JupyterLab started bare on the host (spawn -> /api/status answers), in
one run, alternating. Usage: bench/launch.py [rounds]  (after scripts/venv.sh
and a release build; bench/launch.sh does both)."""
import json, os, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv", "bin")


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


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


def platform_start(url, token):
    t0 = time.perf_counter()
    lab = http("POST", url + "/api/v1/labs", token, {"datalab": "jupyterlab", "volumes": []})
    while lab["state"] in ("pending", "starting"):
        time.sleep(0.005)
        lab = http("GET", f"{url}/api/v1/labs/{lab['id']}", token)
    t = time.perf_counter() - t0
    assert lab["state"] == "running", lab
    http("POST", f"{url}/api/v1/labs/{lab['id']}/stop", token)
    return t


def main():
    work = tempfile.mkdtemp(prefix="insitu-bench-launch-")
    os.chmod(work, 0o711)
    port = free_port()
    env = dict(os.environ, INSITU_LISTEN=f"127.0.0.1:{port}", INSITU_DATA_DIR=os.path.join(work, "data"),
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
        print(f"JupyterLab through Insitu  median {mp*1000:7.0f} ms  ({', '.join(f'{x*1000:.0f}' for x in plat)})")
        print(f"launch overhead (median difference) {1000*(mp-mb):+.0f} ms over {ROUNDS} rounds")
    finally:
        server.terminate(); server.wait()


if __name__ == "__main__":
    main()
