"""Pack a folder of images into a TFDS dataset (array_record) to train from anywhere.

    python -m jaxrestore.data.tfds_pack IMAGE_DIR --data_dir OUT
    python -m jaxrestore.main --config configs/ssim.py \
        --config.data.source=tfds:jaxrestore_images --config.data.dir=OUT

OUT may then be copied to a bucket (`gsutil -m cp -r OUT gs://BUCKET/tfds`) and
trained from with --config.data.dir=gs://BUCKET/tfds on every host of a pod.

The builder, `jaxrestore_images`, takes the folder as its manual dir: every
image below it becomes one record (RGB, PNG-encoded, with its relative path as
`name`), split into `train` and `heldout` by the same hash of the relative path
as a folder source, so a packed folder trains and evaluates exactly like the
folder itself. The assembled photo set (a folder with `manifest.json`) keeps
its manifest's splits. Grey and alpha images are stored as RGB.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import tensorflow_datasets as tfds

from jaxrestore.data.tfds_builder import JaxrestoreImages, image_splits


def pack(image_dir: str | Path, data_dir: str | Path) -> tfds.core.DatasetBuilder:
    """Build `jaxrestore_images` from IMAGE_DIR into DATA_DIR (a no-op when built)."""
    image_dir = Path(image_dir).expanduser()
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{image_dir}: not a folder of images")
    image_splits(image_dir)  # one-line error when there are no images
    builder = JaxrestoreImages(data_dir=str(data_dir), file_format="array_record")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(image_dir))
    )
    return builder


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m jaxrestore.data.tfds_pack", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("image_dir", type=Path, help="folder of images (searched recursively)")
    parser.add_argument("--data_dir", required=True, help="TFDS data_dir to write into")
    args = parser.parse_args(argv)
    try:
        builder = pack(args.image_dir, args.data_dir)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"jaxrestore.data.tfds_pack: {error}")
    counts = {name: split.num_examples for name, split in builder.info.splits.items()}
    print(
        f"{builder.data_dir}: "
        + ", ".join(f"{n} {split}" for split, n in counts.items())
        + f"; train with --config.data.source=tfds:{builder.name} "
        f"--config.data.dir={args.data_dir}"
    )


if __name__ == "__main__":
    run()
