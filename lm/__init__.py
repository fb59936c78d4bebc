"""The base both the controller (`rest_mcts`) and the trainers (`trainers`) use: the records that cross module
boundaries (`lm.data`), the local tokenizer, the tiny policy/PRM builders and loaders, step encoding, the batched
sampler and scorers, and checkpoints. It imports nothing of the project but `search`."""
