"""The search's fast paths are on for the embedded models with the default settings: the sampler's own KV-cache
decode loop with the node store, the PRM's sibling-shared scoring with its node store, and the KV cache handed
to the model under the argument name its `forward` takes. A library release that renames an argument must make
these tests fail, never silently switch a fast path off."""

import inspect

import pytest

from lm.kv_cache import CACHE_ARGUMENTS, cache_argument
from rest_mcts.config import RunConfig
from rest_mcts.search_models import SamplerSettings, build_search_models
from search.mcts import run_mcts


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """The embedded default policy and a PRM made from it, saved as a run saves them."""
    from lm.build import build_tiny_policy, prm_from_policy
    from lm.checkpoints import save_checkpoint
    from lm.tokenizer import build_char_tokenizer

    model = RunConfig().model
    folder = tmp_path_factory.mktemp("fast_paths")
    tokenizer = build_char_tokenizer()
    policy = build_tiny_policy(tokenizer, model.hidden_size, model.num_layers, model.num_heads,
                               model.intermediate_size, model.max_positions, seed=0)
    save_checkpoint(policy, tokenizer, folder / "policy")
    save_checkpoint(prm_from_policy(folder / "policy"), tokenizer, folder / "prm")
    return folder / "policy", folder / "prm"


@pytest.fixture(scope="module")
def models(checkpoints):
    config = RunConfig()
    settings = SamplerSettings.from_config(config, str(checkpoints[0]), str(checkpoints[1]),
                                           temperature=config.search.temperature, seed=0)
    return build_search_models(settings, device="cpu", worker_index=0)


def test_embedded_models_take_a_kv_cache_under_a_known_name(models):
    _task, sampler, scorer = models
    assert cache_argument(sampler.model) in CACHE_ARGUMENTS
    assert cache_argument(scorer.model.base_model) in CACHE_ARGUMENTS


def test_default_search_models_use_the_cached_decode_loop_and_the_sibling_shared_prm(models):
    _task, sampler, scorer = models
    assert sampler.decode == "cached"
    assert sampler.kv_store is not None
    assert scorer.shared_prefix
    assert scorer.kv_store is not None


def test_a_search_reuses_kept_node_kv_in_sampler_and_prm_and_passes_the_cache_by_its_current_name(models):
    task, sampler, scorer = models
    seen_cache_arguments = set()

    def record(_module, _args, kwargs):
        seen_cache_arguments.update(name for name in CACHE_ARGUMENTS if kwargs.get(name) is not None)

    hooks = [sampler.model.register_forward_pre_hook(record, with_kwargs=True),
             scorer.model.base_model.register_forward_pre_hook(record, with_kwargs=True)]
    try:
        problems = task.problems("test", 4, seed=0)
        prompts = [(problem.id, task.format_prompt(problem)) for problem in problems]
        params = RunConfig().search.mcts_params()
        run_mcts(prompts, sampler.propose, scorer.score, params)
    finally:
        for hook in hooks:
            hook.remove()
    assert sampler.kv_store.hits > 0, "expansions encoded every node again: the sampler's node store is off"
    assert scorer.kv_store.hits > 0, "PRM scoring encoded every parent again: the PRM's node store is off"
    # The deprecated name may still be accepted, but the current one is what a fast path must use.
    current = {cache_argument(sampler.model), cache_argument(scorer.model.base_model)}
    assert seen_cache_arguments == current


def test_cache_argument_is_read_from_the_signature_whatever_its_name():
    class Renamed:
        def forward(self, input_ids, cache=None):
            return input_ids

    class Old:
        def forward(self, input_ids, past_key_values=None):
            return input_ids

    class NoCache:
        def forward(self, input_ids):
            return input_ids

    assert cache_argument(Renamed()) == "cache"
    assert cache_argument(Old()) == "past_key_values"
    assert cache_argument(NoCache()) is None
    assert list(inspect.signature(NoCache.forward).parameters) == ["self", "input_ids"]


def test_cached_decoding_of_a_model_that_takes_no_cache_is_refused_not_silently_slow():
    from lm.sampler import StepSampler
    from lm.tokenizer import build_char_tokenizer

    class NoCacheModel:
        def forward(self, input_ids):
            return input_ids

    with pytest.raises(ValueError, match="decode='generate'"):
        StepSampler(NoCacheModel(), build_char_tokenizer(), delimiter="\n", is_final_step=lambda text: False,
                    max_step_tokens=4)


def test_decoding_into_a_roomy_cache_matches_transformers_growing_cache(models):
    import torch

    from lm.kv_cache import RoomyLayer, encode_shared, with_cache, with_room

    _task, sampler, _scorer = models
    body, model = sampler.model.base_model, sampler.model
    rows = [[5, 6, 7, 8, 9, 10], [11, 12, 13]]
    logits = {}
    for roomy in (False, True):
        with torch.inference_mode():
            cache, mask, positions = encode_shared(body, rows, sampler.pad_token_id, "cpu")
            written = mask.shape[1]
            if roomy:
                cache = with_room(cache, 4)
                assert all(isinstance(layer, RoomyLayer) for layer in cache.layers)
                mask = torch.cat([mask, mask.new_zeros((len(rows), 4))], -1)
            tokens, steps = torch.tensor([14, 15]), []
            for step in range(4):
                if roomy:
                    mask[:, written + step] = 1
                else:
                    mask = torch.cat([mask, mask.new_ones((len(rows), 1))], -1)
                output = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=positions[:, None],
                               **with_cache(model, cache)).logits[:, -1]
                steps.append(output)
                tokens, positions = output.argmax(-1), positions + 1
            logits[roomy] = torch.stack(steps)
            assert cache.get_seq_length() == written + 4
    torch.testing.assert_close(logits[True], logits[False], rtol=1e-5, atol=1e-5)
