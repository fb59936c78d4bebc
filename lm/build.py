"""Build the tiny Llama-style policy and PRM from a config, and load any local checkpoint with plain transformers.

Loading never touches the hub (`local_files_only=True`); a path that does not hold the expected model
raises `ModelPathError` naming the path and what was expected.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForTokenClassification,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForTokenClassification,
    PreTrainedModel,
)
from transformers.modeling_layers import GenericForTokenClassification
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES,
)

PRM_LABEL = "step_value"
"""Name of the PRM's single output (a logit; sigmoid gives the step value in [0, 1])."""

_REGISTERED_CLASSIFIERS: set[str] = set()
"""Token classifiers this module made for model types transformers has none of (`ensure_token_classifier`)."""


def ensure_token_classifier(path: str | os.PathLike) -> None:
    """Make `AutoModelForTokenClassification` load the model type saved at `path` even where transformers has no
    token classifier of it (Gemma 3, say): the class made is transformers' own `GenericForTokenClassification`
    (the model's body and a linear `score` head, as Llama's and Qwen's token classifiers are) over the type's
    pretrained base class, registered for this process. Does nothing for types transformers covers or paths
    without a readable config (their loading reports that)."""
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError):
        return
    config_class = type(config)
    if config_class in AutoModelForTokenClassification._model_mapping:
        return
    try:
        body = AutoModel._model_mapping[config_class]
    except KeyError:
        return
    base = next(c for c in body.__mro__[1:] if issubclass(c, PreTrainedModel) and c is not PreTrainedModel)
    name = body.__name__.removesuffix("Model") + "ForTokenClassification"
    classifier = type(name, (GenericForTokenClassification, base), {"config_class": config_class,
                                                                   "__module__": __name__})
    AutoModelForTokenClassification.register(config_class, classifier, exist_ok=True)
    _REGISTERED_CLASSIFIERS.add(name)


class ModelPathError(ValueError):
    """A local path does not hold the model or tokenizer that was asked for."""


def pick_device() -> str:
    """"cuda" when a GPU is visible, else "cpu"."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(device: str | torch.device) -> torch.dtype:
    """bfloat16 on a CUDA device that supports it, float32 otherwise."""
    if torch.device(device).type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _tiny_llama_config(
    tokenizer,
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    intermediate_size: int,
    max_positions: int,
    **extra,
) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        **extra,
    )


def _seeded_init(model_class, config: LlamaConfig, seed: int) -> PreTrainedModel:
    """Initialise `model_class(config)` from `seed` without disturbing the global torch RNG; eval mode, like
    `from_pretrained` (trainers call `.train()`)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model_class(config).eval()


def build_tiny_policy(
    tokenizer,
    hidden_size: int = 128,
    num_layers: int = 4,
    num_heads: int = 4,
    intermediate_size: int = 512,
    max_positions: int = 512,
    seed: int = 0,
) -> LlamaForCausalLM:
    """A freshly initialised Llama causal LM over `tokenizer`'s vocabulary (about 1 M parameters by default)."""
    config = _tiny_llama_config(tokenizer, hidden_size, num_layers, num_heads, intermediate_size, max_positions)
    return _seeded_init(LlamaForCausalLM, config, seed)


def build_tiny_prm(
    tokenizer,
    hidden_size: int = 128,
    num_layers: int = 4,
    num_heads: int = 4,
    intermediate_size: int = 512,
    max_positions: int = 512,
    seed: int = 0,
) -> LlamaForTokenClassification:
    """A freshly initialised Llama token classifier with one output per token (the PRM logit)."""
    config = _tiny_llama_config(
        tokenizer,
        hidden_size,
        num_layers,
        num_heads,
        intermediate_size,
        max_positions,
        num_labels=1,
        id2label={0: PRM_LABEL},
        label2id={PRM_LABEL: 0},
    )
    return _seeded_init(LlamaForTokenClassification, config, seed)


