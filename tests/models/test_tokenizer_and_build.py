"""The character tokenizer and the tiny policy/PRM: round trips through save_pretrained and clear load errors."""

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForTokenClassification,
    AutoTokenizer,
    LlamaConfig,
    LlamaForTokenClassification,
)

from lm.build import (
    ModelPathError,
    build_tiny_policy,
    build_tiny_prm,
    load_policy,
    load_prm,
    load_tokenizer,
    pick_device,
    pick_dtype,
)
from lm.tokenizer import DEFAULT_ALPHABET, build_char_tokenizer

TINY = dict(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, max_positions=128)
TEXT = "3+4*2 = ?\n7*2 .\n  14 , #\n\n"


def close(actual, expected):
    """Same weights, same logits up to kernel rounding (identical parameters can differ by ~1e-8)."""
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def tokenizer():
    return build_char_tokenizer()


def test_char_tokenizer_has_one_token_per_character_and_specials_first(tokenizer):
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3]) == ["<pad>", "<s>", "</s>", "<unk>"]
    specials = (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id)
    assert specials == (0, 1, 2, 3)
    assert len(tokenizer) == 4 + len(set(DEFAULT_ALPHABET))
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(TEXT)
    assert tokenizer.unk_token_id not in ids


def test_char_tokenizer_decode_inverts_encode_with_spaces_and_newlines(tokenizer):
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == TEXT
    assert [tokenizer.decode([token_id]) for token_id in ids] == list(TEXT)


def test_char_tokenizer_maps_unknown_characters_to_unk(tokenizer):
    assert tokenizer("aZb", add_special_tokens=False)["input_ids"][1] == tokenizer.unk_token_id


def test_char_tokenizer_reloads_with_auto_tokenizer(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    expected = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    assert reloaded(TEXT, add_special_tokens=False)["input_ids"] == expected
    assert reloaded.decode(reloaded(TEXT, add_special_tokens=False)["input_ids"]) == TEXT
    assert (reloaded.pad_token_id, reloaded.bos_token_id, reloaded.eos_token_id) == (0, 1, 2)
    assert reloaded.padding_side == "left"
    assert load_tokenizer(tmp_path).get_vocab() == tokenizer.get_vocab()


def test_padding_side_is_configurable():
    assert build_char_tokenizer(padding_side="right").padding_side == "right"


def test_tiny_models_use_the_tokenizer_vocabulary_and_special_ids(tokenizer):
    policy = build_tiny_policy(tokenizer, **TINY)
    prm = build_tiny_prm(tokenizer, **TINY)
    for model in (policy, prm):
        assert model.config.vocab_size == len(tokenizer)
        assert (model.config.pad_token_id, model.config.bos_token_id, model.config.eos_token_id) == (0, 1, 2)
        assert not model.training
    assert prm.config.num_labels == 1


def test_same_seed_builds_the_same_weights_and_leaves_global_rng_alone(tokenizer):
    torch.manual_seed(123)
    expected_draw = torch.rand(1)
    torch.manual_seed(123)
    first = build_tiny_policy(tokenizer, seed=7, **TINY)
    assert torch.equal(torch.rand(1), expected_draw)
    second = build_tiny_policy(tokenizer, seed=7, **TINY)
    other = build_tiny_policy(tokenizer, seed=8, **TINY)
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters()))
    assert not torch.equal(first.model.embed_tokens.weight, other.model.embed_tokens.weight)


def test_saved_policy_reloads_with_plain_transformers_and_gives_the_same_logits(tokenizer, tmp_path):
    policy = build_tiny_policy(tokenizer, **TINY)
    policy.save_pretrained(tmp_path)
    input_ids = torch.tensor([tokenizer(TEXT, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        expected = policy(input_ids).logits
        close(AutoModelForCausalLM.from_pretrained(tmp_path, local_files_only=True)(input_ids).logits, expected)
        close(load_policy(tmp_path, "cpu")(input_ids).logits, expected)


def test_saved_prm_reloads_with_plain_transformers_and_gives_the_same_logits(tokenizer, tmp_path):
    prm = build_tiny_prm(tokenizer, **TINY)
    prm.save_pretrained(tmp_path)
    input_ids = torch.tensor([tokenizer(TEXT, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        expected = prm(input_ids).logits
        assert expected.shape == (1, len(TEXT), 1)
        reloaded = AutoModelForTokenClassification.from_pretrained(tmp_path, local_files_only=True)
        close(reloaded(input_ids).logits, expected)
        loaded = load_prm(tmp_path, "cpu", torch.float32)
        assert not loaded.training
        close(loaded(input_ids).logits, expected)


def test_missing_path_raises_model_path_error_naming_it(tmp_path):
    missing = tmp_path / "no_such_checkpoint"
    for load in (load_policy, load_prm, load_tokenizer):
        with pytest.raises(ModelPathError, match="no_such_checkpoint"):
            load(missing)


def test_directory_without_a_model_raises_model_path_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelPathError, match="config.json"):
        load_policy(tmp_path)
    with pytest.raises(ModelPathError, match="config.json"):
        load_prm(tmp_path)
    with pytest.raises(ModelPathError, match="tokenizer"):
        load_tokenizer(tmp_path)


def test_policy_checkpoint_passed_as_prm_raises_model_path_error(tokenizer, tmp_path):
    build_tiny_policy(tokenizer, **TINY).save_pretrained(tmp_path)
    with pytest.raises(ModelPathError, match="num_labels=1"):
        load_prm(tmp_path)


def test_prm_checkpoint_passed_as_policy_raises_model_path_error(tokenizer, tmp_path):
    build_tiny_prm(tokenizer, **TINY).save_pretrained(tmp_path)
    with pytest.raises(ModelPathError, match="causal LM"):
        load_policy(tmp_path)


def test_token_classifier_with_two_labels_is_not_a_prm(tokenizer, tmp_path):
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_labels=2,
    )
    LlamaForTokenClassification(config).save_pretrained(tmp_path)
    with pytest.raises(ModelPathError, match="num_labels=2"):
        load_prm(tmp_path)


def test_config_without_weights_raises_model_path_error(tokenizer, tmp_path):
    build_tiny_policy(tokenizer, **TINY).config.save_pretrained(tmp_path)
    with pytest.raises(ModelPathError, match=str(tmp_path.name)):
        load_policy(tmp_path)


def test_device_and_dtype_choice_on_cpu():
    assert pick_device() in ("cpu", "cuda")
    assert pick_dtype("cpu") == torch.float32
