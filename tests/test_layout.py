"""Project layout contracts: transform imports, the README commands and the entry point."""

import ast
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TRANSFORM_FILES = sorted(p for p in (ROOT / "rlcore").rglob("*.py")
                         if not {"agents", "nets", "lm", "io"} & set(p.relative_to(ROOT).parts))
ALLOWED = {"jax", "numpy", "chex", "rlcore", "__future__", "typing", "dataclasses", "math",
           "functools"}


@pytest.mark.parametrize("path", TRANSFORM_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_transforms_import_only_jax_numpy_chex(path):
  tree = ast.parse(path.read_text())
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      names = [node.module or ""]
    else:
      continue
    for name in names:
      assert name.split(".")[0] in ALLOWED, f"{path.name} imports {name}"


def test_every_public_function_has_args_and_a_paper_reference():
  import inspect
  import rlcore
  utilities = {"linear_recurrence", "masked_whiten", "broadcast_to_tokens", "chain",
               "stateless", "potential_shaping", "masked_mean"}  # generic helpers: no paper of their own
  links = ("arxiv.org", "eecs.berkeley.edu", "incompleteideas.net", "joschu.net",
           "link.springer.com")
  for name in dir(rlcore):
    obj = getattr(rlcore, name)
    if (name.startswith("_") or not callable(obj) or inspect.isclass(obj)
        or inspect.ismodule(obj)):
      continue
    doc = obj.__doc__ or ""
    assert "Args:" in doc and "Returns:" in doc, f"{name} docstring lacks Args:/Returns:"
    if name not in utilities:
      assert any(link in doc for link in links), f"{name} docstring lacks a paper link"


def test_readme_opens_with_the_two_commands_ci_runs():
  readme = (ROOT / "README.md").read_text().splitlines()
  fence = [i for i, line in enumerate(readme) if line.startswith("```")]
  block = readme[fence[0] + 1:fence[1]]
  assert len(block) == 2, block
  assert "experiments/main.py" in block[0] and block[0].startswith("pip install")
  assert "pytest" in block[1] and "[test]" in block[1]
  ci = (ROOT / ".ci" / "run").read_text()
  assert "sed -n 2p" in ci and "README.md" in ci


def test_main_entry_point_runs_the_default_config(tmp_path):
  """`python experiments/main.py` (the README's first command) trains configs/ppo_cartpole.py."""
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, str(ROOT / "experiments" / "main.py"),
                        f"--workdir={tmp_path}", "--config.total_timesteps=4096",
                        "--config.host_eval_episodes=1"], env=env,
                       capture_output=True, text=True, timeout=300, check=True)
  assert "config " + str(ROOT / "configs" / "ppo_cartpole.py") in out.stdout
  assert "episode return" in out.stdout and (tmp_path / "summary.json").exists()
