#!/usr/bin/env bash
# The Python side: uv (from PyPI when missing) and the workspace's locked packages in .venv.
source "$(dirname "$0")/common.sh"
export UV_PYTHON_DOWNLOADS=never  # use this machine's Python 3.11+, never download one
if ! command -v uv >/dev/null; then
  say "installing uv from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check uv >&2 \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages uv >&2
fi
cd "$ROOT" && uv sync --frozen --quiet
