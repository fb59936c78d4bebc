"""Final answers of real model output: extraction (strict formats first, then a flexible fallback, as
lm-evaluation-harness does for GSM8K), numeric comparison, and the checker of Game of 24 expressions.

Strict formats, tried on the whole solution text, last occurrence first: `#### N` (GSM8K's), `\\boxed{...}`
(braces balanced), and "The (final) answer is X". The flexible fallback (numeric answers only) is the last number
in the text. Gold answers are parsed strictly: one that cannot be parsed raises `GoldAnswerError`, never
a free point.
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction

from rest_mcts.math_answers import extract_boxed


class GoldAnswerError(ValueError):
    """A data set's gold answer cannot be parsed."""


_HASHES = re.compile(r"(?<!#)####(?!#)")
_ANSWER_IS = re.compile(r"answer\s+is\s*:?", re.IGNORECASE)
_ANSWER_COLON = re.compile(r"answer\s*(?:\*\*)?\s*:(?:\*\*)?", re.IGNORECASE)
_NUMBER = re.compile(r"-?\$?\s*(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+")
_WRAPPERS = ("$", "**", "*", "\\(", "\\)", "\\[", "\\]", "`")
_NUMBER_OK = re.compile(r"^-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$|^-?\.\d+$|^-?\d+/\d+$")


NUMERIC_ORDER = ("hashes", "boxed", "answer_is", "answer_colon")
"""Where a numeric task looks for the stated answer, first to last: GSM8K's `#### N`, then a box, then prose."""
MATH_ORDER = ("boxed", "answer_is", "hashes", "answer_colon")
"""Where a math task looks: the box first (a stray `####` or a later "the answer is" in a note never wins)."""


def strict_answer(text: str, order: tuple[str, ...] = NUMERIC_ORDER) -> str | None:
    """The answer a solution states in a strict format, stripped of markup; None when it states none. The
    formats are tried in `order` and the first present wins, each at its last occurrence: `hashes` (`#### N`),
    `boxed` (the last `\\boxed{}`, braces matched), `answer_is` ("The (final) answer is X"; a box inside it is
    the answer), `answer_colon` ("Answer: X", "**Final Answer:** X")."""
    for kind in order:
        if kind == "hashes":
            answer = _after_last(_HASHES, text)
        elif kind == "boxed":
            answer = extract_boxed(text)
        elif kind in ("answer_is", "answer_colon"):
            answer = _after_last(_ANSWER_IS if kind == "answer_is" else _ANSWER_COLON, text)
            if answer is not None:
                inner = extract_boxed(answer)  # "The final answer is $\boxed{5}$": the box is the answer
                answer = inner if inner is not None else answer
        else:
            raise ValueError(f"unknown answer format {kind!r}; expected hashes, boxed, answer_is or answer_colon")
        if answer is not None and _unwrap(answer):
            return _unwrap(answer)
    return None


def _after_last(marker: re.Pattern, text: str) -> str | None:
    """The rest of the line after the last match of `marker` in `text` (None without one)."""
    matches = list(marker.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end():]
    return rest.split("\n", 1)[0].strip()


def _unwrap(answer: str) -> str:
    """`answer` without the markup models put around a final answer (`$...$`, bold, a closing period)."""
    previous = None
    while answer != previous:
        previous = answer
        answer = answer.strip().rstrip(".").strip()
        for wrapper in _WRAPPERS:
            if answer.startswith(wrapper) and answer.endswith(wrapper) and len(answer) >= 2 * len(wrapper):
                answer = answer[len(wrapper):len(answer) - len(wrapper)]
    return answer


def last_number(text: str) -> str | None:
    """The last number in `text` (commas and a currency sign allowed), or None: the flexible fallback."""
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else None


_FRACTION = re.compile(r"(-?)(?:(\d+)\s*)?\\[dt]?frac(?:\{(-?\d+)\}|(\d))(?:\{(-?\d+)\}|(\d))")
"""`\\frac{3}{4}`, `\\dfrac34`, `\\frac{-1}{2}`, `-\\frac{1}{2}` and mixed `3\\frac{1}{2}`."""


_WITH_UNIT = re.compile(r"(-?[\d.,/]+)\s*(?:\\?text\{[a-zA-Z ]*\}|\\mbox\{[a-zA-Z ]*\}|[a-zA-Z]+(?: [a-zA-Z]+)*)?")
"""A number and a unit after it (`5 dollars`, `5\\text{ cm}`)."""


