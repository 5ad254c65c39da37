"""Stage 2: the generator against a conditional sub-patch discriminator.

Each iteration makes `config.gan.d_steps` discriminator updates, then one
generator update; both are pure functions of (state, batch) and run in one
jitted call. The generator loss is fidelity (SSIM and/or L1/MSE) + perceptual
(VGG16 features) + adversarial; the discriminator loss is non-saturating BCE
or hinge, with an optional R1 gradient penalty on real pairs.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxrestore import losses, perceptual, sharding
from jaxrestore.models import discriminator as discriminator_lib
from jaxrestore.models import generator as generator_lib
from jaxrestore.steps import TrainState, make_optimizer, to_unit, train_step


class GanState(flax.struct.PyTreeNode):
    generator: TrainState
    discriminator: TrainState

    @property
    def step(self) -> jax.Array:
        return self.generator.step


def create_gan_state(
    config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh, total_steps: int
) -> GanState:
    """G's learning-rate schedule spans the whole run, D's the adversarial steps."""
    generator = generator_lib.make_generator(config.model)
    discriminator = discriminator_lib.make_discriminator(config.discriminator)
    patch = jnp.zeros((1, config.data.patch_size, config.data.patch_size, 3), jnp.float32)

    def init(rng):
        g_rng, d_rng = jax.random.split(rng)
        return GanState(
            generator=TrainState.create(
                apply_fn=generator.apply,
                params=generator.init(g_rng, patch, jnp.full((1,), 50.0))["params"],
                tx=make_optimizer(config.optimizer, total_steps),
            ),
            discriminator=TrainState.create(
                apply_fn=discriminator.apply,
                params=discriminator.init(d_rng, patch, patch)["params"],
                tx=make_optimizer(config.d_optimizer, config.adversarial_steps),
            ),
        )

    return jax.jit(init, out_shardings=sharding.replicated(mesh))(jax.random.key(config.seed))


def discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array, kind: str) -> jax.Array:
    if kind == "bce":
        return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))
    if kind == "hinge":
        return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))
    raise ValueError(f"config.gan.loss={kind!r}: expected 'bce' or 'hinge'")


def generator_adversarial_loss(fake_logits: jax.Array, kind: str) -> jax.Array:
    if kind == "bce":  # non-saturating
        return jnp.mean(jax.nn.softplus(-fake_logits))
    if kind == "hinge":
        return -jnp.mean(fake_logits)
    raise ValueError(f"config.gan.loss={kind!r}: expected 'bce' or 'hinge'")


def fidelity_loss(restored: jax.Array, target: jax.Array, gan: ml_collections.ConfigDict):
    loss = gan.ssim_weight * losses.ssim_loss(restored, target)
    loss += gan.l1_weight * losses.l1_loss(restored, target)
    return loss + gan.mse_weight * jnp.mean(jnp.square(restored - target))


def discriminator_step(
    state: GanState, batch: dict[str, jax.Array], gan: ml_collections.ConfigDict
) -> tuple[GanState, dict[str, jax.Array]]:
    """Update D on (degraded, original) as real and (degraded, G(degraded)) as fake."""
    degraded, target = to_unit(batch["degraded"]), to_unit(batch["target"])
    fake = jax.lax.stop_gradient(
        state.generator.apply_fn({"params": state.generator.params}, degraded, batch["quality"])
    )
    apply_d = state.discriminator.apply_fn

    def loss_fn(params):
        real_logits = apply_d({"params": params}, target, degraded)
        fake_logits = apply_d({"params": params}, fake, degraded)
        loss = discriminator_loss(real_logits, fake_logits, gan.loss)
        if gan.r1_gamma > 0:
            real_grad = jax.grad(lambda x: jnp.sum(apply_d({"params": params}, x, degraded)))(
                target
            )
            loss += 0.5 * gan.r1_gamma * jnp.mean(jnp.sum(jnp.square(real_grad), axis=(1, 2, 3)))
        return loss, (real_logits, fake_logits)

    (loss, (real_logits, fake_logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.discriminator.params
    )
    metrics = {
        "d_loss": loss,
        "d_real_acc": jnp.mean(real_logits > 0),
        "d_fake_acc": jnp.mean(fake_logits < 0),
    }
    return state.replace(discriminator=state.discriminator.apply_gradients(grads=grads)), metrics


def generator_step(
    state: GanState, batch: dict[str, jax.Array], gan: ml_collections.ConfigDict
) -> tuple[GanState, dict[str, jax.Array]]:
    """Update G for fidelity + perceptual + adversarial loss against the current D."""
    degraded, target = to_unit(batch["degraded"]), to_unit(batch["target"])
    d_params = state.discriminator.params

    def loss_fn(params):
        restored = state.generator.apply_fn({"params": params}, degraded, batch["quality"])
        fidelity = fidelity_loss(restored, target, gan)
        perceptual_term = perceptual.perceptual_loss(restored, target, tuple(gan.perceptual_layers))
        fake_logits = state.discriminator.apply_fn({"params": d_params}, restored, degraded)
        adversarial = generator_adversarial_loss(fake_logits, gan.loss)
        loss = (
            fidelity
            + gan.perceptual_weight * perceptual_term
            + gan.adversarial_weight * adversarial
        )
        return loss, {
            "g_loss": loss,
            "g_fidelity": fidelity,
            "g_perceptual": perceptual_term,
            "g_adv": adversarial,
            "psnr_restored": jnp.mean(losses.psnr(jnp.clip(restored, 0, 1), target)),
            "psnr_degraded": jnp.mean(losses.psnr(degraded, target)),
        }

    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.generator.params)
    metrics["g_grad_norm"] = optax.tree.norm(grads)
    return state.replace(generator=state.generator.apply_gradients(grads=grads)), metrics


def gan_iteration(
    state: GanState, batch: dict[str, jax.Array], gan: ml_collections.ConfigDict
) -> tuple[GanState, dict[str, jax.Array]]:
    """`gan.d_steps` discriminator updates, then one generator update."""
    d_metrics = {}
    for _ in range(gan.d_steps):
        state, d_metrics = discriminator_step(state, batch, gan)
    state, g_metrics = generator_step(state, batch, gan)
    return state, {"loss": g_metrics["g_loss"], **d_metrics, **g_metrics}


def with_generator_params(state: GanState | TrainState, params: Any) -> GanState | TrainState:
    """Start the generator from given (e.g. stage-1) params, with a fresh optimizer state."""
    generator = state.generator if isinstance(state, GanState) else state
    generator = generator.replace(params=params, opt_state=generator.tx.init(params))
    return state.replace(generator=generator) if isinstance(state, GanState) else generator


def warmup_step(
    state: GanState, batch: dict[str, jax.Array], loss_config: ml_collections.ConfigDict
) -> tuple[GanState, dict[str, jax.Array]]:
    """A stage-1 (SSIM) update of the generator alone, before the adversarial phase."""
    generator, metrics = train_step(state.generator, batch, loss_config)
    return state.replace(generator=generator), metrics
