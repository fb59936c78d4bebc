"""Runs model-written Python programs in an isolated, resource-limited sandbox and reports what happened to them.

It owns isolation (bubblewrap where the machine has it, else a weaker fallback that says what it gives up), the
limits, output capture and the ending of every process a program starts. It knows nothing of tasks or answers:
CoTnPoT-style checks call `run_python` or `run_many` and compare the printed result themselves. The guide is
docs/sandbox.md.

Command line: python -m rest_mcts.sandbox FILE.py [--timeout S] [--memory-mb M] [--max-output-kb K] ...
prints one JSON object (`SandboxResult.to_json`) and exits 0 whatever the program did.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import math
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

SANDBOX_USER_ID = 65534
"""The unprivileged user (nobody) and group (nogroup) a program runs as when the caller is root."""
SANDBOX_GROUP_ID = 65534
STATUSES = ("ok", "error", "timeout", "memory", "output_limit", "killed")
PROTECTIONS = ("unprivileged-user", "pid-namespace", "network-namespace", "ipc-namespace", "read-only-filesystem",
               "private-tmp", "clean-environment", "no-new-privileges", "dies-with-caller", "wall-time-limit",
               "cpu-time-limit", "memory-limit", "process-limit", "file-size-limit", "output-limit")
"""Everything the sandbox can enforce; each result lists which of these were enforced and which were not."""
ISOLATIONS = ("auto", "bwrap", "fallback")
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
DRAIN_SECONDS = 0.25
"""How long output is still read after the program ended (a detached process may hold the pipes open)."""
LAUNCHER_EXIT_SECONDS = 2.0
"""How long bwrap or unshare gets to exit after the PID namespace's init was killed, before it is killed too."""
_MEMORY_ERROR_LINE = re.compile(r"^([\w.]+\.)?\w*MemoryError\b")
_FATAL_MEMORY = re.compile(r"Fatal Python error:.*(MemoryError|out of memory|Cannot allocate memory)")


class SandboxUnavailable(RuntimeError):
    """The requested isolation cannot run on this machine (missing tool, no user namespaces, no usable Python)."""


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one program run."""

    timeout_seconds: float = 10.0
    """Wall-clock limit in seconds, startup included; past it every process of the run is killed (SIGKILL)."""
    cpu_seconds: int | None = None
    """CPU-time limit per process in seconds (RLIMIT_CPU); None: the wall limit rounded up."""
    memory_mb: int = 1024
    """Address-space limit per process in MiB (RLIMIT_AS)."""
    max_processes: int = 64
    """Processes and threads the program may have at once (RLIMIT_NPROC), the sandbox's init included."""
    max_output_kb: int = 1024
    """Cap on each of stdout and stderr in KiB; a program that writes more is killed (status output_limit)."""
    max_file_mb: int = 64
    """Largest file the program may write in MiB (RLIMIT_FSIZE), and the size of bwrap's private /tmp."""

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None and not value > 0:
                raise ValueError(f"SandboxLimits.{field.name} must be positive, got {value!r}")

    @property
    def effective_cpu_seconds(self) -> int:
        return self.cpu_seconds or max(1, math.ceil(self.timeout_seconds))


@dataclass(frozen=True)
class SandboxResult:
    """What happened to one program: its status, output and exactly which protections held."""

    status: str
    """One of STATUSES: ok, error (nonzero exit), timeout (wall or CPU limit), memory, output_limit, killed."""
    exit_code: int | None
    """The program's exit code; None when it died of a signal or was killed by the sandbox."""
    signal: str | None
    """The signal the program died of (e.g. SIGKILL, SIGXCPU), if any."""
    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool
    wall_seconds: float
    isolation: str
    """bwrap or fallback."""
    enforced: tuple[str, ...]
    """The PROTECTIONS that held for this run."""
    not_enforced: tuple[str, ...]
    """The PROTECTIONS that did not (the fallback's gaps)."""
    user_id: int
    """The uid the program ran as, seen from outside the sandbox."""
    python: str
    """The interpreter that ran the program."""
    detail: str
    """One line saying why the run ended as it did."""

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class IsolationPlan:
    """How programs are launched on this machine, and what that enforces: found once per process by
    `resolve_isolation`."""

    isolation: str
    launcher: str
    """bwrap, unshare (fallback with namespaces) or plain (fallback without)."""
    python: str
    drop_user: bool
    """Launch as SANDBOX_USER_ID (the caller is root)."""
    enforced: tuple[str, ...]

    @property
    def owns_pid_namespace(self) -> bool:
        return self.launcher in ("bwrap", "unshare")


