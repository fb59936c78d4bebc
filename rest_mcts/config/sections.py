"""The run's configuration as plain data: one frozen dataclass per section (each field's docstring is its flag's
help and its line in docs/configuration.md), the whole run's `RunConfig`, and the choices some fields take."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from lm.verifier_format import VerifierFormat
from rest_mcts.config.cluster import ClusterConfig
from rest_mcts.config.engine import EngineConfig
from rest_mcts.config.methods import RestEMConfig, SelfRewardingConfig
from search.mcts import MCTSParams
from trainers.spec import TrainSpec


@dataclass(frozen=True)
class TaskConfig:
    name: str = "modtarget"
    """Task to train on: modtarget (reach a target digit; the default), modchain (mod-10 chains), last_letter
    (last-letter concatenation) or word_sort (sort pseudo-words); docs/tasks.md."""
    seed_problems: int = 8000
    """Problems with worked solutions used for the round-0 warm start (SFT seed set). Data tasks: this and the other
    split sizes, where no flag or config file gives them, are taken from the files (docs/tasks.md)."""
    train_problems: int = 3000
    """Size of the pool of training problems searched by the rounds (data tasks: from the files, see seed_problems)."""
    problems_per_round: int = 384
    """Training problems searched each round (a new slice of the pool every round; data tasks: at most the pool)."""
    test_problems: int = 200
    """Held-out in-distribution problems used for evaluation (data tasks: the test file, else a tenth of data_path)."""
    ood_problems: int = 50
    """Held-out out-of-distribution (longer) problems used for evaluation (data tasks: the whole ood split, if any)."""
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
    """The rounds' training search: the library's MCTS* parameters (`search.params.MCTSParams`, defined once there)
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
    backend: str = "hf"
    """Who generates steps in the search workers: 'hf' (transformers and the project's batched KV cache, right for
    small models on CPU) or 'vllm' (a vLLM engine per worker, prefix caching on: the `engine` section)."""
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
    """PRM training target of each step of the searched trees: from the tree, 'hard' (Math-Shepherd's hard
    estimate: 1 if a correct answer lies below the step, else 0) or 'quality' (ReST-MCTS*'s quality value v_k,
    rising along a correct path); or from `mc_completions` Monte Carlo completions by the policy that searched,
    'mc_hard' (1 if any reaches the right answer), 'mc_soft' (the share that does) or 'omega' (OmegaPRM: the
    first wrong step of each wrong finished solution found by binary search, the steps before it 1, it 0)."""
    mc_completions: int = 4
    """Completions per labelled prefix for the Monte Carlo targets (mc_hard, mc_soft, omega)."""
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
    first and picks its answer margin from `round_metrics.ANSWER_MARGINS`: the first-path margin unless a smaller
    one beats it by a sign test with family-wise error 0.01 (`round_metrics.pick_answer_margin`). 0: no dev
    split; `answer_margin` is used as given. Data tasks, where no flag or file gives it: at most a fifth of the pool."""
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
    (`search.params.MCTSParams.initial_branch`)."""

    def mcts_params(self, search: SearchConfig, **changes: Any) -> MCTSParams:
        """The evaluation's MCTS*: the training search's parameters, solving (stop at end_gate), with this
        section's simulations, first-path and widening settings, and `changes`."""
        return search.mcts_params(**{"max_simulations": self.max_simulations, "stop_at_end_gate": True,
                                     "first_path_first": self.first_path_first,
                                     "initial_branch": min(self.initial_branch, search.branch), **changes})


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
class SandboxConfig:
    """The sandbox that runs model-written programs (CoTnPoT's checks; docs/sandbox.md)."""

    allow_unisolated: bool = False
    """Run model-written programs where no sandbox isolates the filesystem and network (no bubblewrap, no namespaces
    for the fallback) in one that does not, recording what it did not enforce; off: refuse to run them there."""


@dataclass(frozen=True)
class LoggingConfig:
    run_dir: str = "runs"
    """Folder that holds the experiment folders."""
    experiment: str = "default"
    """Experiment name (folder under run_dir, W&B run name)."""
    wandb_group: str = ""
    """W&B group of the runs one comparison holds (the arms and seeds of experiments/self_training.sh, and their
    evaluate runs), so that W&B's run table and panels group them; empty: the experiment name."""
    wandb_project: str = "rest-mcts"
    """W&B project."""
    wandb_mode: str = ""
    """W&B mode: online, offline or disabled (empty: offline unless WANDB_MODE or a W&B login says otherwise)."""
    wandb_trees: int = 3
    """Test trees of each round's evaluation logged to W&B as HTML pages (`python -m rest_mcts.show_trees` writes
    them all); 0: none."""
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
    """Self-training method: rest_mcts (MCTS* search, process rewards, policy and PRM training), rest_em (sampled
    solutions, the oracle-correct ones kept, policy training only) or self_rewarding (sampled solutions judged by a
    model, DPO on the highest against the lowest judged); the stages: `rest_mcts.recipes.RECIPES`."""
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    values: ValuesConfig = field(default_factory=ValuesConfig)
    traces: TracesConfig = field(default_factory=TracesConfig)
    rest_em: RestEMConfig = field(default_factory=RestEMConfig)
    self_rewarding: SelfRewardingConfig = field(default_factory=SelfRewardingConfig)
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
    engine: EngineConfig = field(default_factory=EngineConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


WANDB_MODES = ("", "online", "offline", "disabled")
"""`logging.wandb_mode` values (empty: decided by WANDB_MODE and the W&B login)."""


ANSWER_FORMATS = ("number", "math", "text")
"""How a data task reads and compares answers (`TaskConfig.answer_format`)."""


DATA_TASK_FIELDS = ("data_path", "test_path", "ood_path", "question_field", "answer_field", "solution_field",
                    "answer_format", "step_delimiter", "instruction", "few_shot", "chat_template")
"""The task fields only data tasks read."""


VERIFIER_DATA = ("solutions", "prefixes")
"""What a verifier trained in the rounds learns from (`VerifierConfig.data`)."""


VERIFIER_EVAL_AS = ("leaf", "step", "both")
"""How the round evaluation's MCTS* reads that verifier (`VerifierConfig.eval_as`)."""
