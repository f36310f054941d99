"""GRPO trainer: the reward pipeline's order and composition, config errors, resume,
and short training runs that assert the direction of the LASER and PURE effects."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlcore import experiment
from rlcore.agents import grpo
from tests.references import (ref_grpo, ref_laser, ref_min_form, ref_pure_advantages,
                              ref_rloo, ref_rloo_token_baseline, ref_steps_to_tokens,
                              ref_sum_form)


def _config(**overrides):
  return experiment.override(grpo.default_config(), overrides)


def _scored(rng, P=3, G=4, K=5, N=12):
  correct = rng.random((P, G)) < 0.5
  well_formed = correct | (rng.random((P, G)) < 0.5)
  score = np.where(correct, 1.0, np.where(well_formed, -0.5, -1.0)).astype(np.float32)
  lengths = rng.integers(3, N + 1, (P, G)).astype(np.float32)
  steps = rng.random((P, G, K)).astype(np.float32)
  nsteps = rng.integers(1, K + 1, (P, G))
  smask = np.arange(K)[None, None] < nsteps[..., None]
  ends = np.sort(rng.integers(0, 3, (P, G, K)).cumsum(-1), -1)
  ends = np.minimum(ends + np.arange(K), lengths[..., None] - 1).astype(np.int32)
  seps = np.zeros((P, G, N), bool)
  for p, g in np.ndindex(P, G):   # every step but the last ends in a separator ";"
    for k in range(nsteps[p, g] - 1):
      seps[p, g, ends[p, g, k]] = ends[p, g, k] < lengths[p, g] - 1
  return grpo.Scored(
      verifier_score=jnp.asarray(score), correct=jnp.asarray(correct),
      well_formed=jnp.asarray(well_formed), lengths=jnp.asarray(lengths),
      pointwise=jnp.asarray(0.7 + 0.001 * rng.standard_normal((P, G)), jnp.float32),
      step_scores=jnp.asarray(steps), step_mask=jnp.asarray(smask),
      step_ends=jnp.asarray(ends), separators=jnp.asarray(seps))


def _response_mask(scored, N=12):
  lengths = np.asarray(scored.lengths).reshape(-1)
  return jnp.asarray((np.arange(N)[None] < lengths[:, None]).astype(np.float32))


def test_outcome_pipeline_is_shaping_then_group_normalisation_then_tokens(rng):
  """Checked against numpy references stage by stage: LASER on the verifier scores,
  then GRPO's group z-score, then the same advantage on every response token."""
  s = _scored(rng)
  mask = _response_mask(s)
  c = _config(**{"shaping.chain": "laser", "shaping.target_length": 7})
  adv, shaped, _, _ = grpo.advantages(c, s, mask, grpo.make_shaping(c).init())
  expect_shaped = ref_laser(np.asarray(s.verifier_score), np.asarray(s.correct),
                            np.asarray(s.lengths), 7, alpha=0.5)
  np.testing.assert_allclose(np.asarray(shaped), expect_shaped, rtol=1e-6)
  seq = ref_grpo(expect_shaped).reshape(-1)
  np.testing.assert_allclose(np.asarray(adv), seq[:, None] * np.asarray(mask),
                             rtol=1e-5, atol=1e-6)
  # Normalising first and shaping after is another method: the pipeline is not that.
  wrong = ref_grpo(np.asarray(s.verifier_score)).reshape(-1) + (
      expect_shaped - np.asarray(s.verifier_score)).reshape(-1)
  assert np.abs(np.asarray(adv)[:, 0] - wrong).max() > 1e-2


@pytest.mark.parametrize("credit, form", [("min", lambda r, m: ref_min_form(r, m, 0.1)),
                                          ("sum", ref_sum_form)])
