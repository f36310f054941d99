"""What keeps a workdir's results from being silently mixed, lost or mislabelled.

* `WorkdirLock`: one run per workdir at a time (an advisory `flock` on
  `<workdir>/.lock`, released by the kernel when the process dies, even by SIGKILL); a
  second run fails at once and names the holder's pid.
* `check_config`: every group directory records, in `run.json`, the config that defines
  its results (everything but the keys in `PRESENTATION_KEYS`) and the points it
  trains. A rerun with another config refuses, lists the keys that differ and says
  how to start afresh or go on with the recorded config (`config.existing`).
* `last_complete_update`: how far `metrics.jsonl` goes, so the runner can resume from
  a checkpoint the log agrees with.
* `DivergenceError`: a run whose must-be-finite metrics went NaN or infinite.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import ml_collections

from rlcore import io as rio
from rlcore.experiment.configs import config_json

# Runner keys that change how a run is executed or shown, not its results: they may
# differ between a run and its resumption.
PRESENTATION_KEYS = ("log_every", "tensorboard", "plot", "chunk_updates", "shard", "existing",
                     "allow_nonfinite", "sweep", "sweep_points")
RECORD = "run.json"
RESULT_FILES = ("checkpoints", "metrics.jsonl", "summary.json", "points", "curve.png",
                "tensorboard")


class WorkdirBusyError(RuntimeError):
  """Another process is running in this workdir."""


class ConfigChangedError(ValueError):
  """The workdir holds a run of another config."""


class DivergenceError(RuntimeError):
  """A metric that must stay finite (a loss) went NaN or infinite."""


class WorkdirLock:
  """`with WorkdirLock(workdir):` holds an exclusive lock on `<workdir>/.lock`."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, ".lock")
    self._fd = None

  def __enter__(self) -> "WorkdirLock":
    import fcntl  # pylint: disable=import-outside-toplevel  (POSIX)
    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(self._fd, 64, 0).decode(errors="replace").strip() or "unknown"
      os.close(self._fd)
      self._fd = None
      raise WorkdirBusyError(
          f"workdir {os.path.dirname(self.path)} is in use by another run (pid {holder}, "
          f"lock {self.path}); wait for it to finish, or use another --workdir.") from None
    os.ftruncate(self._fd, 0)
    os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)
    return self

  def __exit__(self, *exc) -> None:
    import fcntl  # pylint: disable=import-outside-toplevel
    fcntl.flock(self._fd, fcntl.LOCK_UN)
    os.close(self._fd)
    self._fd = None


def defining_config(config, points) -> dict:
  """The parts of a group's config that define its results, as plain JSON."""
  values = {k: v for k, v in config_json(config).items() if k not in PRESENTATION_KEYS}
  return dict(config=values, points=[dict(p) for p in points])


def fingerprint(defining: dict) -> str:
  return hashlib.sha256(json.dumps(defining, sort_keys=True).encode()).hexdigest()[:16]


