#!/usr/bin/env bash
# Makes the base images that the templates of user-developed datalabs build
# on, once per machine (no image registry is reachable here):
#
#   localhost/insitu/python:3   Debian with python3, venv and pip (the web
#                               tool and Python templates)
#
# It starts from docker.io/python:3-slim, which scripts/cwl-images.sh makes
# from Debian's packages, and installs venv and pip from Debian's package
# index. The certificate authorities this machine adds to the system's
# (/usr/local/share/ca-certificates, such as a site's TLS-inspecting proxy)
# are trusted in the image too, by pip as well, so that builds reach the
# package indexes this machine reaches. Images already present are kept.
#
# Usage: scripts/devlab-images.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."
force=${1:-}
python=localhost/insitu/python:3
if [ "$force" != --force ] && podman image exists "$python"; then
  echo "datalab base images present: $python"
  exit 0
fi
podman image exists docker.io/python:3-slim || scripts/cwl-images.sh
work=$(mktemp -d /tmp/insitu-devlab-images.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/ca"
cp /usr/local/share/ca-certificates/*.crt "$work/ca/" 2>/dev/null || true
cat > "$work/Containerfile" <<'CONTAINERFILE'
FROM docker.io/python:3-slim
COPY ca/ /usr/local/share/ca-certificates/
RUN apt-get update -qq && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      python3-venv python3-pip ca-certificates > /dev/null && \
    update-ca-certificates > /dev/null && \
    rm -rf /var/cache/apt/archives/*.deb /var/lib/apt/lists/*
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
CONTAINERFILE
echo "building $python"
podman build -q --runtime runc --network host -t "$python" "$work" > "$work/build.log" 2>&1 \
  || { tail -n 20 "$work/build.log" >&2; echo "error: cannot build $python" >&2; exit 1; }
echo "  $python"
