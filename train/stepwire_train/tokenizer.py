"""A byte-level BPE trained on the rendered prompts and targets (as scripts/build-test-models.py
builds the fixtures' tokenizer): special tokens <unk>=0 <s>=1 </s>=2 <pad>=3, the post-processor
prepends <s>. Encoding helpers mirror runtime/onnx/src/tokenize.rs."""

from __future__ import annotations

import random
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from .manifest import Manifest
from .util import UserError, file_in, log

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]
UNK, BOS, EOS, PAD = 0, 1, 2, 3


def train_tokenizer(texts, vocab_size: int = 4000, min_frequency: int = 2) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    for i, s in enumerate(SPECIAL_TOKENS):
        if tok.token_to_id(s) != i:
            raise UserError(f"special token {s} got id {tok.token_to_id(s)}, expected {i}")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                      special_tokens=[("<s>", BOS)]),
    ])
    return tok


def load_tokenizer(path: str | Path) -> Tokenizer:
    p = file_in(path, "tokenizer.json", "tokenizer not found; train one with "
                "`python -m stepwire_train tokenizer --data DIR --out FILE`")
    tok = Tokenizer.from_file(str(p))
    for i, s in enumerate(SPECIAL_TOKENS):
        if tok.token_to_id(s) != i:
            raise UserError(f"{p}: special token {s} has id {tok.token_to_id(s)}, expected {i}")
    return tok


def encode_prompts(tok: Tokenizer, texts: list[str]) -> list[list[int]]:
    """`encode_prompt`: special tokens on (the post-processor's <s>), <s> added if missing."""
    out = [e.ids for e in tok.encode_batch(texts, add_special_tokens=True)]
    return [ids if ids[:1] == [BOS] else [BOS] + ids for ids in out]


def encode_targets(tok: Tokenizer, texts: list[str]) -> list[list[int]]:
    """`encode_plain` of each target, then </s>: generation stops at eos."""
    return [e.ids + [EOS] for e in tok.encode_batch(texts, add_special_tokens=False)]


def check_prefixes(tok: Tokenizer, m: Manifest, prompts_by_role: dict[str, list[str]]) -> dict:
    """Every template prefix must tokenize to the same ids alone as inside its prompts, and the
    rest alone (the runtime's split tokenization); returns the prefix lengths."""
    lens = {}
    for role, prompts in prompts_by_role.items():
        prefix = m.template(role).prefix()
        if not prefix:
            continue
        pids = encode_prompts(tok, [prefix])[0]
        lens[role] = len(pids)
        full = encode_prompts(tok, prompts)
        rest = [e.ids for e in tok.encode_batch([p[len(prefix):] for p in prompts],
                                                add_special_tokens=False)]
        for p, f, r in zip(prompts, full, rest):
            if not p.startswith(prefix) or f[:len(pids)] != pids or pids + r != f:
                raise UserError(f"the {role} template's prefix tokenizes differently inside the "
                                f"prompt {p[:80]!r}...; end the prefix with a newline so every "
                                "placeholder follows one")
    return lens


def corpus(samples: list[dict], max_texts: int, seed: int) -> list[str]:
    """Training texts: the prompts (deduplicated) and targets, sampled down to `max_texts`."""
    texts = list(dict.fromkeys(s["prompt"] for s in samples)) + [s["target"] for s in samples]
    if len(texts) > max_texts:
        texts = random.Random(seed).sample(texts, max_texts)
    log.info("tokenizer corpus: %d texts, %.1f MB", len(texts),
             sum(len(t) for t in texts) / 1e6)
    return texts
