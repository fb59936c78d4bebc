"""The configuration reference (docs/configuration-reference.md), generated from the dataclasses: every field of every
section with its flag, type, default and docstring, so that the page cannot drift from the code (a test compares
the file with what this writes).

Command line: python -m rest_mcts.config_reference [--write]   (prints the page, or writes it in place)
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from lm.data import atomic_write_text
from rest_mcts.config import RunConfig
from rest_mcts.flags import ALIASES, SECTIONS, field_docs, field_type

PAGE = Path(__file__).resolve().parents[1] / "docs" / "configuration-reference.md"
"""Where `--write` puts the page."""


def _type_name(cls: type, name: str) -> str:
    hint = field_type(cls, name)
    return getattr(hint, "__name__", str(hint))


def _cell(text: str) -> str:
    """A docstring as one table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _rows(instance, prefix: str) -> list[str]:
    cls, docs = type(instance), field_docs(type(instance))
    rows = []
    for f in fields(cls):
        if prefix == "" and f.name in SECTIONS:
            continue
        default = getattr(instance, f.name)
        shown = "(empty)" if default == "" else f"`{default!r}`" if isinstance(default, str) else f"`{default}`"
        rows.append(f"| `--{prefix}{f.name}` | {_type_name(cls, f.name)} | {shown} | {_cell(docs.get(f.name, ''))} |")
    return rows


def reference() -> str:
    """The whole page, as Markdown."""
    config = RunConfig()
    aliases = ", ".join(f"`--{alias}` ({dotted})" for alias, dotted in ALIASES.items())
    lines = [
        "# Configuration reference",
        "",
        "Every field of the run configuration (`rest_mcts/config/sections.py`): its flag, type, default and meaning.",
        "Generated from the dataclasses by `python -m rest_mcts.config_reference --write`; a test fails when this page",
        "and the code differ. A YAML file (`--config run.yaml`) sets the same fields as nested keys (`search:",
        "{branch: 4}`); defaults < YAML < flags. How the sections are built and the checks they pass:",
        "[configuration.md](configuration.md).",
        "",
        f"Short flags: {aliases}.",
        "",
        "## Top level",
        "",
        "| flag | type | default | meaning |",
        "|---|---|---|---|",
        *_rows(config, ""),
    ]
    for section in [f.name for f in fields(RunConfig) if f.name in SECTIONS]:
        instance = getattr(config, section)
        lines += ["", f"## {section}", "", f"`{type(instance).__name__}`.", "", "| flag | type | default | meaning |",
                  "|---|---|---|---|", *_rows(instance, f"{section}.")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rest_mcts.config_reference", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"Write the page to {PAGE} instead of printing it.")
    args = parser.parse_args(argv)
    text = reference()
    if args.write:
        atomic_write_text(PAGE, text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