def test_process_pipeline_matches_an_independent_numpy_computation(rng, credit, form):
  """PURE, written out in numpy from the references of each stage: step rewards
  2·PRM − 1, credit assignment, the leave-one-out token baseline over each group, step
  values on their end tokens times prm_coef, plus verifier_coef times the
  leave-one-out verifiable reward (correct − 1) on the last token, then return-to-go
  with separators zeroed and whitening."""
  s = _scored(rng)
  mask = _response_mask(s)
  prm_coef, verifier_coef = 0.5, 2.0
  c = _config(reward="process", **{"process.credit": credit, "process.prm_coef": prm_coef,
                                   "process.verifier_coef": verifier_coef})
  adv, shaped, _, _ = grpo.advantages(c, s, mask, ())

  P, G, K = s.step_scores.shape
  N = mask.shape[1]
  step_mask, ends = np.asarray(s.step_mask), np.asarray(s.step_ends)
  lengths, correct = np.asarray(s.lengths), np.asarray(s.correct)
  r_star = form(2.0 * np.asarray(s.step_scores, np.float64) - 1.0, step_mask)
  ntok = np.zeros((P, G, K))
  for p in range(P):
    for g in range(G):
      start = 0
      for k in range(K):
        if step_mask[p, g, k]:
          ntok[p, g, k] = ends[p, g, k] - start + 1
          start = ends[p, g, k] + 1
  baselined = ref_rloo_token_baseline(r_star, ntok, step_mask, response_lengths=lengths)
  token_r = ref_steps_to_tokens(prm_coef * baselined.reshape(P * G, K),
                                ends.reshape(P * G, K), step_mask.reshape(P * G, K), N)
  vr = correct.astype(np.float64) - 1.0
  vr_adv = ref_rloo(vr).reshape(-1)
  for i, length in enumerate(lengths.reshape(-1).astype(int)):
    token_r[i, length - 1] += verifier_coef * vr_adv[i]
  expect = ref_pure_advantages(token_r, np.asarray(mask) > 0,
                               np.asarray(s.separators).reshape(P * G, N))
  np.testing.assert_allclose(np.asarray(adv), expect, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(np.asarray(shaped),
                             prm_coef * r_star.sum(-1) + verifier_coef * vr, rtol=1e-5,
                             atol=1e-6)
  assert np.asarray(adv)[np.asarray(s.separators).reshape(P * G, N)].tolist() == [
      0.0] * int(np.asarray(s.separators).sum())


def test_win_rates_with_a_tie_margin_silence_sub_noise_differences(rng):
  s = _scored(rng)     # pointwise scores differ by ~0.001
  mask = _response_mask(s)
  pointwise, _, _, st = grpo.advantages(_config(reward="pointwise_rm"), s, mask, ())
  pref, _, _, st_pref = grpo.advantages(
      _config(reward="pointwise_rm", **{"pref.enabled": True, "pref.margin": 0.01}), s, mask, ())
  assert float(st["abs_advantage"]) > 0.5          # z-scores blow noise up to unit scale
  assert float(st_pref["abs_advantage"]) == 0.0    # everything is a tie
  assert np.all(np.asarray(pref) == 0)


def test_pairwise_judge_win_rates_follow_quality_and_ignore_ties(rng):
  s = _scored(rng, P=4, G=6)
  q = np.array(s.verifier_score)
  q[0] = 1.0                                       # a group of equal quality: all ties
  s = s._replace(verifier_score=jnp.asarray(q))
  mask = _response_mask(s)
  T = 0.5
  _, shaped, _, _ = grpo.advantages(
      _config(reward="pointwise_rm", **{"pref.enabled": True, "pref.judge": "pairwise",
                                        "pref.judge_temperature": T}), s, mask, ())
  # numpy reference: w_i = mean_{j != i} sigmoid((q_i - q_j) / T)
  p = 1.0 / (1.0 + np.exp(-(q[:, :, None] - q[:, None, :]) / T))
  G = q.shape[1]
  expect = (p.sum(-1) - 0.5) / (G - 1)
  np.testing.assert_allclose(np.asarray(shaped), expect, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(shaped)[0], 0.5)
  order = np.argsort(q[1])
  assert np.all(np.diff(np.asarray(shaped)[1][order]) >= -1e-7)   # better quality, higher rate


@pytest.mark.parametrize("overrides, match", [
    ({"pref.judge": "llm"}, "config.pref.judge: 'llm'"),
    ({"sft.slip_by_verbosity": (0.5, 0.1)}, r"slip_by_verbosity: \(0.5, 0.1\) must be empty"),
    ({"pref.judge_temperature": 0.0}, "judge_temperature: must be > 0"),
    (dict(reward="prm"), "config.reward: 'prm'"),
    (dict(advantage="ppo"), "config.advantage: 'ppo'"),
    ({"shaping.chain": "laser,lazer"}, "'lazer'"),
    ({"shaping.chain": "laser", "reward": "process"}, "needs reward='outcome'"),
    (dict(num_minibatches=3), "not divisible by num_minibatches = 3"),
    (dict(group_size=1), "group_size must be >= 2"),
    (dict(aggregation="mean"), "config.aggregation"),
    (dict(lr_warmup_steps=-1), "lr_warmup_steps must be a non-negative integer"),
    ({"process.prm_noise": -0.1}, r"process.prm_noise must be in \[0, 1\]"),
    ({"process.prm_noise": 1.5}, r"process.prm_noise must be in \[0, 1\].*got 1.5"),
    ({"sft.skip_rate": 1.2}, r"sft.skip_rate must be in \[0, 1\].*got 1.2"),
    ({"sft.max_skip": 0}, "sft.max_skip must be a positive integer, got 0"),
    ({"process.flaws": "filler_bonus,off_by_two"}, "config.process.flaws: 'off_by_two'"),
])
def test_bad_configs_fail_early(overrides, match):
  with pytest.raises(ValueError, match=match):
    grpo.validate_config(_config(**overrides))


def test_prm_flaws_are_parsed_like_the_shaping_chain():
  c = _config(**{"process.flaws": " filler_bonus, off_by_one ,"})
  grpo.validate_config(c)
  assert grpo.prm_flaws(c) == ("filler_bonus", "off_by_one")
  assert grpo.prm_flaws(_config(**{"process.flaws": ""})) == ()


def test_prm_noise_reaches_the_agents_process_reward_model(monkeypatch):
  from rlcore.envs import text
  made = []
  real = text.ProcessRewardModel

  def recording(*args, **kwargs):
    made.append(real(*args, **kwargs))
    return made[-1]

  monkeypatch.setattr(text, "ProcessRewardModel", recording)
  grpo.make_agent(_config(**{"reward": "process", "process.prm_noise": 0.3}))
  grpo.make_agent(_config(reward="process"))
  assert [m.noise for m in made] == [0.3, 0.0]
  assert made[0].flaws == made[1].flaws == ("filler_bonus", "restate_bonus")


def test_sft_corpus_that_does_not_fit_max_completion_len_fails_with_the_length_needed():
  from rlcore.envs.text import CharTokenizer
  from rlcore.agents import sft
  verbose = {"difficulties": (2,), "sft.corpus_size": 20,
             "sft.verbosity_probs": (0.0,) * 8 + (1.0,)}   # always 8 fillers
  with pytest.raises(ValueError, match=r"config.max_completion_len=96 is too short.*"
                                       r"set max_completion_len >= \d+"):
    sft.make_batches(_config(**verbose), CharTokenizer())
  tokens, mask, loss_mask = sft.make_batches(_config(**verbose, max_completion_len=160),
                                             CharTokenizer())
  assert tokens.shape == (20, 16 + 160) and loss_mask.sum(1).max() > 96


# --- training runs: the direction of the effects ---------------------------------
# They start from the default config's SFT warm start, checked in as
# tests/data/sft_default.npz (1.1 MB; `sft.export_npz` wrote it from a 1500-step SFT
# run, which takes about 7 minutes here) and imported into a temporary cache, so CI
# trains no warm start. Four 14-step GRPO runs at P = 8 take about 18 s each on a
# 2-core CPU; the effects are judged on the last 6 steps against the first 3. The
# thresholds held at 20 steps (last 10) for seeds 0-6 and at 14 steps for seeds 0-2,
# whose smallest margins were: filler ratio 0.57 (< 0.7), sum-form filler rise 0.87
# (> 0.5), sum-form minus min-form 1.90 (> 1) (RLCORE_DIRECTION_SEED picks the seed).
# With RLCORE_SLOW_TESTS=1 they run at the experiments' P = 16 for 30 steps.

WARM_START = os.path.join(os.path.dirname(__file__), "data", "sft_default.npz")
SLOW = bool(os.environ.get("RLCORE_SLOW_TESTS"))
STEPS = 14
LATE = slice(-10, None) if SLOW else slice(-6, None)   # the steps the effects are judged on
DIRECTION_SEED = int(os.environ.get("RLCORE_DIRECTION_SEED", "0"))


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory):
  from rlcore.agents import sft
  cache = str(tmp_path_factory.mktemp("warm"))
  sft.import_npz(_config(**{"sft.cache_dir": cache}), WARM_START)
  return cache


