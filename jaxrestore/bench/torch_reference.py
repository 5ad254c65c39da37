"""A PyTorch port of the generator, its stage-1 losses and train step: a benchmark reference.

This module exists for two things only: the `reference` benchmark of
`python -m jaxrestore.bench` (how fast the same network runs and trains in
PyTorch on this machine) and `tests/bench/test_torch_reference.py`, which checks that
the port computes what the JAX code computes (outputs, losses and gradients).
It needs `pip install torch`; torch is not a dependency of jaxrestore, and
restoring and training never import this module.

- `TorchGenerator` is `jaxrestore.models.generator.Generator` layer for layer,
  with the same NHWC [B, H, W, 3] interface in [0, 1];
- `from_flax(params, model_config)` builds one from a JAX params tree (an
  export, e.g. `jaxrestore/weights/ssim_universal`, loaded by
  `jaxrestore.inference.loader.load`);
- `ssim_loss` and `l1_loss` are `jaxrestore.losses.ssim_loss` and `l1_loss`;
- `make_train_step` is the stage-1 step of `jaxrestore.training.stages.ssim.train_step`.

The port computes in float32 whatever the config's `dtype` (a bfloat16 JAX
model is compared against float32 PyTorch).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# As in jaxrestore.losses (the test checks they agree).
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
NEGATIVE_SLOPE = 0.2

# Internal layout. The interface is NHWC like the JAX model; inside, the
# convolutions run on NCHW tensors, stored either contiguously (PyTorch's
# default) or channels_last (which a permuted NHWC input already is). Which is
# faster depends on the work, measured on this project's 2-core CPU host (torch
# 2.13 CPU, oneDNN, 2 threads, the packaged 64-channel, 8-block conditioned
# generator; interleaved pairs, medians; the ratio is channels_last / NCHW):
#                                         contiguous NCHW   channels_last   ratio
#   forward 1×720×1280, no grad (5 pairs)       4.33 s          3.41 s       0.81
#   forward 1×256×256, no grad (15 pairs)       0.193 s         0.189 s      0.98
#   train step 16×96×96, AdamW (5 pairs)        1.61 s          1.71 s       1.10
#   train step 8×96×96, AdamW (15 pairs)        0.884 s         0.916 s      1.07
# So by default (`channels_last=None`) a module in eval mode (inference) keeps
# its weights and activations channels_last and one in training mode (the train
# step) contiguous NCHW; `train()` / `eval()` convert the weights. (With another
# job saturating both cores the train step too was faster channels_last, 5.3 vs
# 6.0 s for 8×96×96: benchmark on an idle machine.)


def _leaky(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, NEGATIVE_SLOPE)


def _conv3(channels_in: int, channels_out: int) -> nn.Conv2d:
    # flax 'SAME' for a 3×3 stride-1 kernel: one pixel of zeros on every side.
    return nn.Conv2d(channels_in, channels_out, 3, padding=1)


def depth_to_space(x: torch.Tensor, factor: int) -> torch.Tensor:
    """[B, C·f², H, W] -> [B, C, H·f, W·f] with the JAX `depth_to_space` ordering:
    input channel (dy·f + dx)·C + c goes to output channel c at (f·y + dy, f·x + dx).
    (`torch.nn.functional.pixel_shuffle` orders them c·f² + dy·f + dx instead.)"""
    b, c, h, w = x.shape
    out_c = c // (factor * factor)
    x = x.reshape(b, factor, factor, out_c, h, w)
    x = x.permute(0, 3, 4, 1, 5, 2)  # b, c, h, dy, w, dx
    return x.reshape(b, out_c, h * factor, w * factor)


class TorchResidualBlock(nn.Module):
    """conv1 → (FiLM) → leaky_relu → conv2, added to the input scaled by `residual_scale`."""

    def __init__(self, channels: int, residual_scale: float, embedding_size: int | None):
        super().__init__()
        self.channels = channels
        self.residual_scale = residual_scale
        self.conv1 = _conv3(channels, channels)
        self.conv2 = _conv3(channels, channels)
        self.film = None
        if embedding_size is not None:
            self.film = nn.Linear(embedding_size, 2 * channels)
            nn.init.zeros_(self.film.weight)  # as in JAX: a fresh FiLM is the identity
            nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor | None = None) -> torch.Tensor:
        y = self.conv1(x)
        if self.film is not None and embedding is not None:
            film = self.film(embedding)[:, :, None, None]
            scale, shift = film[:, : self.channels], film[:, self.channels :]
            y = y * (1.0 + scale) + shift
        y = self.conv2(_leaky(y))
        return x + self.residual_scale * y


class TorchGenerator(nn.Module):
    """`jaxrestore.models.generator.Generator` in PyTorch (float32).

    Parameter names follow the flax ones (`down`, `block0.conv1`, `block0.film`,
    ..., `trunk_out`, `upsample`, `embed1`, `embed2`). A fresh module uses
    PyTorch's default init except that, as in JAX, the output convolution and
    the FiLM projections start at zero (so it returns its input); load trained
    weights with `from_flax`.
    """

    def __init__(
        self,
        channels: int = 64,
        num_blocks: int = 16,
        residual_scale: float = 1.0,
        conditioned: bool = False,
        embedding_size: int = 64,
        *,
        channels_last: bool | None = None,
    ):
        super().__init__()
        self.channels = channels
        self.num_blocks = num_blocks
        self.residual_scale = residual_scale
        self.conditioned = conditioned
        self.embedding_size = embedding_size
        self.channels_last = channels_last  # None: by mode, see the comment on layouts
        if conditioned:
            self.embed1 = nn.Linear(1, embedding_size)
            self.embed2 = nn.Linear(embedding_size, embedding_size)
        # flax 'SAME' for 4×4 stride 2 on an even size n pads (n/2 − 1)·2 + 4 − n = 2
        # pixels, split 1 before and 1 after: PyTorch's symmetric padding=1.
        self.down = nn.Conv2d(3, channels, 4, stride=2, padding=1)
        self.blocks = []
        for i in range(num_blocks):
            block = TorchResidualBlock(
                channels, residual_scale, embedding_size if conditioned else None
            )
            self.add_module(f"block{i}", block)
            self.blocks.append(block)
        self.trunk_out = _conv3(channels, channels)
        self.upsample = _conv3(channels, 3 * 4)
        nn.init.zeros_(self.upsample.weight)
        nn.init.zeros_(self.upsample.bias)
        self.to(memory_format=self.memory_format)

    @property
    def memory_format(self) -> torch.memory_format:
        """channels_last in eval mode, contiguous NCHW in training mode, unless forced."""
        channels_last = not self.training if self.channels_last is None else self.channels_last
        return torch.channels_last if channels_last else torch.contiguous_format

    def train(self, mode: bool = True) -> TorchGenerator:
        """Set the mode (`eval()` is `train(False)`) and store the weights in its layout."""
        super().train(mode)
        return self.to(memory_format=self.memory_format)

    def forward(self, image: torch.Tensor, quality: torch.Tensor | None = None) -> torch.Tensor:
        """`image` [B, H, W, 3] float in [0, 1]; `quality` [B] (or a scalar) QF 1–100,
        needed when conditioned. Returns the restoration, [B, H, W, 3]."""
        batch, height, width = image.shape[:3]
        embedding = None
        if self.conditioned:
            if quality is None:
                raise ValueError("a quality-conditioned generator needs the input's quality")
            q = torch.as_tensor(quality, dtype=torch.float32, device=image.device)
            q = torch.broadcast_to(q, (batch,)) / 100.0
            embedding = _leaky(self.embed1(q[:, None]))
            embedding = _leaky(self.embed2(embedding))
        x = image.to(torch.float32).permute(0, 3, 1, 2)  # NCHW view of NHWC memory
        x = x.contiguous(memory_format=self.memory_format)
        # The stride-2 trunk needs even sizes; edge-pad odd ones (bottom, right) and
        # crop at the end, as the JAX model does.
        if height % 2 or width % 2:
            x = F.pad(x, (0, width % 2, 0, height % 2), mode="replicate")
        down = _leaky(self.down((x - 0.5) * 2.0))
        trunk = down
        for block in self.blocks:
            trunk = block(trunk, embedding)
        trunk = self.trunk_out(trunk) + down
        restored = x + depth_to_space(self.upsample(trunk), 2)
        return restored[:, :, :height, :width].permute(0, 2, 3, 1)


def _config_value(config: Any, key: str, default: Any = None) -> Any:
    if isinstance(config, Mapping) or hasattr(config, "get"):
        value = config.get(key, default)
    else:
        value = getattr(config, key, default)
    if value is None and default is None:
        raise ValueError(f"the config has no {key!r}")
    return value


def _flatten(tree: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(tree, Mapping) or hasattr(tree, "items"):
        flat = {}
        for key, value in tree.items():
            flat.update(_flatten(value, (*prefix, str(key))))
        return flat
    return {prefix: tree}


def from_flax(
    params: Any, model_config: Any, *, channels_last: bool | None = None
) -> TorchGenerator:
    """A `TorchGenerator` holding the JAX generator params `params` (the tree under
    'params'; a {'params': tree} wrapper is also accepted).

    `model_config` is the `model` entry of a config or of an export's model.json
    (ConfigDict or dict: channels, num_blocks, residual_scale, conditioned, dtype;
    embedding_size defaults to 64). Conv kernels are converted HWIO → OIHW and
    Dense kernels (in, out) → (out, in). Raises ValueError when a JAX parameter
    is missing, left over or of another shape than the config implies.

    The module comes back in training mode; call `.eval()` for inference.
    `channels_last` forces an internal memory layout (None: by mode, see the
    comment on layouts above `TorchResidualBlock`).
    """
    arch = _config_value(model_config, "arch", "residual")
    if arch != "residual":
        raise ValueError(f"the PyTorch reference exists for the residual generator, not {arch!r}")
    model = TorchGenerator(
        channels=int(_config_value(model_config, "channels")),
        num_blocks=int(_config_value(model_config, "num_blocks")),
        residual_scale=float(_config_value(model_config, "residual_scale", 1.0)),
        conditioned=bool(_config_value(model_config, "conditioned", False)),
        embedding_size=int(_config_value(model_config, "embedding_size", 64)),
        channels_last=channels_last,
    )
    flat = _flatten(params)
    if flat and all(path[0] == "params" for path in flat):
        flat = {path[1:]: value for path, value in flat.items()}
    unused = set(flat)
    missing, mismatched = [], []
    state = {}
    for name, tensor in model.state_dict().items():
        *module, kind = name.split(".")
        path = (*module, {"weight": "kernel", "bias": "bias"}[kind])
        if path not in flat:
            missing.append("/".join(path))
            continue
        unused.discard(path)
        value = np.asarray(flat[path], dtype=np.float32)
        if kind == "weight" and value.ndim == 4:
            value = value.transpose(3, 2, 0, 1)  # HWIO -> OIHW
        elif kind == "weight" and value.ndim == 2:
            value = value.T  # (in, out) -> (out, in)
        if value.shape != tuple(tensor.shape):
            wanted = tuple(tensor.shape)
            if kind == "weight":  # the shape the JAX kernel should have had
                wanted = (*wanted[2:], wanted[1], wanted[0]) if len(wanted) == 4 else wanted[::-1]
            mismatched.append(f"{'/'.join(path)} {np.shape(flat[path])}, expected {wanted}")
            continue
        state[name] = torch.from_numpy(np.array(value, order="C"))  # a writable copy
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing))
    if unused:
        problems.append("not used " + ", ".join(sorted("/".join(p) for p in unused)))
    if mismatched:
        problems.append("wrong shape " + "; ".join(mismatched))
    if problems:
        raise ValueError(
            "the JAX params do not fit the generator of this model config "
            f"(channels={model.channels}, num_blocks={model.num_blocks}, "
            f"conditioned={model.conditioned}, embedding_size={model.embedding_size}): "
            + "; ".join(problems)
        )
    model.load_state_dict(state)  # copied into the weights, which keep their layout
    return model


def _gaussian_kernel() -> torch.Tensor:
    taps = np.arange(SSIM_WINDOW) - SSIM_WINDOW // 2
    kernel = np.exp(-0.5 * np.square(taps / SSIM_SIGMA))
    return torch.from_numpy((kernel / kernel.sum()).astype(np.float32))


def _blur_valid(z: torch.Tensor) -> torch.Tensor:
    """Separable 11-tap Gaussian over H and W of NCHW `z`, 'valid' borders."""
    channels = z.shape[1]
    kernel = _gaussian_kernel().to(z.device)
    z = F.conv2d(z, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    return F.conv2d(z, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of [B, H, W, C] images in [0, 1]: `jaxrestore.losses.ssim`
    (dm_pix's formula, variances clipped the same way), averaged over channels."""
    a = a.to(torch.float32).permute(0, 3, 1, 2)
    b = b.to(torch.float32).permute(0, 3, 1, 2)
    channels = a.shape[1]
    blurred = _blur_valid(torch.cat([a, b, a * a, b * b, a * b], dim=1))
    mu0, mu1, a2, b2, ab = torch.split(blurred, channels, dim=1)
    mu00, mu11, mu01 = mu0 * mu0, mu1 * mu1, mu0 * mu1
    epsilon = float(np.finfo(np.float32).eps) ** 2
    sigma00 = torch.clamp(a2 - mu00, min=epsilon)
    sigma11 = torch.clamp(b2 - mu11, min=epsilon)
    sigma01 = ab - mu01
    sigma01 = torch.sign(sigma01) * torch.minimum(torch.sqrt(sigma00 * sigma11), sigma01.abs())
    c1 = (SSIM_K1 * 1.0) ** 2
    c2 = (SSIM_K2 * 1.0) ** 2
    numer = (2 * mu01 + c1) * (2 * sigma01 + c2)
    denom = (mu00 + mu11 + c1) * (sigma00 + sigma11 + c2)
    return torch.mean(numer / denom, dim=(1, 2, 3))


