"""Every metric a run writes (eval.json and timing.json) is defined in docs/metrics.md: the keys of a tiny run are
matched against the table's first column, whose placeholders (`<split>`, `<k>`, `<n>`, `<stage>`) stand for any
split, number or stage name."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PLACEHOLDERS = {"<split>": r"(test|ood|dev)", "<k>": r"\d+", "<n>": r"\d+", "<stage>": r"\w+"}


def documented_patterns(page: Path = REPO / "docs" / "metrics.md") -> list[re.Pattern]:
    """One regular expression per key named in the first column of the page's table."""
    patterns = []
    for line in page.read_text().splitlines():
        if not line.startswith("| `"):
            continue
        for key in re.findall(r"`([^`]+)`", line.split(" | ")[0]):
            regex = re.escape(key)
            for placeholder, part in PLACEHOLDERS.items():
                regex = regex.replace(re.escape(placeholder), part)
            patterns.append(re.compile(regex + "$"))
    return patterns


def undocumented(keys, patterns) -> list[str]:
    return sorted(key for key in keys if not any(pattern.match(key) for pattern in patterns))


def test_the_placeholders_match_what_they_stand_for_and_nothing_else():
    patterns = documented_patterns()
    assert len(patterns) > 40
    assert undocumented(["test/greedy/accuracy", "ood/mcts/accuracy_len7", "test/pass_at_16/accuracy",
                         "timing_s/train_prm", "dev/mcts/answer_margin"], patterns) == []
    assert undocumented(["test/greedy/accuracy_typo", "train/greedy/accuracy", "prm/lossy"], patterns) == [
        "prm/lossy", "test/greedy/accuracy_typo", "train/greedy/accuracy"]


@pytest.mark.slow
def test_every_key_a_run_writes_is_defined_in_the_metrics_page(comparison_runs):
    """Tiny runs of both methods' round stages, one with a verifier trained in the rounds and pass@k: every key of
    every round's eval.json and timing.json has its row."""
    keys = set()
    for name in ("eval.json", "timing.json"):
        for file in comparison_runs.glob(f"*/round_*/{name}"):
            keys |= set(json.loads(file.read_text()))
    assert "test/mcts_step_verifier/accuracy" in keys and "sample/tokens" in keys
    assert undocumented(keys, documented_patterns()) == [], "add them to docs/metrics.md"
