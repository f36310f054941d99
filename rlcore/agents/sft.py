"""Supervised warm start (SFT) of a causal LM on generated step-by-step solutions.

    L(θ) = − (1 / Σ m) Σ_{b,t} m_{b,t} log π_θ(y_{b,t} | x_b, y_{b,<t})

over the completion tokens (EOS included) of (prompt, completion) pairs from
`rlcore.envs.text.sft_corpus` (at `config.difficulties`), whose mixture of verbosities
and occasional slips gives the policy a moderate pass rate and a spread of lengths for
length shaping to act on.
The layout is the sampler's: LEFT-padded prompt [P] then RIGHT-padded completion
[N], so the warm-started model sees at training time exactly what it sees when
sampling.

`warm_start(config)` caches the parameters under `config.sft.cache_dir` keyed by a
hash of everything that determines them, so the runs of a sweep train it once. Cache
entries are written under a unique temporary name and renamed into place, and a lock
per entry makes concurrent processes train an entry once and read it after.
`export_npz` writes a warm start to one file and `import_npz` puts it into another
machine's cache (the tests start from `tests/data/sft_default.npz` this way).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rlcore import io as rio
from rlcore import lm


def lm_config(config, vocab_size: int) -> lm.LMConfig:
  """The policy's LMConfig from `config.model`."""
  m = config.model
  return lm.LMConfig.tiny(vocab_size, hidden_size=m.hidden_size,
                          intermediate_size=m.intermediate_size, num_layers=m.num_layers,
                          num_heads=m.num_heads, num_kv_heads=m.num_kv_heads)


def _cache_key(config) -> str:
  # Keys at their "off" value are left out, so caches made before they existed stay valid.
  # The warm start is trained in float32 without remat whatever model.param_dtype and
  # model.remat say (GRPO casts it); scan_layers changes how, not what, is computed.
  model = {k: v for k, v in config.model.to_dict().items()
           if k not in ("hf_path", "param_dtype", "remat", "shard_params", "scan_layers")}
  payload = json.dumps({"model": model, "sft": {
      k: v for k, v in config.sft.to_dict().items()
      if k != "cache_dir" and not (k == "slip_by_verbosity" and not v)
      and not (k in ("skip_rate", "max_skip") and not config.sft.get("skip_rate", 0.0))},
      **({} if tuple(config.difficulties) == (0, 1, 2)
         else {"difficulties": list(config.difficulties)})},
                       sort_keys=True, default=str)
  return hashlib.sha256(payload.encode()).hexdigest()[:16]


def make_batches(config, tokenizer):
  """All SFT examples as arrays: tokens [n, P + N], mask [n, P + N], loss mask [n, P + N]."""
  from rlcore.envs import text
  s = config.sft
  slips = tuple(s.get("slip_by_verbosity", ())) or float(s.slip_rate)
  pairs = text.sft_corpus(int(s.seed), int(s.corpus_size), tuple(s.verbosity_probs),
                          slips, tuple(config.difficulties),
                          skip_rate=float(s.get("skip_rate", 0.0)),
                          max_skip=int(s.get("max_skip", 2)))
  P = text.TASK_MAX_PROMPT_LEN
  N = int(config.get("max_completion_len", text.TASK_MAX_COMPLETION_LEN))
  need = max(len(c) for _, c in pairs) + 1  # + EOS
  if need > N:
    raise ValueError(f"config.max_completion_len={N} is too short for the SFT corpus "
                     f"(verbosity_probs={tuple(s.verbosity_probs)}): its longest completion "
                     f"needs {need} tokens with EOS; set max_completion_len >= {need}.")
  prompts, pmask = tokenizer.batch_encode_prompts([p for p, _ in pairs], P)
  comps, cmask = tokenizer.batch_encode_completions([c for _, c in pairs], N)
  tokens = np.concatenate([prompts, comps], 1).astype(np.int32)
  mask = np.concatenate([pmask, cmask], 1).astype(np.float32)
  loss_mask = np.concatenate([np.zeros_like(pmask), cmask], 1).astype(np.float32)
  return tokens, mask, loss_mask