def _read_config(path: Path, expected: str) -> dict:
    if not path.exists():
        raise ModelPathError(f"{path}: no such path; expected a directory holding {expected}")
    config_file = path / "config.json"
    if not path.is_dir() or not config_file.is_file():
        raise ModelPathError(
            f"{path}: not a directory with a config.json; expected {expected} saved with save_pretrained")
    try:
        return json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ModelPathError(f"{path}/config.json is unreadable ({error}); expected {expected}") from error


def _class_names(mapping: dict) -> set[str]:
    names = set()
    for value in mapping.values():
        names.update(value if isinstance(value, (list, tuple)) else [value])
    return names


def _load_model(path, auto_class, mapping: dict, expected: str, device, dtype) -> PreTrainedModel:
    path = Path(path)
    config = _read_config(path, expected)
    architectures = config.get("architectures") or []
    known = _class_names(mapping) | (_REGISTERED_CLASSIFIERS if auto_class is AutoModelForTokenClassification
                                     else set())
    if architectures and not set(architectures) & known:
        raise ModelPathError(f"{path} holds {', '.join(architectures)}; expected {expected}")
    try:
        model, loading_info = auto_class.from_pretrained(
            path,
            local_files_only=True,
            dtype=dtype if dtype is not None else pick_dtype(device),
            output_loading_info=True,
        )
    except Exception as error:  # any loading failure (missing weights file, corrupt safetensors, bad config)
        raise ModelPathError(f"{path} does not load as {expected}: {error}") from error
    # Weights the checkpoint lacks (or holds in another shape) would be initialised at random.
    missing = (sorted(loading_info.get("missing_keys") or [])
               + sorted(map(str, loading_info.get("mismatched_keys") or [])))
    if missing:
        raise ModelPathError(f"{path} lacks weights {missing[:5]} of {expected}")
    return model.to(device).eval()


def load_policy(path: str | os.PathLike, device: str = "cpu", dtype: torch.dtype | None = None) -> PreTrainedModel:
    """Load a causal LM saved with `save_pretrained` at local `path`, in eval mode on `device`.

    `dtype` defaults to `pick_dtype(device)`. Raises `ModelPathError` when `path` does not hold one.
    """
    return _load_model(
        path, AutoModelForCausalLM, MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, "a causal LM (policy)", device, dtype
    )


def load_prm(path: str | os.PathLike, device: str = "cpu", dtype: torch.dtype | None = None) -> PreTrainedModel:
    """Load a one-label token-classification model (the PRM) saved at local `path`, in eval mode on `device`.

    Raises `ModelPathError` when `path` does not hold a token classifier, or one with other than one label.
    """
    expected = "a token-classification model with num_labels=1 (PRM)"
    ensure_token_classifier(path)
    model = _load_model(
        path, AutoModelForTokenClassification, MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES, expected, device, dtype
    )
    if model.config.num_labels != 1:
        raise ModelPathError(f"{path} has num_labels={model.config.num_labels}; expected {expected}")
    return model


def load_tokenizer(path: str | os.PathLike):
    """Load the tokenizer saved with `save_pretrained` at local `path`; raises `ModelPathError` otherwise."""
    path = Path(path)
    if not path.exists():
        raise ModelPathError(f"{path}: no such path; expected a directory holding a tokenizer")
    if not path.is_dir() or not any((path / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")):
        raise ModelPathError(f"{path}: no tokenizer.json or tokenizer_config.json; expected a saved tokenizer")
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as error:
        raise ModelPathError(f"{path} does not load as a tokenizer: {error}") from error


def prm_from_policy(policy_path: str | os.PathLike, seed: int = 0) -> PreTrainedModel:
    """A PRM whose transformer body is the policy's at `policy_path` and whose one-output head is new.

    Starting the PRM from the warm-started policy gives it the task's representations at once
    (the usual initialisation of PRMs from the SFT model).
    """
    load_policy(policy_path)  # the same clear error for a path that is not a policy
    ensure_token_classifier(policy_path)
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = AutoModelForTokenClassification.from_pretrained(
            policy_path, local_files_only=True, dtype=torch.float32, num_labels=1,
            id2label={0: PRM_LABEL}, label2id={PRM_LABEL: 0},
        )
    finally:
        torch.random.set_rng_state(torch_state)
    return model.eval()
