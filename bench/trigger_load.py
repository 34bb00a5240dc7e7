"""A team's load on the manager: N waiting session tasks in one triggerer, and backendai-lite under many clients.

Trigger load (default): starts backendai-lite (``request_stats: true``, a bench-only keypair, a scaling group with
room for N sessions), creates N batch sessions that sleep for minutes, then runs N real
``BackendAISessionTrigger``s in one asyncio loop in one process, as Airflow's triggerer does. After a warm-up
(every trigger has read its session's state once) it measures for ``--window`` seconds: the manager requests per
waiting task per minute (state: GraphQL ``compute_session`` and ``GET /session``; usage: ``compute_session`` with
``status_history``; events: event stream opens; log relay: ``GET /session/{id}/logs``), the TCP connections open
to lite (its socket table, sampled every 2 s), and the trigger process's CPU seconds and RSS per waiting task.
Then it terminates the sessions (spread over ``--spread`` seconds) and measures the resume delay: from the moment
lite recorded the session terminated to the moment its trigger fired.

``--events`` selects ``[fasttrack] session_events`` (``AIRFLOW__FASTTRACK__SESSION_EVENTS``) for each run;
``both`` runs ``per_task`` then ``shared``, each in a fresh process against a fresh lite, and prints them side
by side with ratios.

Through a deployment (``--deployment``, N = 50 by default): the same figures for N session tasks waiting in the
real triggerer of the local deployment (``deploy.local.LocalDeployment``: PostgreSQL, api-server, scheduler,
dag-processor, triggerer), against a fresh backendai-lite per mode. One DAG (written to a temporary folder, the
deployment's git DAG bundle) maps one deferrable ``BackendAISessionOperator`` task over N sessions that sleep for
minutes. Once every task instance is deferred (REST API) the window measures lite's requests, its connections,
and the CPU seconds and RSS of the triggerer's process tree (RSS against the idle triggerer before the run, so
it includes loading the trigger's modules). Then the sessions are terminated and the resume delay is taken from
lite's ``terminated_at`` to the task instance's ``scheduled_when`` (set when the triggerer submits the event),
and to its ``end_date``.

GET /session load (``--get-session``): ``--clients`` concurrent httpx clients (signed like the hook's requests,
each keeping its connection, spread over ``--procs`` processes) ask ``GET /session/{id}`` in a loop for
``--duration`` seconds; ``--streams`` event streams stay open meanwhile, ``--end-sessions`` other sessions end. Clients are built before the clock starts
(``--late-clients``: each client is built when its first request is due, inside the timed loop).

Run::

    .venv/bin/python bench/trigger_load.py -n 500 --window 60 --events both
    .venv/bin/python bench/trigger_load.py --deployment -n 50 --window 60 --events both
    .venv/bin/python bench/trigger_load.py --get-session --clients 200 --duration 20 --streams 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EVENTS_OPTION_ENV = "AIRFLOW__FASTTRACK__SESSION_EVENTS"
SESSION_COMMAND = "echo started; exec sleep 900"
#: a few slots per session, so lite's scheduler holds N of them at once
SESSION_RESOURCES = {"cpu": 1, "mem": "64m"}
ROUTE_STATE = "GET /session/{session_ref}"
ROUTE_LOGS = "GET /session/{session_ref}/logs"
ROUTE_EVENTS = "GET /events/session"
ROUTE_STATS = "GET /lite/requests"
CATEGORIES = ("state", "usage", "events", "logs", "other")


def start_lite(tmp: Path, sessions: int) -> Any:
    """A fresh backendai-lite with a bench-only keypair and room for ``sessions`` sessions."""
    from airflow_provider_fasttrack.lite.config import generate_keypair
    from airflow_provider_fasttrack.lite.testing import LiteServer

    keypair = generate_keypair()
    slots = {"cpu": sessions + 8, "mem": f"{(sessions + 8) * 64}m"}
    return LiteServer(
        slots=slots,
        keypairs=[
            {"access_key": keypair.access_key, "secret_key": keypair.secret_key, "max_concurrent_sessions": 0}
        ],
        sandbox="none",
        extra_config={"request_stats": True, "kill_grace_seconds": 0},
        data_dir=tmp / "lite",
    ).start()


def create_sessions(lite: Any, count: int, prefix: str) -> list[tuple[str, str]]:
    """``count`` running batch sessions, as ``(id, name)``."""
    created = []
    with lite.client(timeout=120) as http:
        for index in range(count):
            name = f"{prefix}-{index:04d}"
            body = {
                "name": name,
                "image": "python:3.11",
                "type": "batch",
                "enqueueOnly": True,
                "startupCommand": SESSION_COMMAND,
                "config": {"resources": SESSION_RESOURCES},
            }
            response = http.post("/session", json=body)
            response.raise_for_status()
            created.append((str(response.json()["sessionId"]), name))
        deadline = time.monotonic() + 300
        while True:
            statuses = [row["status"] for row in http.get("/lite/sessions").json()["sessions"]]
            if statuses.count("RUNNING") == count:
                return created
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"only {statuses.count('RUNNING')} of {count} sessions are running after 300 s"
                )
            time.sleep(1)


def lite_port(lite: Any) -> int:
    return int(str(lite.url).rsplit(":", 1)[1])


def open_connections(lite: Any) -> int:
    """Established TCP connections to lite's port, from lite's socket table."""
    import psutil

    port = lite_port(lite)
    return sum(
        1
        for conn in psutil.Process(lite.pid).net_connections("tcp")
        if conn.status == psutil.CONN_ESTABLISHED and conn.laddr and conn.laddr.port == port
    )


def categorize(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    """Requests between two ``/lite/requests`` snapshots, per category."""

    def delta(section: str, key: str) -> int:
        return int(after[section].get(key, 0)) - int(before[section].get(key, 0))

    total = sum(after["requests"].values()) - sum(before["requests"].values())
    counts = {
        "state": delta("requests", ROUTE_STATE) + delta("graphql", "compute_session"),
        "usage": delta("graphql", "compute_session (usage)"),
        "events": delta("requests", ROUTE_EVENTS),
        "logs": delta("requests", ROUTE_LOGS),
    }
    counts["other"] = total - delta("requests", ROUTE_STATS) - sum(counts.values())
    return counts


def terminate_sessions(lite: Any, session_ids: list[str], spread: float) -> None:
    """Destroy the sessions (forced), spread evenly over ``spread`` seconds."""
    with lite.client(timeout=120) as http:
        begin = time.monotonic()
        for index, session_id in enumerate(session_ids):
            due = begin + spread * index / len(session_ids)
            time.sleep(max(due - time.monotonic(), 0))
            http.delete(f"/session/{session_id}", params={"forced": "true"}).raise_for_status()


def sample_connections(lite: Any, window: float) -> list[int]:
    """Lite's established connections every 2 s for ``window`` seconds."""
    samples = []
    start = time.monotonic()
    while time.monotonic() - start < window:
        samples.append(open_connections(lite))
        time.sleep(min(2.0, max(window - (time.monotonic() - start), 0)))
    return samples


