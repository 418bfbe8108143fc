"""Reading a TOML configuration file (watchlist, subscribers) with errors that name the file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from store.errors import ConfigError


def read_toml(path: str) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, "file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"not valid TOML: {exc}") from None
