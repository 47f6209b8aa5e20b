"""N dfx cores joined by a ring: the functional simulator of the whole appliance.

Core i sends to core (i+1) % N and receives from core (i-1) % N. Sends are buffered
(the links hold any number of messages); a receive waits for the next message on its
inbound link and checks that it is the transfer it expects (kind and size). The cores
run as coroutines: when every unfinished core waits on an empty link, that is a ring
deadlock; when a core waits on a peer that has ended, or a message is left unread,
the programs' syncs do not match.
"""

from __future__ import annotations

from collections import deque

from dfx.arch.encoding import to_asm
from dfx.arch.target import Target, load_target
from dfx.errors import RingDeadlock, SyncMismatch
from dfx.sim.core import BLOCKED, Core


class Ring:
    def __init__(self, n: int):
        self.n = n
        self.links = [deque() for _ in range(n)]  # links[i]: core i -> core (i+1) % n
        self.moved = 0

    def push(self, core: Core, kind, data):
        self.links[core.id].append((kind, data, core.id, core.pc))
        nbytes = data.size * 2
        core.counters["syncs"] += 1
        core.counters["ring_bytes_sent"] += nbytes
        self.moved += 1

    def pop(self, core: Core, kind):
        link = self.links[(core.id - 1) % self.n]
        while not link:
            yield BLOCKED
        got, data, src, src_pc = link.popleft()
        if got != kind:
            raise SyncMismatch(
                f"expected {_kind(kind)} from core {src}, but core {src} sent {_kind(got)} at pc {src_pc}")
        core.counters["ring_bytes_received"] += data.size * 2
        self.moved += 1
        return data


def _kind(k):
    return f"{k[0]} of {k[1]}x{k[2]} words"


class Appliance:
    """The simulated appliance: `ncores` cores of one target and the ring between them."""

    def __init__(self, target: Target | str, ncores: int, mode: str = "exact"):
        self.target = load_target(target) if isinstance(target, str) else target
        self.ncores, self.mode = ncores, mode
        self.cores = [Core(self.target, i, ncores, mode) for i in range(ncores)]

    def run(self, entry, args: dict | list) -> list[dict]:
        """Run every core's program (entry: one address or one per core) to its END.

        args: one dict for all cores or one per core ({"ntok", "pos", "extra"}).
        Returns each core's counters for this run.
        """
        n = self.ncores
        entries = entry if isinstance(entry, (list, tuple)) else [entry] * n
        argl = args if isinstance(args, (list, tuple)) else [args] * n
        ring = Ring(n)
        gens = [c.run(entries[i], argl[i], ring) for i, c in enumerate(self.cores)]
        live = set(range(n))
        while live:
            before = ring.moved
            progressed = False
            for i in sorted(live):
                try:
                    if next(gens[i]) != BLOCKED:
                        progressed = True
                except StopIteration:
                    live.discard(i)
                    progressed = True
            if live and not progressed and ring.moved == before:
                self._stuck(live)
        for i, link in enumerate(ring.links):
            if link:
                kind, _data, src, pc = link[0]
                raise SyncMismatch(f"{_kind(kind)} sent at pc {pc} was never received by core {(i + 1) % n}",
                                   src, pc, to_asm(self.cores[src].program(entries[src])[pc]))
        return [c.snapshot() for c in self.cores]

    def _stuck(self, live):
        n = self.ncores
        waits = "; ".join(f"core {i} at pc {self.cores[i].pc}" for i in sorted(live))
        for i in sorted(live):
            c, prev = self.cores[i], (i - 1) % n
            if prev not in live:
                raise SyncMismatch(f"waits on the ring for core {prev}, which has ended", i, c.pc, to_asm(c.cur))
        c = self.cores[min(live)]
        raise RingDeadlock(f"ring deadlock: every live core waits on an empty link ({waits})",
                           c.id, c.pc, to_asm(c.cur))