def run_python(source: str, limits: SandboxLimits = SandboxLimits(), *, isolation: str = "auto",
               python: str | None = None) -> SandboxResult:
    """Run one Python program (its source text) in a fresh sandbox and return what happened.

    isolation: auto (bwrap, else the fallback), bwrap or fallback; python: the interpreter (default: this one if
    the sandbox user can run it, else /usr/bin/python3). Raises SandboxUnavailable if the isolation cannot run.
    """
    return _run(resolve_isolation(isolation, python), source, limits)


def run_many(sources: Sequence[str], limits: SandboxLimits = SandboxLimits(), *, workers: int = 4,
             isolation: str = "auto", python: str | None = None) -> list[SandboxResult]:
    """Run many programs, `workers` sandboxes at a time, and return their results in the order of `sources`.

    Each sandbox may use up to `limits.memory_mb` per process, so size `workers` to the machine's memory.
    """
    plan = resolve_isolation(isolation, python)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="sandbox") as pool:
        return list(pool.map(lambda source: _run(plan, source, limits), sources))


@functools.cache
def resolve_isolation(isolation: str = "auto", python: str | None = None) -> IsolationPlan:
    """The launch plan for `isolation` (auto, bwrap or fallback), probed once per process by running a tiny program
    in it. Raises SandboxUnavailable naming what is missing."""
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation must be one of {ISOLATIONS}, got {isolation!r}")
    if isolation == "auto":
        try:
            return resolve_isolation("bwrap", python)
        except SandboxUnavailable as bwrap_problem:
            try:
                plan = resolve_isolation("fallback", python)
            except SandboxUnavailable as fallback_problem:
                raise SandboxUnavailable(f"bwrap: {bwrap_problem}; fallback: {fallback_problem}") from None
            logger.warning("Sandbox: bubblewrap is unavailable (%s); using the fallback, which does not enforce: %s",
                           bwrap_problem, ", ".join(_not_enforced(plan)))
            return plan
    problems = []
    for launcher in _launchers(isolation):
        for interpreter in _python_candidates(python):
            plan = _plan(isolation, launcher, interpreter)
            result = _run(plan, "print('sandbox probe')", SandboxLimits(timeout_seconds=20))
            if result.status == "ok" and result.stdout == "sandbox probe\n":
                logger.info("Sandbox: %s (%s) with %s", isolation, launcher, interpreter)
                return plan
            problems.append(f"{launcher} with {interpreter}: {result.status}, {result.detail}")
        if launcher != "plain":
            logger.info("Sandbox: %s cannot run here: %s", launcher, "; ".join(problems))
    raise SandboxUnavailable("; ".join(problems))


def _launchers(isolation: str) -> list[str]:
    """The launchers to try for an isolation, strongest first; raises SandboxUnavailable if a tool is missing."""
    if not shutil.which("prlimit"):
        raise SandboxUnavailable("prlimit (util-linux) is not installed: no way to set the resource limits")
    if isolation == "bwrap":
        if not shutil.which("bwrap"):
            raise SandboxUnavailable("bwrap is not installed (Debian package bubblewrap)")
        return ["bwrap"]
    if not shutil.which("setpriv"):
        raise SandboxUnavailable("setpriv (util-linux) is not installed")
    return (["unshare"] if os.geteuid() == 0 and shutil.which("unshare") else []) + ["plain"]


