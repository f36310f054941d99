"""Checkpoints of JAX pytrees with orbax, durable and crash-safe.

`Checkpointer` wraps `orbax.checkpoint.CheckpointManager`. Each step directory
`<directory>/<step>/` holds three orbax items:

* `state`: the pytree (`StandardSave`), with typed PRNG keys stored as their
  `jax.random.key_data` (uint32) and rewrapped on restore;
* `metadata`: the caller's JSON dict (`JsonSave`), converted by `to_jsonable`
  (non-finite floats become `null`);
* `manifest`: path, shape, dtype (and PRNG impl) of every leaf, so that `restore`
  can reject a template that does not match what was saved instead of letting orbax
  silently cast dtypes, and the SHA-256 of every leaf's bytes, which `restore`
  verifies.

Crash safety. orbax writes a step into a temporary directory and renames it to
`<step>` when complete (an atomic rename on a local filesystem); it never lists its
temporary directories as steps and removes them itself (`cleanup_tmp_directories`).
This class uses only orbax's public API (`CheckpointManager`, `ocp.args`) and adds
two things on top: it fsyncs every file and directory of a finished step before
`save` (or `wait`) returns, since orbax does not, so a SIGKILL or power loss after
`save()` returned loses nothing; and, on start-up, a step directory whose `manifest`
item cannot be read (a write cut short by a power loss before the data reached the
disk) is moved aside as `<step>.incomplete-<ns>`, never deleted, and the steps before
it stay restorable. When the newest step is corrupt (its data no longer matches its
checksums) or unreadable (a truncated file), `restore()` reports it, moves it aside as
`<step>.corrupt-<ns>` and restores the step before it; steps set aside are never
deleted and no longer count for `max_to_keep`. Tested with orbax-checkpoint 0.11.22 (the oldest brax 0.14 accepts)
and 0.12.8: setup.cfg's range.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from typing import Any

import jax

from rlcore.io.atomic import PathLike, fsync_dir, to_jsonable

_MANIFEST_FORMAT = 1

_log = logging.getLogger(__name__)


def _is_key_dtype(dtype: Any) -> bool:
  return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _key_impl_name(x: Any) -> str:
  """Name of the PRNG implementation of a typed key array or ShapeDtypeStruct."""
  if isinstance(x, jax.Array):
    return str(jax.random.key_impl(x))
  impl = getattr(x.dtype, "_impl", None)  # No public API for a ShapeDtypeStruct.
  if impl is None:
    raise ValueError(f"cannot tell the PRNG implementation of {x}.")
  return str(getattr(impl, "name", impl))


def _leaf_spec(x: Any, with_impl: bool = True) -> dict:
  """JSON description of one leaf: shape, dtype and, for typed keys, the impl."""
  dtype = getattr(x, "dtype", None)
  shape = getattr(x, "shape", None)
  if dtype is None or shape is None:
    return {"python": type(x).__name__}
  spec = {"shape": [int(d) for d in shape], "dtype": str(dtype)}
  if with_impl and _is_key_dtype(dtype):
    spec["key_impl"] = _key_impl_name(x)
  return spec


class CorruptCheckpointError(ValueError):
  """A checkpoint step whose data cannot be read or does not match its checksums."""


def _encode(x: Any) -> Any:
  """The array a leaf is stored as (typed PRNG keys as their key data)."""
  return jax.random.key_data(x) if _is_key_dtype(getattr(x, "dtype", None)) else x


def _checksum(x: Any) -> str:
  """SHA-256 of a stored leaf's bytes (C order), or of the repr of a Python scalar."""
  if getattr(x, "dtype", None) is None:
    return hashlib.sha256(repr(x).encode()).hexdigest()
  import numpy as np  # pylint: disable=import-outside-toplevel
  return hashlib.sha256(np.ascontiguousarray(jax.device_get(x)).tobytes()).hexdigest()


def _fsync_tree(root: str) -> None:
  """fsyncs every file and directory under `root`, then `root`'s parent."""
  for dirpath, _, filenames in os.walk(root):
    for name in filenames:
      fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
      try:
        os.fsync(fd)
      finally:
        os.close(fd)
    fsync_dir(dirpath)
  fsync_dir(os.path.dirname(root))


