"""GSM8K (Cobbe et al. 2021): grade-school word problems, graded by their number.

Shipped: the train (7,473) and test (1,319) files of openai/grade-school-math, MIT license beside them. The gold
answer is the text after `#### `, commas removed; the worked solution's lines (calculator notes `<<...>>`
removed) are the warm start's steps, its `#### N` line the final step. Solutions are graded by their number:
`#### N`, `\\boxed{N}` or "The answer is N" first, else the last number in the text.
"""

from __future__ import annotations

import re

from rest_mcts.tasks.data_task import SHIPPED, DataTask, Row

CALCULATOR_NOTE = re.compile(r"<<[^>]*>>")


class GSM8KTask(DataTask):
    name = "gsm8k"
    default_solution_field = "answer"
    default_instruction = ("Solve the problem step by step, one step per line. On the last line write the final "
                           "answer as '#### <number>'.")
    shipped_train = SHIPPED / "gsm8k" / "train.jsonl"
    shipped_test = SHIPPED / "gsm8k" / "test.jsonl"

    def solution_steps(self, row: Row) -> list[str]:
        return super().solution_steps(Row(row.problem, CALCULATOR_NOTE.sub("", row.solution).replace("\n",
                                                                                                      self.step_delimiter)))

    def final_step(self, answer: str) -> str:
        return f"#### {answer}{self.step_delimiter}"
