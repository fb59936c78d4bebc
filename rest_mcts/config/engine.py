"""The search workers' inference engine (`search.backend vllm`): the `engine` section of the run configuration."""

from __future__ import annotations

from dataclasses import dataclass

BACKENDS = ("hf", "vllm")
"""`search.backend` values: the project's transformers sampler and scorer with their KV cache, or vLLM."""

MAX_ENGINE_TEMPERATURE = 2.0
"""The hottest sampling vLLM takes (`lm.vllm_engine.MAX_TEMPERATURE`, kept here so the config stays free of torch)."""

ENGINE_PRM = ("hf", "vllm")
"""`engine.prm` values: who scores steps when the backend is vLLM."""


@dataclass(frozen=True)
class EngineConfig:
    """How each search worker's vLLM engine is started when `search.backend` is vllm (read nowhere otherwise)."""

    block_size: int = 32
    """Tokens per KV block. Prefix caching reuses whole blocks only, so blocks no longer than a step keep a node's
    children and siblings on the cached prefix (on CPU a multiple of 32; vLLM's CPU default of 128 gave no hits on
    64-token prefixes)."""
    prm: str = "hf"
    """Who scores steps with the vLLM backend: 'hf' (the project's PRM scorer, which encodes each parent once for
    all its children and keeps tree nodes' KV; the same scores as the hf backend) or 'vllm' (the PRM served by
    vLLM's pooling runner, token_classify)."""
    kv_cache_gb: float = 1.0
    """KV cache per engine on CPU (VLLM_CPU_KVCACHE_SPACE, whole GB)."""
    gpu_memory_utilization: float = 0.0
    """Share of a GPU's memory each engine may take; 0: 0.85 of the worker's GPU share, halved for the PRM beside it
    (served by the project's scorer or as a second engine), and halved again when trainer ranks are colocated on the
    same GPUs."""
    tensor_parallel_size: int = 0
    """GPUs each engine shards its model over; 0: the worker's --cluster.gpus_per_worker (at least 1)."""
    enforce_eager: bool = True
    """No CUDA graphs or torch.compile: the engine starts in 15-26 s instead of about 45 s (2-core CPU); turn it
    off on GPUs for long runs."""
    dtype: str = ""
    """The engine's weights and arithmetic: empty for float32 on CPU (vLLM's own choice there is bfloat16, which
    CPUs without bfloat16 instructions run about 10 times slower: 53 against 566 tokens/s on a 34 M-parameter model
    here) and the checkpoint's own dtype on GPUs; or any dtype vLLM takes (float32, bfloat16, float16)."""
    max_model_len: int = 0
    """Longest prompt plus generated step the engine accepts (0: the model's max_position_embeddings)."""
