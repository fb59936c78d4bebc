"""What the sandbox promises and reports: its limits (`SandboxLimits`), the isolation a run gets (`IsolationPlan`),
and the result of a program (`SandboxResult`), classified from its exit, its signal and what it printed."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import signal
from dataclasses import dataclass

SANDBOX_USER_ID = 65534
"""The unprivileged user (nobody) and group (nogroup) a program runs as when the caller is root."""


SANDBOX_GROUP_ID = 65534


STATUSES = ("ok", "error", "timeout", "memory", "output_limit", "killed")


PROTECTIONS = ("unprivileged-user", "pid-namespace", "network-namespace", "ipc-namespace", "read-only-filesystem",
               "private-tmp", "clean-environment", "no-new-privileges", "dies-with-caller", "wall-time-limit",
               "cpu-time-limit", "memory-limit", "process-limit", "file-size-limit", "output-limit")
"""Everything the sandbox can enforce; each result lists which of these were enforced and which were not."""


ISOLATING = ("pid-namespace", "network-namespace", "read-only-filesystem", "private-tmp")
"""The protections that isolate a program from the machine: without all of them the sandbox refuses to run model-written
code unless the caller accepts the weaker sandbox (`allow_unisolated`)."""


ISOLATIONS = ("auto", "bwrap", "fallback")


SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


DRAIN_SECONDS = 0.25
"""How long output is still read after the program ended (a detached process may hold the pipes open)."""


LAUNCHER_EXIT_SECONDS = 2.0
"""How long bwrap or unshare gets to exit after the PID namespace's init was killed, before it is killed too."""


_MEMORY_ERROR_LINE = re.compile(r"^([\w.]+\.)?\w*MemoryError\b")


_FATAL_MEMORY = re.compile(r"Fatal Python error:.*(MemoryError|out of memory|Cannot allocate memory)")


class SandboxUnavailable(RuntimeError):
    """The requested isolation cannot run on this machine (missing tool, no user namespaces, no usable Python), or
    only a sandbox without the ISOLATING protections can and the caller did not accept it. The message is one line
    naming what is missing and how to get it."""


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
    """bwrap; unshare (the fallback run by root: namespaces and a read-only root, then the sandbox user),
    unshare-user (the fallback run by another user: the same inside a user namespace) or plain (the fallback
    without namespaces, only when the caller accepts it)."""
    python: str
    drop_user: bool
    """Launch as SANDBOX_USER_ID (the caller is root)."""
    enforced: tuple[str, ...]

    @property
    def owns_pid_namespace(self) -> bool:
        return self.launcher in ("bwrap", "unshare", "unshare-user")

    @property
    def isolated(self) -> bool:
        """Whether every ISOLATING protection holds."""
        return all(protection in self.enforced for protection in ISOLATING)


def not_enforced(plan: IsolationPlan) -> tuple[str, ...]:
    return tuple(p for p in PROTECTIONS if p not in plan.enforced)


@dataclass
class Capture:
    stdout: bytearray = dataclasses.field(default_factory=bytearray)
    stderr: bytearray = dataclasses.field(default_factory=bytearray)
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    stop_reason: str | None = None
    """timeout or output_limit when the sandbox ended the run."""


def sandbox_result(plan: IsolationPlan, limits: SandboxLimits, returncode: int, capture: Capture,
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
                         not_enforced=not_enforced(plan),
                         user_id=SANDBOX_USER_ID if plan.drop_user else os.geteuid(), python=plan.python,
                         detail=detail)


def _classify(capture: Capture, limits: SandboxLimits, exit_code: int | None, signal_name: str | None,
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
