"""Search workers apply the settings sent with each request: new sampling settings reuse the loaded models,
new checkpoints load new ones, and a reused worker answers like a fresh one (the class is used without Ray)."""

from dataclasses import replace

import pytest

from rest_mcts.search_models import SamplerSettings
from rest_mcts.workers import SearchWorker, shard
from search.mcts import MCTSParams

Worker = SearchWorker.__ray_actor_class__


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from lm.build import build_tiny_policy, prm_from_policy
    from lm.checkpoints import save_checkpoint
    from lm.tokenizer import build_char_tokenizer

    folder = tmp_path_factory.mktemp("checkpoints")
    tokenizer = build_char_tokenizer()
    for seed in (0, 1):
        save_checkpoint(build_tiny_policy(tokenizer, 32, 1, 2, 64, 256, seed=seed), tokenizer, folder / f"policy{seed}")
    save_checkpoint(prm_from_policy(folder / "policy0", seed=1), tokenizer, folder / "prm")
    return folder


def test_a_worker_switches_settings_without_reloading_and_answers_like_a_fresh_one(checkpoints):
    from rest_mcts.tasks import get_task

    problems = get_task("modchain").problems("test", 3, 0)
    searching = SamplerSettings(str(checkpoints / "policy0"), str(checkpoints / "prm"), "modchain", 1.0, 8, seed=3,
                                kv_store_mb=0.0)
    evaluating = replace(searching, temperature=0.3, greedy_first=True, seed=4)
    params = MCTSParams(branch=2, max_simulations=3, max_depth=4)

    worker = Worker(evaluating, 1, 0)
    policy, scorer = worker.sampler.model, worker.scorer
    worker.greedy(evaluating, problems, 4)
    trees = worker.search(searching, problems, params)
    assert worker.sampler.model is policy and worker.scorer is scorer  # same checkpoints: nothing reloaded
    assert worker.sampler.temperature == 1.0 and not worker.sampler.greedy_first
    assert trees == Worker(searching, 1, 0).search(searching, problems, params)

    other = replace(searching, policy_path=str(checkpoints / "policy1"))
    worker.greedy(other, problems, 4)
    assert worker.sampler.model is not policy and worker.settings == other

    worker.release_engines()  # before a colocated training stage: nothing held, the next request loads again
    assert (worker.sampler, worker.scorer, worker.verifier, worker.settings) == (None, None, None, None)
    assert worker.search(searching, problems, params) == trees


@pytest.mark.parametrize("count, size, workers, sizes", [
    (100, 40, 2, [25, 25, 25, 25]),  # not 40, 40, 20: a worker would idle through the last shard
    (50, 40, 2, [25, 25]),
    (200, 40, 2, [33, 33, 34, 33, 33, 34]),
    (7, 40, 1, [7]),
    (3, 1, 2, [1, 1, 1]),  # fewer problems than a multiple of the workers: one per shard
    (1, 40, 4, [1]),
    (0, 40, 2, []),
])
def test_shards_are_even_in_size_and_a_multiple_of_the_workers(count, size, workers, sizes):
    problems = list(range(count))
    shards = shard(problems, size, workers)
    assert [len(part) for part in shards] == sizes
    assert sum(shards, []) == problems  # consecutive, every problem once, in order


def test_shard_size_must_be_positive():
    with pytest.raises(ValueError, match="shard size"):
        shard([1, 2], 0)


def test_only_sampling_settings_apply_without_loading_the_models_again():
    settings = SamplerSettings("policy", "prm", "modchain", 1.0, 32, seed=0)
    assert settings.same_models(replace(settings, temperature=0.3, seed=7, greedy_first=True))
    assert not settings.same_models(None)
    for change in ({"policy_path": "other"}, {"prm_path": ""}, {"max_step_tokens": 16}, {"decode": "generate"},
                   {"kv_store_mb": 1.0}, {"task": "last_letter"}):
        assert not settings.same_models(replace(settings, **change)), change


def test_a_change_of_verifier_loads_the_verifier_alone():
    from rest_mcts.config import VerifierConfig

    settings = SamplerSettings("policy", "prm", "modchain", 1.0, 32, seed=0)
    assert settings.same_models(replace(settings, verifier_path="verifier", verifier=VerifierConfig(kind="genrm")))


