"""What a hostile session or client can reach: archive symlinks, transfer tokens, admin rights, plain HTTP."""

from __future__ import annotations

import datetime
import io
import ipaddress
import json
import os
import signal
import ssl
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from airflow_provider_fasttrack.lite.auth import LATEST_API_VERSION
from airflow_provider_fasttrack.lite.cli import _development_keypair
from airflow_provider_fasttrack.lite.testing import LiteServer
from airflow_provider_fasttrack.signing import BackendAIAuth
from tests.helpers import wait_for as poll
from tests.lite.conftest import create_session
from tests.lite.test_filesystem import upload

USER = {"access_key": "AKIAUSERSECURITY0001", "secret_key": "user-security-secret-0123456789abcdef"}
OTHER = {"access_key": "AKIAOTHERSECURITY001", "secret_key": "other-security-secret-0123456789abcdef"}
ADMIN = {
    "access_key": "AKIAADMINSECURITY001",
    "secret_key": "admin-security-secret-0123456789abcdef",
    "is_admin": True,
}


@pytest.fixture(scope="module")
def server() -> Iterator[LiteServer]:
    with LiteServer(keypairs=[USER, OTHER, ADMIN], sandbox="none") as lite:
        yield lite


def client(server: LiteServer, keypair: dict[str, Any]) -> httpx.Client:
    auth = BackendAIAuth(keypair["access_key"], keypair["secret_key"], LATEST_API_VERSION)
    return httpx.Client(base_url=server.url, auth=auth, timeout=30)


def storage_get(http: httpx.Client, vfolder: str, body: dict[str, object]) -> httpx.Response:
    ticket = http.post(f"/folders/{vfolder}/request-download", json=body)
    assert ticket.status_code == 200, ticket.text
    return httpx.get(ticket.json()["url"], params={"token": ticket.json()["token"]})


# -- 1: a zip of a directory holds only what lies inside the vfolder --------------------------------------


def test_archive_download_leaves_out_symlinks_that_leave_the_vfolder(server: LiteServer) -> None:
    with client(server, USER) as http, client(server, OTHER) as other:
        assert http.post("/folders", json={"name": "links"}).status_code == 201
        assert other.post("/folders", json={"name": "private"}).status_code == 201
        secret = server.vfolder_path("private", OTHER["access_key"]) / "secret.txt"
        secret.write_text("other keypair's file")
        root = server.vfolder_path("links", USER["access_key"]) / "d"
        (root / "sub").mkdir(parents=True)
        (root / "inside.txt").write_text("inside")
        (root / "sub" / "deep.txt").write_text("deep")
        (root / "passwd").symlink_to("/etc/passwd")
        (root / "other.txt").symlink_to(secret)
        (root / "etc").symlink_to("/etc", target_is_directory=True)
        (root / "private").symlink_to(secret.parent, target_is_directory=True)
        (root / "alias.txt").symlink_to("inside.txt")
        (root / "loop").symlink_to("loop")
        (root / "dangling").symlink_to("nowhere")

        answer = storage_get(http, "links", {"path": "d", "archive": True})
        assert answer.status_code == 200, answer.text
        archive = zipfile.ZipFile(io.BytesIO(answer.content))
        assert sorted(archive.namelist()) == ["alias.txt", "inside.txt", "sub/deep.txt"]
        assert archive.read("alias.txt") == b"inside"
        whole = zipfile.ZipFile(io.BytesIO(storage_get(http, "links", {"path": "", "archive": True}).content))
        assert sorted(whole.namelist()) == ["d/alias.txt", "d/inside.txt", "d/sub/deep.txt"]

        single = http.post("/folders/links/request-download", json={"path": "d/passwd"})
        assert single.status_code == 400 and "leaves the virtual folder" in single.json()["msg"]
        loop = http.post("/folders/links/request-download", json={"path": "d/loop"})
        assert loop.status_code == 400, loop.text
    assert "Traceback" not in server.log_tail(10**9)


