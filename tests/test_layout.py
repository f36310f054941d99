"""Project layout contracts: transform imports, one installed name, the README commands
and the entry point."""

import ast
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TRANSFORM_FILES = sorted(p for p in (ROOT / "rlcore").rglob("*.py")
                         if not {"agents", "nets", "lm", "io", "experiment"}
                         & set(p.relative_to(ROOT).parts))
ALLOWED = {"jax", "numpy", "rlcore", "__future__", "typing", "dataclasses", "math",
           "functools"}
# What the `agents` and `test` extras bring: none of it may be needed by `import rlcore`.
EXTRAS = ("flax", "optax", "orbax", "gymnasium", "brax", "ml_collections", "absl",
          "matplotlib", "tqdm", "safetensors", "tokenizers", "chex", "torch", "transformers",
          "rlax", "tensorboardX", "jinja2")


def _imported(nodes):
  """The modules that the import statements among `nodes` name (relative ones as "")."""
  for node in nodes:
    if isinstance(node, ast.Import):
      yield from (a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom):
      yield "" if node.level else node.module


@pytest.mark.parametrize("path", TRANSFORM_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_transforms_import_only_jax_and_numpy(path):
  for name in _imported(ast.walk(ast.parse(path.read_text()))):
    assert name.split(".")[0] in ALLOWED, f"{path.name} imports {name}"


def test_import_rlcore_and_a_transform_work_without_the_agent_stack():
  """The base install (jax, numpy) is enough for `import rlcore`: with every package of
  the extras blocked from import, a transform runs and none of them got loaded."""
  script = textwrap.dedent(f"""
      import importlib.abc, sys
      BLOCKED = {EXTRAS!r}

      class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
          if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked for this test: {{name}}")

      sys.meta_path.insert(0, Block())
      import jax.numpy as jnp
      import rlcore
      T, B = 3, 2
      adv = rlcore.gae(jnp.ones((T, B)), jnp.zeros((T + 1, B)), jnp.zeros((T, B), bool),
                       jnp.zeros((T, B), bool), 0.9, 1.0)
      loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set(BLOCKED))
      print(float(adv[0, 0]), loaded)
  """)
  out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert out.returncode == 0, out.stderr[-3000:]
  value, loaded = out.stdout.strip().split(" ", 1)
  assert abs(float(value) - (1 + 0.9 + 0.81)) < 1e-5 and loaded == "[]"


def test_a_wheel_installs_one_top_level_name(tmp_path):
  """`pip install .` adds `rlcore` and nothing else: envs/ becomes rlcore.envs, and
  configs/, experiments/, tests/ are not installed. The base requirements are the
  transforms' (jax, numpy); the rest come with the `agents` extra."""
  src = tmp_path / "src"
  src.mkdir()
  for name in ("setup.cfg", "pyproject.toml", "README.md"):
    shutil.copy(ROOT / name, src / name)
  for name in ("rlcore", "envs", "configs", "experiments"):
    shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
  # The test environment's setuptools when there is one (no download), else pip's
  # isolated build environment.
  flags = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
  out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", *flags,
                        "-w", str(tmp_path / "dist"), str(src)],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
  assert out.returncode == 0, out.stderr[-3000:]
  (wheel,) = (tmp_path / "dist").glob("rlcore-*.whl")
  with zipfile.ZipFile(wheel) as zf:
    names = zf.namelist()
    metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
  top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
  assert top == {"rlcore"}, top
  for module in ("rlcore/envs/__init__.py", "rlcore/envs/core.py", "rlcore/envs/text/prm.py",
                 "rlcore/experiment/runner.py", "rlcore/agents/grpo/agent.py"):
    assert module in names, module
  required = [line.split(":", 1)[1].strip() for line in metadata.splitlines()
              if line.startswith("Requires-Dist:")]
  base = sorted(r.split(">")[0].split("=")[0].strip() for r in required if "extra ==" not in r)
  assert base == ["jax", "numpy"], required
  assert any("flax" in r and 'extra == "agents"' in r for r in required), required


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
  assert "[agents]" in block[0]        # what the main job needs: the agents extra
  assert "pytest" in block[1] and "agents,test]" in block[1]
  ci = (ROOT / ".ci" / "run").read_text()
  assert "sed -n 2p" in ci and "README.md" in ci


# Import name of each distribution the install asks for, where the two differ.
IMPORT_NAME = {"orbax-checkpoint": "orbax", "ml-collections": "ml_collections",
               "absl-py": "absl"}


def test_every_module_level_import_comes_with_the_agents_install():
  """`pip install -e '.[agents]'` (the README's first command) brings every third-party
  package that the installed code and the entry point import at module level; imports
  inside functions (optional writers, the toy tokenizer's torch) may need more."""
  import configparser  # pylint: disable=import-outside-toplevel
  cfg = configparser.ConfigParser()
  cfg.read(ROOT / "setup.cfg")

  def names(field):
    reqs = [line.strip() for line in field.splitlines() if line.strip()]
    dists = [r.split(";")[0].split("<")[0].split(">")[0].split("=")[0].strip() for r in reqs]
    return {IMPORT_NAME.get(d, d.replace("-", "_")) for d in dists}

  installed = (names(cfg["options"]["install_requires"])
               | names(cfg["options.extras_require"]["agents"]))
  missing = {}
  for folder in ("rlcore", "envs", "experiments", "configs"):
    for path in (ROOT / folder).rglob("*.py"):
      for mod in _imported(ast.parse(path.read_text()).body):
        top = mod.split(".")[0]
        if top not in sys.stdlib_module_names | {"rlcore", ""} | installed:
          missing.setdefault(top, []).append(str(path.relative_to(ROOT)))
  assert not missing, f"imported at module level but not in install_requires or agents: {missing}"
