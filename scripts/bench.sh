#!/usr/bin/env bash
# Every benchmark, in one run, on release builds. Ratios compare against what a user would run
# instead, measured in the same run. The machine is shared and noisy: read ratios, not absolutes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
cargo build --release -q -p stepwire-runtime -p stepwire-onnx --bins
py="$root/.venv/bin/python"

echo "## act latency and throughput: stepwire vs a Python onnxruntime + tokenizers loop"
target/release/stepwire-bench --model models/tiny-llama --iterations 20 --threads 1
echo
echo "## agent server: agent/step throughput and peak memory with 1, 4, 8 sessions"
"$py" bench/server_load.py --stepwire target/release/stepwire --policy models/tiny-llama --sessions 1 4 8 --steps 20
echo "### the same with one ONNX Runtime session per model (--one-session: no overlapped prefill)"
"$py" bench/server_load.py --stepwire target/release/stepwire --policy models/tiny-llama --sessions 1 8 --steps 20 \
  --serve-arg=--one-session
echo
echo "## ScienceWorld: bridge step (over pipes) vs bare env.step() of the package"
"$py" bench/scienceworld_step.py
