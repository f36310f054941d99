"""TD-JEPA: zero-shot agents trained from reward-free offline data (the runner's `td_jepa`).

"TD-JEPA: Latent-predictive Representations for Zero-Shot Reinforcement Learning",
Bagatella, Pirotta, Touati, Lazaric & Tirinzoni, ICLR 2026
(https://arxiv.org/abs/2510.00739; official PyTorch code github.com/marbaga/td_jepa_public,
`TDJEPAAgent.update`). The losses are `rlcore.latent`; the networks `rlcore.nets.latent`.

Training never steps an environment: each update samples `batch_size` transitions
(s, a, s', terminated) uniformly from a reward-free dataset (`rlcore.envs.offline`,
generated in-process on first use and reloaded, checked, afterwards) and takes

1. task latents z: Gaussian directions, a fraction `goal_ratio` replaced by projected
   task encodings ψ(s') of shuffled next states of the batch (`latent.sample_task_latents`);
2. next actions a' at the target encoding φ̄(s'): the actor's mean plus clipped noise
   (continuous actions), or argmax_a T̄_φ(φ̄(s'), a, z)ᵀz over the target predictor
   (discrete actions: no actor; the official code has continuous actions only, this
   greedy form is ours);
3. one Adam step per parameter group (φ, ψ, T_φ, T_ψ, learning rates `lr_phi`, `lr_psi`,
   `lr_predictor`) on `latent.td_jepa_loss` (asymmetric, or symmetric with
   `symmetric=True`: ψ ≡ φ, one predictor), then the running covariance of ψ;
4. one Adam step of the actor on `latent.td_jepa_actor_loss` with the updated encoder
   and predictor (continuous actions);
5. EMA updates of the target encoders (`tau_encoder`) and predictors (`tau_predictor`).

Seeds (and sweeps of the traced hyperparameters `HPARAMS`) share one dataset and run
vmapped in one program; a seed draws its own initialisation, batches and latents.

Zero-shot evaluation, at the end of every chunk of the runner (`chunk_updates`), for
the tasks `eval_tasks` of the environment family `env` (`rlcore.envs.pointmass`,
`rlcore.envs.gridworld`): a reward task's latent is the least-squares fit of its
rewards r(s') on ψ(s') of `eval_reward_samples` dataset next states
(`latent.infer_task_latent`); a goal task's is the projected ψ(goal)
(`latent.goal_task_latent`). The policy π_z (actor mean, or greedy over T_φ) then runs
`eval_episodes` episodes of the task's horizon; metrics `return/<task>` (undiscounted
return), `success/<goal task>` (reached the goal), `dense_return` (mean over the
reward tasks), `goal_success` (mean over the goal tasks). `evaluate(state)` repeats
this after training with `final_eval_episodes` episodes, for a uniformly random policy
too (`random_return/<task>`).

`env_steps` in the metrics counts gradient steps (no environment is stepped while
training); `steps_per_update` is 1.

The value of π_z as a potential for shaping is `zero_shot_value`.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rlcore import latent
from rlcore.agents import protocol
from rlcore.agents.validation import (check_choice, check_hparams, check_number,
                                      require_int, require_positive_ints)
from rlcore.nets import latent as latent_nets

ENV_FAMILIES = ("pointmass", "gridworld")
HPARAMS = ("lr_phi", "lr_psi", "lr_predictor", "lr_actor", "gamma", "phi_ortho",
           "psi_ortho", "tau_encoder", "tau_predictor", "goal_ratio")
GROUPS = ("phi", "psi", "phi_predictor", "psi_predictor")


def default_config():
  """Every TD-JEPA key, at the small point-mass settings of `configs/td_jepa_pointmass.py`.

  Returns:
    ConfigDict: env, dataset (dir, num_episodes, seed, policy), symmetric, the network
    sizes, batch_size, num_updates, the traced `HPARAMS`, actor_noise, noise_clip,
    pessimism, eval_tasks, eval_episodes, eval_reward_samples, final_eval_episodes.
  """
  import ml_collections
  c = ml_collections.ConfigDict()
  c.agent = "td_jepa"
  c.env = "pointmass"               # task family: pointmass or gridworld
  c.dataset = ml_collections.ConfigDict()
  c.dataset.dir = "runs/datasets"   # where generated datasets are saved and reloaded
  c.dataset.num_episodes = 1000     # reward-free episodes (of the family's horizon)
  c.dataset.seed = 0                # the dataset's seed (shared by the training seeds)
  c.dataset.policy = "sticky"       # exploration policy (rlcore.envs.offline.generate)
  c.symmetric = False               # ψ ≡ φ with one predictor (the symmetric variant)
  c.phi_dim = 32                    # state encoding size dφ
  c.psi_dim = 16                    # task encoding / latent size dψ = dz
  c.phi_hidden = (128, 128)         # φ encoder hidden widths (() : one linear layer)
  c.psi_hidden = (128, 128)         # ψ encoder hidden widths
  c.predictor_hidden = 256          # predictor width h (official 1024)
  c.predictor_embed_layers = 2      # layers of each predictor embedding
  c.predictor_hidden_layers = 1     # predictor layers after the embeddings
  c.ensemble = 2                    # predictor ensemble size
  c.actor_hidden = 256              # actor width (official 1024)
  c.actor_hidden_layers = 1
  c.batch_size = 256                # transitions per update (official DMC 1024)
  c.num_updates = 20_000            # gradient steps per run
  c.lr_phi = 1e-4                   # Adam learning rates (traced)
  c.lr_psi = 1e-4
  c.lr_predictor = 1e-4
  c.lr_actor = 1e-4
  c.gamma = 0.99                    # discount (official point mass 0.99, DMC 0.98)
  c.phi_ortho = 0.1                 # orthonormality coefficients (official DMC 0.1)
  c.psi_ortho = 0.1
  c.tau_encoder = 0.005             # EMA step sizes of the targets
  c.tau_predictor = 0.005
  c.goal_ratio = 0.5                # fraction of training latents that are encoded goals
  c.actor_noise = 0.2               # TD3 noise std of the actor (continuous actions)
  c.noise_clip = 0.3                # clip of that noise
  c.pessimism = 0.0                 # ensemble pessimism of targets and actor
  c.eval_tasks = ""                 # comma-separated tasks ("": every dense and goal task)
  c.eval_episodes = 4               # episodes per task at each chunk's evaluation
  c.eval_reward_samples = 10_000    # labelled next states for reward inference
  c.final_eval_episodes = 16        # episodes per task in `evaluate`
  return c


CONFIG_ARGS = ("", "small", "asymmetric", "symmetric")


def zero_shot_config(env: str, arg, *, seeds: int = 5, seed: int = 100):
  """The runner config shared by `configs/td_jepa_<env>.py` before their own settings.

  `arg`: None or "" (two groups, `asymmetric` and `symmetric`), "asymmetric" or
  "symmetric" (that one variant), "small" (both, 200 updates x 2 seeds on 100 episodes:
  a smoke test).
  """
  from rlcore import experiment
  if arg not in (None,) + CONFIG_ARGS:
    raise ValueError(f"configs/td_jepa_{env}.py: unknown argument {arg!r}; allowed: "
                     f"{', '.join(repr(a) for a in CONFIG_ARGS)}.")
  c = experiment.with_runner_defaults(default_config())
  c.env = env
  c.num_seeds, c.seed = seeds, seed
  if arg in ("asymmetric", "symmetric"):
    c.symmetric = arg == "symmetric"
  else:
    c.sweep_points = [{"symmetric": False, "_name": "asymmetric"},
                      {"symmetric": True, "_name": "symmetric"}]
  return c


def small_budget(c):
  """`c` at the smoke-test budget of the configs' "small" argument."""
  c.num_updates, c.chunk_updates, c.num_seeds = 200, 100, 2
  c.dataset.num_episodes = 100
  return c


