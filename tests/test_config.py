"""Run configuration: defaults, YAML overrides, CLI flags over YAML, and errors that name where they come from."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import replace

import pytest

from rest_mcts.config import ConfigError, RunConfig
from rest_mcts.flags import SECTIONS, add_config_arguments, config_from_args, field_docs, load_yaml
from rest_mcts.preflight import validate


def parse(*argv: str) -> RunConfig:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return config_from_args(parser.parse_args(list(argv)))


@pytest.fixture
def write_yaml(tmp_path):
    def write(text: str) -> str:
        path = tmp_path / "run.yaml"
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write


def config_classes() -> list[type]:
    """RunConfig and the dataclass of each of its sections (TrainConfig once, though two sections use it)."""
    defaults = RunConfig()
    sections = {type(getattr(defaults, name)) for name in SECTIONS}
    return [RunConfig, *sorted(sections, key=lambda cls: cls.__name__)]


# Defaults.


def test_defaults_validate():
    validate(RunConfig())


def test_no_flags_and_no_file_give_the_defaults():
    assert parse() == RunConfig()


def test_prm_training_has_its_own_defaults():
    config = RunConfig()
    assert config.prm_train.learning_rate != config.policy_train.learning_rate
    assert config.prm_train.micro_batch_size != config.policy_train.micro_batch_size
    assert config.prm_train.warm_start_steps < config.policy_train.warm_start_steps
    assert replace(config.policy_train, max_steps=0) != replace(config.prm_train, max_steps=0)


# YAML and CLI precedence.


def test_yaml_sections_and_top_level_keys_override_the_defaults(write_yaml):
    path = write_yaml("rounds: 2\ncontrol: true\nsearch: {branch: 5}\ntask:\n  name: last_letter\n")
    config = parse("--config", path)
    assert config.rounds == 2
    assert config.control is True
    assert config.search.branch == 5
    assert config.task.name == "last_letter"
    # Keys the file leaves out keep their defaults.
    assert config.search.max_simulations == RunConfig().search.max_simulations
    assert config.seed == 0


def test_yaml_override_of_one_training_section_leaves_the_other_alone(write_yaml):
    config = parse("--config", write_yaml("prm_train: {zero_stage: 3}\n"))
    assert config.prm_train.zero_stage == 3
    assert config.prm_train.max_steps == RunConfig().prm_train.max_steps
    assert config.policy_train == RunConfig().policy_train


def test_yaml_int_for_a_float_field_becomes_a_float(write_yaml):
    config = parse("--config", write_yaml("search: {exploration_constant: 1}\n"))
    assert config.search.exploration_constant == 1.0
    assert isinstance(config.search.exploration_constant, float)


def test_an_empty_yaml_file_gives_the_defaults(write_yaml):
    assert parse("--config", write_yaml("")) == RunConfig()


def test_cli_flags_override_the_yaml_file(write_yaml):
    path = write_yaml("rounds: 2\nsearch: {branch: 5, max_simulations: 7}\ntask: {name: modchain}\n")
    config = parse("--config", path, "--search.branch", "4", "--rounds", "6", "--task", "last_letter")
    assert config.search.branch == 4
    assert config.rounds == 6
    assert config.task.name == "last_letter"
    # What the flags leave alone still comes from the file.
    assert config.search.max_simulations == 7


def test_cli_values_are_converted_to_the_field_types():
    config = parse("--search.exploration_constant", "0.25", "--cluster.cpus_per_worker", "2", "--seed", "7")
    assert config.search.exploration_constant == 0.25
    assert config.cluster.cpus_per_worker == 2.0 and isinstance(config.cluster.cpus_per_worker, float)
    assert config.seed == 7


def test_short_aliases_set_their_section_fields():
    config = parse("--policy-model", "/ckpt/policy", "--experiment", "ablation", "--run-dir", "/tmp/runs")
    assert config.model.policy_model == "/ckpt/policy"
    assert config.logging.experiment == "ablation"
    assert config.logging.run_dir == "/tmp/runs"


@pytest.mark.parametrize(
    "argv, control",
    [((), False), (("--control",), True), (("--control", "false"), False), (("--control", "true"), True),
     (("--control", "no"), False), (("--control", "1"), True)],
)
def test_bool_flags_accept_the_flag_alone_or_an_explicit_value(argv, control):
    assert parse(*argv).control is control


def test_bool_flag_alone_is_followed_by_other_flags():
    config = parse("--control", "--rounds", "2", "--policy_train.bf16")
    assert config.control is True and config.rounds == 2 and config.policy_train.bf16 is True


def test_cli_bool_flag_rejects_a_word_that_is_not_a_bool():
    with pytest.raises(ConfigError, match="control: expected bool, got 'maybe'"):
        parse("--control", "maybe")


# YAML errors name the file and the key.


@pytest.mark.parametrize(
    "text, key",
    [("roundz: 2\n", "'roundz'"), ("search: {brnch: 5}\n", "search.brnch"), ("serch: {branch: 5}\n", "'serch'")],
)
def test_unknown_yaml_key_names_the_file_and_the_key(write_yaml, text, key):
    path = write_yaml(text)
    with pytest.raises(ConfigError) as error:
        parse("--config", path)
    assert path in str(error.value)
    assert f"unknown key {key}" in str(error.value)


@pytest.mark.parametrize(
    "text, key, expected",
    [
        ('search: {branch: "many"}\n', "search.branch", "int"),
        ("rounds: 1.5\n", "rounds", "int"),
        ("rounds: true\n", "rounds", "int"),
        ("search: {branch: false}\n", "search.branch", "int"),
        ("search: {exploration_constant: true}\n", "search.exploration_constant", "float"),
        ("control: 1\n", "control", "bool"),
        ("logging: {experiment: 5}\n", "logging.experiment", "str"),
    ],
)
def test_wrong_yaml_type_names_the_file_the_key_and_the_expected_type(write_yaml, text, key, expected):
    path = write_yaml(text)
    with pytest.raises(ConfigError) as error:
        parse("--config", path)
    assert str(error.value).startswith(f"{path}: {key}: expected {expected}, got ")


def test_a_yaml_section_that_is_not_a_mapping_is_rejected(write_yaml):
    path = write_yaml("search: 5\n")
    with pytest.raises(ConfigError, match="section 'search' must be a mapping"):
        parse("--config", path)


def test_a_yaml_file_that_is_not_a_mapping_is_rejected(write_yaml):
    path = write_yaml("- rounds\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse("--config", path)


def test_invalid_yaml_syntax_names_the_file_and_line(write_yaml):
    # Line 4 puts a second colon in a plain value: "mapping values are not allowed here".
    path = write_yaml("rounds: 2\nsearch:\n  branch: 5\n  max_simulations: a: b\n")
    with pytest.raises(ConfigError, match="not valid YAML") as error:
        load_yaml(path)
    assert str(error.value).startswith(f"{path}:4: ")


def test_a_missing_config_file_is_named(tmp_path):
    missing = str(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match=f"--config '{missing}': no such file"):
        parse("--config", missing)


# Validation names the flag.


@pytest.mark.parametrize("rounds", ["-1", "-2"])
def test_negative_rounds_name_the_rounds_flag(rounds):
    with pytest.raises(ConfigError, match=f"--rounds {rounds}: expected 0"):
        parse("--rounds", rounds)


def test_negative_rounds_from_yaml_are_rejected_too(write_yaml):
    with pytest.raises(ConfigError, match="--rounds -2"):
        parse("--config", write_yaml("rounds: -2\n"))


def test_zero_rounds_is_the_warm_start_alone(write_yaml):
    assert parse("--config", write_yaml("rounds: 0\n")).rounds == 0


def test_unknown_task_is_rejected_listing_the_known_tasks():
    with pytest.raises(ConfigError, match=r"--task 'gsm9k'.*\['game24', 'gsm8k', 'jsonl', 'last_letter', 'math', "
                                          r"'modchain', 'modtarget', 'word_sort'\]"):
        parse("--task", "gsm9k")


def test_non_positive_search_branch_names_its_flag():
    with pytest.raises(ConfigError, match="search.branch 0: branch must be at least 1"):
        parse("--search.branch", "0")


def test_zero_stage_outside_0_to_3_is_rejected():
    with pytest.raises(ConfigError, match="--prm_train.zero_stage"):
        parse("--prm_train.zero_stage", "4")


@pytest.mark.parametrize("flag, value", [("--values.target", "soft"), ("--search.decode", "beam")])
def test_an_unknown_choice_names_its_flag(flag, value):
    with pytest.raises(ConfigError, match=f"{flag} '{value}'"):
        parse(flag, value)


@pytest.mark.parametrize("flag, value", [("--verifier.data", "steps"), ("--verifier.eval_as", "root")])
def test_an_unknown_verifier_data_or_use_names_its_flag(flag, value):
    with pytest.raises(ConfigError, match=f"{flag} '{value}'"):
        parse(flag, value)


def test_the_verifier_trained_in_the_rounds_is_off_by_default_and_turned_on_by_its_flag():
    assert RunConfig().verifier.train_in_rounds is False
    config = parse("--verifier.train_in_rounds", "true", "--verifier.data", "prefixes", "--verifier.eval_as", "both")
    verifier = config.verifier
    assert (verifier.train_in_rounds, verifier.data, verifier.eval_as) == (True, "prefixes", "both")


@pytest.fixture
def plain_task(monkeypatch):
    """A task with neither true step labels nor written checks, registered as 'plain'."""
    from rest_mcts.tasks import TASKS
    from rest_mcts.tasks.base import Task
    from rest_mcts.tasks.modchain import ModChainTask

    class PlainTask(ModChainTask):
        synthetic = False
        verification_rationale = Task.verification_rationale

    monkeypatch.setitem(TASKS, "plain", PlainTask)
    return "plain"


def test_verifier_prefixes_need_true_step_labels_and_a_kind_that_reads_them(plain_task):
    with pytest.raises(ConfigError, match="--verifier.data prefixes: needs a synthetic task.*--task plain"):
        parse("--task", plain_task, "--verifier.data", "prefixes", "--verifier.kind", "genrm")
    with pytest.raises(ConfigError, match="--verifier.data prefixes: --verifier.kind simpo"):
        parse("--verifier.data", "prefixes", "--verifier.kind", "simpo")
    parse("--verifier.data", "prefixes", "--verifier.kind", "orm")


def test_genrm_cot_in_the_rounds_needs_the_tasks_written_checks(plain_task):
    with pytest.raises(ConfigError, match="--verifier.kind genrm_cot: learns the task's written checks.*--task plain"):
        parse("--task", plain_task, "--verifier.train_in_rounds", "--verifier.kind", "genrm_cot")
    parse("--task", plain_task)  # the default kind is genrm_cot: a run that trains no verifier is not refused
    parse("--task", plain_task, "--verifier.train_in_rounds", "--verifier.kind", "genrm")
    parse("--verifier.train_in_rounds", "--verifier.kind", "genrm_cot")


def test_cli_value_of_the_wrong_type_names_the_flag_and_type():
    with pytest.raises(ConfigError, match="--search.branch: expected int, got 'x'"):
        parse("--search.branch", "x")


# Help texts.


def test_every_config_field_that_becomes_a_flag_has_a_help_text():
    for cls in config_classes():
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            if cls is RunConfig and f.name in SECTIONS:
                continue  # a section is an argument group, not a flag
            assert docs.get(f.name, "").strip(), f"{cls.__name__}.{f.name} has no docstring"


def test_every_flag_has_a_help_text_beyond_its_default():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    flags = [action for action in parser._actions if action.option_strings and action.dest != "help"]
    assert len(flags) > 60
    for action in flags:
        text = (action.help or "").split("(default:")[0].strip()
        assert text, f"{action.option_strings} has no help text"


def test_every_field_of_every_section_has_its_own_flag():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    options = {option for action in parser._actions for option in action.option_strings}
    defaults = RunConfig()
    for section in SECTIONS:
        for f in dataclasses.fields(getattr(defaults, section)):
            assert f"--{section}.{f.name}" in options


@pytest.mark.parametrize("args, message", [
    (["--model.hidden_size", "130"], "--model.hidden_size 130: expected a multiple of --model.num_heads (4)"),
    (["--model.num_layers", "0"], "--model.num_layers 0: expected a positive integer"),
    (["--model.max_positions", "-1"], "--model.max_positions -1: expected a positive integer"),
    (["--task.problems_per_round", "100000"], "--task.problems_per_round 100000: expected at most the 2950"),
    (["--task.train_problems", "500", "--eval.dev_problems", "200"], "--task.problems_per_round 384: expected at "
                                                                        "most the 300 training problems"),
    (["--logging.wandb_mode", "nonsense"], "--logging.wandb_mode 'nonsense': expected online, offline or disabled"),
    (["--task.ood_problems", "-1"], "--task.ood_problems -1: expected 0 or more"),
    (["--task.curriculum_start", "-2"], "--task.curriculum_start -2 --task.curriculum_step 1: expected a start of -1"),
    (["--task.curriculum_step", "0"], "--task.curriculum_start -1 --task.curriculum_step 0: expected a start of -1"),
])
def test_values_no_run_can_use_are_refused_naming_the_flag(args, message):
    with pytest.raises(ConfigError) as error:
        parse(*args)
    assert message in str(error.value)


def test_a_users_model_is_not_held_to_the_embedded_shapes():
    config = parse("--model.hidden_size", "130", "--policy-model", "some/checkpoint")
    assert config.model.hidden_size == 130


def test_the_step_check_and_the_tasks_own_curriculum_are_on_by_default_and_flags_change_them():
    defaults = RunConfig()
    assert defaults.search.step_check is True
    assert (defaults.task.curriculum_start, defaults.task.curriculum_step) == (-1, 1)
    config = parse("--search.step_check", "false", "--task.curriculum_start", "0", "--task.curriculum_step", "2")
    assert config.search.step_check is False
    assert (config.task.curriculum_start, config.task.curriculum_step) == (0, 2)


@pytest.mark.parametrize("cli", ["iterate", "evaluate", "export"])
def test_every_cli_help_renders_with_every_flag(cli):
    """argparse expands %-formats in help texts, so a docstring with a percentage must not break --help."""
    import importlib

    text = importlib.import_module(f"rest_mcts.{cli}").build_parser().format_help()
    assert "--help" in text
    docs = [doc for cls in config_classes() for doc in field_docs(cls).values()]
    if cli != "export" and any("%" in doc for doc in docs):
        assert "%" in text


def test_the_configuration_reference_page_is_the_one_the_dataclasses_give():
    """docs/configuration-reference.md is generated (`python -m rest_mcts.config_reference --write`): a field added,
    renamed or re-documented without regenerating it fails here."""
    from rest_mcts.config_reference import PAGE, reference

    assert PAGE.read_text() == reference(), "regenerate: python -m rest_mcts.config_reference --write"
