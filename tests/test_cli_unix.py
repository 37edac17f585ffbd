"""The ``rag`` command as a Unix tool: closed or full output streams, help output, exit codes.

Each case runs ``python -m rag.cli`` in a fresh process with the offline fakes. Standard streams are
closed in the child (``>&-``, ``2>&-``) or pointed at a pipe whose reader is gone or at /dev/full.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.settings import PROJECT_ROOT
from tests.servers import run_rag as run

SEEDS = PROJECT_ROOT / "seeds"
DEPORTEES = "How many deportees did Kosovo agree to take?"
FULL = Path("/dev/full")


def closing(fd: int) -> Callable[[], None]:
    """A preexec_fn that starts the child with ``fd`` closed, as the shell's ``>&-`` does."""
    return lambda: os.close(fd)


# ---- closed standard streams ----------------------------------------------------------------
@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_ask_with_stdout_closed_is_no_traceback(seeded: Path, json_flag: list[str]) -> None:
    # before: AttributeError: 'NoneType' object has no attribute 'encoding' (exit 1)
    proc = run(["ask", DEPORTEES, *json_flag], seeded, preexec=closing(1), stdout=None)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr


def test_error_with_stderr_closed_does_not_go_to_stdout(seeded: Path) -> None:
    # before: `rag ask --json "" 2>&-` printed "error: question is empty" on stdout, where the JSON goes
    proc = run(["ask", "--json", ""], seeded, preexec=closing(2), stderr=None)
    assert proc.returncode == 2
    assert proc.stdout == ""


def test_ingest_with_stdout_closed_still_ingests(tmp_path: Path) -> None:
    proc = run(["ingest", str(SEEDS)], tmp_path / "data", preexec=closing(1), stdout=None)
    assert proc.returncode == 0, proc.stderr
    again = run(["ingest", str(SEEDS)], tmp_path / "data")
    assert again.returncode == 0 and again.stdout.startswith("added 0 / updated 0 / unchanged 5 /"), again.stdout


# ---- output that cannot be written ----------------------------------------------------------
@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full")
@pytest.mark.parametrize("args", [["--help"], ["ask", "--help"], ["eval", "--help"]])
def test_help_on_a_full_disk_is_an_error(tmp_path: Path, args: list[str]) -> None:
    # before: exit 0 and nothing said (argparse drops the write error), the help text lost
    with FULL.open("w") as full:
        proc = run(args, tmp_path / "data", stdout=full.fileno())
    assert proc.returncode == 1
    assert proc.stderr == "error: No space left on device\n", proc.stderr


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full")
def test_answer_on_a_full_disk_is_one_error_line(seeded: Path) -> None:
    with FULL.open("w") as full:
        proc = run(["ask", DEPORTEES], seeded, stdout=full.fileno())
    assert proc.returncode == 1
    assert proc.stderr == "error: No space left on device\n", proc.stderr


@pytest.mark.parametrize("args", [["--help"], ["ask", "--help"], ["ask", DEPORTEES], ["ask", "--json", DEPORTEES]])
def test_reader_gone_is_quiet_exit_141(seeded: Path, args: list[str]) -> None:
    """`rag … | head -c 0`: the pipe's reader has gone before anything is written."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = run(args, seeded, stdout=write)
    finally:
        os.close(write)
    assert proc.returncode == 141, proc.stderr  # --help: 0 before, its text lost without a word
    assert proc.stderr == ""


# ---- exit codes of argument errors ------------------------------------------------------------
def test_unknown_option_names_the_subcommands_help(tmp_path: Path) -> None:
    # before: error: unrecognized arguments: --bogus (see: rag --help)
    proc = run(["ask", "--bogus", DEPORTEES], tmp_path / "data")
    assert proc.returncode == 2
    assert proc.stderr == "error: unrecognized arguments: --bogus (see: rag ask --help)\n"