def _suite(family: str):
  return importlib.import_module(f"rlcore.envs.{family}")


def eval_task_names(config) -> tuple[str, ...]:
  """The evaluation tasks: `config.eval_tasks`, or the family's dense and goal tasks."""
  suite = _suite(config.env)
  allowed = tuple(suite.DENSE_TASKS) + tuple(f"goal_{g}" for g in suite.GOALS)
  if not config.eval_tasks:
    return allowed
  names = tuple(t.strip() for t in str(config.eval_tasks).split(",") if t.strip())
  for t in names:
    if t not in allowed:
      raise ValueError(f"config.eval_tasks: unknown task {t!r} for env {config.env!r}; "
                       f"allowed: {', '.join(allowed)}.")
  return names


def validate_config(config) -> None:
  """Raises ValueError naming the key and what is allowed."""
  check_choice("env", config.env, ENV_FAMILIES)
  require_positive_ints(config, ("phi_dim", "psi_dim", "predictor_hidden", "ensemble",
                                 "actor_hidden", "batch_size", "num_updates",
                                 "eval_episodes", "eval_reward_samples",
                                 "final_eval_episodes"))
  require_int(config.dataset, "num_episodes", 1, prefix="dataset.")
  require_int(config.dataset, "seed", 0, prefix="dataset.")
  require_int(config, "predictor_embed_layers", 2)
  for name in ("predictor_hidden_layers", "actor_hidden_layers"):
    require_int(config, name, 0)
  if config.batch_size < 2:
    raise ValueError(f"config.batch_size must be at least 2 (the orthonormality loss), "
                     f"got {config.batch_size}.")
  for name in ("lr_phi", "lr_psi", "lr_predictor", "lr_actor"):
    check_number(config, name, 0.0, low_open=True)
  check_number(config, "gamma", 0.0, 1.0)
  for name in ("phi_ortho", "psi_ortho", "actor_noise", "noise_clip", "pessimism"):
    check_number(config, name, 0.0)
  for name in ("tau_encoder", "tau_predictor", "goal_ratio"):
    check_number(config, name, 0.0, 1.0)
  for name in ("phi_hidden", "psi_hidden"):
    sizes = tuple(config[name])
    if not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in sizes):
      raise ValueError(f"config.{name} must be a tuple of positive integers, got {sizes!r}.")
  from rlcore.envs import offline
  check_choice("dataset.policy", config.dataset.policy, offline.POLICIES)
  eval_task_names(config)


