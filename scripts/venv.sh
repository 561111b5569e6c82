#!/usr/bin/env bash
# Makes .venv: the Python tools labs run (JupyterLab, astropy), from PyPI,
# on Debian's python3 so that sandboxes, which see /usr but not /root, can
# run them.
set -euo pipefail
cd "$(dirname "$0")/.."
py=/usr/bin/python3
if [ -e .venv/bin/python3 ] && [ "$(readlink -f .venv/bin/python3)" != "$(readlink -f $py)" ]; then
  rm -rf .venv
fi
[ -x .venv/bin/python3 ] || $py -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check jupyterlab astropy