class _FixedVerifier:
    """Scores every solution 0.25 and says it generated 2 tokens for it."""

    def verify(self, prefixes):
        from search.types import VerifierScores

        return VerifierScores([0.25] * len(prefixes), [2] * len(prefixes), [1] * len(prefixes))


def test_a_search_values_terminals_or_every_node_by_the_verifier_as_asked(checkpoints):
    from rest_mcts.tasks import get_task
    from search.tree import Tree

    problems = get_task("modchain").problems("test", 2, 0)
    settings = SamplerSettings(str(checkpoints / "policy0"), str(checkpoints / "prm"), "modchain", 1.0, 8, seed=3,
                               kv_store_mb=0.0)
    params = MCTSParams(branch=2, max_simulations=3, max_depth=4)
    worker = Worker(settings, 1, 0)
    with pytest.raises(ValueError, match="needs SamplerSettings.verifier_path"):
        worker.search(settings, problems, params, "leaf")
    worker.verifier = _FixedVerifier()  # what `_use` loads from settings.verifier_path
    with pytest.raises(ValueError, match="verifier use 'root'"):
        worker.search(settings, problems, params, "root")
    assert worker.search(settings, problems, params) == Worker(settings, 1, 0).search(settings, problems, params)

    for use in ("leaf", "step"):
        for record in worker.search(settings, problems, params, use):
            tree = Tree.from_dict(record)
            verified = [node for node in tree.nodes[1:] if node.is_terminal or use == "step"]
            assert tree.terminal_nodes() and all(node.prm_score == 0.25 for node in verified)
            assert tree.verifier_tokens == 2 * len(verified)
            if use == "leaf":
                assert all(node.prm_score != 0.25 for node in tree.nodes[1:] if not node.is_terminal)


class OneShardPool:
    """A stand-in for SearchPool: one worker, each shard's 'trees' are just their problem ids."""

    workers = [None]

    def map(self, method, shards, *args, on_result, label):
        for index, part in enumerate(shards):
            on_result(index, [{"problem_id": problem.id} for problem in part])


def test_an_append_that_fails_leaves_the_trees_file_as_it_was(tmp_path, monkeypatch):
    import errno
    import os

    from lm.data import Problem
    from rest_mcts import workers

    path = tmp_path / "trees.jsonl"
    path.write_text('{"problem_id": "a"}\n')

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(workers.os, "fsync", disk_full)
    problems = [Problem(name, "q", "1") for name in ("a", "b", "c")]
    with pytest.raises(OSError, match="No space left"):
        workers.search_to_file(OneShardPool(), problems, MCTSParams(), path, 1, "test")
    assert path.read_text() == '{"problem_id": "a"}\n'
    assert os.path.getsize(path) == len('{"problem_id": "a"}\n')


def test_a_torn_last_line_is_cut_with_a_warning_and_damage_before_it_is_named(tmp_path, caplog):
    from lm.data import read_appended_jsonl

    path = tmp_path / "trees.jsonl"
    path.write_bytes(b'{"problem_id": "a"}\n{"problem_id": "b"}\n{"problem_id": "c", "no')
    assert read_appended_jsonl(path) == [{"problem_id": "a"}, {"problem_id": "b"}]
    assert "trees.jsonl:3: torn last line" in caplog.text
    assert path.read_bytes() == b'{"problem_id": "a"}\n{"problem_id": "b"}\n'  # the next append starts clean
    path.write_bytes(b'{"problem_id": "a"}\n{"problem_id": "b"}\n{"problem_id": "c"}')  # whole, but no newline
    assert read_appended_jsonl(path) == [{"problem_id": "a"}, {"problem_id": "b"}]
    path.write_bytes(b'{"problem_id": "a"}\nnot json\n{"problem_id": "c"}\n')
    with pytest.raises(ValueError, match=r"trees\.jsonl:2: not a JSON line .* damaged before its last line"):
        read_appended_jsonl(path)
    assert read_appended_jsonl(tmp_path / "absent.jsonl") == []
