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
