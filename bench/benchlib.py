"""What the benchmarks share: letting go of a throw-away server's data
directory. Workspaces mounted from their images outlive the server by
design, so they are released (scripts/release-mounts.sh) before the
directory is removed."""

import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def release_and_remove(work):
    subprocess.run([os.path.join(ROOT, "scripts/release-mounts.sh"), work], check=False)
    shutil.rmtree(work, ignore_errors=True)
