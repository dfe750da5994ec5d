"""The one writer: a write killed midway, or one that fails, leaves the old file or nothing, never a torn one."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from search.files import atomic_write, write_json

ROOT = Path(__file__).resolve().parents[1]
WRITER = textwrap.dedent("""
    import sys, time
    from search.files import atomic_write
    with atomic_write(sys.argv[1]) as f:
        f.write(b"new " * 100_000)
        f.flush()
        print("half written", flush=True)
        time.sleep(60)
        f.write(b"the rest")
""")


@pytest.mark.parametrize("before", [b"the old file", None])
def test_a_write_killed_midway_leaves_the_old_file_or_nothing(tmp_path, before):
    target = tmp_path / "out" / "table.bin"
    if before is not None:
        target.parent.mkdir()
        target.write_bytes(before)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "half written"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    if before is None:
        assert not target.exists()
    else:
        assert target.read_bytes() == before
    assert all(p.name.startswith(".table.bin.") for p in target.parent.iterdir() if p != target)  # only its tmp


def test_a_failing_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "x.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic_write(target, "w") as f:
        f.write('{"a": 2')
        raise RuntimeError("half-way")
    assert target.read_text().strip() == '{\n "a": 1\n}'
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
