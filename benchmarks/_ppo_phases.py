"""Per-phase timing of one PPO update, rlcore and PureJaxRL, at the same sizes.

Used by `ppo_throughput.py --part=phases`. Each phase is jitted on its own (vmapped over
the seeds) and timed on the outputs of the phase before it; the median of `reps` calls
after a warm-up is reported, in ms per update (all seeds together).

rlcore's phases are its own functions (`rlcore.agents.control` and `ppo.make_learner`).
PureJaxRL's `make_train` is one closure, so its phases are rebuilt here from its own
module's parts (`ActorCritic`, `Transition`, its wrappers `FlattenObservationWrapper`
and `LogWrapper`, the gymnax env it trains on, its optax chain and flax `TrainState`)
in the order and form of its `_update_step`: the rollout scan (actor and critic every
step, `LogWrapper`'s episode statistics inside the env step), the critic on the last
observation, GAE as a reverse scan with unroll 16, and `UPDATE_EPOCHS` epochs of
`jax.random.permutation` + `jnp.take` + a scan of minibatch gradient steps with
`TrainState.apply_gradients`. The sum of its phases is printed next to the per-update
time of its whole `make_train` run, which checks the rebuild.
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.flatten_util
import jax.numpy as jnp
import optax

import rlcore
from rlcore.agents import control, ppo


def _timed(fn, *args, reps):
  """Median seconds of `fn(*args)` after one warm-up call, and its output."""
  out = jax.block_until_ready(fn(*args))
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t)
  return statistics.median(times), out


def rlcore_phases(config, seeds, reps):
  """ms per update of each phase of rlcore's PPO update (`ppo.make_agent(config)`)."""
  agent = ppo.make_agent(config)
  env, net, dist = agent.env, agent.network, agent.distribution
  keys = jax.random.split(jax.random.PRNGKey(0), seeds)
  state = jax.jit(jax.vmap(agent.init))(keys)
  rollout = control.make_rollout(env, net, dist, config.num_steps, lambda s: s)
  t = {}
  t["rollout"], (_, key, traj) = _timed(
      jax.jit(jax.vmap(rollout)), state.params, state.env_state, state.key, reps=reps)

  def critic_pass(params, traj, last_obs):
    return net.apply(params, jnp.concatenate([traj.obs, last_obs[None]], 0))[1]

  t["  of which critic on T+1 obs"], values = _timed(
      jax.jit(jax.vmap(critic_pass)), state.params, traj, state.env_state.obs, reps=reps)

  def next_values(params, traj, values):
    critic = lambda x: net.apply(params, x)[1]
    tr = traj.transition
    return control.next_values_from_shifted(critic, values[1:], traj.next_obs,
                                            tr.terminated, tr.truncated)

  t["  of which true-next-obs values"], _ = _timed(
      jax.jit(jax.vmap(next_values)), state.params, traj, values, reps=reps)
  gae = lambda traj, shaping_state, hp: control.shaped_advantages(
      config, traj, shaping_state, hp, config.gae_method)
  t["returns/GAE"], (shaped, _, adv) = _timed(
      jax.jit(jax.vmap(gae)), traj, state.shaping_state, state.hparams, reps=reps)
  t["episode statistics"], _ = _timed(
      jax.jit(jax.vmap(lambda s, tr, r: s.update(tr, r))), state.episode_stats, traj,
      shaped, reps=reps)
  epochs, minibatches = config.update_epochs, config.num_minibatches
  learn = ppo.make_learner(net, dist, num_minibatches=minibatches, epochs=epochs)
  optimizer = lambda hp: control.optimizer(hp, num_updates=agent.num_updates,
                                           steps_per_update=epochs * minibatches,
                                           anneal=bool(config.anneal_lr))
  data = dict(obs=traj.obs, action=traj.transition.action, log_prob=traj.log_prob,
              value=traj.value, advantage=adv, target=adv + traj.value)
  t["SGD epochs"], _ = _timed(
      jax.jit(jax.vmap(lambda p, o, d, hp, k: learn(p, o, d, hp, k, optimizer(hp)))),
      state.params, state.opt_state, data, state.hparams, key, reps=reps)
  n = config.num_envs * config.num_steps

  def shuffle(data, key):
    flat = jax.tree.map(lambda x: x.reshape((n,) + x.shape[2:]), data)
    return [jax.tree.map(lambda x, k=k: x[rlcore.shuffle.permutation(k, n)], flat)
            for k in jax.random.split(key, epochs)]

  t["  of which shuffles"], _ = _timed(jax.jit(jax.vmap(shuffle)), data, key, reps=reps)

  def optimiser_steps(params, opt_state, hp):
    flat, _ = jax.flatten_util.ravel_pytree(params)
    opt = optimizer(hp)

    def step(carry, _):
      flat, opt_state = carry
      updates, opt_state = opt.update(flat * 1e-3, opt_state, flat)
      return (optax.apply_updates(flat, updates), opt_state), None

    return jax.lax.scan(step, (flat, opt_state), None, epochs * minibatches)[0]

  t["  of which optimiser"], _ = _timed(
      jax.jit(jax.vmap(optimiser_steps)), state.params, state.opt_state, state.hparams,
      reps=reps)
  t["whole update"], _ = _timed(jax.jit(jax.vmap(agent.update)), state, reps=reps)
  return {k: v * 1e3 for k, v in t.items()}


