"""Which traces of a finished tree train the policy: the verified-correct ones (ReST-MCTS* self-training)."""

from __future__ import annotations

from collections.abc import Callable

from search.tree import Tree


def correct_traces(
    tree: Tree,
    is_correct: Callable[[tuple[str, ...]], bool],
    max_per_tree: int | None = None,
) -> list[tuple[str, ...]]:
    """The steps of every terminal node that `is_correct(steps)` accepts, best first.

    Ordered by descending node value V, then ascending node id; a step tuple seen before is
    left out; with `max_per_tree`, only the first that many are returned.
    """
    if max_per_tree is not None and max_per_tree < 0:
        raise ValueError(f"max_per_tree must not be negative, got {max_per_tree}")
    ranked = sorted(tree.terminal_nodes(), key=lambda node_id: (-tree.nodes[node_id].value, node_id))
    traces: list[tuple[str, ...]] = []
    seen: set[tuple[str, ...]] = set()
    for node_id in ranked:
        if max_per_tree is not None and len(traces) >= max_per_tree:
            break
        steps = tree.steps_of(node_id)
        if steps in seen or not is_correct(steps):
            continue
        seen.add(steps)
        traces.append(steps)
    return traces
