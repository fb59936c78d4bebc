"""The one function that turns a question into the text a policy continues: search, training and scoring all
take their prompts from `Task.format_prompt`, which data tasks build here, so the three can never drift apart.

With a chat template (the policy tokenizer's, `--task.chat_template auto`), the instruction is the system turn,
each few-shot example a user turn and an assistant turn, the question the last user turn, and the generation
prompt opens the assistant's turn; the solution's steps follow it directly. Without one, plain text:

    {instruction}

    Question: {few-shot question}
    Answer:{delimiter}{few-shot solution}

    Question: {question}
    Answer:{delimiter}

A template's own BOS text stays in the prompt; `encoding.encode_prompt` then adds no second BOS.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PromptStyle:
    """How a data task writes its prompts."""

    instruction: str = ""
    few_shot: tuple[tuple[str, str], ...] = ()
    """(question, worked solution text) pairs shown before the question."""
    chat_template: str | None = None
    """A Jinja chat template (the tokenizer's), or None for plain text."""
    delimiter: str = "\n"


def chat_template_of(tokenizer, mode: str) -> str | None:
    """The template `mode` asks for: the tokenizer's own under `auto` (None when it has none), None under `off`."""
    if mode not in ("auto", "off"):
        raise ValueError(f"--task.chat_template {mode!r}: expected auto or off")
    if mode == "off" or tokenizer is None:
        return None
    return getattr(tokenizer, "chat_template", None) or None


def build_prompt(style: PromptStyle, question: str, tokenizer=None) -> str:
    """The text the policy continues with its first step (see the module docstring); `tokenizer` renders a chat
    template and must be given when `style` has one."""
    if style.chat_template is None:
        parts = [f"{style.instruction}\n\n"] if style.instruction else []
        parts += [f"Question: {q}\nAnswer:{style.delimiter}{solution}\n\n" for q, solution in style.few_shot]
        parts.append(f"Question: {question}\nAnswer:{style.delimiter}")
        return "".join(parts)
    if tokenizer is None:
        raise ValueError("a chat template needs the tokenizer that renders it")
    return tokenizer.apply_chat_template(chat_messages(style, question), chat_template=style.chat_template,
                                         tokenize=False, add_generation_prompt=True)


def chat_messages(style: PromptStyle, question: str, answer: str | None = None) -> list[dict[str, str]]:
    """The conversation of a prompt (and, with `answer`, its reply): system, few-shot turns, the question."""
    messages = [{"role": "system", "content": style.instruction}] if style.instruction else []
    for shot_question, solution in style.few_shot:
        messages += [{"role": "user", "content": shot_question}, {"role": "assistant", "content": solution}]
    messages.append({"role": "user", "content": question})
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return messages
