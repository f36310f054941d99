"""ORPO: PPO on a proxy reward, regularised toward a frozen reference policy.

"Correlated Proxies: A New Definition and Improved Mitigation for Reward Hacking",
Laidlaw, Singhal & Dragan, ICLR 2025 (https://arxiv.org/abs/2403.03185; official code
github.com/cassidylaidlaw/orpo, `ORPO.training_step`). Each update:

1. rollouts of the current policy π (`num_envs` envs) and of the reference π_ref
   (`reference_envs` envs; the official code gives half its workers to the reference),
   both `num_steps` long;
2. the discriminator d(s, a) (`rlcore.nets.mlp.Discriminator` on obs ⊕ one-hot action,
   or obs only with `occupancy="state"`) takes `disc_epochs` passes of Adam on
   `rlcore.discriminator_loss` (π's steps labelled 1, π_ref's 0), *before* it scores
   this batch (a stale discriminator has the wrong sign early on);
3. the proxy rewards are augmented, r' = r̃ − λ · D(d) (`rlcore.occupancy_penalty`,
   `rlcore.augment_rewards`, clipped at `penalty_clip`), with D by `regularizer`:
   `kl` d, `chi2` e^d − 1, `sqrt_chi2` (e^d − 1)/sqrt(χ̂²), `tv` sign d;
4. GAE on the augmented rewards, then PPO on π's steps only (`ppo.make_learner`).

`regularizer="action_kl"` / `"action_chi2"` is the action-distribution baseline
instead: no discriminator, λ/(1 − γ) · E_s[D(π(·|s) ‖ π_ref(·|s))] is added to the PPO
loss (`rlcore.categorical_kl`, `rlcore.categorical_chi2`); `"none"` is plain PPO on
the proxy. λ is the traced hyperparameter `reg_coef`, so a coefficient sweep and the
seeds run in one vmapped call.

The reference policy is the policy of a PPO run of the runner, read from its
checkpoints (`reference.workdir`, `reference.config`, run `reference.run`); when that
workdir holds no finished run, `make_agent` trains it first with the runner. The
reference acts with probability `reference.epsilon` uniformly at random (the official
tomato reference is PPO on the true reward with ε = 0.1 random actions; here ε is
mixed into the frozen policy when it acts, π_ref = (1 − ε) π_θref + ε / |A|, and
every divergence is to that mixture).

Metrics: `episode_return` (proxy), `shaped_return` (augmented), `true_return` when the
env reports its true reward (`env.rewards_of`, the tomato gridworld),
`reference_true_return`, `disc_loss`, `disc_accuracy`, `kl_estimate` (E_π[d]),
`chi2_estimate` (the trimmed χ̂²), `penalty` (mean λ · D) and the PPO losses. On the
tomato gridworld `evaluate` computes the final policy's exact true and proxy returns
and the exact χ², KL and TV between its state-action occupancy and the reference's
(`rlcore.envs.tomato.TomatoMDP`, undiscounted, as the on-policy samples estimate).
"""

from __future__ import annotations

import os
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

import rlcore
from rlcore.agents import control, ppo, protocol
from rlcore.agents.validation import (check_choice, check_number, require_int,
                                      require_positive_ints)
from rlcore.nets import mlp

REGULARIZERS = ("none", "action_kl", "action_chi2") + rlcore.occupancy.PENALTIES
OCCUPANCIES = ("state_action", "state")
HPARAMS = ppo.HPARAMS + ("reg_coef", "disc_lr")


