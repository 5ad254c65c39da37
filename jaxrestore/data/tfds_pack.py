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
from PIL import Image

from jaxrestore.data import sources


class JaxrestoreImages(tfds.core.GeneratorBasedBuilder):
    """Photos from a local folder, for jaxrestore training and evaluation."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "RGB PNG photos with their relative path; train/heldout."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Pass the folder of images as the manual dir: "
        "python -m jaxrestore.data.tfds_pack IMAGE_DIR --data_dir OUT"
    )

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
                    "name": tfds.features.Text(),
                }
            ),
            description="Colour photos packed from a folder by jaxrestore.data.tfds_pack.",
        )

    def _split_generators(self, dl_manager):
        root = Path(dl_manager.manual_dir)
        splits = image_splits(root)
        return {
            split: self._generate_examples(root, paths) for split, paths in splits.items() if paths
        }

    def _generate_examples(self, root: Path, paths: list[Path]):
        for path in paths:
            name = str(path.relative_to(root))
            image = Image.fromarray(sources.read_image(str(path)))
            yield name, {"image": image, "name": name}


def image_splits(root: Path) -> dict[str, list[Path]]:
    """The photo set's own splits when ROOT has its manifest, else the folder rule."""
    if (root / "manifest.json").exists():
        return {
            split: [Path(p) for p in images.paths]
            for split, images in sources.resolve_photo_set(root).items()
        }
    return sources.folder_splits(root)


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
