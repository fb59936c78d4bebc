"""Verifiers as scorers of solutions (finished, or partial for a step verifier), behind one interface.

Every verifier's `verify(prefixes)` returns a `search.types.VerifierScores`: one score in [0, 1] per
prefix, and the tokens the verifier generated and read, so that comparisons at equal compute count them.

- `GenerativeVerifier`: GenRM (Zhang et al., 2025). Direct: p(yes) renormalised over the yes and no
  tokens after "question". CoT (`rationales` K > 0): K sampled checks after the check cue, each followed
  by the question; the score is the mean over the K of p(yes). With an untrained policy as the model and
  the same prompt it is the LLM-as-a-judge baseline.
- `LikelihoodVerifier`: a preference-trained LM (SimPO, Meng et al. 2024) scores a solution by its
  length-normalised log-likelihood; reported as exp(mean log p) (the geometric mean token probability).
- `ClassifierVerifier`: a one-label token classifier read at a step end (the PRM with an aggregation
  over the steps, or an outcome reward model read at the last step).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lm.encoding import encode_steps, policy_labels
from lm.kv_cache import padded
from lm.verifier_format import (
    VerifierFormat,
    check_encodable,
    encode_verification,
    verdict_token_ids,
)
from search.baselines import aggregate
from search.types import Prefix, VerifierScores


class GenerativeVerifier:
    """GenRM direct (`rationales=0`) or GenRM-CoT (`rationales=K`) on a causal LM; `verify` matches `VerifyFn`."""

    def __init__(self, model, tokenizer, verifier_format: VerifierFormat | None = None, rationales: int = 0,
                 max_rationale_tokens: int = 128, temperature: float = 1.0, device: str | torch.device = "cpu",
                 batch_size: int = 64, seed: int = 0, writer=None):
        """`writer`: what writes GenRM-CoT's checks (a step sampler whose delimiter is the format's question and
        whose every step is final, such as a `lm.vllm_engine.VLLMStepSampler`); by default a `StepSampler` on
        `model`."""
        if rationales < 0 or max_rationale_tokens < 1 or batch_size < 1:
            raise ValueError("rationales must be 0 or more, max_rationale_tokens and batch_size at least 1")
        verifier_format = verifier_format or VerifierFormat()
        check_encodable(tokenizer, verifier_format)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.format = verifier_format
        self.rationales = rationales
        self.batch_size = batch_size
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        yes, no = verdict_token_ids(tokenizer, verifier_format)
        self.yes_ids = torch.tensor(yes, device=self.device)
        self.no_ids = torch.tensor(no, device=self.device)
        self.writer = writer if rationales else None
        if rationales and writer is None:
            from lm.sampler import StepSampler, decodes_with_a_cache

            # A check is written like one long step that ends when the model asks the question.
            self.writer = StepSampler(model, tokenizer, delimiter=verifier_format.question,
                                      is_final_step=lambda text: True, max_step_tokens=max_rationale_tokens,
                                      temperature=temperature, device=device, seed=seed,
                                      decode="cached" if decodes_with_a_cache(model) else "generate")

    def verify(self, prefixes: Sequence[Prefix]) -> VerifierScores:
        if not prefixes:
            return VerifierScores([], [], [])
        if not self.rationales:
            rows = [encode_verification(self.tokenizer, p.prompt, p.steps, self.format).input_ids for p in prefixes]
            return VerifierScores(self.p_yes(rows), [1] * len(rows), [len(row) for row in rows])
        checks = self.checks(prefixes, self.rationales)
        scores = [sum(p for p, _ in rows) / len(rows) for rows in checks]
        generated = [sum(tokens for _, tokens in rows) for rows in checks]
        read = [len(encode_steps(self.tokenizer, p.prompt, p.steps).input_ids) * self.rationales for p in prefixes]
        return VerifierScores(scores, generated, read)

    def checks(self, prefixes: Sequence[Prefix], count: int) -> list[list[tuple[float, int]]]:
        """GenRM-CoT's samples: per prefix, `count` checks written independently, each as (p(yes) after it, tokens
        generated for it, its verdict included). The mean p(yes) of the first K is GenRM-CoT's score at K."""
        if self.writer is None:
            raise ValueError("checks need a verifier built with rationales > 0")
        written = self.writer.propose([Prefix(p.prompt, p.steps + (self.format.check_cue,)) for p in prefixes], count)
        rows, tokens = [], []
        for prefix, samples in zip(prefixes, written, strict=True):
            for check in samples:
                rationale = check.text.split(self.format.question, 1)[0]
                rows.append(encode_verification(self.tokenizer, prefix.prompt, prefix.steps, self.format,
                                                rationale).input_ids)
                tokens.append(check.num_tokens + 1)  # the check, then the verdict read after it
        p_yes = self.p_yes(rows)
        pairs = list(zip(p_yes, tokens))
        return [pairs[i: i + count] for i in range(0, len(pairs), count)]

    @torch.no_grad()
    def p_yes(self, rows: Sequence[Sequence[int]]) -> list[float]:
        """p(yes) / (p(yes) + p(no)) at the token after each row, summing each side over its first tokens."""
        values: list[float] = []
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start: start + self.batch_size]
            input_ids, attention_mask = padded(batch, self.pad_token_id, self.device, left=False)
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
            last = attention_mask.sum(-1) - 1
            log_probs = torch.log_softmax(logits[torch.arange(len(batch), device=self.device), last].float(), -1)
            yes = torch.logsumexp(log_probs[:, self.yes_ids], -1)
            no = torch.logsumexp(log_probs[:, self.no_ids], -1)
            values.extend(torch.sigmoid(yes - no).tolist())
        return values


