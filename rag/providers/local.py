"""The embedded GGUF model, run in-process by llama.cpp: one loaded model shared by the chat and judge slots."""

from __future__ import annotations

import atexit
import ctypes
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from rag.errors import ModelError
from rag.model_file import log
from rag.prefix import prime


# ---- the local GGUF model ------------------------------------------------------------------
def chatml(messages: list[BaseMessage]) -> str:
    """Qwen2.5's chat format, written out so the prompt prefix is stable for KV-cache reuse."""
    parts = []
    for m in messages:
        role = {"human": "user", "ai": "assistant"}.get(m.type, m.type)
        parts.append(f"<|im_start|>{role}\n{m.content}<|im_end|>\n")
    return "".join(parts) + "<|im_start|>assistant\n"


_LOCK = threading.Lock()  # llama.cpp contexts are not thread-safe; one request at a time


@dataclass
class _SlotState:
    """A slot's llama.cpp state (KV cache and the like) and the tokens it holds."""

    data: Any  # ctypes byte array from llama_state_get_data
    size: int
    input_ids: np.ndarray


class SharedLlama:
    """One loaded model (one ``llama_cpp.Llama``, one context) serving every slot ('chat', 'judge').

    Loading the model once per slot cost a whole model each (the mmapped GGUF and a ~600 MB repacked
    copy of the weights). Instead, when another slot's turn comes, the current slot's context state is
    saved and the other's restored, so each keeps its KV-cached prompt prefix ('chat' the answer
    prompt's fixed start, 'judge' the judge prompt's) as if it had a context of its own. Call ``use``
    with ``_LOCK`` held."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.slot: str | None = None
        self.saved: dict[str, _SlotState] = {}
        self.switches, self.switch_s = 0, 0.0

    def use(self, slot: str) -> Any:
        """The model, holding ``slot``'s state."""
        if slot != self.slot:
            t0 = time.perf_counter()
            if self.slot is not None:
                self.saved[self.slot] = self._save()
            state = self.saved.pop(slot, None)
            if state is None:
                self.llm.reset()
            else:
                self._load(state)
            self.slot = slot
            self.switches += 1
            self.switch_s += time.perf_counter() - t0
        return self.llm

    def _save(self) -> _SlotState:
        # What Llama.save_state does, minus its copy of ``Llama.scores`` (n_batch x n_vocab floats,
        # ~155 MB here), which is only filled with logits_all=True and which we never read.
        import llama_cpp

        ctx = self.llm._ctx.ctx
        size = llama_cpp.llama_state_get_size(ctx)
        data = (ctypes.c_uint8 * size)()
        written = int(llama_cpp.llama_state_get_data(ctx, data, size))
        if written > size:
            raise ModelError("cannot save the local model's state")
        return _SlotState(data, written, self.llm.input_ids[:self.llm.n_tokens].copy())

    def _load(self, state: _SlotState) -> None:
        import llama_cpp

        if int(llama_cpp.llama_state_set_data(self.llm._ctx.ctx, state.data, state.size)) != state.size:
            self.llm.reset()  # nothing cached: the next call evaluates its whole prompt
            return
        n = len(state.input_ids)
        self.llm.input_ids[:n] = state.input_ids
        self.llm.n_tokens = n


@lru_cache(maxsize=2)
def _shared_llama(path: str, n_ctx: int, n_threads: int) -> SharedLlama:
    """The model, loaded once for all slots."""
    from llama_cpp import Llama

    log(f"Loading local model ({Path(path).name}), shared by the chat and judge slots…")
    try:
        llm = Llama(model_path=path, n_ctx=n_ctx, n_threads=n_threads, n_batch=256, verbose=False)
    except Exception as exc:
        raise ModelError(f"cannot load local model {path}: {exc}") from None
    # freed before the interpreter tears llama_cpp down: left to the garbage collector, Llama.__del__ can run
    # after its C functions are gone and print "TypeError: 'NoneType' object is not callable" at exit
    atexit.register(llm.close)
    return SharedLlama(llm)


class LocalChatModel(BaseChatModel):
    """Qwen2.5 GGUF served in-process by llama-cpp-python; greedy decoding."""

    model_path: str
    n_ctx: int = 4096
    n_threads: int = 2
    max_tokens: int = 200
    # Slots share one loaded model, but each keeps its own KV-cached prefix (see SharedLlama):
    # "chat" keeps the answer prompt's fixed start; "judge" serves the judge and follow-up rewrites.
    slot: str = "chat"

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-local"

    def shared(self) -> SharedLlama:
        return _shared_llama(self.model_path, self.n_ctx, self.n_threads)

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        shared = self.shared()
        prompt = chatml(messages)
        with _LOCK:
            llm = shared.use(self.slot)
            prime(llm, prompt)  # then llama.cpp reuses just the primed segments and evaluates the rest
            for out in llm.create_completion(prompt, max_tokens=kwargs.get("max_tokens", self.max_tokens),
                                             temperature=0.0, stream=True, stop=["<|im_end|>", *(stop or [])]):
                text = out["choices"][0]["text"]
                if run_manager:
                    run_manager.on_llm_new_token(text)
                yield ChatGenerationChunk(message=AIMessageChunk(content=text))

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        text = "".join(str(c.message.content) for c in self._stream(messages, stop, run_manager, **kwargs))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def prompt_tokens(self, messages: list[BaseMessage]) -> int:
        return len(self.shared().llm.tokenize(chatml(messages).encode("utf-8"), special=True))

    def p_yes(self, messages: list[BaseMessage]) -> float:
        """P('Yes') / (P('Yes') + P('No')) for the next token, from the judge slot's logits."""
        shared = self.shared()
        with _LOCK:
            llm = shared.use("judge")
            tokens = prime(llm, chatml(messages))
            llm.eval(tokens[llm.n_tokens:])
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).copy()
        yes = max(logits[t] for t in _answer_tokens(llm, ("Yes", "YES", "yes", " Yes")))
        no = max(logits[t] for t in _answer_tokens(llm, ("No", "NO", "no", " No")))
        return 1.0 / (1.0 + math.exp(float(no) - float(yes)))


def _answer_tokens(llm: Any, words: tuple[str, ...]) -> list[int]:
    return [llm.tokenize(w.encode(), add_bos=False, special=False)[0] for w in words]
