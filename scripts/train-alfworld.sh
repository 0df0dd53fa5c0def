#!/usr/bin/env bash
# The whole STEP-HRL recipe for an ALFWorld policy, one command, resumable:
#
#   record     the hand-coded expert on `train` games (hierarchical demonstrations; every
#              observation carries the room's receptacles, the bridge's `room` part)
#   dataset    samples rendered with the manifest's role templates (high and low: local progress
#              is written by the rules tracker that labelled the demonstrations); a tokenizer
#   bc         behaviour cloning of one small decoder                 -> policy-bc (the bundled one)
#   collect    the BC policy plays other `train` games through stepwire, with the expert's
#              answers recorded in the states it visits (--expert-labels)
#   rl         offline RL (expectile V, TD Q, advantage-weighted actor) on expert + rollouts
#                                                                      -> policy-rl
#   dagger     (DAGGER_EPOCHS > 0) BC again from the BC weights on expert + expert-labelled
#              rollouts                                                -> policy-dagger
#   ablations  (ABLATIONS, e.g. "rules none full-history learned"; always in --quick) on the
#              first ABLATION_GAMES demonstrations for ABLATION_EPOCHS, alike but for one thing:
#              progress by the rules tracker, no progress at all, the flat full-history
#              baseline, the model's own progress role
#   evaluate   every policy on the same sample of valid_unseen games through stepwire run, then
#              the bundled one on every valid_unseen game (and valid_seen with EVAL_SEEN=1)
#
# Every stage writes into $WORK and is skipped when its output is there, so a cut-off run
# carries on where it stopped (training stages resume from their checkpoints).
#
#   scripts/train-alfworld.sh                 # the full recipe (96 min on 2 cores, measured 2026-12-02)
#   scripts/train-alfworld.sh --quick         # a few games and steps, end to end (CI)
#
# Sizes can be overridden: GAMES, BC_EPOCHS, ROLLOUTS, RL_STEPS, DAGGER_EPOCHS, ABLATION_GAMES,
# ABLATION_EPOCHS, ABLATIONS, EVAL_GAMES (the comparisons' sample), FINAL_GAMES (the bundled policy's; 0 =
# the whole split), EVAL_SEEN=1, MAX_STEPS, TEMPERATURE (every evaluation samples at it, seeded
# per step; 0 = greedy; written into policy-bc's manifest as its default), JOBS, WORK;
# STEPWIRE_BIN runs that stepwire instead of building the release one.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# shellcheck source=lib/recipe.sh
. scripts/lib/recipe.sh
recipe_args "$@"

if [ "$quick" = 1 ]; then
  : "${GAMES:=6}" "${BC_EPOCHS:=1}" "${ROLLOUTS:=2}" "${RL_STEPS:=4}" "${DAGGER_EPOCHS:=0.5}"
  : "${ABLATION_GAMES:=6}" "${ABLATION_EPOCHS:=1}" "${ABLATIONS:=rules none full-history}"
  : "${EVAL_GAMES:=1}" "${FINAL_GAMES:=1}" "${MAX_STEPS:=20}" "${WORK:=$root/.cache/recipe/alfworld-quick}"
  model_args=(--hidden 64 --layers 1 --heads 2 --kv-heads 1 --intermediate 128)
  tok_args=(--vocab-size 600)
else
  : "${GAMES:=800}" "${BC_EPOCHS:=5}" "${ROLLOUTS:=200}" "${RL_STEPS:=100}" "${DAGGER_EPOCHS:=0}"
  # The ablations cost more than the 2-hour budget leaves (the flat baseline alone 40 min to 2 h
  # at 2 epochs, by how busy the machine is), so the full recipe runs them only when asked:
  # ABLATIONS="rules full-history none". At 800 games and 2 epochs (BENCHMARKS.md) the STEP-HRL
  # variant wins a third of the sample; at 200 games and 3 epochs every variant won nothing.
  : "${ABLATION_GAMES:=800}" "${ABLATION_EPOCHS:=2}" "${ABLATIONS:=}"
  : "${EVAL_GAMES:=60}" "${FINAL_GAMES:=0}" "${MAX_STEPS:=50}" "${WORK:=$root/.cache/recipe/alfworld}"
  model_args=()
  tok_args=()
fi
: "${JOBS:=2}" "${TEMPERATURE:=1}"

export ALFWORLD_DATA="${ALFWORLD_DATA:-$root/.cache/alfworld}"
recipe_setup