# -- 5: transfer tokens expire, stay with one operation, die with the server and are not logged --------


def test_transfer_tokens_are_scoped_and_not_logged(server: LiteServer) -> None:
    with client(server, USER) as http:
        http.post("/folders", json={"name": "tokens"})
        ticket = http.post("/folders/tokens/request-upload", json={"path": "a.txt", "size": 3}).json()
        upload_token = ticket["token"]
        assert (
            httpx.get(
                ticket["url"].replace("/upload", "/download"), params={"token": upload_token}
            ).status_code
            == 404
        )
        upload(http, "tokens", "b.txt", b"hello")
        download = storage_get(http, "tokens", {"path": "b.txt"})
        assert download.content == b"hello"
    log = server.log_tail(10**9)
    assert "/upload?token=***" in log and "/download?token=***" in log
    assert upload_token not in log


def test_transfer_tokens_expire() -> None:
    with (
        LiteServer(sandbox="none", extra_config={"transfer_token_seconds": 1}) as lite,
        lite.client() as http,
    ):
        http.post("/folders", json={"name": "data"})
        (lite.vfolder_path("data") / "f.txt").write_text("x")
        ticket = http.post("/folders/data/request-download", json={"path": "f.txt"}).json()

        def refused() -> bool:
            answer = httpx.get(ticket["url"], params={"token": ticket["token"]})
            return answer.status_code == 404 and "expired" in answer.json()["msg"]

        poll(refused, timeout=60)


def test_transfer_tokens_do_not_survive_a_restart() -> None:
    with LiteServer(sandbox="none") as lite:
        with lite.client() as http:
            http.post("/folders", json={"name": "data"})
            (lite.vfolder_path("data") / "f.txt").write_text("x")
            download = http.post("/folders/data/request-download", json={"path": "f.txt"}).json()
            upload_ticket = http.post(
                "/folders/data/request-upload", json={"path": "g.txt", "size": 1}
            ).json()
            assert httpx.get(download["url"], params={"token": download["token"]}).content == b"x"
        lite.restart()
        assert httpx.get(download["url"], params={"token": download["token"]}).status_code == 404
        tus = {"Tus-Resumable": "1.0.0"}
        head = httpx.head(upload_ticket["url"], params={"token": upload_ticket["token"]}, headers=tus)
        assert head.status_code == 404


# -- 6: a keypair is a plain user unless configured as an admin -------------------------------------------


def test_default_keypair_sees_only_its_own_sessions(server: LiteServer) -> None:
    with client(server, OTHER) as other:
        sid = create_session(other, "true", name="others-session")["sessionId"]
    with client(server, USER) as user:
        assert sid not in [item["id"] for item in user.get("/lite/sessions").json()["sessions"]]
        watch = user.get("/events/session", params={"ownerAccessKey": OTHER["access_key"]})
        assert watch.status_code == 403 and watch.json()["type"].endswith("/insufficient-privilege")
    with client(server, ADMIN) as admin:
        assert sid in [item["id"] for item in admin.get("/lite/sessions").json()["sessions"]]


def test_development_keypair_is_an_admin(tmp_path: Path) -> None:
    created = _development_keypair(tmp_path)
    assert created.is_admin
    reloaded = _development_keypair(tmp_path)
    assert (reloaded.access_key, reloaded.is_admin) == (created.access_key, True)


# -- 12: a remote bind says what plain HTTP exposes, or serves HTTPS --------------------------------------


def _serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], dict[str, object]]:
    config = tmp_path / "lite.yaml"
    config.write_text(yaml.safe_dump({"keypairs": [USER], "sandbox": "none"}))
    data_dir = tmp_path / "data"
    cmd = [sys.executable, "-m", "airflow_provider_fasttrack.lite.cli", "serve", "--port", "0"]
    cmd += ["--config", str(config), "--data-dir", str(data_dir), *args]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    info = data_dir / "server.json"
    poll(lambda: info.exists() or process.poll() is not None, timeout=60)
    assert process.poll() is None, process.communicate()
    return process, json.loads(info.read_text())


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    return err


