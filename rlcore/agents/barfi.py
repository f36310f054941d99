"""BARFI and its baselines: REINFORCE on a linear softmax policy, one jitted chunk.

The inner learner is REINFORCE (`rlcore.bilevel.barfi_policy_objective`: Monte-Carlo
returns without γ^t weighting, entropy bonus β) on a linear softmax policy over a
fixed coupled Fourier basis of order 3 (4^d features of the state scaled to [0, 1] by
the task's bounds), trained with RMSprop. Episodes are collected δ at a time with the
same policy (the official code updates only at the end of every δ-th episode); one
*update* of this agent is those δ episodes and the learning that follows them:

* `outer="none"` (baselines): one policy step on the last episode with
  `reward="primary"` (r_p), `"naive"` (r_p + r_aux) or `"potential"` (r_aux of each
  step used as the potential Φ(s_t), shaped by `rlcore.potential_based`; the official
  `REINFORCEPotential`, whose return is G^p_t − r_aux_t).
* `outer="first_order"` or `"neumann"` with `reward="aligned"` (BARFI; Gupta et al.
  2023, https://arxiv.org/abs/2310.19007): warm-up as the naive baseline until
  `first_mul + inner_mul` episodes are done; then `δ·inner_mul + first_mul` policy
  steps on r_φ, γ_φ; afterwards each update makes one outer step on (φ, w_γ) with
  `rlcore.bilevel.barfi_hypergradient` (∇_θJ on the δ new episodes with r_p and the
  task's γ; Ĵ_φ and its Hessian on `hess_mul · batch_size` older episodes of the
  buffer) and then δ·inner_mul policy steps on `batch_size` buffer episodes each.
  "first_order" is K = 0 with α = 1 (the official `Barfi.outer_first_order`);
  "neumann" uses K = `neumann_steps` and α = `neumann_alpha`. r_φ keeps weight 1 on
  r_p (paper, spec); `primary_weight="learned"` learns it too, v_φ(s)·r_p, as the
  official CartPole code does.

Everything (collection, buffer, schedule, updates) is one pure function, so the
runner vmaps seeds and the traced hyperparameters (`HPARAMS`). The schedule's phase
depends only on the update index, so under vmap every run is in the same phase: the
variable numbers of inner and outer steps are `lax.while_loop`s, which cost the
largest count in the batch (the same for all), not the sum of both branches.

An outer step whose hypergradient is not finite, or whose Neumann series grows
(`HypergradInfo.stable` False), is still counted in the metrics (`neumann_growth`,
`outer_unstable`); a non-finite step is skipped (φ kept), never applied.

Metrics per update (means over the δ episodes): `episode_return` (primary,
undiscounted), `episode_length`, `aux_return`, `goal_rate` (episodes that ended before
the time limit: GridWorld's goal, CartPole's fall), `gamma` (γ_φ), `aux_weight` and
`reward_bias`, `primary_weight` (means of w_φ(s), b_φ(s) and the weight on r_p, 1
unless `primary_weight="learned"`, over the states visited), `neumann_growth`,
`hypergrad_norm`, `outer_unstable`, `outer_skipped` (NaN before the first outer step),
`env_steps` (actual steps so far), `episodes`. `steps_per_update` is δ·horizon (an upper bound:
episodes may end early), so the runner's steps/s is an upper bound too;
`benchmarks/barfi.py` measures episodes per second.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rlcore import bilevel
from rlcore.agents import protocol
from rlcore.agents.validation import (check_choice, check_hparams, check_number,
                                      require_int)
from rlcore.features import (features_linear, fourier_basis, fourier_features,
                             fourier_features_from_trig, fourier_trig)
from rlcore.shaping.potential import potential_based

HPARAMS = ("actor_lr", "reward_lr", "gamma_lr", "entropy_coef", "reward_l2", "gamma_l2",
           "neumann_alpha", "env_gamma")
OUTERS = ("none", "first_order", "neumann")
REWARDS = ("aligned", "primary", "naive", "potential")
PRIMARY_WEIGHTS = ("one", "learned")
TASKS = ("gridworld", "cartpole")


def default_config():
  """Every BARFI key, at the official CartPole settings with the misleading heuristic."""
  import ml_collections
  c = ml_collections.ConfigDict()
  c.agent = "barfi"                 # the agent family
  c.task = "cartpole"               # gridworld or cartpole (rlcore.envs.barfi)
  c.aux = "misleading"              # heuristic: gridworld good|bad|none; cartpole helpful|misleading|noisy|none
  c.outer = "neumann"               # none (baselines), first_order (K=0, alpha=1) or neumann
  c.reward = "aligned"              # aligned (BARFI's r_phi; outer != none) or primary|naive|potential (outer = none)
  c.primary_weight = "one"          # r_phi's weight on r_p: one (paper, spec, official GridWorld) or learned (official CartPole code)
  c.episodes = 999                  # episodes per run (a multiple of delta; the official 1000 updates after 999)
  c.delta = 3                       # episodes between updates (and between outer steps)
  c.inner_mul = 5                   # delta*inner_mul policy steps after each outer step
  c.first_mul = 150                 # extra policy steps when the warm-up ends
  c.hess_mul = 15                   # hess_mul*batch_size buffer episodes for the inner gradient and Hessian
  c.batch_size = 1                  # buffer episodes per policy step
  c.buffer_size = 1000              # episodes kept (FIFO)
  c.neumann_steps = 5               # K, Hessian-vector products of the Neumann series
  c.fourier_order = 3               # coupled Fourier basis order (features: (order+1)^state_dim)
  c.actor_lr = 1e-3                 # policy RMSprop learning rate (traced)
  c.reward_lr = 1e-3                # reward-parameter RMSprop learning rate (traced)
  c.gamma_lr = 1e-3                 # discount-logit RMSprop learning rate (traced)
  c.entropy_coef = 0.25             # entropy bonus beta of every policy objective (traced)
  c.reward_l2 = 0.0                 # lambda_r on the sum of the reward parameters' norms (traced)
  c.gamma_l2 = 0.25                 # lambda_gamma on gamma_phi (traced)
  c.neumann_alpha = 5e-4            # Neumann step alpha (traced)
  c.env_gamma = 0.99                # the task's discount, for J and the baselines (traced)
  return c


def validate_config(config) -> None:
  """Raises ValueError naming the key and what is allowed."""
  from rlcore.envs import barfi as barfi_envs
  check_choice("task", config.task, TASKS)
  allowed = barfi_envs.GRIDWORLD_AUX if config.task == "gridworld" else barfi_envs.CARTPOLE_AUX
  check_choice("aux", config.aux, allowed)
  check_choice("outer", config.outer, OUTERS)
  check_choice("reward", config.reward, REWARDS)
  check_choice("primary_weight", config.primary_weight, PRIMARY_WEIGHTS)
  if (config.outer == "none") != (config.reward != "aligned"):
    raise ValueError(
        f"config.reward = {config.reward!r} with config.outer = {config.outer!r}: BARFI "
        f"(outer = first_order or neumann) learns its reward, so it needs reward = "
        f"'aligned'; the baselines (outer = none) need reward = primary, naive or "
        f"potential.")
  if config.primary_weight == "learned" and config.outer == "none":
    raise ValueError("config.primary_weight = 'learned' needs outer = first_order or "
                     "neumann: the baselines (outer = none) learn no reward.")
  for name in ("episodes", "delta", "inner_mul", "hess_mul", "batch_size", "buffer_size",
               "fourier_order"):
    require_int(config, name, 1)
  for name in ("first_mul", "neumann_steps"):
    require_int(config, name, 0)
  if config.episodes % config.delta:
    raise ValueError(f"config.episodes = {config.episodes} must be a multiple of "
                     f"config.delta = {config.delta}.")
  if config.buffer_size < config.delta + 1:
    raise ValueError(f"config.buffer_size = {config.buffer_size} must exceed config.delta "
                     f"= {config.delta} (the outer step reads older episodes).")
  for name in ("actor_lr", "reward_lr", "gamma_lr", "neumann_alpha"):
    check_number(config, name, 0.0, low_open=True)
  for name in ("entropy_coef", "reward_l2", "gamma_l2"):
    check_number(config, name, 0.0)
  check_number(config, "env_gamma", 0.0, 1.0)


class Buffer(NamedTuple):
  """Episodes padded to the horizon H, FIFO over `buffer_size` slots."""
  trig: jax.Array      # [N, H, 2, D] cos(πx), sin(πx) of the scaled state each action
                       # was taken in (what its Fourier features are computed from)
  actions: jax.Array   # [N, H] int32
  r_p: jax.Array       # [N, H] primary rewards
  r_aux: jax.Array     # [N, H] heuristic rewards
  mask: jax.Array      # [N, H] float32, 1 on the episode's steps
  ended: jax.Array     # [N, H] bool, True on the episode's last step
  pos: jax.Array       # [] int32, next slot to write
  size: jax.Array      # [] int32, filled slots


class BarfiState(NamedTuple):
  """One run: policy, reward and discount parameters, optimisers, buffer, counters."""
  theta: dict                          # {"kernel": [F, A], "bias": [A]}
  phi: bilevel.BarfiRewardParams       # reward parameters
  gamma_logit: jax.Array               # []
  actor_opt: Any
  reward_opt: Any
  gamma_opt: Any
  buffer: Buffer
  key: jax.Array
  hparams: dict
  update_step: jax.Array               # [] int32
  env_steps: jax.Array                 # [] int32


def _rmsprop(lr):
  # PyTorch's RMSprop defaults (alpha 0.99, eps added outside the square root), as the
  # official code uses; lr is injected so it can be traced and vmapped.
  return optax.inject_hyperparams(optax.rmsprop)(
      learning_rate=lr, decay=0.99, eps=1e-8, eps_in_sqrt=False)


class BarfiAgent(NamedTuple):
  """The `rlcore.agents.Agent` protocol for BARFI, plus its parts for notebooks."""
  init: Any
  run_chunk: Any
  update: Any
  num_updates: int
  steps_per_update: int
  default_hparams: Any
  plot_metrics: tuple
  finite_metrics: tuple
  vectorized: bool
  evaluate: Any
  env: Any
  features: Any        # obs [..., D] -> [..., F]
  policy_logits: Any   # (theta, features) -> [..., A]


def make_agent(config, *, constrain_batch=None) -> BarfiAgent:
  """Builds the agent for `config` (see `default_config`); `constrain_batch` unused."""
  del constrain_batch
  validate_config(config)
  from rlcore.envs import barfi as barfi_envs
  env = barfi_envs.make(config.task, config.aux)
  horizon = env.horizon
  num_actions = env.action_spec.num_actions
  dim = env.observation_shape[0]
  order = int(config.fourier_order)
  low, span = jnp.asarray(env.obs_low), jnp.asarray(env.obs_high - env.obs_low)
  num_features = fourier_basis(order, dim).shape[0]
  delta, n_buf = int(config.delta), int(config.buffer_size)
  if config.outer == "none":
    n_buf = delta
  warmup = int(config.first_mul + config.inner_mul)
  num_updates = int(config.episodes) // delta
  aux_name = barfi_envs.AUX_REWARD
  learned = config.primary_weight == "learned"

  def lead(v, x):   # v [K] broadcast against x [..., K]
    return jnp.reshape(v, (1,) * (jnp.ndim(x) - 1) + (-1,))

  def scale(obs):
    return (obs - lead(low, obs)) / lead(span, obs)

  def features(obs):
    return fourier_features(scale(obs), order)

  def featurize(trig):
    """Features of a batch's `trig` [T, B, 2, D] for gradients: ([N, F], [F, N])."""
    c, s = (trig[..., i, :].reshape(-1, dim) for i in (0, 1))
    # Both layouts computed, not one transposed: XLA would fold the transpose back
    # into the gradient's product, which then runs in the slow layout.
    return (fourier_features_from_trig(c, s, order),
            fourier_features_from_trig(c, s, order, transpose=True))

  def policy_logits(theta, feats, feats_t=None):
    kernel = theta["kernel"]
    out = feats @ kernel if feats_t is None else features_linear(feats, kernel, feats_t)
    return out + lead(theta["bias"], feats)

  def default_hparams():
    return {k: jnp.asarray(float(config[k]), jnp.float32) for k in HPARAMS}

  def init(key, hparams=None, *, seed=0):
    del seed
    hp = check_hparams(hparams, default_hparams())
    k_theta, k_phi, key = jax.random.split(key, 3)
    bound = 1.0 / np.sqrt(num_features)
    k1, k2 = jax.random.split(k_theta)
    theta = {"kernel": jax.random.uniform(k1, (num_features, num_actions), jnp.float32,
                                          -bound, bound),
             "bias": jax.random.uniform(k2, (num_actions,), jnp.float32, -bound, bound)}
    phi = bilevel.init_barfi_reward(k_phi, num_features)
    logit = jnp.asarray(bilevel.GAMMA_LOGIT_INIT, jnp.float32)
    z = lambda *s: jnp.zeros((n_buf, horizon) + s, jnp.float32)
    buf = Buffer(trig=z(2, dim), actions=jnp.zeros((n_buf, horizon), jnp.int32), r_p=z(),
                 r_aux=z(), mask=z(), ended=jnp.zeros((n_buf, horizon), bool),
                 pos=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))
    return BarfiState(
        theta=theta, phi=phi, gamma_logit=logit,
        actor_opt=_rmsprop(hp["actor_lr"]).init(theta),
        reward_opt=_rmsprop(hp["reward_lr"]).init(phi),
        gamma_opt=_rmsprop(hp["gamma_lr"]).init(logit), buffer=buf, key=key, hparams=hp,
        update_step=jnp.zeros((), jnp.int32), env_steps=jnp.zeros((), jnp.int32))

  # -- collection ---------------------------------------------------------------------

  def collect(theta, key):
    """One episode with the current policy, padded to the horizon."""
    k_reset, k_run = jax.random.split(key)
    s0 = env.reset(k_reset)

    def step(carry, noise):
      s, alive = carry
      trig = fourier_trig(scale(s.obs))
      logits = policy_logits(theta, fourier_features_from_trig(*trig, order))
      action = jnp.argmax(logits + noise)     # jax.random.categorical, noise drawn ahead
      nxt = env.step(s, action)
      done = nxt.terminated | nxt.truncated
      out = (jnp.stack(trig), action, nxt.reward, nxt.info[aux_name], alive, alive & done)
      keep = lambda new, old: jnp.where(alive, new, old)
      return (jax.tree.map(keep, nxt, s), alive & ~done), out

    # The Gumbel noise `jax.random.categorical` would draw at each step with the same
    # keys (so the same actions), drawn for the whole episode at once: one random-bits
    # computation instead of one per step.
    noise = jax.vmap(lambda k: jax.random.gumbel(k, (num_actions,)))(
        jax.random.split(k_run, horizon))
    _, (trig, actions, r_p, r_aux, alive, ended) = jax.lax.scan(
        step, (s0, jnp.ones((), bool)), noise)
    m = alive.astype(jnp.float32)
    return trig, actions.astype(jnp.int32), r_p * m, r_aux * m, m, ended

  def store(buf, eps):
    idx = (buf.pos + jnp.arange(delta)) % n_buf
    put = lambda a, x: a.at[idx].set(x)
    return buf._replace(trig=put(buf.trig, eps[0]), actions=put(buf.actions, eps[1]),
                        r_p=put(buf.r_p, eps[2]), r_aux=put(buf.r_aux, eps[3]),
                        mask=put(buf.mask, eps[4]), ended=put(buf.ended, eps[5]),
                        pos=(buf.pos + delta) % n_buf,
                        size=jnp.minimum(buf.size + delta, n_buf))

  def take(buf, idx):
    """Episodes `idx` [B] as time-major arrays [H, B, ...]."""
    tm = lambda a: jnp.swapaxes(a[idx], 0, 1)
    return (tm(buf.trig), tm(buf.actions), tm(buf.r_p), tm(buf.r_aux), tm(buf.mask),
            tm(buf.ended))

  def last(buf):
    return (buf.pos - 1 - jnp.arange(delta)[::-1]) % n_buf

  # -- objectives ---------------------------------------------------------------------

  def objective(theta, fe, batch, rewards, discount, beta):
    _, actions, _, _, mask, _ = batch
    logits = policy_logits(theta, *fe).reshape(actions.shape + (num_actions,))
    log_probs = jax.nn.log_softmax(logits, -1)
    # "associative": 5x faster than "scan" for a Hessian-vector product at T = 500,
    # B = 15 on CPU (measured); this agent's episodes are long and its batches small.
    return bilevel.barfi_policy_objective(log_probs, actions, rewards, discount, mask, beta,
                                          method="associative")

  def aligned(phi, logit, fe, batch):
    _, _, r_p, r_aux, _, _ = batch
    r = bilevel.barfi_reward(phi, fe[0], r_p.reshape(-1), r_aux.reshape(-1),
                             learn_primary_weight=learned, features_t=fe[1])
    return (r.reshape(r_p.shape),
            bilevel.barfi_discount(logit))

  def baseline_rewards(batch, kind, gamma):
    _, _, r_p, r_aux, mask, ended = batch
    if kind == "primary":
      return r_p
    if kind == "naive":
      return r_p + r_aux
    # Φ(s_t) = r_aux of step t; Φ after the episode's end is 0 (Grześ's correction).
    next_phi = jnp.concatenate([r_aux[1:], jnp.zeros_like(r_aux[:1])], 0)
    return potential_based(r_p, r_aux, next_phi * mask, ended, None, gamma,
                           valid=mask > 0)

  def policy_step(state, fe, batch, rewards, discount):
    hp = state.hparams
    obj, grads = jax.value_and_grad(objective)(state.theta, fe, batch, rewards, discount,
                                               hp["entropy_coef"])
    neg = jax.tree.map(jnp.negative, grads)
    updates, opt = _rmsprop(hp["actor_lr"]).update(neg, state.actor_opt, state.theta)
    return state._replace(theta=optax.apply_updates(state.theta, updates),
                          actor_opt=opt), obj

  def inner_steps(state, n, key):
    """n policy steps on r_φ, γ_φ (detached), each on `batch_size` buffer episodes."""

    def body(carry):
      i, s, obj, k = carry
      k, k_idx = jax.random.split(k)
      idx = jax.random.randint(k_idx, (config.batch_size,), 0, s.buffer.size)
      batch = take(s.buffer, idx)
      fe = featurize(batch[0])
      r, g = jax.lax.stop_gradient(aligned(s.phi, s.gamma_logit, fe, batch))
      s, obj = policy_step(s, fe, batch, r, g)
      return i + 1, s, obj, k

    _, state, obj, _ = jax.lax.while_loop(lambda c: c[0] < n, body,
                                          (jnp.zeros((), jnp.int32), state,
                                           jnp.full((), jnp.nan), key))
    return state, obj

  def _hypergradient(theta, outer_params, v, old, beta, alpha, steps):
    fe_old = featurize(old[0])

    def inner(theta, outer_params, fe=fe_old):
      phi, logit = outer_params
      r, g = aligned(phi, logit, fe_old, old)
      return objective(theta, fe, old, r, g, beta)

    # The policy's plain product for the mixed term (forward mode in θ): reverse over
    # reverse would transpose features_t's product, the slow layout again.
    return bilevel.barfi_hypergradient(
        inner, theta, outer_params, v, neumann_steps=steps, neumann_alpha=alpha,
        forward_objective=lambda t, p: inner(t, p, (fe_old[0], None)))

  # Under vmap (seeds), one seed at a time: its Hessian batch's features (15 episodes
  # of 500 steps, 7.7 MB and their transpose) then stay in the CPU's cache across the
  # K Hessian-vector products.
  def hypergradient(theta, outer_params, v, old, beta, alpha, steps):
    f = jax.custom_batching.sequential_vmap(
        lambda *a: _hypergradient(*a, steps))
    return f(theta, outer_params, v, old, beta, alpha)

  def outer_step(state, key, recent, fe_recent):
    hp = state.hparams
    buf = state.buffer
    v = jax.grad(objective)(state.theta, fe_recent, recent, recent[2], hp["env_gamma"], 0.0)
    n_old = jnp.maximum(buf.size - delta, 1)
    j = jax.random.randint(key, (config.hess_mul * config.batch_size,), 0, n_old)
    old = take(buf, (buf.pos - delta - 1 - j) % n_buf)
    if config.outer == "first_order":
      steps, alpha = 0, jnp.ones(())
    else:
      steps, alpha = int(config.neumann_steps), hp["neumann_alpha"]
    (d_phi, d_logit), info = hypergradient(state.theta, (state.phi, state.gamma_logit), v,
                                           old, hp["entropy_coef"], alpha, steps)
    p_phi, p_logit = jax.grad(bilevel.barfi_penalty, argnums=(0, 1))(
        state.phi, state.gamma_logit, hp["reward_l2"], hp["gamma_l2"])
    ascent = (jax.tree.map(jnp.subtract, d_phi, p_phi), d_logit - p_logit)
    leaves = jax.tree.leaves(ascent)
    norm = jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in leaves))
    finite = jnp.isfinite(norm)
    neg = jax.tree.map(lambda x: jnp.where(finite, -x, 0.0), ascent)
    up_phi, reward_opt = _rmsprop(hp["reward_lr"]).update(neg[0], state.reward_opt, state.phi)
    up_logit, gamma_opt = _rmsprop(hp["gamma_lr"]).update(neg[1], state.gamma_opt,
                                                          state.gamma_logit)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
    state = state._replace(
        phi=keep(optax.apply_updates(state.phi, up_phi), state.phi),
        gamma_logit=keep(state.gamma_logit + up_logit, state.gamma_logit),
        reward_opt=keep(reward_opt, state.reward_opt),
        gamma_opt=keep(gamma_opt, state.gamma_opt))
    stats = dict(neumann_growth=info.growth, hypergrad_norm=norm,
                 outer_unstable=(~info.stable).astype(jnp.float32),
                 outer_skipped=(~finite).astype(jnp.float32))
    return state, stats

  # -- one update ---------------------------------------------------------------------

  def update(state: BarfiState):
    hp = state.hparams
    key, k_col, k_out, k_in = jax.random.split(state.key, 4)
    eps = jax.vmap(lambda k: collect(state.theta, k))(jax.random.split(k_col, delta))
    state = state._replace(buffer=store(state.buffer, eps), key=key)
    episodes = (state.update_step + 1) * delta
    recent = take(state.buffer, last(state.buffer))
    newest = jax.tree.map(lambda x: x[:, -1:], recent)
    fe_recent = featurize(recent[0])

    nan = jnp.full((), jnp.nan)
    outer_stats = dict(neumann_growth=nan, hypergrad_norm=nan, outer_unstable=nan,
                       outer_skipped=nan)
    if config.outer == "none":
      r = baseline_rewards(newest, config.reward, hp["env_gamma"])
      state, obj = policy_step(state, featurize(newest[0]), newest, r, hp["env_gamma"])
    else:
      # The official schedule: warm-up steps while episodes <= warmup; the first update
      # past it adds delta*inner_mul + first_mul inner steps; later updates do one outer
      # step and delta*inner_mul inner steps.
      past = episodes > warmup
      first = past & (episodes - delta <= warmup)
      do_outer = past & ~first

      def naive(policy):
        s, o = policy_step(
            state._replace(theta=policy[0], actor_opt=policy[1]), featurize(newest[0]),
            newest, baseline_rewards(newest, "naive", hp["env_gamma"]), hp["env_gamma"])
        return (s.theta, s.actor_opt), o.astype(jnp.float32)

      # Only the policy and its optimiser change (a select over the whole state would
      # read and write the buffer every update); skipped once the outer steps begin
      # (under vmap with a batched predicate, both branches run and one is selected).
      (theta, actor_opt), naive_obj = jax.lax.cond(
          do_outer, lambda policy: (policy, jnp.full((), jnp.nan, jnp.float32)), naive,
          (state.theta, state.actor_opt))
      state = state._replace(theta=theta, actor_opt=actor_opt)

      def outer_body(carry):
        i, s, _ = carry
        s, stats = outer_step(s, k_out, recent, fe_recent)
        return i + 1, s, stats

      _, state, outer_stats = jax.lax.while_loop(
          lambda c: c[0] < do_outer.astype(jnp.int32), outer_body,
          (jnp.zeros((), jnp.int32), state, outer_stats))
      n_inner = jnp.where(first, delta * config.inner_mul + config.first_mul,
                          jnp.where(do_outer, delta * config.inner_mul, 0))
      state, inner_obj = inner_steps(state, n_inner, k_in)
      obj = jnp.where(n_inner > 0, inner_obj, naive_obj)

    _, _, r_p, r_aux, mask, ended = recent
    feats = fe_recent[0].reshape(mask.shape + (num_features,))
    bias, weight = bilevel.barfi_reward_terms(state.phi, feats)
    n_valid = jnp.maximum(mask.sum(), 1.0)
    steps = mask.sum().astype(jnp.int32)
    state = state._replace(update_step=state.update_step + 1,
                           env_steps=state.env_steps + steps)
    length = mask.sum(0)
    terminated = length < horizon     # ended before the time limit (GridWorld: the goal)
    metrics = dict(
        episode_return=jnp.mean(r_p.sum(0)), episode_length=jnp.mean(length),
        aux_return=jnp.mean(r_aux.sum(0)), goal_rate=jnp.mean(terminated.astype(jnp.float32)),
        gamma=bilevel.barfi_discount(state.gamma_logit),
        aux_weight=jnp.sum(weight * mask) / n_valid, reward_bias=jnp.sum(bias * mask) / n_valid,
        primary_weight=(jnp.sum(bilevel.barfi_primary_weight(state.phi, feats) * mask)
                        / n_valid if learned else jnp.ones(())),
        policy_objective=obj, env_steps=state.env_steps,
        episodes=episodes.astype(jnp.float32), **outer_stats)
    return state, metrics

  def run_chunk(state, n):
    return jax.lax.scan(lambda s, _: update(s), state, None, n)

  return BarfiAgent(
      init=init, run_chunk=run_chunk, update=update, num_updates=num_updates,
      steps_per_update=delta * horizon, default_hparams=default_hparams,
      plot_metrics=("episode_return", "goal_rate", "gamma", "aux_weight"),
      finite_metrics=("episode_return",), vectorized=True, evaluate=None, env=env,
      features=features, policy_logits=policy_logits)


FAMILY = protocol.register(protocol.AgentFamily(
    name="barfi", default_config=default_config, make_agent=make_agent,
    validate_config=validate_config, hparam_names=HPARAMS))
