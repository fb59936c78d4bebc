"""Log-likelihoods of a row's labelled tokens under a causal LM: what SimPO and DPO train on, and what a
likelihood scorer reads (SimPO ranks solutions by their length-normalised log-likelihood, Meng et al. 2024).

A row is (input_ids, labels) in the convention of `encoding.policy_labels`: labels[t] is the token at t or
IGNORE_INDEX, and the logits at t - 1 predict it. Rows are right-padded, so padding never shifts a position.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lm.encoding import IGNORE_INDEX


def labelled_logprob_sums(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the sum of log p(labels[t] | tokens before t) over positions t whose label is not IGNORE_INDEX,
    and the number of such positions (|y| of a solution).

    logits: [batch, length, vocab] (any float dtype; computed in float32); labels: [batch, length].
    Returns (sums [batch] float32, counts [batch] long); a row with no labelled token sums to 0.
    """
    logits = logits[:, :-1, :].float()
    targets = labels[:, 1:].long()
    labelled = targets != IGNORE_INDEX
    picked = logits.gather(-1, targets.masked_fill(~labelled, 0).unsqueeze(-1)).squeeze(-1)
    token_logprobs = picked - torch.logsumexp(logits, dim=-1)
    sums = torch.where(labelled, token_logprobs, torch.zeros_like(token_logprobs)).sum(dim=-1)
    return sums, labelled.sum(dim=-1)


@torch.no_grad()
def row_logprobs(
    model: torch.nn.Module,
    input_ids: Sequence[Sequence[int]],
    labels: Sequence[Sequence[int]],
    pad_token_id: int,
    batch_size: int = 16,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`labelled_logprob_sums` of every row under `model`, in batches of `batch_size` rows of similar length.

    Put the model in eval mode first (dropout). Rows run longest first so a batch pads little; the results come
    back in the rows' order, on the CPU: (sums [rows] float32, counts [rows] long).
    """
    if len(input_ids) != len(labels):
        raise ValueError(f"{len(input_ids)} rows of input ids but {len(labels)} rows of labels")
    device = next(model.parameters()).device
    sums = torch.zeros(len(input_ids), dtype=torch.float32)
    counts = torch.zeros(len(input_ids), dtype=torch.long)
    order = sorted(range(len(input_ids)), key=lambda row: -len(input_ids[row]))
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        longest = max(len(input_ids[row]) for row in rows)
        batch_ids = torch.full((len(rows), longest), pad_token_id, dtype=torch.long)
        batch_labels = torch.full((len(rows), longest), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for index, row in enumerate(rows):
            length = len(input_ids[row])
            batch_ids[index, :length] = torch.tensor(input_ids[row], dtype=torch.long)
            batch_labels[index, :length] = torch.tensor(labels[row], dtype=torch.long)
            attention_mask[index, :length] = 1
        logits = model(input_ids=batch_ids.to(device), attention_mask=attention_mask.to(device)).logits
        batch_sums, batch_counts = labelled_logprob_sums(logits, batch_labels.to(device))
        sums[rows] = batch_sums.cpu()
        counts[rows] = batch_counts.cpu()
    return sums, counts
