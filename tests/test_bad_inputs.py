"""Bad input to `python -m rest_mcts.iterate`: each case gets one `error:` line that names the flag, file, line or
field and what was expected, and nothing else on stderr (no progress bar, warning or log line before it), exit code
2, and leaves nothing behind (no run folder, no other new file). The cases are the table of docs/bad-inputs.md,
whose rows name these ids (checked below), run in this process and, for what only a fresh process shows (a library's
first warning, its progress bars, its log handlers), as the CLI in a process of its own. Data files as users write
them (a byte-order mark, CRLF line ends, no split sizes) are the table's accepted inputs, which reach the run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections import namedtuple
from pathlib import Path

import pytest

from rest_mcts import iterate

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--task.seed_problems", "20", "--task.train_problems", "30", "--task.problems_per_round", "4",
         "--task.test_problems", "4", "--eval.dev_problems", "4"]
"""Sizes a 40-line data file holds."""


def rows(count: int = 40) -> list[str]:
    return [json.dumps({"question": f"What is {i} plus {i}?", "answer": str(2 * i)}) for i in range(count)]


def jsonl(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


DATA_FILES = {
    "malformed.jsonl": jsonl(*rows(2), '{"question": "What is 1 plus 1?", "answer": ', *rows(3)),
    "empty.jsonl": b"",
    "latin1.jsonl": jsonl(*rows(3)) + '{"question": "Caf\xe9 prices?", "answer": "3"}\n'.encode("latin-1"),
    "list_answer.jsonl": jsonl(*rows(4), json.dumps({"question": "Sum?", "answer": [1, 2]})),
    "no_question.jsonl": jsonl(*rows(2), json.dumps({"prompt": "Sum?", "answer": "3"})),
    "array_row.jsonl": jsonl(*rows(2), "[1, 2, 3]"),
    "bad_gold.jsonl": jsonl(*rows(5), json.dumps({"question": "How many?", "answer": "seven"})),
}

CASES = [
    # id, arguments ({data} is the folder of the data files, {policy} a tiny checkpoint), message (a regex)
    ("data-malformed-json", ["--task", "jsonl", "--task.data_path", "{data}/malformed.jsonl"],
     r"malformed\.jsonl:3: not valid JSON"),
    ("data-empty-file", ["--task", "jsonl", "--task.data_path", "{data}/empty.jsonl"],
     r"empty\.jsonl: empty; expected one JSON object per line"),
    ("data-not-utf8", ["--task", "jsonl", "--task.data_path", "{data}/latin1.jsonl"],
     r"latin1\.jsonl:4: not UTF-8"),
    ("data-wrong-type", ["--task", "jsonl", "--task.data_path", "{data}/list_answer.jsonl"],
     r"list_answer\.jsonl:5: field 'answer' is list"),
    ("data-missing-field", ["--task", "jsonl", "--task.data_path", "{data}/no_question.jsonl"],
     r"no_question\.jsonl:3: no field 'question'"),
    ("data-not-an-object", ["--task", "jsonl", "--task.data_path", "{data}/array_row.jsonl"],
     r"array_row\.jsonl:3: a JSON list; expected an object"),
    ("data-unparsable-gold", ["--task", "jsonl", "--task.data_path", "{data}/bad_gold.jsonl"],
     r"bad_gold\.jsonl:6: .*'seven'"),
    ("data-100mb-line", ["--task", "jsonl", "--task.data_path", "{data}/huge_line.jsonl"],
     r"huge_line\.jsonl:2: a line longer than 1 MiB"),
    ("data-missing-file", ["--task", "jsonl", "--task.data_path", "{data}/nowhere.jsonl"],
     r"nowhere\.jsonl: no such file"),
    ("data-split-too-large", ["--task", "jsonl", "--task.data_path", "{data}/good.jsonl",
                              "--task.train_problems", "500"],
     r"--task\.train_problems 500: the jsonl train split holds \d+ problems \(.*good\.jsonl"),
    ("data-field-on-a-built-in-task", ["--task.data_path", "{data}/good.jsonl"],
     r"--task\.data_path: --task modtarget is built in and reads none of these \(the data tasks do: "),
    ("unknown-task", ["--task", "sudoku"], r"--task 'sudoku': unknown task; expected one of"),
    ("unknown-method", ["--method", "ppo"], r"--method 'ppo': unknown method"),
    ("unknown-config-key", ["--config", "{data}/unknown_key.yaml"], r"unknown_key\.yaml: unknown key search\.branchy"),
    ("unknown-top-level-key", ["--config", "{data}/unknown_top.yaml"], r"unknown_top\.yaml: unknown key 'epochs'"),
    ("config-not-a-mapping", ["--config", "{data}/list.yaml"], r"list\.yaml: expected a mapping"),
    ("config-not-yaml", ["--config", "{data}/broken.yaml"], r"broken\.yaml:2: not valid YAML"),
    ("config-repeated-key", ["--config", "{data}/repeated.yaml"], r"repeated\.yaml:3: not valid YAML \(key 'search' "
                                                                   r"given twice\)"),
    ("config-not-utf8", ["--config", "{data}/latin1.yaml"], r"latin1\.yaml: not UTF-8 \(byte \d+\)"),
    ("config-missing-file", ["--config", "{data}/nowhere.yaml"], r"--config '.*nowhere\.yaml': no such file"),
    ("wrong-type-flag", ["--rounds", "two"], r"--rounds: expected int, got 'two'"),
    ("wrong-type-in-config", ["--config", "{data}/wrong_type.yaml"], r"search\.branch: expected int, got 'many'"),
    ("negative-rounds", ["--rounds", "-1"], r"--rounds -1: expected 0 \(the warm start only\) or more rounds"),
    ("out-of-range-probability", ["--search.end_gate", "1.5"],
     r"--search\.end_gate 1\.5: expected a number in \[0, 1\]"),
    ("negative-learning-rate", ["--policy_train.learning_rate", "-1"],
     r"--policy_train\.learning_rate -1\.0: expected a positive number"),
    ("not-a-number", ["--search.temperature", "nan"], r"--search\.temperature nan: expected a finite number"),
    ("infinite-timeout", ["--cluster.timeout_s", "inf"], r"--cluster\.timeout_s inf: expected a finite number"),
    ("zero-simulations", ["--search.max_simulations", "0"],
     r"--search\.max_simulations 0: max_simulations must be at least 1, got 0"),
    ("zero-workers", ["--cluster.search_workers", "0"], r"--cluster\.search_workers 0: expected a positive integer"),
    ("zero-timeout", ["--cluster.timeout_s", "0"], r"--cluster\.timeout_s 0\.0: expected at least 1"),
    ("negative-seed", ["--seed", "-5"], r"--seed -5: expected at least 0"),
    ("bad-choice", ["--values.target", "median"], r"--values\.target 'median': expected one of"),
    ("unknown-backend", ["--search.backend", "sglang"],
     r"--search\.backend 'sglang': expected one of \('hf', 'vllm'\)"),
    ("engine-block-size", ["--search.backend", "vllm", "--engine.block_size", "48"],
     r"--engine\.block_size 48: expected a positive multiple of 32"),
    ("engine-temperature", ["--search.backend", "vllm", "--eval.temperature", "2.5"],
     r"--eval\.temperature 2\.5: vLLM samples at temperatures up to 2\.0 \(--search\.backend vllm\)"),
    ("self-rewarding-judge", ["--method", "self_rewarding", "--self_rewarding.judge", "human"],
     r"--self_rewarding\.judge 'human': expected one of \('policy', 'verifier', 'oracle'\)"),
    ("self-rewarding-judge-untrained", ["--method", "self_rewarding", "--self_rewarding.judge", "verifier"],
     r"--self_rewarding\.judge verifier: the judge is the verifier trained in round 0; add "
     r"--verifier\.train_in_rounds true"),
    ("self-rewarding-match", ["--method", "self_rewarding", "--self_rewarding.match_tokens_of", "no/such/run"],
     r"--self_rewarding\.match_tokens_of no/such/run: not an iterate run folder \(no config\.yaml\)"),
    ("self-rewarding-margin", ["--method", "self_rewarding", "--self_rewarding.margin", "-1"],
     r"--self_rewarding\.margin -1\.0 and --self_rewarding\.beta 0\.1: expected a margin of 0 or more and a positive "
     r"beta"),
    ("self-rewarding-sft-weight", ["--method", "self_rewarding", "--self_rewarding.sft_weight", "-0.5"],
     r"--self_rewarding\.sft_weight -0\.5: expected 0 \(DPO alone\) or a positive weight"),
    ("self-rewarding-learning-rate", ["--method", "self_rewarding", "--self_rewarding.learning_rate", "-0.00001"],
     r"--self_rewarding\.learning_rate -1e-05: expected 0 \(the policy's round rate\) or a positive rate"),
    ("mc-completions", ["--values.target", "omega", "--values.mc_completions", "0"],
     r"--values\.mc_completions 0: expected a positive integer"),
    ("heads-not-dividing-hidden", ["--model.hidden_size", "130"],
     r"--model\.hidden_size 130: expected a multiple of --model\.num_heads"),
    ("zero-heads", ["--model.num_heads", "0"], r"--model\.num_heads 0: expected a positive integer"),
    ("positions-too-few", ["--model.max_positions", "40"],
     r"--model\.max_positions 40: the longest prompt .* and one step of --search\.max_step_tokens 32 do not fit"),
    ("split-beyond-the-task", ["--task.test_problems", "5000"], r"the test split holds at most 1000 problems"),
    ("round-beyond-the-pool", ["--task.problems_per_round", "100000"], r"--task\.problems_per_round 100000"),
    ("bad-wandb-mode", ["--logging.wandb_mode", "nonsense"], r"--logging\.wandb_mode 'nonsense'"),
    ("not-a-model", ["--policy-model", "{data}"],
     r"--model\.policy_model .*bad_inputs\d*: not a loadable checkpoint \(.*not a directory with a config\.json"),
    ("missing-model", ["--prm-model", "{data}/no_model_here"],
     r"--model\.prm_model .*no_model_here: not a loadable checkpoint \(.*no such path"),
    ("model-config-without-a-model", ["--policy-model", "{config_only}"],
     r"--model\.policy_model .*config_only: not a loadable checkpoint \(.*Unrecognized model"),
    ("tokenizer-without-delimiter", ["--policy-model", "{no_newline_policy}"],
     r"the step delimiter '\\n' of --task modtarget: the tokenizer of --model\.policy_model .* cannot write it"),
    ("more-cpus-than-the-machine", ["--cluster.search_workers", "64"],
     r"the colocation placement group needs 64 CPUs \(max\(--cluster\.search_workers 64, .*\), and this machine "
     r"has \d+ for a local Ray cluster"),
    ("more-gpus-than-the-machine", ["--cluster.gpus_per_rank", "1", "--cluster.cpus_per_rank", "0.01",
                                    "--cluster.trainer_ranks", "64", "--cluster.colocate", "false"],
     r"the trainer placement group needs 64 GPUs \(--cluster\.trainer_ranks 64 x --cluster\.gpus_per_rank 1\.0\), "
     r"and this machine has \d+ for a local Ray cluster"),
    ("dashboard-host-not-here", ["--cluster.dashboard_host", "not a host"],
     r"--cluster\.dashboard_host 'not a host': not an address this machine can listen on"),
    ("unreachable-ray-address", ["--ray-address", "127.0.0.1:1"],
     r"--ray-address 127\.0\.0\.1:1: no Ray cluster answers there"),
    ("malformed-ray-address", ["--ray-address", "nowhere"], r"--ray-address 'nowhere': expected host:port"),
    ("experiment-escaping-run-dir", ["--experiment", "../elsewhere"],
     r"--experiment '\.\./elsewhere': expected a folder name under --run-dir"),
    ("run-dir-is-a-file", ["--run-dir", "{data}/good.jsonl"], r"good\.jsonl is a file, not a folder"),
    ("resume-without-a-run", ["--resume"], r"--resume: no run to resume at"),
    ("resume-and-overwrite", ["--resume", "--overwrite"], r"--resume and --overwrite: choose one"),
    ("empty-wandb-project", ["--logging.wandb_project", ""], r"--logging\.wandb_project '': expected a W&B project"),
    ("missing-verifier-model", ["--verifier.model", "{data}/no_verifier_here"],
     r"--verifier\.model .*no_verifier_here: not a loadable checkpoint"),
    ("data-file-is-a-folder", ["--task", "jsonl", "--task.data_path", "{data}"], r"bad_inputs\d*: a folder; "
                                                                                 r"expected a JSONL data file"),
    ("wandb-online-without-login", ["--logging.wandb_mode", "online"],
     r"--logging\.wandb_mode online: no W&B credentials"),
]
"""Cases run in this process through `iterate.main`; the unwritable run folder, the full disk, a W&B server that
does not answer and an existing run folder are tested below."""


def write_inputs(folder: Path) -> Path:
    """The data and config files of the cases into `folder`."""
    for name, content in DATA_FILES.items():
        (folder / name).write_bytes(content)
    (folder / "good.jsonl").write_bytes(jsonl(*rows()))
    (folder / "latin1.yaml").write_bytes("search:\n  branch: 2 # caf\xe9\n".encode("latin-1"))
    (folder / "config_only").mkdir()
    (folder / "config_only" / "config.json").write_text("{}")
    with open(folder / "huge_line.jsonl", "wb") as handle:  # a 100 MB line, written without holding it
        handle.write(jsonl(*rows(1)))
        handle.write(b'{"question": "')
        for _ in range(100):
            handle.write(b"x" * 2**20)
        handle.write(b'", "answer": "1"}\n')
    for name, text in {"unknown_key.yaml": "search:\n  branchy: 3\n", "unknown_top.yaml": "epochs: 3\n",
                       "list.yaml": "- rounds\n- 3\n", "broken.yaml": "rounds: [1\n",
                       "wrong_type.yaml": "search:\n  branch: many\n",
                       "repeated.yaml": "search:\n  branch: 2\nsearch:\n  branch: 3\n"}.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_inputs(tmp_path_factory.mktemp("bad_inputs"))


@pytest.fixture(scope="module")
def no_newline_policy(tmp_path_factory) -> Path:
    from lm.build import build_tiny_policy
    from lm.checkpoints import save_checkpoint
    from lm.tokenizer import build_char_tokenizer

    tokenizer = build_char_tokenizer("0123456789abcdefghijklmnopqrstuvwxyz +-*=?")  # no newline
    path = tmp_path_factory.mktemp("no_newline") / "policy"
    save_checkpoint(build_tiny_policy(tokenizer, 32, 1, 2, 64, 256, seed=0), tokenizer, path)
    return path


@pytest.fixture(scope="module")
def policy(tmp_path_factory) -> Path:
    from lm.build import build_tiny_policy
    from lm.checkpoints import save_checkpoint
    from lm.tokenizer import build_char_tokenizer

    tokenizer = build_char_tokenizer()
    path = tmp_path_factory.mktemp("policy") / "policy"
    save_checkpoint(build_tiny_policy(tokenizer, 32, 1, 2, 64, 256, seed=0), tokenizer, path)
    return path


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*")}


class Accepted(BaseException):
    """The input passed every check: the run would start (a test failure, not a run)."""


def one_line(stderr: str) -> str:
    """The one line of a refusal's whole stderr (blank lines aside), which must start with `error: `."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), f"expected one error line, got:\n{stderr}"
    return lines[0]


