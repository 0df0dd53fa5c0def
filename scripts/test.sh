#!/usr/bin/env bash
# Runs every test of the project, in stages; stops at nothing, reports every stage, and exits
# non-zero when any stage failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TERM_COLOR=never

scripts/setup.sh --train || { echo "setup failed"; exit 1; }
export STEPWIRE_PYTHON="$root/.venv/bin/python"
export ALFWORLD_DATA="${ALFWORLD_DATA:-$root/.cache/alfworld}"
py="$STEPWIRE_PYTHON"

passed=0; failed=0; failures=()
stage() {
  local name=$1; shift
  printf '\n==> %s\n' "$name"
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); printf '<== %s: ok (%ss)\n' "$name" $((SECONDS - t0))
  else
    failed=$((failed + 1)); failures+=("$name"); printf '<== %s: FAILED (%ss)\n' "$name" $((SECONDS - t0))
  fi
}

stage "format" cargo fmt --all -- --check
stage "build" cargo build --workspace --all-targets
stage "clippy" cargo clippy --workspace --all-targets -q -- -D warnings
stage "schemas are current" cargo run -q -p stepwire-runtime -- schema --check
stage "rust tests" cargo test --workspace -q
stage "cuda feature builds" cargo check -q -p stepwire-runtime --features cuda
stage "python bridge sdk tests" "$py" -m pytest -q bridges/python/tests
stage "training package tests" env HF_HUB_OFFLINE=1 "$py" -m pytest -q train/tests
stage "benchmark tools tests (operator profiles, paired rounds)" "$py" -m pytest -q bench/tests
stage "environment bridge tests" "$py" -m pytest -q bridges/scienceworld/tests bridges/alfworld/tests bridges/textworld/tests

stepwire=target/debug/stepwire
for bridge in lockbox python-example scienceworld alfworld textworld babyai toytext; do
  stage "check-bridge $bridge" "$stepwire" check-bridge --env "$bridge"
done

stage "episodes: scienceworld expert" "$stepwire" run --env scienceworld --policy expert --split dev --tasks find-living-thing,chemistry-mix,lifespan-longest-lived --per-task 1 --max-steps 150 --jobs 1 --min-success 1.0 --no-record
stage "episodes: alfworld expert" "$stepwire" run --env alfworld --tasks alfworld --policy expert --split valid_unseen --episodes 3 --seed 1 --max-steps 60 --jobs 2 --min-success 0.6 --no-record
stage "episodes: textworld expert" "$stepwire" run --env textworld --policy expert --episodes 3 --max-steps 60 --jobs 2 --min-success 1.0 --no-record
stage "training recipe, quick (record, BC, collect, RL, DAgger, ablations, export, play)" \
  bash -c "rm -rf .cache/recipe/ci-quick && STEPWIRE_BIN='$root/$stepwire' WORK=.cache/recipe/ci-quick scripts/train-alfworld.sh --quick"
stage "training recipe, quick, scienceworld (record, BC, collect, RL, full-history baseline, export, play)" \
  bash -c "rm -rf .cache/recipe/ci-quick-scienceworld && STEPWIRE_BIN='$root/$stepwire' WORK=.cache/recipe/ci-quick-scienceworld scripts/train-scienceworld.sh --quick"
stage "episodes: scienceworld trained policy (models/scienceworld-step-hrl)" "$stepwire" run --env scienceworld --policy models/scienceworld-step-hrl --split test --tasks find-animal,lifespan-shortest-lived,find-plant --per-task 1 --seed 7 --max-steps 100 --jobs 2 --max-failed 0 --min-success 0.6 --no-record
stage "episodes: scienceworld trained policy, int4 weights (models/scienceworld-step-hrl-int4)" "$stepwire" run --env scienceworld --policy models/scienceworld-step-hrl-int4 --split test --tasks find-animal,lifespan-shortest-lived,find-plant --per-task 1 --seed 7 --max-steps 100 --jobs 2 --max-failed 0 --min-success 0.6 --no-record
stage "episodes: scienceworld trained policy, onnxruntime-genai model-builder layout (models/scienceworld-step-hrl-genai)" "$stepwire" run --env scienceworld --policy models/scienceworld-step-hrl-genai --split test --tasks find-animal,lifespan-shortest-lived,find-plant --per-task 1 --seed 7 --max-steps 100 --jobs 2 --max-failed 0 --min-success 0.6 --no-record
stage "episodes: scienceworld trained policy, model-builder layout, int4 (models/scienceworld-step-hrl-genai-int4)" "$stepwire" run --env scienceworld --policy models/scienceworld-step-hrl-genai-int4 --split test --tasks find-animal,lifespan-shortest-lived,find-plant --per-task 1 --seed 7 --max-steps 100 --jobs 2 --max-failed 0 --min-success 0.6 --no-record
stage "episodes: alfworld trained policy (models/alfworld-step-hrl)" "$stepwire" run --env alfworld --tasks alfworld --policy models/alfworld-step-hrl --split valid_unseen --episodes 2 --seed 7 --max-steps 50 --jobs 2 --max-failed 0 --no-record
stage "episodes: textworld onnx policy" "$stepwire" run --env textworld --policy models/tiny-llama --episodes 2 --max-steps 8 --jobs 2 --max-failed 0 --no-record
stage "gymnasium bridge tests (babyai, toytext)" "$py" -m pytest -q bridges/babyai/tests bridges/toytext/tests
stage "episodes: babyai expert (minigrid's BabyAIBot)" "$stepwire" run --env babyai --policy expert --split test --per-task 2 --max-steps 64 --jobs 2 --min-success 1.0 --max-failed 0 --no-record
stage "episodes: babyai rules" "$stepwire" run --env babyai --policy rules --split valid --episodes 3 --max-steps 20 --jobs 1 --max-failed 0 --no-record
stage "episodes: toytext expert (value iteration)" "$stepwire" run --env toytext --policy expert --tasks taxi,frozenlake --split test --per-task 5 --max-steps 100 --jobs 2 --min-success 0.7 --max-failed 0 --no-record
stage "episodes: toytext random" "$stepwire" run --env toytext --policy random --split valid --episodes 3 --max-steps 20 --jobs 1 --max-failed 0 --no-record

stage "python host library tests (stdio, WebSocket, HTTP, episodes, README example)" env PYTHONPATH=hosts/python STEPWIRE_BIN="$root/$stepwire" "$py" -m pytest -q hosts/python/tests
stage "python host types are current" env PYTHONPATH=hosts/python "$py" -m stepwire_host.codegen --check

stage "typescript host tests (hosts/typescript: build, node --test against the real binary)" \
  bash -c "cd hosts/typescript && STEPWIRE_BIN='$root/$stepwire' npm test --silent"

stage "stepwire report: page in headless chromium, PNGs, bad input" env STEPWIRE_REQUIRE_CHROMIUM=1 cargo test -q -p stepwire-runtime --test report
stage "stepwire report of the quick scienceworld recipe's evaluations (step-hrl, full-history, random)" \
  "$stepwire" report .cache/recipe/ci-quick-scienceworld/eval-{rl,small-full-history,random}-test.jsonl --out .cache/recipe/ci-quick-scienceworld/report-html

stage "cluster runs on a local Ray cluster (python -m stepwire_cluster: plan, lost node, resume)" env STEPWIRE_BIN="$root/$stepwire" "$py" -m pytest -q cluster/tests

printf '\nstages: %d passed, %d failed\n' "$passed" "$failed"
for f in "${failures[@]}"; do printf '  failed: %s\n' "$f"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
