"""The OpenAI-compatible backend against a stdlib server that misbehaves on demand: every failure is one
``RagError`` line naming the server and the setting to check; a streamed answer that broke off, or came
empty, is never taken as an answer; a judge that says neither Yes nor No stops the answer (it is never
taken as No, which made every answer "The articles don't say")."""

from __future__ import annotations

import http.server
import json
import math
import re
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from langchain_core.messages import BaseMessage, HumanMessage

from rag.errors import ConfigError, ModelError
from rag.providers import Backend, make_backend, openai_chat
from rag.settings import Settings
from rag.verify import Judge, judge_prompt_p_yes
from tests.servers import free_port, http_thread

ANSWER = "Kosovo agreed to take 50 deportees [1]."
ASK: list[BaseMessage] = [HumanMessage("How many deportees did Kosovo agree to take?")]


def _chunk(content: str | None, finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": finish}
    return f"data: {json.dumps({'id': 'c', 'object': 'chat.completion.chunk', 'choices': [choice]})}\n\n".encode()


def _completion(content: Any, choices: bool = True, finish: str = "stop") -> bytes:
    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
    return json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": "m",
                       "choices": [choice] if choices else []}).encode()


def _logprobs(*tokens: tuple[str, dict[str, float]]) -> dict[str, Any]:
    """A reply's ``logprobs`` in the OpenAI shape: each token with its top alternatives and their probabilities."""
    def entry(token: str, p: float) -> dict[str, Any]:
        return {"token": token, "logprob": math.log(p), "bytes": list(token.encode())}
    return {"content": [entry(t, top.get(t, 1e-6)) | {"top_logprobs": [entry(a, p) for a, p in top.items()]}
                        for t, top in tokens]}