def default_config():
  """Every ORPO config key: PPO's, plus the regulariser, discriminator and reference.

  Returns:
    ConfigDict: `ppo.default_config()`'s keys (at this module's tomato settings) plus
    regularizer, reg_coef, occupancy, reference_envs, disc_hidden, disc_lr,
    disc_epochs, disc_minibatches, penalty_clip, max_logit, trim_frac,
    init_from_reference and reference (workdir, config, group, run, epsilon).
  """
  import ml_collections
  c = ppo.default_config()
  c.agent = "orpo"                  # the agent family
  c.env_name = "tomato"             # the proxy-reward task
  c.num_envs = 16                   # current-policy envs
  c.num_steps = 100                 # rollout length (one tomato episode)
  c.total_timesteps = 240_000       # current-policy env steps per run (150 updates)
  c.update_epochs = 8
  c.num_minibatches = 8
  c.anneal_lr = False
  c.lr = 1e-3
  c.gamma = 0.99
  c.gae_lambda = 0.98
  c.clip_eps = 0.05
  c.max_grad_norm = 0.1
  c.vf_coef = 0.01
  c.ent_coef = 0.01
  c.regularizer = "sqrt_chi2"       # none, action_kl, action_chi2, kl, chi2, sqrt_chi2, tv
  c.reg_coef = 0.01                 # λ (traced: a coefficient sweep is vmapped)
  c.occupancy = "state_action"      # discriminator input: state_action or state
  c.reference_envs = 16             # reference-policy envs per update (occupancy kinds)
  c.disc_hidden = (64, 64)          # discriminator MLP widths (LeakyReLU; official 256, 256)
  c.disc_lr = 1e-3                  # discriminator Adam learning rate (traced)
  c.disc_epochs = 8                 # discriminator passes over each update's batch
  c.disc_minibatches = 8            # minibatches per discriminator pass
  c.penalty_clip = 1000.0           # bound on |λ · D| per step (official tomato: 1000)
  c.max_logit = 50.0                # cap on d before exp
  c.trim_frac = 0.01                # trimmed fraction at each end of χ̂²
  c.init_from_reference = False     # start π from the reference's parameters
  c.reference = ml_collections.ConfigDict()
  c.reference.workdir = "runs/orpo_reference"           # the reference run's workdir
  c.reference.config = "configs/orpo_tomato.py:reference"  # its config (path[:arg])
  c.reference.group = ""            # its group ("" without a structural sweep)
  c.reference.run = 0               # which of its runs (point x seed index)
  c.reference.epsilon = 0.1         # probability the reference acts uniformly at random
  return c


def _needs_discriminator(config) -> bool:
  return config.regularizer in rlcore.occupancy.PENALTIES


def validate_config(config) -> None:
  """Raises ValueError naming the key and what is allowed."""
  ppo.validate_config(config)
  check_choice("regularizer", config.regularizer, REGULARIZERS)
  check_choice("occupancy", config.occupancy, OCCUPANCIES)
  require_positive_ints(config, ("reference_envs", "disc_epochs", "disc_minibatches"))
  check_number(config, "reg_coef")
  check_number(config, "disc_lr", 0.0, low_open=True)
  check_number(config, "penalty_clip", 0.0, low_open=True)
  check_number(config, "max_logit", 0.0, low_open=True)
  check_number(config, "trim_frac", 0.0, 0.49)
  check_number(config.reference, "epsilon", 0.0, 0.99, prefix="reference.")
  require_int(config.reference, "run", 0, prefix="reference.")
  if _needs_discriminator(config):
    for name, n in (("num_envs", config.num_envs), ("reference_envs", config.reference_envs)):
      if (n * config.num_steps) % config.disc_minibatches:
        raise ValueError(
            f"{name} * num_steps = {n * config.num_steps} is not divisible by "
            f"disc_minibatches = {config.disc_minibatches}; choose a divisor.")
  sizes = tuple(config.disc_hidden)
  if not sizes or not all(isinstance(h, int) and not isinstance(h, bool) and h > 0
                          for h in sizes):
    raise ValueError(f"config.disc_hidden must be a non-empty tuple of positive integers, "
                     f"got {sizes!r}.")
  if config.shaping.chain:
    raise ValueError(f"config.shaping.chain must be empty for ORPO (the rewards are "
                     f"augmented by the regulariser), got {config.shaping.chain!r}.")


class Reference(NamedTuple):
  """The frozen reference policy: its network and parameters (one run's)."""
  network: Any
  params: Any


def load_reference(config) -> Reference:
  """The reference policy of `config.reference`, training it first if needed.

  Runs `rlcore.experiment.run` on the reference config and workdir (which skips a
  finished run and resumes an interrupted one), then reads the last checkpoint's
  parameters of run `reference.run`.
  """
  from rlcore import experiment
  ref = config.reference
  params, agent = experiment.trained_run(ref.config, ref.workdir, ref.group, ref.run,
                                         agent="ppo", key="reference")
  return Reference(network=agent.network, params=params)


def mixed_logits(logits, epsilon, num_actions: int):
  """log((1 − ε) softmax(logits) + ε / A): a policy that acts at random w.p. ε."""
  logp = jax.nn.log_softmax(logits, -1)
  if epsilon == 0:
    return logp
  return jnp.logaddexp(logp + np.log1p(-epsilon), np.log(epsilon / num_actions))


class _EpsilonPolicy:
  """The reference network with ε-random actions mixed into its head."""

  def __init__(self, network, epsilon: float, num_actions: int):
    self.network, self.epsilon, self.num_actions = network, epsilon, num_actions

  def apply(self, params, obs, critic: bool = True):
    head, value = self.network.apply(params, obs, critic=critic)
    return mixed_logits(head, self.epsilon, self.num_actions), value