# Evaluations are reported per task type; recordings for training sample across all games.
types=pick_and_place_simple,look_at_obj_in_light,pick_clean_then_place_in_recep
types=$types,pick_heat_then_place_in_recep,pick_cool_then_place_in_recep,pick_two_obj_and_place
play() {  # play TASKS POLICY SPLIT EPISODES SEED RECORD [extra stepwire run args...]
  local tasks=$1 policy=$2 split=$3 episodes=$4 seed=$5 record=$6
  shift 6
  local sel=(--episodes "$episodes" --seed "$seed")
  [ "$episodes" = 0 ] && sel=()
  "$stepwire" run --env alfworld --tasks "$tasks" --split "$split" --policy "$policy" "${sel[@]}" \
    --max-steps "$MAX_STEPS" --jobs "$JOBS" --temperature "$TEMPERATURE" --record "$record" --resume --quiet "$@"
}

stage "record: the expert on $GAMES train games"
play alfworld expert train "$GAMES" 1 "$WORK/expert.jsonl" >"$WORK/expert.txt"

stage "dataset and tokenizer"
dataset "$WORK/data" --records "$WORK/expert.jsonl" --progress-tracker rules
[ -f "$WORK/tokenizer.json" ] || train tokenizer --data "$WORK/data" --out "$WORK/tokenizer.json" "${tok_args[@]}"

stage "behaviour cloning ($BC_EPOCHS epochs)"
bc "$WORK/data" "$WORK/bc" "$BC_EPOCHS" "${model_args[@]}"
export_policy "$WORK/bc" "$WORK/policy-bc" --temperature "$TEMPERATURE"

stage "collect: the BC policy on $ROLLOUTS train games, expert answers recorded"
play alfworld "$WORK/policy-bc" train "$ROLLOUTS" 2 "$WORK/rollouts.jsonl" --expert-labels >"$WORK/rollouts.txt"

stage "offline RL ($RL_STEPS steps)"
rl "$WORK/rl" "$RL_STEPS" --expert "$WORK/expert.jsonl" --rollouts "$WORK/rollouts.jsonl"
export_policy "$WORK/rl" "$WORK/policy-rl"
compared=(bc rl)

if [ "$DAGGER_EPOCHS" != 0 ]; then
  stage "DAgger: expert labels on the learner's states, BC from the BC weights"
  dataset "$WORK/data-dagger" --records "$WORK/expert.jsonl" --expert-labelled "$WORK/rollouts.jsonl" \
    --progress-tracker rules
  bc "$WORK/data-dagger" "$WORK/dagger" "$DAGGER_EPOCHS" --init "$WORK/bc/hf" --lr 3e-4
  export_policy "$WORK/dagger" "$WORK/policy-dagger"
  compared+=(dagger)
fi

# Alike but for who writes local progress (and, for the baseline, the whole prompt): the same
# first $ABLATION_GAMES demonstrations, model size, tokenizer and epochs.
for variant in $ABLATIONS; do
  stage "ablation $variant: BC on $ABLATION_GAMES games, $ABLATION_EPOCHS epochs"
  case $variant in
    rules) args=(--progress-tracker rules); long=() ;;
    learned) args=(); long=() ;;
    none) args=(--progress-tracker none); long=() ;;
    full-history) args=(--manifest train/manifests/full-history.toml); long=(--seq-len 2048 --max-positions 2048) ;;
  esac
  dataset "$WORK/data-$variant" --records "$WORK/expert.jsonl" --episodes "$ABLATION_GAMES" "${args[@]}"
  bc "$WORK/data-$variant" "$WORK/small-$variant" "$ABLATION_EPOCHS" "${model_args[@]}" "${long[@]}"
  export_policy "$WORK/small-$variant" "$WORK/policy-small-$variant"
  compared+=("small-$variant")
done

for policy in "${compared[@]}"; do
  stage "evaluate $policy on $EVAL_GAMES valid_unseen games"
  play "$types" "$WORK/policy-$policy" valid_unseen "$EVAL_GAMES" 7 "$WORK/eval-$policy-valid_unseen.jsonl" \
    >"$WORK/eval-$policy-valid_unseen.txt"
  cat "$WORK/eval-$policy-valid_unseen.txt"
done

# The bundled policy: BC's high and low levels, local progress by the rules tracker.
for split in valid_unseen ${EVAL_SEEN:+valid_seen}; do
  stage "evaluate the bundled policy (policy-bc) on $split (${FINAL_GAMES/#0/every} game(s))"
  play "$types" "$WORK/policy-bc" "$split" "$FINAL_GAMES" 7 "$WORK/final-$split.jsonl" >"$WORK/final-$split.txt"
  cat "$WORK/final-$split.txt"
done

stage "prompt tokens per step: STEP-HRL vs full history"
train tokens-per-step --records "$WORK/expert.jsonl" --tokenizer "$WORK/tokenizer.json" --progress-tracker rules \
  --out "$WORK/report" >/dev/null
stage "done: policies in $WORK/policy-*, results in $WORK/{eval,final}-*.txt"