def test_checked_in_warm_start_matches_the_default_config(tmp_path):
  """The fixture is for the default model and SFT settings (else: re-export it), and
  a warm start for other settings is refused, naming both cache keys."""
  from rlcore.agents import sft
  c = _config(**{"sft.cache_dir": str(tmp_path)})
  sft.import_npz(c, WARM_START)
  assert sft.import_npz(c, WARM_START) == sft.cache_path(c)   # an existing entry is kept
  params, stats = sft.warm_start(c)
  assert stats["cached"] and stats["sft_loss"] < 0.2
  with np.load(WARM_START) as data:
    first = jax.tree_util.keystr(jax.tree_util.tree_flatten_with_path(params)[0][0][0])
    np.testing.assert_array_equal(np.asarray(jax.tree.leaves(params)[0]), data[first])
  with pytest.raises(ValueError, match="cache key .* re-export"):
    sft.import_npz(_config(**{"sft.cache_dir": str(tmp_path), "sft.steps": 10}), WARM_START)


def _run(cache, **overrides):
  steps, size = (30, 16) if SLOW else (STEPS, 8)
  agent = grpo.make_agent(_config(**{
      "eval_every": 1000, "eval_problems": 64, "prompts_per_step": size,
      "sft.cache_dir": cache, **overrides}))
  state = agent.init(jax.random.key(DIRECTION_SEED), seed=DIRECTION_SEED)
  _, m = agent.run_chunk(state, steps)
  return m


