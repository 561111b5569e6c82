#!/usr/bin/env bash
# Makes the container images that CWL tools name in DockerRequirement, for
# machines that reach no image registry: each is built here from Debian's
# packages (debootstrap), then imported into podman under the name the
# tools ask for. Images already present are kept.
#
#   docker.io/debian:stable-slim  Debian, minimal
#   docker.io/python:3-slim       the same with python3 (`python` too)
#   docker.io/bash:4.4            the same, whose entrypoint runs bash when
#                                 the command starts with an option
#   docker.io/alpine:latest       the minimal Debian image under that name
#                                 (the suite only needs a POSIX shell and
#                                 coreutils from it)
#
# Usage: scripts/cwl-images.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."
force=${1:-}
images=(docker.io/debian:stable-slim docker.io/python:3-slim docker.io/bash:4.4 docker.io/alpine:latest)
missing=0
for i in "${images[@]}"; do
  if [ "$force" = --force ] || ! podman image exists "$i"; then missing=1; fi
done
[ $missing = 1 ] || { echo "container images present: ${images[*]}"; exit 0; }

. /etc/os-release
suite=${VERSION_CODENAME:-bookworm}
mirror=${INSITU_DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d /tmp/insitu-images.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
echo "building container images from Debian $suite ($mirror)"
debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 \
  || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

import() { # import NAME [--change ...]
  local name=$1; shift
  local old
  old=$(podman image inspect --format '{{.Id}}' "$name" 2>/dev/null || true)
  tar -C "$rootfs" -c . | podman import -q --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$@" - "$name" > /dev/null
  # The image this one replaces, unless something else still uses it.
  [ -z "$old" ] || podman rmi "$old" > /dev/null 2>&1 || true
  echo "  $name"
}
import docker.io/debian:stable-slim
import docker.io/alpine:latest

cat > "$rootfs/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# A command that starts with an option, or that is not a program, is given
# to bash; anything else runs as it is.
if [ "${1#-}" != "$1" ] || ! command -v "$1" > /dev/null 2>&1; then
  set -- bash "$@"
fi
exec "$@"
EOF
chmod 755 "$rootfs/usr/local/bin/docker-entrypoint.sh"
import docker.io/bash:4.4 --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]'
rm "$rootfs/usr/local/bin/docker-entrypoint.sh"

cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
  sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends python3' \
  > "$work/python3.log" 2>&1 \
  || { tail -n 20 "$work/python3.log" >&2; echo "error: cannot install python3 into the image" >&2; exit 1; }
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python"
import docker.io/python:3-slim --change 'CMD ["python3"]'
