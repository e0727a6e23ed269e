"""Who an actor is (SPEC 3.2 `members(actor)`): group closure, roles, business roles by location.

Relations are CSR (``offsets``, ``values``) over dense codes. Group closure is one breadth-first
walk per actor with stamp arrays, so nesting depth and cycles cost nothing extra: each walk is
linear in the groups, edges and people it reaches, and no group-to-group closure is materialised.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._config import JIT
from .buffers import push

# Actor types, in the order of the SPEC's enum.
PERSON, GROUP, ROLE, BUSINESS_ROLE, COLLECTION = 0, 1, 2, 3, 4


@njit(**JIT)
def location_intervals(parent: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Euler-tour intervals of a forest given by ``parent`` (-1 for roots).

    Location ``a`` is ``b`` or below it iff ``enter[b] <= enter[a] < leave[b]``. Returns
    (enter, leave, in_cycle): nodes never reached from a root lie on or under a cycle.
    """
    n = parent.size
    child_count = np.zeros(n + 1, np.int64)
    for v in range(n):
        if parent[v] >= 0:
            child_count[parent[v] + 1] += 1
    offsets = np.cumsum(child_count)
    fill = offsets[:-1].copy()
    children = np.empty(offsets[-1], np.int64)
    for v in range(n):
        p = parent[v]
        if p >= 0:
            children[fill[p]] = v
            fill[p] += 1
    enter = np.full(n, -1, np.int64)
    leave = np.full(n, -1, np.int64)
    stack = np.empty(n, np.int64)
    cursor = np.zeros(n, np.int64)
    clock = 0
    for root in range(n):
        if parent[root] >= 0:
            continue
        top = 0
        stack[0] = root
        enter[root] = clock
        clock += 1
        while top >= 0:
            v = stack[top]
            k = offsets[v] + cursor[v]
            if k < offsets[v + 1]:
                cursor[v] += 1
                c = children[k]
                enter[c] = clock
                clock += 1
                top += 1
                stack[top] = c
            else:
                leave[v] = clock
                top -= 1
    return enter, leave, enter < 0


@njit(**JIT)
def resolve_actors(
    actor_type: np.ndarray,
    actor_code: np.ndarray,
    actor_location: np.ndarray,
    group_offsets: np.ndarray,
    group_groups: np.ndarray,
    group_person_offsets: np.ndarray,
    group_persons: np.ndarray,
    role_offsets: np.ndarray,
    role_persons: np.ndarray,
    brole_offsets: np.ndarray,
    brole_persons: np.ndarray,
    collection_offsets: np.ndarray,
    collection_persons: np.ndarray,
    person_location: np.ndarray,
    location_enter: np.ndarray,
    location_leave: np.ndarray,
    n_person: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The people of each actor, as CSR (offsets, ascending person codes, no repeats).

    ``actor_code`` indexes the relation of the actor's type (-1: unknown, nobody); a person actor's
    code is its person code. ``actor_location`` limits a business role to a location subtree.
    """
    n_actor = actor_type.size
    offsets = np.zeros(n_actor + 1, np.int64)
    out = np.empty(16, np.int64)
    n = 0
    seen = np.full(n_person, -1, np.int64)
    n_group = group_offsets.size - 1
    visited = np.full(max(n_group, 1), -1, np.int64)
    queue = np.empty(max(n_group, 1), np.int64)
    for i in range(n_actor):
        start = n
        code = actor_code[i]
        kind = actor_type[i]
        if code < 0:
            pass
        elif kind == PERSON:
            out = push(out, n, code)
            n += 1
        elif kind == GROUP:
            head, tail = 0, 1
            queue[0] = code
            visited[code] = i
            while head < tail:
                g = queue[head]
                head += 1
                for k in range(group_person_offsets[g], group_person_offsets[g + 1]):
                    p = group_persons[k]
                    if seen[p] != i:
                        seen[p] = i
                        out = push(out, n, p)
                        n += 1
                for k in range(group_offsets[g], group_offsets[g + 1]):
                    h = group_groups[k]
                    if visited[h] != i:
                        visited[h] = i
                        queue[tail] = h
                        tail += 1
        elif kind == ROLE:
            for k in range(role_offsets[code], role_offsets[code + 1]):
                out = push(out, n, role_persons[k])
                n += 1
        elif kind == BUSINESS_ROLE:
            loc = actor_location[i]
            for k in range(brole_offsets[code], brole_offsets[code + 1]):
                p = brole_persons[k]
                if loc >= 0:
                    at = person_location[p]
                    if at < 0 or not (location_enter[loc] <= location_enter[at] < location_leave[loc]):
                        continue
                out = push(out, n, p)
                n += 1
        else:
            for k in range(collection_offsets[code], collection_offsets[code + 1]):
                out = push(out, n, collection_persons[k])
                n += 1
        out[start:n].sort()
        offsets[i + 1] = n
    return offsets, out[:n]
