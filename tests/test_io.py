"""Tests of rlcore.io: checkpoints, metrics, atomic JSON, progress bar, plots."""

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlcore.io import (
    Checkpointer, CorruptCheckpointError, MetricsWriter, learning_curve_png, learning_curves_png, progress_bar,
    read_json, read_jsonl, write_json_atomic)
from tests import plot_checks

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Inner(NamedTuple):
  count: jax.Array
  mask: jax.Array


class AgentState(NamedTuple):
  params: dict
  inner: Inner
  key: jax.Array


def make_state(seed: int = 0) -> AgentState:
  rng = np.random.default_rng(seed)
  return AgentState(
      params={"dense": {"w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
                        "b": jnp.asarray([np.nan, -0.0, 1e-38, 3.4e38], jnp.float32)},
              "log_std": jnp.float32(-0.5)},
      inner=Inner(count=jnp.asarray(rng.integers(-2**31, 2**31 - 1, size=(5,)), jnp.int32),
                  mask=jnp.asarray([True, False, True])),
      key=jax.random.split(jax.random.key(seed + 7), 2)[1])


def assert_bitwise_equal(a, b):
  la, ta = jax.tree.flatten(a)
  lb, tb = jax.tree.flatten(b)
  assert ta == tb
  for x, y in zip(la, lb):
    assert x.dtype == y.dtype and x.shape == y.shape
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      assert jax.random.key_impl(x) == jax.random.key_impl(y)
      x, y = jax.random.key_data(x), jax.random.key_data(y)
    x, y = np.asarray(x), np.asarray(y)
    assert x.tobytes() == y.tobytes()


# --- checkpoints -------------------------------------------------------------


def test_checkpoint_round_trip_exact(tmp_path):
  state = make_state(0)
  meta = {"env_steps": np.int64(4096), "return": np.float32(1.5), "nan": float("nan"),
          "config": {"lr": 3e-4, "layers": (64, 64)}}
  with Checkpointer(tmp_path / "ckpt") as ckpt:
    assert ckpt.latest_step() is None
    ckpt.save(3, state, meta)
    assert ckpt.latest_step() == 3
  # A fresh Checkpointer (as a resumed process would) with a zeroed template.
  template = jax.tree.map(
      lambda x: x if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else jnp.zeros_like(x),
      make_state(1))
  with Checkpointer(tmp_path / "ckpt") as ckpt:
    restored, restored_meta = ckpt.restore(template)
  assert isinstance(restored, AgentState) and isinstance(restored.inner, Inner)
  assert jax.dtypes.issubdtype(restored.key.dtype, jax.dtypes.prng_key)
  assert_bitwise_equal(restored, state)
  # The restored key generates the same numbers as the saved one.
  np.testing.assert_array_equal(jax.random.normal(restored.key, (4,)),
                                jax.random.normal(state.key, (4,)))
  assert restored_meta == {"env_steps": 4096, "return": 1.5, "nan": None,
                           "config": {"lr": 3e-4, "layers": [64, 64]}}


def test_restore_with_shape_dtype_struct_template(tmp_path):
  state = make_state(2)
  template = jax.eval_shape(lambda: state)
  assert isinstance(template.key, jax.ShapeDtypeStruct)
  with Checkpointer(tmp_path) as ckpt:
    ckpt.save(0, state, {"a": 1})
    restored, meta = ckpt.restore(template, step=0)
  assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(restored))
  assert_bitwise_equal(restored, state)
  assert meta == {"a": 1}


def test_restore_other_prng_impl(tmp_path):
  state = {"key": jax.random.key(3, impl="rbg"), "x": jnp.arange(4, dtype=jnp.int32)}
  with Checkpointer(tmp_path) as ckpt:
    ckpt.save(1, state)
    restored, meta = ckpt.restore(jax.eval_shape(lambda: state))
  assert jax.random.key_impl(restored["key"]) == jax.random.key_impl(state["key"])
  assert_bitwise_equal(restored, state)
  assert meta == {}