def _python_candidates(python: str | None) -> list[str]:
    if python:
        return [python]
    candidates = [sys.executable, "/usr/bin/python3", shutil.which("python3", path=SYSTEM_PATH)]
    unique = []
    for candidate in candidates:
        if candidate and candidate not in unique and os.path.exists(candidate):
            unique.append(candidate)
    return unique


def _plan(isolation: str, launcher: str, python: str) -> IsolationPlan:
    drop_user = os.geteuid() == 0
    enforced = {"clean-environment", "no-new-privileges", "dies-with-caller", "wall-time-limit", "cpu-time-limit",
                "memory-limit", "file-size-limit", "output-limit"}
    if drop_user:
        enforced.add("unprivileged-user")
    if launcher in ("bwrap", "unshare"):
        enforced |= {"pid-namespace", "network-namespace", "ipc-namespace"}
    if launcher == "bwrap":
        enforced |= {"read-only-filesystem", "private-tmp"}
    # Without a user namespace RLIMIT_NPROC counts every process of the uid; for a non-root caller that is the
    # caller's own processes, so the limit is left off rather than made to fail at random.
    if launcher == "bwrap" or drop_user:
        enforced.add("process-limit")
    return IsolationPlan(isolation, launcher, python, drop_user, tuple(p for p in PROTECTIONS if p in enforced))


def _not_enforced(plan: IsolationPlan) -> tuple[str, ...]:
    return tuple(p for p in PROTECTIONS if p not in plan.enforced)


