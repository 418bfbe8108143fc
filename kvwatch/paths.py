"""Where kvwatch finds its files when none is named: the current directory first, then the user's
configuration directory (XDG: `~/.config/kvwatch/` for watchlist.toml and subscribers.toml) and data
directory (`~/.local/share/kvwatch/kvwatch.db`), via platformdirs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

WATCHLIST, SUBSCRIBERS, DATABASE = "watchlist.toml", "subscribers.toml", "kvwatch.db"


@dataclass(frozen=True)
class Files:
    watchlist: str
    subscribers: str
    db_url: str
    how: dict[str, str]  # for `kvwatch doctor`: where each came from


def resolve(watchlist: str | None, subscribers: str | None, db_url: str | None) -> Files:
    """Named files (an option or its environment variable) win; then ./; then the user's directories."""
    from platformdirs import user_config_dir, user_data_dir

    config, data = Path(user_config_dir("kvwatch")), Path(user_data_dir("kvwatch"))
    how: dict[str, str] = {}

    def pick(named: str | None, name: str, key: str) -> str:
        if named:
            how[key] = "named by option or environment"
            return named
        if Path(name).exists() or not (config / name).exists():
            how[key] = "current directory"
            return name
        how[key] = "user configuration directory"
        return str(config / name)

    wl, subs = pick(watchlist, WATCHLIST, "watchlist"), pick(subscribers, SUBSCRIBERS, "subscribers")
    if db_url:
        how["database"] = "named by option or environment"
    elif Path(DATABASE).exists() or how["watchlist"] != "user configuration directory":
        db_url, how["database"] = f"sqlite:///{DATABASE}", "current directory"
    else:
        data.mkdir(parents=True, exist_ok=True)
        db_url, how["database"] = f"sqlite:///{data / DATABASE}", "user data directory"
    return Files(wl, subs, db_url, how)
