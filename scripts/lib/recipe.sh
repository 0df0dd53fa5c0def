# Shared by the training recipes (scripts/train-*.sh), sourced from the repository root:
# `recipe_args "$@"` reads --quick / --help; `recipe_setup`, once the recipe has set WORK,
# TEMPERATURE and JOBS, installs the training stack and builds stepwire (or takes STEPWIRE_BIN).
# Every stage helper skips work whose output is already in $WORK, so a cut-off recipe carries on
# where it stopped (training stages resume from their checkpoints).

recipe_args() {  # sets quick=0|1; --help prints the recipe's header comment
  quick=0
  for arg in "$@"; do
    case "$arg" in
      --quick) quick=1 ;;
      -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
      *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
    esac
  done
}

recipe_setup() {
  scripts/setup.sh --train
  if [ -z "${STEPWIRE_BIN:-}" ]; then
    echo "[recipe] building stepwire (release)" >&2
    cargo build --release -q -p stepwire-runtime
  fi
  export STEPWIRE_PYTHON="$root/.venv/bin/python"
  export HF_HUB_OFFLINE=1 PYTHONPATH="$root/train${PYTHONPATH:+:$PYTHONPATH}"
  stepwire="${STEPWIRE_BIN:-$root/target/release/stepwire}"
  mkdir -p "$WORK"
  t_start=$SECONDS
}

train() { "$root/.venv/bin/python" -m stepwire_train "$@"; }
stage() { printf '[recipe] %s (%ds so far)\n' "$*" $((SECONDS - t_start)) >&2; }

dataset() {  # dataset OUT [dataset args...]: skipped when OUT holds samples
  local out=$1
  shift
  [ -f "$out/samples.jsonl" ] || train dataset --out "$out" "$@"
}

bc() {  # bc DATA OUT EPOCHS [extra bc args...]: resumes from OUT's checkpoint
  local data=$1 out=$2 epochs=$3
  shift 3
  [ -f "$out/summary.json" ] && return 0
  local resume=(); [ -f "$out/checkpoint.pt" ] && resume=(--resume)
  train bc --data "$data" --tokenizer "$WORK/tokenizer.json" --out "$out" --epochs "$epochs" "$@" "${resume[@]}"
}

rl() {  # rl OUT STEPS [extra rl args...]: offline RL from $WORK/bc; resumes from OUT's checkpoint
  local out=$1 steps=$2
  shift 2
  [ -f "$out/summary.json" ] && return 0
  local resume=(); [ -f "$out/checkpoint.pt" ] && resume=(--resume)
  train rl --init "$WORK/bc" --out "$out" --steps "$steps" "$@" "${resume[@]}"
}

export_policy() { [ -f "$2/stepwire.toml" ] || train export --from "$1" --out "$2" "${@:3}"; }
