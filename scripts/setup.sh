#!/usr/bin/env bash
# Installs what stepwire needs outside cargo, idempotently: a Python venv (.venv) with ONNX Runtime
# (its shared library is what the `ort` crate loads), the bridges' environments, and the generated
# game files. Safe to run again: each step is skipped when its inputs have not changed.
# `--train` also installs the training stack (requirements/train.txt: PyTorch, transformers,
# optimum-onnx; about 3 GB, since PyPI's torch carries CUDA libraries it does not need here).
set -euo pipefail
train=0
for arg in "$@"; do
  case "$arg" in
    --train) train=1 ;;
    *) echo "usage: scripts/setup.sh [--train]" >&2; exit 2 ;;
  esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv="$root/.venv"
py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null || py=python3

log() { printf '[setup] %s\n' "$*" >&2; }

# pip reports a full disk as "OSError: [Errno 28]" half-way through an install; say it up front,
# with the figure, before starting a large one.
need_free_gib() { # need_free_gib GIB WHAT
  local free_kib
  free_kib=$(df -Pk "$root" | awk 'NR==2 {print $4}')
  if [ "$free_kib" -lt $(($1 * 1024 * 1024)) ]; then
    log "error: $2 needs about $1 GiB free on the disk holding $root; $((free_kib / 1024 / 1024)) GiB is free."
    log "free some space (cargo clean, or remove .cache/large, which scripts/build-large-models.py rebuilds) and run again"
    exit 1
  fi
}

if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  "$py" -m venv "$venv"
fi

# Reinstall only when a requirements file changed.
stamp="$venv/.stepwire-requirements.sha256"
want=$(cat requirements/runtime.txt requirements/bridges.txt requirements/hosts.txt requirements/cluster.txt bridges/python/pyproject.toml 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  need_free_gib 3 "installing the runtime and bridge Python packages"
  log "installing Python packages (first run builds textworld from source: a few minutes)"
  "$venv/bin/pip" install --quiet --upgrade pip wheel setuptools
  "$venv/bin/pip" install --quiet -r requirements/runtime.txt
  if [ -f requirements/bridges.txt ]; then
    "$venv/bin/pip" install --quiet -r requirements/bridges.txt
  fi
  # The Python host library's dependencies (its tests run it from hosts/python on PYTHONPATH).
  if [ -f requirements/hosts.txt ]; then
    "$venv/bin/pip" install --quiet -r requirements/hosts.txt
  fi
  if [ -f requirements/cluster.txt ]; then
    "$venv/bin/pip" install --quiet -r requirements/cluster.txt
  fi
  if [ -f bridges/python/pyproject.toml ]; then
    "$venv/bin/pip" install --quiet -e bridges/python
  fi
  echo "$want" > "$stamp"
else
  log "Python packages up to date"
fi

# The training stack, only when asked for (make test and the training recipe ask).
train_stamp="$venv/.stepwire-train.sha256"
train_want=$(sha256sum requirements/train.txt | cut -d' ' -f1)
if [ "$train" = 1 ] && [ "$(cat "$train_stamp" 2>/dev/null)" != "$train_want" ]; then
  need_free_gib 8 "installing the training stack (about 3 GB to download, 6 GB installed)"
  log "installing the training stack (requirements/train.txt; the first time downloads about 3 GB)"
  "$venv/bin/pip" install --quiet -r requirements/train.txt
  "$venv/bin/pip" install --quiet -e train
  echo "$train_want" > "$train_stamp"
fi

# Java 17 for ScienceWorld (its jar is inside the wheel). Installed only when `java` is missing.
if ! command -v java >/dev/null 2>&1; then
  log "installing Java 17 (openjdk-17-jre-headless) for ScienceWorld"
  sudo_=""
  [ "$(id -u)" = 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi

# The TypeScript host library's packages (hosts/typescript): `npm ci` from its lock file, again
# only when the lock changed. Node comes from Debian when missing.
if ! command -v npm >/dev/null 2>&1; then
  log "installing Node.js and npm for hosts/typescript"
  sudo_=""
  [ "$(id -u)" = 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq nodejs npm >/dev/null
fi
ts_host="$root/hosts/typescript"
npm_stamp="$ts_host/node_modules/.stepwire-lock.sha256"
npm_want=$(sha256sum "$ts_host/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$npm_stamp" 2>/dev/null)" != "$npm_want" ]; then
  log "installing hosts/typescript's npm packages (npm ci)"
  (cd "$ts_host" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$npm_want" > "$npm_stamp"
else
  log "npm packages up to date"
fi

# `stepwire report`: headless Chromium for the test that opens the report page, and a sans-serif
# font for the PNG charts' text. Installed only when missing.
report_pkgs=""
command -v chromium >/dev/null 2>&1 || report_pkgs="chromium"
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || report_pkgs="$report_pkgs fonts-dejavu-core"
if [ -n "$report_pkgs" ]; then
  log "installing$report_pkgs for stepwire report"
  sudo_=""
  [ "$(id -u)" = 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq $report_pkgs >/dev/null
fi

# ALFWorld games: unpack the trimmed json_2.1.1 archive and write each game.tw-pddl (stamped).
# Override the archive with STEPWIRE_ALFWORLD_ARCHIVE, the output with ALFWORLD_DATA.
alfworld_archive="${STEPWIRE_ALFWORLD_ARCHIVE:-$root/../shared/data/alfworld/alfworld-json_2.1.1-text.tar.gz}"
if [ -f "$alfworld_archive" ] || [ -d "${ALFWORLD_DATA:-$root/.cache/alfworld}/json_2.1.1" ]; then
  STEPWIRE_ALFWORLD_ARCHIVE="$alfworld_archive" "$venv/bin/python" scripts/prepare-alfworld.py
else
  log "ALFWorld archive not found ($alfworld_archive): skipping the ALFWorld games"
fi

# TextWorld games: a small default set per family, generated from fixed seeds by tw-make
# (games already on disk are kept: reruns are instant).
"$venv/bin/python" scripts/make-textworld-games.py \
  --per-family "${STEPWIRE_TEXTWORLD_GAMES_PER_FAMILY:-4}" --jobs "${STEPWIRE_SETUP_JOBS:-2}"

# ScienceWorld's task/split list, cached per package version (one JVM run of ~10 s, once).
sw_version=$("$venv/bin/python" -c 'from importlib.metadata import version; print(version("scienceworld"))')
if [ ! -f "$root/.cache/scienceworld/tasks-$sw_version.json" ]; then
  log "listing ScienceWorld's tasks and variation splits (starts the JVM once)"
  "$venv/bin/python" - <<'PY'
import sys
sys.path.insert(0, "bridges/scienceworld")
import bridge
env = bridge.ScienceWorld(expert=False)
try:
    print(f"[setup] {len(env.tasks())} ScienceWorld tasks", file=sys.stderr)
finally:
    env.close()
PY
fi
log "done"
