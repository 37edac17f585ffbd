"""Yes/no questions the model will not answer or answers with a bare "Yes [2]": the passage sentence on
them, found by the question's topic words or by meaning, to quote."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from rag.conflicts import statements, stems, topic_of
from rag.models import Context

_POLAR = re.compile(r"^\W*(is|are|was|were|do|does|did|has|have|had|will|would|can|could|should|may|might)\b", re.I)
_ALTERNATIVES = re.compile(r"\bor\b(?!\s+not\b)", re.I)
YES_NO_COSINE = 0.78  # a sentence this close in meaning to a yes/no question speaks to it (MiniLM cosine)
# the judge's P(yes) for 'The answer to "<question>" is: Yes' at which a passage speaks to a yes/no question:
# on the 28 questions of eval/cases_yesno*.jsonl, 0.731 and more for those answered yes, 0.708 at most for
# those the passages do not answer
YES_NO_JUDGED = 0.72
Similarity = Callable[[str, list[str]], Sequence[float]]  # (text, others) -> the cosine of text to each
SaysYes = Callable[[str, Context], float | None]  # (question, passage) -> the judge's P(it answers yes)


def opens_with_verb(question: str) -> bool:
    """"Did ...?", "Is 50 a maximum or a minimum?": a question its answer may say back as it stands."""
    return bool(_POLAR.match(question))


def asks_yes_no(question: str) -> bool:
    """A question a yes or no answers: it opens with a verb ("Did ...?", "Is ...?") and offers no alternatives
    ("Is 50 a maximum or a minimum?" asks which; "... or not?" is still yes/no)."""
    return opens_with_verb(question) and not _ALTERNATIVES.search(question)


def yes_no_sentence(question: str, contexts: Sequence[Context], similarity: Similarity | None = None,
                    says_yes: SaysYes | None = None) -> tuple[Context, str] | None:
    """For a yes/no question the model will not answer ("Does Serbia recognize Kosovo as independent?"):
    the one sentence of the passages holding more than three quarters of the question's topic words
    ("... other nations do not recognize its independence, including Serbia ..."), to quote instead of a
    yes or no; the first such sentence of the best-ranked passage when several hold as many. Failing that,
    the sentence closest in meaning by ``similarity`` (question, sentences) -> cosines, if at least
    YES_NO_COSINE ("Can Kosovo choose ...?": "... Kosovo will have the opportunity to select ..."; a question
    of fewer than three topic words has only this way). Failing that too, the passage ``says_yes`` scores
    highest, at YES_NO_JUDGED or more, with its sentence most about the question ("Did Kosovo break away from
    Serbia before 2010?"; quoted, not read as a yes: a "no" passage scores as high). None when no sentence is
    that close (a question on what the passages never mention stays unanswered)."""
    if not asks_yes_no(question):
        return None
    topic = topic_of(question)
    sentences = [(c, s) for c in contexts for s in statements(c.text)]
    if len(topic) >= 3 and (best := _most_about(topic, sentences)) and best[0] > 0.75 * len(topic):
        return best[1], best[2]
    if similarity is not None and sentences:
        cosines = similarity(question, [s for _, s in sentences])
        closest = max(range(len(sentences)), key=lambda i: cosines[i])  # the first of equals
        if cosines[closest] >= YES_NO_COSINE:
            return sentences[closest]
    if says_yes is None or not contexts:
        return None
    scores = [says_yes(question, c) or 0.0 for c in contexts]
    top = max(range(len(contexts)), key=lambda i: scores[i])  # the first of equals
    sentence = yes_no_evidence(question, contexts[top]) if scores[top] >= YES_NO_JUDGED else None
    return (contexts[top], sentence) if sentence else None


def yes_no_evidence(question: str, ctx: Context) -> str | None:
    """For a bare "Yes [2]" or "No [2]" to a yes/no question: the sentence of passage 2 holding most of the
    question's topic words, to show what the yes or no rests on; None when no sentence holds any."""
    if not asks_yes_no(question):
        return None
    best = _most_about(topic_of(question), [(ctx, s) for s in statements(ctx.text)])
    return best[2] if best and best[0] else None


def _most_about(topic: set[str], sentences: Sequence[tuple[Context, str]]) -> tuple[int, Context, str] | None:
    """The sentence sharing most ``topic`` words, with their count; the first of the best-ranked passage
    among equals."""
    scored = [(len(topic & stems(s)), -c.n, -i, c, s) for i, (c, s) in enumerate(sentences)]
    best = max(scored, key=lambda x: x[:3], default=None)
    return (best[0], best[3], best[4]) if best else None
