"""The supervision of a sandboxed program's processes: its output read within the caps until it ends, the deadline
passes or a cap is hit, then every process it started ended and the launcher reaped."""

from __future__ import annotations

import logging
import os
import selectors
import signal
import subprocess
import time
from pathlib import Path

from rest_mcts.sandbox_types import DRAIN_SECONDS, LAUNCHER_EXIT_SECONDS, Capture, IsolationPlan, SandboxLimits

logger = logging.getLogger("rest_mcts.sandbox")


def supervise(process: subprocess.Popen, plan: IsolationPlan, limits: SandboxLimits, deadline: float) -> Capture:
    """Read stdout and stderr (each capped) until the program ends, the deadline passes or the cap is hit; then end
    every process of the run and reap the launcher. The parent never holds more than the caps."""
    capture = Capture()
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


def _keep_within_cap(capture: Capture, stream: str, chunk: bytes, cap: int) -> None:
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
