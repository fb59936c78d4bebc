"""Prompts, encodings and step sampling with a real-style tokenizer: a byte-level BPE trained here (merges that
swallow the step delimiter, uneven token lengths) with a chat template that writes BOS itself."""

from __future__ import annotations

import pytest
import torch

from lm.build import build_tiny_policy, build_tiny_prm, load_tokenizer
from lm.checkpoints import save_checkpoint
from lm.data import ValueExample
from lm.encoding import encode_prompt, encode_steps
from lm.tokenizer import CHAT_TEMPLATE, build_bpe_tokenizer, build_char_tokenizer
from rest_mcts.config import TaskConfig
from rest_mcts.search_models import SamplerSettings, build_search_models
from rest_mcts.tasks import get_task, load_task
from search.types import Prefix
from trainers.prm import prm_sequences

TASK = TaskConfig(name="gsm8k", seed_problems=40, train_problems=200, test_problems=10, few_shot=1)


@pytest.fixture(scope="module")
def bpe_texts():
    task = get_task(TASK)
    return [example.prompt + "".join(example.steps) for example in task.seed_examples(40, 0)]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, bpe_texts):
    """A tiny policy and PRM saved with a chat-template BPE tokenizer, as a user's checkpoints would be."""
    root = tmp_path_factory.mktemp("bpe-chat")
    tokenizer = build_bpe_tokenizer(bpe_texts, vocab_size=500, chat=True)
    save_checkpoint(build_tiny_policy(tokenizer, 32, 1, 2, 64, 2048, seed=0), tokenizer, root / "policy")
    save_checkpoint(build_tiny_prm(tokenizer, 32, 1, 2, 64, 2048, seed=1), tokenizer, root / "prm")
    return root


def test_the_bpe_tokenizer_merges_the_delimiter_with_other_characters(bpe_texts):
    tokenizer = build_bpe_tokenizer(bpe_texts, vocab_size=500)
    merged = [tokenizer.decode([i]) for i in range(len(tokenizer)) if "\n" in tokenizer.decode([i])]
    assert any(len(text) > 1 for text in merged), "no token spans a newline and another character"
    text = "She sells 9 eggs.\nShe makes 9 * 2 = 18 dollars.\n#### 18\n"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text


def test_a_chat_template_prompt_has_one_bos(checkpoints):
    tokenizer = load_tokenizer(checkpoints / "policy")
    assert tokenizer.chat_template == CHAT_TEMPLATE
    task = load_task(TASK, str(checkpoints / "policy"))
    prompt = task.format_prompt(task.problems("test", 1, 0)[0])
    assert prompt.startswith("<s><|system|>\n") and prompt.endswith("<|assistant|>\n")
    assert prompt.count("<|user|>") == 2 and prompt.count("<|assistant|>") == 2  # one few-shot turn
    ids = encode_prompt(tokenizer, prompt)
    assert ids.count(tokenizer.bos_token_id) == 1 and ids[0] == tokenizer.bos_token_id


def test_without_a_chat_template_the_prompt_is_plain_text_after_one_bos(checkpoints):
    task = load_task(TaskConfig(**{**TASK.__dict__, "chat_template": "off", "few_shot": 0}),
                     str(checkpoints / "policy"))
    problem = task.problems("test", 1, 0)[0]
    prompt = task.format_prompt(problem)
    assert prompt == f"{task.prompt_style().instruction}\n\nQuestion: {problem.question}\nAnswer:\n"
    tokenizer = load_tokenizer(checkpoints / "policy")
    ids = encode_prompt(tokenizer, prompt)
    assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1


def test_the_prm_trains_on_the_bytes_the_search_scores(checkpoints):
    """The driver builds the PRM's training rows (value examples, prompts from its task); a search worker scores
    the same prefix with its own task and tokenizer: the ids and the text must be identical."""
    policy, prm = str(checkpoints / "policy"), str(checkpoints / "prm")
    driver_task = load_task(TASK, policy)  # as stages.Context builds it
    worker_task, sampler, scorer = build_search_models(SamplerSettings(policy, prm, TASK, 1.0, 16, seed=0), "cpu", 0)
    problem = driver_task.problems("train", 1, 0)[0]
    steps = ("She sells 16 - 3 - 4 = 9 eggs.\n", "She makes 9 * 2 = 18 dollars.\n", "#### 18\n")
    example = ValueExample(problem.id, driver_task.format_prompt(problem), steps, 1.0)
    trained = prm_sequences(load_tokenizer(prm), [example])[0]
    scored = scorer.encode(Prefix(worker_task.format_prompt(problem), steps))
    assert trained.input_ids == scored.input_ids
    tokenizer = load_tokenizer(prm)
    assert tokenizer.decode(trained.input_ids) == tokenizer.decode(scored.input_ids)
    assert tokenizer.decode(scored.input_ids).startswith("<s><|system|>")
    # The label sits on the token the scorer reads: the last token of the last step.
    assert trained.labels[scored.step_end_positions[-1]] == 1.0
    # The policy's SFT rows (seed solutions) use the same prompt.
    seed = driver_task.seed_examples(1, 0)[0]
    assert seed.prompt == worker_task.format_prompt(driver_task.problems("seed", 1, 0)[0])


