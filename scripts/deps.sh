#!/usr/bin/env bash
# Installs the Debian packages the platform and its tests use, when missing.
# Usage: scripts/deps.sh run|test
set -euo pipefail
want=(build-essential pkg-config ca-certificates curl bubblewrap iproute2 python3 python3-venv)
# Desktop datalabs: the X/VNC server, the WebSocket bridge and noVNC, a
# window manager, the X tools the session reads window titles with, and the
# catalogue's desktop programs.
want+=(tigervnc-standalone-server websockify novnc matchbox-window-manager x11-utils xdotool
       topcat saods9 aladin ftools-fv qfitsview)
# The pipeline development page's code editor (CodeMirror 5, served by the
# platform from /usr/share/javascript/codemirror).
want+=(libjs-codemirror)
case "${1:-run}" in
  run) ;;
  # xclip: the desktop clipboard test sets and reads the X clipboard in a lab.
  # podman, runc and debootstrap: CWL tools with DockerRequirement run in
  # containers of images made locally (scripts/cwl-images.sh).
  # slurm-wlm and munge: the single-node cluster of the Slurm zone tests
  # (scripts/slurm.sh).
  # Node.js with npm runs the OpenID provider of the OIDC login tests
  # (panva's oidc-provider, a certified implementation, installed below).
  # Machines of this kind ship NodeSource's nodejs, which carries npm and
  # conflicts with Debian's npm package: take Debian's only when npm is absent.
  test) want+=(bubblewrap postgresql chromium chromium-driver wrk python3 python3-venv xclip
               podman runc debootstrap slurm-wlm munge)
        command -v npm >/dev/null || want+=(nodejs npm) ;;
  *) echo "usage: $0 run|test" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Podman on this kind of host: runc as the runtime, and no default ulimits
# (raising them is refused here). A drop-in, so the packaged file stays.
if command -v podman >/dev/null && [ ! -e /etc/containers/containers.conf.d/50-insitu.conf ]; then
  mkdir -p /etc/containers/containers.conf.d
  printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n' \
    > /etc/containers/containers.conf.d/50-insitu.conf
fi
# The OpenID provider the OIDC login tests run (crates/insitu/tests/it/
# fixtures/oidc_provider.mjs reads it from here, or from
# $INSITU_OIDC_PROVIDER_MODULES).
oidc_dir=/opt/insitu-test/oidc-provider
if [ "${1:-run}" = test ] && [ ! -e "$oidc_dir/node_modules/oidc-provider" ]; then
  echo "installing oidc-provider into $oidc_dir"
  mkdir -p "$oidc_dir"
  npm install --prefix "$oidc_dir" --no-audit --no-fund --silent oidc-provider@9.13.3
fi
if ! command -v cargo >/dev/null; then
  echo "error: cargo is not installed; this machine kind ships the Rust toolchain (rustup)" >&2
  exit 1
fi