def refuse(argv: list[str], workspace: Path, capfd) -> str:
    """Run iterate's main on `argv` in `workspace`; assert exit code 2, nothing new there and one line on stderr
    (file descriptor 2 and sys.stderr, a warning raised on the way counted as a line of its own); that line."""
    before = files_under(workspace)
    cwd = os.getcwd()
    os.chdir(workspace)
    real_prepare = iterate.prepare_run_dir

    def prepare_then_stop(*args):
        real_prepare(*args)
        raise Accepted(f"{argv} was accepted")

    iterate.prepare_run_dir = prepare_then_stop
    try:
        with pytest.raises(SystemExit) as exit_, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # what a fresh process shows once is shown here every time
            iterate.main(argv)
    finally:
        iterate.prepare_run_dir = real_prepare
        os.chdir(cwd)
    output = capfd.readouterr().err + "".join(f"{w.category.__name__}: {w.message}\n" for w in caught)
    assert exit_.value.code == 2, output
    assert files_under(workspace) == before, "a file was left behind"
    return one_line(output)


def case_argv(args: list[str], data: Path, policy: Path, no_newline_policy: Path) -> list[str]:
    """A case's command line: its own flags last (so they win), after a tiny policy and small split sizes for the
    data cases, and a run folder under the working directory."""
    values = {"data": str(data), "no_newline_policy": str(no_newline_policy), "config_only": str(data / "config_only")}
    argv = [arg.format(**values) for arg in args]
    if argv[:2] == ["--task", "jsonl"]:
        argv = ["--policy-model", str(policy), *SMALL, *argv]
    if "--run-dir" not in argv:
        argv += ["--run-dir", "runs"]
    return argv


