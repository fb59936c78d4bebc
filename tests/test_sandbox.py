"""The sandbox (rest_mcts.sandbox) ends every hostile program in a clear status, contains it, and leaves the parent
healthy: each test runs under bwrap and under the fallback (with and without namespaces) where this machine can. One
set of escape attempts runs in three modes (bwrap, the fallback run by root, the fallback run by an unprivileged
user), and the sandbox refuses, in one line, where it cannot isolate and the caller did not accept that."""

from __future__ import annotations

import functools
import json
import os
import random
import resource
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rest_mcts import sandbox
from rest_mcts.sandbox import SandboxLimits, SandboxUnavailable, run_many, run_python
from rest_mcts.sandbox_types import ISOLATING, SANDBOX_USER_ID, SYSTEM_PATH

REPO = Path(__file__).resolve().parents[1]
QUICK = SandboxLimits(timeout_seconds=1.0)


def _mode(name: str):
    """A pytest param: a function running (source, limits) in the named mode, or a skip saying why it cannot."""
    isolation = "fallback" if name.startswith("fallback") else name
    try:
        plan = sandbox.resolve_isolation(isolation)
    except SandboxUnavailable as problem:
        return pytest.param(None, id=name, marks=pytest.mark.skip(reason=f"{isolation} cannot run here: {problem}"))
    if name in ("bwrap", "fallback"):
        return pytest.param(lambda source, limits: run_python(source, limits, isolation=isolation), id=name)
    # The fallback without namespaces (what allow_unisolated accepts): reached through the private plan, so that it
    # runs here although the namespaces work.
    plain = sandbox._plan("fallback", "plain", plan.python)
    return pytest.param(lambda source, limits: sandbox._run(plain, source, limits), id=name)


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
    # order is what is checked: limits roomy enough for six interpreters starting at once on a loaded machine
    results = run_many([f"print({n} * {n})" for n in range(6)], SandboxLimits(timeout_seconds=30.0), workers=3)
    assert [result.stdout for result in results] == [f"{n * n}\n" for n in range(6)], [r.status for r in results]


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


# -- escape attempts in three modes ---------------------------------------------------------------------------------

ESCAPE_MODES = ["bwrap", "fallback-root", "fallback-unprivileged"]
ATTEMPTS = ["write-tmp", "write-var-tmp", "write-dev-shm", "write-home", "write-project", "read-other-users-file",
            "read-proc-1-environ", "connect-local-listener", "connect-outside", "fork-500"]
CLEAN_ENVIRONMENT = {"PATH", "HOME", "LANG", "PWD", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                     "LC_CTYPE"}
ESCAPE_LIMITS = SandboxLimits(timeout_seconds=10, max_processes=32)
UNPRIVILEGED_CALLER = SANDBOX_USER_ID
"""The uid that runs the sandbox in the fallback-unprivileged mode (started from the root test process)."""

DRIVER = '''
import json, sys
from rest_mcts.sandbox import SandboxLimits, SandboxUnavailable, run_python
spec = json.load(sys.stdin)
try:
    results = {name: run_python(source, SandboxLimits(**spec["limits"]), isolation=spec["isolation"],
                                allow_unisolated=spec["allow_unisolated"]).to_json()
               for name, source in spec["sources"].items()}
except SandboxUnavailable as problem:
    print(json.dumps({"refused": str(problem)}))
else:
    print(json.dumps({"results": results}))
'''
"""Run in a subprocess by another uid: the escape programs through the public API, one JSON object on stdout."""


def write_attempt(target: Path) -> str:
    return program(f"""
        try:
            with open({str(target)!r}, "x") as handle:
                handle.write("escaped")
            print("wrote", {str(target)!r})
        except OSError as problem:
            print("blocked", type(problem).__name__, problem.strerror)
    """)


def write_targets(home: Path) -> dict[str, Path]:
    """The folder each write attempt writes into."""
    return {"write-tmp": Path("/tmp"), "write-var-tmp": Path("/var/tmp"), "write-dev-shm": Path("/dev/shm"),
            "write-home": home, "write-project": REPO}


