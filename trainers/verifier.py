"""Verifier training on the shared DeepSpeed loop: a generative verifier (GenRM, direct or CoT, optionally with
solution SFT), a discriminative outcome reward model, or a verifier trained on preference pairs (SimPO, DPO).

One loop per objective where they differ: `_train_genrm` (next-token loss on verification texts, mixed with
solutions), `_train_preference` (SimPO and DPO on pairs kept in one micro-batch), and the ORM, which is the
PRM's trainer (`trainers.prm.train_prm`) with one target per solution. Texts are encoded by
`lm.verifier_format`, as the verifier scorer reads them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from lm.data import PolicyExample, PreferencePair, ValueExample, VerificationExample
from lm.encoding import IGNORE_INDEX
from lm.logprobs import labelled_logprob_sums, row_logprobs
from lm.verifier_format import VerifierFormat, check_encodable, verification_training_row
from trainers.engine import (
    StepCallback,
    TrainResult,
    TrainSequence,
    TrainSpec,
    partitioned_loading,
    pick_device_and_backend,
    run_training,
)
from trainers.policy_sft import count_predicted_tokens, load_causal_lm, policy_sequences
from trainers.prm import train_prm
from trainers.spec import GENERATIVE_KINDS, PREFERENCE_KINDS, VERIFIER_KINDS

DEFAULT_BETA = {"simpo": 2.0, "dpo": 0.1}
"""The papers' β: SimPO (Meng et al. 2024) uses 2.0-2.5, DPO (Rafailov et al. 2023) 0.1."""


@dataclass(frozen=True)
class VerifierObjective:
    """What a verifier is trained to do and with which loss."""

    kind: str = "genrm"
    """One of VERIFIER_KINDS. genrm: GenRM's direct verifier (Zhang et al. 2025), next-token loss on the yes/no
    verdict after the solution and the question. genrm_cot: GenRM-CoT, the same after a written check (the
    example's rationale), which is learned too. orm: a discriminative outcome reward model, a one-output token
    classifier trained with BCE on the solution's correctness at its last token (Cobbe et al. 2021). simpo, dpo:
    a causal LM trained on preference pairs, whose length-normalised (SimPO) or reference-relative (DPO)
    log-likelihood then scores solutions (Liang et al. 2024 found SimPO best)."""
    solution_weight: float = 0.0
    """λ of GenRM's unified objective, loss = L_verify + λ·L_solutions, with L_solutions the policy's SFT loss on
    correct solutions (genrm, genrm_cot); 0: verification only, the solutions are not trained."""
    beta: float | None = None
    """β of SimPO or DPO; None: the paper's (DEFAULT_BETA: SimPO 2.0, DPO 0.1)."""
    gamma: float = 1.0
    """SimPO's target reward margin γ; Meng et al. 2024 advise γ/β near 0.5."""
    chosen_sft_weight: float = 0.0
    """λ of an SFT term on each pair's chosen solution added to the preference loss (simpo, dpo): loss =
    L_pref + λ·mean over pairs of −log π(y_w|x)/|y_w| (DPO with an NLL term, as iterative RPO trains; Pang et al.
    2024); 0: the preference loss alone."""
    format: VerifierFormat = field(default_factory=VerifierFormat)
    """The texts a generative verifier reads and writes (genrm, genrm_cot)."""

    def __post_init__(self):
        if self.kind not in VERIFIER_KINDS:
            raise ValueError(f"verifier.kind {self.kind!r}: expected one of {VERIFIER_KINDS}")
        if self.solution_weight < 0:
            raise ValueError(f"verifier.solution_weight {self.solution_weight}: must be >= 0")
        if self.solution_weight > 0 and self.kind not in GENERATIVE_KINDS:
            raise ValueError(f"verifier.solution_weight (λ) mixes solution SFT into GenRM training; verifier.kind "
                             f"{self.kind!r} has no such term (use 0)")
        if self.beta is not None and self.beta <= 0:
            raise ValueError(f"verifier.beta {self.beta}: must be > 0")
        if self.chosen_sft_weight < 0 or (self.chosen_sft_weight > 0 and self.kind not in PREFERENCE_KINDS):
            raise ValueError(f"chosen_sft_weight {self.chosen_sft_weight}: expected 0, or a positive weight with a "
                             f"preference kind {PREFERENCE_KINDS} (verifier.kind {self.kind!r})")

    @property
    def preference_beta(self) -> float:
        """β of the preference loss: `beta`, or the paper's for `kind`."""
        return self.beta if self.beta is not None else DEFAULT_BETA[self.kind]


