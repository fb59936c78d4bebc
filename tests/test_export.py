"""`rest_mcts.export`: value examples grouped into TRL stepwise-supervision rows, policy traces as SFT rows, the
PRM rows read by TRL's own PRM tokenizer where this TRL still has one, and the CLI on a small fake run folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from lm.data import PolicyExample, ValueExample, write_jsonl
from rest_mcts.export import META_FILE, POLICY_FILE, PRM_FILE, main, sft_rows, stepwise_rows

REPO = Path(__file__).resolve().parents[1]
PROMPT = "1?3?1?1?3?6=9\n"
STEPS = ("1?3=483+;4?1?1?3?6=9\n", "4?1=534+;5?1?3?6=9\n", "5?1=645*;5?3?6=9\n")


def value(steps, target, problem_id="train-00000", prompt=PROMPT) -> ValueExample:
    return ValueExample(problem_id, prompt, tuple(steps), target)


# -- stepwise rows ----------------------------------------------------------------------------------


def test_prefixes_of_one_solution_become_one_row_with_a_label_per_step_in_step_order():
    examples = [value(STEPS[:2], 0.5), value(STEPS, 0.75), value(STEPS[:1], 0.25)]

    assert stepwise_rows(examples) == [{"prompt": PROMPT,
                                        "completions": [step.removesuffix("\n") for step in STEPS],
                                        "labels": [0.25, 0.5, 0.75]}]


def test_branching_solutions_give_one_row_per_branch_and_repeat_the_shared_prefix_label():
    other = "4?1=534*;4?1?3?6=9\n"
    examples = [value(STEPS[:1], 0.5), value(STEPS[:2], 1.0), value((STEPS[0], other), 0.0)]

    rows = stepwise_rows(examples)

    assert [row["completions"] for row in rows] == [[STEPS[0][:-1], STEPS[1][:-1]], [STEPS[0][:-1], other[:-1]]]
    assert [row["labels"] for row in rows] == [[0.5, 1.0], [0.5, 0.0]]


def test_float_labels_are_kept_exactly_through_the_jsonl_file(tmp_path):
    targets = [1 / 3, 0.1 + 0.2, 2 / 7]
    examples = [value(STEPS[:length], target) for length, target in zip((1, 2, 3), targets)]
    write_jsonl(tmp_path / "prm.jsonl", stepwise_rows(examples))

    row = json.loads((tmp_path / "prm.jsonl").read_text())
    assert row["labels"] == targets and all(isinstance(label, float) for label in row["labels"])


def test_a_step_whose_prefix_has_no_example_is_labelled_null_and_duplicates_take_their_mean():
    examples = [value(STEPS, 0.0), value(STEPS[:2], 0.2), value(STEPS[:2], 0.4), value((), 1.0)]

    assert stepwise_rows(examples)[0]["labels"] == [None, pytest.approx(0.3), 0.0]
    assert stepwise_rows([value(STEPS[:1], 0.1)] * 3)[0]["labels"] == [0.1]  # agreeing duplicates: exact


def test_rows_never_mix_problems_or_prompts():
    examples = [value(STEPS[:1], 0.5), value(STEPS[:2], 1.0, problem_id="train-00001"),
                value(STEPS[:2], 1.0, prompt="other\n")]

    assert [len(row["completions"]) for row in stepwise_rows(examples)] == [1, 2, 2]


def test_only_one_trailing_delimiter_is_removed_and_a_step_ended_at_eos_is_kept_whole():
    rows = stepwise_rows([value(("a|", "b||", "c"), 1.0)], step_delimiter="|")

    assert rows[0]["completions"] == ["a", "b|", "c"]


# -- SFT rows ---------------------------------------------------------------------------------------


def test_sft_rows_hold_the_question_as_user_turn_and_the_joined_steps_as_assistant_turn():
    examples = [PolicyExample("train-00000", PROMPT, STEPS), PolicyExample("train-00007", "q\n", ("9",))]

    rows = sft_rows(examples, {"train-00000": "1?3?1?1?3?6=9"})

    assert rows == [
        {"messages": [{"role": "user", "content": "1?3?1?1?3?6=9"}, {"role": "assistant", "content": "".join(STEPS)}]},
        {"messages": [{"role": "user", "content": "q\n"}, {"role": "assistant", "content": "9"}]},  # no question
    ]


def test_prompt_completion_rows_are_the_exact_training_text():
    rows = sft_rows([PolicyExample("train-00000", PROMPT, STEPS)], format="prompt-completion")

    assert rows == [{"prompt": PROMPT, "completion": "".join(STEPS)}]
    with pytest.raises(ValueError, match="unknown SFT format"):
        sft_rows([], format="alpaca")


# -- the formats as other tools read them -----------------------------------------------------------


def test_prm_rows_have_the_stepwise_supervision_fields_and_rebuild_the_trained_text(tmp_path):
    # Runs without TRL: the format TRL documents (prompt str, completions list of str, labels one per step).
    examples = [value(STEPS, 1.0), value(STEPS[:2], 0.5), value((STEPS[0], "9"), 0.0), value(STEPS[:1], 0.25)]
    write_jsonl(tmp_path / PRM_FILE, stepwise_rows(examples, "\n"))

    rows = [json.loads(line) for line in (tmp_path / PRM_FILE).read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert set(row) == {"prompt", "completions", "labels"}
        assert isinstance(row["prompt"], str)
        assert isinstance(row["completions"], list) and all(isinstance(c, str) for c in row["completions"])
        assert isinstance(row["labels"], list) and len(row["labels"]) == len(row["completions"])
        assert all(isinstance(label, float) and 0.0 <= label <= 1.0 for label in row["labels"])
    # TRL's text: the prompt, then each completion followed by the separator (the delimiter the meta records)
    assert rows[0]["prompt"] + "".join(c + "\n" for c in rows[0]["completions"]) == PROMPT + "".join(STEPS)
    assert rows[1]["completions"] == [STEPS[0][:-1], "9"]  # ended at EOS: TRL will add a separator there


def _trl_prm_trainer():
    """TRL's PRMTrainer: trl.experimental.prm (TRL 0.26 to 1.13), or trl itself in older releases. TRL removed it
    after 1.13 (huggingface/trl#7133), taking the stepwise-supervision type with it, so on newer TRL this skips."""
    pytest.importorskip("trl")
    try:
        with warnings.catch_warnings():  # "trl.experimental is unstable"
            warnings.simplefilter("ignore")
            from trl.experimental.prm import PRMTrainer
    except ImportError:
        try:
            from trl import PRMTrainer
        except ImportError:
            pytest.skip("this TRL has no PRMTrainer (removed after TRL 1.13)")
    return PRMTrainer


def test_trl_prm_tokenizer_puts_each_label_on_the_separator_after_its_step(tmp_path):
    PRMTrainer = _trl_prm_trainer()
    datasets = pytest.importorskip("datasets")
    from lm.encoding import encode_steps
    from lm.tokenizer import build_char_tokenizer

    tokenizer = build_char_tokenizer()
    write_jsonl(tmp_path / PRM_FILE, stepwise_rows([value(STEPS, 1.0), value(STEPS[:2], 0.5),
                                                    value(STEPS[:1], 0.0)], "\n"))
    row = datasets.load_dataset("json", data_files=str(tmp_path / PRM_FILE), split="train")[0]

    tokenized = PRMTrainer.tokenize_row(row, tokenizer, step_separator="\n", max_length=None,
                                        max_completion_length=None, train_on_last_step_only=False, is_eval=False)

    ours = encode_steps(tokenizer, PROMPT, STEPS)  # what trainers/prm.py trains on
    assert tokenized["input_ids"] == ours.input_ids
    labelled = [position for position, label in enumerate(tokenized["labels"]) if label != -100]
    assert labelled == ours.step_end_positions
    assert all(tokenized["input_ids"][position] == tokenizer.convert_tokens_to_ids("\n") for position in labelled)
    # TRL's PRM is a classifier: it casts each label with int(), so soft targets must be thresholded first
    assert [tokenized["labels"][position] for position in labelled] == [0, 0, 1]


def test_datasets_loads_the_prm_export_with_float_and_null_labels_intact(tmp_path):
    datasets = pytest.importorskip("datasets")
    write_jsonl(tmp_path / PRM_FILE, stepwise_rows([value(STEPS, 1 / 3), value(STEPS[:1], 0.1 + 0.2)]))

    row = datasets.load_dataset("json", data_files=str(tmp_path / PRM_FILE), split="train")[0]

    assert row["labels"] == [0.1 + 0.2, None, 1 / 3]
    assert row["completions"] == [step[:-1] for step in STEPS]


def test_trl_reads_messages_rows_as_conversational_and_prompt_completion_rows_as_standard():
    data_utils = pytest.importorskip("trl.data_utils")
    example = PolicyExample("train-00000", PROMPT, STEPS)

    assert data_utils.is_conversational(sft_rows([example])[0])
    assert not data_utils.is_conversational(sft_rows([example], format="prompt-completion")[0])


# -- the command line -------------------------------------------------------------------------------


def fake_run(root: Path) -> Path:
    """A run folder as iterate leaves it: config.yaml; round 0 finished with both example files; round 1 finished
    with policy examples only (a ReST-EM round); round 2 unfinished."""
    from rest_mcts.config import RunConfig, TaskConfig
    from rest_mcts.flags import save_yaml
    from rest_mcts.tasks import get_task

    config = RunConfig(task=TaskConfig(seed_problems=6, train_problems=4, test_problems=3, ood_problems=3))
    run = root / "run"
    run.mkdir()
    (run / "config.yaml").write_text(save_yaml(config))
    task = get_task(config.task.name)
    problem = task.problems("train", 4, config.task.data_seed)[1]
    prompt, steps = task.format_prompt(problem), tuple(task.reference_steps(problem))
    values = [ValueExample(problem.id, prompt, steps[:length], length / 7) for length in range(1, 4)]
    policy = [PolicyExample(problem.id, prompt, steps), PolicyExample("train-09999", "lost\n", ("9",))]
    for index, files in enumerate(({"value_examples.jsonl": values, "policy_examples.jsonl": policy},
                                   {"policy_examples.jsonl": policy[:1]}, {"value_examples.jsonl": values})):
        folder = run / f"round_{index:02d}"
        folder.mkdir()
        for name, items in files.items():
            write_jsonl(folder / name, items)
        if index < 2:
            (folder / "DONE").write_text("done\n")
    return run


def test_the_cli_exports_the_last_finished_round_holding_the_files(tmp_path):
    run = fake_run(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "rest_mcts.export", "--run", str(run), "--out", "out"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr

    out = tmp_path / "out"
    meta = json.loads((out / META_FILE).read_text())
    assert meta["round"] == 0 and meta["step_separator"] == "\n"  # round 1 lacks value examples
    assert meta["prm"]["rows"] == 1 and meta["prm"]["steps"] == 3 and meta["prm"]["unlabelled_steps"] == 0
    assert meta["policy"] == {"format": "messages", "rows": 2, "questions_from_prompt": 1}
    assert meta["source_files"]["prm"] == str((run / "round_00" / "value_examples.jsonl").resolve())
    prm_row = json.loads((out / PRM_FILE).read_text())
    assert prm_row["labels"] == [1 / 7, 2 / 7, 3 / 7]
    sft = [json.loads(line) for line in (out / POLICY_FILE).read_text().splitlines()]
    assert sft[0]["messages"][0]["content"] + "\n" == prm_row["prompt"]  # the question, without the prompt's "\n"
    assert sft[1]["messages"][0]["content"] == "lost\n"  # unknown problem: the prompt text


def test_the_cli_picks_a_round_by_what_it_exports_and_writes_prompt_completion_rows(tmp_path):
    run = fake_run(tmp_path)

    assert main(["--run", str(run), "--out", str(tmp_path / "out"), "--what", "policy",
                 "--format", "prompt-completion"]) == 0

    meta = json.loads((tmp_path / "out" / META_FILE).read_text())
    assert meta["round"] == 1 and meta["files"] == {"policy": POLICY_FILE} and "prm" not in meta
    assert not (tmp_path / "out" / PRM_FILE).exists()
    row = json.loads((tmp_path / "out" / POLICY_FILE).read_text())
    assert set(row) == {"prompt", "completion"} and row["prompt"].endswith("\n")


@pytest.mark.parametrize("case", ["no run folder", "no config", "round lacks a file", "no finished round",
                                  "target out of range"])
def test_bad_input_exits_2_naming_the_path_and_writes_nothing(tmp_path, capsys, case):
    run = fake_run(tmp_path)
    args = ["--run", str(run)]
    if case == "no run folder":
        args, named = ["--run", str(tmp_path / "absent")], str(tmp_path / "absent")
    elif case == "no config":
        (run / "config.yaml").unlink()
        named = str(run / "config.yaml")
    elif case == "round lacks a file":
        args, named = args + ["--round", "1"], str(run / "round_01" / "value_examples.jsonl")
    elif case == "no finished round":
        for done in run.glob("round_*/DONE"):
            done.unlink()
        named = str(run / "round_NN" / "value_examples.jsonl")
    else:
        (run / "round_00" / "value_examples.jsonl").write_text(json.dumps(
            {"problem_id": "p", "prompt": "q\n", "steps": ["1\n"], "target": 1.5}) + "\n")
        named = f"{run / 'round_00' / 'value_examples.jsonl'}:1"

    with pytest.raises(SystemExit) as exit_info:
        main(args + ["--out", str(tmp_path / "out")])

    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
