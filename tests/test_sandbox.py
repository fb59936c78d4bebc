"""The sandbox (rest_mcts.sandbox) ends every hostile program in a clear status, contains it, and leaves the parent
healthy: each test runs under bwrap and under the fallback (with and without namespaces) where this machine can."""

from __future__ import annotations

import json
import os
import random
import resource
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rest_mcts import sandbox
from rest_mcts.sandbox import SandboxLimits, SandboxUnavailable, run_many, run_python

REPO = Path(__file__).resolve().parents[1]
QUICK = SandboxLimits(timeout_seconds=1.0)


def _mode(name: str):
    """A pytest param: a function running (source, limits) in the named mode, or a skip saying why it cannot."""
    isolation = "fallback" if name.startswith("fallback") else name
    try:
        plan = sandbox.resolve_isolation(isolation)
    except SandboxUnavailable as problem:
        return pytest.param(None, id=name, marks=pytest.mark.skip(reason=f"{isolation} cannot run here: {problem}"))
    if name == "bwrap" or (name == "fallback" and plan.launcher == "unshare"):
        return pytest.param(lambda source, limits: run_python(source, limits, isolation=isolation), id=name)
    if name == "fallback-plain":
        # The fallback's last resort (no unshare): reached through the private plan, as no flag selects it.
        plain = sandbox._plan("fallback", "plain", plan.python)
        return pytest.param(lambda source, limits: sandbox._run(plain, source, limits), id=name)
    return pytest.param(None, id=name, marks=pytest.mark.skip(reason="the fallback runs without namespaces here "
                                                                     "(not root, or unshare not permitted)"))


ALL_MODES = [_mode("bwrap"), _mode("fallback"), _mode("fallback-plain")]
NAMESPACED_MODES = [_mode("bwrap"), _mode("fallback")]


def unique_sleep_argument() -> str:
    """A sleep duration no other process on the machine has in its command line: the name the tests look for."""
    return f"3000.{random.randrange(10**9):09d}"


