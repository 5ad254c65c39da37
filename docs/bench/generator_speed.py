"""512² forward speed of the generator designs, side by side in one process.

    python docs/bench/generator_speed.py [REPEATS]

Quality-conditioned generators with fresh weights (speed does not depend on the
values), one 512² image, jitted; repeats interleaved in alternating order and the
median kept, so the ratios hold on a busy machine. Prints one JSON line per design
(the table in docs/model.md).
"""

import json
import sys
import time

import jax
import jax.numpy as jnp

from jaxrestore.models.generator import Generator, UNetGenerator

DESIGNS = {
    "residual 64x8 (packaged)": Generator(channels=64, num_blocks=8, conditioned=True),
    "unet 64 (1,2,2,2) blocks (4,2,2,2) (ssim:universal_unet)": UNetGenerator(
        channels=64, channel_mults=(1, 2, 2, 2), scale_blocks=(4, 2, 2, 2), conditioned=True
    ),
    "unet 64 (1,2,2,4) blocks (4,2,2,2)": UNetGenerator(
        channels=64, channel_mults=(1, 2, 2, 4), scale_blocks=(4, 2, 2, 2), conditioned=True
    ),
    "unet 64 (1,2,4,4) 2 blocks per scale (first universal_unet)": UNetGenerator(
        channels=64, num_blocks=2, channel_mults=(1, 2, 4, 4), conditioned=True
    ),
    "residual 32x4 (cpu sizes)": Generator(channels=32, num_blocks=4, conditioned=True),
    "unet 32 (1,1,1,1) blocks (2,1,1,1) (ssim:universal_unet_cpu)": UNetGenerator(
        channels=32, channel_mults=(1, 1, 1, 1), scale_blocks=(2, 1, 1, 1), conditioned=True
    ),
}


def main(repeats: int = 3) -> None:
    image = jax.random.uniform(jax.random.key(0), (1, 512, 512, 3))
    quality = jnp.full((1,), 30.0)
    compiled = {}
    for name, module in DESIGNS.items():
        params = module.init(jax.random.key(1), image[:, :64, :64], quality)
        apply = jax.jit(module.apply)
        apply(params, image, quality).block_until_ready()
        compiled[name] = (apply, params, sum(p.size for p in jax.tree.leaves(params)))
    times = {name: [] for name in DESIGNS}
    for repeat in range(repeats):
        order = list(compiled.items())
        for name, (apply, params, _) in order if repeat % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            apply(params, image, quality).block_until_ready()
            times[name].append(time.perf_counter() - start)
    for name, (_, _, count) in compiled.items():
        seconds = sorted(times[name])[len(times[name]) // 2]
        print(
            json.dumps(
                {
                    "design": name,
                    "params_m": round(count / 1e6, 3),
                    "s_per_512": round(seconds, 3),
                    "mp_per_s": round(512 * 512 / 1e6 / seconds, 3),
                }
            )
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
