"""The command-line front of `rlcore.experiment`.

    python experiments/main.py                                   # configs/ppo_cartpole.py
    python experiments/main.py --config=configs/ppo_brax.py:ant --workdir=runs/ant
    python experiments/main.py --config=configs/ppo_cartpole.py --config.seed=3
    python experiments/main.py --config=configs/pbrs_cartpole.py --workdir=runs/pbrs
    python experiments/main.py --config.num_seeds=8 --cpu_devices=2   # seeds on 2 cores

Training runs in chunks; between chunks `<workdir>/metrics.jsonl` grows, an orbax
checkpoint is saved and the progress bar moves. Rerun a killed command with the same
`--workdir` to resume. The loop itself is `rlcore.experiment.run`.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "configs")

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(CONFIG_DIR, "ppo_cartpole.py"),
    "Path to a config file, e.g. configs/ppo_cartpole.py (optionally with ':arg').",
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory for metrics, checkpoints and plots "
    "(default: runs/<config name>). Reuse it to resume.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.")
_CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", 0, "Expose this many CPU devices (e.g. one per core) before JAX starts, "
    "so the runner shards the vmapped runs (seeds x sweep points) over them; 0 leaves "
    "JAX's default (one CPU device). The number of runs should be a multiple of it.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Call jax.distributed.initialize() first (multi-host runs; "
    "coordinator and process ids come from the cluster environment).")


def _report(summaries) -> None:
  for s in summaries:
    for name, point in s["points"].items():
      last = point.get("last", {})
      shown = {k: last[k] for k in ("episode_return", "accuracy", "mean_length",
                                    "eval_accuracy", "eval_length") if k in last}
      shown.update(point.get("evaluation", {}))
      line = f"{s['group']}/{name}: env steps {point.get('env_steps')}, " + ", ".join(
          f"{k.replace('_', ' ')} {v:.3f}" for k, v in shown.items()
          if not k.endswith("_per_seed"))
      print(line)
    sps, compile_s = s["steps_per_second"], s.get("compile_seconds")
    if sps is None:
      print(f"{s['group']}: finished earlier")
    else:
      print(f"{s['group']}: {sps:,.1f} steps/s after compile"
            + (f" ({compile_s:.1f} s compile)" if compile_s is not None else ""))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  logging.set_verbosity(logging.WARNING)   # orbax logs every save at INFO
  import jax  # pylint: disable=import-outside-toplevel
  if _CPU_DEVICES.value < 0:
    raise app.UsageError(f"--cpu_devices must be >= 0, got {_CPU_DEVICES.value}.")
  if _CPU_DEVICES.value:
    jax.config.update("jax_num_cpu_devices", _CPU_DEVICES.value)
  if _DISTRIBUTED.value:
    jax.distributed.initialize()
  from rlcore import experiment  # pylint: disable=import-outside-toplevel
  config_path = flags.FLAGS["config"].config_filename
  workdir = _WORKDIR.value or os.path.join(
      "runs", os.path.splitext(os.path.basename(config_path.split(":")[0]))[0])
  print(f"jax {jax.__version__} on {jax.device_count()} {jax.default_backend()} device(s); "
        f"config {config_path}; workdir {workdir}")
  summaries = experiment.run(_CONFIG.value, workdir, progress=_PROGRESS.value)
  _report(summaries)
  print(f"results in {workdir}/ (metrics.jsonl, summary.json, curve.png)")
  return 0


if __name__ == "__main__":
  sys.exit(app.run(main))
