"""Models: the local tokenizer, tiny policy/PRM builders and loaders, step encoding, sampler and PRM scorer."""
