"""The settings of the self-training methods other than ReST-MCTS* (`--method rest_em`, `--method self_rewarding`):
how they sample, judge and train; sections of `RunConfig` like the others."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RestEMConfig:
    """ReST-EM (`--method rest_em`): sampled solutions per training problem, the oracle-correct ones kept."""

    match_tokens_of: str = ""
    """A ReST-MCTS* run folder: each round samples waves of solutions until it has generated as many tokens as
    that run's search of the same round did (counted, `search/tokens`), so both methods spend equal tokens.
    Empty: `samples_per_problem` solutions per problem."""
    samples_per_problem: int = 8
    """Solutions sampled per training problem when `match_tokens_of` is empty."""


SELF_REWARDING_JUDGES = ("policy", "verifier", "oracle")
"""`self_rewarding.judge` values."""


@dataclass(frozen=True)
class SelfRewardingConfig(RestEMConfig):
    """Self-Rewarding (`--method self_rewarding`; Yuan et al. 2024): solutions sampled as ReST-EM samples them
    (`match_tokens_of`, `samples_per_problem`), judged by a model instead of the oracle, the highest against the
    lowest judged of each problem trained into the policy with DPO."""

    judge: str = "policy"
    """Who judges: 'policy' (the previous round's policy as LLM-as-a-judge: the verifier's direct Yes/No form,
    untrained for it), 'verifier' (the latest trained verifier: round 0's with `verifier.train_in_rounds`, since
    Self-Rewarding rounds train none) or 'oracle' (the task's grade, 1 or 0: not Self-Rewarding but its upper
    bound, which tells a judge's failure from the preference training's)."""
    margin: float = 0.05
    """A problem gives a pair only when its highest and lowest judged solutions differ by at least this much."""
    beta: float = 0.1
    """DPO's β (Rafailov et al. 2023)."""
    sft_weight: float = 0.0
    """λ of an SFT term on each pair's chosen (highest judged) solution mixed into DPO: loss = DPO + λ·NLL per token
    of the chosen solution (0: DPO alone)."""
    learning_rate: float = 1e-5
    """Peak learning rate of the DPO training (0: the policy's round rate, `policy_train.round_learning_rate` or
    `learning_rate`). Preference training takes a rate well below SFT's: at the policy's round rate DPO on the
    default task collapsed the policy even on oracle-ordered pairs; the default was picked on the dev problems
    (experiments/results/README.md)."""