class TDJEPAState(NamedTuple):
  """Everything a TD-JEPA run carries between updates (a pytree; checkpointed whole)."""
  params: dict          # phi, psi, phi_predictor, psi_predictor (asymmetric), actor
  target: dict          # EMA targets of phi, psi, phi_predictor, psi_predictor
  opt_state: dict       # one Adam state per parameter group
  cov: jax.Array        # running second moment of ψ encodings [dψ, dψ]
  key: jax.Array
  update_step: jax.Array
  hparams: dict


class Model(NamedTuple):
  """The networks of one configured agent and the functions acting with them."""
  networks: latent.Networks
  phi_net: Any
  psi_net: Any
  phi_predictor_net: Any
  psi_predictor_net: Any
  actor_net: Any              # None for discrete actions
  num_actions: int            # 0 for continuous actions
  action_size: int

  @property
  def discrete(self) -> bool:
    return self.num_actions > 0

  def psi(self, params, obs):
    """Task encodings ψ(obs) (φ for the symmetric variant)."""
    if self.networks.symmetric:
      return self.networks.phi(params["phi"], obs)
    return self.networks.psi(params["psi"], obs)

  def q_all_actions(self, predictor_params, enc, z):
    """[B, A] zero-shot Q of every discrete action (ensemble mean)."""
    eye = jnp.eye(self.num_actions, dtype=jnp.float32)
    b = enc.shape[0]

    def one(a_onehot):
      preds = self.phi_predictor_net.apply(predictor_params, enc,
                                           jnp.broadcast_to(a_onehot, (b, self.num_actions)), z)
      return latent.latent_q(preds, z)

    return jax.vmap(one, out_axes=1)(eye)

  def act(self, params, obs, z):
    """π_z's action at `obs` [B, ...]: the actor's mean, or the greedy discrete action."""
    enc = self.networks.phi(params["phi"], obs)
    if self.discrete:
      return jnp.argmax(self.q_all_actions(params["phi_predictor"], enc, z), -1)
    return self.actor_net.apply(params["actor"], enc, z)

  def value(self, params, obs, z):
    """V_z(obs) = Q_z(obs, π_z(obs)) [B]."""
    enc = self.networks.phi(params["phi"], obs)
    if self.discrete:
      return jnp.max(self.q_all_actions(params["phi_predictor"], enc, z), -1)
    a = self.actor_net.apply(params["actor"], enc, z)
    return latent.latent_q(self.phi_predictor_net.apply(params["phi_predictor"], enc, a, z), z)


