"""MCTS*, process-reward inference and trajectory filtering: pure tree code, no torch, Ray or I/O."""
