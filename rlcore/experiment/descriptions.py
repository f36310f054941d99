"""Every config key with its value and meaning, read from the comments next to the defaults.

The meaning of a key is the comment on the line that sets its default, in the family's
`default_config()` (`c.lr = 2.5e-4  # Adam learning rate`), in the `default_config()`
functions it builds on, or in the runner's `RUNNER_DEFAULTS`; comment-only lines right
below it continue it. Keeping the meaning on the default's own line means they change
together; a test checks that every key of every built-in family has one.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap

from rlcore.agents import get_family
from rlcore.experiment import configs
from rlcore.experiment.configs import flat_keys

_ASSIGN = re.compile(r"^\s*c\.([\w.]+)\s*=.*?#\s*(.+?)\s*$")
_RUNNER = re.compile(r"^\s*(\w+)=.*?#\s*(.+?)\s*$")
_CONTINUED = re.compile(r"^\s*#\s*(.+?)\s*$")


def _comments(source: str, pattern) -> dict:
  meanings, last = {}, None
  for line in source.splitlines():
    m = pattern.match(line)
    if m:
      last = m.group(1)
      meanings[last] = m.group(2)
      continue
    c = _CONTINUED.match(line)
    if c and last is not None and line.startswith(" " * 20):   # an indented continuation
      meanings[last] += " " + c.group(1)
    else:
      last = None
  return meanings


def _default_config_functions(fn):
  """`fn` and the `<module>.default_config` functions it calls, recursively."""
  found = [fn]
  tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
  for node in ast.walk(tree):
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr == "default_config" and isinstance(node.func.value, ast.Name)):
      module = fn.__globals__.get(node.func.value.id)
      callee = getattr(module, "default_config", None)
      if callee is not None and callee is not fn:
        found += _default_config_functions(callee)
  return found


def meanings(agent: str) -> dict:
  """{dotted key: meaning} for the agent family's keys and the runner's."""
  out = _comments(inspect.getsource(configs), _RUNNER)
  out = {k: v for k, v in out.items() if k in configs.RUNNER_DEFAULTS}
  for fn in reversed(_default_config_functions(get_family(agent).default_config)):
    out.update(_comments(inspect.getsource(fn), _ASSIGN))
  return out


def describe(config) -> str:
  """One line per key of `config`: `key = value  # meaning`."""
  known = meanings(config.get("agent", "ppo"))
  lines = []
  for key in sorted(flat_keys(config)):
    node = config
    for part in key.split("."):
      node = node[part]
    value = dict(node) if key == "sweep" else node
    lines.append(f"{key} = {value!r}" + (f"  # {known[key]}" if key in known else ""))
  return "\n".join(lines)