def make_model(config, observation_shape, action_spec) -> Model:
  """The encoders, predictors and actor of `config` for an environment's spaces."""
  discrete = action_spec.is_discrete
  num_actions = int(action_spec.num_actions) if discrete else 0
  action_size = num_actions if discrete else int(np.prod(action_spec.shape))
  pred = lambda out: latent_nets.Predictor(
      out=out, hidden=int(config.predictor_hidden),
      embed_layers=int(config.predictor_embed_layers),
      hidden_layers=int(config.predictor_hidden_layers), ensemble=int(config.ensemble))
  phi_net = latent_nets.Encoder(int(config.phi_dim), tuple(config.phi_hidden))
  symmetric = bool(config.symmetric)
  z_dim = int(config.phi_dim if symmetric else config.psi_dim)
  phi_pred = pred(z_dim)
  psi_net = None if symmetric else latent_nets.Encoder(int(config.psi_dim),
                                                       tuple(config.psi_hidden))
  psi_pred = None if symmetric else pred(int(config.phi_dim))
  actor = None if discrete else latent_nets.Actor(
      action_size, hidden=int(config.actor_hidden),
      embed_layers=int(config.predictor_embed_layers),
      hidden_layers=int(config.actor_hidden_layers))
  features = ((lambda a: jax.nn.one_hot(a, num_actions, dtype=jnp.float32)) if discrete
              else (lambda a: a))
  flat = lambda obs: obs.reshape(obs.shape[:1] + (-1,))
  networks = latent.Networks(
      phi=lambda p, obs: phi_net.apply(p, flat(obs)),
      psi=None if symmetric else (lambda p, obs: psi_net.apply(p, flat(obs))),
      phi_predictor=lambda p, e, a, z: phi_pred.apply(p, e, features(a), z),
      psi_predictor=None if symmetric else (
          lambda p, e, a, z: psi_pred.apply(p, e, features(a), z)))
  return Model(networks=networks, phi_net=phi_net, psi_net=psi_net,
               phi_predictor_net=phi_pred, psi_predictor_net=psi_pred, actor_net=actor,
               num_actions=num_actions, action_size=action_size)


def init_params(model: Model, key, obs_size: int, z_dim: int, phi_dim: int) -> dict:
  """Fresh online parameters of every network."""
  k = jax.random.split(key, 5)
  obs = jnp.zeros((1, obs_size))
  a = jnp.zeros((1, model.action_size))
  z = jnp.zeros((1, z_dim))
  params = {"phi": model.phi_net.init(k[0], obs),
            "phi_predictor": model.phi_predictor_net.init(k[1], jnp.zeros((1, phi_dim)), a, z)}
  if not model.networks.symmetric:
    params["psi"] = model.psi_net.init(k[2], obs)
    params["psi_predictor"] = model.psi_predictor_net.init(k[3], jnp.zeros((1, z_dim)), a, z)
  if not model.discrete:
    params["actor"] = model.actor_net.init(k[4], jnp.zeros((1, phi_dim)), z)
  return params


