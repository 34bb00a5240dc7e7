"""``backendai-lite serve``: run the local Backend.AI-compatible server."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import re
import socket
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

from airflow_provider_fasttrack.exceptions import LiteConfigError
from airflow_provider_fasttrack.lite.auth import MAX_CLOCK_SKEW
from airflow_provider_fasttrack.lite.config import (
    KeypairConfig,
    LiteConfig,
    generate_keypair,
    load_config,
)

__all__ = ["RedactTokens", "main", "plain_http_warning"]

DEFAULT_PORT = 8091
DEFAULT_DATA_DIR = "~/.local/share/backendai-lite"
#: how long an idle kept-alive connection stays open: aiohttp's default, which the manager serves with. A client
#: reuses an idle connection for up to 5 s (httpx); closing it at 5 s, as uvicorn does by default, made some of
#: those requests fail with a read error
KEEP_ALIVE_SECONDS = 75
_TOKEN_RE = re.compile(r"(token=)[^&\s\"]*")


class RedactTokens(logging.Filter):
    """Replaces the value of every ``token=`` query parameter (transfer tokens) in a log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_RE.sub(r"\1***", arg) if isinstance(arg, str) else arg for arg in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _TOKEN_RE.sub(r"\1***", record.msg)
        return True


def plain_http_warning(host: str) -> str:
    """What serving a non-loopback address without TLS exposes."""
    minutes = int(MAX_CLOCK_SKEW.total_seconds() // 60)
    return (
        f"backendai-lite: WARNING: serving {host} over plain HTTP. The request signature covers the method, "
        "path, query, date, host, content type and API version, but not the body; anyone on the network "
        "path can read every request and response (session commands, environment values, files, transfer "
        f"tokens), change a signed request's body, and replay a signed request for {minutes} minutes. "
        "Pass --tls-cert and --tls-key to serve HTTPS."
    )


def _gpu_shares(text: str) -> Decimal:
    try:
        shares = Decimal(text)
    except InvalidOperation:
        shares = Decimal(0)
    if not shares.is_finite() or shares <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number of fGPU shares, e.g. 10")
    return shares


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backendai-lite", description="A local Backend.AI-compatible server."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT}; 0: any free)"
    )
    serve.add_argument("--config", type=Path, help="YAML configuration file")
    serve.add_argument(
        "--data-dir", type=Path, default=None, help=f"state directory (default: {DEFAULT_DATA_DIR})"
    )
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow binding a non-loopback address (use with --tls-cert/--tls-key)",
    )
    serve.add_argument("--tls-cert", type=Path, help="serve HTTPS with this PEM certificate (chain)")
    serve.add_argument("--tls-key", type=Path, help="the PEM private key of --tls-cert")
    serve.add_argument(
        "--mock-gpu-shares",
        type=_gpu_shares,
        metavar="N",
        help="the default scaling group declares N cuda.shares (fGPU) of a mock accelerator: accounted by "
        "the scheduler, no device attached, GPU sessions run on the CPU",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _development_keypair(data_dir: Path) -> KeypairConfig:
    """The data dir's development keypair (an admin), created (mode 0600) on first use."""
    path = data_dir / "dev-keypair.json"
    if path.exists():
        return KeypairConfig.model_validate({**json.loads(path.read_text()), "is_admin": True})
    keypair = generate_keypair().model_copy(update={"is_admin": True})
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"access_key": keypair.access_key, "secret_key": keypair.secret_key}, out)
    return keypair


def serve(args: argparse.Namespace) -> int:
    """Run until SIGINT/SIGTERM."""
    if not _is_loopback(args.host) and not args.allow_remote:
        print(
            f"backendai-lite: refusing to bind {args.host!r}, which is not a loopback address; "
            "pass --allow-remote to expose it (with --tls-cert and --tls-key for HTTPS)",
            file=sys.stderr,
        )
        return 2
    if (args.tls_cert is None) != (args.tls_key is None):
        print("backendai-lite: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    for option, file in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        if file is not None and not file.is_file():
            print(f"backendai-lite: {option} {file}: no such file", file=sys.stderr)
            return 2
    tls = args.tls_cert is not None
    if not _is_loopback(args.host) and not tls:
        print(plain_http_warning(args.host), file=sys.stderr, flush=True)
    try:
        config: LiteConfig = load_config(args.config)
    except LiteConfigError as exc:
        print(f"backendai-lite: {exc}", file=sys.stderr)
        return 2
    if args.mock_gpu_shares is not None:
        config.declare_mock_gpu_shares(args.mock_gpu_shares)
    data_dir = (args.data_dir or Path(DEFAULT_DATA_DIR)).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if not config.keypairs:
        keypair = _development_keypair(data_dir)
        config.keypairs.append(keypair)
        print("backendai-lite: no keypairs configured; development keypair:", flush=True)
        print(f"  access key: {keypair.access_key}", flush=True)
        print(f"  secret key: {keypair.secret_key}", flush=True)

    import uvicorn

    from airflow_provider_fasttrack.lite.app import create_app

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"backendai-lite: cannot bind {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]
    scheme = "https" if tls else "http"
    url = f"{scheme}://{args.host if family == socket.AF_INET else '[' + args.host + ']'}:{port}"
    (data_dir / "server.json").write_text(json.dumps({"url": url, "port": port, "pid": os.getpid()}))
    print(f"backendai-lite: serving {url} (data dir {data_dir})", flush=True)
    if banner := config.mock_accelerator_banner():
        print(f"backendai-lite: {banner}", flush=True)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(config, data_dir)

    class LiteUvicornServer(uvicorn.Server):
        """Ends the event streams first on shutdown, so open streams do not hold it up."""

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            lite = getattr(app.state, "lite", None)
            if lite is not None:
                lite.hub.close()
            await super().shutdown(sockets)

    server = LiteUvicornServer(
        uvicorn.Config(
            app,
            log_level=args.log_level,
            timeout_graceful_shutdown=3,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            lifespan="on",
            proxy_headers=False,  # a caller's X-Forwarded-* never stands for its address or scheme
            ssl_certfile=args.tls_cert,
            ssl_keyfile=args.tls_key,
        )
    )
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())  # after uvicorn configured its logging
    server.run(sockets=[sock])
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
