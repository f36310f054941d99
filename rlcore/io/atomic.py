"""Atomic, durable file writes and JSON conversion of numpy/JAX values.

A file written here is either the complete old version or the complete new one,
whatever happens to the process (SIGKILL, power loss): the bytes go to a temporary
file in the same directory, which is flushed and fsync-ed, then `os.replace`-d
over the target (an atomic rename on POSIX), and finally the directory itself is
fsync-ed so that the rename survives a power loss.

`to_jsonable` converts the values an experiment produces (numpy and JAX scalars
and arrays, NamedTuples, dataclasses, paths) into plain Python objects. JSON has
no NaN or infinity, so **non-finite floats become `null`** (`None` after reading
back); the files stay strict JSON that any parser accepts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Mapping
from typing import Any, IO, Iterator

import numpy as np

PathLike = str | os.PathLike


def _is_prng_key(x: Any) -> bool:
  dtype = getattr(x, "dtype", None)
  if dtype is None:
    return False
  import jax  # Local: keeps this module importable without initialising jax.
  return jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _float(x: float) -> float | None:
  x = float(x)
  return x if math.isfinite(x) else None


def _array_to_list(a: np.ndarray) -> Any:
  kind = a.dtype.kind
  if kind == "b":
    return a.tolist()
  if kind in "iu":
    return a.tolist()
  if kind == "c":
    raise TypeError(f"complex arrays are not JSON-serialisable (dtype {a.dtype}).")
  if kind in "US":
    return a.astype(str).tolist()
  # Floats, including bfloat16 and other ml_dtypes (kind "V").
  as64 = a.astype(np.float64)
  values = as64.tolist()
  return values if np.all(np.isfinite(as64)) else _replace_nonfinite(values)


def _replace_nonfinite(x: Any) -> Any:
  if isinstance(x, list):
    return [_replace_nonfinite(v) for v in x]
  return _float(x)


def to_jsonable(obj: Any) -> Any:
  """Converts `obj` into plain Python values that `json.dumps` accepts.

  Numpy and JAX scalars become `bool`, `int` or `float`; arrays become (nested)
  lists; NaN and +-inf become `None` (JSON `null`); typed PRNG keys become their
  `jax.random.key_data`; mappings get `str` keys; NamedTuples and dataclasses become
  dicts; tuples and lists become lists; `os.PathLike` becomes `str`.

  Args:
    obj: the value to convert.

  Returns:
    An object built from dict, list, str, int, float, bool and None only.

  Raises:
    TypeError: for values with no JSON form (complex numbers, arbitrary objects).
  """
  if obj is None or isinstance(obj, (bool, str)):
    return obj
  if isinstance(obj, int):
    return int(obj)
  if isinstance(obj, float):
    return _float(obj)
  if isinstance(obj, np.generic):
    if isinstance(obj, np.bool_):
      return bool(obj)
    if isinstance(obj, np.integer):
      return int(obj)
    return _array_to_list(np.asarray(obj))
  if isinstance(obj, Mapping):
    return {str(k): to_jsonable(v) for k, v in obj.items()}
  if isinstance(obj, tuple) and hasattr(obj, "_asdict"):  # NamedTuple
    return {k: to_jsonable(v) for k, v in obj._asdict().items()}
  if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
    return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
  if isinstance(obj, (list, tuple)):
    return [to_jsonable(v) for v in obj]
  if isinstance(obj, os.PathLike):
    return os.fspath(obj)
  if isinstance(obj, np.ndarray) or hasattr(obj, "__array__"):
    if _is_prng_key(obj):
      import jax
      obj = jax.random.key_data(obj)
    return _array_to_list(np.asarray(obj))
  if hasattr(obj, "to_dict") and callable(obj.to_dict):  # ml_collections.ConfigDict
    return to_jsonable(obj.to_dict())
  raise TypeError(f"Object of type {type(obj).__name__} is not JSON-serialisable: {obj!r}")


def dumps(obj: Any, **kwargs) -> str:
  """`json.dumps(to_jsonable(obj))`, strict JSON (no NaN literals)."""
  return json.dumps(to_jsonable(obj), allow_nan=False, **kwargs)


def fsync_dir(directory: PathLike) -> None:
  """fsyncs a directory so that renames and new entries in it are durable."""
  fd = os.open(os.fspath(directory), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
  try:
    os.fsync(fd)
  except OSError:  # Some filesystems refuse fsync on directories.
    pass
  finally:
    os.close(fd)


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", encoding: str | None = "utf-8"
                ) -> Iterator[IO]:
  """Opens a temporary file that atomically replaces `path` on a clean exit.

  The temporary file lives in the target's directory (created if missing). On a
  normal exit it is flushed, fsync-ed, given the permissions an ordinary new file
  would get (0666 minus the umask), renamed over `path` and the directory is fsync-ed.
  If the block raises, the temporary file is removed and `path` is untouched.

  Args:
    path: the final file path.
    mode: "w" (text) or "wb" (binary).
    encoding: text encoding (ignored in binary mode).

  Yields:
    The open temporary file.
  """
  if mode not in ("w", "wb"):
    raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}.")
  path = os.path.abspath(os.fspath(path))
  directory = os.path.dirname(path)
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                             suffix=".tmp")
  try:
    kwargs = {} if "b" in mode else {"encoding": encoding, "newline": ""}
    with os.fdopen(fd, mode, **kwargs) as f:
      yield f
      f.flush()
      umask = os.umask(0)
      os.umask(umask)
      os.fchmod(f.fileno(), 0o666 & ~umask)
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.unlink(tmp)
    raise
  fsync_dir(directory)


def write_json_atomic(path: PathLike, obj: Any, *, indent: int | None = 2,
                      sort_keys: bool = False) -> None:
  """Writes `obj` as JSON to `path` atomically and durably.

  Values are converted by `to_jsonable`: numpy/JAX scalars and arrays become
  Python numbers and lists, and NaN/+-inf become `null`.

  Args:
    path: destination file; its directory is created if missing.
    obj: the value to write.
    indent: `json.dumps` indentation (None for one line).
    sort_keys: sort mapping keys.
  """
  text = dumps(obj, indent=indent, sort_keys=sort_keys) + "\n"
  with atomic_open(path, "w") as f:
    f.write(text)


def read_json(path: PathLike) -> Any:
  """Reads a JSON file written by `write_json_atomic` (or any JSON file).

  Args:
    path: the file.

  Returns:
    The parsed value (`null` entries, including former NaNs, are `None`).
  """
  with open(os.fspath(path), encoding="utf-8") as f:
    return json.load(f)
