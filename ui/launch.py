"""``rag serve``: check the host, port and login, build the chain from settings and launch the chat UI."""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys

from rag.chain import Chain
from rag.errors import ConfigError, InputError, RagError
from rag.settings import get_settings
from rag.store import require_articles
from ui import render
from ui.app import create_app
from ui.library import one_line

__all__ = ["check_bind", "check_host", "check_port", "is_loopback", "parse_auth", "serve"]


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_auth(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ConfigError("RAG_UI_AUTH must be 'user:password'")
    return user, password


def check_host(host: str, has_auth: bool, insecure: bool) -> str | None:
    """Why serving on ``host`` is refused, or None when it is allowed."""
    if is_loopback(host) or has_auth or insecure:
        return None
    return (f"refusing to serve on non-loopback host {host} without a login: set RAG_UI_AUTH=user:password"
            " (or pass --insecure)")


def check_port(port: int) -> str | None:
    return None if 1 <= port <= 65535 else f"port must be from 1 to 65535, got {port}"


def check_bind(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (unknown host, port in use, no permission), or None."""
    try:
        # "[::1]" as Gradio takes it: the brackets are not the address's
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
            sock.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"port {port} is already in use on {host} (is another server running? pick another --port)"
        return f"cannot listen on {host}:{port}: {exc.strerror or one_line(exc)}"
    return None


def serve(host: str = "127.0.0.1", port: int = 7860, insecure: bool = False, collection: str | None = None) -> int:
    """Build the chain from settings (on ``collection`` when given, else RAG_COLLECTION's) and run the UI until
    interrupted. Returns an exit code."""
    try:
        settings = get_settings()
        if collection:
            settings = settings.model_copy(update={"collection": collection})
        auth = parse_auth(settings.ui_auth.get_secret_value() if settings.ui_auth else None)
        # the address first: before the models load, and before uvicorn logs a bind failure of its own
        if problem := check_port(port) or check_host(host, auth is not None, insecure) or check_bind(host, port):
            print(f"error: {problem}", file=sys.stderr)
            return 2
        try:  # the chat can still take uploads, so this is no reason to stop
            require_articles(settings.data_dir, settings.collection)
        except InputError as exc:
            print(f"warning: {exc}, or add articles in the chat's Library tab", file=sys.stderr)
        chain = Chain.from_settings(settings, repair=True)  # a torn or lost index would crash or mislead search
        demo = create_app(chain)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    demo.queue(max_size=settings.ui_queue_size, default_concurrency_limit=1)
    try:
        demo.launch(server_name=host, server_port=port, auth=auth, css=render.CSS, js=render.JS,
                    max_file_size=settings.max_file_bytes, share=False, show_error=False)
    except OSError as exc:  # Gradio says "Cannot find empty port" for every bind failure: find out which
        why = check_bind(host, port) or f"cannot serve on {host}:{port}: {one_line(exc)}"
        print(f"error: {why}", file=sys.stderr)
        return 2
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