@pytest.mark.parametrize("case, args, message", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_refused_with_one_clear_line_and_nothing_written(case, args, message, data, policy,
                                                                       no_newline_policy, tmp_path, capfd,
                                                                       monkeypatch):
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: no W&B login
    line = refuse(case_argv(args, data, policy, no_newline_policy), tmp_path, capfd)
    assert re.search(message, line), line


FRESH_PROCESS_EVERY_RUN = {"data-malformed-json", "unknown-task"}
"""Cases run as a process of their own in every test run (a data file checked after the policy's weights load, a
value refused before anything loads); the others, 10-30 s each, all together with the slow tests."""


def cli_refusal(case, args, message, data, policy, no_newline_policy, tmp_path) -> str:
    """The whole stderr of `python -m rest_mcts.iterate`, which a test in this process cannot see whole: libraries'
    log handlers bound to the process's stderr, progress bars (the tests' checkpoint writes turn them off here),
    warnings shown once per process. Empty when the case prints its one line alone and writes nothing; else what
    went wrong."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("WANDB_")}
    env.update(PYTHONPATH=str(REPO), HOME=str(tmp_path))  # no ~/.netrc: no W&B login
    before = files_under(tmp_path)
    result = subprocess.run([sys.executable, "-m", "rest_mcts.iterate",
                             *case_argv(args, data, policy, no_newline_policy)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in result.stderr.splitlines() if line.strip()]  # as `one_line` reads them
    if result.returncode != 2 or len(lines) != 1 or not lines[0].startswith("error: ") or not re.search(
            message, lines[0]):
        return f"{case}: exit {result.returncode}, stderr {result.stderr!r}"
    if result.stdout or files_under(tmp_path) != before:
        return f"{case}: printed {result.stdout!r} or wrote files"
    return ""


@pytest.mark.parametrize("case, args, message", [case for case in CASES if case[0] in FRESH_PROCESS_EVERY_RUN],
                         ids=sorted(FRESH_PROCESS_EVERY_RUN))
def test_bad_input_prints_its_one_line_alone_as_the_cli_in_a_process_of_its_own(case, args, message, data, policy,
                                                                                no_newline_policy, tmp_path):
    assert cli_refusal(case, args, message, data, policy, no_newline_policy, tmp_path) == ""


@pytest.mark.slow
def test_every_bad_input_prints_its_one_line_alone_as_the_cli_in_a_process_of_its_own(data, policy,
                                                                                      no_newline_policy, tmp_path):
    """Every other case of the table as its own CLI process, three at a time."""
    from concurrent.futures import ThreadPoolExecutor

    cases = [case for case in CASES if case[0] not in FRESH_PROCESS_EVERY_RUN]
    folders = [tmp_path / case[0] for case in cases]
    for folder in folders:
        folder.mkdir()
    with ThreadPoolExecutor(3) as pool:
        problems = list(pool.map(lambda item: cli_refusal(*item[0], data, policy, no_newline_policy, item[1]),
                                 zip(cases, folders)))
    assert [problem for problem in problems if problem] == []


def test_an_unwritable_run_folder_is_refused_for_a_user_without_write_access(capfd):
    """As an unprivileged user (nobody, when the tests run as root) the run folder cannot be made."""
    import rest_mcts.actors  # noqa: F401  (imported before dropping privileges: the checkout may be private)
    from rest_mcts.flags import config_from_args
    from rest_mcts.preflight import check_wandb

    workspace = Path(tempfile.mkdtemp(prefix="unwritable-"))
    try:
        workspace.chmod(0o755)
        locked = workspace / "locked"
        locked.mkdir(mode=0o555)
        argv = ["--run-dir", str(locked / "runs"), "--logging.wandb_mode", "offline"]
        check_wandb(config_from_args(iterate.build_parser().parse_args(argv)))  # imports what the checks use
        if os.getuid() != 0:
            line = refuse(argv, workspace, capfd)
        else:
            read, write = os.pipe()
            child = os.fork()
            if child == 0:  # the child drops to nobody and runs the CLI
                code = 3
                try:
                    os.close(read)
                    os.setgroups([])
                    os.setgid(65534)
                    os.setuid(65534)
                    os.chdir(workspace)
                    sys.stderr = os.fdopen(write, "w", buffering=1)  # pytest holds the usual one
                    iterate.main(argv)
                except SystemExit as exit_:
                    code = exit_.code if isinstance(exit_.code, int) else 3
                except BaseException:  # noqa: BLE001  (reported through the pipe)
                    import traceback

                    os.write(write, traceback.format_exc().encode())
                finally:
                    sys.stderr.flush()
                    os._exit(code)
            os.close(write)
            with os.fdopen(read) as pipe:
                output = pipe.read()
            _, status = os.waitpid(child, 0)
            assert os.waitstatus_to_exitcode(status) == 2, output
            line = one_line(output)
        assert re.search(r"cannot write the run folder .*locked/runs/default: .*locked is not writable by this "
                         r"user \(uid \d+\)", line), line
        assert list(locked.iterdir()) == []
    finally:
        shutil.rmtree(workspace)


def test_a_disk_without_room_for_the_run_is_refused(tmp_path, capfd, monkeypatch):
    """A full disk, simulated: 1 MiB free where the run's checkpoints need more."""
    import rest_mcts.preflight as preflight

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda path: usage(2**30, 2**30 - 2**20, 2**20))
    line = refuse(["--run-dir", "runs"], tmp_path, capfd)
    assert re.search(r"1 MiB free on the disk of .*, and the run writes about \d+ MiB", line), line
    assert preflight.run_bytes(iterate.RunConfig()) > 2**20


