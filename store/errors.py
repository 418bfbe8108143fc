"""kvwatch's error tree. Every error the library raises on purpose is one of these.

    KvwatchError
    ├── UsageError             a command-line value is not what it should be (exit 2)
    ├── ConfigError            a watchlist or subscribers file is malformed
    ├── StoreError
    │   ├── DatabaseUnavailable  the database cannot be opened or reached
    │   ├── RunLocked            another run holds the database
    │   └── NotFound             an unknown page id, snapshot or date
    ├── BrokerUnavailable      the fetch workers' task broker (KVWATCH_BROKER) cannot be reached
    ├── FetchError             one page could not be fetched (recorded, never raised past a run)
    └── DeliveryError          a channel did not confirm a message (kept pending, retried later)

It lives in `store` because `store` is the layer every other layer may import.
Messages name the file and entry, or the page id and URL.
"""

from __future__ import annotations


class KvwatchError(Exception):
    """Base of every kvwatch error."""


class UsageError(KvwatchError):
    """A command-line value is malformed (a date that is not one); the message echoes it as typed."""


class ConfigError(KvwatchError):
    """A configuration file is malformed. The message names the file, the entry and the key."""

    def __init__(self, path: str, message: str, entry: str | None = None, key: str | None = None):
        self.path, self.entry, self.key = path, entry, key
        where = [path] + ([entry] if entry else []) + ([f"key '{key}'"] if key else [])
        super().__init__(": ".join(where + [message]))


class StoreError(KvwatchError):
    """Something is wrong with the database."""


class DatabaseUnavailable(StoreError):
    """The database cannot be opened or reached."""


class RunLocked(StoreError):
    """Another kvwatch run is using this database."""


class NotFound(StoreError):
    """An unknown page id, snapshot id or date."""


class BrokerUnavailable(KvwatchError):
    """The task broker of the fetch workers (KVWATCH_BROKER) cannot be reached; the message names it
    without its password."""


class FetchError(KvwatchError):
    """One page could not be fetched; the message names the page id and URL."""

    def __init__(self, page_id: str, url: str, outcome: str, reason: str):
        self.page_id, self.url, self.outcome, self.reason = page_id, url, outcome, reason
        super().__init__(f"{page_id} <{url}>: {outcome}: {reason}")


class DeliveryError(KvwatchError):
    """A channel did not confirm a message; `retry_after` (seconds) when the channel said when to retry;
    `permanent` when retrying cannot help (a webhook that no longer exists, an archived channel)."""

    def __init__(self, channel: str, target: str, reason: str, retry_after: float | None = None, permanent: bool = False):
        self.channel, self.target, self.reason, self.retry_after, self.permanent = channel, target, reason, retry_after, permanent
        super().__init__(f"{channel} to {target}: {reason}")
