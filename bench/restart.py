#!/usr/bin/env python3
"""Restart with running labs: from the start of a new `insitu serve` process
to every one of N running labs (default 20) answering through the lab proxy
again, each with a fresh ticket as a returning browser would get one, after
the old process was ended by SIGTERM (an operator's restart) and by SIGKILL
(a crash). The labs are a light datalab, a ten-line Python HTTP server
answering every GET, not JupyterLab: twenty JupyterLabs do not fit on a
small machine, and the figure is the platform's (re-adoption, probing,
routes), not the tool's. Usage: bench/restart.py [labs] [rounds]  (after a
release build; bench/restart.sh does it)."""
import concurrent.futures, json, os, signal, statistics, subprocess, sys
import tempfile, time, urllib.request
from http.cookiejar import CookieJar

from benchlib import free_port, release_and_remove

LABS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "bench-password-123"

# The light datalab: answers 200 to every GET, whatever the path.
SERVER = (
    "import http.server, sys\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers()\n"
    "        self.wfile.write(b'ok')\n"
    "    def log_message(self, *a): pass\n"
    "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n"
)


def http(method, url, token=None, body=None, timeout=10):
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


def answers_through_proxy(url, token, lab_id):
    """A fresh ticket, redeemed, then the lab itself through the proxy."""
    try:
        link = http("POST", f"{url}/api/v1/labs/{lab_id}/open", token, timeout=5)["url"]
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        with opener.open(link, timeout=5) as r:
            r.read()
        proxy = link.split("/labs/")[0]
        with opener.open(f"{proxy}/labs/{lab_id}/", timeout=5) as r:
            return r.status == 200 and r.read() == b"ok"
    except Exception:
        return False


def wait_answering(url, token, lab_id, t0):
    while not answers_through_proxy(url, token, lab_id):
        time.sleep(0.01)
    return time.perf_counter() - t0


def toml_str(s):
    return json.dumps(s)


def main():
    work = tempfile.mkdtemp(prefix="insitu-bench-restart-")
    os.chmod(work, 0o711)
    catalogue = os.path.join(work, "catalogue")
    os.makedirs(catalogue)
    with open(os.path.join(catalogue, "light.toml"), "w") as f:
        f.write('title = "Light web tool"\ndescription = "Answers every GET"\nversion = "1"\nkind = "web"\n'
                'license = "MIT"\n[launch]\n'
                f'command = ["python3", "-c", {toml_str(SERVER)}, "{{port}}"]\nreadiness_path = "/"\n'
                '[resources]\nmemory = "64MiB"\n')
    port, proxy_port = free_port(), free_port()
    config = os.path.join(work, "insitu.toml")
    with open(config, "w") as f:
        f.write(f'listen = "127.0.0.1:{port}"\ndata_dir = {toml_str(os.path.join(work, "data"))}\n'
                f'catalogue_dir = {toml_str(catalogue)}\n'
                f'[admin]\npassword = "{PASSWORD}"\n'
                f'[labs]\nmax_per_user = {LABS}\nidle_timeout = "0s"\nnetwork_linger = "1s"\n'
                # urllib cannot resolve per-lab names under .localhost
                f'[proxy]\nlisten = "127.0.0.1:{proxy_port}"\npublic_url = "http://127.0.0.1:{proxy_port}"\n')
    binary = os.path.join(ROOT, "target/release/insitu")
    env = dict(os.environ, INSITU_LOG="warn")

    def serve():
        return subprocess.Popen([binary, "serve", "--config", config], cwd=work, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    url = f"http://127.0.0.1:{port}"
    server = serve()
    results = []
    ids, token = [], None
    try:
        while not healthy(url):
            time.sleep(0.05)
        token = http("POST", url + "/api/v1/auth/token", None,
                     {"username": "admin", "password": PASSWORD, "token_name": "bench"})["token"]
        for _ in range(LABS):
            ids.append(http("POST", url + "/api/v1/labs", token, {"datalab": "light", "volumes": []})["id"])
        for i in ids:
            while True:
                lab = http("GET", f"{url}/api/v1/labs/{i}", token)
                if lab["state"] not in ("pending", "starting"):
                    break
                time.sleep(0.05)
            assert lab["state"] == "running", lab
            assert answers_through_proxy(url, token, i), i
        print(f"{LABS} labs running (light datalab: a Python HTTP server, 64 MiB each)")
        with concurrent.futures.ThreadPoolExecutor(max_workers=LABS) as pool:
            for r in range(ROUNDS):
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    server.send_signal(sig); server.wait()
                    t0 = time.perf_counter()
                    server = serve()
                    # One client waits for the platform, then twenty at once
                    # for their labs (twenty polling an absent server would
                    # only load the machine the server starts on).
                    while not healthy(url):
                        time.sleep(0.005)
                    t_health = time.perf_counter() - t0
                    waits = [pool.submit(wait_answering, url, token, i, t0) for i in ids]
                    times = [w.result() for w in waits]
                    labs = [http("GET", f"{url}/api/v1/labs/{i}", token) for i in ids]
                    assert all(l["state"] == "running" for l in labs), labs
                    results.append((sig.name, t_health, max(times), statistics.median(times)))
                    print(f"round {r + 1} after {sig.name:<7}: /healthz at {t_health * 1000:6.0f} ms, "
                          f"all {LABS} labs answering through the proxy at {max(times) * 1000:6.0f} ms "
                          f"(median lab {statistics.median(times) * 1000:.0f} ms)")
        for name in ("SIGTERM", "SIGKILL"):
            xs = [r[2] for r in results if r[0] == name]
            print(f"after {name}: every lab answering again, median over {len(xs)} rounds "
                  f"{statistics.median(xs) * 1000:.0f} ms")
    finally:
        # Labs outlive the server by design: they are stopped through it,
        # failure or not, and the user's network goes after its linger time.
        if server.poll() is not None and ids:
            server = serve()
            deadline = time.time() + 30
            while not healthy(url) and time.time() < deadline:
                time.sleep(0.05)
        if server.poll() is None and token:
            for i in ids:
                try:
                    http("POST", f"{url}/api/v1/labs/{i}/stop", token, timeout=30)
                except Exception as e:
                    print(f"could not stop lab {i}: {e}", file=sys.stderr)
            time.sleep(2.5)
        server.terminate(); server.wait()
        release_and_remove(work)


if __name__ == "__main__":
    main()