def ssim_loss(restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − SSIM, averaged over the batch: `jaxrestore.losses.ssim_loss`."""
    return 1.0 - torch.mean(ssim(restored, target))


def l1_loss(restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.mean(torch.abs(restored - target))


def generator_loss(
    model: TorchGenerator,
    degraded: torch.Tensor,
    target: torch.Tensor,
    quality: torch.Tensor | None,
    loss_config: Any,
) -> torch.Tensor:
    """The stage-1 loss of `jaxrestore.training.stages.ssim.generator_loss` for NHWC uint8 images:
    `ssim_weight`·(1 − SSIM) + `l1_weight`·L1 of the restoration of degraded/255
    against target/255. Both terms are always computed, as in JAX."""
    degraded = degraded.to(torch.float32) / 255.0
    target = target.to(torch.float32) / 255.0
    if quality is not None:
        quality = torch.as_tensor(quality).to(torch.float32)
    restored = model(degraded, quality)
    ssim_weight = float(_config_value(loss_config, "ssim_weight", 1.0))
    l1_weight = float(_config_value(loss_config, "l1_weight", 0.0))
    return ssim_weight * ssim_loss(restored, target) + l1_weight * l1_loss(restored, target)


def make_train_step(
    model: TorchGenerator, loss_config: Any, optimizer_config: Any
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]:
    """The stage-1 update of `jaxrestore.training.stages.ssim.train_step`, in PyTorch.

    Returns `step(degraded_uint8, target_uint8, quality) -> loss`: NHWC uint8
    images are scaled by 1/255, the loss is `ssim_weight`·(1 − SSIM) +
    `l1_weight`·L1 (`loss_config`, i.e. `config.loss`), the gradients are clipped
    to global norm `grad_clip_norm` (optax's rule: scaled by max/norm only when
    the norm exceeds max) and AdamW (`b1`, `b2`, eps 1e-8, `weight_decay`, on
    every parameter as optax.adamw) updates `model` in place. The loss returned
    is the one before the update, detached.

    The learning rate is constant (`optimizer_config.learning_rate`, the peak),
    not the JAX warmup + cosine schedule: fine for timing a step, not for a full
    training run. The JAX step also computes a few metrics (PSNRs, gradient
    norm); this one returns only the loss. `step.optimizer` is the torch optimizer.
    """
    model.train()  # (its layout: contiguous NCHW unless forced)
    max_norm = float(_config_value(optimizer_config, "grad_clip_norm"))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params,
        lr=float(_config_value(optimizer_config, "learning_rate")),
        betas=(
            float(_config_value(optimizer_config, "b1")),
            float(_config_value(optimizer_config, "b2")),
        ),
        eps=1e-8,  # optax.adamw's default
        weight_decay=float(_config_value(optimizer_config, "weight_decay", 0.0)),
        foreach=True,
    )

    def step(
        degraded: torch.Tensor, target: torch.Tensor, quality: torch.Tensor | None = None
    ) -> torch.Tensor:
        loss = generator_loss(model, degraded, target, quality, loss_config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in params if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        if norm > max_norm:
            torch._foreach_mul_(grads, max_norm / norm)
        optimizer.step()
        return loss.detach()

    step.optimizer = optimizer
    return step