def _flat(tree, prefix=""):
  out = {}
  items = tree.items() if isinstance(tree, dict) else enumerate(tree)
  for k, v in items:
    if (isinstance(v, dict) and v) or (isinstance(v, list) and v and
                                       all(isinstance(x, dict) for x in v)):
      out.update(_flat(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def differences(recorded: dict, now: dict) -> dict:
  """{dotted key: (recorded value, value now)} for every key that differs."""
  a = _flat(dict(recorded["config"], points=recorded["points"]))
  b = _flat(dict(now["config"], points=now["points"]))
  return {k: (a.get(k, "<absent>"), b.get(k, "<absent>"))
          for k in sorted(set(a) | set(b)) if a.get(k, "<absent>") != b.get(k, "<absent>")}


def _only_new_defaults(changed: dict, config) -> bool:
  """Whether every difference is a config key absent from the record whose value now is
  the agent family's default (a key added to the family after the run started)."""
  from rlcore.agents import get_family  # pylint: disable=import-outside-toplevel
  defaults = _flat(config_json(get_family(config.get("agent", "ppo")).default_config()))
  missing = object()
  return all(recorded == "<absent>" and not key.startswith("points.")
             and defaults.get(key, missing) == value
             for key, (recorded, value) in changed.items())


def check_config(gdir: str, config, points, existing: str):
  """Compares the group's config with the one `gdir` was started with.

  Args:
    gdir: the group directory.
    config: the group's config.
    points: the group's vmapped points.
    existing: `config.existing`, what to do with a run of another config:
      "resume" refuses (ConfigChangedError); "restart" moves the old directory to
      `<gdir>.replaced-<time>` and starts afresh; "resume_recorded" goes on with the
      config recorded in `run.json` (the new values are ignored, and said so).

  Returns:
    (config, points) to run with: the given ones, or the recorded ones
    ("resume_recorded").
  """
  now = defining_config(config, points)
  path = os.path.join(gdir, RECORD)
  if not os.path.exists(path):
    results = [n for n in RESULT_FILES if os.path.exists(os.path.join(gdir, n))]
    if results and existing != "restart":
      raise ConfigChangedError(
          f"{gdir} holds results ({', '.join(results)}) without a record of their config "
          f"({RECORD}: they were made by an older rlcore or another tool); nothing was "
          f"trained. Use another --workdir, or --config.existing=restart to move them "
          f"aside and train afresh.")
    if results:
      _move_aside(gdir)
    _record(gdir, now)
    return config, points
  recorded = rio.read_json(path)
  if recorded["fingerprint"] == fingerprint(now) and existing != "restart":
    return config, points
  if existing == "restart":
    _move_aside(gdir)
    _record(gdir, now)
    return config, points
  changed = differences(recorded, now)
  if changed and _only_new_defaults(changed, config):
    # Keys a newer rlcore added to the family's config, at their default values: the
    # recorded run computed exactly this config. Record it in the new form and go on.
    _record(gdir, now)
    return config, points
  lines = "\n".join(f"  {k}: {a!r} (recorded) -> {b!r} (now)" for k, a, b in
                    ((k, *v) for k, v in list(changed.items())[:20]))
  if existing == "resume_recorded":
    print(f"[runner] {gdir}: going on with the recorded config; ignored:\n{lines}")
    old = ml_collections.ConfigDict(dict(recorded["config"], sweep={}, sweep_points=[]))
    for key in PRESENTATION_KEYS:
      if key not in ("sweep", "sweep_points") and key in config:
        old[key] = config[key]
    return old, recorded["points"]
  raise ConfigChangedError(
      f"{gdir} holds a run of another config; nothing was trained. What differs:\n{lines}\n"
      f"Use another --workdir to keep both; --config.existing=restart to move the old run "
      f"aside (to {gdir}.replaced-<time>) and train afresh; or "
      f"--config.existing=resume_recorded to go on with the recorded config.")


def _record(gdir, defining):
  rio.write_json_atomic(os.path.join(gdir, RECORD),
                        dict(fingerprint=fingerprint(defining), **defining))


def _move_aside(gdir):
  """Moves a group's results (not the workdir's lock, nor other groups' directories)
  into `<gdir>.replaced-<time>/`."""
  aside = f"{gdir.rstrip('/')}.replaced-{time.strftime('%Y%m%d-%H%M%S')}"
  os.makedirs(aside)
  for name in RESULT_FILES + (RECORD,):
    if os.path.exists(os.path.join(gdir, name)):
      os.replace(os.path.join(gdir, name), os.path.join(aside, name))
  print(f"[runner] {gdir}: the earlier run was moved to {aside}.")


def last_complete_update(records: list, names: list) -> int:
  """The last update that every point has a record of (0 if none)."""
  seen: dict[int, set] = {}
  for r in records:
    seen.setdefault(int(r["update"]), set()).add(r.get("point"))
  done = [u for u, points in seen.items() if set(names) <= points]
  return max(done, default=0)
