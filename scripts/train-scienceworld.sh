#!/usr/bin/env bash
# The whole STEP-HRL recipe for a ScienceWorld policy, one command, resumable:
#
#   record     the bridge's expert (ScienceWorld's gold paths, every action named with its subtask)
#              on the first VARIATIONS `train` variations of each task of TASKS, the tasks with
#              few variations (SMALL_TASKS) played SMALL_REPEAT times with other seeds
#   dataset    plan and act samples rendered with train/manifests/scienceworld.toml (observations
#              with their `look` and `inventory` parts; local progress by the rules tracker:
#              rooms visited, objects found, what is held, the last result); a tokenizer
#   bc         behaviour cloning of one small decoder                 -> policy-bc (the bundled one)
#   collect    the BC policy plays ROLLOUTS sampled `train` variations through stepwire, with the
#              expert's answers recorded in the states it visits
#   rl         offline RL (expectile V, TD Q, advantage-weighted actor) on expert + rollouts
#                                                                      -> policy-rl
#   ablations  (ABLATIONS, e.g. "full-history none"; full-history always in --quick) BC alike but
#              for what the prompt holds, ABLATION_EPOCHS epochs: the flat full-history baseline
#              (train/manifests/scienceworld-full-history.toml), no local progress, the rules tracker
#   evaluate   every policy, and a random admissible policy, on the first EVAL_PER_TASK `test`
#              (unseen) variations of each task; then the bundled one on the first FINAL_PER_TASK
#              `test` and DEV_PER_TASK `dev` (seen) variations of each task (0 = all of them)
#   tokens     prompt tokens per step against the step index, STEP-HRL against full history
#
#   scripts/train-scienceworld.sh            # the full recipe (about 90 min on 2 cores)
#   scripts/train-scienceworld.sh --quick    # two tasks, a few variations and steps, end to end (CI)
#
# Sizes can be overridden: TASKS, VARIATIONS, SMALL_TASKS, SMALL_REPEAT, BC_EPOCHS, ROLLOUTS,
# RL_STEPS, ABLATIONS, ABLATION_EPOCHS, EVAL_PER_TASK, RANDOM_PER_TASK, FINAL_PER_TASK,
# DEV_PER_TASK, MAX_STEPS
# (every evaluation's step limit), TEMPERATURE (0 = greedy; written into policy-bc's manifest as
# its default), JOBS, WORK; STEPWIRE_BIN runs that stepwire instead of building the release one.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# shellcheck source=lib/recipe.sh
. scripts/lib/recipe.sh
recipe_args "$@"

# The ten task families with the shortest gold paths (5 to 16 actions): see BENCHMARKS.md for why
# not all 30.
all_tasks=find-non-living-thing,find-living-thing,find-plant,find-animal,lifespan-longest-lived
all_tasks=$all_tasks,lifespan-shortest-lived,lifespan-longest-lived-then-shortest-lived,power-component
all_tasks=$all_tasks,chemistry-mix-paint-secondary-color,identify-life-stages-2
if [ "$quick" = 1 ]; then
  : "${TASKS:=find-non-living-thing,lifespan-longest-lived}" "${SMALL_TASKS:=lifespan-longest-lived}"
  : "${VARIATIONS:=3}" "${SMALL_REPEAT:=2}" "${BC_EPOCHS:=1}" "${ROLLOUTS:=2}" "${RL_STEPS:=4}"
  : "${ABLATIONS:=full-history}" "${ABLATION_EPOCHS:=1}" "${EVAL_PER_TASK:=1}" "${RANDOM_PER_TASK:=1}"
  : "${FINAL_PER_TASK:=1}" "${DEV_PER_TASK:=1}" "${MAX_STEPS:=15}" "${WORK:=$root/.cache/recipe/scienceworld-quick}"
  model_args=(--hidden 64 --layers 1 --heads 2 --kv-heads 1 --intermediate 128)
  tok_args=(--vocab-size 600)
else
  : "${TASKS:=$all_tasks}" "${SMALL_TASKS:=power-component,chemistry-mix-paint-secondary-color,identify-life-stages-2}"
  : "${VARIATIONS:=60}" "${SMALL_REPEAT:=4}" "${BC_EPOCHS:=5}" "${ROLLOUTS:=150}" "${RL_STEPS:=100}"
  : "${ABLATIONS:=}" "${ABLATION_EPOCHS:=2}" "${EVAL_PER_TASK:=10}" "${RANDOM_PER_TASK:=5}"
  : "${FINAL_PER_TASK:=0}" "${DEV_PER_TASK:=20}" "${MAX_STEPS:=100}" "${WORK:=$root/.cache/recipe/scienceworld}"
  model_args=()
  tok_args=(--vocab-size 2000)
fi
: "${JOBS:=2}" "${TEMPERATURE:=0}"
# Prompts hold a room's whole description (up to about 620 tokens): rows of 1,024 positions.
long=(--seq-len 1024 --batch-rows 4 --max-positions 1024)
manifest=train/manifests/scienceworld.toml

recipe_setup

