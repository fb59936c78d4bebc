"""Verifier trainer: SimPO, DPO and GenRM's λ mixing against hand-computed numbers, per-row log-likelihoods,
pairs that no batching splits, and one short DeepSpeed run per objective on a tiny Llama."""

from __future__ import annotations

import math
import random

import pytest
import torch

from lm.data import PolicyExample, PreferencePair, VerificationExample
from lm.encoding import IGNORE_INDEX
from lm.logprobs import labelled_logprob_sums, row_logprobs
from lm.verifier_format import VerifierFormat, verification_training_row
from tests.trainers.test_trainers import (
    parameters_of,
    policy_examples,
    save_tiny_policy,
    single_rank,  # noqa: F401 (the one-rank process group fixture, used by name)
    tiny_tokenizer,
)
from trainers import TRAINER_ROLES, trainer_for
from trainers.batches import unit_micro_batches
from trainers.engine import TrainSequence, TrainSpec
from trainers.policy_sft import policy_sequences
from trainers.verifier import (
    VerifierData,
    VerifierObjective,
    check_data,
    dpo_loss,
    mixed_verification_loss,
    orm_value_examples,
    pair_sequences,
    preference_loss,
    simpo_loss,
    train_verifier,
    verification_sequences,
)


def verification_examples() -> list[VerificationExample]:
    """Right and wrong sums, each with a written check of its first step."""
    examples = []
    for i in range(4):
        right, wrong = 2 * i, 2 * i + 1
        for total, correct in ((right, True), (wrong, False)):
            examples.append(VerificationExample(
                f"p{i}", f"{i}+{i}=?", (f"{i}+{i}={total};", f"answer {total}"), correct,
                rationale=f"{i}+{i} is {right}, {'same' if correct else 'not'} {total};"))
    return examples


def preference_pairs() -> list[PreferencePair]:
    return [PreferencePair(f"p{i}", f"{i}+{i}=?", (f"{i}+{i}={2 * i};", f"answer {2 * i}"),
                           (f"{i}+{i}={2 * i + 1};", f"so {2 * i + 1};", f"answer {2 * i + 1}"))
            for i in range(4)]


# ---- losses by hand ------------------------------------------------------------------------------------------


def test_simpo_loss_matches_the_formula_worked_by_hand():
    # Pair 1: log π(y_w) = -3 over 3 tokens, log π(y_l) = -8 over 4 tokens; β = 2, γ = 0.5:
    #   margin = 2·(-3/3) - 2·(-8/4) - 0.5 = 1.5, loss = -log σ(1.5) = log(1 + e^-1.5) = 0.2014132780
    # Pair 2: log π(y_w) = -6 over 2 tokens, log π(y_l) = -2 over 1 token:
    #   margin = 2·(-3) - 2·(-2) - 0.5 = -2.5, loss = log(1 + e^2.5) = 2.5788897343
    chosen, chosen_lengths = torch.tensor([-3.0, -6.0]), torch.tensor([3, 2])
    rejected, rejected_lengths = torch.tensor([-8.0, -2.0]), torch.tensor([4, 1])
    loss = simpo_loss(chosen, chosen_lengths, rejected, rejected_lengths, beta=2.0, gamma=0.5)
    assert loss.item() == pytest.approx((0.2014132780 + 2.5788897343) / 2, abs=1e-6)
    first = simpo_loss(chosen[:1], chosen_lengths[:1], rejected[:1], rejected_lengths[:1], beta=2.0, gamma=0.5)
    assert first.item() == pytest.approx(0.2014132780, abs=1e-7)


def test_dpo_loss_matches_the_formula_worked_by_hand():
    # log π(y_w) = -3, log π_ref(y_w) = -4, log π(y_l) = -8, log π_ref(y_l) = -6; β = 0.1:
    #   β·[(-3 + 4) - (-8 + 6)] = 0.1·3 = 0.3, loss = log(1 + e^-0.3) = 0.5543552445
    loss = dpo_loss(torch.tensor([-3.0]), torch.tensor([-8.0]), torch.tensor([-4.0]), torch.tensor([-6.0]), beta=0.1)
    assert loss.item() == pytest.approx(0.5543552445, abs=1e-7)
    # A model equal to its reference has margin 0: loss log 2, whatever the likelihoods.
    same = dpo_loss(torch.tensor([-5.0]), torch.tensor([-7.0]), torch.tensor([-5.0]), torch.tensor([-7.0]), beta=0.1)
    assert same.item() == pytest.approx(math.log(2), abs=1e-7)


