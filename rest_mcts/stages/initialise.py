"""Round 0's starting models: the embedded tiny policy and PRM (or the user's checkpoints), saved in the round
folder."""

from __future__ import annotations

from lm.checkpoints import save_checkpoint
from rest_mcts import seeds
from rest_mcts.rounds import Round
from rest_mcts.stages.context import Context


def init_policy(ctx: Context, round_: Round) -> dict[str, float]:
    """The embedded tiny policy (or the user's checkpoint), saved as round 0's starting point."""
    from lm.build import build_tiny_policy, load_policy, load_tokenizer
    from lm.tokenizer import build_char_tokenizer

    model = ctx.config.model
    if model.policy_model:
        tokenizer, policy = load_tokenizer(model.policy_model), load_policy(model.policy_model)
    else:
        tokenizer = build_char_tokenizer()
        policy = build_tiny_policy(tokenizer, model.hidden_size, model.num_layers, model.num_heads,
                                   model.intermediate_size, model.max_positions,
                                   seed=seeds.model_init_seed(ctx.config.seed, "policy"))
    save_checkpoint(policy, tokenizer, round_.path / "init_policy")
    return {"model/policy_parameters": float(sum(p.numel() for p in policy.parameters()))}


def init_prm(ctx: Context, round_: Round) -> dict[str, float]:
    """The user's PRM checkpoint, else a PRM whose body is the warm-started policy's and whose head is new."""
    from lm.build import load_prm, load_tokenizer, prm_from_policy

    model = ctx.config.model
    if model.prm_model:
        prm, tokenizer = load_prm(model.prm_model), load_tokenizer(model.prm_model)
    else:
        prm = prm_from_policy(round_.policy, seed=seeds.model_init_seed(ctx.config.seed, "prm"))
        tokenizer = load_tokenizer(round_.policy)
    save_checkpoint(prm, tokenizer, round_.path / "init_prm")
    return {"model/prm_parameters": float(sum(p.numel() for p in prm.parameters()))}