def test_an_existing_run_is_not_touched_without_resume_or_overwrite(tmp_path, capfd):
    run = tmp_path / "runs" / "default"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("rounds: 3\n")
    line = refuse(["--run-dir", "runs"], tmp_path, capfd)
    assert "already holds a run; pass --resume to continue it" in line
    assert (run / "config.yaml").read_text() == "rounds: 3\n"


@pytest.mark.parametrize("library_error", [False, True])
def test_a_disk_that_fills_mid_run_stops_it_with_one_line_and_resume_in_view(library_error, tmp_path, capsys,
                                                                              monkeypatch):
    """A write that finds no room mid-run (after the checks): exit code 1, the file named (when the error names
    it), --resume suggested; also when a library reports it in its own error (safetensors, through Ray)."""
    import errno

    import rest_mcts.placement

    def no_room(config, run_dir, tracker):
        if library_error:
            raise RuntimeError("ray::round 0 train_prm: SafetensorError: No space left on device (os error 28)")
        raise OSError(errno.ENOSPC, "No space left on device", str(run_dir / "round_00" / "trees.jsonl"))

    monkeypatch.setattr(rest_mcts.placement, "start_ray", lambda *args: None)
    monkeypatch.setattr(iterate, "run_rounds", no_room)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        iterate.main(["--run-dir", "runs", "--logging.wandb_mode", "disabled"])
    output = capsys.readouterr().err
    assert exit_.value.code == 1, output
    where = r"a run file \(no space left on device\)" if library_error else (
        r".*round_00/trees\.jsonl \(No space left on device\)")
    assert re.search(rf"error: no room left writing {where}; the finished stages are kept: free space, then "
                     rf"continue with --resume", output), output
    assert (tmp_path / "runs" / "default" / "config.yaml").exists()  # kept for --resume


