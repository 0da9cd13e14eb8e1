"""The measurements, in one run on one machine, and the table and JSON they make."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moderator.benchmark import events, load
from moderator.benchmark.servers import ASGI_SERVERS, Server, Workspace, free_port, stop_process, wait_for_port

WEBHOOK = "/webhooks/telnyx"
CYCLE_WAIT = 0.5  # the applier publishes at most every 0.3 s in a backlog


@dataclass
class Profile:
    rounds: int = 2  # ingest: limit, naive and product take turns; each keeps its best round
    ingest_seconds: float = 6.0
    ack_rate: float = 500.0
    ack_seconds: float = 10.0
    ws_clients: int = 100
    ws_events: int = 200
    fanout_clients: int = 500
    fanout_rates: tuple[int, ...] = (20, 50, 100, 150, 200)  # updates/s offered, each to every client
    fanout_seconds: float = 3.0
    render_participants: int = 1000
    render_runs: int = 7
    caption_legs: int = 100  # live captions: each leg says one interim result a second, to every socket
    caption_sockets: int = 100
    caption_seconds: float = 10.0
    town_hall_callers: int = 1000  # the bar: they all dial in within town_hall_seconds, a moderator watching
    town_hall_seconds: float = 3.0
    compare_servers: bool = True  # the product under each supported ASGI server, too


FULL = Profile()
QUICK = Profile(rounds=1, ingest_seconds=2.0, ack_seconds=1.0, ws_clients=100, ws_events=15,
                fanout_clients=200, fanout_rates=(50,), fanout_seconds=1.0, render_runs=3, caption_seconds=3.0,
                town_hall_callers=200, town_hall_seconds=2.0,
                compare_servers=False)


@dataclass
class Goal:
    text: str
    met: Callable[[dict[str, Any]], bool]


GOALS = {
    "ingest_vs_limit": Goal("≥ 0.5", lambda r: r["ingest_vs_limit"] >= 0.5),
    "ingest_vs_naive": Goal("≥ 4", lambda r: r["ingest_vs_naive"] >= 4),
    "ack_p99_ms": Goal("< 50 at 500/s", lambda r: r["ack_p99_ms"] < 50),
    "apply_lag_p99_ms": Goal("< 250 at 500/s", lambda r: r["apply_lag_p99_ms"] < 250),
    "ws_p99_ms": Goal("< 25", lambda r: r["ws_p99_ms"] < 25),
    "fanout_vs_wire": Goal("≥ 0.5 at p99 < 100 ms",
                           lambda r: r["fanout_vs_wire"] >= 0.5 and r["fanout_p99_ms"] < 100),
    "fanout_p99_ms": Goal("< 100", lambda r: r["fanout_p99_ms"] < 100),
    "render_ms": Goal("< 150", lambda r: r["render_ms"] < 150),
    "render_queries": Goal("constant", lambda r: r["render_queries"] == r["render_queries_small"]),
    "rss_mb": Goal("< 300", lambda r: r["rss_mb"] < 300),
    "captions_p99_ms": Goal("< 100, 0 missing", lambda r: r["captions_p99_ms"] < 100 and r["captions_missing"] == 0),
    # Telnyx delivers again what is not acknowledged within about 2 s: one slower answer starts a retry storm.
    "town_hall_ack_max_ms": Goal("< 2,000, 0 lost", lambda r: r["town_hall_ack_max_ms"] < 2000
                                 and r["town_hall_lost"] == r["town_hall_refused"] == 0),
    "town_hall_page_ms": Goal("< 1,000, as a fresh load",
                              lambda r: r["town_hall_page_ms"] < 1000 and r["town_hall_page_matches"]),
}


class Runner:
    def __init__(self, profile: Profile, say: Callable[[str], None], directory: Path, asgi_server: str = "uvicorn"):
        self.profile = profile
        self.asgi_server = asgi_server
        self.say = say
        self.workspace = Workspace(directory)
        self.clock = events.Clock()
        self.markers = itertools.count(1)
        self.results: dict[str, Any] = {}

    # --- helpers -----------------------------------------------------------------------------------

    def signed(self, event_id: str, event_type: str, payload: dict) -> load.Signed:
        raw = events.body(event_id, event_type, payload, self.clock.next())
        return raw, events.sign(raw)

    async def live_conference(self, server: Server, conference_id: str, legs: int) -> None:
        """A conference in progress with `legs` callers on it, made through the webhook endpoint, and applied:
        a page opened next must find it (an acknowledged event is only stored)."""
        url = server.url + WEBHOOK
        conf = {"conference_id": conference_id, "connection_id": "conn-bench"}
        first = [self.signed(f"{conference_id}-created", "conference.created",
                             {**events.leg(conference_id, 0), **conf})]
        joins = [self.signed(f"{conference_id}-joined-{i}", "conference.participant.joined",
                             {**events.leg(conference_id, i), **conf}) for i in range(legs)]
        statuses = await load.post_all(url, first) + await load.post_all(url, joins)
        if set(statuses) != {200}:
            raise RuntimeError(f"setting up {conference_id} failed: {statuses}")
        if not await load.wait_for(lambda: pending(server.db) == 0, 30.0, 0.02):
            raise RuntimeError(f"setting up {conference_id}: its events were not applied within 30 s")

    def marked(self, conference_id: str, legs: int) -> tuple[int, load.Signed]:
        """A webhook that changes one leg (media starts playing to it), carrying a marker that its
        broadcast shows in the timeline: the clients tell by it which event an update delivers."""
        marker = next(self.markers)
        i = marker % legs
        payload = {**events.leg(conference_id, i), "conference_id": conference_id, "connection_id": "conn-bench",
                   "media_name": f"bench-{marker}-"}
        return marker, self.signed(f"mark-{marker}", "conference.participant.playback.started", payload)

    # --- the measurements --------------------------------------------------------------------------

    def render(self) -> None:
        db = self.workspace.database("render")
        out = self.workspace.worker(db, "render", str(self.profile.render_participants),
                                    str(self.profile.render_runs), debug=True)
        self.results.update(out)
        self.say(f"render: {self.profile.render_participants} participants in {out['render_ms']:.1f} ms, "
                 f"{out['render_queries']} queries (10 participants: {out['render_queries_small']})")

    async def ingest(self, servers: dict[str, Server], rounds: int | None = None) -> dict[str, float]:
        """Saturation, closed loop. An event counts when its effect is visible: the limit has none (verified =
        done), the naive peer applies before it answers, the product acknowledges first and applies after —
        its figure is events applied per second, from the round's start to its last event's commit. The best
        round of each server (events/s), the product's acknowledged/s as "ack", and, as "<server>_cpu", the
        server's CPU time per event in that round (the product's until the last was applied), in µs."""
        p = self.profile
        streams = {name: events.realistic_mix(f"{name}-{server.asgi_server}", self.clock)
                   for name, server in servers.items()}
        best: dict[str, float] = {}
        cpu_per_event: dict[str, float] = {}
        product_ack = 0.0
        for round_ in range(rounds or p.rounds):
            for name, server in servers.items():
                # Enough signed events for a server three times faster than the limit was last round.
                budget = int(max(6000, 3 * best.get("limit", 2000)) * p.ingest_seconds)
                requests = events.presigned(streams[name], budget)
                cpu_before = server.cpu_seconds()
                started = time.time()
                result = await load.saturate(server.url + WEBHOOK, requests, p.ingest_seconds)
                rate, extra = result.per_s, ""
                if name == "product":
                    product_ack = max(product_ack, result.per_s)
                    rate = await applied_per_s(server.db, since=started)
                    extra = f", acknowledged {result.per_s:.0f}/s"
                cpu_used = server.cpu_seconds() - cpu_before
                server_cpu = cpu_used / (time.time() - started)
                self.say(f"ingest round {round_ + 1} {name:8s} ({server.asgi_server}): {rate:8.0f} events/s{extra} "
                         f"({result.sent} in {result.seconds:.1f} s, {result.errors} errors; "
                         f"server CPU {server_cpu:.0%}, load generator CPU {result.client_cpu / result.seconds:.0%})")
                if result.errors:
                    raise RuntimeError(f"{name} answered {result.errors} webhooks with an error")
                if rate > best.get(name, 0.0):
                    best[name], cpu_per_event[f"{name}_cpu"] = rate, cpu_used / result.sent * 1e6
        return {**best, **cpu_per_event, "ack": product_ack}

    async def ingest_board_open(self, server: Server) -> None:
        """The product's saturation round again, with the board open in a tab: every changed conference's card is
        rendered and sent (with nobody watching, nothing is rendered)."""
        p = self.profile
        stream = events.realistic_mix(f"board-{server.asgi_server}", self.clock)
        requests = events.presigned(stream, int(max(6000, 3 * self.results["limit_per_s"]) * p.ingest_seconds))
        async with load.BoardWatcher(server.url, self.workspace.session) as board:
            started = time.time()
            result = await load.saturate(server.url + WEBHOOK, requests, p.ingest_seconds)
            rate = await applied_per_s(server.db, since=started)
            await asyncio.sleep(CYCLE_WAIT)  # the last cycle's cards
        if result.errors or not board.cards:
            raise RuntimeError(f"with the board open: {result.errors} errors, {board.cards} cards sent")
        r = self.results
        r["applied_board_open_per_s"] = rate
        r["applied_board_open_vs_limit"] = rate / r["limit_per_s"]
        self.say(f"ingest, board open: {rate:.0f} events/s applied, acknowledged {result.per_s:.0f}/s, "
                 f"{board.cards} cards sent")

    async def ack(self, server: Server) -> None:
        """Open loop at `ack_rate`: how long each acknowledgement takes, and how long until its effect shows."""
        p = self.profile
        stream = events.realistic_mix("ack", self.clock)
        requests = events.presigned(stream, int(p.ack_rate * p.ack_seconds))
        started = time.time()
        latencies, errors, _ = await load.paced(server.url + WEBHOOK, requests, p.ack_rate)
        await applied_per_s(server.db, since=started)  # waits until everything is applied
        lags = [
            (applied - received).total_seconds() * 1000
            for received, applied in _times(server.db, since=started, columns="received_at, applied_at")
        ]
        r = self.results
        r["ack_errors"] = errors
        r["ack_p50_ms"] = load.percentile(latencies, 50)
        r["ack_p99_ms"] = load.percentile(latencies, 99)
        r["apply_lag_p50_ms"] = load.percentile(lags, 50)
        r["apply_lag_p99_ms"] = load.percentile(lags, 99)
        self.say(f"ack at {p.ack_rate:.0f} events/s offered for {p.ack_seconds:.0f} s: "
                 f"p50 {r['ack_p50_ms']:.1f} ms, p99 {r['ack_p99_ms']:.1f} ms, {errors} not acknowledged; "
                 f"acknowledged → applied p50 {r['apply_lag_p50_ms']:.1f} ms, p99 {r['apply_lag_p99_ms']:.1f} ms")

    async def websocket_latency(self, server: Server) -> None:
        p, legs = self.profile, 10
        url = server.url + WEBHOOK
        await self.live_conference(server, "ws-latency", legs)
        async with load.Crowd(server.url, self.workspace.session) as crowd:
            clients = await crowd.add(["ws-latency"], p.ws_clients)
            await asyncio.sleep(0.5)  # let the presence announcements of the connects settle
            latencies: list[float] = []
            missing = 0
            async with load.http_session() as session:
                for _ in range(p.ws_events):
                    marker, signed = self.marked("ws-latency", legs)
                    sent = time.monotonic()
                    if await load.post(session, url, signed) != 200:
                        raise RuntimeError("a webhook was refused")
                    await load.wait_for(lambda m=marker: all(m in c.arrivals for c in clients), 2.0)
                    for client in clients:
                        if marker in client.arrivals:
                            latencies.append((client.arrivals[marker] - sent) * 1000)
                        else:
                            missing += 1
                    await asyncio.sleep(0.01)
        self.results["ws_p50_ms"] = load.percentile(latencies, 50)
        self.results["ws_p99_ms"] = load.percentile(latencies, 99)
        self.results["ws_missing"] = missing
        self.say(f"webhook → browser, {p.ws_clients} sockets, {p.ws_events} events one at a time: "
                 f"p50 {self.results['ws_p50_ms']:.1f} ms, p99 {self.results['ws_p99_ms']:.1f} ms, {missing} missing")

    async def captions(self, server: Server) -> None:
        """Live captions of a big conference: every leg says one interim result a second (the busiest stream the
        product carries), each caption to every socket of a reader; how fast the line reaches every one."""
        p, conference_id = self.profile, "captions"
        await self.live_conference(server, conference_id, p.caption_legs)
        total = int(p.caption_legs * p.caption_seconds)
        planned = []
        for n in range(total):
            payload = {**events.leg(conference_id, n % p.caption_legs), "connection_id": "conn-bench",
                       "transcription_data": {"transcript": f"and so said-{n}- the caller", "is_final": False}}
            planned.append(self.signed(f"said-{n}", "call.transcription", payload))
        async with load.Crowd(server.url, self.workspace.session) as crowd:
            clients = await crowd.add([conference_id], p.caption_sockets)
            await asyncio.sleep(0.5)  # the presence announcements of the connects settle
            since = time.time()
            rate = p.caption_legs  # one a second per leg
            latencies, errors, start = await load.paced(server.url + WEBHOOK, planned, rate)
            if errors:
                raise RuntimeError(f"{errors} captions were not acknowledged")
            await load.wait_for(lambda: all(len(c.caption_arrivals) == total for c in clients), 10.0, 0.05)
            applied = await applied_per_s(server.db, since=since)
        delays = [(client.caption_arrivals[n] - (start + n / rate)) * 1000
                  for client in clients for n in range(total) if n in client.caption_arrivals]
        r = self.results
        r["captions_offered_per_s"] = rate
        r["captions_applied_per_s"] = applied
        r["captions_p50_ms"] = load.percentile(delays, 50)
        r["captions_p99_ms"] = load.percentile(delays, 99)
        r["captions_missing"] = total * len(clients) - len(delays)
        self.say(f"captions: {p.caption_legs} legs saying 1 interim/s to {p.caption_sockets} sockets for "
                 f"{p.caption_seconds:.0f} s: webhook → caption p50 {r['captions_p50_ms']:.1f} ms, p99 "
                 f"{r['captions_p99_ms']:.1f} ms, {r['captions_missing']} missing; applied {applied:.0f}/s")

    async def town_hall(self, server: Server) -> None:
        """The bar: every caller of a town hall dials in within a few seconds (ring, answer, join: three webhooks
        each, in Telnyx's order; one in ten then presses *1 to raise a hand) while a moderator has its page open
        and the board. How long each acknowledgement took (Telnyx retries after about 2 s), whether any event
        was lost, and how long after the last webhook the moderator's page shows every caller as a fresh load
        of the page does."""
        p, conference_id = self.profile, "town-hall"
        await self.live_conference(server, conference_id, 1)  # the host
        conf = {"conference_id": conference_id, "connection_id": "conn-bench"}
        planned = []
        for i in range(1, p.town_hall_callers + 1):
            leg = events.leg(conference_id, i)
            call = {**leg, "from": f"+1555{i:07d}", "to": "+15550000000", "direction": "incoming"}
            steps = [("call.initiated", call), ("call.answered", call), ("conference.participant.joined", {**leg, **conf})]
            if i % 10 == 0:
                steps += [("call.dtmf.received", {**leg, "digit": "*"}), ("call.dtmf.received", {**leg, "digit": "1"})]
            planned += [self.signed(f"hall-{i}-{n}", kind, payload) for n, (kind, payload) in enumerate(steps)]
        rate = len(planned) / p.town_hall_seconds
        async with load.Crowd(server.url, self.workspace.session) as crowd, \
                load.BoardWatcher(server.url, self.workspace.session):
            (page,) = await crowd.add([conference_id], 1, track_state=True)
            since = time.time()
            latencies, errors, start = await load.paced(server.url + WEBHOOK, planned, rate)
            last_due = start + (len(planned) - 1) / rate
            version = lambda: query(server.db, "SELECT version FROM moderator_conference WHERE telnyx_id = ?",  # noqa: E731
                                    (conference_id,))[0][0]
            shown = await load.wait_for(lambda: pending(server.db) == 0 and page.version == version(), 30.0, 0.01)
            page_ms = (time.monotonic() - last_due) * 1000
            await asyncio.sleep(0.2)  # the parts of a snapshot the page asked for, if it did
            (fresh,) = await crowd.add([conference_id], 1, track_state=True)
            legs = p.town_hall_callers + 1
            await load.wait_for(lambda: len(fresh.rows) == legs, 10.0, 0.02)  # a long roster comes in parts
            matches = shown and (page.version, page.rows, page.summary) == (fresh.version, fresh.rows, fresh.summary)
        stored = query(server.db, "SELECT count(*) FROM moderator_webhookevent WHERE event_id LIKE 'hall-%'")[0][0]
        hands = query(server.db, "SELECT count(*) FROM moderator_participant p JOIN moderator_conference c "
                      "ON c.id = p.conference_id WHERE c.telnyx_id = ? AND p.hand_raised_at IS NOT NULL",
                      (conference_id,))[0][0]
        r = self.results
        r.update({
            "town_hall_callers": p.town_hall_callers, "town_hall_seconds": p.town_hall_seconds,
            "town_hall_events": len(planned), "town_hall_rate": rate,
            "town_hall_ack_p99_ms": load.percentile(latencies, 99), "town_hall_ack_max_ms": max(latencies),
            "town_hall_lost": len(planned) - stored, "town_hall_refused": errors, "town_hall_page_ms": page_ms,
            "town_hall_page_matches": matches, "town_hall_hands": hands,
            "town_hall_applied_per_s": await applied_per_s(server.db, since=since),
        })
        self.say(f"town hall: {p.town_hall_callers} callers dial in within {p.town_hall_seconds:.0f} s ({len(planned)} "
                 f"webhooks, {rate:.0f}/s), a moderator's page and the board open: ack p99 "
                 f"{r['town_hall_ack_p99_ms']:.1f} ms, max {r['town_hall_ack_max_ms']:.1f} ms, {errors} refused, {r['town_hall_lost']} lost; "
                 f"the page shows all {legs} legs and {hands} raised hands {page_ms:.0f} ms after the last webhook"
                 f"{'' if matches else ', NOT as a fresh load does'}")

    async def fanout(self, server: Server, conference_id: str = "fan-out") -> dict[str, Any]:
        """The product: many sockets on one live view, webhooks at rising rates, each changing one leg."""
        p, legs = self.profile, 10
        url = server.url + WEBHOOK
        await self.live_conference(server, conference_id, legs)
        figures: dict[str, Any] = {"rss_mb_idle": server.rss_mb(), "rss_sockets": p.fanout_clients}
        async with load.Crowd(server.url, self.workspace.session) as crowd:
            started = time.monotonic()
            clients = await crowd.add([conference_id], p.fanout_clients)
            figures["fanout_connect_s"] = time.monotonic() - started
            await asyncio.sleep(1.0)
            figures["rss_mb"] = server.rss_mb()
            self.say(f"{p.fanout_clients} sockets connected in {figures['fanout_connect_s']:.1f} s; server RSS "
                     f"{figures['rss_mb']:.0f} MB (before: {figures['rss_mb_idle']:.0f} MB)")
            steps = await self.fanout_steps(f"product, {server.asgi_server}", clients, url,
                                            lambda: self.marked(conference_id, legs))
            updates = sum(c.updates for c in clients)
            figures["update_bytes"] = round(sum(c.update_bytes for c in clients) / max(1, updates))
        chosen = best_step(steps)
        figures.update(fanout_per_s=chosen["deliveries_per_s"], fanout_p99_ms=chosen["p99_ms"],
                       fanout_missing=sum(s["missing"] for s in steps), fanout_steps=steps)
        return figures

    async def wire(self) -> None:
        """The ceiling: a plain websockets server broadcasting a pre-encoded frame of the product's update size,
        to as many sockets, at the same rates, measured by the same clients."""
        p = self.profile
        port, trigger_port = free_port(), free_port()
        size = self.results.get("update_bytes") or 2048
        process = subprocess.Popen(
            [sys.executable, "-m", "moderator.benchmark.wire", "--port", str(port), "--trigger-port",
             str(trigger_port), "--size", str(size)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(trigger_port, process)
            async with load.Crowd(f"http://127.0.0.1:{port}", "") as crowd:
                clients = await crowd.add(["fan-out"], p.fanout_clients)
                await asyncio.sleep(1.0)

                def trigger() -> tuple[int, load.Signed]:
                    marker = next(self.markers)
                    return marker, (str(marker).encode(), {})

                steps = await self.fanout_steps("wire", clients, f"http://127.0.0.1:{trigger_port}/broadcast", trigger)
        finally:
            stop_process(process)
        chosen = best_step(steps)
        self.results["wire_per_s"] = chosen["deliveries_per_s"]
        self.results["wire_p99_ms"] = chosen["p99_ms"]
        self.results["wire_steps"] = steps
        self.results["fanout_vs_wire"] = self.results["fanout_per_s"] / self.results["wire_per_s"]

    async def fanout_steps(self, name: str, clients: list[load.LiveClient], url: str, next_request) -> list[dict]:
        """Offer rising rates (each request one update to every client); stop once p99 passes 100 ms.
        A delivery is one update reaching one socket (updates coalesced into one frame count each)."""
        p = self.profile
        steps = []
        for rate in p.fanout_rates:
            marked = [next_request() for _ in range(int(rate * p.fanout_seconds))]
            before = sum(c.updates for c in clients)
            latencies_ack, errors, start = await load.paced(url, [s for _, s in marked], rate)
            if errors:
                raise RuntimeError(f"{errors} requests refused during fan-out ({name})")
            markers = [m for m, _ in marked]
            await load.wait_for(lambda ms=markers: all(ms[-1] in c.arrivals for c in clients), 5.0, 0.02)
            await asyncio.sleep(0.2)
            latencies, last, missing = [], start, 0
            for client in clients:
                for i, marker in enumerate(markers):
                    arrived = client.arrivals.get(marker)
                    if arrived is None:
                        missing += 1
                        continue
                    latencies.append((arrived - (start + i / rate)) * 1000)
                    last = max(last, arrived)
            messages = sum(c.updates for c in clients) - before
            step = {
                "offered_updates_per_s": rate,
                "deliveries_per_s": len(latencies) / (last - start),
                "frames_per_s": messages / (last - start),
                "messages": messages,
                "p50_ms": load.percentile(latencies, 50),
                "p99_ms": load.percentile(latencies, 99),
                "missing": missing,
                "ack_p99_ms": load.percentile(latencies_ack, 99),
            }
            steps.append(step)
            self.say(f"fan-out ({name}) to {len(clients)} sockets at {rate} updates/s: "
                     f"{step['deliveries_per_s']:.0f} deliveries/s ({messages} frames), p50 {step['p50_ms']:.1f} ms, "
                     f"p99 {step['p99_ms']:.1f} ms, {missing} missing")
            if step["p99_ms"] >= 100:
                break
        return steps

    # --- the whole run -----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        self.workspace.prepare()
        self.render()
        on = {"asgi_server": self.asgi_server}  # every server of the comparison under the same ASGI server
        servers = {
            "limit": Server(self.workspace, "limit", "moderator.benchmark.limit:application", **on),
            "naive": Server(self.workspace, "naive", "moderator.benchmark.naive_asgi:application",
                            "moderator.benchmark.naive_settings", **on),
            "product": Server(self.workspace, "product", "moderator.asgi:application", **on),
            # The product with its applier and outbox off: it only acknowledges (verify, parse, store). What it
            # reaches is the most the product could apply, whatever applying cost.
            "ack_only": Server(self.workspace, "ack_only", "moderator.asgi:application", **on),
        }
        servers["ack_only"].env["MODERATOR_BACKGROUND_TASKS"] = "0"
        try:
            for server in servers.values():
                server.start()
            rates = asyncio.run(self.ingest(servers))
            r = self.results
            r["limit_per_s"], r["naive_per_s"], r["ack_per_s"] = rates["limit"], rates["naive"], rates["ack"]
            r["applied_per_s"] = r["ingest_per_s"] = rates["product"]
            r["ingest_vs_limit"] = r["applied_per_s"] / r["limit_per_s"]
            r["ingest_vs_naive"] = r["applied_per_s"] / r["naive_per_s"]
            r["limit_cpu_us_per_event"], r["product_cpu_us_per_event"] = rates["limit_cpu"], rates["product_cpu"]
            r["ack_only_per_s"] = rates["ack_only"]
            r["ack_only_vs_limit"] = r["ack_only_per_s"] / r["limit_per_s"]
            for name in ("limit", "naive", "ack_only"):
                servers[name].stop()
            product = servers["product"]
            asyncio.run(self.ingest_board_open(product))
            asyncio.run(self.ack(product))
            asyncio.run(self.websocket_latency(product))
            self.results.update(asyncio.run(self.fanout(product)))
            asyncio.run(self.captions(product))
            asyncio.run(self.town_hall(product))
            product.stop()
            asyncio.run(self.wire())
        finally:
            for server in servers.values():
                server.stop()
        if self.profile.compare_servers:
            self.compare_servers()
        self.results["seconds"] = time.monotonic() - started
        self.results["setup"] = setup_text(self.profile, self.asgi_server)
        self.results["asgi_server"] = self.asgi_server
        return self.results


    def compare_servers(self) -> None:
        """The product under each ASGI server it supports, in this run: what a worker applies, its idle memory,
        and its fan-out — the evidence README's choice of production server rests on."""
        compared = {}
        for name in ASGI_SERVERS:
            limit = Server(self.workspace, f"limit-{name}", "moderator.benchmark.limit:application", asgi_server=name)
            product = Server(self.workspace, f"product-{name}", "moderator.asgi:application", asgi_server=name)
            try:
                limit.start()
                product.start()
                rates = asyncio.run(self.ingest({"limit": limit, "product": product}, rounds=1))
                limit.stop()
                figures = {"limit_per_s": rates["limit"], "applied_per_s": rates["product"],
                           "applied_vs_limit": rates["product"] / rates["limit"]}
                figures.update(asyncio.run(self.fanout(product, f"fan-out-{name}")))
            finally:
                limit.stop()
                product.stop()
            compared[name] = {k: v for k, v in figures.items() if k != "fanout_steps"}
        self.results["servers"] = compared


def best_step(steps: list[dict]) -> dict:
    """The highest delivery rate whose p99 stayed under 100 ms (the first step if none did)."""
    within = [s for s in steps if s["p99_ms"] < 100] or steps[:1]
    return max(within, key=lambda s: s["deliveries_per_s"])


def setup_text(profile: Profile, asgi_server: str) -> str:
    return (
        f"each server its own {asgi_server} process (one event loop) on 127.0.0.1 with its own SQLite file (WAL) "
        f"and the in-memory channel layer, DJANGO_DEBUG=0; load generator: this process, aiohttp, "
        f"pool of {load.POOL}; {os.cpu_count()} CPUs shared by both"
    )


# --- the soak ------------------------------------------------------------------------------------------


class Soak:
    """Offer `rate` events/s for `seconds` to `sockets` live views, then check that no event was lost
    and every socket shows what the database holds."""

    CONFERENCES_PER_10_SOCKETS = 1
    LEGS = 20
    CYCLE = (
        "conference.participant.speak.started",
        "conference.floor.changed",
        "conference.participant.playback.started",
        "conference.participant.left",
        "conference.participant.speak.ended",
        "conference.participant.joined",
        "conference.participant.playback.ended",
    )

    def __init__(self, seconds: float, rate: float, sockets: int, say: Callable[[str], None], directory: Path):
        self.seconds, self.rate, self.sockets, self.say = seconds, rate, sockets, say
        self.runner = Runner(QUICK, say, directory)
        self.conferences = [f"soak-c{i}" for i in range(max(1, sockets // 10))]

    def events(self) -> list[tuple[str, load.Signed]]:
        out = []
        for k in range(int(self.rate * self.seconds)):
            conference_id = self.conferences[k % len(self.conferences)]
            leg = (k // len(self.conferences)) % self.LEGS
            event_type = self.CYCLE[(k // (len(self.conferences) * self.LEGS)) % len(self.CYCLE)]
            payload = {**events.leg(conference_id, leg), "conference_id": conference_id,
                       "connection_id": "conn-bench", "media_name": "greeting"}
            event_id = f"soakev-{k}"
            out.append((event_id, self.runner.signed(event_id, event_type, payload)))
        return out

    async def run_async(self, server: Server) -> dict[str, Any]:
        url = server.url + WEBHOOK
        for conference_id in self.conferences:
            await self.runner.live_conference(server, conference_id, self.LEGS)
        planned = self.events()
        async with load.Crowd(server.url, self.runner.workspace.session) as crowd:
            clients = await crowd.add(self.conferences, self.sockets, track_state=True)
            self.say(f"soak: {self.sockets} sockets on {len(self.conferences)} conferences; "
                     f"offering {self.rate:.0f} events/s for {self.seconds:.0f} s")
            latencies, errors, _ = await load.paced(url, [s for _, s in planned], self.rate)
            retried = 0
            if errors:  # Telnyx retries what was not acknowledged: so does the soak, with the same ids
                statuses = await load.post_all(url, [s for _, s in planned])
                retried = errors
                if set(statuses) != {200}:
                    raise RuntimeError(f"events still refused after a retry: {sorted(set(statuses))}")
            db_versions = lambda: dict(query(server.db, "SELECT telnyx_id, version FROM moderator_conference"))  # noqa: E731
            converged_in_time = await load.wait_for(
                lambda: all(c.version == db_versions()[c.url.rstrip("/").rsplit("/", 1)[1]] for c in clients),
                30.0, 0.25,
            )
            # A fresh page load of each conference: what every socket must now show.
            fresh = {}
            for conference_id in self.conferences:
                (reference,) = await crowd.add([conference_id], 1, track_state=True)
                fresh[conference_id] = reference
            diverged = 0
            for client in clients:
                reference = fresh[client.url.rstrip("/").rsplit("/", 1)[1]]
                if (client.version, client.rows, client.summary) != (reference.version, reference.rows,
                                                                     reference.summary):
                    diverged += 1
        ids = {event_id for event_id, _ in planned}
        stored = dict(query(server.db, "SELECT event_id, status FROM moderator_webhookevent WHERE event_id LIKE 'soakev-%'"))
        lost = len(ids - stored.keys())
        failed = sum(1 for status in stored.values() if status == "failed")
        return {
            "soak_seconds": self.seconds,
            "soak_rate": self.rate,
            "soak_sockets": self.sockets,
            "soak_events": len(ids),
            "soak_stored": len(stored),
            "soak_lost": lost,
            "soak_failed": failed,
            "soak_retried": retried,
            "soak_ack_p99_ms": load.percentile(latencies, 99),
            "soak_converged": diverged == 0 and converged_in_time,
            "soak_diverged_sockets": diverged,
            "soak_resyncs": sum(c.gaps for c in clients),
        }

    def run(self) -> dict[str, Any]:
        self.runner.workspace.prepare()
        with Server(self.runner.workspace, "soak", "moderator.asgi:application", asgi_server="uvicorn") as server:
            return asyncio.run(self.run_async(server))


def query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as connection:
        return connection.execute(sql, params).fetchall()


def pending(db: Path) -> int:
    """How many acknowledged events the product has not applied yet."""
    return query(db, "SELECT count(*) FROM moderator_webhookevent WHERE status = 'pending'")[0][0]


def _stored_time(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)  # Django keeps UTC, without an offset, in SQLite


def _times(db: Path, *, since: float, columns: str) -> list[tuple[datetime, ...]]:
    """`columns` (times) of the events received since `since` (a time.time()), from the product's database."""
    start = datetime.fromtimestamp(since, UTC).replace(tzinfo=None).isoformat(sep=" ")
    rows = query(db, f"SELECT {columns} FROM moderator_webhookevent WHERE received_at >= ? AND status = 'applied'",
                 (start,))
    return [tuple(_stored_time(value) for value in row) for row in rows]


async def applied_per_s(db: Path, *, since: float, timeout: float = 120.0) -> float:
    """Once nothing is pending: the events received since `since`, over the time from then until the last one
    was applied (committed by the applier)."""
    await load.wait_for(lambda: pending(db) == 0, timeout, 0.05)
    applied = [applied_at for (applied_at,) in _times(db, since=since, columns="applied_at")]
    if not applied:
        raise RuntimeError("the product applied none of the events it acknowledged")
    return len(applied) / (max(applied) - datetime.fromtimestamp(since, UTC)).total_seconds()


# --- the report ------------------------------------------------------------------------------------------


def table(results: dict[str, Any]) -> str:
    r = results
    rows = [
        ("limit: bare ASGI, verify only", f"{r['limit_per_s']:,.0f} events/s", "", None),
        ("naive peer: Django view, insert, group_send", f"{r['naive_per_s']:,.0f} events/s", "", None),
        ("product: acknowledged (concurrency 32)", f"{r['ack_per_s']:,.0f} events/s", "", None),
        ("product: applied (effect visible)", f"{r['applied_per_s']:,.0f} events/s", "", None),
        ("  applied ÷ limit", f"{r['ingest_vs_limit']:.2f}", *_goal("ingest_vs_limit", r)),
        ("  applied ÷ naive", f"{r['ingest_vs_naive']:.2f}", *_goal("ingest_vs_naive", r)),
        ("product acknowledging only (applier off)", f"{r['ack_only_per_s']:,.0f} events/s", "", None),
        # Applied/s cannot pass acknowledged/s: this is the ceiling of "applied ÷ limit" on this machine.
        ("  acknowledged only ÷ limit", f"{r['ack_only_vs_limit']:.2f}", "", None),
        ("server CPU per event: limit / product", f"{r['limit_cpu_us_per_event']:.0f} / "
         f"{r['product_cpu_us_per_event']:.0f} µs", "", None),
        # One process runs on one core at a time (the GIL): its share of the limit's rate is bounded by this.
        ("  limit ÷ product (one core's bound)",
         f"{r['limit_cpu_us_per_event'] / r['product_cpu_us_per_event']:.2f}", "", None),
        ("product: applied, the board open in a tab", f"{r['applied_board_open_per_s']:,.0f} events/s", "", None),
        ("  applied ÷ limit", f"{r['applied_board_open_vs_limit']:.2f}", "", None),
        ("ack latency p50 / p99 at 500 events/s",
         f"{r['ack_p50_ms']:.1f} / {r['ack_p99_ms']:.1f} ms", *_goal("ack_p99_ms", r)),
        ("acknowledged → applied p50 / p99 at 500/s",
         f"{r['apply_lag_p50_ms']:.1f} / {r['apply_lag_p99_ms']:.1f} ms", *_goal("apply_lag_p99_ms", r)),
        ("webhook → browser p50 / p99, 100 sockets",
         f"{r['ws_p50_ms']:.1f} / {r['ws_p99_ms']:.1f} ms", *_goal("ws_p99_ms", r)),
        (f"deliveries/s to {r['rss_sockets']} sockets", f"{r['fanout_per_s']:,.0f} /s", "", None),
        ("  delivery p99", f"{r['fanout_p99_ms']:.1f} ms", *_goal("fanout_p99_ms", r)),
        (f"wire: plain websockets, {r['update_bytes']:,} B frame", f"{r['wire_per_s']:,.0f} /s", "", None),
        ("  product ÷ wire", f"{r['fanout_vs_wire']:.2f}", *_goal("fanout_vs_wire", r)),
        ("live view, 1,000 participants: render", f"{r['render_ms']:.1f} ms", *_goal("render_ms", r)),
        ("  queries (10 participants)", f"{r['render_queries']} ({r['render_queries_small']})",
         *_goal("render_queries", r)),
        (f"resident memory, {r['rss_sockets']} sockets open", f"{r['rss_mb']:.0f} MB", *_goal("rss_mb", r)),
        (f"live captions: {r['captions_offered_per_s']:.0f} interim/s offered, applied",
         f"{r['captions_applied_per_s']:,.0f} events/s", "", None),
        ("  webhook → caption p50 / p99, missing", f"{r['captions_p50_ms']:.1f} / {r['captions_p99_ms']:.1f} ms, "
         f"{r['captions_missing']}", *_goal("captions_p99_ms", r)),
        (f"town hall, {r['town_hall_callers']:,} callers in {r['town_hall_seconds']:.0f} s: ack p99 / max",
         f"{r['town_hall_ack_p99_ms']:.1f} / {r['town_hall_ack_max_ms']:.0f} ms, {r['town_hall_lost']} lost",
         *_goal("town_hall_ack_max_ms", r)),
        ("  moderator's page whole, after the last", f"{r['town_hall_page_ms']:.0f} ms", *_goal("town_hall_page_ms", r)),
    ]
    width = max(len(row[0]) for row in rows)
    lines = [f"{'figure':{width}}  {'measured':>22}  {'goal':26}  met", "-" * (width + 58)]
    for label, value, goal, met in rows:
        mark = "" if met is None else ("yes" if met else "NO")
        lines.append(f"{label:{width}}  {value:>22}  {goal:26}  {mark}")
    lines.append("")
    if r.get("servers"):
        lines.append("the product under each ASGI server (same run):")
        lines.append(f"  {'server':8}  {'limit/s':>8}  {'applied/s':>9}  {'÷ limit':>7}  {'idle MB':>7}  "
                     f"{'MB, 500 sockets':>15}  {'deliveries/s at p99 < 100 ms':>28}")
        for name, s in r["servers"].items():
            lines.append(f"  {name:8}  {s['limit_per_s']:8,.0f}  {s['applied_per_s']:9,.0f}  {s['applied_vs_limit']:7.2f}  "
                         f"{s['rss_mb_idle']:7.0f}  {s['rss_mb']:15.0f}  "
                         f"{s['fanout_per_s']:19,.0f} (p99 {s['fanout_p99_ms']:.0f} ms)")
        lines.append("")
    lines.append(f"setup: {r['setup']}")
    return "\n".join(lines)


def _goal(key: str, results: dict[str, Any]) -> tuple[str, bool]:
    goal = GOALS[key]
    return goal.text, goal.met(results)


def soak_table(r: dict[str, Any]) -> str:
    return "\n".join([
        f"soak: {r['soak_events']} events at {r['soak_rate']:.0f}/s for {r['soak_seconds']:.0f} s "
        f"to {r['soak_sockets']} sockets",
        f"  stored {r['soak_stored']}, lost {r['soak_lost']} (goal 0), failed to apply {r['soak_failed']}, "
        f"refused then retried {r['soak_retried']}",
        f"  ack p99 {r['soak_ack_p99_ms']:.1f} ms; sockets converged to the database: "
        f"{'yes' if r['soak_converged'] else 'NO'} ({r['soak_diverged_sockets']} diverged, "
        f"{r['soak_resyncs']} resyncs after a gap)",
    ])


def main(quick: bool, soak: float | None, soak_rate: float, soak_sockets: int, json_path: str | None,
         say: Callable[[str], None], asgi_server: str = "uvicorn") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="moderator-benchmark-") as directory:
        if soak:
            results = Soak(soak, soak_rate, soak_sockets, say, Path(directory)).run()
            say(soak_table(results))
        else:
            results = Runner(QUICK if quick else FULL, say, Path(directory), asgi_server).run()
            results["mode"] = "quick" if quick else "full"
            say("")
            say(table(results))
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=2, default=str) + "\n")
    return results


__all__ = ["main", "FULL", "QUICK"]
