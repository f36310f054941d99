"""The command-line front of `rlcore.experiment`.

    python experiments/main.py --help                            # flags and configs
    python experiments/main.py --config=configs/ppo_cartpole.py --show_config   # every key
    python experiments/main.py                                   # configs/ppo_cartpole.py
    python experiments/main.py --config=configs/ppo_brax.py:ant --workdir=runs/ant
    python experiments/main.py --config=configs/ppo_cartpole.py --config.seed=3
    python experiments/main.py --config=configs/pbrs_cartpole.py --workdir=runs/pbrs
    python experiments/main.py --config.num_seeds=8 --cpu_devices=2   # seeds on 2 cores
    python experiments/main.py --config=configs/grpo_dataset.py --config.model.hf_path=CKPT \
        --config.dataset.path=DATA.jsonl --export_hf=runs/mine_hf   # your model and data

Training runs in chunks; between chunks `<workdir>/metrics.jsonl` grows, an orbax
checkpoint is saved and the progress bar moves. Rerun a killed command with the same
`--workdir` to resume. The default workdir is `runs/<config>`, plus the `--config.`
overrides, so commands with different overrides keep their results apart. The loop
itself is `rlcore.experiment.run`.
"""

from __future__ import annotations

import ast
import difflib
import glob
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "configs")

_CONFIG = None   # defined by define_config_flag(), after preflight() checked the argv
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory for metrics, checkpoints and plots (default: "
    "runs/<config name>/<the --config. overrides>). Reuse it to resume.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.")
_CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", 0, "Expose this many CPU devices (e.g. one per core) before JAX starts, "
    "so the runner shards the vmapped runs (seeds x sweep points) over them; 0 leaves "
    "JAX's default (one CPU device). The number of runs should be a multiple of it.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Call jax.distributed.initialize() first (multi-host runs; "
    "coordinator and process ids come from the cluster environment).")
_EXPORT_HF = flags.DEFINE_string(
    "export_hf", "", "After training a GRPO config with task='dataset', write each run's "
    "policy into this folder as a Hugging Face checkpoint (safetensors, config and "
    "tokenizer) that transformers loads.")
_SHOW_CONFIG = flags.DEFINE_bool(
    "show_config", False, "Print every key of the config (after overrides) with its value "
    "and meaning, then exit without training.")


def define_config_flag():
  """`--config`: config_flags reads the `--config.<key>` overrides from sys.argv as it
  defines the flag, so this runs after `preflight` has checked them."""
  global _CONFIG  # pylint: disable=global-statement
  _CONFIG = config_flags.DEFINE_config_file(
      "config", os.path.join(CONFIG_DIR, "ppo_cartpole.py"),
      "Path to a config file, e.g. configs/ppo_cartpole.py (optionally with ':arg').",
      lock_config=True)


def available_configs() -> list[str]:
  """The config files in configs/, as paths relative to the working directory."""
  return sorted(os.path.relpath(p) for p in glob.glob(os.path.join(CONFIG_DIR, "*.py")))


def _argv_config(argv) -> tuple[str, list[tuple[str, str]]]:
  """(the --config value, [(key, value)] of the --config.<key> overrides) in argv."""
  path, overrides = os.path.join(CONFIG_DIR, "ppo_cartpole.py"), []
  for i, arg in enumerate(argv):
    if arg.startswith("--config="):
      path = arg[len("--config="):]
    elif arg == "--config" and i + 1 < len(argv):
      path = argv[i + 1]
    elif arg.startswith("--config."):
      key, _, value = arg[len("--config."):].partition("=")
      overrides.append((key, value))
  return path, overrides