class _Server(http.server.BaseHTTPRequestHandler):
    """``stream``: the bytes of a streamed reply after the headers (``None``: keep-alive comments for 3 s);
    ``reply``: a whole reply's body; ``status``: its HTTP status; ``logprobs``: put in a whole reply that asked
    for them; ``refuse_logprobs``: answer HTTP 400 to a request that asks for them; ``requests``: their bodies."""

    stream: ClassVar[list[bytes] | None] = [_chunk(ANSWER), _chunk("", "stop"), b"data: [DONE]\n\n"]
    reply: ClassVar[bytes] = _completion("Yes")
    status: ClassVar[int] = 200
    tokens: ClassVar[list[str] | None] = None  # a reply of these tokens, as many as max_completion_tokens allows
    logprobs: ClassVar[dict[str, Any] | None] = None
    refuse_logprobs: ClassVar[bool] = False
    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(body)
        if self.refuse_logprobs and "logprobs" in body:  # as some servers: no such parameter
            self.send_error_json(400, "Unrecognized request argument supplied: logprobs")
            return
        if not self.path.endswith("/v1/chat/completions"):  # as vLLM: no other path
            self.send_error(404)
            return
        reply = self.reply
        if self.tokens is not None and not body.get("stream"):
            n = body.get("max_completion_tokens") or body.get("max_tokens") or len(self.tokens)
            reply = _completion("".join(self.tokens[:n]), finish="length" if n < len(self.tokens) else "stop")
        if self.logprobs is not None and body.get("logprobs"):
            whole = json.loads(reply)
            whole["choices"][0]["logprobs"] = self.logprobs
            reply = json.dumps(whole).encode()
        if not body.get("stream"):
            self.send_response(self.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.close_connection = True
        try:
            if self.stream is None:  # a proxy that keeps the line open with comments and never answers
                for _ in range(30):
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    time.sleep(0.1)
            for part in self.stream or []:
                self.wfile.write(part)
                self.wfile.flush()
        except OSError:  # the client stopped reading
            pass

    def send_error_json(self, status: int, message: str) -> None:
        reply = json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def _running() -> Iterator[tuple[str, type[_Server]]]:
    handler = type("Server", (_Server,), {})
    with http_thread(handler) as port:
        yield f"http://127.0.0.1:{port}/v1", handler


@pytest.fixture
def server(_running: tuple[str, type[_Server]]) -> tuple[str, type[_Server]]:
    """The server, behaving well until the test says otherwise."""
    url, handler = _running
    for name in ("stream", "reply", "status", "tokens", "logprobs", "refuse_logprobs"):
        if name in vars(handler):
            delattr(handler, name)
    handler.requests = []
    openai_chat._REFUSED.clear()  # what the process remembers of the server
    openai_chat._WARNED.clear()
    return url, handler


def backend(url: str, **settings: Any) -> Backend:
    return make_backend(Settings(llm="openai", embeddings="fake", openai_base_url=url, **settings))


def streamed(url: str, **settings: Any) -> str:
    return "".join(str(c.content) for c in backend(url, **settings).chat.stream(ASK))


def test_a_whole_stream_is_the_answer(server: tuple[str, type[_Server]]) -> None:
    url, handler = server
    assert streamed(url) == ANSWER
    handler.stream = [_chunk(ANSWER), _chunk("", "stop")]  # no [DONE], but it said it had finished
    assert streamed(url) == ANSWER


@pytest.mark.parametrize("model", ["gpt-5-pro", "qwen-codex-7b"])
def test_every_model_name_is_sent_to_chat_completions(server: tuple[str, type[_Server]], model: str) -> None:
    """langchain sent these names to /v1/responses, which vLLM, llama.cpp and Ollama do not serve (HTTP 404)."""
    url, _ = server
    assert streamed(url, openai_model=model) == ANSWER
    assert backend(url, openai_model=model).p_yes(ASK) == 1.0


@pytest.mark.parametrize("parts", [
    [_chunk("Kosovo agreed "), _chunk("to take 50")[:30]],  # cut inside an event
    [_chunk("Kosovo agreed to take "), _chunk("50 deportees")],  # cut between events: no finish_reason, no [DONE]
], ids=["inside-an-event", "between-events"])
def test_a_stream_that_broke_off_is_no_answer(server: tuple[str, type[_Server]], parts: list[bytes]) -> None:
    """It was taken as the whole answer ("Kosovo agreed [1]", judged and shown)."""
    url, handler = server
    handler.stream = parts
    with pytest.raises(ModelError, match=rf"^the OpenAI-compatible server at {url} broke off its streamed answer"):
        streamed(url)


@pytest.mark.parametrize("parts", [
    [_chunk(""), _chunk("", "stop"), b"data: [DONE]\n\n"],
    [_chunk(" \n"), _chunk(None, "stop"), b"data: [DONE]\n\n"],
    [b'data: {"id": "c", "object": "chat.completion.chunk", "choices": []}\n\n', b"data: [DONE]\n\n"],
    [b"data: [DONE]\n\n"],
], ids=["empty", "white-space-and-null", "no-choices", "nothing"])
def test_an_empty_answer_is_an_error(server: tuple[str, type[_Server]], parts: list[bytes]) -> None:
    """It was answered "The articles don't say", as if the model had read the passages and refused."""
    url, handler = server
    handler.stream = parts
    with pytest.raises(ModelError, match=rf"^the OpenAI-compatible server at {url} sent an empty answer"):
        streamed(url)


@pytest.mark.parametrize("parts", [
    [_chunk("Kosovo agreed "), b"data: {not json\n\n", b"data: [DONE]\n\n"],
    [b'data: {"choices": [{"index": 0, "delta": {"content": "Kosovo \xff agreed"}}]}\n\n', b"data: [DONE]\n\n"],
], ids=["not-json", "not-utf-8"])
def test_an_unreadable_stream_names_the_server(server: tuple[str, type[_Server]], parts: list[bytes]) -> None:
    url, handler = server
    handler.stream = parts
    with pytest.raises(ModelError, match=rf"^the OpenAI-compatible server at {url} sent a reply that is no OpenAI"
                                         r" chat completion \(.+\); is it an OpenAI-compatible API\?"):
        streamed(url)


def test_a_page_that_is_no_stream_names_the_server(server: tuple[str, type[_Server]]) -> None:
    url, handler = server
    handler.stream = [b"<html><body>Welcome to nginx!</body></html>"]
    with pytest.raises(ModelError, match=rf"^the OpenAI-compatible server at {url} sent no server-sent events"):
        streamed(url)


def test_keep_alive_bytes_do_not_wait_past_the_timeout(server: tuple[str, type[_Server]]) -> None:
    """Each byte restarted the client's read timeout: it waited as long as the comments came."""
    url, handler = server
    handler.stream = None
    with pytest.raises(ModelError, match=rf"^the OpenAI-compatible server at {url} did not answer within 0.5 s"
                                         r" \(RAG_OPENAI_TIMEOUT_S\)$"):
        streamed(url, openai_timeout_s=0.5)


def test_an_answer_past_the_token_limit_is_cut(server: tuple[str, type[_Server]]) -> None:
    """A server that ignores max_completion_tokens: the answer (and the judge calls, one a sentence) had no end."""
    url, handler = server
    handler.stream = [_chunk(ANSWER + " ") for _ in range(500)] + [_chunk("", "stop"), b"data: [DONE]\n\n"]
    text = streamed(url, max_answer_tokens=10)
    assert text.startswith(ANSWER) and len(text) <= 10 * 16


# ---- the judge ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("reply", "p"), [("Yes", 1.0), (" **Yes**.", 1.0), ("no", 0.0), ("No.", 0.0),
                                          ([{"type": "text", "text": "Yes"}], 1.0)])