def window_figures(
    n: int,
    before: dict[str, Any],
    after: dict[str, Any],
    elapsed: float,
    samples: list[int],
    cpu: float,
    rss_delta: int,
) -> dict[str, Any]:
    """The window's figures per waiting task: requests by kind, connections, CPU and RSS of the triggers."""
    counts = categorize(before, after)
    minutes = elapsed / 60
    return {
        "n": n,
        "window_s": round(elapsed, 1),
        "per_task_per_min": {key: counts[key] / n / minutes for key in CATEGORIES},
        "requests_per_s": sum(counts.values()) / elapsed,
        "open_streams": int(after["in_flight"].get(ROUTE_EVENTS, 0)),
        "connections_max": max(samples) if samples else 0,
        "connections_mean": sum(samples) / len(samples) if samples else 0.0,
        "new_connections_per_task_per_min": (int(after["connections"]) - int(before["connections"]))
        / n
        / minutes,
        "cpu_s_per_task_per_min": cpu / n / minutes,
        "cpu_share_of_core": cpu / elapsed,
        "rss_mib_per_task": rss_delta / n / 2**20,
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


async def measure_triggers(
    lite: Any, sessions: list[tuple[str, str]], window: float, spread: float, poll: float, log_interval: float
) -> dict[str, Any]:
    """Run one trigger per session in this loop; measure the window, then the resume delays."""
    import httpx
    import psutil

    from airflow_provider_fasttrack.triggers.session import BackendAISessionTrigger

    me = psutil.Process()
    n = len(sessions)
    stats_client = lite.client(timeout=60)

    def read(path: str) -> dict[str, Any]:
        """A lite-only view, read in a thread: the triggers' loop may be too busy to serve the bench itself."""
        for _ in range(10):
            try:
                response = stats_client.get(path)
                response.raise_for_status()
                result: dict[str, Any] = response.json()
                return result
            except httpx.TransportError:
                time.sleep(1)
        raise SystemExit(f"lite did not answer {path}")

    async def snapshot() -> dict[str, Any]:
        return await asyncio.to_thread(read, "/lite/requests")

    fired: dict[str, tuple[float, str]] = {}

    async def wait(trigger: BackendAISessionTrigger) -> None:
        async for event in trigger.run():
            fired[trigger.session_id] = (time.time(), str(event.payload["status"]))
            return

    rss_before = me.memory_info().rss
    started = time.monotonic()
    tasks = [
        asyncio.create_task(
            wait(
                BackendAISessionTrigger(
                    session_id, name, "backendai_default", poll_interval=poll, log_interval=log_interval
                )
            )
        )
        for session_id, name in sessions
    ]
    warm_deadline = time.monotonic() + 300
    while (await snapshot())["graphql"].get("compute_session", 0) < n and time.monotonic() < warm_deadline:
        await asyncio.sleep(1)
    warm_up = time.monotonic() - started
    await asyncio.sleep(5)  # the event streams open after the first state read

    before = await snapshot()
    cpu_before = me.cpu_times()
    window_start = time.monotonic()
    samples = await asyncio.to_thread(sample_connections, lite, window)
    after = await snapshot()
    elapsed = time.monotonic() - window_start
    cpu_after = me.cpu_times()
    rss_after = me.memory_info().rss
    cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)

    terminator = threading.Thread(
        target=terminate_sessions,
        args=(lite, [sid for sid, _ in sessions], spread),
        name="terminate-sessions",
    )
    terminator.start()
    await asyncio.wait(tasks, timeout=spread + 180)
    terminator.join()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    rows = {row["id"]: row for row in read("/lite/sessions")["sessions"]}
    stats_client.close()
    delays = [
        fired[session_id][0] - datetime.fromisoformat(rows[session_id]["terminated_at"]).timestamp()
        for session_id, _ in sessions
        if session_id in fired and rows[session_id]["terminated_at"]
    ]
    return {
        **window_figures(n, before, after, elapsed, samples, cpu, rss_after - rss_before),
        "warm_up_s": round(warm_up, 1),
        "fired": len(fired),
        "terminal_events": sum(1 for _, status in fired.values() if status == "terminal"),
        "resume_p50_s": percentile(delays, 0.5),
        "resume_p99_s": percentile(delays, 0.99),
        "resume_max_s": max(delays) if delays else float("nan"),
    }