def to_number(text: str | None) -> Fraction | None:
    """`text` as an exact number when it is one (`1,234`, `$5`, `-0.5`, `18.00`, `3/4`, `\\frac{3}{4}`,
    `3\\frac{1}{2}`; `5 dollars` and `5\\text{ cm}`: a number followed by a unit word); None otherwise, and None for
    two numbers (`2 3/4`, `18 20`): spaces never join digits."""
    if text is None:
        return None
    value = _unwrap(text).replace("\\$", "").replace("$", "").replace("\\%", "").replace("%", "").strip()
    value = value.replace("\\!", "").replace("{,}", ",").replace("\\,", ",")
    value = re.sub(r"^(-)\s+", r"\1", value)
    fraction = _FRACTION.fullmatch(value)
    if fraction:
        sign, whole, numerator, denominator = (fraction.group(1), fraction.group(2), fraction.group(3) or
                                               fraction.group(4), fraction.group(5) or fraction.group(6))
        if int(denominator) == 0:
            return None
        number = Fraction(int(numerator), int(denominator))
        if whole is not None:
            number = int(whole) + number
        return -number if sign else number
    unit = _WITH_UNIT.fullmatch(value)
    if unit:
        value = unit.group(1)
    if not _NUMBER_OK.match(value):
        return None
    try:
        return Fraction(value.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def numeric_answer(text: str) -> str | None:
    """A numeric answer of free text: the stated answer (`strict_answer`), or its first number when it holds more
    than a number; else the last number of the text (lm-evaluation-harness's flexible extract)."""
    strict = strict_answer(text)
    if strict is not None and to_number(strict) is not None:
        return strict
    if strict is not None:  # "#### 18 (9 eggs * $2)": the number the answer starts with
        numbers = _NUMBER.findall(strict)
        if numbers:
            return numbers[0]
    return last_number(text)


def gold_number(text: str, where: str) -> Fraction:
    """A numeric gold answer: the text after `#### ` if there is one (GSM8K), else the whole text; raises
    GoldAnswerError naming `where` when it is not a number."""
    after = _after_last(_HASHES, text)
    value = to_number(after if after is not None else text)
    if value is None:
        raise GoldAnswerError(f"{where}: gold answer {text[-80:]!r} is not a number")
    return value


def same_number(answer: str | None, gold: str) -> bool:
    """Whether `answer` is the number `gold` is (18 = 18.0 = 18.00 = $18 = 1,8 never)."""
    value = to_number(answer)
    return value is not None and value == to_number(gold)


# --- Game of 24 ---------------------------------------------------------------------------------------------

_OPERATORS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
              ast.Div: lambda a, b: a / b}


def game24_value(expression: str, numbers: list[int], target: int = 24) -> bool:
    """Whether `expression` (+, -, *, / and parentheses over integers; `x`, `×`, `÷`, LaTeX's `\\times`, `\\cdot`,
    `\\div` and `$` accepted; a trailing `= 24` and period ignored) uses each of `numbers` exactly once, nothing
    else, and equals `target` in exact rational arithmetic. Division by zero, unary minus, other operators or
    numbers, or a claimed result other than the target make it wrong."""
    text = expression
    for written, operator in (("\\times", "*"), ("\\cdot", "*"), ("\\div", "/"), ("×", "*"), ("÷", "/"), ("x", "*"),
                              ("−", "-"), ("\\left", ""), ("\\right", ""), ("$", ""), ("\\(", ""), ("\\)", "")):
        text = text.replace(written, operator)
    text = text.strip().rstrip(".").strip()
    if "=" in text:  # "... = 24": what it claims must be the target
        text, _, claimed = text.rpartition("=")
        if claimed.strip() != str(target):
            return False
    if not text or len(text) > 200:
        return False
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return False
    used: list[int] = []

    def value(node: ast.AST) -> Fraction:
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.Constant) and type(node.value) is int:
            used.append(node.value)
            return Fraction(node.value)
        raise ValueError("not allowed")

    try:
        result = value(tree.body)
    except (ValueError, ZeroDivisionError):
        return False
    return sorted(used) == sorted(numbers) and result == target
