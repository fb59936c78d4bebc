"""Runs model-written Python programs in an isolated, resource-limited sandbox and reports what happened to them.

It owns isolation (bubblewrap where the machine has it, else util-linux's namespaces and a read-only root; where
neither runs it refuses, unless the caller accepts a sandbox that does not isolate), the limits, output capture and the
ending of every process a program starts. It knows nothing of tasks or answers:
CoTnPoT-style checks call `run_python` or `run_many` and compare the printed result themselves. The guide is
docs/sandbox.md.

Command line: python -m rest_mcts.sandbox FILE.py [--timeout S] [--memory-mb M] [--allow-unisolated] ...
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


ACCEPT_UNISOLATED = ("or accept a sandbox that does not isolate the filesystem and network with allow_unisolated=True "
                     "(--allow-unisolated, sandbox.allow_unisolated: true)")


MOUNT_SCRIPT = r"""set -eu
program_path=$PATH
PATH=/usr/sbin:/sbin:$PATH
stage=$1 workdir=$2 tmp_bytes=$3
shift 3
mount --rbind / "$stage"
targets=$(awk -v stage="$stage" '{
    path = ""; rest = $5
    while ((i = index(rest, "\\")) > 0) {
        path = path substr(rest, 1, i - 1) sprintf("%c", substr(rest, i + 1, 1) * 64 + substr(rest, i + 2, 1) * 8 \
            + substr(rest, i + 3, 1))
        rest = substr(rest, i + 4)
    }
    path = path rest
    if (path == stage || index(path, stage "/") == 1) print path
}' /proc/self/mountinfo)
set -f
IFS='
'
for target in $targets; do mount -o remount,bind,ro "$target"; done
unset IFS
set +f
for private in /tmp /dev/shm; do
    mount -t tmpfs -o "mode=1777,size=$tmp_bytes,nosuid,nodev" sandbox-private "$stage$private"
done
for hidden do
    [ "$hidden" = -- ] && break
    mount -t tmpfs -o mode=0755,size=16k,nosuid,nodev sandbox-hidden "$stage$hidden"
done
mkdir -p "$stage$workdir"
mount --bind "$workdir" "$stage$workdir"
while [ "$1" != -- ]; do mount -o remount,bind,ro "$stage$1"; shift; done
shift
mount -t proc -o nosuid,nodev,noexec proc "$stage/proc"
cd "$stage"
pivot_root . .
umount -l .
cd "$workdir"
unset OLDPWD
PATH=$program_path
exec "$@"
"""
"""The fallback's filesystem, built as (user-namespace) root inside new mount and PID namespaces, then entered: the
machine's root bound at the stage folder, every mount of it read-only (mountinfo's octal escapes decoded); new
tmpfs over /tmp and /dev/shm (private, writable, --max-file-mb each) and empty read-only ones over the hidden
folders (the arguments up to `--`); the work folder bound writable; a /proc of the new PID namespace; then
pivot_root into it, the machine's root detached, and the command after `--` run in the work folder."""


def run_python(source: str, limits: SandboxLimits = DEFAULT_LIMITS, *, isolation: str = "auto",
               python: str | None = None, allow_unisolated: bool = False) -> SandboxResult:
    """Run one Python program (its source text) in a fresh sandbox and return what happened.

    isolation: auto (bwrap, else the fallback), bwrap or fallback; python: the interpreter (default: this one if
    the sandbox user can run it, else /usr/bin/python3); allow_unisolated: where no sandbox isolates the filesystem
    and network, run in one that does not (its result's not_enforced says so) instead of refusing. Raises
    SandboxUnavailable if the isolation cannot run.
    """
    return _run(resolve_isolation(isolation, python, allow_unisolated), source, limits)


def run_many(sources: Sequence[str], limits: SandboxLimits = DEFAULT_LIMITS, *, workers: int = 4,
             isolation: str = "auto", python: str | None = None,
             allow_unisolated: bool = False) -> list[SandboxResult]:
    """Run many programs, `workers` sandboxes at a time, and return their results in the order of `sources`.

    Each sandbox may use up to `limits.memory_mb` per process, so size `workers` to the machine's memory.
    """
    plan = resolve_isolation(isolation, python, allow_unisolated)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="sandbox") as pool:
        return list(pool.map(lambda source: _run(plan, source, limits), sources))


