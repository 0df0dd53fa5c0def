#!/usr/bin/env bash
# The large-model benchmark, one command: random-weight models with the exact shapes of
# Qwen2.5-0.5B and Llama-3.2-1B (fp32 and int4, built here under .cache/large by
# scripts/build-large-models.py, nothing downloaded), each at 1 and 2 threads: stepwire against
# the Python onnxruntime loop on the same prompt, decode against this machine's memory-bandwidth
# bound and prefill against its GEMM rate, both measured in the same run. Writes
# .cache/bench-large/results.{json,md}.
#
#   scripts/bench-large.sh                              # both models (about 30 min on 2 cores)
#   MODELS="qwen2.5-0.5b" scripts/bench-large.sh        # one
#   THREADS="2" DECODE_TOKENS=32 REPEATS=3 scripts/bench-large.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
: "${MODELS:=qwen2.5-0.5b llama-3.2-1b}" "${THREADS:=1 2}" "${DECODE_TOKENS:=32}" "${REPEATS:=3}"
case "${1:-}" in -h|--help) sed -n '2,12p' "$0"; exit 0 ;; esac

scripts/setup.sh --train
cargo build --release -q -p stepwire-onnx --bin stepwire-bench-large
only=()
for m in $MODELS; do only+=(--only "$m"); done
.venv/bin/python scripts/build-large-models.py "${only[@]}"
# shellcheck disable=SC2086
.venv/bin/python bench/large.py --bench target/release/stepwire-bench-large --names $MODELS \
  --threads $THREADS --decode-tokens "$DECODE_TOKENS" --repeats "$REPEATS"
