"""Settings from, in order of precedence: command-line flags, environment variables,
a TOML config file, built-in defaults. ``bench config`` shows each value and its source.

The config file is ``$BRAINBENCH_CONFIG`` or ``<home>/config.toml``; keys are the
setting names below, e.g.::

    nsd_root = "/data/nsd"
    weights = "/models/dinov3"
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import BrainbenchError

# name -> (environment variable, default, help)
SETTINGS: dict[str, tuple[str, str | None, str]] = {
    "home": ("BRAINBENCH_HOME", "~/.cache/brainbench", "cache and default database folder"),
    "db": ("BRAINBENCH_DB", None, "results database (default: <home>/results.db)"),
    "device": ("BRAINBENCH_DEVICE", "auto", "auto, cpu, cuda or cuda:N"),
    "weights": ("BRAINBENCH_WEIGHTS", None, "folder of local model weights"),
    "nsd_root": ("BRAINBENCH_NSD_ROOT", None, "Natural Scenes Dataset root"),
    "things_meg_root": ("BRAINBENCH_THINGS_MEG_ROOT", None, "THINGS-MEG (ds004212) root"),
    "things_images_root": ("BRAINBENCH_THINGS_IMAGES", None, "THINGS images root"),
    "nsd_terms_agreed": ("BRAINBENCH_NSD_TERMS_AGREED", None, "NSD Terms accepted (bench data fetch nsd)"),
}


@dataclass(frozen=True)
class Setting:
    name: str
    value: str | None
    source: str  # "flag", "env BRAINBENCH_…", "config <path>", "default"


def config_path() -> Path:
    """Where the TOML config file is read from."""
    explicit = os.environ.get("BRAINBENCH_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("BRAINBENCH_HOME") or SETTINGS["home"][1]
    return Path(home).expanduser() / "config.toml"


def _read_file(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BrainbenchError(f"config file {path} is not valid TOML ({exc})") from None
    unknown = sorted(set(data) - set(SETTINGS))
    if unknown:
        raise BrainbenchError(
            f"config file {path} has unknown keys {unknown}; known keys: {', '.join(SETTINGS)}"
        )
    return data


#: values given as command-line flags for this process (``bench run --nsd-root …``), so that
#: plugins calling ``Config()`` see them too
_FLAGS: dict[str, str] = {}


def set_flags(**flags: str | None) -> None:
    """Record command-line flag values (None = not given) for every later ``Config()``."""
    unknown = set(flags) - set(SETTINGS)
    if unknown:
        raise TypeError(f"unknown settings {sorted(unknown)}")
    _FLAGS.update({k: str(v) for k, v in flags.items() if v is not None})


def clear_flags() -> None:
    _FLAGS.clear()


class Config:
    """Resolved settings; ``overrides`` (None = not given) act like command-line flags."""

    def __init__(self, **overrides: str | None):
        unknown = set(overrides) - set(SETTINGS)
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}")
        overrides = {**_FLAGS, **{k: v for k, v in overrides.items() if v is not None}}
        self.file = config_path()
        file_values = _read_file(self.file)
        self.settings: dict[str, Setting] = {}
        for name, (env, default, _help) in SETTINGS.items():
            if overrides.get(name) is not None:
                setting = Setting(name, str(overrides[name]), "flag")
            elif os.environ.get(env):
                setting = Setting(name, os.environ[env], f"env {env}")
            elif name in file_values:
                setting = Setting(name, str(file_values[name]), f"config {self.file}")
            else:
                setting = Setting(name, default, "default")
            self.settings[name] = setting

    def get(self, name: str) -> str | None:
        return self.settings[name].value

    def path(self, name: str) -> Path | None:
        value = self.get(name)
        return None if value is None else Path(value).expanduser()

    @property
    def home(self) -> Path:
        return self.path("home")

    @property
    def db_path(self) -> Path:
        return self.path("db") or self.home / "results.db"

    @property
    def cache_dir(self) -> Path:
        return self.home / "activations"

    def rows(self) -> list[Setting]:
        rows = list(self.settings.values())
        if self.get("db") is None:
            rows[1] = Setting("db", str(self.db_path), "default (<home>/results.db)")
        return rows


def weights_root(weights_dir: str | os.PathLike | None = None) -> Path | None:
    """The folder of local weights: ``weights_dir``, else the ``weights`` setting (env or config file),
    else ``<home>/weights`` when that folder exists (where ``bench trajectory make`` writes by default)."""
    config = Config()
    value = weights_dir if weights_dir is not None else config.get("weights")
    if value:
        return Path(value).expanduser()
    default = config.home / "weights"
    return default if default.is_dir() else None


def default_weights_root() -> Path:
    """Where ``bench trajectory make`` writes by default: :func:`weights_root`, else ``<home>/weights``."""
    return weights_root() or Config().home / "weights"


def remember(name: str, value: str | bool) -> Path:
    """Set ``name`` in the config file (other lines kept as they are); returns the file's path."""
    import json
    import re

    if name not in SETTINGS:
        raise TypeError(f"unknown setting {name!r}")
    path = config_path()
    lines = path.read_text().splitlines() if path.is_file() else []
    lines = [line for line in lines if not re.match(rf"\s*{name}\s*=", line)]
    lines.append(f"{name} = {'true' if value is True else json.dumps(str(value))}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
