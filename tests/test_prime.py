"""prefix.prime without a model: a prompt is evaluated in the same batches whatever ran before it,
and a segment (system message, the judge's passage) is reused only whole."""

from __future__ import annotations

import itertools
import re
from typing import ClassVar

import pytest

from rag.prefix import prime

# merges ".\n\n" into one token, as Qwen's tokenizer does, so a cut can fall inside a token
_PIECE = re.compile(r"<\|im_start\|>|<\|im_end\|>|[^\s\w]+\n*|\s*\n+|\w+| ")


class FakeLlama:
    """What prime uses of llama_cpp.Llama; records the batch every position was evaluated in."""

    vocab: ClassVar[dict[str, int]] = {}

    def __init__(self, n_ctx: int = 4096) -> None:
        self._n_ctx = n_ctx
        self.input_ids: list[int] = []
        self.n_tokens = 0
        self.batch: dict[int, tuple[int, int]] = {}
        self.evaluated = 0  # tokens, over all calls

    def n_ctx(self) -> int:
        return self._n_ctx

    def tokenize(self, text: bytes, special: bool = True) -> list[int]:
        return [self.vocab.setdefault(p, len(self.vocab)) for p in _PIECE.findall(text.decode())]

    def eval(self, tokens: list[int]) -> None:
        start = self.n_tokens
        self.input_ids[start:] = tokens
        self.batch |= {start + i: (start, start + len(tokens)) for i in range(len(tokens))}
        self.n_tokens += len(tokens)
        self.evaluated += len(tokens)

    def run(self, prompt: str) -> list[tuple[int, int]]:
        """Evaluate ``prompt`` as p_yes does; the batch of each of its positions."""
        tokens = prime(self, prompt)
        self.eval(tokens[self.n_tokens:])
        return [self.batch[i] for i in range(len(tokens))]


def chatml(system: str, user: str) -> str:
    return f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


USERS = ["Passage: Kosovo agreed.\n\nClaim: yes\n\nIs it?", "Passage: Kosovo agreed.\n\nClaim: no",
         "Passage: Kosovo agreed!\n\n\nClaim: no", "Passages:\n[1] x\nQuestion: q\nAnswer:",
         "Passage: Ünïcödé—…\n\nClaim: ✓", ""]
PROMPTS = [chatml(s, u) for s in ("Judge.", "Judge. Be brief.") for u in USERS] + ["", "no chat format\n\nx"]


@pytest.mark.parametrize("target", PROMPTS)
def test_a_prompt_is_evaluated_in_the_same_batches_whatever_ran_before(target: str) -> None:
    alone = FakeLlama().run(target)
    for history in itertools.permutations(PROMPTS, 2):
        llm = FakeLlama()
        for prompt in history:
            llm.run(prompt)
        assert llm.run(target) == alone, history


def test_the_judge_reuses_a_passage_it_checks_a_second_claim_against() -> None:
    llm = FakeLlama()
    llm.run(chatml("Judge.", "Passage: Kosovo agreed.\n\nClaim: yes"))
    first = llm.evaluated
    llm.run(chatml("Judge.", "Passage: Kosovo agreed.\n\nClaim: no"))
    assert 0 < llm.evaluated - first < first / 2  # only the claim and what follows are evaluated again


def test_a_prompt_longer_than_the_context_is_refused_before_any_work() -> None:
    llm = FakeLlama(n_ctx=8)
    with pytest.raises(ValueError, match=r"exceed context window of 8"):
        llm.run(chatml("Judge.", "Passage: Kosovo agreed.\n\nClaim: yes"))
    assert llm.n_tokens == 0
