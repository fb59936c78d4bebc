"""rest-mcts: self-training of reasoners with PRM-guided MCTS* (the controller package)."""

__version__ = "0.1.0"
