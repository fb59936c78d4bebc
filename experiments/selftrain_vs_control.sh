#!/usr/bin/env bash
# Self-training against the seed-only control, three seeds, on the embedded default; then the table.
# Usage: bash experiments/selftrain_vs_control.sh [RUN_DIR]   (about 2 x 3 default runs)
set -euo pipefail
run_dir=${1:-runs/selftrain_vs_control}
for seed in 0 1 2; do
  python -m rest_mcts.iterate --rounds 3 --seed "$seed" --run-dir "$run_dir" --experiment "selftrain-seed$seed" --overwrite
  python -m rest_mcts.iterate --rounds 3 --seed "$seed" --run-dir "$run_dir" --experiment "control-seed$seed" --control --overwrite
done
python experiments/summarize.py "$run_dir"