@dataclass(frozen=True)
class VerifierData:
    """One verifier training call's objective and data; which fields are read depends on `objective.kind`."""

    objective: VerifierObjective
    examples: tuple[VerificationExample, ...] = ()
    """Labelled solutions (genrm, genrm_cot with their rationales, orm)."""
    pairs: tuple[PreferencePair, ...] = ()
    """A correct and an incorrect solution of one problem each (simpo, dpo)."""
    solutions: tuple[PolicyExample, ...] = ()
    """Correct solutions for GenRM's λ term (read only when solution_weight > 0)."""


def check_data(data: VerifierData) -> None:
    """Raise ValueError, naming verifier.kind, when `data` lacks what its objective trains on."""
    objective = data.objective
    kind = objective.kind
    if kind in PREFERENCE_KINDS and not data.pairs:
        raise ValueError(f"verifier.kind {kind!r} trains on preference pairs (VerifierData.pairs: PreferencePair, a "
                         "correct and an incorrect solution of one problem); none given")
    if kind not in PREFERENCE_KINDS and not data.examples:
        raise ValueError(f"verifier.kind {kind!r} trains on labelled solutions (VerifierData.examples: "
                         "VerificationExample); none given")
    if kind == "genrm_cot" and not any(example.rationale for example in data.examples):
        raise ValueError("verifier.kind 'genrm_cot' learns written checks: no VerificationExample has a rationale "
                         "(use verifier.kind 'genrm' for a direct verifier)")
    if objective.solution_weight > 0 and not data.solutions:
        raise ValueError(f"verifier.solution_weight {objective.solution_weight} trains on correct solutions "
                         "(VerifierData.solutions: PolicyExample); none given")


# ---- GenRM: next-token loss on verification texts, plus λ × solution SFT -----------------------------------


def verification_sequences(tokenizer, examples: Sequence[VerificationExample], verifier_format: VerifierFormat,
                           with_rationale: bool) -> list[TrainSequence]:
    """One row per example (`verification_training_row`): the direct form, or with `with_rationale` the CoT
    form with the example's rationale."""
    sequences = []
    for example in examples:
        input_ids, labels = verification_training_row(tokenizer, example.prompt, example.steps, example.correct,
                                                      verifier_format, example.rationale if with_rationale else None)
        sequences.append(TrainSequence(input_ids, labels))
    return sequences


