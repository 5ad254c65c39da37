"""The photos the training set is assembled from, and where each comes from.

Version 2: Debian `endless-sky-high-dpi` landscape and city photos and Debian
`scratch` backgrounds (both JPEG, so downscaled 2× with Lanczos to wash out their
own compression), the lossless test photos of the PyPI `sporco` wheel, and
scikit-image's bundled colour photos. Their held-out split is a fixed function of
the image name (about one in ten).

Added in version 3, TRAIN ONLY (the held-out set stays the version-2 one, on which
the README's results are measured): the real colour photographs, picked by eye, of
Debian wallpaper and sample packages (`PHOTO_PACKAGES`: Plasma, LXQt, MATE and
Lomiri wallpapers, jquery-backstretch's examples, forensics-samples' phone photos,
Psychtoolbox's demo stimuli, OpenCV's sample photos (in version 3 also its
mandrill), scikit-learn's china/flower) and matplotlib's `grace_hopper.jpg`.

Version 4 leaves out the images of standard evaluation sets that these packages
ship (`EVALUATION_IMAGES`: sporco's Kodak parrots, monarch and colour Barbara,
OpenCV's mandrill), which versions 2 and 3 trained on, and adds, train only, the
photos of more Debian packages (`PHOTO_PACKAGES_V4`: krank's underwater
backgrounds, Tux Paint's templates, KPhotoAlbum's demo album, Palapeli's public
domain puzzles, the Maldives SDDM background, Pinpoint's, Colorbox's, libsixel's
and the Go imaging library's example photos).

`candidates(cache)` lists them all (downloading and unpacking what is not cached),
each with its package, version, path inside the package and licence.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from jaxrestore.data import debian, sources

LOSSY_SUFFIXES = (".jpg", ".jpeg")


@dataclasses.dataclass(frozen=True)
class PhotoPackage:
    """Curated real colour photographs of one Debian package (no renders, drawings,
    logos, screenshots or gray images), all train only."""

    package: str
    prefix: str  # of the output names
    root: str  # folder inside the package
    files: tuple[str, ...]  # below `root`
    licence_root: str = ""  # `root` as the copyright file names it ('' = its installed path)
    licence: str = ""  # overrides the copyright file (per-file notes it does not parse)
    added_in: int = 3  # the assembly version that added it


# Looked at and left out: ukui-wallpapers and gnome-backgrounds 43 (renders only),
# visp-images-data (gray sequences, a painting, the gray Solvay photo), hugin-data
# (small help figures), the other Plasma/LXQt/MATE/Lomiri wallpapers (renders, logos;
# Plasma's ColdRipple and Grey are gray), backstretch's dome.jpg (gray) and smaller
# copies of its samples, Psychtoolbox's stim6 (a painting), konijntjes (= stim1),
# its gray or synthetic stimuli and its HDR EXRs (no 8-bit capture), OpenCV's
# renders, drawings, paintings, logos, text and synthetic images, stereo/sequence
# twins (aloeR, leuvenB, rubberwhale2) and its motion-blurred/tampered variants; its
# baboon.jpg and lena.jpg are Classic5 images (EVALUATION_IMAGES).
_PLASMA = ("BytheWater", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Kite")
_PLASMA += ("OneStandsOut", "Path", "summer_1am")
_MATE = ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird")
_MATE += ("RainDrops", "Storm", "TwoWings", "Wood", "YellowFlower")
_OPENCV = ("aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "board.jpg")
_OPENCV += ("building.jpg", "butterfly.jpg", "chicky_512.png", "ela_original.jpg", "fruits.jpg")
_OPENCV += ("graf1.png", "home.jpg", "left.jpg", "leuvenA.jpg", "messi5.jpg", "orange.jpg")
_OPENCV += ("rubberwhale1.png", "smarties.png", "squirrel_cls.jpg", "stuff.jpg")
_STIMS = "PsychDemos/PsychExampleExperiments/OldNewRecognition/stims"
PHOTO_PACKAGES = (
    PhotoPackage(
        "plasma-workspace-wallpapers",
        "plasma",
        "usr/share/wallpapers",
        tuple(f"{n}/contents/images/2560x1600.jpg" for n in _PLASMA),
    ),
    PhotoPackage(
        "lxqt-themes",
        "lxqt",
        "usr/share/lxqt/wallpapers",
        ("Butterfly-Kenneth-Wimer.jpg", "Valendas.png", "after-the-rain.jpg", "appleflower.png")
        + ("beam.png", "butterfly.png", "cloud.png", "drop.png", "flowers.png", "fog.jpg")
        + ("this-is-not-windows.jpg",),
    ),
    PhotoPackage(
        "mate-backgrounds",
        "mate",
        "usr/share/backgrounds/mate",
        tuple(f"nature/{n}.jpg" for n in _MATE),
    ),
    PhotoPackage(
        "lomiri-wallpapers-16.04",
        "lomiri",
        "usr/share/backgrounds",
        ("Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg")
        + ("Picture_0B_by_freespace.jpg", "Picture_1A_by_freespace.jpg")
        + ("Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg")
        + ("analogpattern_by_Peter_Nerlich.jpg", "free_by_Peter_Nerlich.jpg")
        + ("friends_by_Aitzol_Berasategi.jpg", "greentock_by_Peter_Nerlich.jpg")
        + ("life_by_Aitzol_Berasategi.jpg", "picosdeeuropa_by_Aitzol_Berasategi.jpg")
        + ("seeding_by_Clements_Engelhardt.jpg", "sunset_by_Aitzol_Berasategi.jpg"),
        licence_root="16.04",
    ),
    PhotoPackage(
        "lomiri-wallpapers-20.04",
        "lomiri",
        "usr/share/backgrounds",
        ("Kleiber_by_Lukas_Baubkus.jpg",),
        licence_root="20.04",
    ),
    PhotoPackage(
        "libjs-jquery-backstretch",
        "backstretch",
        "usr/share/doc/libjs-jquery-backstretch/examples",
        ("coffee.jpg", "pot-holder.jpg", "sample1_1920.jpg", "sample2_1920.jpg"),
    ),
    PhotoPackage(
        "forensics-samples-files",
        "forensics",
        "usr/share/forensics-samples/original-files",
        ("pic1/IMG-20191006-WA0002.jpg", "pic1/IMG_1054.JPG", "pic1/IMG_20200827_231612.jpg")
        + ("pic2/IMG_20191224_234846.jpg", "pic2/IMG_20200124_231153.jpg")
        + ("pic2/IMG_20200608_111614.jpg",),
    ),
    PhotoPackage(
        "psychtoolbox-3-common",
        "psychtoolbox",
        "usr/share/psychtoolbox-3",
        ("PsychDemos/OpenGL4MatlabDemos/MorphDemo/TeapotTexture.jpg",)
        + tuple(f"{_STIMS}/stim{i}.jpg" for i in range(1, 6))
        + ("PsychHardware/EyelinkToolbox/EyelinkDemos/SR-ResearchDemo/town.jpg",),
        licence_root="Psychtoolbox",
    ),
    PhotoPackage(
        "opencv-doc",
        "opencv",
        "usr/share/doc/opencv-doc/examples/data",
        _OPENCV,
        licence_root="samples/data",
    ),
    PhotoPackage(
        "python3-sklearn",
        "sklearn",
        "usr/lib/python3/dist-packages/sklearn/datasets/images",
        ("china.jpg", "flower.jpg"),
        licence="CC-BY-2.0 (sklearn/datasets/images/README.txt)",
    ),
)


# Images of the standard evaluation sets (LIVE1, Classic5, Kodak, TID2013, BSDS500 test)
# that source packages ship, by their path inside the package: never assembled, so that
# no benchmark row is measured on a photo the model trained on. A crop or another size
# of one is still the same image (sporco's barbara is Classic5's, in colour and wider).
# The assembly also drops any photo within DUPLICATE_BITS of an evaluation image found
# in the cache (`assemble.EVALUATION_SETS`); this list catches what a hash cannot.
EVALUATION_IMAGES = {
    "sporco/data/kodim23.png": "Kodak kodim23 (LIVE1 parrots, TID2013 I23)",
    "sporco/data/monarch.png": "LIVE1 monarch",
    "sporco/data/barbara.png": "Classic5 barbara (a wider colour original)",
    "usr/share/doc/opencv-doc/examples/data/baboon.jpg": "Classic5 baboon (mandrill)",
    "usr/share/doc/opencv-doc/examples/data/lena.jpg": "Classic5 lena",
}


_KRANK = tuple(f"level-{i:02d}.jpg" for i in range(1, 31)) + ("bonus-01.jpg",)
_KRANK += tuple(f"menu{n}.jpg" for n in ("", "-credits", "-levels", "-play", "-scores"))
_KRANK += ("menu-scores2.jpg", "menu-scores3.jpg", "menu-screen.jpg", "menu-sounds.jpg")
_TUXPAINT = ("burnt_bark", "cliff", "corn_maze", "jellyfish", "lighthouse")
_TUXPAINT += ("mossy_log", "mudstone", "ocean_splash", "ocean_waves", "redwoods_above", "rocks")
_TUXPAINT += ("sheep", "spiders_web", "sun_behind_clouds", "sun_behind_leaves", "trees_above")
_TUXPAINT += ("trees_at_dusk", "wool_mill_machine")
_KPHOTOALBUM = ("anne_helene", "bar55", "bar55_2", "blackie", "cold_water", "donna", "donna_2")
_KPHOTOALBUM += ("grand_canyon_1", "grand_canyon_2", "grand_canyon_3", "jesper", "jesper_2")
_KPHOTOALBUM += ("new_wave_1", "new_wave_2", "pool", "pool_2", "skagen", "skagen_2", "snow")
_KPHOTOALBUM += ("spiff", "spiff_2", "sunset", "wayne")
# Added in version 4, train only. Looked at and left out: krank's menu-scores1 (=
# bonus-01), Tux Paint's small skyline starter and near-gray mossy_bark, KPhotoAlbum's
# qt-logo, Palapeli's GFDL puzzles (castle, chameleon), Colorbox's near-gray marylou
# and ohoopee2, libsixel's low-quality egret and its gray/palette variants of the
# snake, and the packages a survey found only renders, drawings, textures or unclear
# sources in.
PHOTO_PACKAGES_V4 = (
    PhotoPackage(
        "krank",
        "krank",
        "usr/share/games/krank/levels/unera-backgrounds",
        _KRANK,
        licence="public domain (debian/copyright: images by Slava Anishenko)",
        added_in=4,
    ),
    PhotoPackage(
        "tuxpaint-data",
        "tuxpaint",
        "usr/share/tuxpaint/templates",
        tuple(f"{n}.jpg" for n in _TUXPAINT),
        added_in=4,
    ),
    PhotoPackage(
        "kphotoalbum",
        "kphotoalbum",
        "usr/share/kphotoalbum/demo",
        tuple(f"{n}.jpg" for n in _KPHOTOALBUM),
        licence="GPL-2+ (debian/copyright, the whole package; the author's demo album)",
        added_in=4,
    ),
    PhotoPackage(
        "palapeli-data",
        "palapeli",
        "usr/share/palapeli/collection",
        ("cincinnati-bridge.jpg", "citrus-fruits.jpg", "european-honey-bee.jpg"),
        licence="public domain (X-KDE-PluginInfo-License of each puzzle's .desktop)",
        added_in=4,
    ),
    PhotoPackage(
        "sddm-theme-maldives",
        "sddm",
        "usr/share/sddm/themes/maldives",
        ("background.jpg",),
        licence_root="data/themes/maldives",
        added_in=4,
    ),
    PhotoPackage(
        "pinpoint",
        "pinpoint",
        "usr/share/doc/pinpoint/examples",
        ("bg.jpg", "bowls.jpg", "linus.jpg"),
        added_in=4,
    ),
    PhotoPackage(
        "libjs-jquery-colorbox",
        "colorbox",
        "usr/share/doc/libjs-jquery-colorbox/examples/content",
        ("daisy@2x.jpg", "ohoopee1.jpg", "ohoopee3.jpg"),
        added_in=4,
    ),
    PhotoPackage(
        "libsixel-examples",
        "libsixel",
        "usr/share/doc/libsixel-examples/examples/images",
        ("snake.png",),
        licence_root="images",
        added_in=4,
    ),
    PhotoPackage(
        "golang-github-disintegration-imaging-dev",
        "imaging",
        "usr/share/gocode/src/github.com/disintegration/imaging/testdata",
        ("branches.png", "flowers.png"),
        added_in=4,
    ),
)


@dataclasses.dataclass(frozen=True)
class Candidate:
    name: str  # output stem, unique
    path: Path  # file on disk
    package: str
    version: str
    package_path: str  # path inside the package
    licence: str
    downscale: bool  # a lossy (JPEG) source: scaled down at least 2×
    train_only: bool = False  # added in version 3 or later: never held out
    added_in: int = 2  # the assembly version that added it


def _debian_candidates(cache: Path, package: str, image_dir: str, prefix: str) -> list[Candidate]:
    deb = debian.download(package, cache)
    root = cache / f"{package}.tree"
    version = debian.extract(deb, root)
    copyright_text = (root / "usr/share/doc" / package / "copyright").read_text()
    stanzas = debian.parse_dep5(copyright_text)
    out = []
    for path in sorted((root / image_dir).rglob("*.jpg")):
        rel = str(path.relative_to(root))
        stem = path.stem.replace("@2x", "").replace(" ", "_")
        out.append(
            Candidate(
                name=f"{prefix}-{stem}",
                path=path,
                package=f"debian:{package}",
                version=version,
                package_path=rel,
                licence=debian.licence_for(rel, stanzas),
                downscale=True,
            )
        )
    return out


def photo_name(prefix: str, relative: str) -> str:
    """Output stem of a curated photo: its file stem, or the wallpaper's folder name when
    the file is only named by its resolution (Plasma's `Kite/contents/images/2560x1600.jpg`)."""
    path = Path(relative)
    stem = path.parts[0] if re.fullmatch(r"\d+x\d+", path.stem) else path.stem
    return f"{prefix}-{re.sub(r'[^A-Za-z0-9_-]+', '_', stem)}"


def _package_candidates(cache: Path, source: PhotoPackage) -> list[Candidate]:
    deb = debian.download(source.package, cache)
    copyright_path = f"usr/share/doc/{source.package}/copyright"
    members = [f"{source.root}/{f}" for f in source.files]
    dest = cache / f"{source.package}.photos"
    version = debian.extract_members(deb, dest, [copyright_path, *members])
    stanzas = debian.parse_dep5((dest / copyright_path).read_text())
    out = []
    for file, member in zip(source.files, members, strict=True):
        licence_path = f"{source.licence_root}/{file}" if source.licence_root else member
        out.append(
            Candidate(
                name=photo_name(source.prefix, file),
                path=dest / member,
                package=f"debian:{source.package}",
                version=version,
                package_path=member,
                licence=source.licence or debian.licence_for(licence_path, stanzas),
                downscale=Path(file).suffix.lower() in LOSSY_SUFFIXES,
                train_only=True,
                added_in=source.added_in,
            )
        )
    return out


def _matplotlib_candidates() -> list[Candidate]:
    """matplotlib (a dependency) ships one colour photo in its sample data."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return [
        Candidate(
            name="matplotlib-grace_hopper",
            path=path,
            package="pypi:matplotlib",
            version=matplotlib.__version__,
            package_path="matplotlib/mpl-data/sample_data/grace_hopper.jpg",
            licence="public domain (U.S. Navy photograph)",
            downscale=True,
            train_only=True,
            added_in=3,
        )
    ]


def _sporco_candidates(cache: Path) -> list[Candidate]:
    wheels = sorted(cache.glob("sporco-*.whl"))
    if not wheels:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(cache)]
        result = subprocess.run(command + ["sporco"], cwd=cache, capture_output=True, text=True)
        wheels = sorted(cache.glob("sporco-*.whl"))
        if result.returncode != 0 or not wheels:
            raise RuntimeError(f"sporco: pip download failed: {result.stderr.strip()[-300:]}")
    wheel = wheels[-1]
    version = wheel.name.split("-")[1]
    dest = cache / "sporco.tree"
    with zipfile.ZipFile(wheel) as archive:
        members = [
            m for m in archive.namelist() if m.startswith("sporco/data/") and m.endswith(".png")
        ]
        archive.extractall(dest, members)
    return [
        Candidate(
            name=f"sporco-{Path(m).stem}",
            path=dest / m,
            package="pypi:sporco",
            version=version,
            package_path=m,
            licence="BSD-3-Clause (package); classic test image",
            downscale=False,
        )
        for m in sorted(members)
    ]


def _skimage_candidates() -> list[Candidate]:
    import skimage

    root = sources.embedded_dir()
    names = sources.EMBEDDED_TRAIN + sources.EMBEDDED_HELDOUT
    return [
        Candidate(
            name=f"skimage-{Path(n).stem}",
            path=root / n,
            package="pypi:scikit-image",
            version=skimage.__version__,
            package_path=f"skimage/data/{n}",
            licence="CC0 / public domain (skimage.data docstrings)",
            downscale=n.endswith(".jpg"),
        )
        for n in names
    ]


def candidates(cache: Path) -> list[Candidate]:
    """Every source photo, version-2 sources first, in a fixed order; names are unique."""
    found = (
        _debian_candidates(
            cache,
            "endless-sky-high-dpi",
            "usr/share/games/endless-sky/plugins/endless-sky-high-dpi/images/land",
            "endless-sky",
        )
        + _debian_candidates(cache, "scratch", "usr/share/scratch/Media/Backgrounds", "scratch")
        + _sporco_candidates(cache)
        + _skimage_candidates()
    )
    for source in PHOTO_PACKAGES:  # version 3: train only
        found += _package_candidates(cache, source)
    found += _matplotlib_candidates()
    for source in PHOTO_PACKAGES_V4:  # train only
        found += _package_candidates(cache, source)
    names = [c.name for c in found]
    if len(set(names)) != len(names):
        raise RuntimeError(
            f"duplicate image names: {sorted(n for n in names if names.count(n) > 1)}"
        )
    return found