@functools.cache
def resolve_isolation(isolation: str = "auto", python: str | None = None,
                      allow_unisolated: bool = False) -> IsolationPlan:
    """The launch plan for `isolation` (auto, bwrap or fallback), probed once per process by running a tiny program
    in it. Where only a sandbox without the ISOLATING protections runs, it is used only with `allow_unisolated`.
    Raises SandboxUnavailable, one line naming what is missing and how to get it."""
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation must be one of {ISOLATIONS}, got {isolation!r}")
    if isolation == "auto":
        try:
            return resolve_isolation("bwrap", python)
        except SandboxUnavailable as bwrap_problem:
            try:
                plan = resolve_isolation("fallback", python, allow_unisolated)
            except SandboxUnavailable as fallback_problem:
                raise SandboxUnavailable(f"no sandbox here isolates the filesystem and network: {bwrap_problem}; "
                                         f"the fallback: {fallback_problem}") from None
            logger.warning("Sandbox: bubblewrap is unavailable (%s); using the fallback (%s), not enforced: %s",
                           bwrap_problem, plan.launcher, ", ".join(not_enforced(plan)) or "nothing")
            return plan
    if not shutil.which("prlimit"):
        raise SandboxUnavailable("prlimit is not installed (Debian package util-linux): no way to set the limits")
    if isolation == "bwrap":
        if not shutil.which("bwrap"):
            raise SandboxUnavailable("bwrap is not installed: install bubblewrap (Debian package bubblewrap)")
        plan = _working_plan("bwrap", "bwrap", python)
        if isinstance(plan, str):
            raise SandboxUnavailable(f"bwrap fails here ({plan}); it needs unprivileged user namespaces: enable "
                                     "them (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0)")
        return plan
    if not shutil.which("setpriv"):
        raise SandboxUnavailable("setpriv is not installed (Debian package util-linux)")
    launcher = "unshare" if os.geteuid() == 0 else "unshare-user"
    if not shutil.which("unshare"):
        problem = "unshare is not installed: install it (Debian package util-linux)"
    else:
        plan = _working_plan("fallback", launcher, python)
        if not isinstance(plan, str):
            return plan
        problem = (f"root cannot make namespaces and mounts here ({plan}); a container needs CAP_SYS_ADMIN"
                   if launcher == "unshare" else
                   f"unshare cannot make a user namespace here ({plan}); enable unprivileged user namespaces "
                   "(sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0)")
    if not allow_unisolated:
        raise SandboxUnavailable(f"{problem}; {ACCEPT_UNISOLATED}")
    plan = _working_plan("fallback", "plain", python)
    if isinstance(plan, str):
        raise SandboxUnavailable(f"{problem}; and without namespaces: {plan}")
    logger.warning("Sandbox: %s; running model-written code without isolation as allowed (not enforced: %s)",
                   problem, ", ".join(not_enforced(plan)))
    return plan


PROBE = "import os\nprint('sandbox probe', bool(os.statvfs('/').f_flag & os.ST_RDONLY))"
"""The probe program: it runs, and says whether the root it sees is read-only (which a plan that promises a read-only
filesystem must show)."""


@functools.cache
def _working_plan(isolation: str, launcher: str, python: str | None) -> IsolationPlan | str:
    """The plan of the first interpreter that runs the probe under `launcher` and sees the filesystem the plan
    promises, or a line saying why none does."""
    problems = []
    for interpreter in _python_candidates(python):
        plan = _plan(isolation, launcher, interpreter)
        result = _run(plan, PROBE, SandboxLimits(timeout_seconds=20))
        accepted = ["sandbox probe True\n"] + ([] if "read-only-filesystem" in plan.enforced else
                                               ["sandbox probe False\n"])
        if result.status == "ok" and result.stdout in accepted:
            logger.info("Sandbox: %s (%s) with %s", isolation, launcher, interpreter)
            return plan
        problems.append(f"{launcher} with {interpreter}: {result.status}, {result.detail}"
                        + (f", printed {result.stdout.strip()!r}" if result.status == "ok" else ""))
    logger.info("Sandbox: %s cannot run here: %s", launcher, "; ".join(problems))
    return "; ".join(problems) or f"no Python interpreter found for {launcher}"


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
    if launcher != "plain":
        enforced |= {"pid-namespace", "network-namespace", "ipc-namespace", "read-only-filesystem", "private-tmp"}
    # In a user namespace (bwrap, unshare-user) RLIMIT_NPROC counts that namespace's processes; without one it
    # counts every process of the uid, for a non-root caller the caller's own, so there it is left off rather than
    # made to fail at random.
    if launcher != "plain" or drop_user:
        enforced.add("process-limit")
    return IsolationPlan(isolation, launcher, python, drop_user, tuple(p for p in PROTECTIONS if p in enforced))


