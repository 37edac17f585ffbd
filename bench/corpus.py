"""Generated test data: articles recombined from real sentences, and a synthetic chunk corpus.

The sentence pool comes from the project's seeds/ (their cleaned text) and, when present, the RGB
passages in ``../shared/bench/rgb_en/docs.jsonl``. That file is CC BY-NC-SA: it is read from
../shared and the generated articles go to a temporary work folder, never into the project.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rag.chunking import chunk_id, sentence_spans
from rag.loaders import content_hash, load_file
from rag.models import Article, Chunk
from rag.settings import PROJECT_ROOT

SEEDS = PROJECT_ROOT / "seeds"
RGB_DOCS = PROJECT_ROOT.parent / "shared" / "bench" / "rgb_en" / "docs.jsonl"
RGB_QUESTIONS = PROJECT_ROOT.parent / "shared" / "bench" / "rgb_en" / "questions.jsonl"
OUTLETS = ["Daily Ledger", "Metro Post", "Coastal Herald", "Evening Standard-Times", "Valley Courier", "Wire Desk"]
FIRST = ["Anna", "Marek", "Lina", "Tomas", "Sara", "Jonas", "Maya", "Ivan"]
LAST = ["Keller", "Novak", "Berg", "Moreau", "Silva", "Lund", "Petrov", "Hale"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def sentence_pool() -> list[str]:
    """Whole sentences (40-320 characters) from the seeds' article text and the RGB passages."""
    texts: list[str] = []
    for path in sorted(SEEDS.glob("*.txt")):
        texts.extend(a.clean_text for a in load_file(path, 5_000_000))
    if RGB_DOCS.is_file():
        for line in RGB_DOCS.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(str(json.loads(line).get("text", "")))
    pool: list[str] = []
    for text in texts:
        text = re.sub(r"[\s,;:]*(\.\.\.|…)", ".", text)
        for a, b in sentence_spans(text):
            sent = " ".join(text[a:b].split())
            if 40 <= len(sent) <= 320 and sent[0].isupper() and sent[-1] in ".!?\"”":
                pool.append(sent)
    return list(dict.fromkeys(pool))


def bench_questions() -> list[str]:
    """Questions for retrieval timing: the project's eval cases, then RGB questions."""
    out: list[str] = []
    for path in (PROJECT_ROOT / "eval" / "cases.jsonl", RGB_QUESTIONS):
        if path.is_file():
            out.extend(str(json.loads(line)["question"]) for line in path.read_text().splitlines() if line.strip())
    return list(dict.fromkeys(out))


def write_articles(folder: Path, n: int, pool: list[str], seed: int = 7,
                   sentences: tuple[int, int] = (3, 7)) -> int:
    """Write ``n`` .txt articles (title, byline, dateline, 1-3 paragraphs, sometimes a copyright line)
    into ``folder``; return the total number of characters written."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for i in range(n):
        body = rng.sample(pool, rng.randint(*sentences))
        cut = sorted(rng.sample(range(1, len(body)), min(2, len(body) - 1)))
        paras = [" ".join(body[a:b]) for a, b in zip([0, *cut], [*cut, len(body)], strict=True)]
        words = re.findall(r"[A-Za-z]+", body[0])[:8]
        title = " ".join(w.capitalize() for w in words) + f" ({i})"
        outlet = rng.choice(OUTLETS)
        head = [title, f"By {rng.choice(FIRST)} {rng.choice(LAST)}",
                f"{rng.choice(MONTHS)} {rng.randint(1, 28)}, {rng.randint(2019, 2025)}"]
        tail = [f"© {rng.randint(2019, 2025)} {outlet}. All rights reserved."] if rng.random() < 0.3 else []
        text = "\n\n".join([*head, *paras, *tail]) + "\n"
        (folder / f"gen_{i:05d}.txt").write_text(text, encoding="utf-8")
        total += len(text)
    return total


def _vocabulary(pool: list[str]) -> tuple[list[str], np.ndarray]:
    counts = Counter(w.lower() for s in pool for w in re.findall(r"[A-Za-z][A-Za-z'-]+", s))
    words = [w for w, _ in counts.most_common()]
    freq = np.array([counts[w] for w in words], dtype=np.float64)
    return words, freq / freq.sum()


def synthetic_batches(n_chunks: int, pool: list[str], *, start: int = 0, chunks_per_article: int = 10,
                      batch_articles: int = 500, seed: int = 11,
                      ) -> Iterator[tuple[list[tuple[Article, str, list[Chunk]]], list[list[float]]]]:
    """(items, embeddings) batches for ``Store.write``: articles of ``chunks_per_article`` chunks whose
    texts are ~70 words drawn by the pool's word frequencies, with random unit 384-d vectors (no
    embedding model: a vector index does the same work for any unit vectors)."""
    words, probs = _vocabulary(pool)
    rng = np.random.default_rng(seed + start)
    n_articles = n_chunks // chunks_per_article
    first_article = start // chunks_per_article
    for b0 in range(0, n_articles, batch_articles):
        items: list[tuple[Article, str, list[Chunk]]] = []
        for k in range(first_article + b0, first_article + min(b0 + batch_articles, n_articles)):
            aid = f"syn_{k:06d}"
            texts = [" ".join(words[j] for j in rng.choice(len(words), size=int(rng.integers(50, 90)), p=probs))
                     .capitalize() + "." for _ in range(chunks_per_article)]
            text = "\n\n".join(texts)
            chunks, pos = [], 0
            for idx, t in enumerate(texts):
                chunks.append(Chunk(id=chunk_id(aid, pos, t), article_id=aid, index=idx, start=pos,
                                    end=pos + len(t), text=t, outlet="Synthetic Wire", date="2024-01-01"))
                pos += len(t) + 2
            art = Article(id=aid, text=text, spans=((0, len(text)),), outlet="Synthetic Wire", date="2024-01-01",
                          source=f"synthetic:{aid}", content_hash=content_hash(text))
            items.append((art, "synthetic", chunks))
        vecs = rng.standard_normal((sum(len(cs) for _, _, cs in items), 384)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        yield items, vecs.tolist()
