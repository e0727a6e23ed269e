"""``licensecore graph apply``: perform membership changes through Graph ``$batch`` requests.

Sub-requests: a remove is ``DELETE /groups/{g}/members/{u}/$ref``; adds to one group are packed
20 to a ``PATCH /groups/{g}`` with ``members@odata.bind``. Removes go first (they free seats the
adds may need), then adds group by group; 20 sub-requests make one ``$batch``, so a plan takes
``ceil((removes + sum over groups of ceil(adds / 20)) / 20)`` requests, that is
``ceil(adds / 400) + ceil(removes / 20)`` when each group's adds are a multiple of 20, plus retries.

The batch body is JSON posted through the SDK's request adapter (authentication, middleware), not
msgraph-core's ``BatchRequestContent``: that one drops JSON response bodies, writes absolute item
URLs and ``depends_on``, and leaves throttled items unretried. Retries are ours, with the SDK's
retry handler off for the batch: a throttled or failed whole batch (429/5xx, or a broken
connection) is sent again after its ``Retry-After`` (else exponential backoff); items answered
429/5xx go back to the head of the queue and the next batch waits for the largest ``Retry-After``
among them. Both operations are made idempotent: "already exist" (400) on an add and 404 on a remove
count as done (unchanged). Graph's multi-member PATCH is all-or-nothing, so a PATCH refused that
way, or for another client error (such as one deleted user), is split into single adds to tell
which member it was. A 403 stops the run with the permission to grant.

Every change is journaled (:mod:`licensecore.clients.graph.journal`): ``sent`` before its batch
goes out, ``done``/``failed`` after; a re-run skips what is done.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx
from kiota_abstractions.api_error import APIError
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphServiceClient
from tqdm import tqdm

from licensecore.clients.graph.errors import ERRORS, PERMISSIONS, GraphPermissionError
from licensecore.clients.graph.journal import Change, Journal

BATCH_ITEMS = 20
MEMBERS_PER_ADD = 20
RETRYABLE = frozenset({429, 500, 502, 503, 504})
ALREADY_EXISTS = "One or more added object references already exist"


@dataclass
class RetryPolicy:
    """At most ``attempts`` sends per item (and per whole batch); waits ``Retry-After`` when Graph
    gives it, else ``backoff * 2**(attempt-1)`` seconds up to ``max_backoff``."""

    attempts: int = 8
    backoff: float = 1.0
    max_backoff: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                pass
        return min(self.max_backoff, self.backoff * 2 ** (attempt - 1))


@dataclass
class Summary:
    """What a run did. ``unchanged``: already in place (absorbed as done); ``earlier``: skipped,
    recorded done in the journal by an earlier run."""

    applied: int = 0
    unchanged: int = 0
    earlier: int = 0
    failed: dict[Change, str] = field(default_factory=dict)
    requests: int = 0  # $batch requests sent, retries included
    retried: int = 0  # sub-requests sent again after 429/5xx


@dataclass
class _Item:
    """One sub-request: a remove, or up to 20 adds to one group."""

    op: str
    changes: list[Change]
    attempts: int = 0


def sub_requests(changes: Iterable[Change]) -> list[_Item]:
    """The sub-requests of ``changes``: removes first, then adds by group, 20 to a PATCH."""
    changes = list(changes)
    items = [_Item("remove", [c]) for c in changes if c.op == "remove"]
    by_group: dict[str, list[Change]] = {}
    for c in changes:
        if c.op == "add":
            by_group.setdefault(c.license_group_id, []).append(c)
    for adds in by_group.values():
        items.extend(_Item("add", adds[i:i + MEMBERS_PER_ADD])
                     for i in range(0, len(adds), MEMBERS_PER_ADD))
    return items


def batch_count(changes: Iterable[Change]) -> int:
    """``$batch`` requests ``changes`` take without retries."""
    return -(-len(sub_requests(changes)) // BATCH_ITEMS)


async def apply_changes(client: GraphServiceClient, base_url: str, changes: Iterable[Change],
                        journal: Journal, policy: RetryPolicy | None = None) -> Summary:
    """Perform ``changes`` (those not already done in ``journal``)."""
    changes = list(changes)
    runner = _Runner(client, base_url, journal, policy or RetryPolicy())
    done = journal.done()
    todo = [c for c in changes if c not in done]
    runner.summary.earlier = len(set(changes) & done)
    await runner.run(todo)
    return runner.summary


class _Runner:
    def __init__(self, client: GraphServiceClient, base_url: str, journal: Journal,
                 policy: RetryPolicy) -> None:
        self.adapter, self.base_url = client.request_adapter, base_url
        self.journal, self.policy, self.summary = journal, policy, Summary()

    async def run(self, changes: list[Change]) -> None:
        queue = deque(sub_requests(changes))
        with tqdm(total=len(changes), desc="apply", unit=" changes", disable=None,
                  file=sys.stderr) as bar:
            while queue:
                batch = [queue.popleft() for _ in range(min(BATCH_ITEMS, len(queue)))]
                self.journal.sent(c for item in batch for c in item.changes)
                responses = await self._post(batch)
                again, wait, settled = self._settle(batch, responses)
                bar.update(settled)
                queue.extendleft(reversed(again))
                if wait:
                    await self.policy.sleep(wait)

    def _settle(self, batch: list[_Item],
                responses: dict[str, dict]) -> tuple[list[_Item], float, int]:
        """Journal the outcomes of a batch; returns the items to send again, how long to wait
        first, and how many changes were settled."""
        again: list[_Item] = []
        outcomes: list[tuple[Change, str, str | None]] = []
        wait, forbidden = 0.0, None
        for i, item in enumerate(batch):
            response = responses.get(str(i), {"status": 503})  # unanswered: send it again
            verdict, detail = _verdict(item, response)
            if verdict == "applied":
                self.summary.applied += len(item.changes)
                outcomes += [(c, "done", None) for c in item.changes]
            elif verdict == "unchanged":
                self.summary.unchanged += len(item.changes)
                outcomes += [(c, "done", "already in place") for c in item.changes]
            elif verdict == "split":
                again += [_Item("add", [c]) for c in item.changes]
            elif verdict == "retry" and item.attempts + 1 < self.policy.attempts:
                item.attempts += 1
                self.summary.retried += 1
                again.append(item)
                headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
                wait = max(wait, self.policy.delay(item.attempts, headers.get("retry-after")))
            elif verdict == "forbidden":
                forbidden = detail
            else:
                if verdict == "retry":
                    detail = f"gave up after {self.policy.attempts} attempts: {detail}"
                self.summary.failed.update((c, detail) for c in item.changes)
                outcomes += [(c, "failed", detail) for c in item.changes]
        self.journal.record(outcomes)
        if forbidden is not None:
            raise GraphPermissionError("change group memberships", PERMISSIONS["members"], forbidden)
        return again, wait, len(outcomes)

    def _request(self, index: int, item: _Item) -> dict:
        group = quote(item.changes[0].license_group_id, safe="")
        if item.op == "remove":
            account = quote(item.changes[0].account_id, safe="")
            return {"id": str(index), "method": "DELETE",
                    "url": f"/groups/{group}/members/{account}/$ref"}
        refs = [f"{self.base_url}/directoryObjects/{quote(c.account_id, safe='')}"
                for c in item.changes]
        return {"id": str(index), "method": "PATCH", "url": f"/groups/{group}",
                "headers": {"Content-Type": "application/json"},
                "body": {"members@odata.bind": refs}}

    async def _post(self, batch: list[_Item]) -> dict[str, dict]:
        """Send one ``$batch``; returns its responses by id. Whole-batch failures are retried."""
        body = json.dumps({"requests": [self._request(i, it) for i, it in enumerate(batch)]})
        attempt = 0
        while True:
            attempt += 1
            info = RequestInformation(Method.POST, "{+baseurl}/$batch")
            info.headers.try_add("Accept", "application/json")
            info.set_stream_content(body.encode(), "application/json")
            info.add_request_options([RetryHandlerOption(should_retry=False)])
            self.summary.requests += 1
            try:
                raw = await self.adapter.send_primitive_async(info, "bytes", ERRORS)
                return {r["id"]: r for r in json.loads(raw).get("responses", ())}
            except (APIError, httpx.TransportError) as exc:
                status = getattr(exc, "response_status_code", None)
                if status == 403:
                    raise GraphPermissionError("send a $batch", PERMISSIONS["members"],
                                               str(exc)) from exc
                broken = isinstance(exc, httpx.TransportError)  # outcome unknown: safe to resend
                if not (broken or status in RETRYABLE) or attempt >= self.policy.attempts:
                    raise
                headers = getattr(exc, "response_headers", None) or {}
                await self.policy.sleep(self.policy.delay(attempt, headers.get("retry-after")))


def _verdict(item: _Item, response: dict) -> tuple[str, str]:
    """applied | unchanged | split | retry | forbidden | failed, with Graph's message."""
    status = int(response.get("status", 0))
    body = response.get("body")
    error = (body.get("error") or {}) if isinstance(body, dict) else {}
    detail = f"{status} {error.get('code', '')}: {error.get('message', '')}".strip()
    if 200 <= status < 300:
        return "applied", ""
    if status in RETRYABLE:
        return "retry", detail
    if status == 403:
        return "forbidden", detail
    if item.op == "remove" and status == 404:
        return "unchanged", ""
    if item.op == "add" and len(item.changes) > 1:
        return "split", detail
    if item.op == "add" and status == 400 and ALREADY_EXISTS in error.get("message", ""):
        return "unchanged", ""
    return "failed", detail