def test_dpo_with_an_sft_weight_adds_the_chosen_solutions_nll_per_token():
    # Rows chosen, rejected of the pair above (log π(y_w) = -3 over 3 tokens); λ = 0.5 adds 0.5·3/3 = 0.5.
    logps, lengths, reference = (torch.tensor([-3.0, -8.0]), torch.tensor([3, 4]), torch.tensor([-4.0, -6.0]))
    plain = preference_loss(VerifierObjective(kind="dpo", beta=0.1), logps, lengths, reference)
    assert plain.item() == pytest.approx(0.5543552445, abs=1e-7)
    mixed = preference_loss(VerifierObjective(kind="dpo", beta=0.1, chosen_sft_weight=0.5), logps, lengths, reference)
    assert mixed.item() == pytest.approx(0.5543552445 + 0.5, abs=1e-6)
    with pytest.raises(ValueError, match="chosen_sft_weight 0.5: expected 0, or a positive weight with a preference"):
        VerifierObjective(kind="genrm", chosen_sft_weight=0.5)


def tiny_mixed_batch():
    """Vocabulary of 2. Row 0 (verification) labels one token: position 1 with logits [ln 3, 0] predicts token 1,
    cross entropy log 4. Row 1 (solution) labels two: [ln 3, 0] predicting 0 (log 4/3) and [0, 0] predicting 1
    (log 2)."""
    logits = torch.zeros(2, 3, 2)
    logits[0, 1] = torch.tensor([math.log(3), 0.0])
    logits[1, 0] = torch.tensor([math.log(3), 0.0])
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 1], [IGNORE_INDEX, 0, 1]])
    return logits, labels, torch.tensor([False, True])


def test_mixed_loss_is_mean_verification_ce_plus_lambda_times_mean_solution_ce():
    logits, labels, is_solution = tiny_mixed_batch()
    loss, weighted = mixed_verification_loss(logits, labels, is_solution, solution_weight=0.5)
    # log 4 + 0.5·(log 4/3 + log 2)/2 = 1.3862943611 + 0.2452073133
    assert loss.item() == pytest.approx(1.6315016744, abs=1e-6)
    assert weighted.item() == loss.item()  # no length grouping: plain means


def test_mixed_loss_of_a_batch_holding_one_kind_is_that_kinds_term_alone():
    logits, labels, _ = tiny_mixed_batch()
    only_verification, _ = mixed_verification_loss(logits, labels, torch.tensor([False, False]), 0.5)
    # both rows verification: mean over three tokens of (log 4, log 4/3, log 2)
    assert only_verification.item() == pytest.approx((math.log(4) + math.log(4 / 3) + math.log(2)) / 3, abs=1e-7)
    verification_row, _ = mixed_verification_loss(logits[:1], labels[:1], torch.tensor([False]), 0.5)
    assert verification_row.item() == pytest.approx(math.log(4), abs=1e-7)  # no NaN from the missing kind
    solution_row, _ = mixed_verification_loss(logits[1:], labels[1:], torch.tensor([True]), 0.5)
    assert solution_row.item() == pytest.approx(0.5 * (math.log(4 / 3) + math.log(2)) / 2, abs=1e-7)


def test_mixed_loss_weighs_each_kinds_tokens_by_its_mean_count_per_row_under_length_grouping():
    logits, labels, is_solution = tiny_mixed_batch()
    # 1.5 verification and 4 solution tokens per training row, two rows in the batch:
    #   log 4 / (1.5·2) + 0.5·(log 4/3 + log 2) / (4·2) = 0.4620981204 + 0.0613018283
    loss, weighted = mixed_verification_loss(logits, labels, is_solution, 0.5, tokens_per_row=(1.5, 4.0))
    assert loss.item() == pytest.approx(1.6315016744, abs=1e-6)
    assert weighted.item() == pytest.approx(0.5233999487, abs=1e-7)
    # Each token's weight is fixed: a batch holding only the verification row scales its sum by 1 / (1.5·1).
    _, alone = mixed_verification_loss(logits[:1], labels[:1], is_solution[:1], 0.5, tokens_per_row=(1.5, 4.0))
    assert alone.item() == pytest.approx(math.log(4) / 1.5, abs=1e-7)


