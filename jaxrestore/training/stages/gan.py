"""Stage 2: the generator against a conditional sub-patch discriminator.

Each iteration makes `config.gan.d_steps` discriminator updates, then one
generator update; both are pure functions of (state, batch) and run in one
jitted call. The generator loss is fidelity (SSIM and/or L1/MSE) + perceptual
(VGG16 features) + adversarial; the discriminator loss is non-saturating BCE
or hinge, with an optional R1 gradient penalty on real pairs.
"""

from __future__ import annotations

from collections.abc import Iterator

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxrestore import losses
from jaxrestore.metrics import psnr
from jaxrestore.models import discriminator as discriminator_lib
from jaxrestore.models import generator as generator_lib
from jaxrestore.models import perceptual
from jaxrestore.training import heldout
from jaxrestore.training import state as state_lib
from jaxrestore.training.stages import ssim
from jaxrestore.training.stages.base import Phase, Stage
from jaxrestore.training.state import TrainState, to_unit


class GanState(flax.struct.PyTreeNode):
    generator: TrainState
    discriminator: TrainState

    @property
    def step(self) -> jax.Array:
        return self.generator.step


def run_length(config: ml_collections.ConfigDict) -> tuple[int, int]:
    """(stage-1 warm-up steps, total steps): no warm-up when `config.init_from` gives
    the generator."""
    warmup = 0 if config.init_from else config.warmup_steps
    return warmup, warmup + config.adversarial_steps


def create_state(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> GanState:
    """G's learning-rate schedule spans the whole run, D's the adversarial steps."""
    generator = generator_lib.make_generator(config.model)
    discriminator = discriminator_lib.make_discriminator(config.discriminator)
    g_optimizer = state_lib.make_optimizer(config.optimizer, run_length(config)[1])
    d_optimizer = state_lib.make_optimizer(config.d_optimizer, config.adversarial_steps)
    example = generator_lib.example_inputs(config.data.patch_size)
    patch = example[0]

    def init(rng):
        g_rng, d_rng = jax.random.split(rng)
        return GanState(
            generator=state_lib.new_state(generator, example, g_optimizer, g_rng),
            discriminator=state_lib.new_state(discriminator, (patch, patch), d_optimizer, d_rng),
        )

    return state_lib.init_on_mesh(init, config.seed, mesh)


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
            "psnr_restored": jnp.mean(psnr(jnp.clip(restored, 0, 1), target, 1.0)),
            "psnr_degraded": jnp.mean(psnr(degraded, target, 1.0)),
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


def warmup_step(
    state: GanState, batch: dict[str, jax.Array], loss_config: ml_collections.ConfigDict
) -> tuple[GanState, dict[str, jax.Array]]:
    """A stage-1 (SSIM) update of the generator alone, before the adversarial phase."""
    generator, metrics = ssim.train_step(state.generator, batch, loss_config)
    return state.replace(generator=generator), metrics


def build(config: ml_collections.ConfigDict, mesh, jit) -> tuple[GanState, list[Phase]]:
    """The GAN state; its phases: stage-1 warm-up steps (unless `config.init_from`
    gives the generator), then adversarial iterations."""
    warmup, total = run_length(config)
    phases = [(total, jit(gan_iteration, gan=config.gan))]
    if warmup:
        phases.insert(0, (warmup, jit(warmup_step, loss_config=config.loss)))
    return create_state(config, mesh), phases


def config_problems(config: ml_collections.ConfigDict, checks) -> Iterator[str]:
    yield from checks.at_least("warmup_steps", 0)
    yield from checks.at_least("adversarial_steps", 1)
    yield from ssim.generator_model_problems(config, checks)
    yield from checks.optimizer("optimizer")
    yield from checks.optimizer("d_optimizer")
    sub_patch, patch = config.discriminator.sub_patch, config.data.patch_size
    if not isinstance(sub_patch, int) or sub_patch < 4 or sub_patch & (sub_patch - 1):
        yield f"discriminator.sub_patch={sub_patch!r} must be a power of two ≥ 4"
    elif isinstance(patch, int) and (sub_patch > patch or patch % sub_patch):
        yield (
            f"discriminator.sub_patch={sub_patch} must tile data.patch_size={patch} "
            "(a divisor of it, no larger)"
        )
    yield from checks.at_least("discriminator.channels", 1)
    yield from checks.at_least("discriminator.max_channels", 1)
    yield from checks.one_of("discriminator.dtype", ("float32", "bfloat16"))
    yield from checks.one_of("gan.loss", ("bce", "hinge"))
    yield from checks.at_least("gan.d_steps", 0)
    for name in ("r1_gamma", "ssim_weight", "l1_weight", "mse_weight"):
        yield from checks.at_least(f"gan.{name}", 0.0, integer=False)
    for name in ("perceptual_weight", "adversarial_weight"):
        yield from checks.at_least(f"gan.{name}", 0.0, integer=False)
    unknown = sorted(set(config.gan.perceptual_layers) - set(perceptual.VGG_LAYERS))
    if unknown:
        yield f"gan.perceptual_layers has {unknown}, not among {', '.join(perceptual.VGG_LAYERS)}"


STAGE = Stage(
    name="gan",
    kind="generator",
    make_model=generator_lib.make_generator,
    example_inputs=generator_lib.example_inputs,
    run_length=run_length,
    build=build,
    make_evaluator=heldout.HeldOutEvaluator,
    config_problems=config_problems,
    model_state=lambda state: state.generator,
    with_model=lambda state, generator: state.replace(generator=generator),
    model_params=lambda tree: tree["generator"]["params"],
    resume_fields=("discriminator",),
)
