"""``python -m training launch STEP [ARGS...]``: run a training step data-parallel over a Backend.AI cluster session.

The rendezvous comes from the session's cluster variables: ``BACKENDAI_CLUSTER_HOSTS`` (the main kernel first),
``BACKENDAI_CLUSTER_HOST`` and ``BACKENDAI_CLUSTER_ROLE``. Each node runs the stock launcher, ``torchrun``
(``python -m torch.distributed.run``), with ``--nnodes`` = the cluster size, its own ``--node-rank`` and
``--master-addr`` = the main kernel. As on a cluster, where a batch command runs on the main kernel only, the main
kernel starts the other nodes' launchers over the cluster's SSH (``ssh sub1 "cd ... && torchrun ..."``) and its
own; ``--spawn none`` is for setups where every kernel runs the command itself. A single-node session with one
process per node runs the step in this process, unchanged.

Any ``python -m training`` step that trains through ``transformers.Trainer`` (``finetune``, ``pretrain``) runs
this way: the Trainer reads ``torchrun``'s ``RANK``/``WORLD_SIZE`` and trains data-parallel (NCCL on GPUs, gloo on
CPUs).
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger("training.launch")

#: variables a step's shell may have set on the main kernel that an SSH login on another kernel lacks
#: (the task's own environment is set on every kernel by Backend.AI already)
FORWARDED_ENV = ("PYTHONPATH", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TOKENIZERS_PARALLELISM")
FORWARDED_ENV_PREFIXES = ("NCCL_", "GLOO_", "TORCH_NCCL_", "TORCH_DISTRIBUTED_")
#: seconds between checks of the node launchers, and before the others are stopped after one failed
POLL_S = 0.5
STOP_GRACE_S = 10.0


class LaunchError(RuntimeError):
    """The cluster variables do not describe a usable rendezvous."""


@dataclass(frozen=True)
class Cluster:
    """This kernel's place in its session: hostnames (the main kernel first) and its own hostname."""

    hosts: tuple[str, ...]
    host: str
    role: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Cluster:
        hosts = tuple(h.strip() for h in env.get("BACKENDAI_CLUSTER_HOSTS", "").split(",") if h.strip())
        host = env.get("BACKENDAI_CLUSTER_HOST", "")
        role = env.get("BACKENDAI_CLUSTER_ROLE", "main")
        if not hosts:  # not in a Backend.AI session, or a single kernel without the variables
            return cls(("localhost",), "localhost", "main")
        if host not in hosts:
            raise LaunchError(
                f"BACKENDAI_CLUSTER_HOST={host!r} is not in BACKENDAI_CLUSTER_HOSTS={','.join(hosts)}"
            )
        if (role == "main") != (host == hosts[0]):
            raise LaunchError(
                f"BACKENDAI_CLUSTER_HOSTS={','.join(hosts)} does not list the main kernel first "
                f"(this kernel: {host}, role {role})"
            )
        return cls(hosts, host, role)

    @property
    def size(self) -> int:
        return len(self.hosts)

    @property
    def main_host(self) -> str:
        return self.hosts[0]

    @property
    def node_rank(self) -> int:
        return self.hosts.index(self.host)


def local_processes(requested: str) -> int:
    """Processes per node: the number given, or for ``auto`` one per visible CUDA device (one on a CPU)."""
    if requested != "auto":
        try:
            count = int(requested)
        except ValueError:
            raise LaunchError(f"--nproc-per-node {requested!r}: a number or 'auto'") from None
        if count < 1:
            raise LaunchError(f"--nproc-per-node {requested!r}: at least 1")
        return count
    import torch

    return max(torch.cuda.device_count(), 1) if torch.cuda.is_available() else 1


def free_port() -> int:
    """A TCP port that is free on this kernel now (the rendezvous port on the main kernel)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


def torchrun_argv(
    step: str, step_args: Sequence[str], *, nnodes: int, node_rank: int, nproc: int, master: str, port: int
) -> list[str]:
    """The ``torchrun`` command line of one node, running ``python -m training STEP ARGS``."""
    if nnodes == 1:
        rendezvous = ["--standalone"]
    else:
        rendezvous = ["--nnodes", str(nnodes), "--node-rank", str(node_rank)]
        rendezvous += ["--master-addr", master, "--master-port", str(port)]
    return [
        sys.executable, "-m", "torch.distributed.run", *rendezvous, "--nproc-per-node", str(nproc),
        "--module", "training", step, *step_args,
    ]  # fmt: skip


def node_commands(
    cluster: Cluster, step: str, step_args: Sequence[str], *, nproc: int, port: int, starts_all: bool
) -> dict[str, list[str]]:
    """The launcher command line of each node this kernel starts: all of them, or only its own."""
    hosts = cluster.hosts if starts_all else (cluster.host,)
    return {
        host: torchrun_argv(
            step,
            step_args,
            nnodes=cluster.size,
            node_rank=cluster.hosts.index(host),
            nproc=nproc,
            master=cluster.main_host,
            port=port,
        )
        for host in hosts
    }


def forwarded_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of :data:`FORWARDED_ENV` (and prefixes) that are set here."""
    return {
        name: value
        for name, value in env.items()
        if name in FORWARDED_ENV or name.startswith(FORWARDED_ENV_PREFIXES)
    }


