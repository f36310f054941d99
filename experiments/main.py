"""Experiment runner: `python experiments/main.py --config=configs/<name>.py`.

The runner (training in jitted chunks, metrics, checkpoints, sweeps) arrives with the
control-agents issue. Until then this entry point runs, validates a config if one is
given, and says that there is nothing to train yet.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Path to a config file, e.g. configs/ppo_cartpole.py (optionally "
    "with ':arg').", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for metrics and checkpoints.")

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def available_configs() -> list[str]:
  if not os.path.isdir(CONFIG_DIR):
    return []
  return sorted(f for f in os.listdir(CONFIG_DIR) if f.endswith(".py") and not f.startswith("_"))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  import jax  # pylint: disable=import-outside-toplevel
  import rlcore  # pylint: disable=import-outside-toplevel
  print(f"rlcore {rlcore.__version__}, jax {jax.__version__}, backend {jax.default_backend()}")
  configs = available_configs()
  if _CONFIG.value is None:
    print("no experiments yet: the training runner lands with the control-agents issue.")
    print("configs available: " + (", ".join(configs) if configs else "none"))
    return 0
  print("no experiments yet: config parsed, but there is no runner to execute it.")
  print(_CONFIG.value)
  return 0


if __name__ == "__main__":
  sys.exit(app.run(main))
