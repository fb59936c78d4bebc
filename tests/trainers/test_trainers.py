"""Policy SFT and PRM trainers on tiny Llama models: loss goes down, parameters move, checkpoints load."""

from __future__ import annotations

import dataclasses
import math
import socket

import pytest
import torch

from lm.data import PolicyExample, ValueExample
from lm.encoding import IGNORE_INDEX, encode_steps
from trainers.batches import collate, length_grouped_batches, micro_batches, shard_indices
from trainers.engine import TrainSequence, TrainSpec, learning_rate_factor, planned_steps
from trainers.policy_sft import causal_lm_loss, policy_sequences
from trainers.prm import prm_loss, prm_sequences

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz +-*=:?,.;\n"


def tiny_tokenizer():
    """One token per character, special tokens first; built locally with `tokenizers`."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(["<pad>", "<s>", "</s>", "<unk>"])}
    for character in ALPHABET:
        vocab.setdefault(character, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def tiny_llama_config(tokenizer):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        num_labels=1,
    )


def save_tiny_policy(path):
    from transformers import LlamaForCausalLM

    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    LlamaForCausalLM(tiny_llama_config(tokenizer)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def save_tiny_prm(path):
    from transformers import LlamaForTokenClassification

    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    LlamaForTokenClassification(tiny_llama_config(tokenizer)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def policy_examples(count=8):
    return [
        PolicyExample(f"p{i}", f"{i}+{i}=?", (f"{i}+{i}={2 * i};", f"answer {2 * i}"))
        for i in range(count)
    ]


def value_examples():
    """Two problems; in p0 the path a;b;c gives values to its three prefixes, plus a wrong branch."""
    return [
        ValueExample("p0", "q0", ("a;",), 1 / 3),
        ValueExample("p0", "q0", ("a;", "b;"), 2 / 3),
        ValueExample("p0", "q0", ("a;", "b;", "c"), 1.0),
        ValueExample("p0", "q0", ("a;", "x;"), 1 / 9),
        ValueExample("p1", "q1", ("d;", "e"), 0.5),
        ValueExample("p1", "q1", ("f;",), 0.0),
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def single_rank():
    """A one-rank gloo process group in this process (kept for the rest of the session)."""
    from trainers.engine import init_distributed

    init_distributed(rank=0, world_size=1, master_addr="127.0.0.1", master_port=free_port(), timeout_s=120)
    return 0


def parameters_of(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def checksum(parameters: dict[str, torch.Tensor]) -> float:
    """Sum of all parameters in float64, in named_parameters order (as the trainers compute it)."""
    return sum(p.double().sum().item() for p in parameters.values())


# ---- fast tests: labels, batching, schedule ---------------------------------------------------------


def test_policy_labels_mask_the_prompt_and_learn_the_steps_and_eos():
    tokenizer = tiny_tokenizer()
    example = PolicyExample("p", "1+1=?", ("1+1=2;", "answer 2"))
    (sequence,) = policy_sequences(tokenizer, [example])
    encoded = encode_steps(tokenizer, example.prompt, example.steps, add_eos=True)
    assert sequence.input_ids == encoded.input_ids
    assert sequence.labels[: encoded.prompt_length] == [IGNORE_INDEX] * encoded.prompt_length
    learned = tokenizer.decode(sequence.labels[encoded.prompt_length : -1])
    assert learned == "1+1=2;answer 2"
    assert sequence.labels[-1] == tokenizer.eos_token_id


def test_causal_lm_loss_ignores_masked_positions_and_shifts_by_one():
    logits = torch.zeros(1, 4, 5)
    logits[0, 1, 3] = 10.0  # position 1 predicts token 3, the label of position 2
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 3, IGNORE_INDEX]])
    expected = torch.nn.functional.cross_entropy(logits[0, 1:2], torch.tensor([3]))
    assert torch.allclose(causal_lm_loss(logits, labels), expected)


def test_prm_sequences_merge_prefixes_into_their_longest_path():
    tokenizer = tiny_tokenizer()
    sequences = prm_sequences(tokenizer, value_examples())
    by_length = sorted(sequences, key=lambda s: len(s.input_ids))
    assert len(sequences) == 4  # a;b;c  a;x;  d;e  f;
    full = encode_steps(tokenizer, "q0", ("a;", "b;", "c"))
    (path,) = [s for s in sequences if s.input_ids == full.input_ids]
    targets = [path.labels[p] for p in full.step_end_positions]
    assert targets == pytest.approx([1 / 3, 2 / 3, 1.0])
    labelled = [i for i, label in enumerate(path.labels) if label != IGNORE_INDEX]
    assert labelled == full.step_end_positions
    branch = encode_steps(tokenizer, "q0", ("a;", "x;"))
    (wrong,) = [s for s in sequences if s.input_ids == branch.input_ids]
    assert [wrong.labels[p] for p in branch.step_end_positions] == pytest.approx([IGNORE_INDEX, 1 / 9])
    assert by_length[0].input_ids == encode_steps(tokenizer, "q1", ("f;",)).input_ids


def test_merged_prm_sequence_scores_a_prefix_step_as_the_prefix_alone_does(tmp_path):
    """The merge is sound: a causal PRM reads the same value at a step end with or without later steps."""
    from transformers import AutoModelForTokenClassification

    tokenizer = tiny_tokenizer()
    model = AutoModelForTokenClassification.from_pretrained(save_tiny_prm(tmp_path / "prm")).eval()
    prefix = encode_steps(tokenizer, "q0", ("a;", "b;"))
    full = encode_steps(tokenizer, "q0", ("a;", "b;", "c"))
    with torch.no_grad():
        prefix_logits = model(input_ids=torch.tensor([prefix.input_ids])).logits[0, :, 0]
        full_logits = model(input_ids=torch.tensor([full.input_ids])).logits[0, :, 0]
    for position in prefix.step_end_positions:
        assert torch.allclose(prefix_logits[position], full_logits[position], atol=1e-5)


def test_prm_sequences_average_duplicate_prefixes():
    tokenizer = tiny_tokenizer()
    examples = [ValueExample("p", "q", ("a;",), 0.2), ValueExample("p", "q", ("a;",), 0.6)]
    (sequence,) = prm_sequences(tokenizer, examples)
    assert sequence.labels[-1] == pytest.approx(0.4)


def test_prm_loss_is_bce_on_labelled_positions_only():
    logits = torch.tensor([[[0.0], [5.0], [-1.0]]])
    labels = torch.tensor([[IGNORE_INDEX, 1.0, 0.25]])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor([5.0, -1.0]), torch.tensor([1.0, 0.25])
    )
    assert torch.allclose(prm_loss(logits, labels), expected)


def test_collate_right_pads_ids_masks_and_labels():
    sequences = [TrainSequence([1, 5, 6], [IGNORE_INDEX, 5, 6]), TrainSequence([1, 7], [IGNORE_INDEX, 7])]
    batch = collate(sequences, pad_token_id=0, label_dtype=torch.long, device="cpu")
    assert batch["input_ids"].tolist() == [[1, 5, 6], [1, 7, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 5, 6], [IGNORE_INDEX, 7, IGNORE_INDEX]]


def test_shards_cover_every_sequence_once_per_epoch_and_change_order_between_epochs():
    shards = [shard_indices(10, rank, 3, seed=1, epoch=0) for rank in range(3)]
    assert {len(shard) for shard in shards} == {4}
    assert set(sum(shards, [])) == set(range(10))
    assert shard_indices(10, 0, 3, seed=1, epoch=0) == shards[0]
    assert shard_indices(10, 0, 1, seed=1, epoch=0) != shard_indices(10, 0, 1, seed=1, epoch=1)


def test_length_grouped_shards_cover_every_sequence_once_and_pad_less_than_random_batches():
    import random

    rng = random.Random(0)
    lengths = [rng.randint(5, 60) for _ in range(1000)]
    spec = TrainSpec(micro_batch_size=8, seed=3)
    shards = [length_grouped_batches(lengths, 8, rank, 2, seed=3, epoch=0) for rank in range(2)]
    assert len(shards[0]) == len(shards[1]) and all(len(batch) <= 8 for batch in shards[0] + shards[1])
    assert sorted(sum(shards[0] + shards[1], [])) == list(range(1000))
    assert length_grouped_batches(lengths, 8, 0, 2, seed=3, epoch=0) == shards[0]
    assert length_grouped_batches(lengths, 8, 0, 2, seed=3, epoch=1) != shards[0]

    def padding_efficiency(spec):
        batches = micro_batches(1000, spec, 0, 2, lengths)
        chosen = [next(batches) for _ in range(60)]
        return sum(lengths[i] for b in chosen for i in b) / sum(len(b) * max(lengths[i] for i in b) for b in chosen)

    grouped = padding_efficiency(spec)
    plain = padding_efficiency(dataclasses.replace(spec, group_by_length=False))
    assert grouped > 0.9 and plain < 0.75
    # The two ranks of one step hold similar lengths, so neither waits long for the other.
    first = [next(micro_batches(1000, spec, rank, 2, lengths)) for rank in range(2)]
    assert abs(max(lengths[i] for i in first[0]) - max(lengths[i] for i in first[1])) <= 3


def test_planned_steps_count_epochs_of_micro_batches_per_rank():
    spec = TrainSpec(micro_batch_size=4, gradient_accumulation_steps=2, epochs=3)
    assert planned_steps(20, spec, world_size=2) == 5  # 10 per rank -> 3 micro-batches -> 9 -> 5 steps
    assert planned_steps(20, TrainSpec(max_steps=7), world_size=2) == 7


def test_learning_rate_warms_up_linearly_without_a_zero_step_then_decays():
    factors = [learning_rate_factor(step, warmup_steps=2, total_steps=6) for step in range(6)]
    assert factors == pytest.approx([0.5, 1.0, 1.0, 0.75, 0.5, 0.25])
    assert learning_rate_factor(0, warmup_steps=0, total_steps=3) == 1.0


# ---- slow tests: DeepSpeed in this process (one rank) ----------------------------------------------


def policy_spec(**overrides) -> TrainSpec:
    values = dict(micro_batch_size=8, learning_rate=3e-3, warmup_steps=0, max_steps=6, seed=0)
    values.update(overrides)
    return TrainSpec(**values)


@pytest.mark.slow
def test_policy_training_lowers_the_loss_and_saves_a_loadable_checkpoint(tmp_path, single_rank):
    from transformers import AutoModelForCausalLM

    from trainers.policy_sft import train_policy

    model_path = save_tiny_policy(tmp_path / "policy0")
    before = parameters_of(AutoModelForCausalLM.from_pretrained(model_path))
    result = train_policy(model_path, policy_examples(), policy_spec(), tmp_path / "policy1", 0, 1)

    assert result.steps == 6 and len(result.losses) == 6
    assert result.last_loss < result.first_loss
    tokenizer = tiny_tokenizer()
    sequences = policy_sequences(tokenizer, policy_examples())
    expected_tokens = 6 * sum(label != IGNORE_INDEX for s in sequences for label in s.labels[1:])
    assert result.tokens == expected_tokens
    assert result.tokens_per_s > 0

    trained = AutoModelForCausalLM.from_pretrained(tmp_path / "policy1")
    after = parameters_of(trained)
    assert after.keys() == before.keys()
    assert any(not torch.equal(before[name], after[name]) for name in before)
    assert checksum(after) == pytest.approx(result.parameter_checksum, abs=1e-6)

    # The saved model has learned: its loss on the training batch is below the untrained one's.
    batch = collate(sequences, 0, torch.long, "cpu")
    with torch.no_grad():
        untrained = AutoModelForCausalLM.from_pretrained(model_path)
        loss_before = causal_lm_loss(untrained(input_ids=batch["input_ids"]).logits, batch["labels"])
        loss_after = causal_lm_loss(trained(input_ids=batch["input_ids"]).logits, batch["labels"])
    assert loss_after < loss_before


@pytest.mark.slow
def test_saving_again_replaces_the_checkpoint_folder(tmp_path, single_rank):
    from transformers import AutoTokenizer

    from trainers.policy_sft import train_policy

    model_path = save_tiny_policy(tmp_path / "policy0")
    out_dir = tmp_path / "policy1"
    out_dir.mkdir()
    (out_dir / "stale.txt").write_text("old")
    train_policy(model_path, policy_examples(), policy_spec(max_steps=1), out_dir, 0, 1)
    assert not (out_dir / "stale.txt").exists()
    assert AutoTokenizer.from_pretrained(out_dir).eos_token == "</s>"
    # no temporary folders left; the training log sits beside the checkpoint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy0", "policy1", "policy1_train_log.jsonl"]


@pytest.mark.slow
@pytest.mark.parametrize("gradient_checkpointing, layer_calls", [(False, 1), (True, 2)])
def test_gradient_checkpointing_runs_each_layer_again_in_the_backward_and_still_trains(
        tmp_path, single_rank, gradient_checkpointing, layer_calls):
    from transformers import AutoModelForCausalLM

    from trainers.engine import run_training

    model_path = save_tiny_policy(tmp_path / "policy0")
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    before = parameters_of(model)
    calls = []
    mlp = model.model.layers[0].mlp
    forward = mlp.forward
    # Counted in forward itself: the recomputation runs forward without the module's hooks.
    mlp.forward = lambda *args, **kwargs: calls.append(1) or forward(*args, **kwargs)
    tokenizer = tiny_tokenizer()

    def loss(engine, batch):
        return causal_lm_loss(engine(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
                              batch["labels"])

    # One optimizer step of one micro-batch: the first layer's MLP runs once, or again when the backward recomputes it.
    spec = policy_spec(max_steps=1, gradient_checkpointing=gradient_checkpointing)
    result = run_training(model, tokenizer, policy_sequences(tokenizer, policy_examples()), loss,
                          lambda labels: (labels[:, 1:] != IGNORE_INDEX).sum(), torch.long, spec,
                          tmp_path / "policy1", 0, 1)
    assert len(calls) == layer_calls
    assert result.steps == 1 and math.isfinite(result.last_loss)
    after = parameters_of(AutoModelForCausalLM.from_pretrained(tmp_path / "policy1"))
    assert any(not torch.equal(before[name], after[name]) for name in before)
    # The checkpoint is for sampling: it keeps the KV cache that training turned off.
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "policy1").config.use_cache is True


@pytest.mark.slow
def test_prm_training_lowers_the_loss_and_saves_a_loadable_checkpoint(tmp_path, single_rank):
    from transformers import AutoModelForTokenClassification

    from trainers.prm import train_prm

    model_path = save_tiny_prm(tmp_path / "prm0")
    before = parameters_of(AutoModelForTokenClassification.from_pretrained(model_path))
    spec = policy_spec(max_steps=8)
    result = train_prm(model_path, value_examples(), spec, tmp_path / "prm1", 0, 1)

    assert result.last_loss < result.first_loss
    assert result.tokens == 8 * 6  # six labelled step ends per step: 3 on a;b;c, 1 on a;x;, d;e and f;
    trained = AutoModelForTokenClassification.from_pretrained(tmp_path / "prm1")
    assert trained.config.num_labels == 1
    after = parameters_of(trained)
    assert any(not torch.equal(before[name], after[name]) for name in before)


@pytest.mark.slow
def test_zero3_policy_checkpoint_holds_the_full_weights(tmp_path, single_rank):
    from transformers import AutoModelForCausalLM

    from trainers.policy_sft import train_policy

    model_path = save_tiny_policy(tmp_path / "policy0")
    before = parameters_of(AutoModelForCausalLM.from_pretrained(model_path))
    spec = policy_spec(zero_stage=3, max_steps=2)
    result = train_policy(model_path, policy_examples(), spec, tmp_path / "z3", 0, 1)
    after = parameters_of(AutoModelForCausalLM.from_pretrained(tmp_path / "z3"))
    assert {name: t.shape for name, t in after.items()} == {name: t.shape for name, t in before.items()}
    assert checksum(after) == pytest.approx(result.parameter_checksum, abs=1e-6)


def test_cpu_ranks_use_plain_gloo_without_compiling_the_shared_memory_op(single_rank):
    # The shm allreduce is a C++ op DeepSpeed compiles on first use (70-90 s on 2 cores); it is opt-in.
    from deepspeed.comm import comm

    assert comm.cdb is not None and comm.cdb.shm_comm_op is None


@pytest.mark.slow
def test_zero3_loads_the_model_partitioned_and_only_inside_the_block(tmp_path, single_rank):
    from transformers import AutoModelForCausalLM
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    from trainers.engine import partitioned_loading

    model_path = save_tiny_policy(tmp_path / "policy0")
    with partitioned_loading(policy_spec(zero_stage=3), world_size=1):
        assert is_deepspeed_zero3_enabled()
        partitioned = AutoModelForCausalLM.from_pretrained(model_path)
    assert not is_deepspeed_zero3_enabled()
    assert all(hasattr(p, "ds_id") for p in partitioned.parameters())  # made under deepspeed.zero.Init
    with partitioned_loading(policy_spec(zero_stage=2), world_size=1):
        assert not is_deepspeed_zero3_enabled()
        whole = AutoModelForCausalLM.from_pretrained(model_path)
    assert not any(hasattr(p, "ds_id") for p in whole.parameters())
