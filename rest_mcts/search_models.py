"""The models a search worker searches with: which checkpoints and sampling settings (`SamplerSettings`), and
loading them into the step sampler and the PRM scorer. No Ray here: workers, tests and benchmarks build their
models through `build_search_models`, so all of them run the same fast paths."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rest_mcts.config import EngineConfig, RunConfig, TaskConfig, VerifierConfig
from rest_mcts.seeds import worker_seed

if TYPE_CHECKING:
    from lm.prm_scorer import PRMScorer
    from lm.sampler import StepSampler
    from rest_mcts.tasks import Task


@dataclass(frozen=True)
class SamplerSettings:
    """What a worker needs to sample steps: checkpoints, task and decoding settings."""

    policy_path: str
    prm_path: str
    """Empty: no PRM yet, every step scores NEUTRAL_SCORE."""
    task: TaskConfig | str
    """The run's task section (or a task name: the task with its defaults)."""
    temperature: float
    max_step_tokens: int
    seed: int
    """The sampling seed (`seeds.round_sampling_seed` in a run)."""
    decode: str = "cached"
    """'cached' or 'generate' (see SearchConfig.decode)."""
    kv_store_mb: float = 256.0
    """KV kept across calls per model (see SearchConfig.kv_store_mb)."""
    greedy_first: bool = False
    """The first candidate of every expansion is the argmax step (see EvalConfig.greedy_first)."""
    verifier_path: str = ""
    """A verifier checkpoint to serve beside the PRM (empty: none); read as `verifier.kind` says."""
    verifier: VerifierConfig | None = None
    """The verifier's settings (kind, format, checks per solution)."""
    step_check: bool = False
    """Run the task's execution check on every step the PRM scores (see SearchConfig.step_check)."""
    backend: str = "hf"
    """Who generates the steps: 'hf' or 'vllm' (see SearchConfig.backend)."""
    engine: EngineConfig | None = None
    """With the vllm backend, its engines' settings, the GPU share and tensor parallel size resolved
    (`engine_for`)."""

    APPLIED_PER_REQUEST = ("temperature", "seed", "greedy_first", "step_check")
    """Fields a worker applies to its loaded sampler; a change of any other field but the verifier's loads the
    models again."""
    VERIFIER_FIELDS = ("verifier_path", "verifier")
    """Fields of the verifier, which a worker loads on its own: a change of them leaves the policy and PRM loaded."""

    @classmethod
    def from_config(cls, config: RunConfig, policy_path: str, prm_path: str, temperature: float, seed: int,
                    greedy_first: bool = False) -> SamplerSettings:
        """Settings for `policy_path` and `prm_path` with the run's task and search section."""
        return cls(policy_path, prm_path, config.task, temperature, config.search.max_step_tokens, seed,
                   config.search.decode, config.search.kv_store_mb, greedy_first, step_check=config.search.step_check,
                   backend=config.search.backend,
                   engine=engine_for(config) if config.search.backend == "vllm" else None)

    def same_models(self, other: SamplerSettings | None) -> bool:
        """Whether `other` needs the same loaded policy and PRM (it differs at most in APPLIED_PER_REQUEST and
        VERIFIER_FIELDS)."""
        return other is not None and replace(other, **{name: getattr(self, name) for name in
                                                       self.APPLIED_PER_REQUEST + self.VERIFIER_FIELDS}) == self


def engine_for(config: RunConfig, engines: int = 2) -> EngineConfig:
    """The `engine` section with what it leaves to the cluster resolved: the tensor parallel size (the worker's
    GPUs) and each engine's share of a GPU's memory (0.85 of the worker's share over the `engines` models it
    serves: the policy and the PRM, as an engine or the project's scorer, and GenRM-CoT's writer when it has one;
    halved again when trainer ranks share the GPUs)."""
    engine, cluster = config.engine, config.cluster
    memory = engine.gpu_memory_utilization
    if not memory and cluster.gpus_per_worker:
        memory = 0.85 * min(1.0, cluster.gpus_per_worker)
        memory /= engines
        memory /= 2 if cluster.colocate and cluster.gpus_per_rank else 1
    return replace(engine, gpu_memory_utilization=memory,
                   tensor_parallel_size=engine.tensor_parallel_size or max(1, int(cluster.gpus_per_worker)))


NEUTRAL_SCORE = 0.5
"""The value every step gets when no PRM exists yet (round-0 bootstrap search)."""


def build_search_models(settings: SamplerSettings, device: str, worker_index: int, num_cpus: float = 1.0
                        ) -> tuple[Task, StepSampler, PRMScorer | None]:
    """The task, the step sampler (seeded `seeds.worker_seed(settings.seed, worker_index)`) and the PRM scorer
    (None without a PRM checkpoint) that `settings` describe, on `device`; with the vllm backend, their engines'
    threads bound to this worker's `num_cpus` cores."""
    from lm.build import load_policy, load_prm, load_tokenizer
    from lm.prm_scorer import PRMScorer
    from lm.sampler import StepSampler
    from rest_mcts.tasks import get_task

    tokenizer = load_tokenizer(settings.policy_path)
    task = get_task(settings.task, tokenizer)
    if settings.backend == "vllm":
        return task, *vllm_models(settings, task, tokenizer, device, worker_index, num_cpus)
    sampler = StepSampler(
        load_policy(settings.policy_path, device),
        tokenizer,
        delimiter=task.step_delimiter,
        is_final_step=task.is_final_step,
        max_step_tokens=settings.max_step_tokens,
        temperature=settings.temperature,
        device=device,
        seed=worker_seed(settings.seed, worker_index),
        decode=settings.decode,
        kv_store_mb=settings.kv_store_mb,
        greedy_first=settings.greedy_first,
    )
    scorer = None
    if settings.prm_path:
        scorer = PRMScorer(load_prm(settings.prm_path, device), load_tokenizer(settings.prm_path), device,
                           kv_store_mb=settings.kv_store_mb)
    return task, sampler, scorer


