"""The settings of an MCTS* search (`MCTSParams`): simulations and token budget, selection (UCT), expansion and
progressive widening, rollouts and the end gate."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MCTSParams:
    """Search settings of MCTS*; defaults follow the official ReST-MCTS* code."""

    branch: int = 3
    """Candidate next steps sampled per expansion (and per rollout level)."""
    initial_branch: int = 0
    """Candidates at a node's first expansion (0: `branch`). With fewer, the node is widened later (progressive
    widening, `widen_branch` more candidates at a time) while it has fewer than `branch` children and the PRM values
    every child below `widen_below`: the first path costs one solution's tokens, and alternatives are sampled
    only where the scorer doubts a step."""
    widen_branch: int = 2
    """Candidates sampled per widening (with a sampler that proposes the argmax step first, the first of them
    repeats an existing child and is dropped)."""
    widen_below: float = 0.5
    """A node is widened while every child's value is below this (see `initial_branch`)."""
    widen_visits: int = 0
    """Count-based progressive widening beside the value rule: a node is also widened once it has been visited
    `widen_visits` times per child it has (0: only by value). The search then samples alternatives even under a
    step the scorer trusts wrongly, which the value rule alone never does."""
    exploration_constant: float = 0.4
    """c in the UCT score V + c·sqrt(2·ln N_parent / N_child)."""
    unvisited_bonus: float = 1.0
    """b: an unvisited child scores V + b (finite, so a strong visited sibling can still win)."""
    roll_forward_steps: int = 0
    """Greedy rollout steps from the best new child after each expansion; 0 = no rollout."""
    rollout_alpha: float = 0.5
    """α in V ← (1 − α)·V + α·max(rollout values)."""
    end_gate: float = 0.9
    """A selected terminal leaf with V ≥ end_gate ends the search (when stop_at_end_gate)."""
    stop_at_end_gate: bool = True
    """True when solving; False to spend the full budget (generating training data), in which case
    selection skips exhausted subtrees (every leaf terminal) and never revisits a terminal leaf."""
    max_depth: int = 10
    """Steps below the root at which a node becomes terminal."""
    first_path_first: bool = False
    """Selection follows every node's first child until that path ends in a terminal node, one expansion per
    simulation, and only then uses UCT. With a sampler that proposes the argmax step first, the tree then holds
    the greedy solution (at the cost of one simulation per step) before it explores."""
    max_simulations: int = 16
    """Simulations per tree."""
    max_tokens: int = 0
    """Generated tokens per tree (kept, dropped and rollout); 0 = unlimited. May be exceeded by one expansion."""

    def __post_init__(self) -> None:
        if self.branch < 1:
            raise ValueError(f"branch must be at least 1, got {self.branch}")
        if not 0 <= self.initial_branch <= self.branch or self.widen_branch < 1 or self.widen_visits < 0:
            raise ValueError(f"initial_branch must lie in [0, branch], widen_branch be at least 1 and widen_visits "
                             f"at least 0, got {self.initial_branch}, {self.widen_branch} and {self.widen_visits}")
        if self.max_depth < 1:
            raise ValueError(f"max_depth must be at least 1, got {self.max_depth}")
        if self.max_simulations < 1:
            raise ValueError(f"max_simulations must be at least 1, got {self.max_simulations}")
        if self.roll_forward_steps < 0 or self.max_tokens < 0:
            raise ValueError("roll_forward_steps and max_tokens must not be negative")
        if not 0.0 <= self.rollout_alpha <= 1.0:
            raise ValueError(f"rollout_alpha must lie in [0, 1], got {self.rollout_alpha}")
