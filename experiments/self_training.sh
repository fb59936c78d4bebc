#!/usr/bin/env bash
# Self-training methods on the embedded default, per seed: ReST-MCTS* (the default run), the seed-only control,
# ReST-EM and Self-Rewarding at the ReST-MCTS* run's search tokens; then the method comparison at equal budgets on
# the ReST-MCTS* run's last round, and the tables.
# The control, ReST-EM and Self-Rewarding start from the ReST-MCTS* run's own round 0 (warm start and first PRM are
# the same by definition), so only rounds 1-3 differ: each resumes a copy of that round with its own settings.
# Usage: bash experiments/self_training.sh [RUN_DIR] [SEEDS...]
# A run whose folder exists is resumed (finished rounds are kept), so an interrupted script can be started again.
# ARMS (default: "selfreward restem control") chooses the arms beside ReST-MCTS*, in the order they run.
# EVALUATE_SEEDS (default: the first two seeds) chooses the runs whose last round `rest_mcts.evaluate` compares.
# Every run of the comparison (each arm and seed, and the evaluations) logs to one W&B group, the folder's name.
set -euo pipefail
run_dir=${1:-runs/self_training}
shift || true
seeds=${*:-0 1 2}
evaluate_seeds=${EVALUATE_SEEDS:-$(echo $seeds | cut -d' ' -f1-2)}
arms=${ARMS:-selfreward restem control}

arm_from_round_0() {  # arm_from_round_0 SEED ARM KEY=VALUE...: a copy of the ReST-MCTS* run's round 0, resumed
  local seed=$1 arm=$2; shift 2
  local folder="$run_dir/$arm-seed$seed"
  if [[ -f "$folder/config.yaml" ]]; then
    python -m rest_mcts.iterate --run-dir "$run_dir" --experiment "$arm-seed$seed" --resume
    return
  fi
  mkdir -p "$folder"
  cp -r "$run_dir/selftrain-seed$seed/round_00" "$folder/"
  python - "$run_dir/selftrain-seed$seed/config.yaml" "$folder/config.yaml" "$arm-seed$seed" "$@" <<'PY'
import sys

import yaml

from lm.data import atomic_write_text

source, target, name, *changes = sys.argv[1:]
config = yaml.safe_load(open(source))
config["logging"]["experiment"] = name
for change in changes:
    key, value = change.split("=", 1)
    section, _, field = key.rpartition(".")
    (config.setdefault(section, {}) if section else config)[field] = yaml.safe_load(value)
atomic_write_text(target, yaml.safe_dump(config, sort_keys=False))
PY
  python -m rest_mcts.iterate --run-dir "$run_dir" --experiment "$arm-seed$seed" --resume
}

for seed in $seeds; do
  if [[ -f "$run_dir/selftrain-seed$seed/config.yaml" ]]; then
    python -m rest_mcts.iterate --run-dir "$run_dir" --experiment "selftrain-seed$seed" --resume
  else
    python -m rest_mcts.iterate --rounds 3 --seed "$seed" --run-dir "$run_dir" --experiment "selftrain-seed$seed" \
      --logging.wandb_group "$(basename "$run_dir")"
  fi
  for arm in $arms; do
    case $arm in
      selfreward) arm_from_round_0 "$seed" selfreward method=self_rewarding \
                    "self_rewarding.match_tokens_of=$run_dir/selftrain-seed$seed" ;;
      restem) arm_from_round_0 "$seed" restem method=rest_em "rest_em.match_tokens_of=$run_dir/selftrain-seed$seed" ;;
      control) arm_from_round_0 "$seed" control control=true ;;
      *) echo "ARMS: unknown arm $arm (expected selfreward, restem, control)" >&2; exit 2 ;;
    esac
  done
done
for seed in $evaluate_seeds; do
  if [[ ! -f "$run_dir/selftrain-seed$seed/evaluate_round_03/summary.json" ]]; then
    python -m rest_mcts.evaluate --run "$run_dir/selftrain-seed$seed" --seeds 0 1 --overwrite
  fi
done
python experiments/summarize.py "$run_dir"
python -m rest_mcts.compare "$run_dir" --out "$run_dir/compare.png"
