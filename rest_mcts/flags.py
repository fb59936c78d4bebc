"""YAML files and command-line flags into the run configuration (`rest_mcts.config`): one flag per field
(`--section.key`), its docstring as help text, values checked against the field's type, and errors that name the
file, line, key or flag."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import typing
from dataclasses import fields, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from rest_mcts.config import ConfigError, RunConfig
from rest_mcts.preflight import validate
from rest_mcts.problems import resolve_split_sizes

SECTIONS = {f.name for f in fields(RunConfig) if dataclasses.is_dataclass(getattr(RunConfig(), f.name))}


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass and of the dataclasses it extends (cleanrl's `Args` habit),
    read from their source; a subclass's docstring of a field wins."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, following in zip(body, body[1:]):
            if isinstance(node, ast.AnnAssign) and isinstance(following, ast.Expr):
                if isinstance(following.value, ast.Constant) and isinstance(following.value.value, str):
                    docs[node.target.id] = following.value.value.strip()  # type: ignore[union-attr]
    return docs


def field_type(cls: type, name: str) -> Any:
    """The resolved type of field `name` of dataclass `cls`."""
    return typing.get_type_hints(cls)[name]


def coerce(value: Any, expected: Any, where: str) -> Any:
    """Check (and for CLI strings, convert) one value against a field type."""
    if expected is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
    elif expected in (int, float) and not isinstance(value, bool):
        # An int is a valid float; a float is not a valid int. Strings (CLI values) are converted.
        if isinstance(value, expected) or (expected is float and isinstance(value, int)):
            return expected(value)
        if isinstance(value, str):
            try:
                return expected(value)
            except ValueError:
                pass
    elif expected is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{where}: expected {getattr(expected, '__name__', expected)}, got {value!r}")


def apply_overrides(config: RunConfig, overrides: dict[str, Any], source: str) -> RunConfig:
    """Return `config` with nested `overrides` ({section: {key: value}} or {key: value}) applied."""
    if not isinstance(overrides, dict):
        raise ConfigError(f"{source}: expected a mapping of sections and keys, got {type(overrides).__name__}")
    top = {}
    for key, value in overrides.items():
        if key in SECTIONS:
            section = getattr(config, key)
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: section {key!r} must be a mapping, got {value!r}")
            changes = {}
            for sub_key, sub_value in value.items():
                names = {f.name for f in fields(section)}
                if sub_key not in names:
                    raise ConfigError(f"{source}: unknown key {key}.{sub_key}; known keys: {sorted(names)}")
                changes[sub_key] = coerce(sub_value, field_type(type(section), sub_key),
                                          _where(source, f"{key}.{sub_key}"))
            try:
                top[key] = replace(section, **changes)
            except ValueError as error:  # a section's own checks (e.g. MCTSParams.__post_init__)
                given = ", ".join(f"{_where(source, f'{key}.{name}')} {value!r}" for name, value in changes.items())
                raise ConfigError(f"{given}: {error}") from None
        else:
            names = {f.name for f in fields(RunConfig)} - SECTIONS
            if key not in names:
                raise ConfigError(f"{source}: unknown key {key!r}; known keys: {sorted(names | SECTIONS)}")
            top[key] = coerce(value, field_type(RunConfig, key), _where(source, key))
    return replace(config, **top)


COMMAND_LINE = "command line"
"""`apply_overrides`'s source for flags: its errors name the flag itself."""


def _where(source: str, dotted: str) -> str:
    return f"--{dotted}" if source == COMMAND_LINE else f"{source}: {dotted}"


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML would keep the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str) -> dict:
    """Read a YAML config file; errors name the file (and line, for syntax errors and repeated keys)."""
    file = Path(path)
    if not path or not file.exists():
        raise ConfigError(f"--config {path!r}: no such file; expected a YAML file of config sections")
    if not file.is_file():
        raise ConfigError(f"--config {path}: a folder; expected a YAML file of config sections")
    try:
        data = yaml.load(file.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 (a safe loader)
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 (byte {error.start}); expected a UTF-8 YAML file") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(error, 'problem', error)})") from None
    return data or {}


def read_saved_config(path: str | Path) -> RunConfig:
    """A run's saved config.yaml over the defaults, as the run itself was configured (not validated)."""
    return apply_overrides(RunConfig(), load_yaml(str(path)), str(path))


def to_dict(config: RunConfig) -> dict:
    return dataclasses.asdict(config)


ALIASES = {
    "task": "task.name",
    "policy-model": "model.policy_model",
    "prm-model": "model.prm_model",
    "ray-address": "cluster.ray_address",
    "experiment": "logging.experiment",
    "run-dir": "logging.run_dir",
}
"""Short flags for the settings users change most."""


def add_config_arguments(parser: argparse.ArgumentParser, top_level: bool = True) -> None:
    """One flag per field (`--section.key`), each with its docstring as help, plus the short aliases; with
    `top_level`, also the run's own fields (`--rounds`, `--seed`, ...)."""
    parser.add_argument("--config", default=None, help="YAML file with config sections (flags override it).")
    for f in fields(RunConfig):
        if f.name in SECTIONS or not top_level:
            continue
        _add_flag(parser, f"--{f.name}", f.name, RunConfig(), f.name)
    for alias, dotted in ALIASES.items():
        section, key = dotted.split(".")
        _add_flag(parser, f"--{alias}", dotted, getattr(RunConfig(), section), key)
    for section in sorted(SECTIONS):
        defaults = getattr(RunConfig(), section)
        group = parser.add_argument_group(section)
        for f in fields(defaults):
            _add_flag(group, f"--{section}.{f.name}", f"{section}.{f.name}", defaults, f.name)


def _add_flag(parser, flag: str, dest: str, defaults: Any, name: str) -> None:
    expected = field_type(type(defaults), name)
    default = getattr(defaults, name)
    shown = default if expected is bool else repr(default)
    # argparse expands %-formats in help texts: a docstring's "9.6% of" would break --help.
    help_text = f"{field_docs(type(defaults)).get(name, '')} (default: {shown})".replace("%", "%%")
    if expected is bool:
        parser.add_argument(flag, dest=dest, nargs="?", const="true", default=None, metavar="BOOL", help=help_text)
    else:
        parser.add_argument(flag, dest=dest, default=None, metavar=getattr(expected, "__name__", "VALUE").upper(),
                            help=help_text)


def config_from_args(args: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
    """`base` (default: the defaults, with a data task's split sizes that no file or flag gives taken from its data:
    `problems.resolve_split_sizes`), then the YAML file, then the flags that were given; validated."""
    config = base if base is not None else RunConfig()
    given: set[str] = set()
    if getattr(args, "config", None) is not None:
        overrides = load_yaml(args.config)
        config = apply_overrides(config, overrides, args.config)
        given |= {f"{section}.{key}" for section, keys in overrides.items() if isinstance(keys, dict) for key in keys}
    top_level = {f.name for f in fields(RunConfig)} - SECTIONS
    nested: dict[str, Any] = {}
    for dest, value in vars(args).items():
        if value is None or dest == "config" or not (dest in top_level or "." in dest):
            continue
        if "." in dest:
            section, key = dest.split(".")
            nested.setdefault(section, {})[key] = value
        else:
            nested[dest] = value
    config = apply_overrides(config, nested, COMMAND_LINE)
    given |= {f"{section}.{key}" for section, keys in nested.items() if isinstance(keys, dict) for key in keys}
    if base is None:
        config = resolve_split_sizes(config, given)
    validate(config)
    return config


def save_yaml(config: RunConfig) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)
