"""A prompt evaluated in fixed segments, so the same prompt gives the same logits whatever ran before it.

Works on any object with llama-cpp-python's ``Llama`` methods it uses (tokenize, eval, input_ids, n_tokens,
n_ctx): tests drive it with a stand-in, without a model."""

from __future__ import annotations

from typing import Any


def prime(llm: Any, prompt: str) -> list[int]:
    """Leave ``llm`` holding every whole segment of ``prompt`` but the last, and return its tokens.

    llama.cpp's numbers depend on how tokens were batched, so reusing whatever prefix the last call
    left (as llama-cpp-python does) made an answer depend on the question asked before it. Here a
    prompt is cut at fixed places (after the system message, and after the first blank line: the
    judge's passage), each segment is evaluated on its own, and only whole segments are reused: the same
    prompt gives the same logits whatever ran before, and the judge still reuses a passage it
    checks several claims against."""
    tokens = list(llm.tokenize(prompt.encode("utf-8"), special=True))
    if len(tokens) >= llm.n_ctx():  # llama-cpp's own check comes later, after a less clear decode error
        raise ValueError(f"Requested tokens ({len(tokens)}) exceed context window of {llm.n_ctx()}")
    held = 0
    for a, b in zip(llm.input_ids[:llm.n_tokens], tokens, strict=False):
        if a != b:
            break
        held += 1
    ends = _segment_ends(llm, prompt, tokens)
    llm.n_tokens = max((e for e in ends if e <= held), default=0)
    for end in ends:
        if end > llm.n_tokens:
            llm.eval(tokens[llm.n_tokens:end])
    return tokens


def _segment_ends(llm: Any, prompt: str, tokens: list[int]) -> list[int]:
    """Token offsets (before the prompt's last token) where its segments end, where a cut falls between tokens."""
    system_end = prompt.find("<|im_start|>user")
    if system_end <= 0:
        return []
    cuts = [system_end]
    if (blank := prompt.find("\n\n", system_end)) > 0:
        cuts.append(blank + 2)
    ends = []
    for cut in cuts:
        head = llm.tokenize(prompt[:cut].encode("utf-8"), special=True)
        if len(head) < len(tokens) and tokens[:len(head)] == list(head):
            ends.append(len(head))
    return ends