class Dataset(NamedTuple):
  """The reward-free transitions the agent trains on (device arrays)."""
  obs: jax.Array
  action: jax.Array
  next_obs: jax.Array
  terminated: jax.Array


def as_dataset(data: dict) -> Dataset:
  """The training arrays of a dataset dict (`rlcore.envs.offline` format). Only true
  terminations are kept: a time-limit truncation is an ordinary transition here."""
  return Dataset(obs=jnp.asarray(data["observation"], jnp.float32),
                 action=jnp.asarray(data["action"]),
                 next_obs=jnp.asarray(data["next_observation"], jnp.float32),
                 terminated=jnp.asarray(data["terminated"], bool))


def dataset_path(config) -> str:
  d = config.dataset
  return os.path.join(str(d.dir), f"{config.env}_{d.policy}_{int(d.num_episodes)}ep_"
                                  f"seed{int(d.seed)}.npz")


def load_dataset(config) -> dict:
  """The configured dataset, generated and saved on first use (`rlcore.envs.offline`)."""
  from rlcore.envs import offline
  d = config.dataset
  return offline.load_or_generate(dataset_path(config), config.env,
                                  num_episodes=int(d.num_episodes), seed=int(d.seed),
                                  policy=str(d.policy))


class TDJEPAAgent(NamedTuple):
  """The TD-JEPA agent: the `rlcore.agents.Agent` protocol plus its parts."""
  init: Callable
  run_chunk: Callable
  update: Callable
  num_updates: int
  steps_per_update: int
  default_hparams: Callable
  plot_metrics: tuple
  finite_metrics: tuple
  vectorized: bool
  evaluate: Optional[Callable]
  model: Model
  zero_shot: Callable          # (params, key, episodes) -> metrics dict of the eval tasks
  task_latent: Callable        # (params, task name) -> z [dψ]
  dataset: Dataset


class Learner(NamedTuple):
  """The training half of the agent, with no environment: what the benchmark times."""
  init: Callable               # (key, hparams=None, *, seed=0) -> TDJEPAState
  update: Callable             # (state, data=None) -> (state, metrics of one gradient step)
  default_hparams: Callable
  model: Model
  dataset: Dataset


