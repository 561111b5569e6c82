#!/usr/bin/env python3
"""VNC over WebSocket through the lab proxy, against a direct connection.

Starts `insitu demo` (release build) and launches a desktop lab (DS9 by
default) through the API, and, beside it, the same desktop session script
run bare on the host (no sandbox, no proxy). Then, one phase after the
other, SESSIONS concurrent RFB-over-WebSocket clients stream full-screen
updates for DURATION seconds: first straight to the bare session's bridge,
then through the proxy (ticket -> per-lab cookie -> WebSocket upgrade), as
noVNC would. Each client asks for a whole-screen (non-incremental) update,
reads it to the end, and asks again; a "frame" is one complete
FramebufferUpdate. While the proxy phase runs, the resident memory of the
platform process (which holds the proxy) is sampled.

Usage: bench/desktop.py [--sessions 50] [--duration 600] [--datalab ds9]
                        [--encoding zrle|raw] [--sample 10]
(bench/desktop.sh builds and installs what it needs first).
"""
import argparse
import asyncio
import base64
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request

from benchlib import free_port, release_and_remove

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SESSION = os.path.join(ROOT, "crates/insitu-core/src/labs/desktop/session.sh")
ENCODINGS = {"raw": 0, "zrle": 16}


def http(method, url, token=None, body=None):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def answers(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status < 500
    except urllib.error.HTTPError as e:
        return e.code < 500 and e.code != 404
    except Exception:
        return False


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class WebSocket:
    """The smallest client that RFB needs: binary frames, masked sends."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.buf = bytearray()
        self.received = 0

    @classmethod
    async def connect(cls, host, port, path, cookie=None):
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        head = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n"
                f"Origin: http://{host}:{port}\r\n")
        if cookie:
            head += f"Cookie: {cookie}\r\n"
        writer.write((head + "\r\n").encode())
        status = await reader.readuntil(b"\r\n\r\n")
        if not status.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"upgrade refused: {status.splitlines()[0].decode()}")
        return cls(reader, writer)

    def send(self, payload):
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x82, 0x80 | n)
        else:
            head = struct.pack("!BBH", 0x82, 0x80 | 126, n)
        # A zero mask leaves the payload as it is.
        self.writer.write(head + b"\0\0\0\0" + payload)

    async def _frame(self):
        b0, b1 = await self.reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        payload = await self.reader.readexactly(n)
        self.received += n + 2
        opcode = b0 & 0x0F
        if opcode == 0x8:
            raise ConnectionError("closed by the server")
        if opcode == 0x9:
            self.writer.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
            return b""
        return payload if opcode in (0x0, 0x1, 0x2) else b""

    async def read(self, n):
        while len(self.buf) < n:
            self.buf += await self._frame()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


async def rfb_session(host, port, path, cookie, encoding, stop, stats):
    ws = await WebSocket.connect(host, port, path, cookie)
    version = await ws.read(12)
    ws.send(version)
    (count,) = await ws.read(1)
    types = await ws.read(count)
    if 1 not in types:
        raise RuntimeError(f"no 'None' security type offered: {list(types)}")
    ws.send(b"\x01")
    (result,) = struct.unpack("!I", await ws.read(4))
    if result != 0:
        raise RuntimeError("security handshake failed")
    ws.send(b"\x01")  # shared
    w, h = struct.unpack("!HH", await ws.read(4))
    pixel = await ws.read(16)
    bpp = pixel[0] // 8
    (name_len,) = struct.unpack("!I", await ws.read(4))
    await ws.read(name_len)
    ws.send(struct.pack("!BxHi", 2, 1, ENCODINGS[encoding]))
    request = struct.pack("!BBHHHH", 3, 0, 0, 0, w, h)
    ws.send(request)
    while not stop.is_set():
        (kind,) = await ws.read(1)
        if kind == 0:
            _, rects = struct.unpack("!BH", await ws.read(3))
            for _ in range(rects):
                _, _, rw, rh, enc = struct.unpack("!HHHHi", await ws.read(12))
                if enc == 0:
                    await ws.read(rw * rh * bpp)
                elif enc == 16:
                    (n,) = struct.unpack("!I", await ws.read(4))
                    await ws.read(n)
                elif enc == 1:
                    await ws.read(4)
                else:
                    raise RuntimeError(f"unexpected encoding {enc}")
            stats["frames"] += 1
            stats["bytes"] = ws.received
            ws.send(request)
        elif kind == 1:
            _, _, n = struct.unpack("!BHH", await ws.read(5))
            await ws.read(6 * n)
        elif kind == 2:
            pass
        elif kind == 3:
            _, n = struct.unpack("!3sI", await ws.read(7))
            await ws.read(n)
        else:
            raise RuntimeError(f"unexpected server message {kind}")
    ws.writer.close()


async def phase(label, host, port, path, cookie, args, sample_pid=None):
    stop = asyncio.Event()
    per = [{"frames": 0, "bytes": 0} for _ in range(args.sessions)]
    tasks = [asyncio.create_task(rfb_session(host, port, path, cookie, args.encoding, stop, s)) for s in per]
    t0 = time.monotonic()
    samples = []
    last_frames, last_t = 0, t0
    while time.monotonic() - t0 < args.duration:
        await asyncio.sleep(min(args.sample, max(0.1, args.duration - (time.monotonic() - t0))))
        failed = [t for t in tasks if t.done() and t.exception()]
        if failed:
            stop.set()
            raise failed[0].exception()
        now = time.monotonic()
        frames = sum(s["frames"] for s in per)
        fps = (frames - last_frames) / (now - last_t)
        last_frames, last_t = frames, now
        rss = rss_kib(sample_pid) / 1024 if sample_pid else None
        samples.append((now - t0, fps, rss))
        extra = f"  proxy RSS {rss:7.1f} MiB" if rss is not None else ""
        print(f"  {label:6} t={now - t0:6.0f}s  {fps:8.1f} frames/s{extra}", flush=True)
    stop.set()
    await asyncio.wait(tasks, timeout=10)
    elapsed = time.monotonic() - t0
    frames = sum(s["frames"] for s in per)
    received = sum(s["bytes"] for s in per)
    return frames / elapsed, received / elapsed / 2**20, samples


def start_bare(work, datalab_command, port):
    """The desktop session as a lab runs it, but bare on the host."""
    display = f":{free_display()}"
    # Bare on the host, nothing but this script reaches it: no lab secret.
    env = dict(os.environ, INSITU_DESKTOP_RUN=os.path.join(work, "bare"), INSITU_DESKTOP_DISPLAY=display,
               HOME=work, INSITU_DESKTOP_NO_AUTH="1")
    proc = subprocess.Popen(["bash", SESSION, str(port), "/labs/direct/", "1280x800", "direct", "--",
                             *datalab_command], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while not answers(f"http://127.0.0.1:{port}/labs/direct/"):
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError("the bare desktop session did not start")
        time.sleep(0.2)
    return proc


def free_display():
    for n in range(50, 100):
        if not os.path.exists(f"/tmp/.X11-unix/X{n}") and not os.path.exists(f"/tmp/.X{n}-lock"):
            return n
    raise RuntimeError("no free X display number")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--duration", type=float, default=600, help="seconds per phase")
    ap.add_argument("--datalab", default="ds9")
    ap.add_argument("--encoding", choices=sorted(ENCODINGS), default="zrle")
    ap.add_argument("--sample", type=float, default=10, help="seconds between samples")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target/release/insitu"))
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="insitu-bench-desktop-")
    os.chmod(work, 0o711)
    port, proxy_port = free_port(), free_port()
    env = dict(os.environ, INSITU_LISTEN=f"127.0.0.1:{port}", INSITU_DATA_DIR=os.path.join(work, "data"),
               INSITU_PROXY__LISTEN=f"127.0.0.1:{proxy_port}",
               INSITU_PROXY__PUBLIC_URL=f"http://127.0.0.1:{proxy_port}",
               INSITU_LABS__IDLE_TIMEOUT="2h",
               INSITU_ADMIN__PASSWORD="bench-password-123", INSITU_LOG="warn")
    server = subprocess.Popen([args.binary, "demo"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    bare = None
    try:
        while not answers(url + "/healthz"):
            time.sleep(0.05)
        token = http("POST", url + "/api/v1/auth/token", None,
                     {"username": "admin", "password": "bench-password-123", "token_name": "bench"})["token"]
        with open(os.path.join(ROOT, "catalogue/datalabs", args.datalab + ".toml"), "rb") as f:
            command = tomllib.load(f)["launch"]["command"]
        bare_port = free_port()
        bare = start_bare(work, command, bare_port)

        lab = http("POST", url + "/api/v1/labs", token, {"datalab": args.datalab, "volumes": []})
        while lab["state"] in ("pending", "starting"):
            time.sleep(0.2)
            lab = http("GET", f"{url}/api/v1/labs/{lab['id']}", token)
        assert lab["state"] == "running", lab
        link = http("POST", f"{url}/api/v1/labs/{lab['id']}/open", token)["url"]
        jar = urllib.request.HTTPCookieProcessor()
        with urllib.request.build_opener(jar).open(link, timeout=10) as r:
            r.read()
        cookie = "; ".join(f"{c.name}={c.value}" for c in jar.cookiejar)
        proxy = link.split("/labs/")[0].removeprefix("http://")
        phost, pport = proxy.rsplit(":", 1)

        print(f"{args.sessions} sessions, {args.duration:.0f} s per phase, {args.datalab}, {args.encoding}, "
              f"full-screen updates", flush=True)
        direct = asyncio.run(phase("direct", "127.0.0.1", bare_port, "/labs/direct/websockify", None, args))
        rss0 = rss_kib(server.pid) / 1024
        proxied = asyncio.run(phase("proxy", phost, int(pport), f"/labs/{lab['id']}/websockify", cookie, args,
                                    sample_pid=server.pid))
        rss1 = rss_kib(server.pid) / 1024
        samples = [s for s in proxied[2] if s[2] is not None]
        warm = [s for s in samples if s[0] >= min(60, args.duration / 4)]
        print()
        print(f"direct: {direct[0]:8.1f} frames/s  {direct[1]:7.1f} MiB/s")
        print(f"proxy:  {proxied[0]:8.1f} frames/s  {proxied[1]:7.1f} MiB/s  "
              f"({100 * proxied[0] / direct[0]:.0f}% of direct)")
        if warm:
            rs = [s[2] for s in warm]
            print(f"proxy process RSS: {rss0:.1f} MiB before, {rss1:.1f} MiB after; after warm-up "
                  f"min {min(rs):.1f} / max {max(rs):.1f} MiB, drift {rs[-1] - rs[0]:+.1f} MiB "
                  f"over {warm[-1][0] - warm[0][0]:.0f} s")
        http("POST", f"{url}/api/v1/labs/{lab['id']}/stop", token)
    finally:
        if bare:
            os.killpg(bare.pid, signal.SIGTERM)
            bare.wait()
        server.terminate()
        server.wait()
        release_and_remove(work)


if __name__ == "__main__":
    sys.exit(main())
