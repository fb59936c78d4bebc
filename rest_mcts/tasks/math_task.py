"""MATH (Hendrycks et al. 2021): competition problems with LaTeX answers, graded by math-verify.

The gold answer is the `answer` field, or the last `\\boxed{}` of the solution (braces matched) with
`--task.answer_field none`; a solution's answer is its last `\\boxed{}`, else "The answer is X", else
"Answer: X", else its last number. Answers are compared by
symbolic equivalence (`rest_mcts.math_answers.same_answer`, with a time limit), never by string equality. Steps
are paragraphs (a blank line ends each). Shipped: 100 MATH test problems with their gold answers and solutions
(QwenLM/Qwen2.5-Math's `math_cot_100.jsonl`, MIT); training problems come from `--task.data_path` (the MATH
train set as JSONL, e.g. `--task.question_field problem --task.answer_field none --task.solution_field solution`).
"""

from __future__ import annotations

from collections.abc import Sequence

from rest_mcts.answers import MATH_ORDER, last_number, strict_answer
from rest_mcts.math_answers import same_answer
from rest_mcts.tasks.data_task import SHIPPED, DataTask, math_gold


class MathTask(DataTask):
    name = "math"
    answer_order = MATH_ORDER
    default_delimiter = "\n\n"
    default_solution_field = "solution"
    default_instruction = "Please reason step by step, and put your final answer within \\boxed{}."
    shipped_test = SHIPPED / "math" / "math_cot_100.jsonl"

    def gold_answer(self, raw: str, where: str) -> str:
        return math_gold(raw, where)

    def final_step(self, answer: str) -> str:
        return f"The answer is $\\boxed{{{answer}}}$.{self.step_delimiter}"

    def extract_answer(self, steps: Sequence[str]) -> str | None:
        """The stated answer (`MATH_ORDER`), else the last number of the text (as Qwen2.5-Math's evaluation does)."""
        text = "".join(steps)
        return strict_answer(text, MATH_ORDER) or last_number(text)

    def check_answer(self, answer: str | None, oracle: str) -> bool:
        return answer is not None and same_answer(oracle, answer)