@pytest.mark.slow
def test_a_wandb_server_that_does_not_answer_fails_the_start_and_leaves_no_run_folder(tmp_path):
    """W&B failing to start (credentials, but no server at WANDB_BASE_URL): the start fails after
    --logging.wandb_init_timeout_s with one error line, and the new run folder is removed."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_API_KEY": "k" * 40, "WANDB_BASE_URL": "http://127.0.0.1:1",
           "WANDB_MODE": "", "HOME": str(tmp_path)}
    process = subprocess.run(
        [sys.executable, "-m", "rest_mcts.iterate", "--run-dir", "runs", "--logging.wandb_mode", "online",
         "--logging.wandb_init_timeout_s", "5"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert process.returncode == 2, process.stderr
    assert one_line(process.stderr).startswith("error: W&B could not start its online run")
    assert "k" * 40 not in process.stderr + process.stdout  # the key never shows
    assert not (tmp_path / "runs").exists()


def solved(count: int) -> list[str]:
    """`count` problems with worked solutions, as a user's own file holds them."""
    return [json.dumps({"question": f"What is {i} plus {i}?", "answer": 2 * i, "solution": f"{i} + {i} = {2 * i}"})
            for i in range(count)]


ACCEPTED = [
    # id, the data file's bytes, the split sizes the run takes: (seed, train, per round, test, ood, dev)
    ("data-byte-order-mark", b"\xef\xbb\xbf" + jsonl(*solved(40)), (26, 10, 8, 4, 0, 2)),
    ("data-crlf-line-ends", jsonl(*solved(40)).replace(b"\n", b"\r\n"), (26, 10, 8, 4, 0, 2)),
    ("data-without-size-flags", jsonl(*solved(300)), (196, 74, 60, 30, 0, 14)),
]
"""Data files as users write them, which pass every check of the start and reach the run with no size flag (the
"accepted as written" table of docs/bad-inputs.md): a tenth held out as test, the rest split 8000 : 3000 between
seed and train, dev at most a fifth of train (docs/tasks.md)."""


