#!/usr/bin/env bash
# Self-training against the seed-only control (and the oracle step-filter diagnostic), three seeds,
# on the embedded default; then the table.
# Usage: bash experiments/selftrain_vs_control.sh [RUN_DIR]   (3 x 3 default runs, about 10 minutes each)
set -euo pipefail
run_dir=${1:-runs/selftrain_vs_control}
for seed in 0 1 2; do
  python -m rest_mcts.iterate --rounds 3 --seed "$seed" --run-dir "$run_dir" --experiment "selftrain-seed$seed" --overwrite
  python -m rest_mcts.iterate --rounds 3 --seed "$seed" --run-dir "$run_dir" --experiment "control-seed$seed" --control --overwrite
  python -m rest_mcts.iterate --rounds 3 --seed "$seed" --run-dir "$run_dir" --experiment "oraclefilter-seed$seed" --search.oracle_step_filter --overwrite
done
python experiments/summarize.py "$run_dir"