def processes_with(marker: str) -> list[int]:
    """The live processes whose command line contains `marker` (zombies have none)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def program(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"


@pytest.mark.parametrize("run", ALL_MODES)
def test_a_normal_program_ends_ok_with_its_stdout_captured(run):
    result = run("print(sum(range(10)))\nimport sys; print('note', file=sys.stderr)", QUICK)
    assert (result.status, result.exit_code, result.stdout, result.stderr) == ("ok", 0, "45\n", "note\n")
    assert not result.stdout_truncated and result.user_id == (65534 if os.geteuid() == 0 else os.geteuid())


@pytest.mark.parametrize("run", ALL_MODES)
def test_a_failing_program_ends_in_error_with_its_traceback(run):
    result = run("raise ValueError('no answer')", QUICK)
    assert result.status == "error" and result.exit_code == 1
    assert "ValueError: no answer" in result.stderr and "ValueError: no answer" in result.detail


@pytest.mark.parametrize("run", ALL_MODES)
def test_an_infinite_loop_ends_in_timeout(run):
    result = run("while True:\n    pass", QUICK)
    assert result.status == "timeout" and result.exit_code is None
    assert result.wall_seconds < 5


@pytest.mark.parametrize("run", ALL_MODES)
def test_a_busy_program_past_its_cpu_seconds_ends_in_timeout(run):
    result = run("while True:\n    pass", SandboxLimits(timeout_seconds=20, cpu_seconds=1))
    assert (result.status, result.signal) == ("timeout", "SIGXCPU") and "CPU-time" in result.detail


@pytest.mark.parametrize("run", ALL_MODES)
def test_a_program_that_dies_of_a_signal_ends_in_killed(run):
    result = run("import os, signal\nprint('before', flush=True)\nos.kill(os.getpid(), signal.SIGSEGV)", QUICK)
    assert (result.status, result.signal, result.exit_code, result.stdout) == ("killed", "SIGSEGV", None, "before\n")


@pytest.mark.parametrize("run", ALL_MODES)
def test_a_program_that_ignores_sigterm_is_killed_dead_at_the_timeout(run):
    marker = unique_sleep_argument()
    loop = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.01)"
    # exec keeps the pid and puts the marker in the looping process's command line.
    source = f"import os, sys\nos.execv(sys.executable, [sys.executable, '-c', {loop!r}, {marker!r}])"
    result = run(source, SandboxLimits(timeout_seconds=1.0, cpu_seconds=30))
    assert result.status == "timeout" and "wall-time" in result.detail
    assert processes_with(marker) == []


@pytest.mark.parametrize("run", ALL_MODES)
def test_a_process_spawning_loop_is_stopped_by_the_process_limit_and_leaves_nothing(run):
    if "process-limit" not in run("pass", QUICK).enforced:
        pytest.skip("the fallback run by a non-root caller sets no process limit (documented)")
    marker = unique_sleep_argument()
    source = program(f"""
        import os
        started, refused = 0, 0
        for attempt in range(200):
            try:
                pid = os.fork()
            except OSError:
                refused += 1
                break
            if pid == 0:
                os.execvp("sleep", ["sleep", "{marker}"])
            started += 1
        print(started, refused)
    """)
    result = run(source, SandboxLimits(timeout_seconds=10, max_processes=16))
    assert result.status == "ok", result
    started, refused = map(int, result.stdout.split())
    assert refused == 1 and started < 16
    assert processes_with(marker) == []


@pytest.mark.parametrize("run", NAMESPACED_MODES)
def test_a_detached_grandchild_is_gone_after_the_run(run):
    marker = unique_sleep_argument()
    source = program(f"""
        import os
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "{marker}"])
            os._exit(0)
        os.wait()
        print("detached")
    """)
    result = run(source, QUICK)
    assert (result.status, result.stdout) == ("ok", "detached\n")
    assert "pid-namespace" in result.enforced
    assert processes_with(marker) == []


@pytest.mark.parametrize("run", ALL_MODES)
def test_allocating_4_gb_ends_in_memory(run):
    result = run("block = bytearray(4 * 1024**3)\nprint(len(block))", SandboxLimits(timeout_seconds=10,
                                                                                      memory_mb=512))
    assert result.status == "memory" and result.stdout == ""
    assert "MemoryError" in result.stderr


@pytest.mark.parametrize("run", ALL_MODES)
def test_printing_100_mb_ends_in_output_limit_and_the_parent_stays_small(run):
    peak_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    source = "import sys\nline = 'x' * 1_000_000 + '\\n'\nfor _ in range(100):\n    sys.stdout.write(line)"
    result = run(source, SandboxLimits(timeout_seconds=20, max_output_kb=64))
    assert result.status == "output_limit" and result.stdout_truncated
    assert len(result.stdout) == 64 * 1024
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before_kb < 50 * 1024


@pytest.mark.parametrize("run", ALL_MODES)
def test_the_program_cannot_write_outside_its_temporary_directory(run):
    name = f"sandbox-escape-{random.randrange(10**9)}"
    targets = [REPO / name, Path("/root") / name, Path("/etc") / name]
    source = program(f"""
        import os
        for target in {[str(t) for t in targets]!r}:
            try:
                with open(target, "w") as handle:
                    handle.write("escaped")
                print("wrote", target)
            except OSError as problem:
                print("refused", type(problem).__name__)
        with open("inside.txt", "w") as handle:
            handle.write("fine")
        print("cwd", os.getcwd())
    """)
    try:
        result = run(source, QUICK)
        if not {"unprivileged-user", "read-only-filesystem"} & set(result.enforced):
            pytest.skip("the fallback run by a non-root caller writes wherever the caller may (documented)")
        assert result.status == "ok", result
        assert "wrote" not in result.stdout and result.stdout.count("refused") == 3
        assert not any(target.exists() for target in targets)
        workdir = result.stdout.split("cwd ")[1].strip()
        assert not Path(workdir).exists(), "the temporary directory outlived the run"
    finally:
        for target in targets:
            target.unlink(missing_ok=True)


def test_under_bwrap_the_program_writes_to_a_private_tmp():
    if not _available("bwrap"):
        pytest.skip("bwrap cannot run here")
    name = f"/tmp/sandbox-private-{random.randrange(10**9)}"
    result = run_python(f"open({name!r}, 'w').write('x')\nprint(open({name!r}).read())", QUICK, isolation="bwrap")
    assert (result.status, result.stdout) == ("ok", "x\n")
    assert not Path(name).exists()


@pytest.mark.parametrize("run", NAMESPACED_MODES)
def test_the_program_cannot_open_network_connections(run):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        source = program(f"""
            import socket
            for address in [("127.0.0.1", {port}), ("1.1.1.1", 53)]:
                try:
                    socket.create_connection(address, timeout=2).close()
                    print("connected", address)
                except OSError as problem:
                    print("blocked", type(problem).__name__)
        """)
        result = run(source, SandboxLimits(timeout_seconds=10))
        assert result.status == "ok" and result.stdout.count("blocked") == 2, result.stdout
        with pytest.raises(BlockingIOError):
            listener.accept()


@pytest.mark.parametrize("run", ALL_MODES)
def test_the_program_cannot_see_the_callers_environment(run, monkeypatch):
    monkeypatch.setenv("REST_MCTS_TEST_SECRET", "hunter2-sandbox")
    result = run("import os\nprint(sorted(os.environ))\nprint(open('/proc/self/environ').read())", QUICK)
    assert result.status == "ok"
    assert "REST_MCTS_TEST_SECRET" not in result.stdout and "hunter2" not in result.stdout
    assert set(eval(result.stdout.splitlines()[0])) <= {"PATH", "HOME", "LANG", "PWD", "OMP_NUM_THREADS",
                                                        "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "LC_CTYPE"}


def test_the_fallback_without_namespaces_says_what_it_gives_up():
    if not _available("fallback"):
        pytest.skip("the fallback cannot run here")
    plain = sandbox._plan("fallback", "plain", sandbox.resolve_isolation("fallback").python)
    result = sandbox._run(plain, "print('hi')", QUICK)
    assert result.isolation == "fallback" and result.status == "ok"
    assert {"pid-namespace", "network-namespace", "read-only-filesystem"} <= set(result.not_enforced)
    assert set(result.enforced) | set(result.not_enforced) == set(sandbox.PROTECTIONS)


def test_run_many_returns_results_in_the_order_of_the_sources():
    if not (_available("bwrap") or _available("fallback")):
        pytest.skip("no isolation can run here")
    results = run_many([f"print({n} * {n})" for n in range(6)], QUICK, workers=3)
    assert [result.stdout for result in results] == [f"{n * n}\n" for n in range(6)]


def _available(isolation: str) -> bool:
    try:
        sandbox.resolve_isolation(isolation)
        return True
    except SandboxUnavailable:
        return False


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "rest_mcts.sandbox", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)


def test_the_cli_prints_one_json_object_and_exits_0_for_a_failing_program(tmp_path):
    if not (_available("bwrap") or _available("fallback")):
        pytest.skip("no isolation can run here")
    (tmp_path / "failing.py").write_text("print('partial')\nraise SystemExit(3)\n")
    completed = run_cli("failing.py", "--timeout", "5", "--max-output-kb", "8", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    (line,) = completed.stdout.splitlines()
    report = json.loads(line)
    assert (report["status"], report["exit_code"], report["stdout"]) == ("error", 3, "partial\n")
    assert report["isolation"] in ("bwrap", "fallback") and "enforced" in report and "wall_seconds" in report


def test_the_cli_exits_nonzero_naming_a_missing_file(tmp_path):
    completed = run_cli("absent.py", cwd=tmp_path)
    assert completed.returncode != 0 and completed.stdout == ""
    assert "absent.py" in completed.stderr and "no such file" in completed.stderr


@pytest.mark.parametrize("flags, named", [(["--timeout", "soon"], "--timeout"), (["--memory-mb", "-5"], "--memory-mb"),
                                          (["--bogus"], "--bogus")])
def test_the_cli_exits_nonzero_naming_a_bad_flag(tmp_path, flags, named):
    (tmp_path / "fine.py").write_text("print(1)\n")
    completed = run_cli("fine.py", *flags, cwd=tmp_path)
    assert completed.returncode != 0 and completed.stdout == ""
    assert named in completed.stderr


def test_the_overhead_benchmark_prints_its_figures():
    if not (_available("bwrap") or _available("fallback")):
        pytest.skip("no isolation can run here")
    completed = subprocess.run([sys.executable, str(REPO / "benchmarks" / "sandbox_overhead.py"), "--runs", "3",
                                "--batch", "4"], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "median seconds per call" in completed.stdout