def test_remote_bind_without_tls_warns_what_is_exposed(tmp_path: Path) -> None:
    process, _ = _serve(tmp_path, "--host", "0.0.0.0", "--allow-remote")
    err = _stop(process)
    assert "WARNING: serving 0.0.0.0 over plain HTTP" in err
    assert "not the body" in err and "replay a signed request for 15 minutes" in err


def test_tls_certificate_serves_https(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    process, info = _serve(tmp_path, "--host", "127.0.0.1", "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        url = str(info["url"])
        assert url.startswith("https://127.0.0.1:")
        auth = BackendAIAuth(USER["access_key"], USER["secret_key"], LATEST_API_VERSION)
        poll(lambda: _answers(url, cert), timeout=60)
        with httpx.Client(
            base_url=url, auth=auth, verify=ssl.create_default_context(cafile=cert), timeout=30
        ) as http:
            assert http.get("/folders").status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(url.replace("https://", "http://") + "/", timeout=5)
    finally:
        err = _stop(process)
    assert "plain HTTP" not in err


def test_tls_options_go_together(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "airflow_provider_fasttrack.lite.cli", "serve", "--tls-cert", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--tls-cert and --tls-key go together" in done.stderr


def _answers(url: str, cert: Path) -> bool:
    try:
        return (
            httpx.get(url + "/", verify=ssl.create_default_context(cafile=cert), timeout=5).status_code == 200
        )
    except httpx.HTTPError:
        return False


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "backendai-lite test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


# -- file transfers across a swap and a restart ----------------------------------------------------------


def test_single_file_download_is_not_served_after_a_swap(server: LiteServer) -> None:
    """A file swapped for a symlink out of the vfolder after its ticket was issued is not served.

    The server checks the path when the download starts and again on the opened file (``open_inside``), so a
    swap between the two checks cannot redirect it either.
    """
    with client(server, USER) as http:
        assert http.post("/folders", json={"name": "swap"}).status_code == 201
        target = server.vfolder_path("swap", USER["access_key"]) / "model.bin"
        target.write_bytes(b"weights")
        ticket = http.post("/folders/swap/request-download", json={"path": "model.bin"}).json()
        target.unlink()
        target.symlink_to("/etc/passwd")
        answer = httpx.get(ticket["url"], params={"token": ticket["token"]})
        assert answer.status_code in (400, 404), answer.text
        assert b"root:" not in answer.content
        target.unlink()
        target.write_bytes(b"weights")
        again = http.post("/folders/swap/request-download", json={"path": "model.bin"}).json()
        served = httpx.get(again["url"], params={"token": again["token"]})
        assert served.status_code == 200 and served.content == b"weights"
        assert served.headers["content-length"] == "7"


def test_unfinished_uploads_are_removed_at_restart() -> None:
    """Upload tokens live in memory, so a partial file left by a previous run can never finish."""
    with LiteServer(keypairs=[USER], sandbox="none") as lite, client(lite, USER) as http:
        assert http.post("/folders", json={"name": "partial"}).status_code == 201
        ticket = http.post("/folders/partial/request-upload", json={"path": "big.bin", "size": 10}).json()
        half = httpx.patch(
            ticket["url"],
            params={"token": ticket["token"]},
            content=b"12345",
            headers={
                "Tus-Resumable": "1.0.0",
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert half.status_code == 204, half.text
        folder = lite.vfolder_path("partial", USER["access_key"])
        (folder / "notes.lite-upload-draft.txt").write_text("a user's file")
        assert len(list(folder.glob("big.bin.lite-upload-*"))) == 1
        lite.restart()
        assert sorted(p.name for p in folder.iterdir()) == ["notes.lite-upload-draft.txt"]
        assert "removed 1 unfinished upload" in lite.log_tail(10**9)