def train(config, *, log_every: int = 0, progress: bool = True):
  """Trains the warm start from scratch.

  Args:
    config: the GRPO config (uses `config.model` and `config.sft`: seed,
      corpus_size, verbosity_probs, slip_rate, steps, batch_size, lr).
    log_every: print the loss every this many steps (0: never).
    progress: show a progress bar (stderr).

  Returns:
    (params, dict of statistics: final loss, seconds).
  """
  from rlcore.envs import text
  tok = text.CharTokenizer()
  cfg = lm_config(config, tok.vocab_size)
  s = config.sft
  tokens, mask, loss_mask = make_batches(config, tok)
  key = jax.random.key(int(s.seed))
  key, init_key = jax.random.split(key)
  params = lm.init_params(cfg, init_key)
  warmup = min(50, max(int(s.steps) // 10, 1))
  schedule = optax.warmup_cosine_decay_schedule(0.0, float(s.lr), warmup,
                                                max(int(s.steps), warmup + 1), 0.1 * s.lr)
  opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=0.0))
  opt_state = opt.init(params)

  def loss_fn(p, t, m, lm_mask):
    logp = lm.token_logprobs(p, cfg, t, m)
    return -jnp.sum(logp * lm_mask) / jnp.maximum(jnp.sum(lm_mask), 1.0)

  @jax.jit
  def step(p, o, t, m, lm_mask):
    loss, g = jax.value_and_grad(loss_fn)(p, t, m, lm_mask)
    u, o = opt.update(g, o, p)
    return optax.apply_updates(p, u), o, loss

  rng = np.random.default_rng(int(s.seed))
  n = tokens.shape[0]
  P = text.TASK_MAX_PROMPT_LEN
  ends = P + loss_mask.sum(1).astype(np.int64)       # one past each example's last token
  t0 = time.time()
  loss = float("nan")
  bar = rio.progress_bar(int(s.steps), "sft warm start", unit="step", disable=not progress)
  for i in range(int(s.steps)):
    idx = rng.integers(0, n, int(s.batch_size))
    # Trim the right padding to a multiple of 16 (few shapes, few compiles): most
    # completions are far shorter than the longest.
    width = min(tokens.shape[1], int(-(-ends[idx].max() // 16) * 16))
    params, opt_state, loss = step(params, opt_state, tokens[idx, :width], mask[idx, :width],
                                   loss_mask[idx, :width])
    if log_every and (i + 1) % log_every == 0:
      print(f"[sft] step {i + 1}/{s.steps} loss {float(loss):.4f}", flush=True)
    bar.update(1)
  bar.close()
  return params, dict(sft_loss=float(loss), sft_seconds=time.time() - t0)


def warm_start(config, *, log_every: int = 0):
  """SFT parameters for `config`, from the cache when present (else trained and cached).

  Args:
    config: the GRPO config.
    log_every: see `train`.

  Returns:
    (params, statistics dict; `cached` says whether they came from the cache).
  """
  with _entry_lock(config):     # one process trains an entry; the others wait and read it
    with _cache_entry(config) as ckpt:
      if ckpt is not None:
        params, meta = ckpt.restore(_template(config))
        return params, dict(meta, cached=True)
    print(f"[sft] no warm start cached for these model and SFT settings: training it "
          f"({config.sft.steps} steps); it is cached in {cache_path(config)}.", flush=True)
    params, stats = train(config, log_every=log_every)
    _store(config, params, stats)
  return params, dict(stats, cached=False)


def cache_path(config) -> str:
  """The directory where `warm_start` keeps the SFT parameters of `config`."""
  cache_dir = config.sft.cache_dir or os.path.join(
      os.path.expanduser("~"), ".cache", "rlcore", "sft")
  return os.path.join(cache_dir, _cache_key(config))


def _template(config):
  from rlcore.envs import text
  cfg = lm_config(config, text.CharTokenizer().vocab_size)
  return jax.eval_shape(lambda: lm.init_params(cfg, jax.random.key(0)))


def _store(config, params, stats) -> None:
  """Writes a cache entry atomically: into a temporary directory of a unique name, which
  is then renamed to the entry's (a reader sees no entry or a complete one). If another
  process stored the entry first, its entry is kept and this one discarded."""
  entry = cache_path(config)
  parent = os.path.dirname(entry)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(entry)}.tmp-")
  try:
    with rio.Checkpointer(os.path.join(tmp, "params")) as ckpt:
      ckpt.save(1, params, stats)
    if os.path.exists(entry) and not _complete(entry):
      os.replace(entry, f"{entry}.incomplete-{time.time_ns()}")   # set aside, not deleted
    try:
      os.rename(tmp, entry)
    except OSError:
      if not _complete(entry):
        raise
  finally:
    if os.path.exists(tmp):
      shutil.rmtree(tmp, ignore_errors=True)


def _complete(entry: str) -> bool:
  """A cache entry holds a saved step (entries are renamed into place when complete)."""
  return os.path.isdir(os.path.join(entry, "params", "1"))


@contextlib.contextmanager
def _entry_lock(config):
  """An exclusive lock on `<cache_dir>/<key>.lock` (flock: released if the process dies)."""
  import fcntl  # pylint: disable=import-outside-toplevel  (POSIX)
  entry = cache_path(config)
  os.makedirs(os.path.dirname(entry), exist_ok=True)
  fd = os.open(f"{entry}.lock", os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield
  finally:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _leaf_names(tree) -> list[str]:
  return [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def export_npz(config, path: str, *, log_every: int = 0) -> dict:
  """Writes the warm start of `config` (from the cache, or trained) to one `.npz` file.

  The file holds every parameter as a float32 array named by its pytree path, the
  cache key of `config` (a hash of the model and SFT settings) and the SFT statistics.
  `import_npz` puts it back into a cache, so a machine without the cache (CI, a
  Colab) skips the SFT run. `tests/data/sft_default.npz` is made this way.

  Args:
    config: the GRPO config.
    path: output file.
    log_every: see `train`.

  Returns:
    The SFT statistics.
  """
  params, stats = warm_start(config, log_every=log_every)
  arrays = {name: np.asarray(x, np.float32)
            for name, x in zip(_leaf_names(params), jax.tree.leaves(params))}
  meta = {k: v for k, v in stats.items() if k != "cached"}
  np.savez_compressed(path, __cache_key__=np.asarray(_cache_key(config)),
                      __stats__=np.asarray(json.dumps(meta)), **arrays)
  return meta


def import_npz(config, path: str) -> str:
  """Puts parameters written by `export_npz` into `config`'s SFT cache.

  After this, `warm_start(config)` (and so every GRPO run with `config`'s model and
  SFT settings) loads them instead of training. A cache entry that already exists is
  kept as it is (the file is still checked against `config`).

  Args:
    config: the GRPO config; its model and SFT settings must be the exported ones.
    path: a file written by `export_npz`.

  Returns:
    The cache directory written (`cache_path(config)`).

  Raises:
    ValueError: if the file was exported for other model or SFT settings, or its
      arrays do not match the model's parameters.
  """
  with np.load(path) as data:
    key = str(data["__cache_key__"])
    if key != _cache_key(config):
      raise ValueError(
          f"import_npz: {path} holds the warm start for SFT cache key {key}, but this "
          f"config's model and sft settings give {_cache_key(config)}; re-export it with "
          f"sft.export_npz(config, path) for these settings.")
    stats = json.loads(str(data["__stats__"]))
    template = _template(config)
    leaves = []
    for name, spec in zip(_leaf_names(template), jax.tree.leaves(template)):
      if name not in data.files or data[name].shape != spec.shape:
        raise ValueError(f"import_npz: {path} has no parameter {name} of shape "
                         f"{spec.shape}.")
      leaves.append(jnp.asarray(data[name], spec.dtype))
  with _entry_lock(config):
    if not _complete(cache_path(config)):
      _store(config, jax.tree.unflatten(jax.tree.structure(template), leaves), stats)
  return cache_path(config)


@contextlib.contextmanager
def _cache_entry(config):
  """The open checkpointer of `config`'s cache entry, or None if there is no complete
  entry."""
  if not _complete(cache_path(config)):
    yield None
    return
  with rio.Checkpointer(os.path.join(cache_path(config), "params")) as ckpt:
    yield ckpt if ckpt.latest_step() is not None else None
