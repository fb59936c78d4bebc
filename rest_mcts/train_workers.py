"""DeepSpeed trainer ranks as Ray actors: one actor per rank, started, joined and driven from here.

The only module that imports Ray for training. Rank 0 publishes its node address and a free port,
every rank joins the process group, then each trainer call runs on all ranks at once and the
driver waits with a deadline: a rank that fails or hangs fails the call and takes the group down.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray
import torch

from rest_mcts.placement import Placement, actor_resources
from rest_mcts.ray_metrics import TrainerRankMetrics
from trainers import trainer_for
from trainers.engine import init_distributed, pick_device_and_backend, progress_path
from trainers.spec import TrainResult, TrainSpec

logger = logging.getLogger(__name__)


@ray.remote
class TrainerRank:
    """One DeepSpeed rank: joins the process group once, then trains whatever the group asks, reporting each
    optimizer step and its loss through Ray's metrics (`rest_mcts.ray_metrics`)."""

    def __init__(self, rank: int, world_size: int, num_cpus: float, timeout_s: float, cpu_shm_comm: bool = False):
        pick_device_and_backend()
        # Oversubscribed threads are the classic CPU slowdown: use this actor's share only.
        torch.set_num_threads(max(1, int(num_cpus)))
        self.rank = rank
        self.world_size = world_size
        self.timeout_s = timeout_s
        self.cpu_shm_comm = cpu_shm_comm
        self.last_result: TrainResult | None = None
        self.metrics = TrainerRankMetrics(rank)
        if rank == 0:
            logging.basicConfig(level=logging.INFO)

    def pid(self) -> int:
        """This rank's process id."""
        return os.getpid()

    def listen_for_ranks(self, loopback: bool) -> tuple[str, int]:
        """Open the rendezvous socket of the group (rank 0): bound to 127.0.0.1 when every rank is on this machine
        (`loopback`), else to this node's IP, never to every interface; its address and port. The socket is kept
        and handed to torch's TCPStore, so no other process can take the port in between."""
        address = "127.0.0.1" if loopback else ray.util.get_node_ip_address()
        self._rendezvous = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._rendezvous.bind((address, 0))
        self._rendezvous.listen(self.world_size)
        return address, self._rendezvous.getsockname()[1]

    def init_distributed(self, master_addr: str, master_port: int) -> int:
        listening = getattr(self, "_rendezvous", None)
        # Ray gives each GPU actor its own CUDA_VISIBLE_DEVICES, so the local device is always 0.
        init_distributed(self.rank, self.world_size, master_addr, master_port, 0, self.timeout_s, self.cpu_shm_comm,
                         rendezvous_fd=listening.fileno() if listening is not None else None, own_store=True)
        return self.rank

    def train(self, role: str, model_path: str, examples: Sequence[Any], spec: TrainSpec, out_dir: str,
              label: str = ""):
        """Train the model of `role` (`trainers.trainer_for`) at `model_path` on this rank's shard of `examples`;
        `label` tags the call's metrics (default: the role)."""
        self.last_result = trainer_for(role)(model_path, examples, spec, out_dir, self.rank, self.world_size,
                                             on_step=self.metrics.reporter(label or role))
        return self.last_result

    def parameter_checksum(self) -> float:
        """Sum of this rank's parameters after its last training call (equal on every rank)."""
        if self.last_result is None:
            raise RuntimeError("no training call has finished on this rank yet")
        return self.last_result.parameter_checksum


PROGRESS_POLL_S = 2.0
"""How often the driver reads rank 0's training log while it waits."""