def mixed_verification_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    is_solution: torch.Tensor,
    solution_weight: float,
    tokens_per_row: tuple[float, float] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GenRM's unified objective on one micro-batch (Zhang et al. 2025): L_verify + λ·L_solutions.

    logits: [rows, length, vocab]; labels: [rows, length] (input ids, masked; position t - 1 predicts t);
    is_solution: [rows] bool, True for a solution (SFT) row, False for a verification row; λ = solution_weight.
    Returns (loss, weighted_loss):
    - loss = mean cross entropy over the batch's verification tokens + λ × mean over its solution tokens. A kind
      the batch holds no token of adds 0 (not NaN) and the other term is not rescaled: a batch of verification
      rows only has loss L_verify, one of solution rows only λ·L_solutions.
    - weighted_loss, what is back-propagated: with `tokens_per_row` = (t_verify, t_solution), the labelled tokens
      of each kind per training row averaged over all rows (both kinds), each term's summed cross entropy is
      divided by t_kind × rows in the batch instead of by the batch's own token count of that kind. Every token
      of a kind then weighs the same in every batch, however length grouping filled it (grouping puts the
      shorter kind's rows together), as the engine's group_by_length weighting does for a single kind, and the
      expectation over batches is still L_verify + λ·L_solutions. None (no length grouping): weighted_loss is
      loss, as the engine weighs plain means.
    """
    targets = labels[:, 1:]
    per_token = F.cross_entropy(logits[:, :-1, :].float().transpose(1, 2), targets, ignore_index=IGNORE_INDEX,
                                reduction="none")  # [rows, length - 1], 0 where unlabelled
    labelled = targets != IGNORE_INDEX
    solution = is_solution.to(labelled.device)[:, None]
    terms = ((labelled & ~solution, 1.0), (labelled & solution, solution_weight))
    loss = sum(weight * per_token[mask].sum() / mask.sum().clamp(min=1) for mask, weight in terms)
    if tokens_per_row is None:
        return loss, loss
    rows = labels.shape[0]
    weighted_loss = sum(weight * per_token[mask].sum() / max(expected * rows, 1e-9)
                        for (mask, weight), expected in zip(terms, tokens_per_row))
    return loss, weighted_loss


def _train_genrm(model_path, data: VerifierData, spec: TrainSpec, out_dir, rank: int, world_size: int,
                 on_step: StepCallback | None) -> TrainResult:
    """GenRM and GenRM-CoT: verification rows, and with λ > 0 the solutions' SFT rows, mixed in batches."""
    objective = data.objective
    with partitioned_loading(spec, world_size):
        tokenizer, model = load_causal_lm(model_path)
    check_encodable(tokenizer, objective.format)
    sequences = verification_sequences(tokenizer, data.examples, objective.format,
                                       with_rationale=objective.kind == "genrm_cot")
    solution_rows = policy_sequences(tokenizer, data.solutions) if objective.solution_weight > 0 else []
    is_solution = torch.tensor([False] * len(sequences) + [True] * len(solution_rows))
    sequences += solution_rows
    tokens_per_row = None
    if spec.group_by_length:
        counts = torch.tensor([sum(label != IGNORE_INDEX for label in s.labels[1:]) for s in sequences],
                              dtype=torch.float64)
        tokens_per_row = (counts[~is_solution].sum().item() / len(sequences),
                          counts[is_solution].sum().item() / len(sequences))

    def compute_loss(engine, batch):
        logits = engine(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return mixed_verification_loss(logits, batch["labels"], is_solution[batch["row_index"].cpu()],
                                       objective.solution_weight, tokens_per_row)

    return run_training(model, tokenizer, sequences, compute_loss, count_predicted_tokens, torch.long, spec,
                        out_dir, rank, world_size, on_step=on_step)


# ---- SimPO and DPO: pairs of solutions, one unit of batching each -------------------------------------------


def simpo_loss(chosen_logps: torch.Tensor, chosen_lengths: torch.Tensor, rejected_logps: torch.Tensor,
               rejected_lengths: torch.Tensor, beta: float, gamma: float) -> torch.Tensor:
    """SimPO (Meng et al. 2024), mean over pairs:
    −log σ(β/|y_w|·log π(y_w|x) − β/|y_l|·log π(y_l|x) − γ).

    All inputs [pairs]: log-likelihoods summed over each solution's tokens, and those token counts |y|.
    """
    margin = beta * chosen_logps / chosen_lengths - beta * rejected_logps / rejected_lengths - gamma
    return -F.logsigmoid(margin).mean()


def dpo_loss(chosen_logps: torch.Tensor, rejected_logps: torch.Tensor, reference_chosen_logps: torch.Tensor,
             reference_rejected_logps: torch.Tensor, beta: float) -> torch.Tensor:
    """DPO (Rafailov et al. 2023), mean over pairs:
    −log σ(β·[(log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x))]).

    All inputs [pairs]: log-likelihoods summed over each solution's tokens, under the model and the reference.
    """
    margin = (chosen_logps - reference_chosen_logps) - (rejected_logps - reference_rejected_logps)
    return -F.logsigmoid(beta * margin).mean()


def preference_loss(objective: VerifierObjective, logps: torch.Tensor, lengths: torch.Tensor,
                    reference_logps: torch.Tensor | None) -> torch.Tensor:
    """The loss of a micro-batch of pairs, chosen rows at even and rejected at odd places (`pair_sequences`):
    SimPO, or DPO against `reference_logps` (the rows' log π_ref), plus λ·NLL per token of the chosen solutions
    (`objective.chosen_sft_weight`)."""
    chosen, rejected = logps[0::2], logps[1::2]
    beta = objective.preference_beta
    if objective.kind == "simpo":
        loss = simpo_loss(chosen, lengths[0::2], rejected, lengths[1::2], beta, objective.gamma)
    else:
        loss = dpo_loss(chosen, rejected, reference_logps[0::2], reference_logps[1::2], beta)
    if objective.chosen_sft_weight > 0:
        loss = loss + objective.chosen_sft_weight * (-chosen / lengths[0::2]).mean()
    return loss


def pair_sequences(tokenizer, pairs: Sequence[PreferencePair]) -> tuple[list[TrainSequence], list[tuple[int, int]]]:
    """Two rows per pair, chosen at 2i and rejected at 2i + 1, and the units (2i, 2i + 1) that keep them in one
    micro-batch. A row is the policy's SFT row of the solution (`policy_sequences`: prompt masked, steps and EOS
    labelled), so log π(y|x) sums over the steps' tokens and EOS, and |y| counts them."""
    solutions = [PolicyExample(pair.problem_id, pair.prompt, steps) for pair in pairs
                 for steps in (pair.chosen, pair.rejected)]
    return policy_sequences(tokenizer, solutions), [(2 * i, 2 * i + 1) for i in range(len(pairs))]


def reference_logprobs(model: torch.nn.Module, tokenizer, sequences: Sequence[TrainSequence],
                       batch_size: int) -> torch.Tensor:
    """log π_ref(y|x) of every row [rows], from `model` as loaded: computed once before training, in eval mode
    without gradients, on the training device, so no second model lives in memory while training. Every rank
    computes all rows (the same numbers on each), as any rank may draw any pair in a later epoch."""
    device, _ = pick_device_and_backend()
    if device == "cuda":
        model.to(torch.device("cuda", torch.cuda.current_device()))
    pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    was_training = model.training
    model.eval()
    sums, _ = row_logprobs(model, [s.input_ids for s in sequences], [s.labels for s in sequences], pad_token_id,
                           batch_size)
    model.train(was_training)
    return sums


def _train_preference(model_path, data: VerifierData, spec: TrainSpec, out_dir, rank: int,
                      world_size: int, on_step: StepCallback | None) -> TrainResult:
    """SimPO or DPO on pairs; a micro-batch holds spec.micro_batch_size whole pairs (2 rows each)."""
    objective = data.objective
    tokenizer, model = load_causal_lm(model_path)
    sequences, units = pair_sequences(tokenizer, data.pairs)
    reference = None
    if objective.kind == "dpo":
        reference = reference_logprobs(model, tokenizer, sequences, batch_size=2 * spec.micro_batch_size)

    def compute_loss(engine, batch):
        logits = engine(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        logps, lengths = labelled_logprob_sums(logits, batch["labels"])
        # The engine keeps a unit's rows together and in order: chosen rows at even, rejected at odd places.
        reference_logps = None if reference is None else reference[batch["row_index"].cpu()].to(logps.device)
        loss = preference_loss(objective, logps, lengths, reference_logps)
        return loss, loss  # every pair weighs the same, whatever its length: no token weighting

    return run_training(model, tokenizer, sequences, compute_loss, count_predicted_tokens, torch.long, spec,
                        out_dir, rank, world_size, units=units, on_step=on_step)


# ---- ORM: the PRM's loss with one target per solution -------------------------------------------------------


def orm_value_examples(examples: Sequence[VerificationExample]) -> list[ValueExample]:
    """The ORM's training targets as PRM value examples: the solution's correctness (1 or 0) at its last step,
    which the PRM trainer labels at that step's last token."""
    return [ValueExample(e.problem_id, e.prompt, e.steps, float(e.correct)) for e in examples]


# ---- entry point --------------------------------------------------------------------------------------------


def train_verifier(
    model_path: str | os.PathLike,
    data: VerifierData,
    spec: TrainSpec,
    out_dir: str | os.PathLike,
    rank: int,
    world_size: int,
    on_step: StepCallback | None = None,
) -> TrainResult:
    """Train the verifier `data.objective` describes, starting from the checkpoint at `model_path`; save it (and
    its tokenizer) to `out_dir`.

    genrm, genrm_cot, simpo and dpo train the causal LM at `model_path` (e.g. a copy of the policy); orm trains
    a one-output token classifier (`AutoModelForTokenClassification`, num_labels=1) as the PRM trainer does.
    Every rank calls this with the same data after `init_distributed`; each trains on its shard. `on_step`: called
    after every optimizer step (`trainers.engine.StepCallback`).
    Raises ValueError when the data lacks what the objective trains on.
    """
    check_data(data)
    kind = data.objective.kind
    if kind == "orm":
        return train_prm(model_path, orm_value_examples(data.examples), spec, out_dir, rank, world_size, on_step)
    if kind in PREFERENCE_KINDS:
        return _train_preference(model_path, data, spec, out_dir, rank, world_size, on_step)
    return _train_genrm(model_path, data, spec, out_dir, rank, world_size, on_step)
