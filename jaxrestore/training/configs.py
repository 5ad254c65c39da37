"""Config files (configs/*.py, each with `get_config(variant)`): the one way to load them.

A spec is `path/to/file.py[:variant]`, as `--config` takes it; every loader here
and the train command's `--config` flag go through absl's `config_flags`, so a
config loaded by a test, a benchmark or the config checks is the config a run gets.
"""

from __future__ import annotations

from pathlib import Path

import ml_collections
from absl import flags
from ml_collections import config_flags

# The project's configs/: inside an installed wheel (jaxrestore/configs), else beside
# the package in the checkout.
_PACKAGED_CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PROJECT_CONFIGS = (
    _PACKAGED_CONFIGS
    if _PACKAGED_CONFIGS.is_dir()
    else Path(__file__).resolve().parents[2] / "configs"
)


def load(spec: str | Path, *overrides: str) -> ml_collections.ConfigDict:
    """The config of `spec` ('file.py[:variant]'; a bare stage name means its file in
    configs/), with `--config.field=value` overrides applied."""
    spec = str(spec)
    name, _, variant = spec.partition(":")
    if not name.endswith(".py"):
        spec = str(PROJECT_CONFIGS / f"{name}.py") + (f":{variant}" if variant else "")
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "config file", flag_values=values)
    values(["configs", f"--config={spec}", *overrides])
    return values.config


def reference(stage: str, fallback: Path | None = None) -> ml_collections.ConfigDict | None:
    """The default config of `stage` from configs/ (or of the `fallback` file when the
    project's configs/ is not beside the package), or None when neither exists."""
    path = PROJECT_CONFIGS / f"{stage}.py"
    if not path.exists():
        path = fallback
    if path is None or not Path(path).exists():
        return None
    return load(path)