@pytest.mark.slow
def test_laser_removes_filler_faster_than_no_shaping(warm_cache):
  none = _run(warm_cache)
  laser = _run(warm_cache, **{"shaping.chain": "laser", "shaping.target_length": 40})
  mean = lambda m, k: float(m[k][LATE].mean())
  assert mean(laser, "filler_steps") < 0.7 * mean(none, "filler_steps")
  assert mean(laser, "mean_length") < mean(none, "mean_length")
  # A guard against collapse only: the last 6 steps' 384 training samples cannot
  # resolve the experiments' "at most 2 points lost" (configs/grpo_length.py measures
  # that on 384 held-out problems).
  assert mean(laser, "accuracy") > mean(none, "accuracy") - 0.1


def test_lr_warmup_starts_the_optimizer_at_zero(warm_cache):
  """With lr_warmup_steps the first Adam step has size 0 (linear warm-up from 0), so
  the first update leaves the policy where it was; without it, it moves."""
  def first_update(**overrides):
    agent = grpo.make_agent(_config(**{"eval_every": 1000, "eval_problems": 16,
                                       "prompts_per_step": 4, "group_size": 4,
                                       "inner_epochs": 1, "num_minibatches": 1,
                                       "sft.cache_dir": warm_cache, **overrides}))
    state = agent.init(jax.random.key(0), seed=0)
    new, m = agent.run_chunk(state, 1)
    moved = max(float(jnp.max(jnp.abs(a - b))) for a, b in
                zip(jax.tree.leaves(new.params), jax.tree.leaves(state.params)))
    return moved, m
  still, m = first_update(lr_warmup_steps=10)
  moved, _ = first_update()
  assert still == 0.0 and abs(m["approx_kl"][0]) < 1e-6
  assert moved > 0.0


