"""CoTnPoT: each chain of thought's program run in the sandbox; solutions whose program disagrees are dropped."""

from __future__ import annotations

from rest_mcts.cotnpot import check_solutions, kept_or_all
from rest_mcts.tasks import get_task


def test_right_solutions_are_kept_and_a_changed_last_letter_is_dropped():
    task = get_task("last_letter")
    problems = task.problems("test", 6, seed=0)
    right = [(p, task.reference_steps(p)) for p in problems]
    wrong = []
    for problem, steps in right:
        last = steps[-1].strip()
        changed = last[:-1] + ("z" if last[-1] != "z" else "b")
        wrong.append((problem, steps[:-1] + [changed + "\n"]))
    checks = check_solutions(task, right + wrong)
    assert [c.kept for c in checks] == [True] * 6 + [False] * 6
    assert all(c.reason == "disagrees" for c in checks[6:])
    assert checks[0].program_answer == task.extract_answer(right[0][1])


def test_a_solution_without_an_answer_or_a_program_is_dropped_without_running_anything():
    task = get_task("word_sort")
    problem = task.problems("test", 1, seed=0)[0]
    checks = check_solutions(task, [(problem, ["???\n"]), (problem, [])])
    assert [(c.kept, c.reason) for c in checks] == [(False, "no_answer"), (False, "no_answer")]


def test_the_filter_falls_back_to_every_solution_when_it_keeps_none():
    assert kept_or_all([False, True, True]) == [1, 2]
    assert kept_or_all([False, False]) == [0, 1]


def test_the_study_rows_record_a_sandbox_without_isolation_only_where_the_run_accepted_it(tmp_path, monkeypatch):
    """With no bwrap and no unshare on PATH, CoTnPoT refuses to run programs unless `sandbox.allow_unisolated`;
    accepted, each cotnpot_<split>.jsonl row says what the sandbox did not enforce."""
    import shutil
    from pathlib import Path

    import pytest

    from experiments.verifier_study import Study, cotnpot_split
    from lm.data import read_jsonl, write_jsonl
    from rest_mcts import sandbox
    from rest_mcts.config import RunConfig, SandboxConfig

    task = get_task("last_letter")
    problem = task.problems("test", 1, seed=0)[0]
    write_jsonl(tmp_path / "samples_test.jsonl", [{"problem_id": problem.id, "wave": 0,
                                                   "solutions": [{"steps": task.reference_steps(problem)}]}])
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("setpriv", "prlimit"):
        (tools / tool).symlink_to(shutil.which(tool))
    monkeypatch.setenv("PATH", str(tools))
    sandbox.resolve_isolation.cache_clear()
    try:
        with pytest.raises(sandbox.SandboxUnavailable, match="allow_unisolated"):
            check_solutions(task, [(problem, task.reference_steps(problem))])
        config = RunConfig(sandbox=SandboxConfig(allow_unisolated=True))
        cotnpot_split(Study(config, Path(), Path(), tmp_path, [], task, {}, {"test": {problem.id: problem}}, 1), "test")
    finally:
        sandbox.resolve_isolation.cache_clear()
    (row,) = read_jsonl(tmp_path / "cotnpot_test.jsonl")
    assert row["kept"] == [True] and row["sandbox_unisolated"] is True
    assert {"network-namespace", "read-only-filesystem", "private-tmp"} <= set(row["sandbox_not_enforced"])
