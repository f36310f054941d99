"""The Colab notebooks (colab/*.ipynb) run top to bottom at a small budget, and are stored clean.

Each notebook's code cells are executed in order, in one namespace, in a fresh
Python subprocess (no jupyter/nbclient needed) with RLCORE_NOTEBOOK_BUDGET=small,
MPLBACKEND=Agg, JAX_PLATFORMS=cpu and XLA's optimisation level 0 (quicker to compile),
from the repository root. IPython-only lines
(`!shell`, `%magic`) are replaced by `pass`. A failure names the cell and shows the
tail of its traceback.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import quick_compile_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "colab", "*.ipynb")))
TIMEOUT_S = 300
TAIL_CHARS = 4000

# Runs the cells (a JSON list of [cell index, source]) like a kernel would: one shared
# namespace, the working directory on sys.path, a marker on stdout before each cell.
DRIVER = textwrap.dedent("""
    import json, os, sys, traceback
    sys.path.insert(0, os.getcwd())
    cells = json.loads(sys.stdin.read())
    namespace = {"__name__": "__main__"}
    for index, source in cells:
      print(f"=== notebook cell {index}", flush=True)
      try:
        exec(compile(source, f"<notebook cell {index}>", "exec"), namespace)
      except BaseException:
        traceback.print_exc()
        sys.stderr.write(f"\\nNOTEBOOK CELL FAILED: {index}\\n")
        sys.exit(1)
""")


def _load(path):
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _source(cell) -> str:
  src = cell.get("source", "")
  return "".join(src) if isinstance(src, list) else src


def strip_ipython(source: str) -> str:
  """Replaces `!cmd` and `%magic` lines by `pass` (same indentation)."""
  out = []
  for line in source.splitlines():
    stripped = line.lstrip()
    if stripped.startswith(("!", "%")):
      out.append(line[:len(line) - len(stripped)] + "pass  # IPython-only: " + stripped)
    else:
      out.append(line)
  return "\n".join(out) + "\n"


def code_cells(nb) -> list:
  """[cell index, python source] of every code cell, IPython-only lines stripped."""
  return [[i, strip_ipython(_source(c))] for i, c in enumerate(nb["cells"])
          if c["cell_type"] == "code"]


def _text(x) -> str:
  if x is None:
    return ""
  return x.decode("utf-8", "replace") if isinstance(x, bytes) else x


def _last_cell(stdout: str):
  marks = [l for l in stdout.splitlines() if l.startswith("=== notebook cell ")]
  return marks[-1].rsplit(" ", 1)[-1] if marks else "?"


def test_there_are_notebooks():
  assert NOTEBOOKS, "no colab/*.ipynb found"


def test_strip_ipython_keeps_blocks_valid():
  src = "import sys\nif 'google.colab' in sys.modules:\n  !pip install -e .\n  %cd /x\n"
  compile(strip_ipython(src), "<test>", "exec")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_is_clean_nbformat4(path):
  nb = _load(path)
  name = os.path.basename(path)
  assert nb.get("nbformat") == 4, f"{name}: nbformat {nb.get('nbformat')!r}, expected 4"
  assert isinstance(nb.get("metadata"), dict), f"{name}: no notebook metadata"
  assert isinstance(nb.get("cells"), list) and nb["cells"], f"{name}: no cells"
  for i, cell in enumerate(nb["cells"]):
    assert cell.get("cell_type") in ("code", "markdown", "raw"), f"{name} cell {i}: type"
    assert isinstance(cell.get("source"), (str, list)), f"{name} cell {i}: source"
    assert isinstance(cell.get("metadata"), dict), f"{name} cell {i}: metadata"
    if cell["cell_type"] == "code":
      assert cell.get("outputs") == [], (
          f"{name} cell {i}: stored outputs; clear them before committing")
      assert cell.get("execution_count") is None, (
          f"{name} cell {i}: execution_count {cell.get('execution_count')!r}; clear outputs")
  assert code_cells(nb), f"{name}: no code cells"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs_at_small_budget(path):
  name = os.path.basename(path)
  cells = code_cells(_load(path))
  for index, source in cells:
    try:
      compile(source, f"<{name} cell {index}>", "exec")
    except SyntaxError as e:
      pytest.fail(f"{name}: cell {index} is not valid Python: {e}")
  # At the small budget compiling is most of the time: XLA's optimisation level 0.
  env = quick_compile_env(dict(os.environ, RLCORE_NOTEBOOK_BUDGET="small", MPLBACKEND="Agg",
                               JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1"))
  try:
    proc = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(cells),
                          capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=TIMEOUT_S)
  except subprocess.TimeoutExpired as e:
    out, err = _text(e.stdout), _text(e.stderr)
    pytest.fail(f"{name}: timed out after {TIMEOUT_S} s in cell {_last_cell(out)}\n"
                f"--- stderr tail ---\n{err[-TAIL_CHARS:]}")
  if proc.returncode != 0:
    pytest.fail(f"{name}: cell {_last_cell(proc.stdout)} failed (exit {proc.returncode})\n"
                f"--- stdout tail ---\n{proc.stdout[-1000:]}\n"
                f"--- stderr tail ---\n{proc.stderr[-TAIL_CHARS:]}")