def escape_programs(name: str, home: Path, secret: Path, port: int, marker: str) -> dict[str, str]:
    """Each attempt's program: it prints `escaped ...` where it got through (a write: `wrote`, checked on the host
    afterwards, since a write to a private /tmp is allowed), else `blocked` and why."""
    sources = {attempt: write_attempt(folder / name) for attempt, folder in write_targets(home).items()}
    sources["read-other-users-file"] = program(f"""
        try:
            print("escaped", open({str(secret)!r}).read())
        except OSError as problem:
            print("blocked", type(problem).__name__, problem.strerror)
    """)
    sources["read-proc-1-environ"] = program("""
        try:
            data = open("/proc/1/environ", "rb").read()
        except OSError as problem:
            print("blocked", type(problem).__name__, problem.strerror)
        else:
            print("read", sorted(entry.split(b"=")[0].decode() for entry in data.split(b"\\0") if entry))
    """)
    for attempt, address in [("connect-local-listener", ("127.0.0.1", port)), ("connect-outside", ("1.1.1.1", 53))]:
        sources[attempt] = program(f"""
            import socket
            try:
                socket.create_connection({address!r}, timeout=2).close()
                print("escaped: connected to", {address!r})
            except OSError as problem:
                print("blocked", type(problem).__name__, problem.strerror)
        """)
    sources["fork-500"] = program(f"""
        import os
        started = 0
        for attempt in range(500):
            try:
                pid = os.fork()
            except OSError as problem:
                print("blocked", type(problem).__name__, problem.strerror, "after", started, "processes")
                break
            if pid == 0:
                os.execvp("sleep", ["sleep", "{marker}"])
            started += 1
        else:
            print("escaped: started", started, "processes")
    """)
    return sources


@dataclass
class Outcome:
    """What one mode did with the escape programs, and what the host saw afterwards."""

    refused: str | None = None
    results: dict[str, dict] = field(default_factory=dict)
    appeared: list[str] = field(default_factory=list)
    """The attempts whose file appeared on the host."""
    connections: int = 0
    """Connections the test's listener accepted."""
    leftover: list[int] = field(default_factory=list)
    """Processes of the fork attempt alive after the run."""


class EscapeRig:
    """The targets of the escape attempts (a listener, another user's file, an unprivileged caller's HOME) and each
    mode's outcome, computed once per mode."""

    def __init__(self):
        self.name = f"sandbox-escape-{random.randrange(10**9)}"
        self.marker = unique_sleep_argument()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.listener.setblocking(False)
        # Another user's file: the tests run as root in CI, so a root-owned 0600 file in a temporary folder anyone
        # may enter. Where the tests run as another user, /etc/shadow.
        self.secret_folder = Path(tempfile.mkdtemp(prefix="sandbox-secret-", dir="/var/tmp"))
        self.secret_folder.chmod(0o755)
        self.secret = self.secret_folder / "secret.txt"
        self.secret.write_text("hunter2-sandbox-secret")
        self.secret.chmod(0o600)
        if os.geteuid() != 0:
            self.secret = Path("/etc/shadow")
        # The unprivileged caller's HOME and its copy of the sandbox, in a folder it can reach (not pytest's, 0700).
        self.folder = Path(tempfile.mkdtemp(prefix="sandbox-escapes-"))
        self.folder.chmod(0o755)
        self.outcomes: dict[str, Outcome] = {}

    def home(self, mode: str) -> Path:
        return self.folder / "home" if mode == "fallback-unprivileged" and os.geteuid() == 0 else Path.home()

    def outcome(self, mode: str) -> Outcome:
        if mode not in self.outcomes:
            home = self.home(mode)
            sources = escape_programs(self.name, home, self.secret, self.listener.getsockname()[1], self.marker)
            outcome = self._run(mode, sources)
            for attempt, folder in write_targets(home).items():
                if (folder / self.name).exists():
                    outcome.appeared.append(attempt)
                    (folder / self.name).unlink()
            while True:
                try:
                    self.listener.accept()[0].close()
                    outcome.connections += 1
                except BlockingIOError:
                    break
            outcome.leftover = processes_with(self.marker)
            self.outcomes[mode] = outcome
        return self.outcomes[mode]

    def _run(self, mode: str, sources: dict[str, str]) -> Outcome:
        isolation = "bwrap" if mode == "bwrap" else "fallback"
        if mode == "fallback-unprivileged" and os.geteuid() == 0:
            return self._run_unprivileged(sources, isolation="fallback", allow_unisolated=False)
        try:
            return Outcome(results={attempt: run_python(source, ESCAPE_LIMITS, isolation=isolation).to_json()
                                    for attempt, source in sources.items()})
        except SandboxUnavailable as problem:
            return Outcome(refused=str(problem))

    def _run_unprivileged(self, sources: dict[str, str], isolation: str, allow_unisolated: bool,
                          refuse_user_namespaces: bool = False) -> Outcome:
        """The escape programs run by UNPRIVILEGED_CALLER (setpriv) with a HOME of its own, from a copy of the
        sandbox's modules it can read (the checkout may sit in a folder only root may enter)."""
        package = self.folder / "package"
        if not package.exists():
            (package / "rest_mcts").mkdir(parents=True)
            (package / "rest_mcts" / "__init__.py").write_text("")
            for module in ("sandbox.py", "sandbox_process.py", "sandbox_types.py"):
                shutil.copy(REPO / "rest_mcts" / module, package / "rest_mcts" / module)
            (package / "driver.py").write_text(DRIVER)
            for path in [*package.rglob("*"), package]:
                path.chmod(0o755 if path.is_dir() else 0o644)
            home = self.home("fallback-unprivileged")
            home.mkdir(mode=0o700)
            os.chown(home, UNPRIVILEGED_CALLER, UNPRIVILEGED_CALLER)
        spec = {"sources": sources, "limits": {"timeout_seconds": ESCAPE_LIMITS.timeout_seconds,
                                               "max_processes": ESCAPE_LIMITS.max_processes},
                "isolation": isolation, "allow_unisolated": allow_unisolated}
        drop = ["setpriv", f"--reuid={UNPRIVILEGED_CALLER}", f"--regid={UNPRIVILEGED_CALLER}", "--clear-groups", "--"]
        run = run_where_user_namespaces_are_refused if refuse_user_namespaces else subprocess.run
        completed = run([*drop, unprivileged_python(), str(package / "driver.py")], input=json.dumps(spec),
                        capture_output=True, text=True, timeout=120, cwd=package,
                        env={"PATH": f"/usr/sbin:{SYSTEM_PATH}", "LANG": "C.UTF-8", "PYTHONPATH": str(package),
                             "HOME": str(self.home("fallback-unprivileged"))})
        assert completed.returncode == 0, completed.stderr
        report = json.loads(completed.stdout)
        return Outcome(refused=report.get("refused"), results=report.get("results", {}))

    def close(self):
        self.listener.close()
        shutil.rmtree(self.secret_folder, ignore_errors=True)
        shutil.rmtree(self.folder, ignore_errors=True)