def run_one_mode(args: argparse.Namespace) -> dict[str, Any]:
    """One ``--events`` mode in this process: fresh lite, N sessions, N triggers."""
    from tests.helpers import connection_env

    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"  # not each relayed session log line
    logging.basicConfig(level=logging.WARNING)
    os.environ[EVENTS_OPTION_ENV] = args.events
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("AIRFLOW_HOME", str(Path(tmp) / "airflow"))
        lite = start_lite(Path(tmp), args.n)
        try:
            os.environ["AIRFLOW_CONN_BACKENDAI_DEFAULT"] = connection_env(lite)
            setup = time.monotonic()
            sessions = create_sessions(lite, args.n, "wait")
            print(
                f"[{args.events}] {args.n} sessions running after {time.monotonic() - setup:.0f} s",
                flush=True,
            )
            result = asyncio.run(
                measure_triggers(
                    lite, sessions, args.window, args.spread, args.poll_interval, args.log_interval
                )
            )
        finally:
            lite.stop()
    result["events"] = args.events
    return result


ROWS = (
    ("state requests / task / min", lambda r: r["per_task_per_min"]["state"], "{:.2f}"),
    ("usage requests / task / min", lambda r: r["per_task_per_min"]["usage"], "{:.2f}"),
    ("event stream opens / task / min", lambda r: r["per_task_per_min"]["events"], "{:.3f}"),
    ("log relay requests / task / min", lambda r: r["per_task_per_min"]["logs"], "{:.2f}"),
    ("other requests / task / min", lambda r: r["per_task_per_min"]["other"], "{:.2f}"),
    ("requests / s (all tasks)", lambda r: r["requests_per_s"], "{:.1f}"),
    ("open event streams (end of window)", lambda r: r["open_streams"], "{:.0f}"),
    ("open connections to lite, max", lambda r: r["connections_max"], "{:.0f}"),
    ("open connections to lite, mean", lambda r: r["connections_mean"], "{:.0f}"),
    ("new connections / task / min", lambda r: r["new_connections_per_task_per_min"], "{:.2f}"),
    ("triggerer CPU s / task / min", lambda r: r["cpu_s_per_task_per_min"], "{:.4f}"),
    ("triggerer CPU, share of one core", lambda r: r["cpu_share_of_core"], "{:.2f}"),
    ("triggerer RSS MiB / task", lambda r: r["rss_mib_per_task"], "{:.3f}"),
    ("resume delay p50 s", lambda r: r["resume_p50_s"], "{:.2f}"),
    ("resume delay p99 s", lambda r: r["resume_p99_s"], "{:.2f}"),
    ("resume delay max s", lambda r: r["resume_max_s"], "{:.2f}"),
    ("terminal events / tasks", lambda r: f"{r['terminal_events']}/{r['n']}", "{}"),
)