class ORPOState(NamedTuple):
  """Everything an ORPO run carries between updates (a pytree; checkpointed whole)."""
  params: Any               # current policy's network parameters
  opt_state: Any
  env_state: Any            # current policy's batched env state
  shaping_state: Any        # unused (an empty shaping chain)
  key: jax.Array
  update_step: jax.Array
  hparams: dict
  episode_stats: Any        # EpisodeTracker of the proxy (and augmented) return
  true_stats: Any           # EpisodeTracker of the true return (NaN without one)
  ref_params: Any           # frozen reference parameters
  ref_env_state: Any        # reference rollouts' env state (occupancy regularisers)
  ref_stats: Any            # EpisodeTracker of the reference's true return
  disc_params: Any
  disc_opt_state: Any


def make_agent(config, *, env=None, reference: Optional[Reference] = None,
               constrain_batch: Optional[Callable] = None) -> control.ControlAgent:
  """Builds the ORPO agent from a config (see `configs/orpo_tomato.py`).

  Args:
    config: ConfigDict with `default_config()`'s keys.
    env: a batched environment to use instead of `control.make_env(config)`.
    reference: the reference policy (default: `load_reference(config)`).
    constrain_batch: applied to the current policy's batched env state after reset
      and every step.

  Returns:
    A `control.ControlAgent` (the `rlcore.agents.Agent` protocol).
  """
  validate_config(config)
  env = control.make_env(config) if env is None else env
  if not env.action_spec.is_discrete:
    raise ValueError(f"ORPO here supports discrete actions only; {config.env_name!r} has "
                     f"continuous actions.")
  num_actions = env.action_spec.num_actions
  network, dist = control.make_network(env, config)
  reference = load_reference(config) if reference is None else reference
  ref_policy = _EpsilonPolicy(reference.network, float(config.reference.epsilon), num_actions)
  if config.init_from_reference:
    shapes = lambda p: jax.tree.map(np.shape, p)
    template = network.init(jax.random.PRNGKey(0), jnp.zeros(env.observation_shape))
    if shapes(template) != shapes(reference.params):
      raise ValueError("config.init_from_reference needs the reference's network: set "
                       "hidden_sizes and activation to the reference config's.")
  constrain = constrain_batch or (lambda s: s)
  kind = config.regularizer
  occupancy_kind = _needs_discriminator(config)
  num_steps = config.num_steps
  batch_size = config.num_envs * num_steps
  epochs = config.update_epochs
  num_updates = config.total_timesteps // batch_size
  unwrapped = env.unwrapped
  rewards_of = getattr(unwrapped, "rewards_of", None)
  ref_env = control.make_env(_with_envs(config, config.reference_envs))
  disc = mlp.Discriminator(tuple(config.disc_hidden))
  obs_size = int(np.prod(env.observation_shape))
  disc_in = obs_size + (num_actions if config.occupancy == "state_action" else 0)
  make_optimizer = lambda hp: control.optimizer(
      hp, num_updates=num_updates, steps_per_update=epochs * config.num_minibatches,
      anneal=bool(config.anneal_lr), eps=float(config.get("adam_eps", 1e-5)))
  disc_optimizer = lambda hp: optax.inject_hyperparams(optax.adam)(learning_rate=hp["disc_lr"])

  def features(obs, action):
    x = obs.reshape(obs.shape[:2] + (-1,))
    if config.occupancy == "state":
      return x
    return jnp.concatenate([x, jax.nn.one_hot(action, num_actions, dtype=x.dtype)], -1)

  def init(key, hparams):
    key, ref_key, disc_key = jax.random.split(key, 3)
    base = control.init_state(key, hparams, config=config, env=env, network=network,
                              optimizer=make_optimizer(hparams), constrain=constrain)
    params = base.params
    if config.init_from_reference:
      params = jax.tree.map(jnp.asarray, reference.params)
    disc_params = disc.init(disc_key, jnp.zeros((disc_in,), jnp.float32))
    return ORPOState(
        params=params, opt_state=base.opt_state, env_state=base.env_state,
        shaping_state=base.shaping_state, key=base.key, update_step=base.update_step,
        hparams=base.hparams, episode_stats=base.episode_stats,
        true_stats=control.EpisodeTracker.init(config.num_envs),
        ref_params=jax.tree.map(jnp.asarray, reference.params),
        ref_env_state=ref_env.reset(ref_key),
        ref_stats=control.EpisodeTracker.init(config.reference_envs),
        disc_params=disc_params, disc_opt_state=disc_optimizer(hparams).init(disc_params))

  rollout = control.make_rollout(env, network, dist, num_steps, constrain)
  ref_rollout = control.make_rollout(ref_env, ref_policy, dist, num_steps, lambda s: s)

  def action_divergence(head, mb, hp):
    fn = rlcore.categorical_kl if kind == "action_kl" else rlcore.categorical_chi2
    div = jnp.mean(fn(head, mb["ref_logits"]))
    return hp["reg_coef"] / (1.0 - hp["gamma"]) * div, dict(action_divergence=div)

  learn = ppo.make_learner(
      network, dist, num_minibatches=config.num_minibatches, epochs=epochs,
      extra_loss=action_divergence if kind in ("action_kl", "action_chi2") else None)

  def train_discriminator(disc_params, opt_state, x_pi, valid_pi, x_ref, valid_ref, hp, key):
    opt = disc_optimizer(hp)
    n_mb = config.disc_minibatches
    flat = lambda x: x.reshape((-1,) + x.shape[2:])
    x_pi, valid_pi, x_ref, valid_ref = map(flat, (x_pi, valid_pi, x_ref, valid_ref))

    def loss_fn(p, mb):
      xp, vp, xr, vr = mb
      d_pi, d_ref = disc.apply(p, xp), disc.apply(p, xr)
      loss = rlcore.discriminator_loss(d_pi, d_ref, vp, vr)
      right = (rlcore.losses.masked_mean((d_pi > 0).astype(jnp.float32), vp)
               + rlcore.losses.masked_mean((d_ref < 0).astype(jnp.float32), vr))
      return loss, 0.5 * right

    def step(carry, mb):
      p, s = carry
      (loss, acc), g = jax.value_and_grad(loss_fn, has_aux=True)(p, mb)
      updates, s = opt.update(g, s, p)
      return (optax.apply_updates(p, updates), s), (loss, acc)

    def epoch(carry, k):
      k_pi, k_ref = jax.random.split(k)
      split = lambda x, perm: x[perm].reshape((n_mb, -1) + x.shape[1:])
      p_pi = jax.random.permutation(k_pi, x_pi.shape[0])
      p_ref = jax.random.permutation(k_ref, x_ref.shape[0])
      mbs = (split(x_pi, p_pi), split(valid_pi, p_pi), split(x_ref, p_ref),
             split(valid_ref, p_ref))
      return jax.lax.scan(step, carry, mbs)

    (disc_params, opt_state), (losses, acc) = jax.lax.scan(
        epoch, (disc_params, opt_state), jax.random.split(key, config.disc_epochs))
    return disc_params, opt_state, losses[-1].mean(), acc[-1].mean()

  nan = jnp.full((), jnp.nan, jnp.float32)

  def update(state: ORPOState):
    hp = state.hparams
    opt = make_optimizer(hp)
    env_state, key, traj = rollout(state.params, state.env_state, state.key)
    t = traj.transition
    proxy = t.reward
    metrics = {}
    ref_env_state, ref_stats = state.ref_env_state, state.ref_stats
    disc_params, disc_opt_state = state.disc_params, state.disc_opt_state
    if occupancy_kind:
      ref_env_state, key, ref_traj = ref_rollout(state.ref_params, ref_env_state, key)
      rt = ref_traj.transition
      key, disc_key = jax.random.split(key)
      disc_params, disc_opt_state, disc_loss, disc_acc = train_discriminator(
          disc_params, disc_opt_state, features(t.obs, t.action), t.valid,
          features(rt.obs, rt.action), rt.valid, hp, disc_key)
      logits = disc.apply(disc_params, features(t.obs, t.action))
      distance, stats = rlcore.occupancy_penalty(
          logits, t.valid, kind, trim_frac=config.trim_frac, max_logit=config.max_logit)
      reward = rlcore.augment_rewards(proxy, distance, hp["reg_coef"], config.penalty_clip)
      metrics.update(disc_loss=disc_loss, disc_accuracy=disc_acc, kl_estimate=stats["kl"],
                     chi2_estimate=stats["chi2_trimmed"])
      if rewards_of is not None:
        ref_true, _ = rewards_of(rt.next_obs)
        ref_stats, ref_m = ref_stats.update(ref_traj, ref_true)
        metrics["reference_true_return"] = ref_m["shaped_return"]
    else:
      reward = proxy
    metrics["penalty"] = rlcore.losses.masked_mean(proxy - reward, t.valid)
    advantage = rlcore.gae(reward, traj.value, t.terminated, t.truncated, hp["gamma"],
                           hp["gae_lambda"], next_values=traj.next_value,
                           method=config.gae_method)
    data = dict(obs=traj.obs, action=t.action, log_prob=traj.log_prob, value=traj.value,
                advantage=advantage, target=advantage + traj.value)
    if kind in ("action_kl", "action_chi2"):
      data["ref_logits"] = ref_policy.apply(state.ref_params, traj.obs, critic=False)[0]
    key, learn_key = jax.random.split(key)
    params, opt_state, losses = learn(state.params, state.opt_state, data, hp, learn_key, opt)
    stats, ep_metrics = state.episode_stats.update(traj, reward)
    true_stats = state.true_stats
    if rewards_of is not None:
      true_stats, true_m = true_stats.update(traj, rewards_of(t.next_obs)[0])
      metrics["true_return"] = true_m["shaped_return"]
    metrics = dict(ep_metrics, **metrics, **jax.tree.map(jnp.mean, losses),
                   env_steps=(state.update_step + 1) * batch_size)
    if "reference_true_return" not in metrics and rewards_of is not None:
      metrics["reference_true_return"] = nan
    return ORPOState(
        params=params, opt_state=opt_state, env_state=env_state,
        shaping_state=state.shaping_state, key=key, update_step=state.update_step + 1,
        hparams=hp, episode_stats=stats, true_stats=true_stats,
        ref_params=state.ref_params, ref_env_state=ref_env_state, ref_stats=ref_stats,
        disc_params=disc_params, disc_opt_state=disc_opt_state), metrics

  agent = control.assemble(config, env=env, network=network, dist=dist,
                           hparam_names=HPARAMS, init=init, update=update,
                           steps_per_update=batch_size,
                           finite_metrics=("loss", "actor_loss", "value_loss", "entropy"))
  plot = ("true_return", "episode_return") if rewards_of is not None else ("episode_return",)
  evaluate = agent.evaluate
  if _is_tomato(unwrapped):
    evaluate = _exact_evaluation(unwrapped, network, ref_policy)
  return agent._replace(plot_metrics=plot + ("chi2_estimate",) * occupancy_kind,
                        evaluate=evaluate)


