"""A local Microsoft Graph emulator for the graph client tests (127.0.0.1 only).

A ``ThreadingHTTPServer`` in a thread serving the calls the client makes, in Graph's JSON shapes:
``subscribedSkus``, ``users`` (with ``signInActivity``), ``users/delta``, ``groups/delta`` (with
``members@delta``, one group split over several items when large), ``groups/{id}/members/graph.user``,
``devices`` with ``$expand=registeredOwners``, ``PATCH /groups/{id}`` (``members@odata.bind``,
atomic like Graph: one existing reference fails the whole request), ``DELETE
/groups/{g}/members/{u}/$ref`` and ``$batch``. Paging by ``$top`` / ``Prefer: odata.maxpagesize``
with ``@odata.nextLink``; delta links over a change log; a bearer token is required.

Test hooks: ``inject`` faults (429/5xx with ``Retry-After``, on whole requests or on batch items,
optionally after applying the change), ``denied`` permissions (403), ``hang_after_batches``
(holds the response of the N-th batch so a test can kill the client mid-run), ``requests``
(every HTTP request received) and ``applied`` (every membership change actually made).
``populate`` makes a seeded synthetic tenant; ``graph_cli`` runs the ``graph`` commands.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TOKEN = "emulator-token"
MEMBER_CHUNK = 500  # members@delta entries per group item
ALREADY_EXISTS = ("One or more added object references already exist for the following "
                  "modified properties: 'members'.")
USER_TYPE = "#microsoft.graph.user"


@dataclass
class Fault:
    """Answer ``status`` to the next ``count`` matching calls (every ``every``-th one)."""

    status: int
    where: str  # "request" (a whole HTTP request) or "item" (a $batch sub-request)
    path: str = ""  # matching path prefix, e.g. "/$batch" or "/users"
    count: int = 1
    every: int = 1
    retry_after: int | None = None
    after_apply: bool = False  # items: make the change, then answer the fault
    seen: int = 0

    def fires(self, path: str) -> bool:
        if self.count <= 0 or not path.startswith(self.path):
            return False
        self.seen += 1
        if self.seen % self.every:
            return False
        self.count -= 1
        return True


def _error(status: int, code: str, message: str, retry_after: int | None = None):
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return status, headers, {"error": {"code": code, "message": message}}


def _fault(fault: Fault):
    code = "TooManyRequests" if fault.status == 429 else "ServiceUnavailable"
    return _error(fault.status, code, "injected fault", fault.retry_after)


class GraphEmulator:
    """The directory of one tenant and the HTTP server in front of it."""

    def __init__(self, page_size: int = 999, delta_page_size: int = 999, token: str = TOKEN) -> None:
        self.token, self.page_size, self.delta_page_size = token, page_size, delta_page_size
        self.users: dict[str, dict] = {}
        self.groups: dict[str, dict] = {}
        self.members: dict[str, set[str]] = {}
        self.devices: dict[str, dict] = {}
        self.skus: list[dict] = []
        self.denied: set[str] = set()
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.applied: list[tuple[str, str, str]] = []
        self.hang_after_batches: int | None = None
        self.hung, self.release = threading.Event(), threading.Event()
        self.batches = 0
        self._lock = threading.RLock()
        self._seq = 0
        self._user_seq: dict[str, int] = {}
        self._group_seq: dict[str, int] = {}
        self._member_seq: dict[tuple[str, str], int] = {}
        self._cursors: dict[str, tuple[list[dict], int, str | None]] = {}
        self._deltas: dict[str, tuple[int, str]] = {}  # token -> (sequence, $select)
        self._server: ThreadingHTTPServer | None = None
        self.base_url = ""

    # -- directory changes (each one is logged for delta queries) --------------------------------
    def _tick(self) -> int:
        self._seq += 1
        return self._seq

    def put_user(self, user: dict) -> None:
        with self._lock:
            self.users[user["id"]] = user
            self._user_seq[user["id"]] = self._tick()

    def delete_user(self, user_id: str) -> None:
        with self._lock:
            del self.users[user_id]
            self._user_seq[user_id] = self._tick()
            for group_id, members in self.members.items():
                if user_id in members:
                    self._set_member(group_id, user_id, False)

    def put_group(self, group_id: str, name: str, sku_ids: list[str]) -> None:
        with self._lock:
            self.groups[group_id] = {"id": group_id, "displayName": name,
                                     "assignedLicenses": [{"skuId": s, "disabledPlans": []}
                                                          for s in sku_ids]}
            self.members.setdefault(group_id, set())
            self._group_seq[group_id] = self._tick()

    def delete_group(self, group_id: str) -> None:
        with self._lock:
            del self.groups[group_id], self.members[group_id]
            self._group_seq[group_id] = self._tick()

    def _set_member(self, group_id: str, user_id: str, present: bool) -> None:
        (self.members[group_id].add if present else self.members[group_id].discard)(user_id)
        self._member_seq[(group_id, user_id)] = self._tick()

    def add_member(self, group_id: str, user_id: str) -> None:
        with self._lock:
            self._set_member(group_id, user_id, True)

    def remove_member(self, group_id: str, user_id: str) -> None:
        with self._lock:
            self._set_member(group_id, user_id, False)

    def inject(self, status: int, where: str = "request", **options) -> Fault:
        """Add a fault (see :class:`Fault`); returns it so a test can read what is left."""
        fault = Fault(status, where, **options)
        self.faults.append(fault)
        return fault

    def expire_delta_links(self) -> None:
        with self._lock:
            self._deltas.clear()

    def request_count(self, path: str = "") -> int:
        return sum(1 for _, p in self.requests if p.startswith(path))

    # -- the server -------------------------------------------------------------------------------
    def start(self) -> str:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def setup(self) -> None:
                super().setup()  # answers go out in two writes: no Nagle delay between them
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                status, headers, payload = emulator._handle(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                data = json.dumps(payload).encode() if payload is not None else b""
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    if data:
                        self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client was killed while we answered
                    pass

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1.0"
        return self.base_url

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _handle(self, method: str, raw_path: str, headers: dict, body):
        parts = urlsplit(raw_path)
        path = parts.path.removeprefix("/v1.0")
        with self._lock:
            self.requests.append((method, path))
            if headers.get("authorization") != f"Bearer {self.token}":
                return _error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
            for fault in self.faults:
                if fault.where == "request" and fault.fires(path):
                    return _fault(fault)
            if method == "POST" and path == "/$batch":
                result = self._batch(body)
            else:
                return self._route(method, path, parse_qs(parts.query), headers, body)
        if self.hang_after_batches == self.batches:
            self.hung.set()
            self.release.wait(30)
        return result

    def _batch(self, body: dict):
        items = body.get("requests", [])
        if len(items) > 20:
            return _error(400, "BadRequest", "A batch can hold at most 20 requests.")
        responses = []
        for item in items:
            parts = urlsplit(item["url"])
            path = parts.path.removeprefix("/v1.0")
            fault = next((f for f in self.faults if f.where == "item" and f.fires(path)), None)
            if fault is None or fault.after_apply:
                status, headers, payload = self._route(item["method"], path, parse_qs(parts.query),
                                                       item.get("headers", {}), item.get("body"))
            if fault is not None:
                status, headers, payload = _fault(fault)
            response = {"id": item["id"], "status": status, "headers": headers}
            if payload is not None:
                response["body"] = payload
            responses.append(response)
        self.batches += 1
        return 200, {}, {"responses": responses}

    def _route(self, method: str, path: str, query: dict, headers: dict, body):
        q = {k.removeprefix("$"): v[0] for k, v in query.items()}
        segments = [s for s in path.split("/") if s]
        need = _PERMISSIONS.get((method, segments[0] if segments else "", "signInActivity"
                                 in q.get("select", "")))
        if need and need in self.denied:
            return _error(403, "Authorization_RequestDenied",
                          "Insufficient privileges to complete the operation.")
        if "skiptoken" in q:
            return self._page(q["skiptoken"])
        match method, segments:
            case "GET", ["subscribedSkus"]:
                return 200, {}, {"value": self.skus}
            case "GET", ["users"]:
                return self._list(self._select(self.users.values(), q.get("select", "")), q)
            case "GET", [("users" | "groups") as resource, "delta()" | "delta"]:
                return self._delta(q, headers, resource)
            case "GET", ["groups", group_id, "members", "graph.user" | "microsoft.graph.user"]:
                return self._list([{"@odata.type": USER_TYPE, "id": u}
                                   for u in sorted(self.members.get(group_id, ()))], q)
            case "GET", ["devices"]:
                return self._list(self._devices(q), q)
            case "PATCH", ["groups", group_id]:
                return self._add(group_id, body or {})
            case "DELETE", ["groups", group_id, "members", user_id, "$ref"]:
                return self._remove(group_id, user_id)
        return _error(404, "Request_ResourceNotFound", f"no route for {method} {path}")

    # -- reads ------------------------------------------------------------------------------------
    def _list(self, items: list[dict], q: dict):
        return self._paged(items, min(int(q.get("top", 100)), self.page_size), None)

    def _paged(self, items: list[dict], size: int, delta_link: str | None):
        token = uuid.uuid4().hex
        self._cursors[token] = (items, size, delta_link)
        return self._page(token + ":0")

    def _page(self, skiptoken: str):
        token, _, offset = skiptoken.partition(":")
        if token not in self._cursors:
            return _error(400, "BadRequest", "unknown $skiptoken")
        items, size, delta_link = self._cursors[token]
        start = int(offset)
        page = {"value": items[start:start + size]}
        if start + size < len(items):
            page["@odata.nextLink"] = f"{self.base_url}/next?$skiptoken={token}:{start + size}"
        elif delta_link is not None:
            page["@odata.deltaLink"] = delta_link
        return 200, {}, page

    @staticmethod
    def _select(objects, select: str) -> list[dict]:
        keep = set(select.split(",")) | {"id"}
        return [{k: v for k, v in o.items() if k in keep} for o in objects]

    def _delta(self, q: dict, headers: dict, resource: str):
        if "deltatoken" in q:
            if q["deltatoken"] not in self._deltas:
                return _error(400, "syncStateNotFound", "The sync state generation is not found. "
                              "The delta token is expired and data must be synchronized again.")
            since, select = self._deltas[q["deltatoken"]]
        else:
            since, select = None, q.get("select", "")
        token = uuid.uuid4().hex
        self._deltas[token] = (self._seq, select)
        prefer = headers.get("prefer", "")
        size = int(prefer.split("odata.maxpagesize=")[1]) if "maxpagesize=" in prefer else 100
        items = (self._user_delta if resource == "users" else self._group_delta)(since, select)
        link = f"{self.base_url}/{resource}/delta?$deltatoken={token}"
        return self._paged(items, min(size, self.delta_page_size), link)

    def _user_delta(self, since: int | None, select: str) -> list[dict]:
        if since is None:
            return self._select(self.users.values(), select)
        changed = sorted(u for u, s in self._user_seq.items() if s > since)
        return [self._select([self.users[u]], select)[0] if u in self.users
                else {"id": u, "@removed": {"reason": "changed"}} for u in changed]

    def _group_delta(self, since: int | None, select: str) -> list[dict]:
        """Changed groups (all of them on the first round); members@delta when selected."""
        moved: dict[str, list[dict]] = {}
        if "members" in select.split(","):
            if since is None:
                pairs = sorted((g, u) for g, members in self.members.items() for u in members)
            else:
                pairs = sorted(k for k, s in self._member_seq.items() if s > since)
            for g, u in pairs:
                entry = {"@odata.type": USER_TYPE, "id": u}
                if u not in self.members.get(g, ()):
                    entry["@removed"] = {"reason": "deleted"}
                moved.setdefault(g, []).append(entry)
        if since is None:
            changed = set(self.groups)
        else:
            changed = {g for g, s in self._group_seq.items() if s > since}
        items = []
        for g in sorted(changed | set(moved)):
            if g not in self.groups:
                items.append({"id": g, "@removed": {"reason": "changed"}})
                continue
            head = self._select([self.groups[g]], select)[0] if g in changed else {"id": g}
            entries = moved.get(g, [])
            for start in range(0, max(len(entries), 1), MEMBER_CHUNK):
                item = dict(head) if start == 0 else {"id": g}
                if entries:
                    item["members@delta"] = entries[start:start + MEMBER_CHUNK]
                items.append(item)
        return items

    def _devices(self, q: dict) -> list[dict]:
        expand = "registeredOwners" in q.get("expand", "")
        out = []
        for device in self.devices.values():
            row = self._select([device], q.get("select", ""))[0]
            if expand:
                row["registeredOwners"] = [{"@odata.type": USER_TYPE, "id": u}
                                           for u in device.get("owners", [])]
            out.append(row)
        return out

    # -- writes -----------------------------------------------------------------------------------
    def _add(self, group_id: str, body: dict):
        refs = body.get("members@odata.bind", [])
        if group_id not in self.groups:
            return _error(404, "Request_ResourceNotFound", f"Resource '{group_id}' does not exist.")
        if len(refs) > 20:
            return _error(400, "Request_BadRequest", "At most 20 members can be added at once.")
        user_ids = [ref.rstrip("/").rsplit("/", 1)[-1] for ref in refs]
        if any(u not in self.users for u in user_ids):
            missing = next(u for u in user_ids if u not in self.users)
            return _error(404, "Request_ResourceNotFound", f"Resource '{missing}' does not exist.")
        if any(u in self.members[group_id] for u in user_ids):
            return _error(400, "Request_BadRequest", ALREADY_EXISTS)
        for user_id in user_ids:
            self._set_member(group_id, user_id, True)
            self.applied.append(("add", group_id, user_id))
        return 204, {}, None

    def _remove(self, group_id: str, user_id: str):
        if user_id not in self.members.get(group_id, ()):
            return _error(404, "Request_ResourceNotFound", f"Resource '{user_id}' does not exist.")
        self._set_member(group_id, user_id, False)
        self.applied.append(("remove", group_id, user_id))
        return 204, {}, None


# (method, first path segment, signInActivity selected) -> the permission that call needs
_PERMISSIONS = {
    ("GET", "subscribedSkus", False): "Organization.Read.All",
    ("GET", "users", False): "User.Read.All",
    ("GET", "users", True): "AuditLog.Read.All",
    ("GET", "groups", False): "GroupMember.Read.All",
    ("GET", "devices", False): "Device.Read.All",
    ("PATCH", "groups", False): "GroupMember.ReadWrite.All",
    ("DELETE", "groups", False): "GroupMember.ReadWrite.All",
}


def guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def make_user(rng: random.Random, index: int, sku_ids: list[str], group_of: dict[str, str]) -> dict:
    """A user with one or two licenses, some via a group (``group_of``: sku -> group id)."""
    skus = rng.sample(sku_ids, rng.randint(0, min(2, len(sku_ids))))
    states = [{"skuId": s, "assignedByGroup": group_of.get(s) if rng.random() < 0.5 else None,
               "state": rng.choice(["Active", "Active", "Error"]), "error": "None",
               "disabledPlans": []} for s in skus]
    signed_in = rng.random() < 0.8
    return {
        "id": guid(rng), "userPrincipalName": f"user{index}@contoso.example",
        "accountEnabled": rng.random() < 0.9, "usageLocation": rng.choice(["US", "DE", "FR", None]),
        "department": rng.choice(["Sales", "R&D", None]), "jobTitle": rng.choice(["Engineer", None]),
        "country": rng.choice(["United States", "Germany", None]),
        "assignedLicenses": [{"skuId": s, "disabledPlans": []} for s in skus],
        "licenseAssignmentStates": states,
        "signInActivity": {"lastSignInDateTime":
                           f"2025-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T08:30:00Z"}
        if signed_in else {"lastSignInDateTime": None},
    }


def populate(emulator: GraphEmulator, users: int, seed: int = 0, groups: int = 4,
             devices: int = 0, members_per_group: int = 0) -> None:
    """A synthetic tenant: three SKUs, ``groups`` license groups plus one unlicensed group."""
    rng = random.Random(seed)
    sku_ids = [guid(rng) for _ in range(3)]
    emulator.skus = [{"skuId": s, "skuPartNumber": f"SKU_{i}", "consumedUnits": 10 * i,
                      "prepaidUnits": {"enabled": 100 * (i + 1), "suspended": 0, "warning": 0},
                      "servicePlans": [{"servicePlanId": guid(rng), "servicePlanName": f"PLAN_{i}"}]}
                     for i, s in enumerate(sku_ids)]
    group_ids = [guid(rng) for _ in range(groups + 1)]
    for i, g in enumerate(group_ids):
        emulator.put_group(g, f"group {i}", [sku_ids[i % 3]] if i < groups else [])
    group_of = {sku_ids[i % 3]: g for i, g in enumerate(group_ids[:groups])}
    for i in range(users):
        emulator.put_user(make_user(rng, i, sku_ids, group_of))
    user_ids = list(emulator.users)
    for g in group_ids:
        for u in rng.sample(user_ids, min(members_per_group, len(user_ids))):
            emulator.add_member(g, u)
    for i in range(devices):
        d = guid(rng)
        owners = rng.sample(user_ids, rng.randint(0, 2)) if user_ids else []
        emulator.devices[d] = {"id": d, "deviceId": guid(rng), "displayName": f"PC-{i}",
                               "owners": owners}


def graph_cli(argv: list[str]) -> int:
    """Run ``licensecore graph ...`` through :func:`add_graph_commands`, as the main CLI does."""
    from licensecore.clients.graph.cli import add_graph_commands

    parser = argparse.ArgumentParser(prog="licensecore")
    add_graph_commands(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    return args.run(args)