def print_table(
    results: list[dict[str, Any]], rows: tuple[Any, ...] = ROWS, where: str = "in one loop"
) -> None:
    first = results[0]
    print(f"\nN = {first['n']} waiting tasks {where}, window {first['window_s']} s")
    header = "| measure | " + " | ".join(r["events"] for r in results)
    header += " | ratio |" if len(results) == 2 else " |"
    print(header)
    print("| --- |" + " ---: |" * (len(results) + (1 if len(results) == 2 else 0)))
    for label, value, fmt in rows:
        cells = [fmt.format(value(r)) for r in results]
        line = f"| {label} | " + " | ".join(cells)
        if len(results) == 2:
            a, b = value(results[0]), value(results[1])
            ratio = f"{b / a:.2f}x" if isinstance(a, (int, float)) and a else "-"
            line += f" | {ratio}"
        print(line + " |")


def trigger_load(args: argparse.Namespace) -> None:
    modes = ["per_task", "shared"] if args.events == "both" else [args.events]
    results = []
    for mode in modes:  # each mode in a fresh process: its CPU and memory are its own
        out = Path(tempfile.mkstemp(prefix="trigger-load-", suffix=".json")[1])
        cmd = [sys.executable, __file__, "--child", str(out), "--events", mode, "-n", str(args.n)]
        cmd += ["--window", str(args.window), "--spread", str(args.spread)]
        cmd += ["--poll-interval", str(args.poll_interval), "--log-interval", str(args.log_interval)]
        subprocess.run(cmd, check=True)
        results.append(json.loads(out.read_text()))
        out.unlink()
    print_table(results)


# -- the same through the local deployment's triggerer ------------------------------------------------------

DEPLOYMENT_DAG = "trigger_load"
DEPLOYMENT_TASK = "wait"
DEPLOYMENT_DAG_FILE = textwrap.dedent(
    """
    # airflow dag file: N session tasks that wait at once in the triggerer
    import pendulum
    from airflow.sdk import DAG
    from airflow_provider_fasttrack.operators.session import BackendAISessionOperator

    N = {n}
    with DAG(
        {dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False,
        max_active_tasks=N,
    ):
        BackendAISessionOperator.partial(
            task_id={task_id!r}, image="python:3.11", resources={resources!r}, deferrable=True, retries=0,
            poll_interval={poll}, log_interval={log_interval},
        ).expand(command=[{command!r}] * N)
    """
)
#: task instance states after which nothing more happens to it
FINISHED_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


def process_tree(pid: int) -> list[Any]:
    import psutil

    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def tree_usage(pid: int) -> tuple[float, int]:
    """CPU seconds (with those of exited children) and RSS bytes of a process and everything it started."""
    import psutil

    cpu, rss = 0.0, 0
    for process in process_tree(pid):
        try:
            times = process.cpu_times()
            cpu += times.user + times.system + times.children_user + times.children_system
            rss += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return cpu, rss