def _environment(workdir: str) -> dict[str, str]:
    """The program's whole environment: nothing of the caller's. One thread for BLAS/OpenMP pools, whose per-thread
    buffers would otherwise run into the address-space and process limits."""
    return {"PATH": SYSTEM_PATH, "HOME": workdir, "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _hidden_folders() -> list[str]:
    """The folders replaced by empty read-only ones: /var/tmp and the home folders (/home, /root, the caller's
    $HOME), as real paths, each once, none inside another or inside the private /tmp and /dev/shm."""
    kept: list[str] = []
    for candidate in ("/var/tmp", "/home", "/root", os.path.expanduser("~")):
        path = os.path.realpath(candidate)
        if path == "/" or not os.path.isdir(path):
            continue
        if any(path == other or path.startswith(other.rstrip("/") + "/") for other in (*kept, "/tmp", "/dev/shm")):
            continue
        kept = [other for other in kept if not other.startswith(path + "/")] + [path]
    return kept


def _command(plan: IsolationPlan, workdir: str, program: str, limits: SandboxLimits, stage: str | None) -> list[str]:
    limit_flags = [f"--as={limits.memory_mb * 2**20}", f"--cpu={limits.effective_cpu_seconds}:"
                   f"{limits.effective_cpu_seconds + 1}", f"--fsize={limits.max_file_mb * 2**20}", "--core=0"]
    if "process-limit" in plan.enforced:
        limit_flags.append(f"--nproc={limits.max_processes}")
    interpreter = [plan.python, "-B", "-u", program]
    # In a PID namespace a shell is init, the program its child: the program keeps ordinary signal handling (init
    # ignores SIGXCPU and SIGTERM), and `; exit $?` keeps the shell from exec-ing the program in its place.
    init = ["/bin/sh", "-c", '"$@"; exit $?', "sandbox-init"]
    tmp_bytes = str(limits.max_file_mb * 2**20)
    hidden = _hidden_folders()
    if plan.launcher == "bwrap":
        # bwrap runs as the sandbox user outside too (Popen's user=): started by root it would map the program onto
        # uid 0, the owner of every root-owned file. --as-pid-1 (our shell instead of bwrap's init) makes bwrap
        # exit only once it has reaped init, that is once the namespace is empty; with its own init it exits
        # earlier and leaves that init a zombie for the machine's init to reap.
        # The hidden folders' tmpfs stay writable until the work folder (which may lie in one) is bound.
        return ["bwrap", "--unshare-all", "--as-pid-1", "--die-with-parent", "--new-session", "--ro-bind", "/", "/",
                "--proc", "/proc", "--dev", "/dev", "--size", tmp_bytes, "--tmpfs", "/tmp",
                *[flag for folder in hidden for flag in ("--tmpfs", folder)],
                "--bind", workdir, workdir, *[flag for folder in hidden for flag in ("--remount-ro", folder)],
                "--chdir", workdir, "--hostname", "sandbox", "--", "prlimit", *limit_flags, "--", *init, *interpreter]
    if plan.launcher in ("unshare", "unshare-user"):
        # As root: the mounts, then setpriv drops to the sandbox user. As another user: a user namespace whose root
        # is the caller makes the mounts, then setpriv drops every capability (the program keeps the caller's uid
        # outside, uid 0 without capabilities inside, unable to undo a mount).
        user_namespace = ["--user", "--map-root-user"] if plan.launcher == "unshare-user" else []
        drop = ([f"--reuid={SANDBOX_USER_ID}", f"--regid={SANDBOX_GROUP_ID}", "--clear-groups"]
                if plan.launcher == "unshare" else ["--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all"])
        return ["setpriv", "--pdeathsig", "KILL", "--", "unshare", *user_namespace, "--mount", "--net", "--pid",
                "--ipc", "--uts", "--fork", "--kill-child", "--", "/bin/sh", "-c", MOUNT_SCRIPT, "sandbox-mounts",
                stage, workdir, tmp_bytes, *hidden, "--", "setpriv", *drop, "--no-new-privs", "--pdeathsig", "KILL",
                "--", "prlimit", *limit_flags, "--", *init, *interpreter]
    return ["setpriv", "--pdeathsig", "KILL", "--no-new-privs", "--", "prlimit", *limit_flags, "--", *interpreter]


def _run(plan: IsolationPlan, source: str, limits: SandboxLimits) -> SandboxResult:
    started = time.monotonic()
    workdir = os.path.realpath(tempfile.mkdtemp(prefix="rest-mcts-sandbox-"))
    # The unshare launchers build the program's root on this empty folder, in their own mount namespace only.
    stage = (os.path.realpath(tempfile.mkdtemp(prefix="rest-mcts-sandbox-root-"))
             if plan.launcher in ("unshare", "unshare-user") else None)
    try:
        program = os.path.join(workdir, "program.py")
        Path(program).write_text(source, encoding="utf-8")
        os.chmod(program, 0o644)
        if plan.drop_user:
            os.chown(workdir, SANDBOX_USER_ID, SANDBOX_GROUP_ID)
        # The unshare launcher needs root to make its namespaces; setpriv drops to the sandbox user inside them.
        as_sandbox_user = plan.drop_user and plan.launcher != "unshare"
        user = dict(user=SANDBOX_USER_ID, group=SANDBOX_GROUP_ID, extra_groups=[]) if as_sandbox_user else {}
        process = subprocess.Popen(_command(plan, workdir, program, limits, stage), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=workdir,
                                   env=_environment(workdir), start_new_session=True, **user)
        capture = supervise(process, plan, limits, deadline=started + limits.timeout_seconds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if stage:
            shutil.rmtree(stage, ignore_errors=True)
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
    parser.add_argument("--allow-unisolated", action="store_true", help="Where no sandbox isolates the filesystem "
                        "and network, run in one that does not (the result's not_enforced says so) instead of "
                        "refusing with exit code 3.")
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
        result = run_python(source, limits, isolation=args.isolation, python=args.python,
                            allow_unisolated=args.allow_unisolated)
    except SandboxUnavailable as problem:
        print(f"error: --isolation {args.isolation} cannot run on this machine: {problem}", file=sys.stderr)
        return 3
    print(json.dumps(result.to_json()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
