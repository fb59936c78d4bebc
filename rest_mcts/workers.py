"""Ray search workers: actors that hold the policy and PRM and run MCTS* or greedy decoding on
batches of problems, and the driver-side pool that shards problems over them and appends
finished trees to `trees.jsonl` as they arrive (so an interrupted stage never recomputes them).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from lm.data import Problem, read_appended_jsonl
from rest_mcts.methods import run_call, search_trees
from rest_mcts.placement import Placement, actor_resources
from rest_mcts.ray_metrics import SearchWorkerMetrics
from rest_mcts.search_models import (
    NEUTRAL_SCORE,
    SamplerSettings,
    build_search_models,
    engine_options,
    load_verifier,
)
from rest_mcts.seeds import shard_seed, verifier_shard_seed, worker_seed
from search.baselines import greedy_solutions, sample_solutions
from search.mcts import MCTSParams, Scorers
from search.tree import Tree
from search.types import Prefix, ProposedStep
from search.value_inference import grade_terminal_nodes

logger = logging.getLogger(__name__)

VERIFIER_USES = ("none", "leaf", "step")
"""How a search reads the worker's verifier: not at all (the PRM values every node), valuing terminal nodes, or
valuing every node in place of the PRM (as `methods.run_call`'s mcts_leaf_verifier and mcts_step_verifier)."""


@dataclass(frozen=True)
class GreedyResult:
    """A greedy chain-of-thought solution."""

    problem_id: str
    steps: tuple[str, ...]
    num_tokens: int
    correct: bool


@ray.remote
class SearchWorker:
    """Loads the policy (and PRM) once, then serves search and greedy requests with them.

    Every request carries the pool's current `SamplerSettings`: a change of temperature, greedy-first or seed
    applies at once, a change of checkpoints reloads the models. So one pool can evaluate a round and then
    search the next with the same models, and a restarted worker serves the settings of the request it retries.
    Each call reports its progress through Ray's metrics, tagged with the call's label (`rest_mcts.ray_metrics`).
    """

    def __init__(self, settings: SamplerSettings, num_cpus: float, worker_index: int):
        import torch

        torch.set_num_threads(max(1, int(num_cpus)))  # oversubscribed threads are the classic CPU slowdown
        self.worker_index = worker_index
        self.num_cpus = num_cpus
        self.metrics = SearchWorkerMetrics(worker_index)
        self.settings: SamplerSettings | None = None
        self._use(settings)

    def _use(self, settings: SamplerSettings) -> None:
        """Serve with `settings`: reload the models only if the checkpoints or model-side options changed. Every
        request starts here, so this is also where its metrics take the request's label."""
        from lm.build import pick_device

        self.metrics.start_call()
        if settings == self.settings:
            return
        verifier_changed = self.settings is None or (settings.verifier_path, settings.verifier) != (
            self.settings.verifier_path, self.settings.verifier)
        # A vLLM engine that shuts down takes the process's model-parallel state with it, so the engines of a worker
        # start and stop together: a new verifier on the vllm backend reloads the policy and PRM too.
        if settings.same_models(self.settings) and not (settings.backend == "vllm" and verifier_changed):
            self.sampler.temperature = settings.temperature
            self.sampler.greedy_first = settings.greedy_first
            self.sampler.reseed(worker_seed(settings.seed, self.worker_index))
        else:
            self.release_engines()
            verifier_changed = True
            self.task, self.sampler, self.scorer = build_search_models(settings, pick_device(), self.worker_index,
                                                                       self.num_cpus)
        if settings.verifier_path and verifier_changed:
            engine = (engine_options(settings, pick_device(), self.worker_index, self.num_cpus)
                      if settings.backend == "vllm" else None)
            self.verifier = load_verifier(settings.verifier_path, settings.verifier, pick_device(),
                                          worker_seed(settings.seed, self.worker_index), engine=engine)
        elif not settings.verifier_path:
            self.verifier = None
        self.settings = settings

    def release_engines(self) -> None:
        """Drop the models this worker serves (the verifier's too), so that new checkpoints' engines (vllm backend)
        find the memory."""
        import gc

        self.sampler = self.scorer = self.verifier = None
        self.settings = None  # the next request loads what it needs
        gc.collect()

    def pid(self) -> int:
        """This worker's process id (a restarted worker has a new one)."""
        return os.getpid()

    def _propose(self, prefixes: Sequence[Prefix], num_samples: int) -> list[list[ProposedStep]]:
        """The sampler's `propose`, its tokens counted in the worker's metrics."""
        proposals = self.sampler.propose(prefixes, num_samples)
        self.metrics.count_steps([step for steps in proposals for step in steps])
        return proposals

    def _greedy(self, prefixes: Sequence[Prefix]) -> list[ProposedStep]:
        """The sampler's `greedy`, its tokens counted in the worker's metrics."""
        steps = self.sampler.greedy(prefixes)
        self.metrics.count_steps(steps)
        return steps

    def _prm(self, prefixes: Sequence[Prefix]) -> list[float]:
        if self.scorer is None:
            return [NEUTRAL_SCORE] * len(prefixes)
        return self.scorer.score(prefixes)

    def _check(self, prefixes: Sequence[Prefix]) -> list[bool]:
        """The task's execution check of each prefix's last step (a prefix without steps passes)."""
        return [not prefix.steps or self.task.check_step(prefix.prompt, prefix.steps) is not False
                for prefix in prefixes]

    @property
    def _checking(self) -> bool:
        return bool(self.settings and self.settings.step_check and self.task.has_step_check)

    def _score(self, prefixes: Sequence[Prefix]) -> list[float]:
        """The step scorer every PRM-guided method reads: the PRM's value, 0 where the step fails the execution
        check (with `SamplerSettings.step_check`)."""
        scores = self._prm(prefixes)
        if not self._checking:
            return scores
        return [score if ok else 0.0 for score, ok in zip(scores, self._check(prefixes), strict=True)]

    def _reseed_for(self, problems: list[Problem], sampling_seed: int) -> None:
        self.sampler.reseed(shard_seed(sampling_seed, problems[0].id))

    def _scorers(self, verifier_use: str):
        """What values the nodes of a search (`VERIFIER_USES`): the PRM alone, or with the settings' verifier."""
        if verifier_use not in VERIFIER_USES:
            raise ValueError(f"verifier use {verifier_use!r}: expected one of {VERIFIER_USES}")
        check = self._check if self._checking else None
        if verifier_use == "none":
            return Scorers(self._prm, check=check)
        if self.verifier is None:
            raise ValueError(f"a search with the verifier as {verifier_use} scorer needs SamplerSettings.verifier_path")
        verify = self.verifier.verify
        return Scorers(self._prm, leaf_verify=verify, step_verify=verify if verifier_use == "step" else None,
                       check=check)

    def search(self, settings: SamplerSettings, problems: list[Problem], params: MCTSParams,
               verifier_use: str = "none") -> list[dict]:
        """MCTS* over all `problems` at once (batched across trees), its nodes valued as `verifier_use` says
        (`VERIFIER_USES`); trees with graded terminals, as dicts."""
        self._use(settings)
        started = time.perf_counter()
        scorers = self._scorers(verifier_use)
        self._reseed_for(problems, settings.seed)
        if verifier_use != "none" and getattr(self.verifier, "writer", None) is not None:
            self.verifier.writer.reseed(verifier_shard_seed(settings.seed, problems[0].id))
        prompts = [(problem.id, self.task.format_prompt(problem)) for problem in problems]
        trees = search_trees(prompts, self._propose, self._greedy, scorers, params)
        by_id = {problem.id: problem for problem in problems}
        for tree in trees:
            problem = by_id[tree.problem_id]
            grade_terminal_nodes(tree, lambda steps, p=problem: self.task.is_correct(p, steps))
        self.metrics.finish_shard("search", time.perf_counter() - started, trees=len(trees))
        return [tree.to_dict() for tree in trees]

    def greedy(self, settings: SamplerSettings, problems: list[Problem], max_depth: int) -> list[GreedyResult]:
        """Greedy chain-of-thought: the argmax step, repeated until a final step or max_depth."""
        self._use(settings)
        started = time.perf_counter()
        prompts = [(problem.id, self.task.format_prompt(problem)) for problem in problems]
        results = greedy_solutions(prompts, self._greedy, self.task.extract_answer, max_depth)
        self.metrics.finish_shard("greedy", time.perf_counter() - started)
        return [
            GreedyResult(problem.id, result.chosen, result.tokens_used,
                         self.task.check_answer(result.answer, problem.answer))
            for problem, result in zip(problems, results)
        ]

    def sample(self, settings: SamplerSettings, problems: list[Problem], num_samples: int,
               max_depth: int) -> list[dict]:
        """`num_samples` solutions per problem sampled step by step (ReST-EM's data): per problem its finished
        solutions (steps and whether the oracle accepts them) and the tokens generated for it."""
        self._use(settings)
        started = time.perf_counter()
        self._reseed_for(problems, settings.seed)
        prompts = [self.task.format_prompt(problem) for problem in problems]
        samples = sample_solutions(prompts, self._propose, num_samples, max_depth)
        self.metrics.finish_shard("sample", time.perf_counter() - started)
        return [{"problem_id": problem.id, "tokens": tokens,
                 "solutions": [{"steps": list(c.steps), "correct": self.task.is_correct(problem, c.steps)}
                               for c in finished]}
                for problem, (finished, tokens) in zip(problems, samples, strict=True)]

    def complete(self, settings: SamplerSettings, problems: list[Problem], starts: dict[str, list[list[str]]],
                 num_samples: int, max_depth: int) -> list[dict]:
        """Monte Carlo completions: `num_samples` solutions sampled on from each of `starts[problem.id]` (a prefix's
        steps); per problem, for each start the number of completions the oracle accepts, and the tokens
        generated."""
        self._use(settings)
        started = time.perf_counter()
        self._reseed_for(problems, settings.seed)
        flat = [(problem, tuple(start)) for problem in problems for start in starts[problem.id]]
        results = sample_solutions([self.task.format_prompt(problem) for problem, _ in flat], self._propose,
                                   num_samples, max_depth, starts=[start for _, start in flat])
        rows = {problem.id: {"problem_id": problem.id, "correct": [], "tokens": 0} for problem in problems}
        for (problem, _), (finished, tokens) in zip(flat, results, strict=True):
            rows[problem.id]["correct"].append(sum(self.task.is_correct(problem, c.steps) for c in finished))
            rows[problem.id]["tokens"] += tokens
        self.metrics.finish_shard("complete", time.perf_counter() - started)
        return list(rows.values())

    def judge(self, settings: SamplerSettings, problems: list[Problem],
              solutions: dict[str, list[list[str]]]) -> list[dict]:
        """The settings' verifier's score of each of `solutions[problem.id]` (Self-Rewarding's judgements): per
        problem the scores in order and the tokens the verifier generated and read for them."""
        self._use(settings)
        if self.verifier is None:
            raise ValueError("judging needs SamplerSettings.verifier_path")
        started = time.perf_counter()
        if getattr(self.verifier, "writer", None) is not None:
            self.verifier.writer.reseed(verifier_shard_seed(settings.seed, problems[0].id))
        prefixes = [(problem.id, Prefix(self.task.format_prompt(problem), tuple(steps)))
                    for problem in problems for steps in solutions[problem.id]]
        judged = self.verifier.verify([prefix for _, prefix in prefixes])
        rows = {problem.id: {"problem_id": problem.id, "scores": [], "tokens_generated": 0, "tokens_read": 0}
                for problem in problems}
        for (problem_id, _), score, generated, read in zip(prefixes, judged.scores, judged.tokens_generated,
                                                           judged.tokens_read, strict=True):
            row = rows[problem_id]
            row["scores"].append(score)
            row["tokens_generated"] += generated
            row["tokens_read"] += read
        self.metrics.finish_shard("judge", time.perf_counter() - started)
        return list(rows.values())

    def run_call(self, settings: SamplerSettings, problems: list[Problem], call) -> list:
        """One `methods.MethodCall` on `problems`: a method group at one budget and seed; its records."""
        self._use(settings)
        started = time.perf_counter()
        self._reseed_for(problems, call.seed)
        verify = self.verifier.verify if self.verifier is not None else None
        records = run_call(call, self.task, problems, self._propose, self._greedy, self._score, verify,
                           self._check if self._checking else None, self._prm)
        self.metrics.finish_shard("run_call", time.perf_counter() - started)
        return records


def read_finished_trees(path: Path) -> list[dict]:
    """Trees already in `trees.jsonl`; a torn last line (an interrupted append) is dropped with a warning."""
    return read_appended_jsonl(path)


class SearchPool:
    """A round's search workers; shards problems over them and collects the results in problem order."""

    def __init__(self, settings: SamplerSettings, num_workers: int, num_cpus: float, num_gpus: float,
                 name: str, timeout_s: float, placement: Placement | None = None):
        self.timeout_s = timeout_s
        self.settings = settings
        """Sent with every request; change it to serve other settings or checkpoints with these workers."""
        self.in_flight: dict[int, int] = {}
        """Worker index -> the shard index it is searching, while a `map` runs."""
        self.workers = [
            SearchWorker.options(
                name=f"{name}-worker{index}",
                max_restarts=2,  # a dead worker is restarted (it reloads the checkpoints) ...
                max_task_retries=2,  # ... and its unfinished problems are retried
                **actor_resources(placement, index, num_cpus, num_gpus),
            ).remote(settings, num_cpus, index)
            for index in range(num_workers)
        ]

    def map(self, method: str, shards: Sequence[list[Problem]], *args: Any,
            on_result: Callable[[int, Any], None] | None = None, label: str = "") -> list[Any]:
        """Call `method(shard, *args)` for every shard, at most one in flight per worker; results in shard order."""
        results: list[Any] = [None] * len(shards)
        pending: dict[Any, tuple[int, Any]] = {}
        next_shard, done, started = 0, 0, time.time()
        idle = list(range(len(self.workers)))[::-1]
        self.in_flight = {}
        while done < len(shards):
            while idle and next_shard < len(shards):
                worker = idle.pop()
                ref = getattr(self.workers[worker], method).options(
                    name=f"{label}:{method}[{shards[next_shard][0].id}..]").remote(
                    self.settings, shards[next_shard], *args)
                pending[ref] = (next_shard, worker)
                self.in_flight[worker] = next_shard
                next_shard += 1
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=self.timeout_s)
            if not ready:
                raise TimeoutError(f"{label}: no {method} result within --cluster.timeout_s {self.timeout_s:.0f} s "
                                   f"(shards in flight on workers {sorted(self.in_flight)})")
            index, worker = pending.pop(ready[0])
            del self.in_flight[worker]
            try:
                results[index] = ray.get(ready[0], timeout=self.timeout_s)
            except ray.exceptions.RayActorError as error:
                raise RuntimeError(f"{label}: search worker {worker} died and could not be restarted "
                                   f"({type(error).__name__}); its shard starts with problem "
                                   f"{shards[index][0].id}") from error
            idle.append(worker)
            done += 1
            if on_result is not None:
                on_result(index, results[index])
            logger.info("%s %s: %d/%d shards done (%.1f s)", label, method, done, len(shards), time.time() - started)
        return results

    def release_engines(self) -> None:
        """Every worker drops its models (the next request loads them again): with the vllm backend, the engines'
        weights and KV cache leave the devices that a colocated training stage is about to use."""
        ray.get([worker.release_engines.remote() for worker in self.workers], timeout=self.timeout_s)

    def shutdown(self) -> None:
        for worker in self.workers:
            ray.kill(worker)


