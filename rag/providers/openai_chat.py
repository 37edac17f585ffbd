"""Any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, hosted APIs) through ``langchain-openai``:
its failures, and replies that are no answer, as one line."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import SecretStr

from rag.errors import ConfigError, ModelError, RagError, first_line
from rag.model_file import log

# ---- the OpenAI-compatible backend --------------------------------------------------------
_CHARS_PER_TOKEN = 16  # a streamed answer past this many characters a token is cut (the server ignored the limit)
_YES_NO = re.compile(r"[\W_]*(yes|no|not)\b", re.I)  # "Yes", " **No**", "no." (what the judge prompt asks for)
# the judge's reply, in tokens: enough for a line break or markup before the word ("\n\n**Yes**"), which one
# token cut to "\n" or "**", neither Yes nor No
_JUDGE_TOKENS = 5
# the judge's P(Yes) is summed over the top alternatives of the first word; servers (base URLs) that answered
# HTTP 400 to these are not asked for them again, and those that sent none are warned about once
_LOGPROBS: dict[str, Any] = {"logprobs": True, "top_logprobs": 10}
_REFUSED, _WARNED = set[str](), set[str]()


class _LogprobsRefused(Exception):
    """The server answered HTTP 400 to a request with ``logprobs``."""


def _word(token: Any) -> str:
    return re.sub(r"[\W_]+", "", str(token)).lower()


def _p_yes_from(logprobs: Any) -> float | None:
    """P(yes) / (P(yes) + P(no)) over the top alternatives of the reply's first word, if it is Yes or No (in any case,
    as local.py reads them; tokens of white space or markup before it, "\\n" or "**", skipped); else None."""
    try:
        token = next(t for t in logprobs["content"] if _word(t["token"]))
        yes, no = (sum(math.exp(a["logprob"]) for a in token["top_logprobs"] if _word(a["token"]) == w)
                   for w in ("yes", "no"))
    except (LookupError, TypeError, AttributeError, StopIteration, ValueError, OverflowError):  # not OpenAI's shape
        return None
    return yes / (yes + no) if yes + no > 0 and _word(token["token"]) in ("yes", "no") else None


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


def check_openai_settings(url: str, key: SecretStr | None) -> None:
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
            why = first_line(exc)[:200]
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
                if kwargs.get("logprobs") and getattr(exc, "status_code", 0) == 400 and "logprobs" in str(exc).lower():
                    raise _LogprobsRefused() from None  # p_yes asks again without them
                raise self.explain(exc) from None
            if not result.generations:
                raise ModelError(f"{self._server()} sent a reply with no choices in it; is it an OpenAI-compatible API?"
                                 " (RAG_OPENAI_BASE_URL)")
            return result

        def p_yes(self, messages: list[BaseMessage]) -> float:
            """P(Yes) / (P(Yes) + P(No)) from the token probabilities of a reply of Yes or No (1.0 or 0.0 from its text
            when the server sends none); any other reply fails, as then no claim can be checked."""
            server = self.openai_api_base or ""
            try:
                message = self.invoke(messages, max_tokens=_JUDGE_TOKENS, **({} if server in _REFUSED else _LOGPROBS))
            except _LogprobsRefused:
                _REFUSED.add(server)
                message = self.invoke(messages, max_tokens=_JUDGE_TOKENS)
            if not message.response_metadata.get("logprobs") and server not in _WARNED:
                _WARNED.add(server)
                log(f"warning: {self._server()} gives no token probabilities, so the claim judge can only read its"
                    " Yes or No (RAG_SUPPORT_THRESHOLD and RAG_OTHER_REPORT_THRESHOLD have no effect)")
            content = message.content  # a list of parts from some servers: [{"type": "text", "text": "Yes"}]
            reply = content if isinstance(content, str) else "".join(
                str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
            if found := _YES_NO.match(reply):
                p = _p_yes_from(message.response_metadata.get("logprobs"))
                return p if p is not None else 1.0 if found[1].lower() == "yes" else 0.0
            finish = message.response_metadata.get("finish_reason")
            shown = repr(reply[:40]) + ("…" if len(reply) > 40 else "")
            raise ModelError(f"{self._server()} answered the claim check with {shown} (finish_reason {finish!r}),"
                             " not Yes or No, so the answer cannot be checked: use a model that follows the"
                             " instruction (RAG_OPENAI_MODEL), or RAG_VERIFY=off to answer unchecked")

    return OpenAIChat