@pytest.mark.slow
def test_sum_form_prm_is_hacked_with_filler_and_min_form_is_not(warm_cache):
  sum_form = _run(warm_cache, reward="process", **{"process.credit": "sum"})
  min_form = _run(warm_cache, reward="process", **{"process.credit": "min"})
  late, early = LATE, slice(0, 3)
  fill = lambda m, w: float(m["filler_steps"][w].mean())
  # Sum-form credit pays for every filler step the flawed PRM rates highly ...
  assert fill(sum_form, late) > fill(sum_form, early) + 0.5
  assert sum_form["prm_sum"][late].mean() > sum_form["prm_sum"][early].mean()
  # ... min-form credit does not: its filler falls, and ends far below sum-form's.
  assert fill(min_form, late) < fill(min_form, early)
  assert fill(sum_form, late) > fill(min_form, late) + 1.0


@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean-token-sum",
                                         "seq-mean-token-mean", "constant"])
def test_microbatches_give_the_same_gradient_and_statistics(aggregation):
  from rlcore import lm
  from rlcore.agents.grpo import update as update_lib
  config = lm.LMConfig.tiny(32, hidden_size=16, intermediate_size=32, num_layers=2)
  params = lm.init_params(config, jax.random.key(0))
  rng = np.random.default_rng(0)
  b, pl, w = 8, 3, 5
  lengths = np.array([5, 5, 4, 5, 0, 1, 0, 2])      # microbatches of 4 hold 19, 3 tokens
  loss_mask = (np.arange(w)[None] < lengths[:, None]).astype(np.float32)
  batch = dict(
      tokens=jnp.asarray(rng.integers(0, 32, (b, pl + w)), jnp.int32),
      mask=jnp.ones((b, pl + w), jnp.float32), loss_mask=jnp.asarray(loss_mask),
      advantages=jnp.asarray(rng.normal(size=(b, w)), jnp.float32),
      old_logprobs=jnp.asarray(-2.0 - rng.random((b, w)), jnp.float32),
      ref_logprobs=jnp.asarray(-2.0 - rng.random((b, w)), jnp.float32))
  out = {}
  for k in (1, 2, 4):
    s = update_lib.UpdateSettings(
        lm_config=config, prompt_len=pl, lr=1e-3, lr_warmup_steps=0, max_grad_norm=1.0,
        clip_low=0.2, clip_high=0.28, kl_coef=0.1, kl_kind="k3", aggregation=aggregation,
        inner_epochs=1, num_minibatches=1, microbatches=k)
    out[k] = jax.jit(lambda p, bt, s=s: update_lib.minibatch_gradient(p, bt, s))(params, batch)
  (v1, aux1), g1 = out[1]
  assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(g1)) > 1e-4
  for k in (2, 4):
    (vk, auxk), gk = out[k]
    np.testing.assert_allclose(vk, v1, rtol=1e-5, atol=1e-7)
    jax.tree.map(lambda a, c: np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-7), gk, g1)
    assert set(auxk) == set(aux1) and 0 < float(aux1["clip_fraction"]) < 1
    for name in aux1:
      np.testing.assert_allclose(auxk[name], aux1[name], rtol=1e-5, atol=1e-7)
  # The weights: tokens per microbatch over all tokens for token-mean, else equal.
  expected = [19 / 22, 3 / 22] if aggregation == "token-mean" else [0.5, 0.5]
  np.testing.assert_allclose(update_lib.microbatch_weights(jnp.asarray(loss_mask), 2,
                                                           aggregation), expected, rtol=1e-6)


def test_microbatches_must_divide_the_minibatch():
  c = grpo.default_config()
  c.prompts_per_step, c.group_size, c.num_minibatches, c.microbatches = 4, 4, 2, 3
  with pytest.raises(ValueError, match="config.microbatches = 3 does not divide the "
                                       "minibatch .* = 8 sequences"):
    grpo.validate_config(c)
  c.microbatches = 0
  with pytest.raises(ValueError, match="microbatches"):
    grpo.validate_config(c)
