"""What one keypair's session can do to another's on the same host: cluster SSH and swapped mount sources."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_fasttrack.lite.runner import SYSTEM_PATH
from airflow_provider_fasttrack.lite.sandbox import (
    MountSpec,
    namespace_command,
    namespaces_available,
    pid_namespaces_available,
)
from airflow_provider_fasttrack.lite.services import free_port
from airflow_provider_fasttrack.lite.testing import LiteServer
from tests.helpers import wait_for as poll
from tests.lite.conftest import (
    IMAGE,
    Gate,
    compute_session,
    create_session,
    session_logs,
    terminated,
    wait_for,
)
from tests.lite.test_security import client

#: the keypair whose sessions try to reach the other's (the server's first keypair)
INTRUDER = {"access_key": "AKIAINTRUDERISOL0001", "secret_key": "intruder-isolation-secret-0123456789ab"}
OWNER = {"access_key": "AKIAOWNERISOLATION01", "secret_key": "owner-isolation-secret-0123456789abcd"}
CLUSTER = {"clusterMode": "multi-node", "clusterSize": 2}
ONE_CPU = {"cpu": 1, "mem": "256m"}

#: lists the backendai-lite sockets of /proc/net/unix and asks each to run a command
PROBE = r"""
import json, socket, struct
request = json.dumps({"command": "echo STOLEN-$BACKENDAI_ACCESS_KEY", "stdin": False}).encode()
names = [f[7] for f in (line.split() for line in open("/proc/net/unix").read().splitlines()[1:])
         if len(f) >= 8 and "backendai-lite" in f[7]]
