"""The trials of a sweep: config files (or folders of them) x grids of overrides.

A trial is one ``python -m training train CONFIG --set ...`` run. Its run name says what differs:
the config's name, then each grid key and value (``simple_v1__loss-dice__aug-v2``), cut to
``MAX_RUN_NAME`` with a short hash of the full name when too long.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

from training.fit.config import load_config
from training.fit.config_hash import config_hash
from training.runs.layout import MAX_RUN_NAME

# Short names of grid keys in trial names; otherwise the key's last part ("name": the part before).
SHORT_KEYS = {"augmentation": "aug", "learning_rate": "lr", "batch_size": "batch", "backbone": "bb"}
NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Trial:
    """One training of the sweep. ``config_hash`` is None when its config does not resolve
    (the trial runs anyway and fails with the command's own message)."""

    name: str
    config: Path
    overrides: tuple[str, ...]
    config_hash: str | None = None
    problem: str | None = field(default=None, compare=False)

    def command(self, python: str, artifacts: str | None) -> list[str]:
        """The ``train`` command line of this trial."""
        line = [python, "-m", "training", "-q", "train", str(self.config)]
        for override in self.overrides:
            line += ["--set", override]
        return line + (["--artifacts", str(artifacts)] if artifacts else [])


def config_files(inputs: list[str]) -> list[Path]:
    """The config files named, and the ``*.yaml`` of the folders named (sorted, bases left out)."""
    files = []
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            files += sorted(p for p in path.glob("*.yaml") if not p.name.startswith("_"))
        elif path.is_file():
            files.append(path)
        else:
            raise ValueError(f"{given}: no such config file or folder")
    if not files:
        raise ValueError(f"no config files in {', '.join(inputs)}")
    return files


def parse_grid(text: str) -> tuple[str, list[str]]:
    """``"loss.name=cce,dice"`` -> ``("loss.name", ["cce", "dice"])``."""
    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise ValueError(f"--grid {text!r}: expected KEY=VALUE,VALUE,...")
    return key.strip(), [value.strip() for value in values.split(",")]


def short_key(key: str) -> str:
    parts = key.split(".")
    last = parts[-2] if parts[-1] == "name" and len(parts) > 1 else parts[-1]
    return SHORT_KEYS.get(last, last)


def trial_name(base: str, choices: list[tuple[str, str]]) -> str:
    """``base__key-value__...``, at most ``MAX_RUN_NAME`` characters."""
    parts = [base] + [f"{short_key(key)}-{value}" for key, value in choices]
    name = NOT_IN_NAME.sub("_", "__".join(parts)).lstrip("_.-") or "trial"
    if len(name) > MAX_RUN_NAME:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[:MAX_RUN_NAME - 10]}__{digest}"
    return name


def expand(inputs: list[str], grids: list[str] = (), overrides: list[str] = ()) -> list[Trial]:
    """Every (config file, grid point) pair, with ``overrides`` (``--set``) applied to all."""
    grid = [parse_grid(text) for text in grids]
    trials = []
    for path in config_files(inputs):
        base = load_base_name(path, overrides)
        for values in itertools.product(*[values for _, values in grid]):
            choices = [(key, value) for (key, _), value in zip(grid, values)]
            name = trial_name(base, choices) if choices else base
            sets = tuple(overrides) + tuple(f"{key}={value}" for key, value in choices) + (f"name={name}",)
            try:
                digest, problem = config_hash(load_config(path, list(sets))), None
            except (ValueError, KeyError, OSError) as error:
                digest, problem = None, str(error)
            trials.append(Trial(name, path, sets, digest, problem))
    names = [trial.name for trial in trials]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"two trials would publish the same run name: {', '.join(twice)}")
    return trials


def load_base_name(path: Path, overrides) -> str:
    """The name a config would train under (its ``name``, else its file's stem)."""
    try:
        return load_config(path, [o for o in overrides if o.startswith("name=")])["name"]
    except (ValueError, KeyError, OSError):
        return path.stem
