"""Stage bodies of a round without Ray: which data the policy trains on, examples independent of the order trees
were written in, dev problems held out of the searches, and the method's stage lists."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest


def test_policy_data_replays_seed_solutions_beside_the_verified_traces(tmp_path):
    import dataclasses

    from lm.data import PolicyExample, write_jsonl
    from rest_mcts.config import EvalConfig, RunConfig, TaskConfig, TracesConfig
    from rest_mcts.stages import Context, policy_training_data

    traces = [PolicyExample(f"train-{i:05d}", f"q{i}\n", ("7\n",)) for i in range(5)]
    (tmp_path / "round_01").mkdir()
    write_jsonl(tmp_path / "round_01" / "policy_examples.jsonl", traces)
    config = RunConfig(task=TaskConfig(seed_problems=40, train_problems=20, problems_per_round=8, test_problems=5,
                                       ood_problems=5),
                       traces=TracesConfig(seed_replay_ratio=1.0), eval=EvalConfig(dev_problems=5))

    data = policy_training_data(Context.of(config, tmp_path), 1)
    assert data[-5:] == traces and len(data) == 10  # one seed solution per trace
    assert all(example.problem_id.startswith("seed-") for example in data[:5])
    assert data == policy_training_data(Context.of(config, tmp_path), 1)  # the same draw on resume

    everything = dataclasses.replace(config, traces=TracesConfig(seed_replay_ratio=-1))
    assert len(policy_training_data(Context.of(everything, tmp_path), 1)) == 45
    no_traces_yet = Context.of(config, tmp_path.parent / "empty")
    assert len(policy_training_data(no_traces_yet, 0)) == 40  # nothing found yet: all seed solutions
    control = dataclasses.replace(config, control=True)
    assert [e.problem_id for e in policy_training_data(Context.of(control, tmp_path), 1)] == [
        f"seed-{i:05d}" for i in range(40)]


def test_value_and_policy_examples_do_not_depend_on_the_order_trees_were_appended(tmp_path):
    # Search shards append their trees as they finish, so trees.jsonl comes in a different order from
    # run to run; the examples (and so the PRM's and policy's training data) must not.
    from rest_mcts.config import EvalConfig, RunConfig, TaskConfig
    from rest_mcts.rounds import Round
    from rest_mcts.stages import Context, filter_traces, infer_values
    from search.tree import Tree

    config = RunConfig(task=TaskConfig(seed_problems=10, train_problems=6, problems_per_round=4, test_problems=5,
                                       ood_problems=5),
                       eval=EvalConfig(dev_problems=2))
    context = Context.of(config, tmp_path)
    trees = []
    for problem in context.problems.train[:4]:
        tree = Tree.new(problem.id, context.task.format_prompt(problem))
        node = 0
        for index, step in enumerate(context.task.reference_steps(problem)):
            tree.add_child(node, f"wrong {index}\n", is_terminal=True)
            node = tree.add_child(node, step, is_terminal=context.task.is_final_step(step))
        trees.append(tree.to_dict())
    written = {}
    for name, order in (("a", trees), ("b", trees[::-1])):
        round_ = Round(1, tmp_path / name)
        round_.path.mkdir()
        (round_.path / "trees.jsonl").write_text("".join(json.dumps(record) + "\n" for record in order))
        infer_values(context, round_)
        filter_traces(context, round_)
        written[name] = [(round_.path / f).read_text() for f in ("value_examples.jsonl", "policy_examples.jsonl")]
    assert written["a"] == written["b"]
    assert written["a"][1].count("\n") == 4  # one verified trace per problem


def test_dev_problems_are_held_out_of_every_round_search(tmp_path):
    from rest_mcts.config import ConfigError, EvalConfig, RunConfig, TaskConfig
    from rest_mcts.stages import Context

    task = TaskConfig(seed_problems=10, train_problems=30, problems_per_round=8, test_problems=5, ood_problems=5)
    context = Context.of(RunConfig(task=task, eval=EvalConfig(dev_problems=10)), tmp_path)
    searched = {problem.id for index in range(6) for problem in context.problems.for_round(index, 8)}
    dev = {problem.id for problem in context.problems.dev}
    assert len(dev) == 10 and len(searched) == 20 and not dev & searched
    assert dev | searched == {problem.id for problem in context.task.problems("train", 30, task.data_seed)}
    with pytest.raises(ConfigError, match="--eval.dev_problems 30"):
        Context.of(RunConfig(task=task, eval=EvalConfig(dev_problems=30)), tmp_path)


def test_every_method_round_searches_infers_filters_trains_both_models_and_evaluates():
    from rest_mcts.stages import ROUND_STAGES, WARM_START_STAGES

    for stages in ROUND_STAGES.values():
        names = [name for name, _ in stages]
        assert names[-1] == "evaluate" and len(set(names)) == len(names)
    assert [name for name, _ in ROUND_STAGES["rest_mcts"]] == [
        "search", "infer_values", "filter_traces", "train_policy", "train_prm", "evaluate"]
    assert [name for name, _ in WARM_START_STAGES] == [
        "init_policy", "train_policy", "init_prm", "search", "infer_values", "filter_traces", "train_prm", "evaluate"]


def test_an_unknown_method_is_rejected_naming_the_flag():
    from rest_mcts.config import ConfigError, RunConfig
    from rest_mcts.preflight import validate

    with pytest.raises(ConfigError, match="--method 'rest_xyz'.*rest_em"):
        validate(RunConfig(method="rest_xyz"))


def test_rest_em_keeps_correct_distinct_samples_per_problem_and_reads_the_matched_search_tokens(tmp_path):
    from lm.data import PolicyExample, read_jsonl
    from rest_mcts.config import ConfigError, EvalConfig, RestEMConfig, RunConfig, TaskConfig, TracesConfig
    from rest_mcts.preflight import validate
    from rest_mcts.rounds import Round
    from rest_mcts.stages import ROUND_STAGES, Context, filter_samples, rest_em_target_tokens

    assert [name for name, _ in ROUND_STAGES["rest_em"]] == [
        "sample", "filter_traces", "train_policy", "train_prm", "evaluate"]
    matched = tmp_path / "matched"
    Round.of(matched, 1).path.mkdir(parents=True)
    (matched / "config.yaml").write_text("rounds: 1\n")
    Round.of(matched, 1).record("search", 1.0, {"search/tokens": 1234.0})
    config = RunConfig(method="rest_em", rest_em=RestEMConfig(match_tokens_of=str(matched)),
                       task=TaskConfig(seed_problems=10, train_problems=8, problems_per_round=4, test_problems=5,
                                       ood_problems=5),
                       traces=TracesConfig(max_per_problem=2), eval=EvalConfig(dev_problems=2))
    context = Context.of(config, tmp_path / "run")
    assert rest_em_target_tokens(context, Round.of(tmp_path / "run", 1)) == 1234
    with pytest.raises(ValueError, match="round 2 has no finished search"):
        rest_em_target_tokens(context, Round.of(tmp_path / "run", 2))
    with pytest.raises(ConfigError, match="--rest_em.match_tokens_of"):
        validate(RunConfig(rest_em=RestEMConfig(match_tokens_of=str(tmp_path / "nothing"))))

    task, (first, second) = context.task, context.problems.train[:2]
    right = list(task.reference_steps(first))
    wrong = right[:-1] + ["9\n"]
    round_ = Round.of(tmp_path / "run", 1)
    round_.path.mkdir(parents=True)
    rows = [{"problem_id": first.id, "tokens": 10, "wave": 0,
             "solutions": [{"steps": wrong, "correct": False}, {"steps": right, "correct": True},
                           {"steps": right, "correct": True}]},
            {"problem_id": second.id, "tokens": 10, "wave": 0, "solutions": [{"steps": wrong, "correct": False}]},
            {"problem_id": first.id, "tokens": 10, "wave": 1,
             "solutions": [{"steps": right[:-1] + ["other\n"], "correct": True},
                           {"steps": right[:-1] + ["third\n"], "correct": True}]}]
    (round_.path / "samples.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    metrics = filter_samples(context, round_)
    kept = list(read_jsonl(round_.path / "policy_examples.jsonl", PolicyExample))
    # duplicates dropped, wrong ones dropped, at most max_per_problem (2), in sampling order
    assert [example.steps for example in kept] == [tuple(right), tuple(right[:-1] + ["other\n"])]
    assert metrics["examples/policy"] == 2


def test_stage_lists_are_todays_unless_the_verifier_trains_in_the_rounds_then_it_trains_before_evaluate():
    from rest_mcts.config import RunConfig, VerifierConfig
    from rest_mcts.stages import ROUND_STAGES, WARM_START_STAGES, stages_of, train_verifier

    for method in ROUND_STAGES:
        config = RunConfig(method=method)
        assert stages_of(config, 0) == WARM_START_STAGES
        assert stages_of(config, 1) == stages_of(config, 3) == ROUND_STAGES[method]
    on = RunConfig(verifier=VerifierConfig(train_in_rounds=True))
    assert [name for name, _ in stages_of(on, 0)] == [
        "init_policy", "train_policy", "init_prm", "search", "infer_values", "filter_traces", "train_prm",
        "train_verifier", "evaluate"]
    assert [name for name, _ in stages_of(on, 2)] == [
        "search", "infer_values", "filter_traces", "train_policy", "train_prm", "train_verifier", "evaluate"]
    assert ("train_verifier", train_verifier) in stages_of(on, 1)
    # ReST-EM searches no trees after round 0: its later rounds stay as they are
    rest_em = RunConfig(method="rest_em", verifier=VerifierConfig(train_in_rounds=True))
    assert "train_verifier" in dict(stages_of(rest_em, 0)) and stages_of(rest_em, 1) == ROUND_STAGES["rest_em"]


def _verifier_context(tmp_path, kind: str, model: str = ""):
    from rest_mcts.config import EvalConfig, RunConfig, TaskConfig, VerifierConfig
    from rest_mcts.stages import Context

    config = RunConfig(task=TaskConfig(name="last_letter", seed_problems=10, train_problems=6, problems_per_round=4,
                                       test_problems=5, ood_problems=5), eval=EvalConfig(dev_problems=2),
                       verifier=VerifierConfig(kind=kind, train_in_rounds=True, model=model))
    return Context.of(config, tmp_path)


def test_a_round_whose_trees_hold_no_pair_trains_no_simpo_and_carries_the_last_verifier_forward(tmp_path):
    from rest_mcts.rounds import Round
    from rest_mcts.stages import train_verifier
    from search.tree import Tree

    context = _verifier_context(tmp_path, "simpo")
    problem = context.problems.train[0]
    tree = Tree.new(problem.id, context.task.format_prompt(problem))
    tree.nodes[tree.add_child(0, "wrong\n", is_terminal=True)].answer_correct = False
    for index in (0, 1):
        Round.of(tmp_path, index).path.mkdir()
        (Round.of(tmp_path, index).path / "trees.jsonl").write_text(json.dumps(tree.to_dict()) + "\n")

    metrics = train_verifier(context, Round.of(tmp_path, 0))  # no Ray: nothing to train, nothing started
    assert metrics == {"verifier/examples": 1.0, "verifier/pairs": 0.0, "verifier/steps": 0.0}
    assert not Round.of(tmp_path, 0).has_verifier  # round 0: none to carry

    Round.of(tmp_path, 0).verifier.mkdir()
    (Round.of(tmp_path, 0).verifier / "config.json").write_text("{}")
    assert train_verifier(context, Round.of(tmp_path, 1))["verifier/steps"] == 0.0
    assert (Round.of(tmp_path, 1).verifier / "config.json").read_text() == "{}"


def test_the_verifier_starts_from_the_last_rounds_then_the_given_model_then_the_rounds_policy(tmp_path):
    from rest_mcts.rounds import Round
    from rest_mcts.stages import verifier_start

    first, second = Round.of(tmp_path, 0), Round.of(tmp_path, 1)
    assert verifier_start(_verifier_context(tmp_path, "genrm"), first) == first.policy
    assert verifier_start(_verifier_context(tmp_path, "genrm", "my/model"), second) == Path("my/model")
    first.verifier.mkdir(parents=True)
    (first.verifier / "config.json").write_text("{}")
    assert verifier_start(_verifier_context(tmp_path, "genrm", "my/model"), second) == first.verifier


# The rounds' difficulty schedule (modtarget: round r searches problems of at most 3 + r operations).

CURRICULUM_TASK = dict(seed_problems=10, train_problems=40, problems_per_round=6, test_problems=5, ood_problems=5)
"""The default modtarget task section at small sizes: 36 problems searched, 4 dev."""


@pytest.fixture(scope="module")
def curriculum_problems():
    """`RunProblems.of` for the default modtarget config (small sizes) and for schedule variants, keyed by the
    (curriculum_start, curriculum_step) changed; one task that remembers its draws, so the splits (seconds each:
    every seed or train draw redraws the 1000-problem held-out pools) are drawn once."""
    from rest_mcts.config import EvalConfig, RunConfig, TaskConfig
    from rest_mcts.problems import RunProblems
    from rest_mcts.tasks.modtarget import ModTargetTask

    class RememberingTask(ModTargetTask):
        drawn: dict = {}

        def problems(self, split, count, seed):
            if (split, count, seed) not in self.drawn:
                self.drawn[split, count, seed] = super().problems(split, count, seed)
            return self.drawn[split, count, seed]

    task = RememberingTask()
    variants = {}
    for start, step in ((-1, 1), (0, 1), (4, 1), (-1, 2)):
        config = RunConfig(task=TaskConfig(**CURRICULUM_TASK, curriculum_start=start, curriculum_step=step),
                           eval=EvalConfig(dev_problems=4))
        variants[start, step] = RunProblems.of(config, task)
    return task, variants


def test_each_round_searches_problems_of_at_most_three_plus_its_index_operations(curriculum_problems):
    task, variants = curriculum_problems
    problems = variants[-1, 1]
    count = CURRICULUM_TASK["problems_per_round"]
    lengths = [task.difficulty(problem) for problem in problems.train]
    assert len(problems.train) == 36 and lengths.count(3) >= count  # enough of the shortest for round 0
    for round_index in range(10):
        chosen = problems.for_round(round_index, count)
        assert len(chosen) == count
        assert all(task.difficulty(problem) <= 3 + round_index for problem in chosen), round_index
        assert problems.max_difficulty(round_index) == 3 + round_index
    # Round 0: the first problems of 3 operations, in pool order.
    assert problems.for_round(0, count) == [p for p in problems.train if task.difficulty(p) == 3][:count]
    # Other schedules: a start of 4, or a step of 2.
    assert all(task.difficulty(p) <= 4 for p in variants[4, 1].for_round(0, count))
    assert any(task.difficulty(p) == 4 for p in variants[4, 1].for_round(0, count) + variants[4, 1].for_round(1, count))
    for round_index in range(4):
        assert all(task.difficulty(p) <= 3 + 2 * round_index for p in variants[-1, 2].for_round(round_index, count))


def test_a_round_never_repeats_a_problem_and_searches_fresh_ones_first(curriculum_problems):
    task, variants = curriculum_problems
    count = CURRICULUM_TASK["problems_per_round"]
    for problems in variants.values():
        rounds = [[problem.id for problem in problems.for_round(index, count)] for index in range(12)]
        assert all(len(set(ids)) == len(ids) == count for ids in rounds)
        # The 36 problems are searched once each in the first 6 rounds, before any is searched again.
        first_six = [problem_id for ids in rounds[:6] for problem_id in ids]
        assert sorted(first_six) == sorted(problem.id for problem in problems.train)
        assert not {problem.id for problem in problems.dev} & {i for ids in rounds for i in ids}
        assert problems.for_round(3, count) == problems.for_round(3, count)  # the same on resume


def test_with_curriculum_start_0_every_difficulty_can_appear_from_round_0(curriculum_problems):
    task, variants = curriculum_problems
    problems = variants[0, 1]
    count = CURRICULUM_TASK["problems_per_round"]
    assert problems.max_difficulty(0) is None
    assert problems.for_round(0, count) == problems.train[:count]  # the pool's first slice, whatever its lengths
    seen = {task.difficulty(problem) for index in range(6) for problem in problems.for_round(index, count)}
    low, high = task.operation_counts["train"]
    assert seen == set(range(low, high + 1))


def test_without_a_curriculum_rounds_take_consecutive_slices_of_the_pool_wrapping_around(curriculum_problems):
    # As before the schedule: round r searches pool[r·count:(r+1)·count], wrapping around once the pool is used,
    # so later rounds cycle through the whole pool rather than search its first slice again and again.
    _, variants = curriculum_problems
    problems = variants[0, 1]
    count, size = 8, len(problems.train)  # 36 is no multiple of 8: the slices wrap at different places
    for round_index in range(12):
        expected = [problems.train[(round_index * count + i) % size] for i in range(count)]
        assert problems.for_round(round_index, count) == expected, round_index


def test_with_the_schedule_the_rounds_cycle_through_the_pool_once_it_is_used_up(curriculum_problems):
    # Problems searched fewer times come first: over rounds 6 to 11 (every difficulty allowed by then) each of the
    # 36 problems is searched once more.
    _, variants = curriculum_problems
    problems = variants[-1, 1]
    count = CURRICULUM_TASK["problems_per_round"]
    again = [problem.id for index in range(6, 12) for problem in problems.for_round(index, count)]
    assert sorted(again) == sorted(problem.id for problem in problems.train)


def test_an_added_recipe_needs_no_other_file(monkeypatch):
    """docs/extending.md's walk-through: a method made of existing stages is one entry of `recipes.RECIPES`; the
    configuration accepts it, its stages resolve to their functions and the placement plan describes it."""
    from rest_mcts import recipes
    from rest_mcts.config import RunConfig
    from rest_mcts.plan import placement_plan
    from rest_mcts.preflight import validate
    from rest_mcts.recipes import DRIVER, SEARCH_WORKER, TRAINER_RANK, StageSpec
    from rest_mcts.stages import BODIES, stages_of

    monkeypatch.setitem(recipes.RECIPES, "rest_mcts_frozen_prm", (
        StageSpec("search", "search", SEARCH_WORKER),
        StageSpec("filter_traces", "filter_traces", DRIVER),
        StageSpec("train_policy", "train_policy", TRAINER_RANK, "policy"),
        StageSpec("train_prm", "keep_prm", DRIVER),
        StageSpec("evaluate", "evaluate_round", SEARCH_WORKER),
    ))
    config = RunConfig(method="rest_mcts_frozen_prm")
    validate(config)
    assert [(name, body) for name, body in stages_of(config, 1)] == [
        ("search", BODIES["search"]), ("filter_traces", BODIES["filter_traces"]),
        ("train_policy", BODIES["train_policy"]), ("train_prm", BODIES["keep_prm"]),
        ("evaluate", BODIES["evaluate_round"])]
    assert placement_plan(config)["stages"]["rounds 1-3"] == {
        "search": "search workers", "filter_traces": "driver", "train_policy": "trainer ranks (policy)",
        "train_prm": "driver", "evaluate": "search workers"}


def test_matched_sampling_lands_within_5_percent_of_the_target_when_solutions_grow_between_waves(tmp_path,
                                                                                                 monkeypatch):
    from dataclasses import dataclass

    from rest_mcts.config import RunConfig
    from rest_mcts.stages import search_and_values

    @dataclass(frozen=True)
    class Settings:
        seed: int = 0

    class Pool:  # wave 0's solutions are 10 tokens long, every later wave's 13
        settings, workers, waves = Settings(), [None], []

        def map(self, method, shards, count, max_depth, label):
            self.waves.append(count)
            length = 10 if len(self.waves) == 1 else 13
            return [[{"problem_id": p.id, "solutions": [{"steps": ["1\n"], "correct": False}] * count,
                      "tokens": length * count} for p in batch] for batch in shards]

    problems = [SimpleNamespace(id=f"p{index}") for index in range(100)]
    pool = Pool()
    ctx = SimpleNamespace(config=RunConfig(method="rest_em"),
                          problems=SimpleNamespace(for_round=lambda index, count: problems),
                          search_pool=lambda *args: pool)
    monkeypatch.setattr(search_and_values, "rest_em_target_tokens", lambda ctx, round_: 8000)
    metrics = search_and_values.sample(ctx, SimpleNamespace(index=1, path=tmp_path, previous=SimpleNamespace(
        policy=tmp_path)))
    assert abs(metrics["sample/tokens"] - 8000) <= 0.05 * 8000, (metrics, pool.waves)
    assert metrics["sample/target_tokens"] == 8000 and len(pool.waves) > 2