def make_learner(config, observation_shape, action_spec, data: dict) -> Learner:
  """`init` and `update` of TD-JEPA on a dataset, for an observation shape and actions.

  Args:
    config: ConfigDict with `default_config()`'s keys.
    observation_shape: the observations' shape.
    action_spec: `rlcore.envs.ActionSpec` (discrete or continuous).
    data: dict of the `rlcore.envs.offline` format (observation, action,
      next_observation, terminated).
  """
  model = make_model(config, observation_shape, action_spec)
  obs_size = int(np.prod(observation_shape))
  symmetric = bool(config.symmetric)
  z_dim = int(config.phi_dim if symmetric else config.psi_dim)
  phi_dim = int(config.phi_dim)
  groups = ("phi", "phi_predictor") if symmetric else GROUPS
  lr_of = {"phi": "lr_phi", "psi": "lr_psi", "phi_predictor": "lr_predictor",
           "psi_predictor": "lr_predictor", "actor": "lr_actor"}
  tau_of = {"phi": "tau_encoder", "psi": "tau_encoder", "phi_predictor": "tau_predictor",
            "psi_predictor": "tau_predictor"}
  ds = as_dataset(data)
  batch_size = int(config.batch_size)
  adam = lambda lr: optax.adam(lr)

  def default_hparams():
    return {k: jnp.asarray(float(config[k]), jnp.float32) for k in HPARAMS}

  def init(key, hparams=None, *, seed=0):
    del seed
    return _init(key, check_hparams(hparams, default_hparams()))

  # Jitted even when called eagerly: the orthogonal initialiser's loops take 15 s to run
  # op by op at the default sizes and 5 s compiled (a 2-core CPU).
  @jax.jit
  def _init(key, hp):
    key, k_init = jax.random.split(key)
    params = init_params(model, k_init, obs_size, z_dim, phi_dim)
    target = {g: params[g] for g in groups}
    opt_state = {g: adam(1.0).init(p) for g, p in params.items()}
    return TDJEPAState(params=params, target=target, opt_state=opt_state,
                       cov=jnp.eye(z_dim, dtype=jnp.float32), key=key,
                       update_step=jnp.zeros((), jnp.int32), hparams=hp)

  def next_actions(params, target, phi_next, z, key):
    if model.discrete:
      return jnp.argmax(model.q_all_actions(target["phi_predictor"], phi_next, z), -1)
    mean = model.actor_net.apply(params["actor"], phi_next, z)
    return latent.noisy_action(mean, key, config.actor_noise, config.noise_clip)

  def update(state: TDJEPAState, data: Optional[Dataset] = None):
    """One gradient step on a batch of the learner's dataset (or of `data`, a `Dataset`
    of the same shapes)."""
    d = ds if data is None else data
    hp = state.hparams
    key, k_idx, k_z, k_next, k_actor = jax.random.split(state.key, 5)
    idx = jax.random.randint(k_idx, (batch_size,), 0, d.obs.shape[0])
    batch = latent.Batch(d.obs[idx], d.action[idx], d.next_obs[idx], d.terminated[idx])
    params, target = state.params, state.target
    goals = jax.lax.stop_gradient(model.psi(params, batch.next_obs))
    z = latent.sample_task_latents(k_z, goals, hp["goal_ratio"])
    phi_next = model.networks.phi(target["phi"], batch.next_obs)
    next_action = jax.lax.stop_gradient(next_actions(params, target, phi_next, z, k_next))
    online = {g: params[g] for g in groups}
    (loss, aux), grads = jax.value_and_grad(latent.td_jepa_loss, argnums=1, has_aux=True)(
        model.networks, online, target, batch, z, next_action, hp["gamma"], hp["phi_ortho"],
        hp["psi_ortho"], config.pessimism)
    new_params, opt_state = dict(params), dict(state.opt_state)
    for g in groups:
      upd, opt_state[g] = adam(hp[lr_of[g]]).update(grads[g], state.opt_state[g], params[g])
      new_params[g] = optax.apply_updates(params[g], upd)
    cov = latent.update_covariance(state.cov, aux["psi_encoding"])
    metrics = dict(loss=loss, phi_loss=aux["phi_loss"], phi_ortho_loss=aux["phi_ortho_loss"],
                   phi_rank=latent.effective_rank(aux["phi_encoding"]))
    if not symmetric:
      metrics.update(psi_loss=aux["psi_loss"], psi_ortho_loss=aux["psi_ortho_loss"],
                     psi_rank=latent.effective_rank(aux["psi_encoding"]))
    if not model.discrete:
      phi_enc = model.networks.phi(new_params["phi"], batch.obs)
      (actor_loss, q), g_actor = jax.value_and_grad(
          lambda p: latent.td_jepa_actor_loss(
              model.actor_net.apply, p, model.phi_predictor_net.apply,
              new_params["phi_predictor"], phi_enc, z, k_actor, config.actor_noise,
              config.noise_clip, config.pessimism), has_aux=True)(params["actor"])
      upd, opt_state["actor"] = adam(hp["lr_actor"]).update(
          g_actor, state.opt_state["actor"], params["actor"])
      new_params["actor"] = optax.apply_updates(params["actor"], upd)
      metrics.update(actor_loss=actor_loss, q=q)
    new_target = {g: latent.ema_update(target[g], new_params[g], hp[tau_of[g]])
                  for g in groups}
    step = state.update_step + 1
    metrics["env_steps"] = step
    return TDJEPAState(params=new_params, target=new_target, opt_state=opt_state, cov=cov,
                       key=key, update_step=step, hparams=hp), metrics

  return Learner(init=init, update=update, default_hparams=default_hparams, model=model,
                 dataset=ds)