def timestamp(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def run_deployment_mode(args: argparse.Namespace, mode: str) -> dict[str, Any]:
    """One ``--events`` mode through a fresh local deployment and a fresh lite."""
    from airflow_provider_fasttrack.naming import session_name
    from deploy.local import LocalDeployment
    from tests.e2e.airflow_api import AirflowApi
    from tests.helpers import connection_env

    n = args.n
    with tempfile.TemporaryDirectory(prefix="trigger-load-") as tmp_name:
        tmp = Path(tmp_name)
        dags = tmp / "dags"
        dags.mkdir()
        (dags / "trigger_load_dag.py").write_text(
            DEPLOYMENT_DAG_FILE.format(
                n=n,
                dag_id=DEPLOYMENT_DAG,
                task_id=DEPLOYMENT_TASK,
                resources=SESSION_RESOURCES,
                poll=args.poll_interval,
                log_interval=args.log_interval,
                command=SESSION_COMMAND,
            )
        )
        lite = start_lite(tmp, n)
        deployment = LocalDeployment(
            tmp / "airflow",
            dags_folder=dags,
            connection=connection_env(lite),
            settings={EVENTS_OPTION_ENV: mode},
        )
        try:
            began = time.monotonic()
            deployment.start()
            print(f"[{mode}] deployment healthy after {time.monotonic() - began:.0f} s", flush=True)
            triggerer = deployment.processes["triggerer"].pid
            api = AirflowApi(deployment)
            api.wait_parsed(DEPLOYMENT_DAG, timeout=300)
            api.unpause(DEPLOYMENT_DAG)
            _, rss_idle = tree_usage(triggerer)
            started = time.monotonic()
            run_id = api.trigger(DEPLOYMENT_DAG)
            path = f"/dags/{DEPLOYMENT_DAG}/dagRuns/{run_id}/taskInstances"

            def instances() -> list[dict[str, Any]]:
                return [
                    ti
                    for ti in api.get(path, limit=n + 10)["task_instances"]
                    if ti["task_id"] == DEPLOYMENT_TASK
                ]

            deadline = time.monotonic() + args.defer_timeout
            while True:
                states = [ti["state"] for ti in instances()]
                if states.count("deferred") == n:
                    break
                ended = [state for state in states if state in FINISHED_STATES]
                if ended or time.monotonic() > deadline:
                    raise SystemExit(
                        f"[{mode}] {states.count('deferred')} of {n} task instances deferred "
                        f"({len(ended)} ended) after {time.monotonic() - started:.0f} s:\n{deployment.log_tail()}"
                    )
                time.sleep(2)
            warm_up = time.monotonic() - started
            print(f"[{mode}] {n} task instances deferred after {warm_up:.0f} s", flush=True)
            # each trigger has read its state and opened its event stream
            time.sleep(max(5.0, 2 * args.poll_interval))

            with lite.client(timeout=60) as stats:
                before = stats.get("/lite/requests").json()
                cpu_before, _ = tree_usage(triggerer)
                window_start = time.monotonic()
                samples = sample_connections(lite, args.window)
                after = stats.get("/lite/requests").json()
                elapsed = time.monotonic() - window_start
                cpu_after, rss_after = tree_usage(triggerer)
                names = {session_name(DEPLOYMENT_DAG, run_id, DEPLOYMENT_TASK, i): i for i in range(n)}
                running = {
                    row["name"]: row["id"]
                    for row in stats.get("/lite/sessions").json()["sessions"]
                    if row["name"] in names and row["status"] == "RUNNING"
                }
            if len(running) != n:
                raise SystemExit(f"[{mode}] {len(running)} of {n} sessions running at the end of the window")

            terminated_from = time.time()
            terminate_sessions(lite, list(running.values()), args.spread)
            deadline = time.monotonic() + args.spread + 300
            tis = instances()
            while not all(ti["state"] in FINISHED_STATES for ti in tis) and time.monotonic() < deadline:
                time.sleep(2)
                tis = instances()
            with lite.client(timeout=60) as http:
                rows = {row["name"]: row for row in http.get("/lite/sessions").json()["sessions"]}
        finally:
            deployment.stop()
            lite.stop()

    by_index = {ti["map_index"]: ti for ti in tis}
    resumed, finished = [], []
    for name, index in names.items():
        ended_at = timestamp(rows[name]["terminated_at"])
        ti = by_index.get(index)
        if ended_at is None or ti is None:
            continue
        scheduled = timestamp(ti.get("scheduled_when"))
        if scheduled is not None and scheduled >= terminated_from:
            resumed.append(scheduled - ended_at)
        end = timestamp(ti.get("end_date"))
        if end is not None and ti["state"] in FINISHED_STATES:
            finished.append(end - ended_at)
    states = [ti["state"] for ti in tis]
    return {
        **window_figures(n, before, after, elapsed, samples, cpu_after - cpu_before, rss_after - rss_idle),
        "events": mode,
        "warm_up_s": round(warm_up, 1),
        "rss_mib_total": rss_after / 2**20,
        "resumed": len(resumed),
        "final_states": {state: states.count(state) for state in sorted(set(states))},
        "resume_p50_s": percentile(resumed, 0.5),
        "resume_p99_s": percentile(resumed, 0.99),
        "resume_max_s": max(resumed) if resumed else float("nan"),
        "end_p50_s": percentile(finished, 0.5),
        "end_p99_s": percentile(finished, 0.99),
    }


DEPLOYMENT_ROWS = (
    *ROWS[:-4],
    ("triggerer RSS MiB (all, end of window)", lambda r: r["rss_mib_total"], "{:.0f}"),
    ("deferred, all N, after (s from the run's start)", lambda r: r["warm_up_s"], "{:.0f}"),
    ("resume delay (terminated -> scheduled_when) p50 s", lambda r: r["resume_p50_s"], "{:.2f}"),
    ("resume delay p99 s", lambda r: r["resume_p99_s"], "{:.2f}"),
    ("resume delay max s", lambda r: r["resume_max_s"], "{:.2f}"),
    ("terminated -> task end_date p50 s", lambda r: r["end_p50_s"], "{:.2f}"),
    ("terminated -> task end_date p99 s", lambda r: r["end_p99_s"], "{:.2f}"),
    ("resumed by their trigger / tasks", lambda r: f"{r['resumed']}/{r['n']}", "{}"),
    ("final task states", lambda r: " ".join(f"{k} {v}" for k, v in r["final_states"].items()), "{}"),
)


def deployment_load(args: argparse.Namespace) -> None:
    modes = ["per_task", "shared"] if args.events == "both" else [args.events]
    results = [run_deployment_mode(args, mode) for mode in modes]
    print(json.dumps(results, indent=1, default=str))
    print_table(results, DEPLOYMENT_ROWS, "through the deployment's triggerer")


# -- GET /session under many clients -------------------------------------------------------------------------


def _get_session_worker(
    url: str,
    keys: tuple[str, str],
    session_id: str,
    clients: int,
    streams: int,
    duration: float,
    late: bool,
    queue: Any,
) -> None:
    import httpx

    from airflow_provider_fasttrack.lite.auth import LATEST_API_VERSION
    from airflow_provider_fasttrack.signing import BackendAIAuth

    auth = BackendAIAuth(keys[0], keys[1], LATEST_API_VERSION)

    def client() -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=url, auth=auth, timeout=120)

    async def main() -> tuple[list[float], int]:
        latencies: list[float] = []
        errors = 0
        ready = [] if late else [client() for _ in range(clients)]
        listeners = [client() for _ in range(streams)]

        async def listen(http: httpx.AsyncClient) -> None:
            async with http.stream("GET", "/events/session", params={"sessionName": "*"}) as stream:
                async for _ in stream.aiter_bytes():
                    pass

        listening = [asyncio.create_task(listen(http)) for http in listeners]
        await asyncio.sleep(2 if streams else 0)
        end = time.monotonic() + duration

        async def ask(http: httpx.AsyncClient | None) -> None:
            nonlocal errors
            http = http or client()
            async with http:
                while time.monotonic() < end:
                    begin = time.perf_counter()
                    response = await http.get(f"/session/{session_id}")
                    latencies.append(time.perf_counter() - begin)
                    errors += response.status_code != 200

        await asyncio.gather(*(ask(http) for http in (ready or [None] * clients)))
        for task in listening:
            task.cancel()
        await asyncio.gather(*listening, return_exceptions=True)
        return latencies, errors

    queue.put(asyncio.run(main()))