class ProgressTail:
    """Logs the lines rank 0 appended to its training log since the last look (the training progress display)."""

    def __init__(self, path: Path, label: str):
        self.path, self.label, self.offset = path, label, 0

    def show_new_lines(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as handle:
            handle.seek(self.offset)
            for line in handle:
                if not line.endswith("\n"):
                    break
                self.offset += len(line.encode("utf-8"))
                record = json.loads(line)
                logger.info("%s: step %d/%d loss %.4f (%.0f s)", self.label, record["step"], record["total_steps"],
                            record["loss"], record["seconds"])


class TrainerGroup:
    """`world_size` TrainerRank actors named f"{name_prefix}-rank{r}", joined into one process group. With
    `loopback` (a local Ray cluster, one machine) the group's sockets listen on 127.0.0.1 only."""

    def __init__(
        self,
        world_size: int,
        num_cpus_per_rank: float = 1.0,
        num_gpus_per_rank: float = 0.0,
        name_prefix: str = "trainer",
        timeout_s: float = 1800.0,
        cpu_shm_comm: bool = False,
        placement: Placement | None = None,
        loopback: bool = True,
    ):
        self.world_size = world_size
        self.timeout_s = timeout_s
        env_vars = {} if num_gpus_per_rank > 0 else {"DS_ACCELERATOR": "cpu"}
        if loopback and sys.platform == "linux":
            env_vars["GLOO_SOCKET_IFNAME"] = "lo"  # gloo's own connections between the ranks stay on loopback
        self.ranks = [
            TrainerRank.options(
                name=f"{name_prefix}-rank{rank}",
                max_restarts=0,
                runtime_env={"env_vars": env_vars} if env_vars else None,
                **actor_resources(placement, rank, num_cpus_per_rank, num_gpus_per_rank),
            ).remote(rank, world_size, num_cpus_per_rank, timeout_s, cpu_shm_comm)
            for rank in range(world_size)
        ]
        try:
            master_addr, master_port = self._wait([self.ranks[0].listen_for_ranks.remote(loopback)])[0]
            self._wait([actor.init_distributed.remote(master_addr, master_port) for actor in self.ranks])
        except BaseException:
            self.shutdown()
            raise
        logger.info("%d trainer ranks joined at %s:%d", world_size, master_addr, master_port)

    def train(self, role: str, model_path: str | Path, examples: Sequence[Any] | Any, spec: TrainSpec,
              out_dir: str | Path, label: str = "", title: str = "") -> TrainResult:
        """Train the model of `role` ('policy', 'prm', 'verifier': `trainers.trainer_for`) on every rank at once;
        rank 0's result. `examples`: the role's examples (a verifier's: one `trainers.verifier.VerifierData`). The
        checkpoint goes to `out_dir`; `label` names the Ray tasks and tags the ranks' metrics; `title` heads the
        console's progress lines (default: train <role>)."""
        if not self.ranks:
            raise RuntimeError("this trainer group was shut down")
        # one copy in the object store, shared by the ranks (a verifier's data is one record, not a list)
        examples_ref = ray.put(examples if not isinstance(examples, (list, tuple)) else list(examples))
        log = progress_path(out_dir)
        log.unlink(missing_ok=True)
        calls = [
            actor.train.options(name=f"{label or role}:rank{rank}").remote(
                role, str(model_path), examples_ref, spec, str(out_dir), label or role)
            for rank, actor in enumerate(self.ranks)
        ]
        return self._wait(calls, ProgressTail(log, title or f"train {role}"))[0]

    def parameter_checksums(self) -> list[float]:
        """Each rank's parameter checksum after the last training call, in rank order."""
        return self._wait([actor.parameter_checksum.remote() for actor in self.ranks])

    def shutdown(self) -> None:
        """Kill the actors (their process group goes with them)."""
        for actor in self.ranks:
            ray.kill(actor, no_restart=True)
        self.ranks = []

    def _wait(self, refs: list[Any], progress: ProgressTail | None = None) -> list[Any]:
        """ray.get of all refs within timeout_s; the first failure or the deadline kills the group."""
        deadline = time.monotonic() + self.timeout_s
        pending = list(refs)
        while pending:
            poll = PROGRESS_POLL_S if progress is not None else max(0.0, deadline - time.monotonic())
            ready, pending = ray.wait(pending, num_returns=1, timeout=min(poll, max(0.0, deadline - time.monotonic())))
            if progress is not None:
                progress.show_new_lines()
            if not ready and time.monotonic() < deadline:
                continue
            if not ready:
                silent = [refs.index(ref) for ref in pending]
                self.shutdown()
                raise TimeoutError(f"trainer ranks {silent} of {self.world_size} did not answer within "
                                   f"--cluster.timeout_s {self.timeout_s:.0f} s")
            try:
                ray.get(ready[0])
            except BaseException as error:
                # The other ranks would block in a collective until its timeout: stop them now.
                self.shutdown()
                if isinstance(error, ray.exceptions.RayActorError):
                    raise RuntimeError(f"trainer rank {refs.index(ready[0])} of {self.world_size} died "
                                       f"({type(error).__name__}); the other ranks were stopped") from error
                raise
        return ray.get(refs)
