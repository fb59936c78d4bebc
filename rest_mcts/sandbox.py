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
import functools
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rest_mcts.sandbox_process import supervise
from rest_mcts.sandbox_types import (
    ISOLATIONS,
    PROTECTIONS,
    SANDBOX_GROUP_ID,
    SANDBOX_USER_ID,
    SYSTEM_PATH,
    IsolationPlan,
    SandboxLimits,
    SandboxResult,
    SandboxUnavailable,
    not_enforced,
    sandbox_result,
)

logger = logging.getLogger(__name__)

DEFAULT_LIMITS = SandboxLimits()
"""The limits a program runs under unless the caller gives its own."""


def run_python(source: str, limits: SandboxLimits = DEFAULT_LIMITS, *, isolation: str = "auto",
               python: str | None = None) -> SandboxResult:
    """Run one Python program (its source text) in a fresh sandbox and return what happened.

    isolation: auto (bwrap, else the fallback), bwrap or fallback; python: the interpreter (default: this one if
    the sandbox user can run it, else /usr/bin/python3). Raises SandboxUnavailable if the isolation cannot run.
    """
    return _run(resolve_isolation(isolation, python), source, limits)


def run_many(sources: Sequence[str], limits: SandboxLimits = DEFAULT_LIMITS, *, workers: int = 4,
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
                           bwrap_problem, ", ".join(not_enforced(plan)))
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
        capture = supervise(process, plan, limits, deadline=started + limits.timeout_seconds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return sandbox_result(plan, limits, process.returncode, capture, time.monotonic() - started)


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