def vllm_models(settings: SamplerSettings, task: Task, tokenizer, device: str, worker_index: int, num_cpus: float):
    """The vLLM step sampler and the PRM scorer (`engine.prm`: the project's or vLLM's pooling runner)."""
    from lm.build import load_prm, load_tokenizer
    from lm.prm_scorer import PRMScorer
    from lm.vllm_engine import VLLMPRMScorer, VLLMStepSampler, end_token_ids, start_engine

    options = engine_options(settings, device, worker_index, num_cpus)
    seed = worker_seed(settings.seed, worker_index)
    sampler = VLLMStepSampler(start_engine(settings.policy_path, options, device, seed), tokenizer,
                              task.step_delimiter, task.is_final_step, settings.max_step_tokens, settings.temperature,
                              seed, settings.greedy_first, end_token_ids(settings.policy_path))
    scorer = None
    if settings.prm_path and (settings.engine or EngineConfig()).prm == "vllm":
        scorer = VLLMPRMScorer(start_engine(settings.prm_path, options, device, seed, runner="pooling"),
                               load_tokenizer(settings.prm_path))
    elif settings.prm_path:
        scorer = PRMScorer(load_prm(settings.prm_path, device), load_tokenizer(settings.prm_path), device,
                           kv_store_mb=settings.kv_store_mb)
    return sampler, scorer


def engine_options(settings: SamplerSettings, device: str, worker_index: int, num_cpus: float):
    """How worker `worker_index`'s vLLM engines start (`settings.engine` on `device`, its threads bound to the
    worker's `num_cpus` cores on CPU)."""
    from lm.vllm_engine import EngineOptions, cpu_share

    engine = settings.engine or EngineConfig()
    return EngineOptions(block_size=engine.block_size, kv_cache_gb=engine.kv_cache_gb,
                         gpu_memory_utilization=engine.gpu_memory_utilization,
                         tensor_parallel_size=max(1, engine.tensor_parallel_size),
                         enforce_eager=engine.enforce_eager, max_model_len=engine.max_model_len,
                         dtype=engine.dtype or ("float32" if device == "cpu" else "auto"),
                         cpu_ids=cpu_share(worker_index, num_cpus) if device == "cpu" else "")


def with_verifier(settings: SamplerSettings, config: RunConfig, path: str) -> SamplerSettings:
    """`settings` serving the verifier at `path` (empty: none) with the run's verifier section; with the vllm backend
    and GenRM-CoT, the checks come from a third engine, so each engine's GPU share is a third, not a half."""
    if not path:
        return replace(settings, verifier_path="", verifier=None)
    third_engine = settings.backend == "vllm" and writes_checks(config.verifier)
    return replace(settings, verifier_path=path, verifier=config.verifier,
                   engine=engine_for(config, engines=3) if third_engine else settings.engine)


def writes_checks(verifier: VerifierConfig, kind: str | None = None) -> bool:
    """Whether the verifier generates (GenRM-CoT with at least one check per solution)."""
    return (kind or verifier.kind) == "genrm_cot" and verifier.rationales > 0


def load_verifier(path: str, verifier: VerifierConfig, device: str, seed: int = 0, kind: str | None = None,
                  engine=None):
    """The scorer of the verifier at `path`, as `kind` (default `verifier.kind`) reads it: a `GenerativeVerifier`
    (genrm: direct; genrm_cot: `verifier.rationales` checks; judge: the direct form on any causal LM), a
    `LikelihoodVerifier` (simpo, dpo) or a `ClassifierVerifier` (orm: last step; prm: min over steps).

    `engine` (`lm.vllm_engine.EngineOptions`, the vllm backend): GenRM-CoT's checks are written by a vLLM engine
    over the verifier's checkpoint; its verdicts are still read by one forward pass of the model here."""
    from lm.build import load_policy, load_prm, load_tokenizer
    from lm.prm_scorer import PRMScorer
    from lm.verifier_scorer import ClassifierVerifier, GenerativeVerifier, LikelihoodVerifier

    kind = kind or verifier.kind
    tokenizer = load_tokenizer(path)
    if kind in ("orm", "prm"):
        return ClassifierVerifier(PRMScorer(load_prm(path, device), tokenizer, device), "last" if kind == "orm"
                                  else "min")
    if kind in ("simpo", "dpo"):
        return LikelihoodVerifier(load_policy(path, device), tokenizer, device)
    if kind not in ("genrm", "genrm_cot", "judge"):
        raise ValueError(f"verifier kind {kind!r}: expected genrm, genrm_cot, judge, orm, prm, simpo or dpo")
    writer = None
    if engine is not None and writes_checks(verifier, kind):
        from lm.vllm_engine import VLLMStepSampler, end_token_ids, start_engine

        writer = VLLMStepSampler(start_engine(path, engine, device, seed), tokenizer,
                                 delimiter=verifier.text_format().question, is_final_step=lambda text: True,
                                 max_step_tokens=verifier.max_rationale_tokens, temperature=verifier.temperature,
                                 seed=seed, end_token_ids=end_token_ids(path))
    return GenerativeVerifier(load_policy(path, device), tokenizer, verifier.text_format(),
                              verifier.rationales if kind == "genrm_cot" else 0, verifier.max_rationale_tokens,
                              verifier.temperature, device, seed=seed, writer=writer)