def test_sampled_steps_end_at_their_delimiter_with_a_merging_tokenizer(checkpoints):
    """An untrained policy writes arbitrary tokens, many of them merged with a newline: every step the sampler
    returns ends at the first delimiter (or is final), and re-encoding the prefix is a prefix of the longer one."""
    policy = str(checkpoints / "policy")
    task, sampler, _ = build_search_models(SamplerSettings(policy, "", TASK, 1.5, 12, seed=0), "cpu", 0)
    prompt = task.format_prompt(task.problems("test", 1, 0)[0])
    steps = sampler.propose([Prefix(prompt, ())], 24)[0]
    assert len(steps) == 24
    for step in steps:
        if not step.is_final:
            assert step.text.endswith("\n") and "\n" not in step.text[:-1]
    tokenizer = load_tokenizer(policy)
    first = next(step for step in steps if not step.is_final)
    short = encode_steps(tokenizer, prompt, [first.text]).input_ids
    longer = encode_steps(tokenizer, prompt, [first.text, "#### 18\n"]).input_ids
    assert longer[: len(short)] == short


def test_prm_scores_do_not_depend_on_padding(checkpoints):
    """Prefixes of very different token lengths scored in one batch score as they do alone."""
    from lm.build import load_prm
    from lm.prm_scorer import PRMScorer

    prm = str(checkpoints / "prm")
    tokenizer = load_tokenizer(prm)
    task = load_task(TASK, prm)
    prompts = [task.format_prompt(problem) for problem in task.problems("test", 3, 0)]
    prefixes = [Prefix(prompts[0], ("a\n",)), Prefix(prompts[1], ("She sells 9 eggs a day.\n", "#### 18\n")),
                Prefix(prompts[2], ("x" * 40 + "\n",))]
    for shared in (False, True):
        scorer = PRMScorer(load_prm(prm), tokenizer, shared_prefix=shared)
        together = scorer.score(prefixes)
        alone = [scorer.score([prefix])[0] for prefix in prefixes]
        assert together == pytest.approx(alone, abs=1e-5)


def test_the_sampler_ends_a_solution_at_the_models_end_of_turn(checkpoints, tmp_path):
    """A chat model ends its turn with a token other than EOS (its generation config lists it): the sampler treats
    it as EOS, so the step is final."""
    from lm.build import load_policy
    from lm.sampler import StepSampler

    policy_path = str(checkpoints / "policy")
    tokenizer = load_tokenizer(policy_path)
    model = load_policy(policy_path)
    end_of_turn = tokenizer.convert_tokens_to_ids("<|end|>")
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, end_of_turn]
    with torch.no_grad():  # make the end of turn the only likely token
        model.lm_head.weight.zero_()
        model.lm_head.weight[end_of_turn] = 10.0
        if getattr(model.lm_head, "bias", None) is not None:
            model.lm_head.bias.zero_()
    sampler = StepSampler(model, tokenizer, "\n", lambda text: False, max_step_tokens=8, temperature=1.0, seed=0)
    (step,) = sampler.greedy([Prefix("<s><|user|>\nhi<|end|>\n<|assistant|>\n", ())])
    assert step.is_final


def test_the_character_tokenizer_still_encodes_the_synthetic_prompts_unchanged():
    tokenizer = build_char_tokenizer()
    task = get_task("modtarget")
    problem = task.problems("test", 1, 0)[0]
    ids = encode_prompt(tokenizer, task.format_prompt(problem))
    assert ids[0] == tokenizer.bos_token_id and tokenizer.decode(ids[1:]) == task.format_prompt(problem)


def test_a_policy_whose_tokenizer_cannot_write_the_step_delimiter_is_refused(tmp_path):
    from rest_mcts.config import ConfigError, ModelConfig, RunConfig
    from rest_mcts.preflight import check_task_data

    tokenizer = build_char_tokenizer("0123456789abcdefghijklmnopqrstuvwxyz +-*=?")  # no newline
    save_checkpoint(build_tiny_policy(tokenizer, 32, 1, 2, 64, 256, seed=0), tokenizer, tmp_path / "policy")
    with pytest.raises(ConfigError, match=r"the step delimiter '\\n' of --task modtarget: the tokenizer of "
                                          r"--model.policy_model .* cannot write it"):
        check_task_data(RunConfig(model=ModelConfig(policy_model=str(tmp_path / "policy"))))