def test_mixed_loss_without_solutions_is_the_causal_lm_loss_the_engine_weighs():
    from trainers.policy_sft import causal_lm_loss

    torch.manual_seed(0)
    logits = torch.randn(3, 5, 7)
    labels = torch.tensor([[IGNORE_INDEX, 1, 2, 3, IGNORE_INDEX], [IGNORE_INDEX] * 4 + [6],
                           [IGNORE_INDEX, IGNORE_INDEX, 4, 5, 0]])
    loss, weighted = mixed_verification_loss(logits, labels, torch.zeros(3, dtype=torch.bool), 0.0, (2.0, 0.0))
    assert loss.item() == pytest.approx(causal_lm_loss(logits, labels).item(), abs=1e-6)
    # the engine's weight: mean loss × labelled tokens (3 + 1 + 3) / (labels per row × rows)
    assert weighted.item() == pytest.approx(loss.item() * 7 / (2.0 * 3), abs=1e-6)


# ---- per-row log-likelihoods ---------------------------------------------------------------------------------


def direct_row_logprob(logits: torch.Tensor, labels: list[int]) -> tuple[float, int]:
    """Σ log softmax(logits[t - 1])[labels[t]] over labelled t, one position at a time."""
    total, count = 0.0, 0
    for t in range(1, len(labels)):
        if labels[t] != IGNORE_INDEX:
            total += torch.log_softmax(logits[t - 1].double(), dim=-1)[labels[t]].item()
            count += 1
    return total, count


def test_labelled_logprob_sums_match_a_direct_computation_and_ignore_padding():
    torch.manual_seed(1)
    logits = torch.randn(3, 6, 7)
    rows = [[IGNORE_INDEX, IGNORE_INDEX, 3, 4, 0, 6], [IGNORE_INDEX, 2, 5], [IGNORE_INDEX, IGNORE_INDEX]]
    labels = torch.full((3, 6), IGNORE_INDEX)
    for index, row in enumerate(rows):
        labels[index, : len(row)] = torch.tensor(row)
    logits[1, 2:] = 1e4  # padding positions: whatever they hold must not count
    sums, counts = labelled_logprob_sums(logits, labels)
    for index, row in enumerate(rows):
        total, count = direct_row_logprob(logits[index], row)
        assert sums[index].item() == pytest.approx(total, abs=1e-5)
        assert counts[index].item() == count
    assert counts.tolist() == [4, 2, 0] and sums[2].item() == 0.0


def test_row_logprobs_of_padded_batches_equal_each_row_scored_alone(tmp_path):
    from transformers import AutoModelForCausalLM

    tokenizer = tiny_tokenizer()
    model = AutoModelForCausalLM.from_pretrained(save_tiny_policy(tmp_path / "policy")).eval()
    sequences = policy_sequences(tokenizer, policy_examples(5) + [PolicyExample("q", "1=?", ("a much longer one",))])
    sums, counts = row_logprobs(model, [s.input_ids for s in sequences], [s.labels for s in sequences],
                                tokenizer.pad_token_id, batch_size=4)
    with torch.no_grad():
        for index, sequence in enumerate(sequences):
            logits = model(input_ids=torch.tensor([sequence.input_ids])).logits[0]
            total, count = direct_row_logprob(logits, sequence.labels)
            assert sums[index].item() == pytest.approx(total, abs=1e-4)
            assert counts[index].item() == count


# ---- rows and batching ---------------------------------------------------------------------------------------


def test_verification_rows_are_the_formats_training_rows_direct_or_with_the_rationale():
    tokenizer = tiny_tokenizer()
    examples = verification_examples()[:2]
    for with_rationale in (False, True):
        rows = verification_sequences(tokenizer, examples, VerifierFormat(), with_rationale)
        for row, example in zip(rows, examples):
            expected = verification_training_row(tokenizer, example.prompt, example.steps, example.correct,
                                                 VerifierFormat(), example.rationale if with_rationale else None)
            assert (row.input_ids, row.labels) == expected
    direct = verification_sequences(tokenizer, examples, VerifierFormat(), with_rationale=False)
    assert tokenizer.decode([label for label in direct[0].labels if label != IGNORE_INDEX]) == "yes"
    assert tokenizer.decode([label for label in direct[1].labels if label != IGNORE_INDEX]) == "no"


def test_pair_rows_are_the_solutions_sft_rows_chosen_then_rejected():
    tokenizer = tiny_tokenizer()
    pairs = preference_pairs()
    sequences, units = pair_sequences(tokenizer, pairs)
    assert units == [(0, 1), (2, 3), (4, 5), (6, 7)]
    (chosen,) = policy_sequences(tokenizer, [PolicyExample("p1", pairs[1].prompt, pairs[1].chosen)])
    (rejected,) = policy_sequences(tokenizer, [PolicyExample("p1", pairs[1].prompt, pairs[1].rejected)])
    assert sequences[2] == chosen and sequences[3] == rejected


