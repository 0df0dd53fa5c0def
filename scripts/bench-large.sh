#!/usr/bin/env bash
# The large-model benchmark, one command: random-weight models with the exact shapes of
# Qwen2.5-0.5B and Llama-3.2-1B (fp32 and int4, built here under .cache/large by
# scripts/build-large-models.py, nothing downloaded), each at 1 and 2 threads: stepwire against
# the Python onnxruntime loop, onnxruntime-genai and llama.cpp (GGUF f32 / Q4_0 of the same weights,
# built by scripts/build-llamacpp.sh: about 10 minutes the first time) on the same prompt, decode
# against this machine's memory-bandwidth bound and prefill against its GEMM rate, both measured in
# the same run. Writes $OUT/results.{json,md} (OUT defaults to .cache/bench-large).
#
#   scripts/bench-large.sh                              # both models (about 40 min on 2 cores)
#   MODELS="qwen2.5-0.5b" scripts/bench-large.sh        # one
#   THREADS="2" DECODE_TOKENS=32 REPEATS=3 scripts/bench-large.sh
#   ROUNDS=3 RUNNERS="stepwire-builder genai" scripts/bench-large.sh   # paired rounds, two runners
#   NO_LLAMACPP=1 scripts/bench-large.sh                # without llama.cpp (nothing built for it)
#   BENCH_BIN=path/to/stepwire-bench-large scripts/bench-large.sh  # a prebuilt binary of this
#                                                       # commit, .venv already set up: no setup.sh, no cargo
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
: "${MODELS:=qwen2.5-0.5b llama-3.2-1b}" "${THREADS:=1 2}" "${DECODE_TOKENS:=32}" "${REPEATS:=3}"
: "${OUT:=.cache/bench-large}" "${NO_LLAMACPP:=}" "${ROUNDS:=1}" "${RUNNERS:=}"
: "${BENCH_BIN:=}"
case "${1:-}" in -h|--help) sed -n '2,16p' "$0"; exit 0 ;; esac

if [ -z "$BENCH_BIN" ]; then
  scripts/setup.sh --train
  cargo build --release -q -p stepwire-onnx --bin stepwire-bench-large
  BENCH_BIN=target/release/stepwire-bench-large
fi
only=()
for m in $MODELS; do only+=(--only "$m"); done
.venv/bin/python scripts/build-large-models.py "${only[@]}"
extra=(--rounds "$ROUNDS")
# shellcheck disable=SC2206
[ -z "$RUNNERS" ] || extra+=(--runners $RUNNERS)
if [ -n "$NO_LLAMACPP" ]; then
  extra+=(--no-llamacpp)
else
  # shellcheck disable=SC2086
  scripts/build-llamacpp.sh $MODELS || echo "[bench-large] llama.cpp build failed: its column stays empty" >&2
fi
# shellcheck disable=SC2086
.venv/bin/python bench/large.py --bench "$BENCH_BIN" --names $MODELS \
  --threads $THREADS --decode-tokens "$DECODE_TOKENS" --repeats "$REPEATS" --out "$OUT" "${extra[@]}"
