"""The files of ``rag eval`` and ``rag eval-judge``: a baseline, a run folder's results.jsonl, the reports,
and what is written when."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval import runner
from rag.chain import Chain
from rag.errors import InputError
from tests.test_eval import CASES, SUMMARY, args, write


@pytest.fixture
def case_file(tmp_path: Path) -> Path:
    return write(tmp_path / "cases.jsonl", [json.dumps(c) for c in CASES])


# ---- --baseline ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "byte"), [(b"\xff\xfe{\x00}\x00", 0), ('{"k": "\u00e9"}'.encode("utf-16"), 0),
                                            ('{"answer_correct": "caf\u00e9"}'.encode("latin-1"), 23)],
                         ids=["bytes", "utf-16", "latin-1"])
def test_a_baseline_that_is_not_utf8_is_one_line(chain: Chain, case_file: Path, tmp_path: Path, data: bytes,
                                                 byte: int) -> None:
    """It was a UnicodeDecodeError traceback."""
    path = tmp_path / "base.json"
    path.write_bytes(data)
    with pytest.raises(InputError) as err:
        runner.main(args(case_file, tmp_path / "run", baseline=path), chain=chain)
    assert str(err.value) == f"--baseline: {path} is not UTF-8 text (byte {byte})"
    assert not (tmp_path / "run").exists()


def test_a_baseline_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "base.json"
    path.write_text(json.dumps(SUMMARY), encoding="utf-8-sig")
    assert runner.load_baseline(path) == SUMMARY