def purejaxrl_phases(module, config, seeds, reps):
  """ms per update of each phase of PureJaxRL's update, rebuilt from its module's parts."""
  from flax.training.train_state import TrainState  # pylint: disable=import-outside-toplevel
  c = dict(config)
  num_envs, num_steps = c["NUM_ENVS"], c["NUM_STEPS"]
  epochs, minibatches = c["UPDATE_EPOCHS"], c["NUM_MINIBATCHES"]
  n = num_envs * num_steps
  num_updates = int(c["TOTAL_TIMESTEPS"] // num_steps // num_envs)
  env, env_params = module.gymnax.make(c["ENV_NAME"])
  env = module.LogWrapper(module.FlattenObservationWrapper(env))
  network = module.ActorCritic(env.action_space(env_params).n, activation=c["ACTIVATION"])

  def schedule(count):
    return c["LR"] * (1.0 - (count // (minibatches * epochs)) / num_updates)

  tx = optax.chain(optax.clip_by_global_norm(c["MAX_GRAD_NORM"]),
                   optax.adam(learning_rate=schedule if c["ANNEAL_LR"] else c["LR"],
                              eps=1e-5))

  def init(key):
    key, net_key, env_key = jax.random.split(key, 3)
    params = network.init(net_key, jnp.zeros(env.observation_space(env_params).shape))
    obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(env_key, num_envs), env_params)
    return TrainState.create(apply_fn=network.apply, params=params, tx=tx), env_state, obs, key

  def rollout(train_state, env_state, obs, key):
    def step(carry, _):
      env_state, last_obs, key = carry
      key, act_key, step_key = jax.random.split(key, 3)
      pi, value = network.apply(train_state.params, last_obs)
      action = pi.sample(seed=act_key)
      log_prob = pi.log_prob(action)
      obs, env_state, reward, done, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
          jax.random.split(step_key, num_envs), env_state, action, env_params)
      return (env_state, obs, key), module.Transition(done, action, value, reward,
                                                      log_prob, last_obs, info)

    (env_state, last_obs, key), traj = jax.lax.scan(step, (env_state, obs, key), None,
                                                    num_steps)
    return env_state, last_obs, key, traj

  def last_value(train_state, last_obs):
    return network.apply(train_state.params, last_obs)[1]

  def gae(traj, last_val):
    def step(carry, tr):
      gae, next_value = carry
      delta = tr.reward + c["GAMMA"] * next_value * (1 - tr.done) - tr.value
      gae = delta + c["GAMMA"] * c["GAE_LAMBDA"] * (1 - tr.done) * gae
      return (gae, tr.value), gae

    _, adv = jax.lax.scan(step, (jnp.zeros_like(last_val), last_val), traj, reverse=True,
                          unroll=16)
    return adv, adv + traj.value

  def loss_fn(params, tr, adv, targets):
    pi, value = network.apply(params, tr.obs)
    log_prob = pi.log_prob(tr.action)
    clipped = tr.value + (value - tr.value).clip(-c["CLIP_EPS"], c["CLIP_EPS"])
    value_loss = 0.5 * jnp.maximum(jnp.square(value - targets),
                                   jnp.square(clipped - targets)).mean()
    ratio = jnp.exp(log_prob - tr.log_prob)
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    actor = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - c["CLIP_EPS"],
                                               1 + c["CLIP_EPS"]) * adv).mean()
    return actor + c["VF_COEF"] * value_loss - c["ENT_COEF"] * pi.entropy().mean()

  def shuffled(batch, key):
    perm = jax.random.permutation(key, n)
    flat = jax.tree.map(lambda x: x.reshape((n,) + x.shape[2:]), batch)
    return jax.tree.map(lambda x: jnp.take(x, perm, axis=0), flat)

  def sgd_epochs(train_state, traj, adv, targets, key):
    def epoch(carry, _):
      train_state, key = carry
      key, perm_key = jax.random.split(key)
      batch = shuffled((traj, adv, targets), perm_key)
      mbs = jax.tree.map(lambda x: x.reshape((minibatches, -1) + x.shape[1:]), batch)

      def minibatch(ts, mb):
        grads = jax.grad(loss_fn)(ts.params, *mb)
        return ts.apply_gradients(grads=grads), None

      return (jax.lax.scan(minibatch, train_state, mbs)[0], key), None

    return jax.lax.scan(epoch, (train_state, key), None, epochs)[0][0]

  def shuffles(traj, adv, targets, key):
    return [shuffled((traj, adv, targets), k) for k in jax.random.split(key, epochs)]

  def optimiser_steps(train_state):
    grads = jax.tree.map(lambda p: p * 1e-3, train_state.params)
    return jax.lax.scan(lambda ts, _: (ts.apply_gradients(grads=grads), None),
                        train_state, None, epochs * minibatches)[0]

  keys = jax.random.split(jax.random.PRNGKey(0), seeds)
  train_state, env_state, obs, key = jax.jit(jax.vmap(init))(keys)
  t = {}
  t["rollout"], (env_state, last_obs, key, traj) = _timed(
      jax.jit(jax.vmap(rollout)), train_state, env_state, obs, key, reps=reps)
  t["critic on the last obs"], last_val = _timed(
      jax.jit(jax.vmap(last_value)), train_state, last_obs, reps=reps)
  t["returns/GAE"], (adv, targets) = _timed(jax.jit(jax.vmap(gae)), traj, last_val,
                                            reps=reps)
  t["SGD epochs"], _ = _timed(jax.jit(jax.vmap(sgd_epochs)), train_state, traj, adv,
                              targets, key, reps=reps)
  t["  of which shuffles"], _ = _timed(jax.jit(jax.vmap(shuffles)), traj, adv, targets,
                                       key, reps=reps)
  t["  of which optimiser"], _ = _timed(jax.jit(jax.vmap(optimiser_steps)), train_state,
                                        reps=reps)
  t["sum of phases"] = (t["rollout"] + t["critic on the last obs"] + t["returns/GAE"]
                        + t["SGD epochs"])
  return {k: v * 1e3 for k, v in t.items()}
