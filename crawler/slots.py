"""Where a fetch worker stands, and the per-host limit shared by every worker.

A crawl run by a worker (`kvwatch worker`) carries an `Origin`: its region and cycle (stamped on every
fetch row), the address it sends from, the cycle's deadline, and the per-host limit. `HostSlots`, a
downloader middleware, takes one of the host's global slots (store.leases: an advisory lock in the
shared PostgreSQL store) before each download and gives it back after, so `concurrency_per_domain`
holds across all workers, not per worker. A single-machine crawl has no Origin and no middleware.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import task, threads

from store.db import make_engine
from store.leases import Leases

log = logging.getLogger(__name__)
SLOT = "kvwatch_host_slot"  # request.meta: the (host, slot) this download holds
FIRST_WAIT, LONGEST_WAIT = 0.02, 0.5  # seconds between tries for a busy host's slot (doubling)


@dataclass(frozen=True)
class Origin:
    region: str | None  # None: the worker takes pages of any region
    cycle: str
    host_limit: int
    deadline: float  # epoch seconds: a request still waiting for its host's slot then gives up
    source_address: str | None = None  # the local address requests leave from (DOWNLOAD_BIND_ADDRESS)

    def scrapy_settings(self) -> dict[str, Any]:
        return {
            "KVWATCH_REGION": self.region, "KVWATCH_CYCLE": self.cycle, "KVWATCH_HOST_LIMIT": self.host_limit,
            "KVWATCH_DEADLINE": self.deadline, "DOWNLOAD_BIND_ADDRESS": self.source_address,
        }


class NoHostSlot(Exception):
    """The cycle's deadline passed while the request waited for a free slot of its host."""


class HostSlots:
    def __init__(self, crawler: Any, limit: int, deadline: float):
        self.leases = Leases(make_engine(crawler.settings["KVWATCH_DB"]))
        self.limit, self.deadline = limit, deadline
        crawler.signals.connect(self.closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Any) -> HostSlots:
        limit = crawler.settings.getint("KVWATCH_HOST_LIMIT")
        if not limit:
            raise NotConfigured("no Origin: a single-machine crawl")
        return cls(crawler, limit, crawler.settings.getfloat("KVWATCH_DEADLINE"))

    async def process_request(self, request: Request) -> None:
        host = urlsplit(request.url).hostname or ""
        wait = FIRST_WAIT
        while True:  # bounded by the cycle's deadline
            slot = await maybe_deferred_to_future(threads.deferToThread(self.leases.try_host, host, self.limit))
            if slot is not None:
                request.meta[SLOT] = (host, slot)
                return
            if time.time() > self.deadline:
                raise NoHostSlot(f"no free slot on {host} (a limit of {self.limit} shared by every worker) before the cycle's deadline")
            from twisted.internet import reactor  # the crawl's own (importing it at module level would install the default one)

            await maybe_deferred_to_future(task.deferLater(reactor, wait, lambda: None))
            wait = min(wait * 2, LONGEST_WAIT)

    def process_response(self, request: Request, response: Response) -> Response:
        self._release(request)
        return response

    def process_exception(self, request: Request, exception: BaseException) -> None:
        self._release(request)

    def _release(self, request: Request) -> None:
        held = request.meta.pop(SLOT, None)  # popped: a retry or redirect copies meta, and must take its own slot
        if held is not None:
            self.leases.release_host(*held)

    def closed(self) -> None:
        self.leases.close()
