"""The chat UI end to end with the REAL models (local Qwen GGUF + MiniLM), as a new user would use it.

Three questions only (each is a real LLM call or two on a slow CPU): an answer with citations, a follow-up
that needs the history, and a question the articles do not answer. Screenshots go to tests/artifacts/
(docs/screenshots/ with UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from rag.settings import PROJECT_ROOT
from tests.servers import RAG, rag_serve
from tests.test_ui_browser import ARGS, CHROMIUM, SCREENSHOTS, check_watched, watch

pytestmark = [pytest.mark.real, pytest.mark.browser]

ANSWER_TIMEOUT_S = 180.0  # the first answer also loads the 1.1 GB model; the machine is shared
PAGE_TIMEOUT_MS = 60_000
CITE = re.compile(r"\[\d+\]")

# One poll of the page: how far the latest turn has got.
_STATE_JS = """
() => {
  const bots = document.querySelectorAll('[data-testid="bot"]');
  const last = bots[bots.length - 1];
  const has = (sel) => !!(last && last.querySelector(sel));
  return {
    bots: bots.length,
    cards: document.querySelectorAll('#sources .source-card').length,
    streaming: has('.streaming'),
    pending: has('.pending'),
    done: has('.answer, .error') && !has('.streaming, .pending'),
    text: last ? last.innerText : '',
  };
}
"""


def _real_env(data_dir: Path) -> dict[str, str]:
    """The defaults a new user gets (RAG_LLM=local, RAG_EMBEDDINGS=minilm): only the data dir is set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    return {**env, "RAG_DATA_DIR": str(data_dir), "GRADIO_ANALYTICS_ENABLED": "False",
            "ANONYMIZED_TELEMETRY": "False"}


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("ui-real")
    env = _real_env(tmp / "data")
    done = subprocess.run([*RAG, "ingest", "seeds"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"rag ingest failed:\n{done.stdout}\n{done.stderr[-3000:]}"
    log = tmp / "serve.log"
    try:
        with rag_serve(env, log, timeout=300.0, stop_timeout=20) as served:
            yield served.url
    finally:
        print(f"\n--- rag serve log (tail) ---\n{log.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="module")
def real_page(real_server: str) -> Iterator[Page]:
    """One browser session for the whole conversation; fails on any JS dialog or off-host request."""
    with sync_playwright() as p:
        browser: Browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            dialogs, hosts = watch(page)
            page.goto(real_server, timeout=PAGE_TIMEOUT_MS)
            expect(page.locator("#question textarea")).to_be_visible(timeout=PAGE_TIMEOUT_MS)
            expect(page.locator("#status")).to_contain_text("5 articles", timeout=PAGE_TIMEOUT_MS)
            yield page
            context.close()
        finally:
            browser.close()
    check_watched(dialogs, hosts, real_server)


def _ask(page: Page, question: str, timeout_s: float = ANSWER_TIMEOUT_S) -> tuple[Any, dict[str, float]]:
    """Ask like a user (type, click Ask) and poll until the final message replaced the streamed one.

    Returns the last bot message and when (seconds after the click) the sources, the first and the last
    streamed token and the final (checked) answer showed up."""
    before = page.locator('[data-testid="bot"]').count()
    page.locator("#question textarea").fill(question)
    start = time.monotonic()
    page.locator("#send").click()
    seen: dict[str, float] = {}
    state: dict[str, Any] = {}
    streamed = ""
    while time.monotonic() - start < timeout_s:
        state = page.evaluate(_STATE_JS)
        now = round(time.monotonic() - start, 1)
        if state["bots"] > before:
            if state["cards"]:
                seen.setdefault("sources_s", now)
            if state["streaming"]:
                seen.setdefault("first_token_s", now)
                if state["text"] != streamed:
                    streamed, seen["last_token_s"] = state["text"], now
            if state["done"]:
                seen["answer_s"] = now
                break
        time.sleep(0.25)
    else:
        pytest.fail(f"no final answer to {question!r} in {timeout_s:.0f}s; last state: {state}")
    print(f"\n{question!r}: {seen}\n  streamed: {streamed!r}\n  final: {state['text']!r}")
    return page.locator('[data-testid="bot"]').last, seen


def _shot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.wait_for_timeout(500)  # let the chat finish scrolling to the newest message
    page.screenshot(path=str(path), full_page=True)
    return path


def _expect_cited_answer(page: Page, question: str, fact: str) -> None:
    """Ask; the answer is neither an error nor an abstention, states ``fact``, carries a citation marker,
    and source cards show."""
    bot, _ = _ask(page, question)
    expect(bot.locator(".error")).to_have_count(0)
    expect(bot.locator(".abstained")).to_have_count(0)
    expect(bot).to_contain_text(fact)
    expect(bot.locator(".cite").first).to_have_text(CITE)
    expect(page.locator("#sources .source-card").first).to_be_visible()


def test_real_model_answers_follows_up_and_abstains_in_the_browser(real_page: Page) -> None:
    page = real_page

    # 1. a question the articles answer: the number, a citation marker, and source cards to check it
    _expect_cited_answer(page, "How many deportees did Kosovo agree to take?", "50")
    expect(page.locator("#sources .source-card.cited").first).to_be_visible()

    # 2. a follow-up that only makes sense with the history ("it" = Kosovo)
    _expect_cited_answer(page, "When did it declare independence?", "2008")
    _shot(page, "chat-real.png")

    # 3. the articles do not say: the distinct abstained style, not a made-up number
    bot, _ = _ask(page, "What is the population of Kosovo?")
    expect(bot.locator(".error")).to_have_count(0)
    expect(bot.locator(".abstained")).to_be_visible()
    expect(bot.locator(".abstained .badge")).to_have_text("no answer")
    expect(bot).to_contain_text("The articles don't say")
    expect(page.locator("#sources")).to_contain_text("None of these passages answers the question.")
    _shot(page, "abstain-real.png")

