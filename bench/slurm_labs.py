#!/usr/bin/env python3
"""Lab launch through Slurm against the local zone: JupyterLab launched in
`local` and in `cluster`, alternating, each timed from the launch request to
the first 200 from the lab's /api/status through the authenticating proxy
(as a browser gets it). Usage: slurm_labs.py URL ROUNDS (bench/slurm_labs.sh
starts the cluster and the server)."""
import json, statistics, sys, time, urllib.request

URL, ROUNDS = sys.argv[1], int(sys.argv[2])


def http(method, url, token=None, body=None):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def launch(token, zone):
    t0 = time.perf_counter()
    lab = http("POST", URL + "/api/v1/labs", token, {"datalab": "jupyterlab", "zone": zone})
    while lab["state"] in ("pending", "starting"):
        time.sleep(0.005)
        lab = http("GET", f"{URL}/api/v1/labs/{lab['id']}", token)
    assert lab["state"] == "running", lab
    link = http("POST", f"{URL}/api/v1/labs/{lab['id']}/open", token)["url"]
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(link, timeout=10) as r:
        r.read()
    proxy = link.split("/labs/")[0]
    with opener.open(f"{proxy}/labs/{lab['id']}/api/status", timeout=10) as r:
        assert r.status == 200, r.status
    t = time.perf_counter() - t0
    steps = {s["step"]: s["at_ms"] for s in lab.get("progress", [])}
    http("POST", f"{URL}/api/v1/labs/{lab['id']}/stop", token)
    return t, steps


token = http("POST", URL + "/api/v1/auth/token", body={"username": "admin", "password": "bench-password-123", "token_name": "bench"})["token"]
times = {"local": [], "cluster": []}
steps = {"local": [], "cluster": []}
launch(token, "local")  # warm the caches once
for _ in range(ROUNDS):
    for zone in ("local", "cluster"):
        t, s = launch(token, zone)
        times[zone].append(t)
        steps[zone].append(s)
for zone in ("local", "cluster"):
    ts = times[zone]
    ready = statistics.median(s.get("process_started", 0) for s in steps[zone])
    print(f"{zone:8} launch -> first 200 through the proxy: median {statistics.median(ts):.2f} s "
          f"(min {min(ts):.2f}, max {max(ts):.2f}; tool started at {ready:.0f} ms median)")
extra = statistics.median(times["cluster"]) - statistics.median(times["local"])
print(f"Slurm adds {extra:+.2f} s per launch (goal: at most +1 s)")
