#!/usr/bin/env bash
# Lets go of what a stopped Insitu server left mounted under a data
# directory: workspaces mounted from their images outlive the server by
# design (a restart finds them), so a throw-away data directory (a
# benchmark's, a trial's) must be released before it is removed. Each mount
# is detached lazily, deepest first, after the processes still using it (a
# lab or SAMP hub the server left running) are ended; its loop device goes
# with it.
# Usage: scripts/release-mounts.sh DIR
set -euo pipefail
dir=$(realpath -m "${1:?usage: $0 DIR}")
findmnt -rn -o TARGET | awk -v d="$dir/" 'index($0, d) == 1' | sort -r |
  while read -r target; do
    # findmnt writes spaces and other odd bytes as \xHH.
    target=$(printf '%b' "$target")
    if command -v fuser >/dev/null; then fuser -s -k -m "$target" 2>/dev/null || true; fi
    umount -l "$target" || true
  done