def make_agent(config, *, data: Optional[dict] = None, constrain_batch=None) -> TDJEPAAgent:
  """Builds the TD-JEPA agent (see `configs/td_jepa_pointmass.py`).

  Args:
    config: ConfigDict with `default_config()`'s keys.
    data: a dataset dict (`rlcore.envs.offline` format) to train on instead of the
      configured one.
    constrain_batch: unused (no environment batch to shard).

  Returns:
    A `TDJEPAAgent`.
  """
  del constrain_batch
  validate_config(config)
  from rlcore import envs
  suite = _suite(config.env)
  tasks = eval_task_names(config)
  data = load_dataset(config) if data is None else data
  probe = envs.make(f"{config.env}/{suite.DENSE_TASKS[0]}")
  learner = make_learner(config, probe.observation_shape, probe.action_spec, data)
  model, ds, update = learner.model, learner.dataset, learner.update
  symmetric = bool(config.symmetric)
  n_data = int(ds.obs.shape[0])
  n_label = min(int(config.eval_reward_samples), n_data)
  label_idx = jnp.asarray(np.random.default_rng(0).permutation(n_data)[:n_label])
  label_next = ds.next_obs[label_idx]

  def task_latent(params, task: str):
    """z of an evaluation task: inferred from labelled rewards, or a goal's encoding."""
    if task.startswith("goal_"):
      goal = jnp.asarray(suite.goal_observation(task[len("goal_"):]), jnp.float32)[None]
      return latent.goal_task_latent(model.psi(params, goal))[0]
    rewards = suite.reward(task, label_next)
    return latent.infer_task_latent(model.psi(params, label_next), rewards)

  eval_env = {t: envs.make(f"{config.env}/{t}") for t in tasks}
  horizon = int(suite.HORIZON)

  def rollout_returns(task, act, key, episodes):
    """Undiscounted returns (and goal success) of `act(obs [B], key) -> actions`."""
    env = eval_env[task]
    k_reset, k_act = jax.random.split(key)
    s0 = jax.vmap(env.reset)(jax.random.split(k_reset, episodes))

    def step(carry, k):
      s, ret, alive, hit = carry
      s = jax.vmap(env.step)(s, act(s.obs, k))
      ret = ret + jnp.where(alive, s.reward, 0.0)
      hit = hit | (alive & suite.success(task, s.next_obs))
      alive = alive & ~(s.terminated | s.truncated)
      return (s, ret, alive, hit), None

    init = (s0, jnp.zeros(episodes), jnp.ones(episodes, bool), jnp.zeros(episodes, bool))
    (_, ret, _, hit), _ = jax.lax.scan(step, init, jax.random.split(k_act, horizon))
    return ret, hit

  def zero_shot(params, key, episodes: int):
    out = {}
    keys = jax.random.split(key, len(tasks))
    dense, goal = [], []
    for k, task in zip(keys, tasks):
      z = task_latent(params, task)
      act = lambda obs, _, z=z: model.act(params, obs,
                                          jnp.broadcast_to(z, (obs.shape[0],) + z.shape))
      ret, hit = rollout_returns(task, act, k, episodes)
      out[f"return/{task}"] = jnp.mean(ret)
      if task.startswith("goal_"):
        out[f"success/{task}"] = jnp.mean(hit.astype(jnp.float32))
        goal.append(out[f"success/{task}"])
      else:
        dense.append(out[f"return/{task}"])
    out["dense_return"] = jnp.mean(jnp.stack(dense)) if dense else jnp.float32(jnp.nan)
    out["goal_success"] = jnp.mean(jnp.stack(goal)) if goal else jnp.float32(jnp.nan)
    return out

  def run_chunk(state, n):
    state, metrics = jax.lax.scan(lambda s, _: update(s), state, None, n)
    key, k_eval = jax.random.split(state.key)
    evals = zero_shot(state.params, k_eval, int(config.eval_episodes))
    nan = jnp.full((n,), jnp.nan, jnp.float32)
    metrics = dict(metrics, **{k: nan.at[-1].set(v) for k, v in evals.items()})
    return state._replace(key=key), metrics

  def random_returns(key, episodes):
    out = {}
    for k, task in zip(jax.random.split(key, len(tasks)), tasks):
      def act(obs, kk):
        if model.discrete:
          return jax.random.randint(kk, obs.shape[:1], 0, model.num_actions)
        return jax.random.uniform(kk, obs.shape[:1] + (model.action_size,), minval=-1.0,
                                  maxval=1.0)
      ret, hit = rollout_returns(task, act, k, episodes)
      out[f"random_return/{task}"] = jnp.mean(ret)
      if task.startswith("goal_"):
        out[f"random_success/{task}"] = jnp.mean(hit.astype(jnp.float32))
    return out

  final_eval = jax.jit(lambda params, key: zero_shot(params, key,
                                                     int(config.final_eval_episodes)))
  final_random = jax.jit(lambda key: random_returns(key, int(config.final_eval_episodes)))

  def evaluate(state):
    key = jax.random.PRNGKey(12345)
    out = {k: float(v) for k, v in final_eval(state.params, key).items()}
    out.update({k: float(v) for k, v in final_random(key).items()})
    return out

  finite = ("loss", "phi_loss") + (() if symmetric else ("psi_loss",)) + (
      () if model.discrete else ("actor_loss",))
  return TDJEPAAgent(
      init=learner.init, run_chunk=run_chunk, update=update,
      num_updates=int(config.num_updates), steps_per_update=1,
      default_hparams=learner.default_hparams,
      plot_metrics=("dense_return", "goal_success", "loss", "phi_rank"),
      finite_metrics=finite, vectorized=True, evaluate=evaluate, model=model,
      zero_shot=zero_shot, task_latent=task_latent, dataset=ds)