def test_the_judge_reads_yes_and_no(server: tuple[str, type[_Server]], reply: Any, p: float) -> None:
    url, handler = server
    handler.reply = _completion(reply)
    assert backend(url).p_yes(ASK) == p


@pytest.mark.parametrize(("tokens", "p"), [(["Yes"], 1.0), (["\n", "Yes"], 1.0), (["**", "No", "**", "."], 0.0),
                                           (["\n\n", "**", "Yes", "**"], 1.0)])
def test_the_judge_reads_a_reply_that_starts_with_a_line_break_or_markup(server: tuple[str, type[_Server]],
                                                                        tokens: list[str], p: float) -> None:
    """Asked for one token, such a reply was '\\n' or '**', and every answer failed as "not Yes or No"."""
    url, handler = server
    handler.tokens = tokens
    assert backend(url).p_yes(ASK) == p


@pytest.mark.parametrize("reply", ["", None, "<think>"], ids=["empty", "null", "thinking"])
def test_a_judge_that_says_neither_yes_nor_no_stops_the_answer(server: tuple[str, type[_Server]],
                                                               reply: str | None) -> None:
    """It counted as No: every sentence unsupported, and the answer "The articles don't say", no word of why."""
    url, handler = server
    handler.reply = _completion(reply, finish="length")
    handler.logprobs = _logprobs(("<think>", {"<think>": .5, "Yes": .4}))  # a Yes among them does not make it one
    with pytest.raises(ModelError, match=rf"^the OpenAI-compatible server at {url} answered the claim check with"
                                         r" '.*' \(finish_reason 'length'\), not Yes or No, so the answer cannot"
                                         r" be checked: .*RAG_VERIFY=off"):
        backend(url).p_yes(ASK)


@pytest.mark.parametrize(("reply", "why"), [
    (_completion("Yes", choices=False), "sent a reply with no choices in it"),  # an IndexError traceback
    (b"this is no JSON", r"sent a reply that is no OpenAI chat completion \(Expecting value"),  # a traceback
], ids=["no-choices", "not-json"])
def test_an_unreadable_judge_reply_names_the_server(server: tuple[str, type[_Server]], reply: bytes,
                                                    why: str) -> None:
    url, handler = server
    handler.reply = reply
    with pytest.raises(ModelError, match=rf"^the OpenAI-compatible server at {url} {why}"):
        backend(url).p_yes(ASK)


def test_not_found_says_what_to_check(server: tuple[str, type[_Server]]) -> None:
    url, handler = server
    handler.status, handler.reply = 404, b"<html>404 Not Found</html>"
    with pytest.raises(ModelError, match=rf"^the OpenAI-compatible server at {url} answered HTTP 404: .*"
                                         r"\(check RAG_OPENAI_BASE_URL, .* and RAG_OPENAI_MODEL\)$"):
        backend(url).p_yes(ASK)


# ---- the judge's P(Yes) from token probabilities -------------------------------------------------
WARNING = "gives no token probabilities, so the claim judge can only read its Yes or No"