def run_where_user_namespaces_are_refused(command: Sequence[str], input: str, **options) -> subprocess.CompletedProcess:
    """`command` run as root of a new user namespace (uids and gids 0-65535 mapped to themselves) whose limit on
    nested user namespaces is 0: a kernel that refuses user namespaces, for these processes only. The maps are
    written from outside (several ids need a privileged writer); the shell inside waits for them, then execs itself
    again to become that namespace's root with its capabilities."""
    options.pop("capture_output")
    timeout = options.pop("timeout")
    become_root = 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"'
    script = f'read -r maps_written && exec /bin/sh -c {shlex.quote(become_root)} refuse-user-namespaces "$@"'
    process = subprocess.Popen(["unshare", "--user", "--", "/bin/sh", "-c", script, "wait-for-maps", *command],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **options)
    own = os.readlink("/proc/self/ns/user")
    deadline = time.monotonic() + 10
    while os.readlink(f"/proc/{process.pid}/ns/user") == own and time.monotonic() < deadline:
        time.sleep(0.005)
    for map_file in ("uid_map", "gid_map"):
        Path(f"/proc/{process.pid}/{map_file}").write_text("0 0 65536\n")
    stdout, stderr = process.communicate("go\n" + input, timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@functools.cache
def unprivileged_python() -> str:
    """An interpreter UNPRIVILEGED_CALLER can run (this one may sit under /root)."""
    for candidate in sandbox._python_candidates(None):
        if subprocess.run(["setpriv", f"--reuid={UNPRIVILEGED_CALLER}", f"--regid={UNPRIVILEGED_CALLER}",
                           "--clear-groups", "--", candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    pytest.fail(f"no Python interpreter uid {UNPRIVILEGED_CALLER} can run")


@pytest.fixture(scope="module")
def escape_rig():
    rig = EscapeRig()
    yield rig
    rig.close()


def skip_a_mode_that_cannot_exist(mode: str) -> None:
    if mode == "bwrap" and not shutil.which("bwrap"):
        pytest.skip("bubblewrap is not installed here (.ci/run installs it)")
    if mode == "fallback-root" and os.geteuid() != 0:
        pytest.skip("the tests do not run as root, so the fallback as root cannot run")


def assert_refused_in_one_line(message: str, *fixes: str) -> None:
    assert "\n" not in message and "allow_unisolated" in message, message
    assert all(fix in message for fix in fixes), message


@pytest.mark.parametrize("attempt", ATTEMPTS)
@pytest.mark.parametrize("mode", ESCAPE_MODES)
def test_no_escape_attempt_gets_through_in_any_mode_or_the_mode_refuses_to_start(escape_rig, mode, attempt):
    skip_a_mode_that_cannot_exist(mode)
    outcome = escape_rig.outcome(mode)
    if outcome.refused is not None:
        if mode == "bwrap":
            assert "\n" not in outcome.refused and "user namespaces" in outcome.refused, outcome.refused
        else:
            assert_refused_in_one_line(outcome.refused)
        return
    result = outcome.results[attempt]
    assert result["status"] == "ok", result
    assert set(ISOLATING) <= set(result["enforced"]), result["not_enforced"]
    report = result["stdout"]
    assert "escaped" not in report, report
    if attempt.startswith("write-"):
        assert attempt not in outcome.appeared, f"{attempt}: the file appeared on the host ({report.strip()})"
        assert report.startswith("blocked") or attempt in ("write-tmp", "write-dev-shm"), report  # private, writable
    elif attempt == "read-proc-1-environ":
        assert report.startswith("blocked") or set(eval(report.split(" ", 1)[1])) <= CLEAN_ENVIRONMENT, report
    else:
        assert report.startswith("blocked"), report
    if attempt == "connect-local-listener":
        assert outcome.connections == 0
    if attempt == "fork-500":
        assert int(report.split(" after ")[1].split()[0]) < ESCAPE_LIMITS.max_processes
        assert outcome.leftover == []


def test_an_unprivileged_caller_without_user_namespaces_is_refused_in_one_line_unless_it_accepts_the_weaker_sandbox(
        escape_rig):
    """User namespaces refused by the kernel (a user namespace whose limit of nested ones is 0): the sandbox run by an
    unprivileged user refuses, naming the fix; accepted, it runs and says what it does not enforce."""
    if os.geteuid() != 0:
        pytest.skip("only root can build a user namespace in which user namespaces are refused")
    sources = {"hello": "print('hello')"}
    refused = escape_rig._run_unprivileged(sources, "auto", allow_unisolated=False, refuse_user_namespaces=True)
    assert refused.refused is not None and refused.results == {}
    assert_refused_in_one_line(refused.refused, "enable unprivileged user namespaces", "bwrap")
    accepted = escape_rig._run_unprivileged(sources, "auto", allow_unisolated=True, refuse_user_namespaces=True)
    result = accepted.results["hello"]
    assert (result["status"], result["stdout"], result["isolation"]) == ("ok", "hello\n", "fallback")
    assert set(ISOLATING) <= set(result["not_enforced"])


def test_without_bubblewrap_and_unshare_the_cli_refuses_in_one_line_naming_what_to_install(tmp_path):
    """A PATH without bwrap and unshare: exit code 3 and one line naming both packages; --allow-unisolated runs the
    program and its result lists the isolation it lacks."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("setpriv", "prlimit"):
        (tools / tool).symlink_to(shutil.which(tool))
    (tmp_path / "hello.py").write_text("print('hello')\n")
    env = {"PATH": str(tools), "PYTHONPATH": str(REPO), "LANG": "C.UTF-8"}
    command = [sys.executable, "-m", "rest_mcts.sandbox", "hello.py"]
    refused = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 3 and refused.stdout == ""
    (line,) = refused.stderr.splitlines()
    assert_refused_in_one_line(line, "install bubblewrap (Debian package bubblewrap)", "unshare is not installed")
    accepted = subprocess.run([*command, "--allow-unisolated"], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=60)
    assert accepted.returncode == 0, accepted.stderr
    report = json.loads(accepted.stdout)
    assert (report["status"], report["stdout"]) == ("ok", "hello\n")
    assert set(ISOLATING) <= set(report["not_enforced"])


def test_run_python_refuses_the_weaker_sandbox_unless_it_is_accepted(monkeypatch):
    """In-process: with no bwrap and no unshare on PATH, run_python raises; allow_unisolated runs the program."""
    tools = Path(tempfile.mkdtemp(prefix="sandbox-tools-"))
    try:
        for tool in ("setpriv", "prlimit"):
            (tools / tool).symlink_to(shutil.which(tool))
        monkeypatch.setenv("PATH", str(tools))
        sandbox.resolve_isolation.cache_clear()
        with pytest.raises(SandboxUnavailable) as refusal:
            run_python("print(1)", QUICK)
        assert_refused_in_one_line(str(refusal.value), "install bubblewrap (Debian package bubblewrap)")
        result = run_python("print(1)", QUICK, allow_unisolated=True)
        assert result.stdout == "1\n" and set(ISOLATING) <= set(result.not_enforced)
    finally:
        sandbox.resolve_isolation.cache_clear()
        shutil.rmtree(tools)
