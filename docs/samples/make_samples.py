"""How the quick start's sample files were made (scikit-image's public-domain photos,
compressed hard): run from the repository root to remake them.

    python docs/samples/make_samples.py

- chelsea_q15.jpg: scikit-image's `chelsea` (451x300) saved by Pillow at JPEG QF 15;
- coffee_pan.mp4: a 2-second 320x240 pan over scikit-image's `coffee`, H.264 at
  CRF 38 (24 frames/s, no audio).
"""

from pathlib import Path

import av
import numpy as np
import skimage.data
from PIL import Image

HERE = Path(__file__).resolve().parent


def main() -> None:
    Image.fromarray(skimage.data.chelsea()).save(HERE / "chelsea_q15.jpg", quality=15)
    coffee = skimage.data.coffee()  # 400x600
    with av.open(str(HERE / "coffee_pan.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"crf": "38", "preset": "veryslow"}
        for i in range(48):
            top, left = i * 2, i * 5
            crop = np.ascontiguousarray(coffee[top : top + 240, left : left + 320])
            out.mux(stream.encode(av.VideoFrame.from_ndarray(crop, format="rgb24")))
        out.mux(stream.encode(None))


if __name__ == "__main__":
    main()