def shard(problems: Sequence[Problem], size: int, workers: int = 1) -> list[list[Problem]]:
    """Consecutive shards of at most `size` problems, of equal sizes (within one), their number a multiple of
    `workers` where there are enough problems: 100 problems at size 40 over 2 workers are 4 shards of 25, not
    40, 40 and 20 with one worker idle while the other searches the last shard."""
    if size < 1:
        raise ValueError(f"shard size must be >= 1, got {size}")
    count = math.ceil(len(problems) / size)
    if count and workers > 1:
        count = min(len(problems), math.ceil(count / workers) * workers)
    bounds = [len(problems) * index // count for index in range(count + 1)] if count else [0]
    return [list(problems[start:end]) for start, end in zip(bounds, bounds[1:])]


def search_to_file(pool: SearchPool, problems: Sequence[Problem], params: MCTSParams, path: Path,
                   problems_per_task: int, label: str, verifier_use: str = "none") -> list[Tree]:
    """Search every problem not yet in `path`, appending each finished shard's trees; all trees, in problem order.
    `verifier_use` (`VERIFIER_USES`): how the search reads the verifier of the pool's settings.

    The shards are those of all `problems`, resumed or not, and a shard with any tree missing is searched whole
    (its trees share the shard's sampling stream): so a resumed stage grows the same trees an uninterrupted one
    would, and only the trees not yet in the file are appended, each problem's tree exactly once."""
    finished = {record["problem_id"]: record for record in read_finished_trees(path)}
    shards = [part for part in shard(problems, problems_per_task, len(pool.workers))
              if any(problem.id not in finished for problem in part)]
    if finished:
        logger.info("%s: %d trees already in %s, searching %d more shards", label, len(finished), path, len(shards))
    path.parent.mkdir(parents=True, exist_ok=True)

    def append(_index: int, tree_dicts: list[dict]) -> None:
        new = [record for record in tree_dicts if record["problem_id"] not in finished]
        data = memoryview("".join(json.dumps(record) + "\n" for record in new).encode("utf-8"))
        with open(path, "ab", buffering=0) as handle:  # unbuffered: nothing is left to write after a failure
            size = handle.seek(0, os.SEEK_END)
            try:
                while data:
                    data = data[handle.write(data):]
                os.fsync(handle.fileno())
            except OSError as error:  # e.g. a full disk: leave no torn line behind
                handle.truncate(size)
                raise OSError(error.errno, error.strerror, str(path)) from error
        for record in new:
            finished[record["problem_id"]] = record

    if shards:
        pool.map("search", shards, params, verifier_use, on_result=append, label=label)
    return [Tree.from_dict(finished[problem.id]) for problem in problems]


def greedy_results(pool: SearchPool, problems: Sequence[Problem], max_depth: int, problems_per_task: int,
                   label: str) -> list[GreedyResult]:
    shards = shard(problems, problems_per_task, len(pool.workers))
    return [result for batch in pool.map("greedy", shards, max_depth, label=label) for result in batch]
