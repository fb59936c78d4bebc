#!/usr/bin/env bash
# Verifiers compared by Best-of-N, in the GenRM paper's form, on modtarget, last_letter and word_sort: per task a
# warm-start run (the policy and PRM of round 0), then `python experiments/verifier_study.py` on it (verifiers trained on
# that policy's samples, N = 16, test and OOD, CoTnPoT, self-consistency at equal tokens), then the combined table.
# Usage: bash experiments/verifiers.sh [RUN_DIR] [TASKS...]
# Every stage resumes: an interrupted script can be started again.
set -euo pipefail
run_dir=${1:-runs/verifiers}
shift || true
tasks=${*:-modtarget last_letter word_sort}
for task in $tasks; do
  if [[ ! -f "$run_dir/$task/round_00/DONE" ]]; then
    resume=""
    [[ -f "$run_dir/$task/config.yaml" ]] && resume="--resume"
    python -m rest_mcts.iterate --rounds 0 --task "$task" --run-dir "$run_dir" --experiment "$task" $resume
  fi
  python experiments/verifier_study.py --run "$run_dir/$task" --round 0 --out "$run_dir/$task/best_of_n" \
    --problems 100 --waves 16 16 32 --rationales 1 4 16
done
python experiments/verifier_table.py $(for task in $tasks; do echo "$run_dir/$task/best_of_n"; done)