def default_workdir(config_path: str, overrides) -> str:
  """runs/<config name>[_<arg>][/<key=value>_...]: the overrides are part of the name."""
  file, _, arg = config_path.partition(":")
  name = os.path.splitext(os.path.basename(file))[0] + (f"_{arg}" if arg else "")
  suffix = "_".join(f"{k}={v}" for k, v in sorted(overrides))
  safe = lambda x: x.replace("/", "-").replace(" ", "").replace(":", "=")
  return os.path.join("runs", safe(name), safe(suffix)) if suffix else os.path.join(
      "runs", safe(name))


def preflight(argv) -> int | None:
  """Handles --help, a missing config file and unknown --config.<key> flags before absl
  parses the flags: one clear message and an exit code instead of a traceback.

  Returns:
    The exit code, or None to go on.
  """
  if any(a in ("-h", "--help", "--helpfull", "-?") for a in argv[1:]):
    print(__doc__)
    print("Configs (--config=PATH[:arg]):")
    for path in available_configs():
      with open(path, encoding="utf-8") as f:
        doc = (ast.get_docstring(ast.parse(f.read())) or "").strip().splitlines()
      print(f"  {path}: {doc[0] if doc else ''}")
    print("\nFlags:\n  --config: path to a config file, e.g. configs/ppo_cartpole.py, optionally "
          "with ':arg';\n    --config.<key>=<value> overrides a key (--show_config lists "
          "them).")
    print(flags.FLAGS.module_help(sys.modules[__name__]))
    return 0
  path, overrides = _argv_config(argv[1:])
  file = path.partition(":")[0]
  if not os.path.isfile(file):
    print(f"error: no config file {file!r}; available: {', '.join(available_configs())}.",
          file=sys.stderr)
    return 2
  from rlcore import experiment  # pylint: disable=import-outside-toplevel
  config = experiment.with_runner_defaults(experiment.load_config(path))
  keys = experiment.flat_keys(config)
  prefixes = {k.rsplit(".", 1)[0] for k in keys if "." in k}
  for key, _ in overrides:
    if key not in keys and key not in prefixes and not key.startswith("sweep"):
      close = difflib.get_close_matches(key, keys, n=1)
      hint = f" (closest: {close[0]!r})" if close else ""
      print(f"error: unknown config key {key!r}{hint}; every key with its meaning: "
            f"python experiments/main.py --config={os.path.relpath(file)}"
            f"{':' + path.partition(':')[2] if ':' in path else ''} --show_config",
            file=sys.stderr)
      return 2
  return None


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
  from rlcore.experiment import integrity  # pylint: disable=import-outside-toplevel
  config_path = flags.FLAGS["config"].config_filename
  if _SHOW_CONFIG.value:
    print(experiment.describe(experiment.with_runner_defaults(_CONFIG.value)))
    return 0
  workdir = _WORKDIR.value or default_workdir(config_path, _argv_config(sys.argv[1:])[1])
  print(f"jax {jax.__version__} on {jax.device_count()} {jax.default_backend()} device(s); "
        f"config {config_path}; workdir {workdir}")
  try:
    config = experiment.prepare_config(_CONFIG.value)   # every problem of the config
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  try:
    summaries = experiment.run(config, workdir, progress=_PROGRESS.value)
  except (integrity.ConfigChangedError, integrity.WorkdirBusyError,
          NotADirectoryError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except integrity.DivergenceError as e:
    print(f"error: the run diverged: {e}", file=sys.stderr)
    return 1
  _report(summaries)
  print(f"results in {workdir}/ (metrics.jsonl, summary.json, curve.png)")
  if _EXPORT_HF.value:
    from rlcore.agents import grpo  # pylint: disable=import-outside-toplevel
    try:
      folders = grpo.export_hf(config, workdir, _EXPORT_HF.value)
    except ValueError as e:
      print(f"error: --export_hf: {e}", file=sys.stderr)
      return 2
    print(f"Hugging Face checkpoint(s): {', '.join(folders)}")
  return 0


if __name__ == "__main__":
  code = preflight(sys.argv)
  if code is None:
    define_config_flag()
    code = app.run(main)
  sys.exit(code)