def test_orm_targets_are_the_solutions_correctness_at_their_last_step():
    targets = orm_value_examples(verification_examples()[:2])
    assert [(t.steps, t.target) for t in targets] == [(("0+0=0;", "answer 0"), 1.0), (("0+0=1;", "answer 1"), 0.0)]


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("micro_batch_size", [1, 3, 8])
def test_pairs_are_never_split_across_micro_batches_by_length_grouping_or_sharding(world_size, micro_batch_size):
    rng = random.Random(world_size * 10 + micro_batch_size)
    # 101 pairs; the two rows of a pair differ wildly in length, so sorting rows by length would split them.
    lengths = [length for _ in range(101) for length in (rng.randint(2, 10), rng.randint(50, 400))]
    rng.shuffle(lengths)
    units = [(2 * i, 2 * i + 1) for i in range(101)]
    spec = TrainSpec(micro_batch_size=micro_batch_size, group_by_length=True, seed=5)
    per_epoch = math.ceil(math.ceil(101 / world_size) / micro_batch_size)
    seen = set()
    for rank in range(world_size):
        batches = unit_micro_batches(units, lengths, spec, rank, world_size)
        for _ in range(2 * per_epoch):  # two epochs
            rows = next(batches)
            assert len(rows) % 2 == 0 and len(rows) <= 2 * micro_batch_size
            chosen, rejected = rows[0::2], rows[1::2]
            assert all(r % 2 == 0 and s == r + 1 for r, s in zip(chosen, rejected))
            seen.update(r // 2 for r in chosen)
    assert seen == set(range(101))


def test_single_row_units_batch_as_the_plain_micro_batches_do():
    from trainers.batches import micro_batches

    lengths = [random.Random(0).randint(1, 90) for _ in range(50)]
    for spec in (TrainSpec(micro_batch_size=4), TrainSpec(micro_batch_size=4, group_by_length=False)):
        units = unit_micro_batches([(i,) for i in range(50)], lengths, spec, 1, 2)
        plain = micro_batches(50, spec, 1, 2, lengths)
        assert [next(units) for _ in range(30)] == [next(plain) for _ in range(30)]


# ---- objectives and data -------------------------------------------------------------------------------------


def test_the_verifier_is_a_trainer_role():
    assert "verifier" in TRAINER_ROLES and trainer_for("verifier") is train_verifier


@pytest.mark.parametrize("kind, needs", [("genrm", "VerifierData.examples"), ("orm", "VerifierData.examples"),
                                         ("simpo", "VerifierData.pairs"), ("dpo", "VerifierData.pairs")])
def test_missing_data_is_an_error_naming_the_kind_and_the_data_it_needs(kind, needs, tmp_path):
    data = VerifierData(VerifierObjective(kind=kind))
    with pytest.raises(ValueError, match=f"verifier.kind '{kind}'.*{needs}"):
        check_data(data)
    with pytest.raises(ValueError, match=f"verifier.kind '{kind}'"):  # before any model is loaded
        train_verifier(tmp_path / "no-model", data, TrainSpec(), tmp_path / "out", 0, 1)


def test_objectives_that_cannot_train_are_errors_naming_the_field():
    no_rationale = [VerificationExample("p", "q", ("a",), True)]
    with pytest.raises(ValueError, match="verifier.kind 'genrm_cot'.*rationale"):
        check_data(VerifierData(VerifierObjective(kind="genrm_cot"), examples=tuple(no_rationale)))
    with pytest.raises(ValueError, match="verifier.solution_weight.*VerifierData.solutions"):
        check_data(VerifierData(VerifierObjective(solution_weight=0.5), examples=tuple(no_rationale)))
    with pytest.raises(ValueError, match="verifier.kind 'ranker'"):
        VerifierObjective(kind="ranker")
    with pytest.raises(ValueError, match="verifier.solution_weight"):
        VerifierObjective(kind="dpo", solution_weight=1.0)
    assert VerifierObjective(kind="simpo").preference_beta == 2.0
    assert VerifierObjective(kind="dpo").preference_beta == 0.1
    assert VerifierObjective(kind="dpo", beta=0.5).preference_beta == 0.5


# ---- DeepSpeed, one rank in this process ---------------------------------------------------------------------


def verifier_spec(**overrides) -> TrainSpec:
    values = dict(micro_batch_size=16, learning_rate=3e-3, warmup_steps=0, max_steps=4, seed=0)
    values.update(overrides)
    return TrainSpec(**values)


OBJECTIVES = {
    "genrm": VerifierObjective(kind="genrm"),
    "genrm_cot": VerifierObjective(kind="genrm_cot"),
    "genrm_lambda": VerifierObjective(kind="genrm", solution_weight=0.5),
    "orm": VerifierObjective(kind="orm"),
    "simpo": VerifierObjective(kind="simpo"),
    "dpo": VerifierObjective(kind="dpo", beta=0.5),
}


def verifier_data(objective: VerifierObjective) -> VerifierData:
    return VerifierData(objective, examples=tuple(verification_examples()), pairs=tuple(preference_pairs()),
                        solutions=tuple(policy_examples(4)))


@pytest.mark.slow
@pytest.mark.usefixtures("single_rank")
@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_a_few_steps_of_each_objective_lower_the_loss_and_change_the_parameters(name, tmp_path):
    from transformers import AutoModelForCausalLM, AutoModelForTokenClassification

    objective = OBJECTIVES[name]
    model_path = save_tiny_policy(tmp_path / "policy")
    before = parameters_of(AutoModelForCausalLM.from_pretrained(model_path))
    # Every step sees all the data (one micro-batch), so the step losses are comparable.
    result = train_verifier(model_path, verifier_data(objective), verifier_spec(), tmp_path / "verifier", 0, 1)

    assert result.steps == 4 and result.last_loss < result.first_loss
    if objective.kind == "dpo":  # the model starts as its own reference: margin 0
        assert result.first_loss == pytest.approx(math.log(2), abs=1e-4)
    loader = AutoModelForTokenClassification if objective.kind == "orm" else AutoModelForCausalLM
    trained = loader.from_pretrained(tmp_path / "verifier")
    after = parameters_of(trained)
    shared = [n for n in before if n in after and before[n].shape == after[n].shape]
    assert shared and any(not torch.equal(before[n], after[n]) for n in shared)
    if objective.kind == "orm":
        assert trained.config.num_labels == 1
        assert result.tokens == 4 * 8  # one target per solution, at its last token


@pytest.mark.slow
@pytest.mark.usefixtures("single_rank")
def test_solutions_are_trained_only_when_lambda_is_positive(tmp_path):
    tokenizer = tiny_tokenizer()
    model_path = save_tiny_policy(tmp_path / "policy")
    verification_tokens = sum(sum(label != IGNORE_INDEX for label in s.labels[1:])
                              for s in verification_sequences(tokenizer, verification_examples(), VerifierFormat(),
                                                              with_rationale=False))
    solution_tokens = sum(sum(label != IGNORE_INDEX for label in s.labels[1:])
                          for s in policy_sequences(tokenizer, policy_examples(4)))
    spec = verifier_spec(max_steps=1)
    without = train_verifier(model_path, verifier_data(OBJECTIVES["genrm"]), spec, tmp_path / "v0", 0, 1)
    assert without.tokens == verification_tokens
    mixed = train_verifier(model_path, verifier_data(OBJECTIVES["genrm_lambda"]), spec, tmp_path / "v1", 0, 1)
    assert mixed.tokens == verification_tokens + solution_tokens


@pytest.mark.slow
@pytest.mark.usefixtures("single_rank")
def test_the_engine_hands_the_loss_whole_pairs_in_order(tmp_path):
    from transformers import AutoModelForCausalLM

    from trainers.engine import run_training
    from trainers.policy_sft import causal_lm_loss, count_predicted_tokens

    tokenizer = tiny_tokenizer()
    pairs = preference_pairs() + [PreferencePair("x", "1=?", ("1",), ("a very long wrong answer; " * 3,))]
    sequences, units = pair_sequences(tokenizer, pairs)
    seen = []

    def recording_loss(engine, batch):
        seen.append(batch["row_index"].tolist())
        logits = engine(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return causal_lm_loss(logits, batch["labels"])

    model = AutoModelForCausalLM.from_pretrained(save_tiny_policy(tmp_path / "policy"))
    run_training(model, tokenizer, sequences, recording_loss, count_predicted_tokens, torch.long,
                 verifier_spec(micro_batch_size=2, max_steps=6), tmp_path / "out", 0, 1, units=units)
    assert len(seen) == 6 and all(len(rows) == 4 or len(rows) == 2 for rows in seen)
    for rows in seen:
        assert all(r % 2 == 0 and s == r + 1 for r, s in zip(rows[0::2], rows[1::2]))


def test_units_must_cover_every_row_once(tmp_path):
    from trainers.engine import run_training

    sequences = [TrainSequence([1, 2], [IGNORE_INDEX, 2])] * 3
    with pytest.raises(ValueError, match="exactly once"):
        run_training(None, tiny_tokenizer(), sequences, None, None, torch.long, TrainSpec(), tmp_path, 0, 1,
                     units=[(0, 1)])