def test_restore_rejects_mismatched_template(tmp_path):
  state = make_state(0)
  with Checkpointer(tmp_path) as ckpt:
    ckpt.save(1, state)
    wrong_dtype = state._replace(inner=state.inner._replace(
        count=jax.ShapeDtypeStruct((5,), jnp.float32)))
    with pytest.raises(ValueError, match=r"inner.*count.*int32.*float32"):
      ckpt.restore(wrong_dtype)
    wrong_shape = state._replace(params={**state.params, "log_std": jnp.zeros((2,))})
    with pytest.raises(ValueError, match="log_std"):
      ckpt.restore(wrong_shape)
    with pytest.raises(ValueError, match="missing from the template"):
      ckpt.restore(state._replace(params={"dense": state.params["dense"]}))


def test_max_to_keep_and_latest_step(tmp_path):
  with Checkpointer(tmp_path, max_to_keep=2) as ckpt:
    for step in (10, 20, 30, 40):
      ckpt.save(step, {"x": jnp.full((2,), step, jnp.int32)}, {"step": step})
      assert ckpt.latest_step() == step
    with pytest.raises(ValueError, match="steps must increase"):
      ckpt.save(40, {"x": jnp.zeros((2,), jnp.int32)})
  with Checkpointer(tmp_path, max_to_keep=2) as ckpt:
    assert ckpt.all_steps() == [30, 40]
    assert ckpt.latest_step() == 40
    template = {"x": jax.ShapeDtypeStruct((2,), jnp.int32)}
    restored, meta = ckpt.restore(template)
    np.testing.assert_array_equal(restored["x"], [40, 40])
    assert meta == {"step": 40}
    restored, meta = ckpt.restore(template, step=30)
    np.testing.assert_array_equal(restored["x"], [30, 30])
    with pytest.raises(FileNotFoundError):
      ckpt.restore(template, step=10)
  assert sorted(os.listdir(tmp_path)) == ["30", "40"]


def test_non_blocking_save_then_wait(tmp_path):
  state = make_state(4)
  with Checkpointer(tmp_path) as ckpt:
    ckpt.save(5, state, {"k": 1}, block=False)
    ckpt.wait()
    assert ckpt.latest_step() == 5
    restored, _ = ckpt.restore(jax.eval_shape(lambda: state))
  assert_bitwise_equal(restored, state)


def test_half_written_checkpoint_is_not_latest(tmp_path):
  state = {"x": jnp.arange(3, dtype=jnp.float32)}
  with Checkpointer(tmp_path) as ckpt:
    ckpt.save(1, state)
  # An orbax temporary directory (a save interrupted before its atomic rename)...
  (tmp_path / "3.orbax-checkpoint-tmp-1234" / "state").mkdir(parents=True)
  # ...and a step directory renamed into place whose files did not all reach the disk
  # (a power loss): a copy of step 1 without its manifest. orbax alone lists step 2.
  import shutil
  shutil.copytree(tmp_path / "1", tmp_path / "2")
  shutil.rmtree(tmp_path / "2" / "manifest")
  with Checkpointer(tmp_path) as ckpt:
    assert ckpt.latest_step() == 1
    assert ckpt.all_steps() == [1]
    restored, _ = ckpt.restore(state)
    np.testing.assert_array_equal(restored["x"], [0, 1, 2])
    # Step 2 can be saved again: the incomplete directory was moved aside, not deleted.
    ckpt.save(2, {"x": jnp.full((3,), 7.0, jnp.float32)})
    restored, _ = ckpt.restore(state)
    np.testing.assert_array_equal(restored["x"], [7, 7, 7])
  names = os.listdir(tmp_path)
  assert not any("orbax-checkpoint-tmp" in n for n in names)  # orbax's own clean-up
  aside = [n for n in names if n.startswith("2.incomplete-")]
  assert len(aside) == 1 and os.path.isdir(tmp_path / aside[0] / "state")


