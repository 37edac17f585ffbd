"""``python -m bench.llama_memory``: the raw memory baseline for `rag serve`, in a fresh process.

Prints JSON: VmHWM after one raw ``llama_cpp.Llama`` (n_ctx 4096, the settings rag uses) has answered
a short prompt, and after two more llama.cpp contexts were added on the *same* loaded model (what
rag's chat/judge/rewrite slots would cost if they shared the weights instead of loading the model
once per slot). Each ``Llama`` loads its own copy of the weights: the mmapped file plus, on x86, a
CPU_REPACK copy of most q4_K tensors in anonymous memory.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

PROMPT = "<|im_start|>user\nName the capital of France in one word.<|im_end|>\n<|im_start|>assistant\n"


def _status() -> dict[str, float]:
    out = {}
    with open(f"/proc/{os.getpid()}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def sibling_context(base: Any, n_ctx: int) -> Any:
    """A second ``Llama`` object with its own llama.cpp context (KV cache) on ``base``'s loaded model."""
    import llama_cpp
    import numpy as np
    from llama_cpp import _internals as internals

    other = object.__new__(llama_cpp.Llama)
    other.__dict__.update(base.__dict__)
    other._stack = contextlib.ExitStack()
    params = type(base.context_params).from_buffer_copy(base.context_params)
    params.n_ctx = n_ctx
    other.context_params = params
    other._ctx = other._stack.enter_context(contextlib.closing(
        internals.LlamaContext(model=base._model, params=params, verbose=False)))
    other._batch = other._stack.enter_context(contextlib.closing(
        internals.LlamaBatch(n_tokens=base.n_batch, embd=0, n_seq_max=n_ctx, verbose=False)))
    other._candidates = internals.LlamaTokenDataArray(n_vocab=base._n_vocab)
    other._n_ctx, other.n_tokens, other._sampler = n_ctx, 0, None
    other.input_ids = np.ndarray((n_ctx,), dtype=np.intc)
    other.scores = np.ndarray((base.n_batch, base._n_vocab), dtype=np.single)
    return other


def _answer(llm: Any) -> str:
    out: Any = llm.create_completion(PROMPT, max_tokens=4, temperature=0.0)
    return str(out["choices"][0]["text"])


def main() -> None:
    import llama_cpp

    from rag.model_file import ensure_model
    from rag.settings import Settings

    s = Settings()
    out: dict[str, Any] = {"before": _status()}
    base = llama_cpp.Llama(model_path=str(ensure_model(s.model_cache_dir)), n_ctx=s.n_ctx, n_threads=s.n_threads,
                           n_batch=256, verbose=False)
    texts = [_answer(base)]
    out["one_llama"] = _status()
    siblings = [sibling_context(base, s.n_ctx) for _ in range(2)]
    texts += [_answer(m) for m in siblings]
    out["three_contexts_one_model"] = _status()
    out["same_answers"] = len(set(texts)) == 1
    print(json.dumps(out))


if __name__ == "__main__":
    main()