@pytest.mark.parametrize(("reply", "logprobs", "p"), [
    ("Yes", _logprobs(("Yes", {"Yes": .6, "No": .15, "yes": .05, "Maybe": .1})), .65 / .8),
    ("\n**No", _logprobs(("\n", {"\n": .9, "Yes": .1}), ("**", {"**": .9, "No": .1}),
                        ("No", {"No": .55, " no": .05, "NO": .1, " Yes": .3})), .3 / 1.0),
    ("Yes", _logprobs(("Yes", {"Sure": .6, "Maybe": .3})), 1.0),  # no yes or no among them: the text
], ids=["yes", "after-a-line-break-and-markup", "neither-among-the-alternatives"])
def test_the_judge_reads_p_yes_from_the_token_probabilities(server: tuple[str, type[_Server]], reply: str,
                                                            logprobs: dict[str, Any], p: float,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """It was 1.0 for any Yes, however hesitant: RAG_SUPPORT_THRESHOLD had no effect with a server backend."""
    url, handler = server
    handler.reply, handler.logprobs = _completion(reply), logprobs
    assert backend(url).p_yes(ASK) == pytest.approx(p)
    assert handler.requests[-1]["logprobs"] is True and handler.requests[-1]["top_logprobs"] == 10
    assert WARNING not in capsys.readouterr().err


@pytest.mark.parametrize("null", [True, False], ids=["null", "absent"])
def test_a_server_without_token_probabilities_is_read_from_the_text_with_one_warning(
        server: tuple[str, type[_Server]], null: bool, capsys: pytest.CaptureFixture[str]) -> None:
    url, handler = server
    handler.reply = _completion("No")
    if null:  # "logprobs": null in the reply, as some servers
        whole = json.loads(handler.reply)
        whole["choices"][0]["logprobs"] = None
        handler.reply = json.dumps(whole).encode()
    chat = backend(url)
    assert chat.p_yes(ASK) == 0.0 and chat.p_yes(ASK) == 0.0
    assert all(body.get("logprobs") for body in handler.requests)  # still asked: it may send them another time
    assert capsys.readouterr().err.count(f"warning: the OpenAI-compatible server at {url} {WARNING}") == 1


def test_a_server_that_refuses_logprobs_is_asked_again_without_them_and_not_again(
        server: tuple[str, type[_Server]], capsys: pytest.CaptureFixture[str]) -> None:
    url, handler = server
    handler.refuse_logprobs = True
    chat = backend(url)
    assert chat.p_yes(ASK) == 1.0
    assert ["logprobs" in body for body in handler.requests] == [True, False]
    assert chat.p_yes(ASK) == 1.0 and backend(url).p_yes(ASK) == 1.0
    assert ["logprobs" in body for body in handler.requests] == [True, False, False, False]
    assert capsys.readouterr().err.count(WARNING) == 1


def test_the_support_threshold_now_decides(server: tuple[str, type[_Server]]) -> None:
    """A claim the judge gives 0.6 is unsupported at RAG_SUPPORT_THRESHOLD 0.75 (it counted as 1.0)."""
    url, handler = server
    handler.logprobs = _logprobs(("Yes", {"Yes": .6, "No": .4}))
    judge = Judge(judge_prompt_p_yes(backend(url).p_yes), threshold=0.75, mode="model")
    judgement = judge("Kosovo agreed to take 50 deportees.", "Kosovo agreed to take 50 deportees.")
    assert not judgement.supported and judgement.score == pytest.approx(0.6)
    assert Judge(judge.p_yes, threshold=0.5, mode="model")("Kosovo took 50.", "Kosovo took 50.").supported


# ---- settings the HTTP client fails on -----------------------------------------------------------
@pytest.mark.parametrize(("url", "why"), [
    ("http://127.0.0.1:abc/v1", "has a port that is not a number from 1 to 65535"),  # an InvalidURL traceback
    ("http://127.0.0.1:99999/v1", "has a port that is not a number from 1 to 65535"),  # "Connection refused"
    ("http://127.0.0.1:8080/v1?key=1", "must not hold a query or a fragment"),  # sent to /v1/?key=1chat/completions
    ("http://127.0.0.1:8080/v1 ", "holds a space or a line break"),  # sent to /v1%20/chat/completions
])
def test_a_base_url_the_client_cannot_use_is_refused(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(f"invalid setting RAG_OPENAI_BASE_URL='{url}': {why}")):
        backend(url)


@pytest.mark.parametrize("key", ["sk-abc-123\n", "sk-abc\r\n123", "sk-abc-é", " sk-abc-123"])
def test_an_api_key_no_header_can_carry_is_refused_without_showing_it(key: str) -> None:
    """A newline failed as "cannot reach the server (Illegal header value b'Bearer sk-abc-123\\n')": the key printed."""
    with pytest.raises(ConfigError) as err:
        backend("http://127.0.0.1:9/v1", openai_api_key=key)
    assert str(err.value).startswith("invalid setting RAG_OPENAI_API_KEY=(hidden): holds a space, a line break")
    assert "abc" not in str(err.value)


def test_a_password_in_the_base_url_is_never_shown() -> None:
    url = f"http://ann:pw-secret-789@127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(ModelError) as err:
        backend(url).chat.invoke(ASK)
    assert str(err.value).startswith(f"cannot reach the OpenAI-compatible server at http://ann:***@127.0.0.1:"
                                     f"{url.rsplit(':', 1)[1]} (Connection refused)")
    assert "pw-secret-789" not in str(err.value)
