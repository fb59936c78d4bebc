"""Checkpoint and folder writes that a reader never sees half done: every folder is filled at a temporary path
beside its target and then renamed into place (the old one moved aside and removed after)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def replace_dir(new: Path, target: Path) -> None:
    """Move folder `new` to `target`; an existing `target` is moved aside first and removed after."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
        os.replace(target, old / target.name)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_folder(target: str | os.PathLike, fill: Callable[[Path], None]) -> None:
    """`fill(path)` creates a folder at a temporary path beside `target`, which then replaces `target`; on an
    error nothing of it is left behind."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        fill(staging / target.name)
        replace_dir(staging / target.name, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def save_checkpoint(model, tokenizer, target: str | os.PathLike, state_dict: dict | None = None,
                    config=None) -> None:
    """`save_pretrained` of the model (with `state_dict` if given, and `config` written over the model's own) and
    of the tokenizer into `target`, atomically: the folder loads with plain transformers."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    def fill(path: Path) -> None:
        model.save_pretrained(path, state_dict=state_dict)
        if config is not None:
            config.save_pretrained(path)
        tokenizer.save_pretrained(path)

    write_folder(target, fill)


def copy_checkpoint(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """A copy of checkpoint folder `source` at `target`, atomically."""
    write_folder(target, lambda path: shutil.copytree(source, path))


def classifier_from_policy(policy: str | os.PathLike, target: str | os.PathLike, seed: int) -> Path:
    """A one-label token classifier with the policy's body and a new head (`models.build.prm_from_policy`, head
    seeded by `seed`), saved at `target` unless a checkpoint is there already; returns `target`."""
    from lm.build import load_tokenizer, prm_from_policy

    target = Path(target)
    if not (target / "config.json").exists():
        save_checkpoint(prm_from_policy(policy, seed=seed), load_tokenizer(policy), target)
    return target