play() {  # play TASKS POLICY SPLIT PER_TASK SEED RECORD [extra stepwire run args...]
  local tasks=$1 policy=$2 split=$3 per_task=$4 seed=$5 record=$6
  shift 6
  local sel=(--per-task "$per_task")
  [ "$per_task" = 0 ] && sel=()
  "$stepwire" run --env scienceworld --tasks "$tasks" --split "$split" --policy "$policy" "${sel[@]}" \
    --seed "$seed" --max-steps "$MAX_STEPS" --jobs "$JOBS" --record "$record" --resume --quiet "$@"
}

stage "record: the expert on $VARIATIONS train variations of each task"
play "$TASKS" expert train "$VARIATIONS" 1 "$WORK/expert.jsonl" >"$WORK/expert.txt"
small=$(tr ',' '\n' <<<"$SMALL_TASKS" | grep -Fxf <(tr ',' '\n' <<<"$TASKS") | paste -sd, || true)
if [ -n "$small" ] && [ "$SMALL_REPEAT" -gt 1 ]; then
  play "$small" expert train "$VARIATIONS" 1 "$WORK/expert.jsonl" --repeat "$SMALL_REPEAT" >"$WORK/expert-small.txt"
fi

stage "dataset and tokenizer"
dataset "$WORK/data" --records "$WORK/expert.jsonl" --manifest "$manifest" --progress-tracker rules
[ -f "$WORK/tokenizer.json" ] || train tokenizer --data "$WORK/data" --out "$WORK/tokenizer.json" "${tok_args[@]}"

stage "behaviour cloning ($BC_EPOCHS epochs)"
bc "$WORK/data" "$WORK/bc" "$BC_EPOCHS" "${model_args[@]}" "${long[@]}"
export_policy "$WORK/bc" "$WORK/policy-bc" --temperature "$TEMPERATURE"

stage "collect: the BC policy on $ROLLOUTS train variations, expert answers recorded"
"$stepwire" run --env scienceworld --tasks "$TASKS" --split train --policy "$WORK/policy-bc" --episodes "$ROLLOUTS" \
  --seed 2 --max-steps "$MAX_STEPS" --jobs "$JOBS" --record "$WORK/rollouts.jsonl" --resume --quiet \
  --expert-labels >"$WORK/rollouts.txt"

stage "offline RL ($RL_STEPS steps)"
rl "$WORK/rl" "$RL_STEPS" --expert "$WORK/expert.jsonl" --rollouts "$WORK/rollouts.jsonl"
export_policy "$WORK/rl" "$WORK/policy-rl" --temperature "$TEMPERATURE"
compared=(bc rl)

for variant in $ABLATIONS; do
  stage "ablation $variant: BC, $ABLATION_EPOCHS epochs"
  case $variant in
    rules) args=(--manifest "$manifest" --progress-tracker rules); extra=("${long[@]}") ;;
    none) args=(--manifest "$manifest" --progress-tracker none); extra=("${long[@]}") ;;
    full-history) args=(--manifest train/manifests/scienceworld-full-history.toml)
      extra=(--seq-len 2048 --batch-rows 2 --max-positions 2048) ;;
    *) echo "unknown ablation: $variant (rules, none, full-history)" >&2; exit 2 ;;
  esac
  dataset "$WORK/data-$variant" --records "$WORK/expert.jsonl" "${args[@]}"
  bc "$WORK/data-$variant" "$WORK/small-$variant" "$ABLATION_EPOCHS" "${model_args[@]}" "${extra[@]}"
  export_policy "$WORK/small-$variant" "$WORK/policy-small-$variant"
  compared+=("small-$variant")
done

for policy in "${compared[@]}"; do
  stage "evaluate $policy on $EVAL_PER_TASK test variations of each task"
  play "$TASKS" "$WORK/policy-$policy" test "$EVAL_PER_TASK" 7 "$WORK/eval-$policy-test.jsonl" \
    --temperature "$TEMPERATURE" >"$WORK/eval-$policy-test.txt"
  cat "$WORK/eval-$policy-test.txt"
done
stage "evaluate a random admissible policy on $RANDOM_PER_TASK test variations of each task"
play "$TASKS" random test "$RANDOM_PER_TASK" 7 "$WORK/eval-random-test.jsonl" >"$WORK/eval-random-test.txt"
cat "$WORK/eval-random-test.txt"

# The bundled policy: BC's plans and actions, local progress by the rules tracker.
for split in test dev; do
  per_task=$FINAL_PER_TASK; [ "$split" = dev ] && per_task=$DEV_PER_TASK
  stage "evaluate the bundled policy (policy-bc) on ${per_task/#0/every} $split variation(s) of each task"
  play "$TASKS" "$WORK/policy-bc" "$split" "$per_task" 7 "$WORK/final-$split.jsonl" >"$WORK/final-$split.txt"
  cat "$WORK/final-$split.txt"
done

stage "prompt tokens per step: STEP-HRL vs full history"
train tokens-per-step --records "$WORK/expert.jsonl" --tokenizer "$WORK/tokenizer.json" --manifest "$manifest" \
  --progress-tracker rules --full-manifest train/manifests/scienceworld-full-history.toml --out "$WORK/report" >/dev/null
stage "done: policies in $WORK/policy-*, results in $WORK/{eval,final}-*.txt"
