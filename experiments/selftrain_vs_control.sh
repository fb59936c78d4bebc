#!/usr/bin/env bash
# Self-training against the seed-only control, three seeds, on the embedded default; then the table.
# The control starts from the self-training run's own round 0 (warm start and initial PRM are the
# same by definition), so only rounds 1-3 differ: it resumes a copy of that round with control on.
# Usage: bash experiments/selftrain_vs_control.sh [RUN_DIR] [SEEDS...]
#   (per seed: one default run, about 8-10 minutes here, and a control of about 5 minutes)
# ORACLE_FILTER=1 adds the diagnostic arm that keeps only traces whose every step is right.
set -euo pipefail
run_dir=${1:-runs/selftrain_vs_control}
shift || true
seeds=${*:-0 1 2}
for seed in $seeds; do
  python -m rest_mcts.iterate --rounds 3 --seed "$seed" --run-dir "$run_dir" --experiment "selftrain-seed$seed" --overwrite
  control="$run_dir/control-seed$seed"
  rm -rf "$control" && mkdir -p "$control"
  cp -r "$run_dir/selftrain-seed$seed/round_00" "$control/"
  python - "$run_dir/selftrain-seed$seed/config.yaml" "$control/config.yaml" "control-seed$seed" <<'EOF'
import sys

import yaml

from rest_mcts.data import atomic_write_text

source, target, name = sys.argv[1:]
config = yaml.safe_load(open(source))
config["control"] = True
config["logging"]["experiment"] = name
atomic_write_text(target, yaml.safe_dump(config, sort_keys=False))
EOF
  python -m rest_mcts.iterate --run-dir "$run_dir" --experiment "control-seed$seed" --resume
  if [[ "${ORACLE_FILTER:-0}" == 1 ]]; then
    python -m rest_mcts.iterate --rounds 3 --seed "$seed" --run-dir "$run_dir" --experiment "oraclefilter-seed$seed" --traces.oracle_step_filter --overwrite
  fi
done
python experiments/summarize.py "$run_dir"