print("listed", len(names))
for name in names:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    try:
        sock.connect("\0" + name[1:] if name.startswith("@") else name)
        sock.sendall(struct.pack("!cI", b"h", len(request)) + request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        print("answered", name, answer)
    except OSError as exc:
        print("refused", name, exc)
"""

#: binds the name the owner's ``sub1`` server listened on, and records what connects until the gate opens
SQUAT = r"""
import os, socket, sys
session, gate, out = sys.argv[1:4]
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(f"\0backendai-lite-ssh/{session}/sub1".encode())
listener.listen(8)
listener.settimeout(0.2)
open("tools/bound", "w").close()
with open(out, "ab") as captured:
    while not os.path.exists(gate):
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        conn.settimeout(2)
        try:
            captured.write(conn.recv(65536))
        except OSError:
            pass
        captured.flush()
        conn.close()
"""


@pytest.fixture(scope="module")
def server() -> Iterator[LiteServer]:
    with LiteServer(
        keypairs=[INTRUDER, OWNER], slots={"cpu": 4, "mem": "4g"}, extra_config={"kill_grace_seconds": 1}
    ) as lite:
        yield lite


def secrets_of(server: LiteServer) -> list[str]:
    return [INTRUDER["secret_key"], OWNER["secret_key"], server.secret_key]


def folder(http: httpx.Client, name: str, usage_mode: str = "general") -> None:
    answer = http.post("/folders", json={"name": name, "usage_mode": usage_mode})
    assert answer.status_code in (201, 400), answer.text


# -- a session reaches only the SSH servers of its own session ----------------------------------------------


def test_a_session_cannot_run_commands_in_another_keypairs_cluster_kernel(
    server: LiteServer, has_namespaces: bool
) -> None:
    if not has_namespaces:
        pytest.skip("sessions of one host are separated only in namespace mode")
    with client(server, OWNER) as owner, client(server, INTRUDER) as intruder:
        done = Gate(server, owner, OWNER["access_key"])
        command = f"{done.wait}\necho secret-input | ssh sub1 'cat; echo from-$BACKENDAI_CLUSTER_HOST'"
        config = {"resources": ONE_CPU, "mounts": ["gates"]}
        victim = create_session(owner, command, config=config, **CLUSTER)["sessionId"]
        wait_for(owner, victim, lambda r: r["status"] == "RUNNING")
        folder(intruder, "tools")
        (server.vfolder_path("tools", INTRUDER["access_key"]) / "probe.py").write_text(PROBE)
        probe = create_session(
            intruder, "python3 tools/probe.py", config={"resources": ONE_CPU, "mounts": ["tools"]}
        )["sessionId"]
        wait_for(intruder, probe, terminated, timeout=60)
        probed = session_logs(intruder, probe)
        assert "listed" in probed, probed
        assert "STOLEN" not in probed and "answered" not in probed, probed
        done.open()
        wait_for(owner, victim, terminated, timeout=60)
        logs = session_logs(owner, victim)
        assert compute_session(owner, victim)["result"] == "SUCCESS", logs
        assert "secret-input" in logs and "from-sub1" in logs  # its own kernels still reach each other


def test_a_session_binding_the_name_first_receives_nothing(server: LiteServer, has_namespaces: bool) -> None:
    if not has_namespaces:
        pytest.skip("sessions of one host are separated only in namespace mode")
    with client(server, OWNER) as owner, client(server, INTRUDER) as intruder:
        first, squat_done = (
            Gate(server, owner, OWNER["access_key"]),
            Gate(server, intruder, INTRUDER["access_key"]),
        )
        config = {"resources": ONE_CPU, "mounts": ["gates"]}
        before = create_session(owner, first.wait, config=config)["sessionId"]
        command = "echo secret-input | ssh sub1 'cat; echo from-$BACKENDAI_CLUSTER_HOST'"
        victim = create_session(owner, command, dependencies=[before], **CLUSTER)["sessionId"]
        folder(intruder, "tools")
        tools = server.vfolder_path("tools", INTRUDER["access_key"])
        (tools / "squat.py").write_text(SQUAT)
        (tools / "bound").unlink(missing_ok=True)
        captured = tools / "captured"
        captured.write_bytes(b"")
        squat = create_session(
            intruder,
            f"python3 tools/squat.py {victim} gates/{squat_done.path.name} tools/captured",
            config={"resources": ONE_CPU, "mounts": ["tools", "gates"]},
        )["sessionId"]
        poll(lambda: (tools / "bound").exists(), timeout=60)
        first.open()  # now the owner's cluster session starts, its sub1 after the name was taken
        wait_for(owner, victim, terminated, timeout=60)
        squat_done.open()
        wait_for(intruder, squat, terminated, timeout=30)
        logs = session_logs(owner, victim)
        assert b"secret-input" not in captured.read_bytes() and b"from-" not in captured.read_bytes()
        assert compute_session(owner, victim)["result"] == "SUCCESS", logs
        assert "secret-input" in logs and "from-sub1" in logs


# -- a mount source swapped for a symlink after the session was created is refused when it is bound ---------


def _refused(http: httpx.Client, session_id: str, entry: str, server: LiteServer) -> None:
    logs = session_logs(http, session_id)
    assert all(secret not in logs for secret in secrets_of(server)), logs
    record = wait_for(http, session_id, terminated, timeout=60)
    logs = session_logs(http, session_id)
    assert record["status"] == "CANCELLED", logs
    error = compute_session(http, session_id)["status_data"]["error"]["repr"]
    assert entry in error and "symlink" in error, error
    assert entry in logs and "symlink" in logs, logs


def test_a_mount_swapped_for_a_symlink_before_a_dependent_session_starts_is_refused(
    server: LiteServer,
) -> None:
    with client(server, INTRUDER) as http:
        folder(http, "work")
        (server.vfolder_path("work", INTRUDER["access_key"]) / "models").mkdir(exist_ok=True)
        swap = Gate(server, http, INTRUDER["access_key"])
        command = f"{swap.wait}\nrm -rf work/models && ln -s {server.data_dir} work/models"
        first = create_session(http, command, config={"resources": ONE_CPU, "mounts": ["work", "gates"]})[
            "sessionId"
        ]
        second = create_session(
            http,
            "cat loot/config.yaml; ls -R loot | head -50",
            dependencies=[first],
            config={
                "resources": ONE_CPU,
                "mounts": ["work/models"],
                "mount_map": {"work/models": "/home/work/loot"},
            },
        )["sessionId"]
        swap.open()
        wait_for(http, first, terminated, timeout=60)
        assert compute_session(http, first)["result"] == "SUCCESS", session_logs(http, first)
        wait_for(http, second, terminated, timeout=60)
        _refused(http, second, "work/models", server)


def test_a_service_replica_whose_subpath_became_a_symlink_while_it_waited_is_refused(
    server: LiteServer,
) -> None:
    with client(server, INTRUDER) as http:
        folder(http, "served", usage_mode="model")
        (server.vfolder_path("served", INTRUDER["access_key"]) / "m").mkdir(exist_ok=True)
        swap = Gate(server, http, INTRUDER["access_key"])
        command = f"{swap.wait}\nrm -rf served/m && ln -s {server.data_dir} served/m"
        config = {"resources": {"cpu": 4, "mem": "256m"}, "mounts": ["served", "gates"]}
        hog = create_session(http, command, config=config)["sessionId"]  # takes every CPU: the replica waits
        wait_for(http, hog, lambda r: r["status"] == "RUNNING")
        body = {
            "name": "swapped",
            "image": IMAGE,
            "runtime_variant": "cmd",
            "startup_command": "cat /models/config.yaml; ls -R /models | head -50; exec sleep 300",
            "config": {
                "model": "served",
                "vfolder_subpath": "m",
                "resources": ONE_CPU,
                "scaling_group": "default",
            },
        }
        answer = http.post("/services", json=body)
        assert answer.status_code == 201, answer.text
        service_id = answer.json()["endpoint_id"]
        try:

            def replicas() -> list[dict[str, Any]]:
                sessions = http.get("/lite/sessions").json()["sessions"]
                return [s for s in sessions if s["name"].startswith("svc-swapped-")]

            assert [r["status"] for r in poll(replicas)] == ["PENDING"]
            swap.open()
            wait_for(http, hog, terminated, timeout=60)
            replica = replicas()[0]["id"]
            poll(
                lambda: (
                    terminated(wait_for(http, replica, lambda r: True))
                    or any(s in session_logs(http, replica) for s in secrets_of(server))
                ),
                timeout=60,
            )
            _refused(http, replica, "served/m", server)
        finally:
            http.delete(f"/services/{service_id}")


def test_the_namespace_binds_the_checked_directory_and_refuses_a_symlink(tmp_path: Path) -> None:
    """The bind inside the kernel's namespace walks the subpath again: a symlink swapped in after the server's
    check is refused there, and a real directory is bound as it was opened."""
    if not namespaces_available()[0]:
        pytest.skip("needs private mount namespaces")
    secret = tmp_path / "elsewhere"
    secret.mkdir()
    (secret / "secret.txt").write_text("not for the session")
    vfolder = tmp_path / "vf"
    (vfolder / "real").mkdir(parents=True)
    (vfolder / "real" / "mine.txt").write_text("the session's own file")
    (vfolder / "a").mkdir()
    (vfolder / "a" / "b").symlink_to(secret, target_is_directory=True)
    command = "cat /home/work/ok/mine.txt; cat /home/work/loot/secret.txt"

    def run(*mounts: MountSpec) -> subprocess.CompletedProcess[str]:
        workdir = tmp_path / f"kernel-{time.monotonic_ns()}"
        (workdir / "home").mkdir(parents=True)
        argv, env = namespace_command(workdir, workdir / "home", list(mounts), ["main1"], "/usr/bin")
        env = {"PATH": SYSTEM_PATH, **env, "LITE_COMMAND": command}
        return subprocess.run(argv, env=env, cwd=workdir, capture_output=True, text=True, timeout=60)

    ok = MountSpec(vfolder, "real", "/home/work/ok", True, "vf/real")
    bound = run(ok)
    assert "the session's own file" in bound.stdout, bound.stderr
    refused = run(ok, MountSpec(vfolder, "a/b", "/home/work/loot", False, "vf/a/b"))
    assert refused.returncode != 0
    assert "not for the session" not in refused.stdout + refused.stderr
    assert "cannot mount 'vf/a/b': 'a/b' in the vfolder is a symlink" in refused.stderr, refused.stderr
    # a destination inside an earlier mount whose folder is a symlink: nothing is made or mounted through it
    outside = tmp_path / "host-directory"
    outside.mkdir()
    (vfolder / "a" / "c").symlink_to(outside, target_is_directory=True)
    whole = MountSpec(vfolder, "", "/home/work/vf", False, "vf")
    nested = MountSpec(vfolder, "real", "/home/work/vf/a/c/new", False, "vf/real")
    refused = run(whole, nested)
    assert refused.returncode != 0 and list(outside.iterdir()) == []
    assert "cannot mount 'vf/real': 'home/work/vf/a/c' of its destination is a symlink" in refused.stderr, (
        refused.stderr
    )


#: run by a user that is not root: a namespace kernel whose command reports its capabilities and tries to chroot
_UNPRIVILEGED_KERNEL = r"""
import shlex, subprocess, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from airflow_provider_fasttrack.lite.sandbox import namespace_command
work = Path(sys.argv[2])
argv, env = namespace_command(work, work / "home", [], ["main1"], "/usr/bin")
env = {"PATH": sys.argv[3], **env, "LITE_COMMAND": f"exec /bin/bash -c {shlex.quote(sys.argv[4])} {sys.executable}"}
done = subprocess.run(argv, env=env, cwd=work, capture_output=True, text=True, timeout=60)
print(done.stdout + done.stderr)
"""
_ESCAPE = """grep CapEff /proc/self/status; "$0" -c '
import os
try:
    os.chroot("/tmp")
    print("chroot allowed")
except PermissionError:
    print("chroot refused")
'"""


def test_a_kernel_of_a_server_that_is_not_root_has_no_capabilities(tmp_path: Path) -> None:
    """Root of its own user namespace could leave the chroot and reach other sessions' files; it runs without."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs setpriv")
    as_user = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    python = "/usr/bin/python3" if as_user else sys.executable  # one that user can run
    if not os.access(python, os.X_OK):
        pytest.skip(f"needs {python}")
    probe = subprocess.run([*as_user, "unshare", "--user", "--map-root-user", "--mount", "true"], check=False)
    if probe.returncode != 0:
        pytest.skip("unprivileged user namespaces are not allowed here")
    work = Path(tempfile.mkdtemp(prefix="backendai-lite-unprivileged-"))
    try:
        (work / "home").mkdir()
        (work / "kernel.py").write_text(_UNPRIVILEGED_KERNEL)
        if as_user:
            for path in (work, work / "home", work / "kernel.py"):
                os.chown(path, 65534, 65534)
        repo = str(Path(__file__).resolve().parents[2])
        done = subprocess.run(
            [*as_user, python, "-I", str(work / "kernel.py"), repo, str(work), SYSTEM_PATH, _ESCAPE],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert "CapEff:\t0000000000000000" in done.stdout, done.stdout + done.stderr
    assert "chroot refused" in done.stdout, done.stdout + done.stderr


#: the owner's session: a TCP port on loopback, an abstract socket and a recognisable process, until the gate opens
_LISTEN = r"""
import os, socket, sys
port, gate = int(sys.argv[1]), sys.argv[2]
tcp = socket.socket(); tcp.bind(("127.0.0.1", port)); tcp.listen(8)
abstract = socket.socket(socket.AF_UNIX); abstract.bind(b"\0owner-isolation-marker"); abstract.listen(8)
open("gates/listening", "w").close()
while not os.path.exists(gate):
    os.system("sleep 0.05")
"""
#: the intruder's session: what it sees of the owner's
_LOOK = r"""
import glob, os, socket, sys
port, owner_folder = int(sys.argv[1]), sys.argv[2]
cmdlines = []
for path in glob.glob("/proc/[0-9]*/cmdline"):
    try:
        cmdlines.append(open(path, "rb").read())
    except OSError:
        pass
print("process:", any(b"owner-listen.py" in c for c in cmdlines))
print("abstract listed:", "@owner-isolation-marker" in open("/proc/net/unix").read())
unix = socket.socket(socket.AF_UNIX)
print("abstract connects:", unix.connect_ex(b"\0owner-isolation-marker") == 0)
print("tcp connects:", socket.socket().connect_ex(("127.0.0.1", port)) == 0)
print("owner folder:", os.path.exists(owner_folder))
"""


def test_what_a_session_sees_of_another_keypairs_session(server: LiteServer, has_namespaces: bool) -> None:
    """The claims of the security model: processes and files are separate, the network is shared."""
    if not has_namespaces:
        pytest.skip("sessions of one host are separated only in namespace mode")
    port = free_port()
    with client(server, OWNER) as owner, client(server, INTRUDER) as intruder:
        done = Gate(server, owner, OWNER["access_key"])
        folder(owner, "private")
        (server.vfolder_path("gates", OWNER["access_key"]) / "owner-listen.py").write_text(_LISTEN)
        (server.vfolder_path("gates", OWNER["access_key"]) / "listening").unlink(missing_ok=True)
        config = {"resources": ONE_CPU, "mounts": ["gates", "private"]}
        command = f"python3 gates/owner-listen.py {port} gates/{done.path.name}"
        listening = create_session(owner, command, config=config)["sessionId"]
        poll(lambda: (server.vfolder_path("gates", OWNER["access_key"]) / "listening").exists(), timeout=60)
        folder(intruder, "tools")
        (server.vfolder_path("tools", INTRUDER["access_key"]) / "look.py").write_text(_LOOK)
        owner_folder = server.vfolder_path("private", OWNER["access_key"])
        look = create_session(
            intruder,
            f"python3 tools/look.py {port} {owner_folder}",
            config={"resources": ONE_CPU, "mounts": ["tools"]},
        )["sessionId"]
        wait_for(intruder, look, terminated, timeout=60)
        seen = session_logs(intruder, look)
        done.open()
        wait_for(owner, listening, terminated, timeout=60)
    if pid_namespaces_available():
        assert "process: False" in seen, seen  # its own PID namespace and /proc
    assert "owner folder: False" in seen, seen  # the data dir lies under /tmp here, private to each kernel
    # not isolated: one network namespace for every session
    assert "abstract listed: True" in seen and "abstract connects: True" in seen, seen
    assert "tcp connects: True" in seen, seen