def zero_shot_value(model: Model, params: dict, z: jax.Array) -> Callable:
  """Φ(obs) = V_z(obs) = Q_z(obs, π_z(obs)): a TD-JEPA policy's zero-shot value for the
  task with latent z, as a potential for `rlcore.potential_shaping` (obs [..., obs_size]
  -> [...])."""
  z = jnp.asarray(z, jnp.float32)

  def phi(obs):
    lead = obs.shape[:-1]
    flat = obs.reshape((-1, obs.shape[-1]))
    v = model.value(params, flat, jnp.broadcast_to(z, (flat.shape[0],) + z.shape))
    return v.reshape(lead)

  return phi


def load_potential(source) -> Callable:
  """The potential Φ(obs) = V_z(obs) of a trained TD-JEPA run, normalised to [0, 1].

  Runs `rlcore.experiment.run` on the source config and workdir first (it skips a
  finished run and resumes an interrupted one), then reads run `source.run` of group
  `source.group`, computes the latent z of `source.task` (`task_latent`) and returns
  Φ(obs) = (V_z(obs) − lo) / (hi − lo), lo and hi the minimum and maximum of V_z over the
  run's labelled dataset next states, so `shaping.scale` = 1 puts Φ's range at 1 (the
  sparse goal reward's size).

  Args:
    source: ConfigDict with workdir, config ("path[:arg]"), group, run, task.

  Returns:
    obs [..., obs_size] -> [...] float32.
  """
  from rlcore import experiment
  params, agent = experiment.trained_run(
      source.config, source.workdir, source.get("group", ""), source.get("run", 0),
      agent="td_jepa", key="shaping.td_jepa")
  params = jax.tree.map(jnp.asarray, params)
  z = jax.jit(agent.task_latent, static_argnums=1)(params, str(source.task))
  value = zero_shot_value(agent.model, params, z)
  sample = agent.dataset.next_obs[:10_000]
  v = np.asarray(jax.jit(value)(sample))
  lo, hi = float(v.min()), float(v.max())
  span = max(hi - lo, 1e-6)
  return lambda obs: (value(obs) - lo) / span


FAMILY = protocol.register(protocol.AgentFamily(
    name="td_jepa", default_config=default_config, make_agent=make_agent,
    validate_config=validate_config, hparam_names=HPARAMS))