class Reached(Exception):
    """The run started: its rounds were about to run."""


@pytest.mark.parametrize("case, content, sizes", ACCEPTED, ids=[case[0] for case in ACCEPTED])
def test_a_data_file_as_users_write_it_reaches_the_run_with_its_split_sizes_saved(case, content, sizes, policy,
                                                                                   tmp_path, capfd, caplog,
                                                                                   monkeypatch):
    import yaml

    import rest_mcts.placement

    (tmp_path / "data.jsonl").write_bytes(content)
    monkeypatch.setattr(rest_mcts.placement, "start_ray", lambda *args: None)
    monkeypatch.setattr(iterate, "run_rounds", lambda *args: (_ for _ in ()).throw(Reached()))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Reached), caplog.at_level("INFO", logger="rest_mcts"):
        iterate.main(["--task", "jsonl", "--task.data_path", "data.jsonl", "--task.solution_field", "solution",
                      "--policy-model", str(policy), "--run-dir", "runs", "--logging.wandb_mode", "disabled"])
    saved = yaml.safe_load((tmp_path / "runs" / "default" / "config.yaml").read_text())  # what --resume reads
    assert tuple(saved["task"][key] for key in ("seed_problems", "train_problems", "problems_per_round",
                                                "test_problems", "ood_problems")) + (
        saved["eval"]["dev_problems"],) == sizes
    seed, train, per_round, test, ood, dev = sizes
    assert (f"--task jsonl split sizes: seed {seed}, train {train} (its last {dev} held out as dev, {per_round} "
            f"searched a round), test {test}, ood {ood}") in caplog.messages
    assert "error" not in capfd.readouterr().err


def test_the_docs_table_lists_every_case():
    table = (REPO / "docs" / "bad-inputs.md").read_text()
    listed = set(re.findall(r"`test_bad_inputs::([a-z0-9-]+)`", table))
    assert listed == {case[0] for case in CASES} | {case[0] for case in ACCEPTED} | {
        "unwritable-run-folder", "disk-full", "existing-run", "wandb-server-unreachable"}


def test_every_test_the_docs_table_names_in_another_file_exists():
    table = (REPO / "docs" / "bad-inputs.md").read_text()
    for module, name in re.findall(r"`(test_[a-z0-9_]+)::([A-Za-z0-9_]+)`", table):
        if module != "test_bad_inputs":
            assert f"def {name}(" in (REPO / "tests" / f"{module}.py").read_text(), f"{module}::{name}"