def _two_steps(path):
  with Checkpointer(path) as ckpt:
    for step in (1, 2):
      ckpt.save(step, {"x": jnp.arange(4096, dtype=jnp.float32) * step,
                       "key": jax.random.key(step)}, {"step": step})


def _largest_data_file(step_dir):
  files = [os.path.join(d, f) for d, _, fs in os.walk(step_dir) for f in fs]
  return max(files, key=os.path.getsize)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_corrupt_newest_step_is_set_aside_and_the_one_before_restored(tmp_path, damage):
  _two_steps(tmp_path)
  target = _largest_data_file(tmp_path / "2" / "state")
  data = bytearray(open(target, "rb").read())
  if damage == "flip":      # 64 bytes in the middle of the array data
    mid = len(data) // 2
    data[mid:mid + 64] = bytes(b ^ 0xFF for b in data[mid:mid + 64])
  else:                     # a file cut short
    data = data[:len(data) // 3]
  open(target, "wb").write(bytes(data))
  template = {"x": jax.ShapeDtypeStruct((4096,), jnp.float32),
              "key": jax.eval_shape(lambda: jax.random.key(0))}
  with Checkpointer(tmp_path) as ckpt:
    with pytest.raises(CorruptCheckpointError, match="step 2"):
      ckpt.restore(template, step=2)           # asked for by number: an error, kept
    assert ckpt.all_steps() == [1, 2]
    state, meta = ckpt.restore(template)       # the newest intact step
    assert meta == {"step": 1} and ckpt.set_aside[0][0] == 2
    np.testing.assert_array_equal(state["x"], np.arange(4096, dtype=np.float32))
    assert ckpt.all_steps() == [1]
    ckpt.save(2, {"x": jnp.zeros(4096), "key": jax.random.key(9)}, {"step": 2})
    ckpt.save(3, {"x": jnp.ones(4096), "key": jax.random.key(9)}, {"step": 3})
    assert ckpt.all_steps() == [2, 3]          # max_to_keep counts intact steps only
  aside = [n for n in os.listdir(tmp_path) if n.startswith("2.corrupt-")]
  assert len(aside) == 1 and os.path.exists(tmp_path / aside[0] / "state")   # kept


def test_a_template_mismatch_is_an_error_not_corruption(tmp_path):
  _two_steps(tmp_path)
  with Checkpointer(tmp_path) as ckpt:
    with pytest.raises(ValueError, match="template does not match") as info:
      ckpt.restore({"x": jax.ShapeDtypeStruct((8,), jnp.float32),
                    "key": jax.eval_shape(lambda: jax.random.key(0))})
    assert not isinstance(info.value, CorruptCheckpointError)
    assert ckpt.all_steps() == [1, 2] and ckpt.set_aside == []


_KILL_CHILD = textwrap.dedent("""
    import os, signal, sys
    import jax, jax.numpy as jnp
    from rlcore.io import Checkpointer
    ckpt = Checkpointer(sys.argv[1])
    # Saved from the last of 2 CPU devices: the parent, with one device (or a GPU),
    # restores it onto another topology.
    device = jax.devices()[-1]
    x = jax.device_put(jnp.arange(1000, dtype=jnp.float32) * 0.5, device)
    ckpt.save(1, {"x": x, "key": jax.device_put(jax.random.key(11), device)},
              {"env_steps": 1})
    if sys.argv[2] == "in_flight":
      # Start a second save in the background and die while it may be in flight.
      ckpt.save(2, {"x": x + 1.0, "key": jax.random.key(12)}, {"env_steps": 2}, block=False)
    os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.parametrize("mode", ["blocking", "in_flight"])
def test_sigkill_after_save_returns(tmp_path, mode):
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=2")
  proc = subprocess.run([sys.executable, "-c", _KILL_CHILD, str(tmp_path), mode], env=env,
                        capture_output=True, timeout=120)
  assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
  template = {"x": jax.ShapeDtypeStruct((1000,), jnp.float32),
              "key": jax.eval_shape(lambda: jax.random.key(0))}
  assert template["x"].sharding is None and len(jax.devices()) == 1
  with Checkpointer(tmp_path) as ckpt:
    expected = ([1], [1, 2]) if mode == "in_flight" else ([1],)
    assert ckpt.all_steps() in expected
    assert ckpt.latest_step() == ckpt.all_steps()[-1]
    for step in ckpt.all_steps():
      restored, meta = ckpt.restore(template, step=step)
      assert meta == {"env_steps": step}
      np.testing.assert_array_equal(restored["x"],
                                    np.arange(1000, dtype=np.float32) * 0.5 + (step - 1))
      np.testing.assert_array_equal(jax.random.key_data(restored["key"]),
                                    jax.random.key_data(jax.random.key(10 + step)))
  # An interrupted save leaves only orbax's temporary directory, which orbax removes in a
  # background thread started when the Checkpointer opens (it may outlive `close`).
  deadline = time.monotonic() + 60
  while (any("orbax-checkpoint-tmp" in n for n in os.listdir(tmp_path))
         and time.monotonic() < deadline):
    time.sleep(0.1)
  assert not any("orbax-checkpoint-tmp" in n for n in os.listdir(tmp_path))


# --- atomic JSON ---------------------------------------------------------------


def test_write_json_atomic_numpy_and_jax_values(tmp_path):
  path = tmp_path / "sub" / "result.json"
  obj = {"i": np.int32(3), "f": np.float32(0.25), "b": np.bool_(True),
         "arr": np.arange(4).reshape(2, 2), "jax": jnp.asarray([1.5, jnp.nan, jnp.inf]),
         "scalar": jnp.float32(2.0), "bf16": jnp.asarray([1.0, 2.5], jnp.bfloat16),
         "key": jax.random.key(0), "tuple": (1, "a"), "nested": {1: [np.float64(-0.5)]}}
  write_json_atomic(path, obj)
  assert read_json(path) == {
      "i": 3, "f": 0.25, "b": True, "arr": [[0, 1], [2, 3]], "jax": [1.5, None, None],
      "scalar": 2.0, "bf16": [1.0, 2.5], "key": [0, 0], "tuple": [1, "a"],
      "nested": {"1": [-0.5]}}
  json.loads(path.read_text())  # Strict JSON: no NaN/Infinity literals.
  assert "NaN" not in path.read_text()
  write_json_atomic(path, {"second": 2})
  assert read_json(path) == {"second": 2}
  assert os.listdir(path.parent) == ["result.json"]  # no temp file left behind


def test_write_json_atomic_keeps_old_file_on_error(tmp_path):
  path = tmp_path / "r.json"
  write_json_atomic(path, {"ok": 1})
  with pytest.raises(TypeError):
    write_json_atomic(path, {"bad": object()})
  assert read_json(path) == {"ok": 1}
  assert os.listdir(tmp_path) == ["r.json"]


# --- metrics ------------------------------------------------------------------


def test_metrics_append_and_read(tmp_path):
  with MetricsWriter(tmp_path) as w:
    w.write({"env_steps": 100, "return": np.float32(1.25)})
    w.write_many([{"env_steps": 200, "return": jnp.float32(2.5)},
                  {"env_steps": 300, "return": float("nan")}])
  with MetricsWriter(tmp_path) as w:  # reopening appends
    w.write({"env_steps": 400, "return": 4})
  assert read_jsonl(tmp_path / "metrics.jsonl") == [
      {"env_steps": 100, "return": 1.25}, {"env_steps": 200, "return": 2.5},
      {"env_steps": 300, "return": None}, {"env_steps": 400, "return": 4}]


def test_metrics_torn_last_line(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"env_steps": 1, "r": 0.5}\n{"env_steps": 2, "r": 0.7}\n{"env_st')
  assert read_jsonl(path) == [{"env_steps": 1, "r": 0.5}, {"env_steps": 2, "r": 0.7}]
  # A malformed line that is not the last is corruption, not a torn write.
  bad = tmp_path / "bad.jsonl"
  bad.write_text('{"a": 1}\n{"a": \n{"a": 3}\n')
  with pytest.raises(ValueError, match="line 2"):
    read_jsonl(bad)
  # Reopening the writer drops the torn fragment instead of gluing onto it.
  with MetricsWriter(tmp_path) as w:
    w.write({"env_steps": 3, "r": 0.9})
  assert [r["env_steps"] for r in read_jsonl(path)] == [1, 2, 3]
  assert path.read_text().count("\n") == 3


def test_metrics_truncate_after(tmp_path):
  with MetricsWriter(tmp_path) as w:
    w.write({"config": "ppo"})
    w.write_many([{"env_steps": s, "return": s / 10} for s in (100, 200, 300, 400)])
    dropped = w.truncate_after("env_steps", 250)
    assert dropped == 2
    w.write({"env_steps": 300, "return": 99.0})
  records = read_jsonl(tmp_path / "metrics.jsonl")
  assert records == [{"config": "ppo"}, {"env_steps": 100, "return": 10.0},
                     {"env_steps": 200, "return": 20.0}, {"env_steps": 300, "return": 99.0}]


def _tensorboard_scalars(directory):
  """(step, tag, value) of every scalar in the event files under `directory`."""
  import struct
  from tensorboardX.proto import event_pb2
  out = []
  for name in sorted(os.listdir(directory)):
    data = (directory / name).read_bytes()
    pos = 0
    while pos < len(data):
      (length,) = struct.unpack("<Q", data[pos:pos + 8])
      event = event_pb2.Event()
      event.ParseFromString(data[pos + 12:pos + 12 + length])
      pos += 12 + length + 4
      out += [(event.step, v.tag, v.simple_value) for v in event.summary.value]
  return sorted(out)


def test_metrics_tensorboard(tmp_path):
  pytest.importorskip("tensorboardX")
  with MetricsWriter(tmp_path, tensorboard=True) as w:
    w.write_many([{"env_steps": 10, "return": 1.0, "phase": "train", "ok": True},
                  {"env_steps": 20, "return": 2.0}])
    w.truncate_after("env_steps", 10)  # reopens the event writer at once
    w.write({"env_steps": 20, "return": 3.0})
  scalars = _tensorboard_scalars(tmp_path / "tensorboard")
  # Both event files survive; the step-20 record of the first is purged on reading by
  # TensorBoard (purge_step), but the file still holds it.
  assert (10, "return", 1.0) in scalars and (20, "return", 3.0) in scalars
  assert {tag for _, tag, _ in scalars} == {"return"}  # strings and bools skipped
  assert len(os.listdir(tmp_path / "tensorboard")) == 2


# --- progress -----------------------------------------------------------------


def test_progress_bar_is_quiet_off_a_terminal(monkeypatch):
  """Off a terminal (logs, CI) the bar writes a line at most every 30 s: a fast run
  leaves its first and final state, not one line per update."""
  stream = io.StringIO()
  monkeypatch.setattr(sys, "stderr", stream)
  bar = progress_bar(1000, "train", initial=100)
  for _ in range(90):
    bar.update(10)
    bar.set_postfix({"return": "12.35"}, refresh=False)
  bar.close()
  states = [s for s in stream.getvalue().replace("\r", "\n").splitlines() if s.strip()]
  assert 1 <= len(states) <= 3, states
  assert "train" in states[-1] and "1000/1000" in states[-1] and "return=12.35" in states[-1]
  quiet = io.StringIO()
  monkeypatch.setattr(sys, "stderr", quiet)
  bar = progress_bar(10, "x", disable=True)
  bar.update(10)
  bar.close()
  assert quiet.getvalue() == ""


# --- plots --------------------------------------------------------------------


def test_learning_curve_png(tmp_path):
  x = np.linspace(0, 1e5, 20)
  seeds = np.stack([np.sqrt(x) + 30 * s for s in range(3)])
  path = tmp_path / "plots" / "curve.png"
  learning_curve_png(path, {"ppo": (x, seeds), "reinforce": (x, np.sqrt(x) / 2)},
                     "env steps", "return", "CartPole")
  assert path.read_bytes()[:8] == PNG_SIGNATURE
  assert os.listdir(path.parent) == ["curve.png"]
  # Both curves are drawn across the panel (C0, C1), and the 3-seed one has its band.
  plot_checks.assert_draws_curve(path, plot_checks.CYCLE[0])
  plot_checks.assert_draws_curve(path, plot_checks.CYCLE[1])
  band = plot_checks.color_mask(plot_checks.read_rgb(path), "#d2e4f0", tol=0.04)  # C0, alpha .2
  assert band.sum() > 2000
  learning_curve_png(tmp_path / "one.png", {"a": (x, np.sqrt(x))}, "x", "y", "t",
                     band="std")
  plot_checks.assert_draws_curve(tmp_path / "one.png")
  assert plot_checks.curve_extent(tmp_path / "one.png", plot_checks.CYCLE[1])[0] == 0
  with pytest.raises(ValueError, match="must be"):
    learning_curve_png(tmp_path / "bad.png", {"a": (x, seeds[:, :5])}, "x", "y", "t")
  assert not (tmp_path / "bad.png").exists()


def test_learning_curves_png_draws_one_panel_per_quantity(tmp_path):
  x = np.linspace(0, 1, 30)
  path = tmp_path / "panels.png"
  learning_curves_png(path, {"return": {"a": (x, np.stack([x, 2 * x]))},
                             "shaped return": {"a": (x, np.sin(6 * x))}},
                      title="two panels")
  # The left half holds the first panel, the right half the second: a curve in each.
  plot_checks.assert_draws_curve(path, columns=(0.0, 0.5), min_width=0.35)
  plot_checks.assert_draws_curve(path, columns=(0.5, 1.0), min_width=0.35)
  with pytest.raises(ValueError, match="empty"):
    learning_curves_png(tmp_path / "none.png", {})


@pytest.mark.parametrize("band, words", [("minmax", "min-max"), ("std", "mean ± std")])
def test_the_legend_sits_below_the_data_and_names_the_seed_band(tmp_path, monkeypatch,
                                                                band, words):
  """Issue 14 case 14: the legend overlaps no panel and says what line and band are."""
  from matplotlib.figure import Figure
  saved = []
  savefig = Figure.savefig
  monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: (saved.append(fig),
                                                               savefig(fig, *a, **k)))
  x = np.linspace(0, 1, 30)
  learning_curves_png(tmp_path / "p.png", {
      "episode return": {"ppo": (x, np.stack([x + s for s in range(8)])),
                         "pbrs": (x, np.stack([2 * x + s for s in range(8)]))},
      "shaped return": {"pbrs": (x, np.stack([3 * x + s for s in range(8)]))}}, band=band)
  (fig,) = saved
  renderer = fig.canvas.get_renderer()
  (legend,) = fig.legends
  assert legend.get_title().get_text() == (
      f"line: mean over 8 seeds; band: {words} over seeds")
  assert [t.get_text() for t in legend.get_texts()] == ["ppo", "pbrs"]
  box = legend.get_window_extent(renderer)
  for ax in fig.axes:
    panel = ax.get_window_extent(renderer)
    assert box.y1 <= panel.y0, (box, panel)     # below every panel: it covers no data