class Checkpointer:
  """Saves and restores pytree checkpoints with orbax, keeping the newest few.

  One writer per directory. Steps must increase from one save to the next.

  Example:

    with Checkpointer(workdir / "ckpt", max_to_keep=2) as ckpt:
      if ckpt.latest_step() is not None:
        state, meta = ckpt.restore(template)
      ...
      ckpt.save(update, state, {"env_steps": env_steps})

  Args:
    directory: checkpoint root; created if missing.
    max_to_keep: number of newest checkpoints kept (None keeps all).
    fsync: fsync each finished checkpoint before `save`/`wait` return (durable
      against power loss; a process kill needs only orbax's own atomic rename).
  """

  def __init__(self, directory: PathLike, max_to_keep: int | None = 2, *,
               fsync: bool = True):
    import orbax.checkpoint as ocp  # Heavy import, only when checkpointing.
    self._ocp = ocp
    if max_to_keep is not None and max_to_keep < 1:
      raise ValueError(f"Checkpointer: max_to_keep must be >= 1 or None, got {max_to_keep}.")
    self.directory = os.path.abspath(os.fspath(directory))
    self._fsync = fsync
    self._pending: list[int] = []
    self.set_aside: list[tuple[int, str, str]] = []   # (step, new path, reason)
    os.makedirs(self.directory, exist_ok=True)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=True, cleanup_tmp_directories=True,
        enable_async_checkpointing=True)
    self._manager = ocp.CheckpointManager(self.directory, options=options)
    self._set_aside_incomplete()

  # --- steps -----------------------------------------------------------------

  def _step_dir(self, step: int) -> str:
    # orbax's default step naming: the step number, no prefix, no padding.
    return os.path.join(self.directory, str(step))

  def _set_aside_incomplete(self) -> None:
    """Moves step directories whose manifest cannot be read out of orbax's view."""
    moved = False
    for step in self._manager.all_steps():
      try:
        self._read_item(step, "manifest")
      except Exception:  # pylint: disable=broad-except  (any unreadable step)
        aside = f"{self._step_dir(step)}.incomplete-{time.time_ns()}"
        _log.warning("Checkpointer: step %d in %s cannot be read (an interrupted write); "
                     "moved to %s.", step, self.directory, aside)
        os.replace(self._step_dir(step), aside)
        moved = True
    if moved:
      self._manager.reload()

  def all_steps(self) -> list[int]:
    """Complete checkpoint steps on disk, ascending (a save not yet waited for is not
    listed; the directory is read when the Checkpointer opens, one writer per directory)."""
    return sorted(s for s in self._manager.all_steps() if s not in self._pending)

  def latest_step(self) -> int | None:
    """The newest complete step, or None when there is none.

    A step still being written asynchronously is not counted until it finishes.
    """
    steps = self.all_steps()
    return steps[-1] if steps else None

  def set_aside_after(self, step: int, reason: str) -> None:
    """Moves every step newer than `step` aside (`<step>.superseded-<ns>`, not deleted),
    e.g. when a run goes back to an older step to recompute what came after it."""
    self.wait()
    for newer in [s for s in self.all_steps() if s > step]:
      aside = f"{self._step_dir(newer)}.superseded-{time.time_ns()}"
      os.replace(self._step_dir(newer), aside)
      self.set_aside.append((newer, aside, reason))
    self._manager.reload()

  # --- save ------------------------------------------------------------------

  def save(self, step: int, state: Any, metadata: dict | None = None, *,
           block: bool = True) -> None:
    """Saves `state` and `metadata` as checkpoint `step`.

    Args:
      step: a non-negative int, larger than every step saved before.
      state: any pytree of arrays (jax, numpy; typed PRNG keys allowed) and
        Python scalars.
      metadata: a JSON-able dict (numpy/JAX scalars allowed; NaN becomes null).
      block: when True (default) return only once the checkpoint is complete,
        renamed into place and (with `fsync=True`) on disk. When False, return once the
        arrays are copied to host memory and finish in the background; call `wait`
        (or the next `save`/`close`) to make it durable.

    Raises:
      ValueError: if `step` is not larger than the latest saved step.
    """
    ocp = self._ocp
    step = int(step)
    if step < 0:
      raise ValueError(f"Checkpointer.save: step must be >= 0, got {step}.")
    known = self.all_steps() + self._pending
    if known and step <= max(known):
      raise ValueError(
          f"Checkpointer.save: step {step} is not larger than the latest saved step "
          f"{max(known)} in {self.directory}; steps must increase.")
    paths_leaves, _ = jax.tree_util.tree_flatten_with_path(state)
    manifest = {
        "format": _MANIFEST_FORMAT,
        "leaves": [[jax.tree_util.keystr(p), dict(_leaf_spec(x), sha256=_checksum(_encode(x)))]
                   for p, x in paths_leaves],
    }
    encoded = jax.tree.map(_encode, state)
    args = ocp.args.Composite(
        state=ocp.args.StandardSave(encoded),
        metadata=ocp.args.JsonSave(to_jsonable(dict(metadata or {}))),
        manifest=ocp.args.JsonSave(manifest))
    # force=True: orbax would otherwise silently skip a save its policy rejects.
    if not self._manager.save(step, args=args, force=True):
      raise RuntimeError(f"Checkpointer.save: orbax declined to save step {step}.")
    self._pending.append(step)
    if block:
      self.wait()

  def wait(self) -> None:
    """Blocks until pending saves are complete and durable."""
    self._manager.wait_until_finished()
    pending, self._pending = self._pending, []
    for step in pending:
      if not os.path.isdir(self._step_dir(step)):
        continue  # Already removed by max_to_keep.
      if self._fsync:
        _fsync_tree(self._step_dir(step))

  # --- restore ---------------------------------------------------------------

  def _read_item(self, step: int, name: str) -> Any:
    ocp = self._ocp
    kwargs = {name: ocp.args.JsonRestore()}
    return self._manager.restore(step, args=ocp.args.Composite(**kwargs))[name]

  def restore(self, template: Any, step: int | None = None) -> tuple[Any, dict]:
    """Restores a checkpoint into the structure of `template`, verifying its checksums.

    With `step=None` it restores the newest step that reads back intact: a newer step
    that is corrupt or unreadable is reported (logged and listed in `set_aside`),
    moved aside as `<step>.corrupt-<ns>` and the step before it is tried.

    Args:
      template: a pytree with the structure, shapes and dtypes of the saved state:
        concrete arrays (their shardings are used) or `jax.ShapeDtypeStruct`s (e.g.
        from `jax.eval_shape`; their sharding if set, else the default device, so
        a checkpoint saved on another topology restores); typed PRNG key leaves
        come back as typed keys.
      step: the step to restore; None restores `latest_step()`.

    Returns:
      `(state, metadata)`: state has the template's tree structure, shapes and
      dtypes and is bitwise equal to what was saved; metadata is the saved dict.

    Raises:
      FileNotFoundError: no complete (intact, with `step=None`) checkpoint, or not `step`.
      CorruptCheckpointError: `step` was given and it is corrupt or unreadable.
      ValueError: the template's leaves do not match the saved ones.
    """
    if step is not None:
      return self._restore_step(template, int(step))
    while self.latest_step() is not None:
      newest = self.latest_step()
      try:
        return self._restore_step(template, newest)
      except CorruptCheckpointError as e:
        aside = f"{self._step_dir(newest)}.corrupt-{time.time_ns()}"
        _log.warning("Checkpointer: %s; moved to %s, trying the step before it.", e, aside)
        os.replace(self._step_dir(newest), aside)
        self.set_aside.append((newest, aside, str(e)))
        self._manager.reload()
    raise FileNotFoundError(f"Checkpointer: no complete checkpoint in {self.directory}.")

  def _restore_step(self, template: Any, step: int) -> tuple[Any, dict]:
    ocp = self._ocp
    if step in self._pending:
      self.wait()
    if step not in self.all_steps():
      raise FileNotFoundError(
          f"Checkpointer: no complete checkpoint for step {step} in {self.directory}.")

    paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    try:
      manifest = self._read_item(step, "manifest")
    except Exception:  # pylint: disable=broad-except  (checkpoint from elsewhere)
      manifest = None
    saved_impls = {}
    if manifest is not None:
      saved_impls = self._check_template(step, paths_leaves, manifest)

    # A ShapeDtypeStruct without a sharding would make orbax place the array as it
    # was saved (e.g. on "cpu:0"), which fails on another topology (a GPU run's
    # checkpoint restored on a CPU, or the reverse): use the default device instead.
    default_sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    restore_leaves, key_impls = [], []
    for path, x in paths_leaves:
      dtype = getattr(x, "dtype", None)
      if _is_key_dtype(dtype):
        impl = saved_impls.get(jax.tree_util.keystr(path)) or _key_impl_name(x)
        data = jax.eval_shape(jax.random.key_data, jax.ShapeDtypeStruct(x.shape, dtype))
        if isinstance(x, jax.Array):
          sharding = jax.random.key_data(x).sharding
        else:
          sharding = getattr(x, "sharding", None) or default_sharding
        restore_leaves.append(jax.ShapeDtypeStruct(data.shape, data.dtype, sharding=sharding))
        key_impls.append(impl)
      elif isinstance(x, jax.ShapeDtypeStruct) and x.sharding is None:
        restore_leaves.append(jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=default_sharding))
        key_impls.append(None)
      else:
        restore_leaves.append(x)
        key_impls.append(None)
    restore_template = jax.tree_util.tree_unflatten(treedef, restore_leaves)

    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(restore_template),
          metadata=ocp.args.JsonRestore()))
    except Exception as e:  # pylint: disable=broad-except  (tensorstore, JSON, I/O)
      raise CorruptCheckpointError(
          f"step {step} in {self.directory} cannot be read ({type(e).__name__}: "
          f"{str(e).splitlines()[0] if str(e) else ''})") from e
    leaves = treedef.flatten_up_to(restored["state"])
    if manifest is not None:
      saved = {path: spec.get("sha256") for path, spec in manifest["leaves"]}
      for (path, _), value in zip(paths_leaves, leaves):
        name = jax.tree_util.keystr(path)
        if saved.get(name) is not None and _checksum(value) != saved[name]:
          raise CorruptCheckpointError(
              f"step {step} in {self.directory} is corrupt: the data of {name} does not "
              f"match its checksum")
    leaves = [jax.random.wrap_key_data(v, impl=impl) if impl is not None else v
              for v, impl in zip(leaves, key_impls)]
    metadata = restored["metadata"]
    return jax.tree_util.tree_unflatten(treedef, leaves), dict(metadata or {})

  def _check_template(self, step: int, paths_leaves, manifest: dict) -> dict:
    """Raises ValueError if the template disagrees with the saved manifest."""
    saved = {path: spec for path, spec in manifest["leaves"]}
    wanted = {jax.tree_util.keystr(p): _leaf_spec(x, with_impl=False) for p, x in paths_leaves}
    problems = []
    for path in sorted(set(saved) | set(wanted)):
      if path not in wanted:
        problems.append(f"{path}: saved but missing from the template")
      elif path not in saved:
        problems.append(f"{path}: in the template but not saved")
      else:
        s, w = saved[path], wanted[path]
        if "shape" in s and "shape" in w and (s["shape"], s["dtype"]) != (w["shape"], w["dtype"]):
          problems.append(f"{path}: saved {s['dtype']}{s['shape']}, "
                          f"template {w['dtype']}{w['shape']}")
    if problems:
      raise ValueError(f"Checkpointer.restore: template does not match step {step} in "
                       f"{self.directory}:\n  " + "\n  ".join(problems[:20]))
    return {path: spec["key_impl"] for path, spec in saved.items() if "key_impl" in spec}

  # --- lifetime --------------------------------------------------------------

  def close(self) -> None:
    """Finishes pending saves and releases orbax's resources."""
    try:
      self.wait()
    finally:
      self._manager.close()

  def __enter__(self) -> "Checkpointer":
    return self

  def __exit__(self, *exc) -> None:
    self.close()