class LikelihoodVerifier:
    """Scores a solution by exp(mean log p(solution and EOS | prompt)) under a causal LM (SimPO's length-normalised
    reward, on [0, 1]); `verify` matches `VerifyFn`. No tokens are generated."""

    def __init__(self, model, tokenizer, device: str | torch.device = "cpu", batch_size: int = 64):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def verify(self, prefixes: Sequence[Prefix]) -> VerifierScores:
        from lm.logprobs import row_logprobs

        # The rows preference training scores: the solution's steps and EOS, the prompt masked.
        encoded = [encode_steps(self.tokenizer, p.prompt, p.steps, add_eos=True) for p in prefixes]
        sums, counts = row_logprobs(self.model, [e.input_ids for e in encoded], [policy_labels(e) for e in encoded],
                                    self.pad_token_id, self.batch_size)
        scores = [float(torch.exp(total / max(int(count), 1))) for total, count in zip(sums, counts)]
        return VerifierScores(scores, [0] * len(encoded), [len(e.input_ids) for e in encoded])


class ClassifierVerifier:
    """A one-label token classifier (`PRMScorer`) as a verifier: its step scores aggregated by `how`
    (`search.baselines.AGGREGATIONS`; an ORM is read with 'last'); `verify` matches `VerifyFn`."""

    def __init__(self, scorer, how: str = "last"):
        self.scorer = scorer
        self.how = how

    def verify(self, prefixes: Sequence[Prefix]) -> VerifierScores:
        if self.how == "last":
            scores = self.scorer.score(prefixes)
        else:  # every step's score, all prefixes of all solutions in one batched call
            steps = self.scorer.score([Prefix(p.prompt, p.steps[:k]) for p in prefixes
                                       for k in range(1, len(p.steps) + 1)])
            scores, start = [], 0
            for prefix in prefixes:
                scores.append(aggregate(steps[start: start + len(prefix.steps)], self.how))
                start += len(prefix.steps)
        read = [len(self.scorer.encode(p).input_ids) for p in prefixes]
        return VerifierScores([float(s) for s in scores], [0] * len(prefixes), read)

