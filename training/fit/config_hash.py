"""The identity of a resolved config: a hash of what decides a run's numbers.

The runner stores it in the run's metrics.json (``config_hash``); ``python -m training sweep
--resume`` compares it with the hash of each trial's config to skip the trials already published.
"""

from __future__ import annotations

import hashlib
import json

# Keys that change speed only (the same batches, decoded once or every time, by any number of threads).
SPEED_ONLY = {"data": ("cache", "cache_dir", "workers")}


def config_hash(config: dict) -> str:
    """sha256 (hex, 16 characters) of the resolved ``config`` without its speed-only keys."""
    kept = dict(config)
    for section, keys in SPEED_ONLY.items():
        kept[section] = {k: v for k, v in (config.get(section) or {}).items() if k not in keys}
    text = json.dumps(kept, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
