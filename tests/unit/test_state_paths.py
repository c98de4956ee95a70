"""Root's own files in the state dir are never written through a symlink someone planted."""

from __future__ import annotations

from pathlib import Path

import pytest

from ds01ctl.apply.journal import FILE_NAME, Journal
from ds01ctl.errors import Ds01Error
from ds01ctl.fsutil import write_atomically


def test_journal_planted_as_a_symlink_is_refused_and_its_target_untouched(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "shadow"
    victim.write_text("root:secret\n")
    state = tmp_path / "state"
    state.mkdir()
    (state / FILE_NAME).symlink_to(victim)
    with pytest.raises(Ds01Error) as caught:
        Journal(state, "apply-1")
    assert str(caught.value).startswith(
        f"cannot open the journal {state / FILE_NAME}: it is a symbolic link"
    )
    assert victim.read_text() == "root:secret\n"


def test_atomic_write_replaces_a_symlink_instead_of_writing_its_target(tmp_path: Path) -> None:
    victim = tmp_path / "passwd"
    victim.write_text("root:x:0:0\n")
    ledger = tmp_path / "ledger.json"
    ledger.symlink_to(victim)
    write_atomically(ledger, "{}\n", private=True)
    assert victim.read_text() == "root:x:0:0\n"
    assert not ledger.is_symlink() and ledger.read_text() == "{}\n"
