#!/usr/bin/env bash
# Installs what stepwire needs outside cargo, idempotently: a Python venv (.venv) with ONNX Runtime
# (its shared library is what the `ort` crate loads), the bridges' environments, and the generated
# game files. Safe to run again: each step is skipped when its inputs have not changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv="$root/.venv"
py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null || py=python3

log() { printf '[setup] %s\n' "$*" >&2; }

if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  "$py" -m venv "$venv"
fi

# Reinstall only when a requirements file changed.
stamp="$venv/.stepwire-requirements.sha256"
want=$(cat requirements/runtime.txt requirements/bridges.txt bridges/python/pyproject.toml 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing Python packages (first run builds textworld from source: a few minutes)"
  "$venv/bin/pip" install --quiet --upgrade pip wheel setuptools
  "$venv/bin/pip" install --quiet -r requirements/runtime.txt
  if [ -f requirements/bridges.txt ]; then
    "$venv/bin/pip" install --quiet -r requirements/bridges.txt
  fi
  if [ -f bridges/python/pyproject.toml ]; then
    "$venv/bin/pip" install --quiet -e bridges/python
  fi
  echo "$want" > "$stamp"
else
  log "Python packages up to date"
fi
