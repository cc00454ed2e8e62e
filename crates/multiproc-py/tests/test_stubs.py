"""The type stubs (`*.pyi`, `py.typed`) say what the package has at run time (mypy's stubtest),
and a program typed against them passes `mypy --strict`."""
import os
import subprocess
import sys

import mypy  # noqa: F401  (installed by the test command: its absence fails, never skips)

HERE = os.path.dirname(__file__)

TYPED = """
from multiproc import DictProxy, Manager
with Manager() as m:
    d: DictProxy = m.dict(name="x")
    d["a"] = 1
    total: int | float = d.incr("a")
    with m.Lock() as lock:
        held: bool = lock.locked()
    change = d.watch().next(timeout=0.1)
    if change is not None:
        op: str = change.op
"""


def test_the_stubs_match_the_package():
    done = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "multiproc", "--allowlist",
         os.path.join(HERE, "stubtest-allowlist.txt")],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_typed_program_passes_strict_mypy(tmp_path):
    program = tmp_path / "typed.py"
    program.write_text(TYPED)
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                           str(program)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