def _environment(workdir: str) -> dict[str, str]:
    """The program's whole environment: nothing of the caller's. One thread for BLAS/OpenMP pools, whose per-thread
    buffers would otherwise run into the address-space and process limits."""
    return {"PATH": SYSTEM_PATH, "HOME": workdir, "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _command(plan: IsolationPlan, workdir: str, program: str, limits: SandboxLimits) -> list[str]:
    limit_flags = [f"--as={limits.memory_mb * 2**20}", f"--cpu={limits.effective_cpu_seconds}:"
                   f"{limits.effective_cpu_seconds + 1}", f"--fsize={limits.max_file_mb * 2**20}", "--core=0"]
    if "process-limit" in plan.enforced:
        limit_flags.append(f"--nproc={limits.max_processes}")
    interpreter = [plan.python, "-B", "-u", program]
    # In a PID namespace a shell is init, the program its child: the program keeps ordinary signal handling (init
    # ignores SIGXCPU and SIGTERM), and `; exit $?` keeps the shell from exec-ing the program in its place.
    init = ["/bin/sh", "-c", '"$@"; exit $?', "sandbox-init"]
    if plan.launcher == "bwrap":
        # bwrap runs as the sandbox user outside too (Popen's user=): started by root it would map the program onto
        # uid 0, the owner of every root-owned file. --as-pid-1 (our shell instead of bwrap's init) makes bwrap
        # exit only once it has reaped init, that is once the namespace is empty; with its own init it exits
        # earlier and leaves that init a zombie for the machine's init to reap.
        return ["bwrap", "--unshare-all", "--as-pid-1", "--die-with-parent", "--new-session", "--ro-bind", "/", "/",
                "--proc", "/proc", "--dev", "/dev", "--size", str(limits.max_file_mb * 2**20), "--tmpfs", "/tmp",
                "--bind", workdir, workdir, "--chdir", workdir, "--hostname", "sandbox",
                "--", "prlimit", *limit_flags, "--", *init, *interpreter]
    if plan.launcher == "unshare":
        return ["setpriv", "--pdeathsig", "KILL", "--", "unshare", "--net", "--pid", "--ipc", "--uts", "--fork",
                "--kill-child", "--mount-proc", "--", "setpriv", f"--reuid={SANDBOX_USER_ID}",
                f"--regid={SANDBOX_GROUP_ID}", "--clear-groups", "--no-new-privs", "--pdeathsig", "KILL", "--",
                "prlimit", *limit_flags,
                "--", *init, *interpreter]
    return ["setpriv", "--pdeathsig", "KILL", "--no-new-privs", "--", "prlimit", *limit_flags, "--", *interpreter]


@dataclass
class _Capture:
    stdout: bytearray = dataclasses.field(default_factory=bytearray)
    stderr: bytearray = dataclasses.field(default_factory=bytearray)
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    stop_reason: str | None = None
    """timeout or output_limit when the sandbox ended the run."""


def _run(plan: IsolationPlan, source: str, limits: SandboxLimits) -> SandboxResult:
    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="rest-mcts-sandbox-")
    try:
        program = os.path.join(workdir, "program.py")
        Path(program).write_text(source, encoding="utf-8")
        os.chmod(program, 0o644)
        if plan.drop_user:
            os.chown(workdir, SANDBOX_USER_ID, SANDBOX_GROUP_ID)
        # The unshare launcher needs root to make its namespaces; setpriv drops to the sandbox user inside them.
        as_sandbox_user = plan.drop_user and plan.launcher != "unshare"
        user = dict(user=SANDBOX_USER_ID, group=SANDBOX_GROUP_ID, extra_groups=[]) if as_sandbox_user else {}
        process = subprocess.Popen(_command(plan, workdir, program, limits), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=workdir,
                                   env=_environment(workdir), start_new_session=True, **user)
        capture = _supervise(process, plan, limits, deadline=started + limits.timeout_seconds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _result(plan, limits, process.returncode, capture, time.monotonic() - started)


def _supervise(process: subprocess.Popen, plan: IsolationPlan, limits: SandboxLimits, deadline: float) -> _Capture:
    """Read stdout and stderr (each capped) until the program ends, the deadline passes or the cap is hit; then end
    every process of the run and reap the launcher. The parent never holds more than the caps."""
    capture = _Capture()
    cap = limits.max_output_kb * 1024
    streams = {process.stdout.fileno(): "stdout", process.stderr.fileno(): "stderr"}
    selector = selectors.DefaultSelector()
    for descriptor in streams:
        os.set_blocking(descriptor, False)
        selector.register(descriptor, selectors.EVENT_READ)
    exit_notice = _open_pidfd(process.pid)
    if exit_notice is not None:
        selector.register(exit_notice, selectors.EVENT_READ)
    exited_at = None
    try:
        while capture.stop_reason is None:
            now = time.monotonic()
            if exited_at is None and exit_notice is None and _has_exited(process.pid):
                exited_at = now
            open_streams = [d for d in streams if d in selector.get_map()]
            if exited_at is not None and (not open_streams or now >= exited_at + DRAIN_SECONDS):
                break
            if exited_at is None and now >= deadline:
                capture.stop_reason = "timeout"
                break
            wait = exited_at + DRAIN_SECONDS - now if exited_at is not None else deadline - now
            if exit_notice is None and exited_at is None:
                wait = min(wait, 0.02)
            for key, _ in selector.select(max(wait, 0.0)):
                if key.fd == exit_notice:
                    selector.unregister(exit_notice)
                    exited_at = time.monotonic()
                    continue
                chunk = os.read(key.fd, 65536)
                if chunk:
                    _keep_within_cap(capture, streams[key.fd], chunk, cap)
                else:
                    selector.unregister(key.fd)
    finally:
        # Close the pipes first: a launcher still writing to them must not block on a reader that stopped reading.
        selector.close()
        process.stdout.close()
        process.stderr.close()
        _end_everything(process, plan, exited=exited_at is not None, exit_notice=exit_notice)
        if exit_notice is not None:
            os.close(exit_notice)
        process.wait()
    return capture


def _keep_within_cap(capture: _Capture, stream: str, chunk: bytes, cap: int) -> None:
    """Add what fits of `chunk` to the stream's buffer; past the cap, mark it truncated and the run to be stopped."""
    buffer = getattr(capture, stream)
    room = cap - len(buffer)
    buffer += chunk[:room]
    if len(chunk) > room:
        setattr(capture, f"{stream}_truncated", True)
        capture.stop_reason = "output_limit"


def _open_pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when the process exits (Linux 5.3+), else None (then it is polled)."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _has_exited(pid: int) -> bool:
    """Whether the process has exited, without reaping it (its pid stays ours to signal)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _end_everything(process: subprocess.Popen, plan: IsolationPlan, exited: bool, exit_notice: int | None) -> None:
    """SIGKILL every process of the run before the launcher is reaped (so no pid is reused under us).

    With a PID namespace, killing its init (the launcher's child) makes the kernel kill everything in it, detached
    processes included, and the launcher then exits by itself. Without one, the process group is killed, which
    misses processes that left it (setsid)."""
    if plan.owns_pid_namespace and not exited:
        for child in _child_pids(process.pid):
            _kill(child)
        if not _wait_for_exit(process.pid, exit_notice, LAUNCHER_EXIT_SECONDS):
            logger.warning("Sandbox: %s did not exit after its namespace was killed; killing it", plan.launcher)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return
    if not plan.owns_pid_namespace:
        _wait_until_dead(process.pid, seconds=LAUNCHER_EXIT_SECONDS)


def _wait_until_dead(process_group: int, seconds: float) -> None:
    """Wait until no process of the group is still running (SIGKILL is delivered asynchronously), so that the run
    is over when its result is returned."""
    deadline = time.monotonic() + seconds
    while any(state != "Z" for state in _group_states(process_group)) and time.monotonic() < deadline:
        time.sleep(0.005)


def _group_states(process_group: int) -> list[str]:
    """The states (R, S, Z, ...) of the processes in a process group, from /proc."""
    states = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields_after_name = _stat_fields(entry.name)
            if fields_after_name and int(fields_after_name[2]) == process_group:
                states.append(fields_after_name[0])
    return states


def _stat_fields(pid: str) -> list[str]:
    """The fields of /proc/PID/stat after the command name: state, ppid, pgrp, ...; empty if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _wait_for_exit(pid: int, exit_notice: int | None, seconds: float) -> bool:
    if exit_notice is not None:
        with selectors.DefaultSelector() as selector:
            selector.register(exit_notice, selectors.EVENT_READ)
            return bool(selector.select(seconds))
    deadline = time.monotonic() + seconds
    while not _has_exited(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def _child_pids(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    return [int(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and _stat_fields(entry.name)[1:2] == [str(pid)]]


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _result(plan: IsolationPlan, limits: SandboxLimits, returncode: int, capture: _Capture,
            wall_seconds: float) -> SandboxResult:
    signal_number = None
    if capture.stop_reason:
        signal_number = signal.SIGKILL  # what the sandbox sent; the launcher may report a knock-on signal
    elif returncode < 0:
        signal_number = -returncode
    elif plan.owns_pid_namespace and 128 < returncode <= 128 + signal.NSIG:
        # bwrap's init and the fallback's shell report a program killed by signal N as exit code 128 + N.
        signal_number = returncode - 128
    stdout = capture.stdout.decode("utf-8", errors="replace")
    stderr = capture.stderr.decode("utf-8", errors="replace")
    signal_name = _signal_name(signal_number) if signal_number else None
    exit_code = None if signal_number or capture.stop_reason else returncode
    status, detail = _classify(capture, limits, exit_code, signal_name, stderr)
    return SandboxResult(status=status, exit_code=exit_code, signal=signal_name, stdout=stdout, stderr=stderr,
                         stdout_truncated=capture.stdout_truncated, stderr_truncated=capture.stderr_truncated,
                         wall_seconds=round(wall_seconds, 4), isolation=plan.isolation, enforced=plan.enforced,
                         not_enforced=_not_enforced(plan),
                         user_id=SANDBOX_USER_ID if plan.drop_user else os.geteuid(), python=plan.python,
                         detail=detail)


def _classify(capture: _Capture, limits: SandboxLimits, exit_code: int | None, signal_name: str | None,
              stderr: str) -> tuple[str, str]:
    if capture.stop_reason == "timeout":
        return "timeout", f"wall-time limit of {limits.timeout_seconds:g} s passed; every process was killed"
    if capture.stop_reason == "output_limit":
        stream = "stdout" if capture.stdout_truncated else "stderr"
        return "output_limit", f"{stream} passed {limits.max_output_kb} KiB; every process was killed"
    if exit_code == 0:
        return "ok", "exited with code 0"
    if signal_name == "SIGXCPU":
        return "timeout", f"CPU-time limit of {limits.effective_cpu_seconds} s passed (SIGXCPU)"
    if _died_of_memory(stderr):
        return "memory", f"ran out of its {limits.memory_mb} MiB address space (MemoryError)"
    if signal_name:
        return "killed", f"died of {signal_name}"
    last_line = next((line for line in reversed(stderr.splitlines()) if line.strip()), "")
    return "error", f"exited with code {exit_code}" + (f": {last_line.strip()[:200]}" if last_line else "")


def _died_of_memory(stderr: str) -> bool:
    """A MemoryError (or subclass, e.g. numpy's _ArrayMemoryError) ended the traceback, or the interpreter died of
    a fatal out-of-memory error."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return bool(lines and _MEMORY_ERROR_LINE.match(lines[-1])) or bool(_FATAL_MEMORY.search(stderr))


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _positive(kind: type, expected: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return parse


def _parser() -> argparse.ArgumentParser:
    defaults = SandboxLimits()
    parser = argparse.ArgumentParser(prog="python -m rest_mcts.sandbox", description="Run a Python file in the "
                                     "sandbox and print one JSON object saying what happened (docs/sandbox.md).")
    parser.add_argument("file", metavar="FILE.py", help="The Python program to run.")
    parser.add_argument("--timeout", type=_positive(float, "a positive number of seconds"),
                        default=defaults.timeout_seconds, help="Wall-clock limit in seconds (default %(default)s).")
    parser.add_argument("--cpu-seconds", type=_positive(int, "a positive whole number of seconds"), default=None,
                        help="CPU-time limit per process (default: the timeout rounded up).")
    parser.add_argument("--memory-mb", type=_positive(int, "a positive whole number of MiB"),
                        default=defaults.memory_mb, help="Address-space limit per process (default %(default)s).")
    parser.add_argument("--max-processes", type=_positive(int, "a positive whole number"),
                        default=defaults.max_processes, help="Processes and threads at once (default %(default)s).")
    parser.add_argument("--max-output-kb", type=_positive(int, "a positive whole number of KiB"),
                        default=defaults.max_output_kb, help="Cap on each of stdout and stderr (default %(default)s).")
    parser.add_argument("--max-file-mb", type=_positive(int, "a positive whole number of MiB"),
                        default=defaults.max_file_mb, help="Largest file it may write (default %(default)s).")
    parser.add_argument("--isolation", choices=ISOLATIONS, default="auto",
                        help="bwrap, the fallback, or auto: bwrap where it runs (default).")
    parser.add_argument("--python", default=None, help="Interpreter to run the program with (default: this one "
                        "if the sandbox user can run it, else /usr/bin/python3).")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    path = Path(args.file)
    if not path.is_file():
        parser.error(f"FILE.py {args.file}: no such file; expected the path of a Python program to run")
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as problem:
        parser.error(f"FILE.py {args.file}: cannot be read as UTF-8 text ({problem})")
    if args.python and not (os.path.isfile(args.python) and os.access(args.python, os.X_OK)):
        parser.error(f"--python {args.python}: not an executable file; expected a Python interpreter")
    limits = SandboxLimits(timeout_seconds=args.timeout, cpu_seconds=args.cpu_seconds, memory_mb=args.memory_mb,
                           max_processes=args.max_processes, max_output_kb=args.max_output_kb,
                           max_file_mb=args.max_file_mb)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        result = run_python(source, limits, isolation=args.isolation, python=args.python)
    except SandboxUnavailable as problem:
        print(f"sandbox: --isolation {args.isolation} cannot run on this machine: {problem}", file=sys.stderr)
        return 3
    print(json.dumps(result.to_json()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