def remote_command(argv: Sequence[str], *, cwd: str, env: Mapping[str, str], setup: str = "") -> str:
    """The shell command another node runs over SSH: same directory, forwarded variables, setup, launcher."""
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in sorted(env.items()))
    parts = [f"cd {shlex.quote(cwd)}"]
    if exports:
        parts.append(f"export {exports}")
    if setup.strip():
        parts.append(f"{{ {setup.strip()}; }}")
    parts.append("exec " + shlex.join(argv))
    return " && ".join(parts)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training launch",
        description=__doc__.splitlines()[0],
        epilog="example: python -m training launch finetune --preset gemma2-2b --dataset /pipeline/input1",
    )
    parser.add_argument(
        "--nproc-per-node", default="auto", help="processes per node: 'auto' (one per GPU, one on a CPU) or N"
    )
    parser.add_argument(
        "--master-port",
        type=int,
        default=None,
        help="rendezvous port on the main kernel (default: $MASTER_PORT, else a free port)",
    )
    parser.add_argument(
        "--spawn",
        choices=("ssh", "none"),
        default="ssh",
        help="'ssh': the main kernel starts the other nodes over SSH (a Backend.AI batch session); "
        "'none': every kernel runs this command itself",
    )
    parser.add_argument(
        "--node-setup",
        default="",
        metavar="COMMAND",
        help="a shell command each other node runs first (e.g. installing requirements, as done on main)",
    )
    parser.add_argument("step", help="the training step, e.g. finetune")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the step's own arguments")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format=log_format())
    args = build_parser().parse_args(argv)
    from training.__main__ import COMMANDS

    if args.step not in COMMANDS or args.step == "launch":
        steps = ", ".join(c for c in COMMANDS if c != "launch")
        print(f"error: unknown step {args.step!r}; steps: {steps}", file=sys.stderr)
        return 2
    try:
        return launch(
            args.step,
            list(args.args),
            nproc_per_node=args.nproc_per_node,
            master_port=args.master_port,
            spawn=args.spawn,
            node_setup=args.node_setup,
        )
    except LaunchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def launch(
    step: str,
    step_args: list[str],
    *,
    nproc_per_node: str = "auto",
    master_port: int | None = None,
    spawn: str = "ssh",
    node_setup: str = "",
    env: Mapping[str, str] | None = None,
) -> int:
    """Run ``python -m training STEP ARGS`` on every node of this session; return the first failure's code."""
    env = os.environ if env is None else env
    cluster = Cluster.from_env(env)
    nproc = local_processes(nproc_per_node)
    if cluster.size == 1 and nproc == 1:
        from training.__main__ import main as run_step

        return run_step([step, *step_args])
    port = master_port or int(env.get("MASTER_PORT") or 0)
    starts_all = spawn == "ssh" and cluster.role == "main"
    if not port:
        if cluster.size > 1 and not starts_all:
            raise LaunchError(
                "a node that does not start the others needs --master-port (or MASTER_PORT), the same on every kernel"
            )
        port = free_port()
    nodes = node_commands(cluster, step, step_args, nproc=nproc, port=port, starts_all=starts_all)
    log.info(
        "data-parallel %s: %d node(s) x %d process(es), rendezvous %s:%d; starting %s",
        step,
        cluster.size,
        nproc,
        cluster.main_host,
        port,
        ", ".join(nodes),
    )
    procs: dict[str, subprocess.Popen[bytes]] = {}
    forwarded = forwarded_environment(env)
    for host, node_argv in nodes.items():
        if host == cluster.host:
            procs[host] = subprocess.Popen(node_argv)
        else:
            command = remote_command(node_argv, cwd=os.getcwd(), env=forwarded, setup=node_setup)
            procs[host] = subprocess.Popen(["ssh", host, command], stdin=subprocess.DEVNULL)
    return wait_all(procs)


def wait_all(procs: dict[str, subprocess.Popen[bytes]]) -> int:
    """Wait for every node launcher; when one fails, stop the others and return its exit code."""
    while True:
        codes = {host: proc.poll() for host, proc in procs.items()}
        failed = next(((host, code) for host, code in codes.items() if code not in (None, 0)), None)
        if failed is not None:
            host, code = failed
            log.error("node %s exited with %s; stopping the other nodes", host, code)
            stop_all(procs)
            return int(code or 1)
        if all(code == 0 for code in codes.values()):
            return 0
        time.sleep(POLL_S)


def stop_all(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM the launchers still running (torchrun ends its workers; an SSH client's exit ends the remote)."""
    running = [proc for proc in procs.values() if proc.poll() is None]
    for proc in running:
        proc.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in running:
        try:
            proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class Rank:
    """This process's place in a data-parallel run (from ``torchrun``'s variables; one process otherwise)."""

    rank: int
    world_size: int

    @classmethod
    def current(cls, env: Mapping[str, str] | None = None) -> Rank:
        env = os.environ if env is None else env
        return cls(int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1")))

    @property
    def is_main(self) -> bool:
        """The process that writes the run's files (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def log_format(rank: Rank | None = None) -> str:
    """The steps' log format; under data-parallel each line names its rank (``[rank 1/2]``)."""
    rank = Rank.current() if rank is None else rank
    tag = f"[rank {rank.rank}/{rank.world_size}] " if rank.distributed else ""
    return f"%(asctime)s %(levelname)s {tag}%(name)s: %(message)s"


if __name__ == "__main__":
    sys.exit(main())