def _with_envs(config, num_envs: int):
  c = config.copy_and_resolve_references()
  c.num_envs = int(num_envs)
  return c


def _is_tomato(env) -> bool:
  from rlcore.envs import tomato
  return isinstance(env, tomato.TomatoEnv)


def _exact_evaluation(env, network, ref_policy) -> Callable:
  """`evaluate(state)`: exact returns and occupancy divergences on the tomato MDP."""
  from rlcore.envs import tomato
  mdp = tomato.TomatoMDP(env)
  obs = jnp.asarray(env.observations(mdp.num_states))
  table = jax.jit(lambda net, p: jax.nn.softmax(net.apply(p, obs, critic=False)[0], -1),
                  static_argnums=0)
  cache = {}

  def reference_terms(ref_params):
    key = tuple(np.asarray(x).tobytes() for x in jax.tree.leaves(ref_params))
    if key not in cache:
      policy = np.asarray(table(ref_policy, ref_params), np.float64)
      policy /= policy.sum(1, keepdims=True)
      cache.clear()
      cache[key] = (mdp.occupancy(policy), mdp.returns(policy))
    return cache[key]

  def evaluate(state):
    policy = np.asarray(table(network, state.params), np.float64)
    policy /= policy.sum(1, keepdims=True)
    ref_occ, ref_ret = reference_terms(state.ref_params)
    ret = mdp.returns(policy)
    div = tomato.divergences(mdp.occupancy(policy), ref_occ)
    return {"exact_true_return": ret["true"], "exact_proxy_return": ret["proxy"],
            "exact_chi2": div["chi2"], "exact_kl": div["kl"], "exact_tv": div["tv"],
            "reference_exact_true_return": ref_ret["true"],
            "reference_exact_proxy_return": ref_ret["proxy"]}

  return evaluate


def make_train(config, **kwargs) -> Callable:
  """`train(key, hparams=None) -> (final ORPOState, metrics)`, pure (see `ppo.make_train`)."""
  return control.make_train_fn(make_agent(config, **kwargs))


FAMILY = protocol.register(protocol.AgentFamily(
    name="orpo", default_config=default_config, make_agent=make_agent,
    validate_config=validate_config, hparam_names=HPARAMS,
    batch_size=control.batch_size))
