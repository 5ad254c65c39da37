"""The TFDS builder `jaxrestore_images`: photos from a local folder (the manual dir).

Kept apart from `tfds_pack`, its command: TFDS locates a builder through the module
that defines it, which must not be `__main__` (`python -m jaxrestore.data.tfds_pack`).
"""

from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds
from PIL import Image

from jaxrestore.data import sources
from jaxrestore.media import image as image_io


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
            image = Image.fromarray(image_io.read_image(str(path)))
            yield name, {"image": image, "name": name}


def image_splits(root: Path) -> dict[str, list[Path]]:
    """The photo set's own splits when ROOT has its manifest, else the folder rule."""
    if (root / "manifest.json").exists():
        return {
            split: [Path(p) for p in images.paths]
            for split, images in sources.resolve_photo_set(root).items()
        }
    return sources.folder_splits(root)