def get_session_load(args: argparse.Namespace) -> None:
    import psutil

    with tempfile.TemporaryDirectory() as tmp:
        lite = start_lite(Path(tmp), 1 + args.end_sessions)
        try:
            (session_id, _), *ending = create_sessions(lite, 1 + args.end_sessions, "target")

            def terminate() -> None:  # the other sessions end during the measurement, spread over it
                with lite.client(timeout=300) as http:
                    time.sleep(2)
                    for other_id, _ in ending:
                        http.delete(f"/session/{other_id}", params={"forced": "true"}).raise_for_status()
                        time.sleep((args.duration - 4) / len(ending))

            terminator = threading.Thread(target=terminate) if ending else None
            lite_process = psutil.Process(lite.pid)
            queue: Any = multiprocessing.get_context("spawn").Queue()
            procs = [
                multiprocessing.get_context("spawn").Process(
                    target=_get_session_worker,
                    args=(
                        lite.url,
                        (lite.access_key, lite.secret_key),
                        session_id,
                        args.clients // args.procs,
                        args.streams // args.procs,
                        args.duration,
                        args.late_clients,
                        queue,
                    ),
                )
                for _ in range(args.procs)
            ]
            cpu = lite_process.cpu_times()
            for proc in procs:
                proc.start()
            if terminator is not None:
                terminator.start()
            results = [queue.get() for _ in procs]
            cpu_after = lite_process.cpu_times()
            for proc in procs:
                proc.join()
            if terminator is not None:
                terminator.join()
        finally:
            lite.stop()
    latencies = [value for values, _ in results for value in values]
    errors = sum(count for _, count in results)
    lite_cpu = (cpu_after.user + cpu_after.system) - (cpu.user + cpu.system)
    print(
        f"GET /session/{{id}}: {args.clients} clients in {args.procs} processes, {args.streams} open event streams, "
        f"{args.end_sessions} other sessions ended meanwhile, "
        f"{args.duration:.0f} s{' (clients built inside the timed loop)' if args.late_clients else ''}"
    )
    print(
        f"requests {len(latencies)} ({len(latencies) / args.duration:.0f}/s), errors {errors}, "
        f"p50 {percentile(latencies, 0.5):.3f} s, p99 {percentile(latencies, 0.99):.3f} s, "
        f"max {max(latencies):.3f} s; lite CPU {lite_cpu:.1f} s "
        f"({1000 * lite_cpu / max(len(latencies), 1):.2f} ms/request)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", choices=("per_task", "shared", "both"), default="per_task")
    parser.add_argument("-n", type=int, help="waiting session tasks (default 500; 50 with --deployment)")
    parser.add_argument(
        "--deployment", action="store_true", help="through the local deployment's triggerer (deploy/local.py)"
    )
    parser.add_argument(
        "--defer-timeout", type=float, default=900.0, help="--deployment: seconds until all N are deferred"
    )
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured (default 60)")
    parser.add_argument(
        "--spread", type=float, default=10.0, help="seconds over which sessions are terminated"
    )
    parser.add_argument("--poll-interval", type=float, default=5.0, help="the operator's default: 5")
    parser.add_argument(
        "--log-interval", type=float, default=10.0, help="[fasttrack] log_interval's default: 10"
    )
    parser.add_argument("--get-session", action="store_true", help="measure GET /session under many clients")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--procs", type=int, default=2, help="client processes of --get-session")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--streams", type=int, default=0, help="event streams open during --get-session")
    parser.add_argument("--late-clients", action="store_true")
    parser.add_argument(
        "--end-sessions", type=int, default=0, help="other sessions ended during --get-session"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.n is None:
        args.n = 50 if args.deployment else 500
    if args.get_session:
        get_session_load(args)
    elif args.deployment:
        deployment_load(args)
    elif args.child is not None:
        args.child.write_text(json.dumps(run_one_mode(args)))
    else:
        trigger_load(args)


if __name__ == "__main__":
    main()
