"""Why a generative verifier of a study (`experiments/verifier_study.py`) ranks as it does, on solutions it was
trained on.

For `--solutions` of the study's training samples (seeded draw): the AUROC of GenRM direct and of the ORM against
the oracle labels (did they fit their own data?); GenRM-CoT's AUROC when it reads the task's true check instead of
writing one (is its verdict conditioned on the check?); and how often the check it writes matches the true one
line by line (can it write the check?), with a few examples.

Usage: python experiments/verifier_diagnosis.py --run RUN --study STUDY_DIR [--solutions 300] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from lm.data import VerificationExample, atomic_write_text, read_jsonl
from lm.verifier_format import encode_verification
from rest_mcts.evaluate import load_run
from rest_mcts.round_metrics import auroc
from rest_mcts.search_models import load_verifier
from rest_mcts.tasks import get_task
from rest_mcts.verifier_data import cot_consistent
from search.types import Prefix


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--study", required=True)
    parser.add_argument("--solutions", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    config, _ = load_run(args.run, 0)
    study = Path(args.study)
    task = get_task(config.task)
    problems = {p.id: p for p in task.problems("train", config.task.train_problems, config.task.data_seed)}
    items = [(problems[row["problem_id"]], tuple(s["steps"]), s["correct"])
             for row in read_jsonl(study / "samples_train.jsonl") for s in row["solutions"]]
    items = random.Random(args.seed).sample(items, min(args.solutions, len(items)))
    prefixes = [Prefix(task.format_prompt(problem), steps) for problem, steps, _ in items]
    labels = [correct for _, _, correct in items]
    result: dict = {"solutions": len(items), "correct": sum(labels)}
    for name, kind in (("genrm", "genrm"), ("orm", "orm")):
        verifier = load_verifier(str(study / "verifiers" / name), config.verifier, "cpu", kind=kind)
        scores = verifier.verify(prefixes).scores
        result[f"{name}_auroc"] = auroc(scores, labels)
        result[f"{name}_mean_score"] = sum(scores) / len(scores)
    cot = load_verifier(str(study / "verifiers" / "genrm_cot"), config.verifier, "cpu", seed=args.seed,
                        kind="genrm_cot")
    examples = cot_consistent([VerificationExample(problem.id, task.format_prompt(problem), steps, correct,
                                                   task.verification_rationale(problem, steps))
                               for problem, steps, correct in items])
    rows = [encode_verification(cot.tokenizer, e.prompt, e.steps, cot.format, e.rationale).input_ids
            for e in examples]
    result["genrm_cot_auroc_reading_the_true_check"] = auroc(cot.p_yes(rows), [e.correct for e in examples])
    written = cot.writer.propose([Prefix(p.prompt, p.steps + (cot.format.check_cue,)) for p in prefixes], 1)
    lines_right = lines = whole_right = 0
    shown = []
    for example, (check, *_) in zip(examples, written):
        text = check.text.split(cot.format.question, 1)[0]
        true_lines, written_lines = example.rationale.splitlines(), text.splitlines()
        lines += len(true_lines)
        lines_right += sum(a == b for a, b in zip(true_lines, written_lines))
        whole_right += text == example.rationale
        if len(shown) < 4:
            shown.append({"true": example.rationale, "written": text})
    result["written_check_lines_right"] = lines_right / max(lines, 1)
    result["written_checks_right"] = whole_right / len(examples)
    result["examples"] = shown
    text = json.dumps(result, indent=1)
    if args.out:
        atomic_write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
