"""The embedded character tokenizer: one token per character, built locally with `tokenizers` (no hub access)."""

from __future__ import annotations

import string

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD_TOKEN = "<pad>"
BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"
UNK_TOKEN = "<unk>"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN)
"""Special tokens, in id order: `<pad>` is id 0."""

DEFAULT_ALPHABET = string.digits + string.ascii_lowercase + " \n+-*=:?,.;|#"
"""Characters of the synthetic tasks: digits, lower-case letters, space, newline and a few operators."""


def build_char_tokenizer(alphabet: str = DEFAULT_ALPHABET, padding_side: str = "left") -> PreTrainedTokenizerFast:
    """A tokenizer with one token per character of `alphabet` (duplicates ignored) after the four special tokens.

    Characters outside the alphabet map to `<unk>`. `decode(encode(text)) == text` for any text over the
    alphabet, spaces and newlines included. No BOS/EOS is added by `__call__`; `encoding.encode_prompt`
    adds BOS itself. Save with `save_pretrained`, reload with `AutoTokenizer.from_pretrained`.
    """
    vocab = {token: token_id for token_id, token in enumerate(SPECIAL_TOKENS)}
    for character in alphabet:
        vocab.setdefault(character, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    # Isolate every character (newlines included, hence [\s\S] rather than ".").
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()  # join tokens without inserting spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        padding_side=padding_side,
    )


CHAT_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
"""The role markers of `CHAT_TEMPLATE`, special tokens of a BPE tokenizer built with `chat=True`."""

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
"""A chat template in the common shape (it writes BOS itself, as Llama's and Gemma's do): role marker, content,
end marker; the generation prompt opens the assistant's turn."""


def build_bpe_tokenizer(texts, vocab_size: int = 600, chat: bool = False, split_words: bool = False,
                        padding_side: str = "left") -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained locally on `texts` (any text encodes; merges span characters; without
    `split_words`, GPT-2's split at word and whitespace boundaries, merges also cross them, as in SentencePiece
    tokenizers, so a newline sits inside tokens such as `.\\n` or `\\nThe`), with the four special tokens
    (and, with `chat`, the role markers and `CHAT_TEMPLATE`). For tests of what a character tokenizer hides:
    steps whose delimiter merges with other characters, prompts of uneven token lengths, chat templates."""
    from tokenizers import trainers

    specials = list(SPECIAL_TOKENS) + (list(CHAT_TOKENS) if chat else [])
    backend = Tokenizer(models.BPE(unk_token=None))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=split_words)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=BOS_TOKEN, eos_token=EOS_TOKEN, pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN, padding_side=padding_side,
        additional_special_tokens=list(CHAT_TOKENS) if chat else None,
    )
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
