"""What the benchmarks share: a free port for a throw-away server, and
letting go of its data directory (workspaces mounted from their images
outlive the server by design, so they are released with
scripts/release-mounts.sh before the directory is removed)."""

import os
import shutil
import socket
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def release_and_remove(work):
    subprocess.run([os.path.join(ROOT, "scripts/release-mounts.sh"), work], check=False)
    shutil.rmtree(work, ignore_errors=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p
