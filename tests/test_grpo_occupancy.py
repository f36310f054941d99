"""GRPO's ORPO occupancy penalty: the sequence log-ratio, the augmented scores against a
numpy reference (batch-wide sqrt-χ² estimate), the unpenalised path when off, the sign,
config errors, and a short jitted run whose metrics carry the penalty."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rlcore
from rlcore import experiment
from rlcore.agents import grpo
from tests.references import ref_grpo, ref_pure_advantages, ref_rloo

WARM_START = os.path.join(os.path.dirname(__file__), "data", "sft_default.npz")


def _config(**overrides):
  return experiment.override(grpo.default_config(), overrides)


def _scored(rng, P, G, K=3, N=10, score=None):
  """A `grpo.Scored` batch; every response has K one-token-plus steps within N tokens."""
  correct = rng.random((P, G)) < 0.5
  if score is None:
    score = np.where(correct, 1.0, -0.5).astype(np.float32)
  lengths = np.full((P, G), N, np.float32)
  ends = np.broadcast_to(np.array([2, 5, N - 1], np.int32)[:K], (P, G, K)).copy()
  seps = np.zeros((P, G, N), bool)
  seps[..., 2] = seps[..., 5] = True
  return grpo.Scored(
      verifier_score=jnp.asarray(score, jnp.float32), correct=jnp.asarray(correct),
      well_formed=jnp.ones((P, G), bool), lengths=jnp.asarray(lengths),
      pointwise=jnp.zeros((P, G), jnp.float32),
      step_scores=jnp.asarray(rng.random((P, G, K)), jnp.float32),
      step_mask=jnp.ones((P, G, K), bool), step_ends=jnp.asarray(ends),
      separators=jnp.asarray(seps))


def _logprobs(rng, B, N, lengths):
  """Hand-built token log-probs of a sampling policy and a reference, -inf padding."""
  mask = np.arange(N)[None] < np.asarray(lengths)[:, None]
  old = np.log(rng.uniform(0.05, 1.0, (B, N)))
  ref = np.log(rng.uniform(0.05, 1.0, (B, N)))
  old[~mask] = -np.inf          # padding: never read
  ref[~mask] = np.nan
  return old, ref, mask


def _ref_penalty(d, kind, coef, clip, max_logit):
  """numpy: the amount clip(λ·distance) subtracted from each score; sqrt_chi2 with the
  1 %-per-end trimmed mean of e^d − 1 over the whole batch (plain mean below 100)."""
  d = np.asarray(d, np.float64)
  ratio = np.expm1(np.minimum(d, max_logit))
  if kind == "kl":
    dist = d
  elif kind == "chi2":
    dist = ratio
  else:
    flat = np.sort(ratio.ravel())
    k = int(np.floor(0.01 * flat.size))
    chi2 = flat[k:flat.size - k].mean()
    dist = ratio / np.sqrt(chi2) if chi2 > 0 else ratio
  return np.clip(coef * dist, -clip, clip)


def test_sequence_log_ratio_sums_the_token_log_ratios_of_the_response(rng):
  lengths = np.array([5, 1, 8, 3])
  old, ref, mask = _logprobs(rng, 4, 8, lengths)
  d = np.asarray(rlcore.sequence_log_ratio(old, ref, mask))
  expect = [sum(old[b, t] - ref[b, t] for t in range(lengths[b])) for b in range(4)]
  np.testing.assert_allclose(d, expect, rtol=1e-5, atol=1e-5)
  assert np.isfinite(d).all()      # the -inf / NaN padding is never read
  with pytest.raises(ValueError, match="`mask` must have shape"):
    rlcore.sequence_log_ratio(old, ref, mask[:, :4])


@pytest.mark.parametrize("kind", ["kl", "chi2", "sqrt_chi2"])
@pytest.mark.parametrize("P, G", [(1, 8), (16, 8)])
def test_augmented_scores_match_a_numpy_reference(rng, kind, P, G):
  """score' = score − clip(λ·distance) with d from hand-built log-probs, then GRPO's
  group z-score of score'. P·G = 8: no trimming, the sqrt-χ² penalty must be finite
  and non-zero; P·G = 128: χ̂² trims one response per end, over the whole batch (not
  per prompt group: a per-group estimate gives other numbers)."""
  N, coef, clip = 10, 0.7, 4.0
  lengths = rng.integers(1, N + 1, P * G)
  old, ref, mask = _logprobs(rng, P * G, N, lengths)
  old[0, :lengths[0]] = 0.0        # one response far more likely under π than π_ref
  ref[0, :lengths[0]] = -3.0
  d = np.asarray(rlcore.sequence_log_ratio(old, ref, mask)).reshape(P, G)
  s = _scored(rng, P, G, N=N)
  resp = jnp.asarray(mask.astype(np.float32))
  c = _config(**{"occupancy.kind": kind, "occupancy.coef": coef, "occupancy.clip": clip})
  adv, shaped, _, stats = grpo.advantages(c, s, resp, (), jnp.asarray(d))
  penalty = _ref_penalty(d, kind, coef, clip, 20.0)
  expect = np.asarray(s.verifier_score, np.float64) - penalty
  np.testing.assert_allclose(np.asarray(shaped), expect, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(adv), ref_grpo(expect).reshape(-1)[:, None] * mask,
                             rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(float(stats["occupancy_penalty"]), penalty.mean(), rtol=1e-5)
  np.testing.assert_allclose(float(stats["occupancy_log_ratio"]), d.mean(), rtol=1e-5)
  assert np.isfinite(np.asarray(shaped)).all()
  assert np.abs(penalty).max() > 1e-3 and np.abs(penalty).max() <= clip
  if kind == "sqrt_chi2" and P > 1:
    per_group = np.concatenate([_ref_penalty(d[p:p + 1], kind, coef, clip, 20.0)
                                for p in range(P)])
    assert np.abs(per_group - penalty).max() > 1e-2


def test_process_mode_puts_the_penalty_on_the_last_token_with_a_group_baseline(rng):
  """PURE with prm_coef = verifier_coef = 0: the only token reward is the penalty's
  leave-one-out group advantage on each response's last token, then return-to-go with
  separators zeroed and whitening."""
  P, G, N = 2, 4, 10
  s = _scored(rng, P, G, N=N)
  d = rng.normal(0.0, 1.0, (P, G))
  mask = np.ones((P * G, N), bool)
  c = _config(reward="process", **{"process.credit": "sum", "process.prm_coef": 0.0,
                                   "process.verifier_coef": 0.0, "occupancy.kind": "chi2",
                                   "occupancy.coef": 0.5})
  adv, shaped, _, _ = grpo.advantages(c, s, jnp.asarray(mask, jnp.float32), (),
                                      jnp.asarray(d, jnp.float32))
  penalty = -_ref_penalty(d, "chi2", 0.5, 10.0, 20.0)
  token_r = np.zeros((P * G, N))
  token_r[:, N - 1] = ref_rloo(penalty).reshape(-1)
  expect = ref_pure_advantages(token_r, mask, np.asarray(s.separators).reshape(P * G, N))
  np.testing.assert_allclose(np.asarray(adv), expect, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(np.asarray(shaped), penalty, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reward", ["outcome", "process"])
@pytest.mark.parametrize("off", [{"occupancy.kind": "none", "occupancy.coef": 5.0},
                                 {"occupancy.kind": "sqrt_chi2", "occupancy.coef": 0.0}])
def test_kind_none_or_coef_zero_is_the_unpenalised_path(rng, reward, off):
  P, G, N = 3, 4, 10
  s = _scored(rng, P, G, N=N)
  mask = jnp.ones((P * G, N), jnp.float32)
  d = jnp.asarray(rng.normal(0.0, 2.0, (P, G)), jnp.float32)
  base = grpo.advantages(_config(reward=reward), s, mask, ())
  out = grpo.advantages(_config(reward=reward, **off), s, mask, (), d)
  for a, b in zip(base[:2], out[:2]):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert float(out[3]["occupancy_penalty"]) == 0.0
  # The statistics are logged either way: the batch χ̂² of this d is positive.
  assert float(out[3]["occupancy_chi2"]) > 0.0


@pytest.mark.parametrize("kind", ["kl", "chi2", "sqrt_chi2"])
@pytest.mark.parametrize("reward", ["outcome", "process"])
def test_a_larger_log_ratio_gets_a_lower_augmented_score_and_advantage(kind, reward):
  rng = np.random.default_rng(1)
  P, G, N = 2, 6, 10
  s = _scored(rng, P, G, N=N, score=np.ones((P, G)))    # equal scores
  s = s._replace(step_scores=jnp.full((P, G, 3), 0.8, jnp.float32))
  d = np.tile(np.linspace(-1.0, 2.5, G), (P, 1))        # increasing within each group
  c = _config(reward=reward, **{"occupancy.kind": kind, "occupancy.coef": 0.3,
                                "process.credit": "sum"})
  adv, shaped, _, stats = grpo.advantages(c, s, jnp.ones((P * G, N), jnp.float32), (),
                                          jnp.asarray(d, jnp.float32))
  assert np.all(np.diff(np.asarray(shaped), axis=1) < 0)
  first = np.asarray(adv).reshape(P, G, N)[:, :, 0]
  assert np.all(np.diff(first, axis=1) < 0)
  assert float(stats["occupancy_penalty"]) > 0 if kind != "kl" else True
  with pytest.raises(ValueError, match="needs `seq_log_ratio`"):
    grpo.advantages(c, s, jnp.ones((P * G, N), jnp.float32), ())
  with pytest.raises(ValueError, match=r"must have shape \[P, G\]"):
    grpo.advantages(c, s, jnp.ones((P * G, N), jnp.float32), (), jnp.zeros((P * G,)))


@pytest.mark.parametrize("overrides, match", [
    ({"occupancy.kind": "tv2"}, r"config.occupancy.kind: 'tv2' is not allowed; choose one "
                                r"of none, kl, chi2, sqrt_chi2"),
    ({"occupancy.coef": -0.1}, r"config.occupancy.coef must be a finite number in \[0, inf\)"),
    ({"occupancy.clip": 0.0}, r"config.occupancy.clip must be a finite number in \(0, inf\)"),
    ({"occupancy.max_logit": float("nan")}, "config.occupancy.max_logit must be a finite"),
    ({"occupancy.kind": "kl", "advantage": "passk"}, "advantage='passk' uses only "
                                                     "correctness"),
])
def test_bad_occupancy_configs_fail_early(overrides, match):
  with pytest.raises(ValueError, match=match):
    grpo.validate_config(_config(**overrides))


def test_valid_occupancy_configs_pass():
  grpo.validate_config(_config(**{"occupancy.kind": "none", "advantage": "passk"}))
  grpo.validate_config(_config(**{"occupancy.kind": "sqrt_chi2", "kl_coef": 0.01}))
  grpo.validate_config(_config(**{"occupancy.kind": "kl", "reward": "process",
                                  "advantage": "passk"}))   # process ignores `advantage`


def test_occupancy_config_points_are_named_and_valid():
  from tests.helpers import load_script
  cfg = load_script(os.path.join(os.path.dirname(__file__), "..", "configs",
                                 "grpo_occupancy.py"), "grpo_occupancy_config")
  c = cfg.get_config()
  names = [p["_name"] for p in c.sweep_points]
  assert names[0] == "sum_none" and len(set(names)) == len(names)
  for point in c.sweep_points:
    grpo.validate_config(experiment.override(
        c, {k: v for k, v in point.items() if k != "_name"}))
  one = cfg.get_config("sum_kl_0.1")
  assert [p["_name"] for p in one.sweep_points] == ["sum_kl_0.1"]
  with pytest.raises(ValueError, match="unknown argument 'sum_kl_7'"):
    cfg.get_config("sum_kl_7")


@pytest.mark.slow
def test_a_jitted_run_with_the_penalty_logs_it_and_diverges_from_the_unpenalised(tmp_path):
  """Update 0 samples from π = π_ref: d = 0 exactly, no penalty, the same loss as the
  unpenalised run. Then the policy has moved: the penalty is positive, and the shaped
  reward is the PRM sum-form reward minus the mean penalty."""
  from rlcore.agents import sft
  cache = str(tmp_path)
  base = {"sft.cache_dir": cache, "eval_every": 1000, "eval_problems": 8,
          "prompts_per_step": 4, "group_size": 4, "inner_epochs": 1, "num_minibatches": 1,
          "max_completion_len": 48, "reward": "process", "process.credit": "sum",
          "kl_coef": 0.0, "lr": 1e-3}
  sft.import_npz(_config(**base), WARM_START)

  def run(**overrides):
    agent = grpo.make_agent(_config(**base, **overrides))
    _, m = agent.run_chunk(agent.init(jax.random.key(0), seed=0), 2)
    return m

  off = run()
  on = run(**{"occupancy.kind": "sqrt_chi2", "occupancy.coef": 1.0})
  assert on["occupancy_log_ratio"][0] == 0.0 and on["occupancy_penalty"][0] == 0.0
  assert on["loss"][0] == off["loss"][0]
  assert on["occupancy_penalty"][1] > 0.0 and on["occupancy_chi2"][1] > 0.0
  assert on["loss"][1] != off["loss"][1]
  np.testing.assert_allclose(on["shaped_reward"],
                             on["prm_outcome"] - on["occupancy_penalty"], rtol=1e-5)
  np.testing.assert_allclose(off["shaped_reward"], off["prm_outcome"], rtol=1e-6)
  assert np.all(off["occupancy_penalty"] == 0.0)
  assert np.isfinite(off["occupancy_chi2"]).all() and off["occupancy_log_ratio"][1] != 0.0
