"""The run configuration: one frozen dataclass per stage (filled from YAML files and flags by
`rest_mcts.flags`), and the checks every run's configuration must pass.

Every field has a type, a default (from the ReST-MCTS* paper/official code or measured on the
embedded default) and a one-line docstring, which is also its `--help` text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from lm.verifier_format import VerifierFormat
from rest_mcts.recipes import RECIPES
from search.mcts import MCTSParams
from search.value_inference import VALUE_NODES, VALUE_TARGETS
from trainers.spec import TrainSpec


@dataclass(frozen=True)
class TaskConfig:
    name: str = "modtarget"
    """Task to train on: modtarget (reach a target digit; the default), modchain (mod-10 chains), last_letter
    (last-letter concatenation) or word_sort (sort pseudo-words); docs/tasks.md."""
    seed_problems: int = 8000
    """Problems with worked solutions used for the round-0 warm start (SFT seed set)."""
    train_problems: int = 3000
    """Size of the pool of training problems searched by the rounds."""
    problems_per_round: int = 384
    """Training problems searched each round (a new slice of the pool every round)."""
    test_problems: int = 200
    """Held-out in-distribution problems used for evaluation."""
    ood_problems: int = 50
    """Held-out out-of-distribution (longer) problems used for evaluation."""
    data_seed: int = 0
    """Seed that fixes which problems each split holds."""
    curriculum_start: int = -1
    """The rounds' difficulty schedule: round r searches training problems of at most curriculum_start +
    r x curriculum_step steps (the task's difficulty), so each round reaches a step further than the last and its
    traces, not the seed solutions, teach the longer problems; -1: the task's own (modtarget: 3; tasks without a
    difficulty: none), 0: none (every round draws from the whole pool)."""
    curriculum_step: int = 1
    """Steps the schedule adds per round (see curriculum_start)."""
    data_path: str = ""
    """Data tasks: JSONL (CSV for game24) the seed and train splits come from (empty: the shipped file; jsonl and
    math's training problems need one). Without test_path, the test split is held out of it."""
    test_path: str = ""
    """Data tasks: JSONL of the test split (empty: the shipped test file, or held out of data_path)."""
    ood_path: str = ""
    """Data tasks: JSONL of an out-of-distribution split (empty: game24's hardest puzzles; none for the others)."""
    question_field: str = ""
    """Data tasks: the field holding the question (empty: the task's own, `question` for gsm8k, math and jsonl)."""
    answer_field: str = ""
    """Data tasks: the field holding the gold answer (empty: the task's own; none: no answer field, the gold answer is
    the one the worked solution states, e.g. MATH's last \\boxed{})."""
    solution_field: str = ""
    """Data tasks: the field holding a worked solution, split at the step delimiter into the warm start's steps
    (empty: the task's own; jsonl: none, so no warm start)."""
    answer_format: str = "number"
    """jsonl task: how answers are read and graded: number (strict formats, then the last number; compared as
    exact numbers), math (\\boxed{}, graded by math-verify) or text (strict formats; compared as normalised text)."""
    step_delimiter: str = ""
    """Data tasks: the text that ends a step (empty: the task's own, a newline; two newlines for math)."""
    instruction: str = "auto"
    """Data tasks: the instruction before the question (the system turn under a chat template); auto: the task's
    own, which names its answer format; empty: none."""
    few_shot: int = 0
    """Data tasks: worked examples from the seed split shown before the question (as earlier chat turns under a
    chat template)."""
    chat_template: str = "auto"
    """Data tasks: auto (the policy tokenizer's chat template when it has one) or off (plain `Question:` /
    `Answer:` text)."""


@dataclass(frozen=True)
class ModelConfig:
    policy_model: str = ""
    """Local Hugging Face checkpoint of the policy (empty: build the embedded tiny Llama)."""
    prm_model: str = ""
    """Local Hugging Face checkpoint of the PRM, a token-classification model with one label (empty: embedded tiny)."""
    hidden_size: int = 128
    """Hidden size of the embedded tiny models."""
    num_layers: int = 2
    """Transformer layers of the embedded tiny models (on the default task two layers reach the warm start's loss in
    about half the steps of four, each step at half the cost; docs/tasks.md)."""
    num_heads: int = 4
    """Attention heads of the embedded tiny models."""
    intermediate_size: int = 512
    """MLP width of the embedded tiny models."""
    max_positions: int = 256
    """Longest sequence (prompt and solution, in tokens) the embedded models take."""


@dataclass(frozen=True)
class SearchConfig(MCTSParams):
    """The rounds' training search: the library's MCTS* parameters (`search.mcts.MCTSParams`, defined once there)
    with the defaults for generating training data, and the step sampler's settings."""

    stop_at_end_gate: bool = False
    """Stop a tree at the first selected terminal leaf with V >= end_gate (off: spend the full budget, as a search
    that generates training data does)."""
    max_simulations: int = 16
    """MCTS* simulations per training problem."""
    initial_branch: int = 1
    """Candidates at a node's first expansion; more are sampled where every child is pruned or valued below
    widen_below, or once the node has widen_visits visits per child (0: branch candidates at every expansion). With
    three candidates at every expansion and 10 simulations the search rarely reached the end of a 5-operation
    problem (9.6% of a round's problems solved, against 58% this way at 16 simulations and fewer tokens;
    docs/tasks.md)."""
    first_path_first: bool = True
    """Follow each node's first child to a finished solution before spending simulations elsewhere."""
    widen_visits: int = 2
    """Widen a node once it has this many visits per child (count-based progressive widening), so the trees hold
    alternatives to steps the PRM trusts: the PRM learns from siblings, and the policy from more than one path."""
    temperature: float = 0.7
    """Sampling temperature of the policy during search (on the default task, 1.0 slipped so often on the longer
    problems that the search solved few of a round's new length; docs/tasks.md)."""
    max_step_tokens: int = 32
    """Longest step the sampler generates (tokens)."""
    decode: str = "cached"
    """Step sampling: 'cached' (each prefix encoded once for all its samples, rows leave the batch as they
    stop; honours temperature, top-k and suppressed tokens) or 'generate' (transformers' generate, which
    also honours the rest of a model's generation config)."""
    kv_store_mb: float = 256.0
    """Memory per model and search worker for the KV of tree nodes kept across simulations, so that expanding
    or scoring under a node encodes only the new step (least recently used dropped first; 0: off)."""
    step_check: bool = True
    """Run the task's execution check (its step's computation redone from what the question and the step state) on
    every step a PRM-guided method scores: a step that fails scores 0 and MCTS* prunes it and samples its parent's
    step again; every method that reads the PRM (Best-of-N, the weighted vote, beam search, ToT) gets the same
    checked scores. Tasks without a check (all but modtarget) ignore it."""

    def mcts_params(self, **changes: Any) -> MCTSParams:
        """The MCTS* parameters alone (what `search/` takes), with `changes` applied."""
        return MCTSParams(**{**{f.name: getattr(self, f.name) for f in fields(MCTSParams)}, **changes})


@dataclass(frozen=True)
class ValuesConfig:
    target: str = "hard"
    """PRM training target from each searched tree: 'hard' (Math-Shepherd's hard estimate: 1 if a correct answer
    lies below the step, else 0) or 'quality' (ReST-MCTS*'s quality value v_k, rising along a correct path)."""
    nodes: str = "finished"
    """Which nodes of a tree get value examples: 'finished' (the official code: only nodes with a finished
    solution below them) or 'all' (also nodes below which nothing was finished, labelled as having no correct
    answer below)."""
    unsolved_trees: str = "terminals"
    """What trees with no correct answer give: 'terminals' (their finished wrong solutions, target 0: the surest
    negatives a search produces), 'all' (every node the `nodes` rule keeps, target 0, though the right steps
    among them were only not followed far enough) or 'none' (the official code: nothing)."""


@dataclass(frozen=True)
class TracesConfig:
    max_per_problem: int = 2
    """Verified-correct traces kept per searched problem for policy training."""
    oracle_step_filter: bool = False
    """Diagnostic, synthetic tasks only: keep only traces whose every step is right (true step labels),
    not merely those whose final answer is right. Measures what answer-only verification costs."""
    seed_replay_ratio: float = -1.0
    """Seed solutions mixed into each round's policy data per verified trace found so far (a replay buffer
    against forgetting; a fixed draw per round); negative: all seed solutions."""


@dataclass(frozen=True)
class RestEMConfig:
    """ReST-EM (`--method rest_em`): sampled solutions per training problem, the oracle-correct ones kept."""

    match_tokens_of: str = ""
    """A ReST-MCTS* run folder: each round samples waves of solutions until it has generated as many tokens as
    that run's search of the same round did (counted, `search/tokens`), so both methods spend equal tokens.
    Empty: `samples_per_problem` solutions per problem."""
    samples_per_problem: int = 8
    """Solutions sampled per training problem when `match_tokens_of` is empty."""


@dataclass(frozen=True)
class TrainConfig(TrainSpec):
    """A trainer's DeepSpeed, optimizer and schedule settings (`trainers.engine.TrainSpec`, defined once there)
    and the length of the round-0 warm start."""

    max_steps: int = 100
    """Optimizer steps per round (0: use epochs); equal steps make the seed-only control fair."""
    seed: int = 0
    """Offset of the training seed: a round trains with run seed + round + this offset."""
    warm_start_steps: int = 1000
    """Optimizer steps of the round-0 warm start (0: none, the initial model is kept)."""
    round_learning_rate: float = 0.0
    """Peak learning rate of the rounds' training after the warm start (0: learning_rate, the warm start's); a
    converged policy continued at the warm start's rate lost several points in round 1 (docs/tasks.md)."""


@dataclass(frozen=True)
class EvalConfig:
    """The round evaluation's MCTS* (and `rest_mcts.evaluate`'s, unless --plain-mcts): the training search's
    parameters with these changed."""

    max_simulations: int = 16
    """MCTS* simulations per evaluation problem (the search stops early at end_gate)."""
    temperature: float = 0.3
    """Sampling temperature at evaluation (low: candidates stay near the policy's mode and the PRM chooses where
    the policy is unsure); `rest_mcts.evaluate` samples every method at it."""
    greedy_first: bool = True
    """The first of the `branch` candidates at every expansion is the policy's argmax step (the others sampled);
    ties in PRM value go to the first child, so where the PRM cannot tell the candidates apart the search follows
    greedy decoding instead of whichever sample came first."""
    first_path_first: bool = True
    """Follow the path of first candidates (with greedy_first, greedy decoding) to its terminal first, one
    simulation per step, then search by UCT: the tree always holds the greedy solution, and the answer margin
    decides whether the PRM's values overrule it."""
    dev_problems: int = 50
    """Training problems held out from search (the end of the pool) on which each round's evaluation runs MCTS*
    first and picks its answer margin from `evaluation.ANSWER_MARGINS`: the first-path margin unless a smaller
    one beats it by a sign test with family-wise error 0.01 (`evaluation.pick_answer_margin`). 0: no dev
    split; `answer_margin` is used as given."""
    pass_at_k: int = 16
    """k of round 0's pass@k (and self-consistency@k) on the test split: k solutions sampled per problem at
    the evaluation temperature, right when any is: the oracle ceiling of every method that reads k samples,
    the headroom search has over greedy decoding; 0: off."""
    pass_at_k_every_round: bool = False
    """Measure pass@k in every round's evaluation, not only in round 0's."""
    answer_margin: float = 0.1
    """MCTS*'s answer is its best-valued terminal; terminals within this margin of the best count as tied, and
    ties go to the path of first candidates (with greedy_first, the greedy path), so the PRM overrules greedy
    decoding only when it prefers another answer by more than the margin. Used only when dev_problems is 0."""

    initial_branch: int = 1
    """Candidates at a node's first expansion when solving (progressive widening: more are sampled only where every
    child is pruned, the PRM values every child below search.widen_below, or the node has search.widen_visits visits
    per child; 0: search.branch at once), so the first path costs one solution's tokens
    (`search.mcts.MCTSParams.initial_branch`)."""

    def mcts_params(self, search: SearchConfig, **changes: Any) -> MCTSParams:
        """The evaluation's MCTS*: the training search's parameters, solving (stop at end_gate), with this
        section's simulations, first-path and widening settings, and `changes`."""
        return search.mcts_params(**{"max_simulations": self.max_simulations, "stop_at_end_gate": True,
                                     "first_path_first": self.first_path_first,
                                     "initial_branch": min(self.initial_branch, search.branch), **changes})


VERIFIER_KINDS = ("genrm", "genrm_cot", "orm", "simpo", "dpo")
"""Trainable verifiers (`trainers.verifier.VerifierObjective.kind`)."""


@dataclass(frozen=True)
class VerifierConfig:
    """A verifier of solutions: a model role of its own, trained on the framework's samples (GenRM, GenRM-CoT,
    an outcome reward model, SimPO or DPO) and read by Best-of-N and the weighted vote."""

    model: str = ""
    """Local Hugging Face checkpoint the verifier starts from (empty: a copy of the policy; for orm, a token
    classifier with the policy's body and a new head)."""
    kind: str = "genrm_cot"
    """What to train: genrm (yes/no at once), genrm_cot (a written check, then yes/no), orm (a score at the last
    token, BCE), simpo or dpo (preference pairs; scored by length-normalised log-likelihood)."""
    solution_weight: float = 1.0
    """lambda of GenRM's unified objective: loss = verification loss + lambda x SFT loss on correct solutions
    (0: verification only)."""
    simpo_beta: float = 2.0
    """SimPO's beta (reward scale; Meng et al. 2024 use 2.0-2.5)."""
    simpo_gamma: float = 1.0
    """SimPO's target margin gamma (gamma/beta = 0.5, their usual ratio)."""
    dpo_beta: float = 0.1
    """DPO's beta (Rafailov et al. 2023)."""
    rationales: int = 4
    """K: checks GenRM-CoT writes per solution; its score is the mean p(yes) over them."""
    max_rationale_tokens: int = 160
    """Longest check GenRM-CoT writes (tokens)."""
    temperature: float = 0.7
    """Sampling temperature of GenRM-CoT's checks."""
    check_cue: str = "check\n"
    """Written after the solution before a check (GenRM's "Let's verify step by step.")."""
    question: str = "correct?"
    """Asked after the solution or the check (GenRM's "Is the answer correct (Yes/No)?")."""
    yes: str = "yes"
    """Verdict of a correct solution; its first token's probability is the score (leading-space variants too)."""
    no: str = "no"
    """Verdict of an incorrect solution."""
    train_in_rounds: bool = False
    """Train the verifier every round, round 0 included, on the round's searched trees' finished solutions (stage
    train_verifier, from the previous round's verifier); the round evaluation then also runs MCTS* with it."""
    data: str = "solutions"
    """What train_in_rounds trains on: solutions (every distinct finished solution with its oracle label) or prefixes
    (every prefix with its true step label: a generative step verifier; synthetic tasks only)."""
    eval_as: str = "leaf"
    """How the round evaluation's MCTS* reads the verifier: leaf (it values terminal nodes), step (it values every
    node, in place of the PRM) or both (two searches)."""

    def text_format(self):
        """The texts as a `lm.verifier_format.VerifierFormat`."""
        return VerifierFormat(check_cue=self.check_cue, question=self.question, yes=self.yes, no=self.no)


@dataclass(frozen=True)
class ClusterConfig:
    ray_address: str = ""
    """Address of an existing Ray cluster (empty: start a local one)."""
    dashboard_host: str = "127.0.0.1"
    """Interface the Ray dashboard listens on (local clusters only)."""
    search_workers: int = 2
    """Ray search workers (actors)."""
    cpus_per_worker: float = 1.0
    """CPUs per search worker; torch threads are set to this share."""
    gpus_per_worker: float = 0.0
    """GPUs per search worker."""
    trainer_ranks: int = 2
    """DeepSpeed ranks (one Ray actor each)."""
    cpus_per_rank: float = 1.0
    """CPUs per trainer rank."""
    gpus_per_rank: float = 0.0
    """GPUs per trainer rank (1 on a GPU cluster)."""
    colocate: bool = True
    """Search workers and trainer ranks share a Ray placement group (worker i and rank i on bundle i, half of it
    each) and stay up for the whole run, as stages never overlap; off: each stage's actors are stopped before the
    other kind starts (for models that do not fit twice on a device)."""
    cpu_shm_comm: bool = False
    """On CPU, let DeepSpeed use its shared-memory allreduce (compiled on first use, 70-90 s); off: plain gloo."""
    problems_per_task: int = 40
    """Problems per Ray search task; finished tasks are appended to trees.jsonl."""
    timeout_s: float = 1800.0
    """Longest wait for one Ray call or collective; a hang is a bug."""
    nodes: int = 1
    """Nodes of the Ray cluster the run expects (more than 1: join one with --ray-address); the plan lays the
    placement groups out over them and a run warns when the cluster has fewer."""
    gpus_per_node: int = 0
    """GPUs on each node, for the plan's check that the placement groups fit (0: not checked)."""
    cpus_per_node: int = 0
    """CPUs on each node, for the plan's check that the placement groups fit (0: not checked)."""
    placement_strategy: str = "PACK"
    """Ray strategy of the placement groups: PACK (as few nodes as fit; rank i beside rank i+1), SPREAD (across
    nodes, best effort), STRICT_PACK (one node or fail) or STRICT_SPREAD (one bundle per node or fail)."""


PLACEMENT_STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")
"""Ray's placement group strategies (`ClusterConfig.placement_strategy`)."""


def _validate_cluster(config: RunConfig) -> None:
    """The checks of the cluster section's own values (whether the placement plan they give fits the nodes:
    `rest_mcts.preflight.validate`)."""
    cluster = config.cluster
    if cluster.nodes < 1:
        raise ConfigError(f"--cluster.nodes {cluster.nodes}: expected 1 or more")
    if cluster.nodes > 1 and not cluster.ray_address:
        raise ConfigError(f"--cluster.nodes {cluster.nodes}: a local Ray cluster has one node; join a running "
                          f"cluster with --ray-address (e.g. auto, on one of its nodes)")
    if cluster.placement_strategy not in PLACEMENT_STRATEGIES:
        raise ConfigError(f"--cluster.placement_strategy {cluster.placement_strategy!r}: expected one of "
                          f"{PLACEMENT_STRATEGIES}")
    for name in ("cpus_per_worker", "cpus_per_rank"):
        if getattr(cluster, name) <= 0:
            raise ConfigError(f"--cluster.{name} {getattr(cluster, name)}: expected a positive number")
    for name in ("gpus_per_worker", "gpus_per_rank", "gpus_per_node", "cpus_per_node"):
        if getattr(cluster, name) < 0:
            raise ConfigError(f"--cluster.{name} {getattr(cluster, name)}: expected 0 or more")


@dataclass(frozen=True)
class LoggingConfig:
    run_dir: str = "runs"
    """Folder that holds the experiment folders."""
    experiment: str = "default"
    """Experiment name (folder under run_dir, W&B group)."""
    wandb_project: str = "rest-mcts"
    """W&B project."""
    wandb_mode: str = ""
    """W&B mode: online, offline or disabled (empty: offline unless WANDB_MODE or a W&B login says otherwise)."""
    wandb_init_timeout_s: float = 90.0
    """Seconds W&B may take to start its run (online: to reach the server) before the run is abandoned."""


@dataclass(frozen=True)
class RunConfig:
    rounds: int = 3
    """Self-training rounds after the round-0 warm start (0: the warm start and its evaluation only)."""
    seed: int = 0
    """Seed of models, sampling and training (every derived seed: rest_mcts/seeds.py)."""
    control: bool = False
    """Control run: train the policy on the seed solutions only, with the same optimizer steps."""
    method: str = "rest_mcts"
    """Self-training method: rest_mcts (MCTS* search, process rewards, policy and PRM training) or rest_em (sampled
    solutions, the oracle-correct ones kept, policy training only); the stages: `rest_mcts.stages.ROUND_STAGES`."""
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    values: ValuesConfig = field(default_factory=ValuesConfig)
    traces: TracesConfig = field(default_factory=TracesConfig)
    rest_em: RestEMConfig = field(default_factory=RestEMConfig)
    policy_train: TrainConfig = field(default_factory=lambda: TrainConfig(learning_rate=2e-3, warmup_steps=60,
                                                                          round_learning_rate=5e-4))
    prm_train: TrainConfig = field(
        default_factory=lambda: TrainConfig(micro_batch_size=32, learning_rate=1e-3, max_steps=100,
                                            warm_start_steps=100)
    )
    eval: EvalConfig = field(default_factory=EvalConfig)
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    verifier_train: TrainConfig = field(
        default_factory=lambda: TrainConfig(learning_rate=5e-4, warmup_steps=30, max_steps=400, warm_start_steps=0)
    )
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type; the message says where."""


RANGES: dict[str, tuple[float, float | None]] = {
    "seed": (0, None), "task.train_problems": (1, None), "task.data_seed": (0, None),
    "search.exploration_constant": (0, None), "search.unvisited_bonus": (0, None), "search.end_gate": (0, 1),
    "search.kv_store_mb": (0, None), "traces.max_per_problem": (1, None),
    "eval.pass_at_k": (0, None), "eval.answer_margin": (0, 1), "eval.initial_branch": (0, None),
    "search.initial_branch": (0, None), "search.widen_branch": (1, None), "search.widen_below": (0, 1),
    "search.widen_visits": (0, None),
    "verifier.simpo_beta": (1e-12, None), "verifier.simpo_gamma": (0, None), "verifier.dpo_beta": (1e-12, None),
    "verifier.temperature": (1e-12, None), "cluster.timeout_s": (1, None),
    "logging.wandb_init_timeout_s": (1, None),
    **{f"{name}.{key}": bounds for name in ("policy_train", "prm_train", "verifier_train") for key, bounds in (
        ("gradient_accumulation_steps", (1, None)), ("learning_rate", (1e-12, None)), ("weight_decay", (0, None)),
        ("warmup_steps", (0, None)), ("max_steps", (0, None)), ("epochs", (1, None)), ("seed", (0, None)),
        ("max_grad_norm", (0, None)), ("warm_start_steps", (0, None)), ("round_learning_rate", (0, None)))},
}
"""Numeric fields and the closed range each must lie in (None: unbounded above); 1e-12 stands for "positive".
The other numeric fields are checked where their meaning is (`validate`)."""


def _check_numbers(config: RunConfig) -> None:
    """Every number of the configuration finite (no nan or inf), and each of `RANGES` in its range."""
    for section in fields(config):
        value = getattr(config, section.name)
        items = [(f"{section.name}.{f.name}", getattr(value, f.name)) for f in fields(value)] if is_dataclass(
            value) else [(section.name, value)]
        for name, number in items:
            if isinstance(number, float) and not math.isfinite(number):
                raise ConfigError(f"--{name} {number}: expected a finite number")
            if name in RANGES:
                low, high = RANGES[name]
                if number < low or (high is not None and number > high):
                    expected = ("a positive number" if low == 1e-12 else f"at least {low:g}" if high is None
                                else f"a number in [{low:g}, {high:g}]")
                    raise ConfigError(f"--{name} {number}: expected {expected}")


def check_values(config: RunConfig) -> None:
    """Reject values no run can use, naming the flag: the checks that read the configuration alone (those that
    need the task, its data or the placement plan: `rest_mcts.preflight.validate`)."""
    _check_numbers(config)
    if config.rounds < 0:
        raise ConfigError(f"--rounds {config.rounds}: expected 0 (the warm start only) or more rounds")
    if config.method not in RECIPES:
        raise ConfigError(f"--method {config.method!r}: unknown method; expected one of {sorted(RECIPES)}")
    _check_data_task_values(config.task)
    positive = {
        "task.seed_problems": config.task.seed_problems,
        "task.problems_per_round": config.task.problems_per_round,
        "task.test_problems": config.task.test_problems,
        "search.max_step_tokens": config.search.max_step_tokens,
        "eval.max_simulations": config.eval.max_simulations,
        "cluster.search_workers": config.cluster.search_workers,
        "cluster.trainer_ranks": config.cluster.trainer_ranks,
        "cluster.problems_per_task": config.cluster.problems_per_task,
        "policy_train.micro_batch_size": config.policy_train.micro_batch_size,
        "rest_em.samples_per_problem": config.rest_em.samples_per_problem,
        "prm_train.micro_batch_size": config.prm_train.micro_batch_size,
        "model.hidden_size": config.model.hidden_size,
        "model.num_layers": config.model.num_layers,
        "model.num_heads": config.model.num_heads,
        "model.intermediate_size": config.model.intermediate_size,
        "model.max_positions": config.model.max_positions,
    }
    for name, value in positive.items():
        if value < 1:
            raise ConfigError(f"--{name} {value}: expected a positive integer")
    _validate_shapes_and_sizes(config)
    if config.search.temperature <= 0 or config.eval.temperature <= 0:
        raise ConfigError("--search.temperature and --eval.temperature: expected positive temperatures")
    if not 0 <= config.eval.dev_problems < config.task.train_problems:
        raise ConfigError(f"--eval.dev_problems {config.eval.dev_problems}: expected 0 or more, and fewer than "
                          f"--task.train_problems ({config.task.train_problems}), from whose end they are held out")
    if config.values.target not in VALUE_TARGETS:
        raise ConfigError(f"--values.target {config.values.target!r}: expected one of {VALUE_TARGETS}")
    if config.values.unsolved_trees not in ("terminals", "all", "none"):
        raise ConfigError(f"--values.unsolved_trees {config.values.unsolved_trees!r}: expected terminals, all or none")
    if config.values.nodes not in VALUE_NODES:
        raise ConfigError(f"--values.nodes {config.values.nodes!r}: expected one of {VALUE_NODES}")
    if config.search.decode not in ("cached", "generate"):
        raise ConfigError(f"--search.decode {config.search.decode!r}: expected 'cached' or 'generate'")
    match = config.rest_em.match_tokens_of
    if match and not (Path(match) / "config.yaml").exists():
        raise ConfigError(f"--rest_em.match_tokens_of {match}: not an iterate run folder (no config.yaml)")
    if config.verifier.kind not in VERIFIER_KINDS:
        raise ConfigError(f"--verifier.kind {config.verifier.kind!r}: expected one of {VERIFIER_KINDS}")
    if config.verifier.rationales < 1 or config.verifier.max_rationale_tokens < 1:
        raise ConfigError("--verifier.rationales and --verifier.max_rationale_tokens: expected positive integers")
    if config.verifier.solution_weight < 0:
        raise ConfigError(f"--verifier.solution_weight {config.verifier.solution_weight}: expected 0 or more")
    if config.verifier.data not in VERIFIER_DATA:
        raise ConfigError(f"--verifier.data {config.verifier.data!r}: expected one of {VERIFIER_DATA}")
    if config.verifier.eval_as not in VERIFIER_EVAL_AS:
        raise ConfigError(f"--verifier.eval_as {config.verifier.eval_as!r}: expected one of {VERIFIER_EVAL_AS}")
    if config.verifier.data == "prefixes" and config.verifier.kind in ("simpo", "dpo"):
        raise ConfigError(f"--verifier.data prefixes: --verifier.kind {config.verifier.kind} trains on pairs of "
                          f"finished solutions, not on prefixes; expected genrm, genrm_cot or orm")
    for name in ("policy_train", "prm_train", "verifier_train"):
        if getattr(config, name).zero_stage not in (0, 1, 2, 3):
            raise ConfigError(f"--{name}.zero_stage: expected 0, 1, 2 or 3")
    _validate_cluster(config)


WANDB_MODES = ("", "online", "offline", "disabled")
"""`logging.wandb_mode` values (empty: decided by WANDB_MODE and the W&B login)."""


def _validate_shapes_and_sizes(config: RunConfig) -> None:
    """Cross-field checks: the embedded models' shapes, a round's problems against the pool, the W&B mode."""
    model, task = config.model, config.task
    if not model.policy_model and model.hidden_size % model.num_heads:
        raise ConfigError(f"--model.hidden_size {model.hidden_size}: expected a multiple of --model.num_heads "
                          f"({model.num_heads}), each head takes an equal share")
    if task.curriculum_start < -1 or task.curriculum_step < 1:
        raise ConfigError(f"--task.curriculum_start {task.curriculum_start} --task.curriculum_step "
                          f"{task.curriculum_step}: expected a start of -1 (the task's own), 0 (none) or more, and a "
                          f"step of 1 or more")
    searched = task.train_problems - config.eval.dev_problems
    if task.problems_per_round > searched:
        raise ConfigError(f"--task.problems_per_round {task.problems_per_round}: expected at most the "
                          f"{searched} training problems searched (--task.train_problems {task.train_problems} "
                          f"less --eval.dev_problems {config.eval.dev_problems}); a round never repeats a problem")
    experiment = config.logging.experiment
    if not experiment.strip() or Path(experiment).is_absolute() or ".." in Path(experiment).parts:
        raise ConfigError(f"--experiment {experiment!r}: expected a folder name under --run-dir (not empty, not "
                          f"absolute, no '..')")
    if not config.logging.run_dir.strip():
        raise ConfigError("--run-dir '': expected a folder")
    if not config.logging.wandb_project.strip():
        raise ConfigError("--logging.wandb_project '': expected a W&B project name")
    if config.logging.wandb_mode not in WANDB_MODES:
        raise ConfigError(f"--logging.wandb_mode {config.logging.wandb_mode!r}: expected online, offline or "
                          f"disabled (empty: WANDB_MODE, else online with a W&B login, else offline)")


ANSWER_FORMATS = ("number", "math", "text")
"""How a data task reads and compares answers (`TaskConfig.answer_format`)."""

DATA_TASK_FIELDS = ("data_path", "test_path", "ood_path", "question_field", "answer_field", "solution_field",
                    "answer_format", "step_delimiter", "instruction", "few_shot", "chat_template")
"""The task fields only data tasks read."""


def _check_data_task_values(task: TaskConfig) -> None:
    """The checks of a data task's own fields (whether the task reads them, and its files:
    `rest_mcts.preflight`)."""
    if task.ood_problems < 0:
        raise ConfigError(f"--task.ood_problems {task.ood_problems}: expected 0 or more")
    if task.answer_format not in ANSWER_FORMATS:
        raise ConfigError(f"--task.answer_format {task.answer_format!r}: expected one of {ANSWER_FORMATS}")
    if task.chat_template not in ("auto", "off"):
        raise ConfigError(f"--task.chat_template {task.chat_template!r}: expected auto or off")
    if task.few_shot < 0:
        raise ConfigError(f"--task.few_shot {task.few_shot}: expected 0 or more")


VERIFIER_DATA = ("solutions", "prefixes")
"""What a verifier trained in the rounds learns from (`VerifierConfig.data`)."""
VERIFIER_EVAL_AS = ("leaf", "step", "both")
"""How the round evaluation's MCTS* reads that verifier (`VerifierConfig.eval_as`)."""
