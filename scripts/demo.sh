#!/usr/bin/env bash
# The main job: the bundled trained STEP-HRL policy (models/alfworld-step-hrl, run with ONNX
# Runtime) plays real ALFWorld games it never saw in training (valid_unseen), with admissible-action
# constrained decoding, sampling at the temperature its manifest names (seeded per step from
# --seed, so a rerun repeats), and the paper's 50-step limit, recording every augmented
# transition under runs/.
# Extra arguments go to `stepwire run` (e.g. `make demo ARGS=...` or scripts/demo.sh --episodes 20).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
echo "[demo] building stepwire (release; the first build takes a few minutes)" >&2
cargo build --release -q -p stepwire-runtime -p stepwire-example-bridge
export STEPWIRE_PYTHON="$root/.venv/bin/python"
export ALFWORLD_DATA="${ALFWORLD_DATA:-$root/.cache/alfworld}"
exec target/release/stepwire run --env alfworld --tasks alfworld --split valid_unseen --policy models/alfworld-step-hrl \
  --episodes 20 --seed 7 --jobs 2 --max-steps 50 "$@"
