"""Fault injection on loopback: a TCP proxy that can be cut, paused or slowed, and a private Redis.

Both are put between the app and a dependency so a test can break that dependency and heal it
again without touching the shared PostgreSQL and Redis servers of the machine.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

from tests.processes import stop_process

LOOPBACK = "127.0.0.1"
_CHUNK = 65536


def _reset(sock: socket.socket) -> None:
    """Drop a connection at once, as a crashed server or a dropped NAT entry looks to the peer."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # close() alone would not release a socket another thread is blocked in recv() on, and the
    # peer (PostgreSQL holding a transaction open) would never learn: shutdown() wakes it.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    """Forwards a free loopback port to `upstream`; modes: pass, cut, paused, slow.

    - cut: live connections are reset; new ones are accepted and reset at once
      ("a port that closes connections").
    - paused: connections are accepted and bytes read, but nothing is forwarded either way
      (a black hole: the peer never answers) until heal().
    - slow: every chunk waits `delay_s` before it is forwarded, in both directions.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        if upstream_host not in (LOOPBACK, "localhost"):
            raise ValueError("fault proxies only front loopback services")
        self.upstream = (LOOPBACK, upstream_port)
        self._listener = socket.create_server((LOOPBACK, 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._mode = "pass"
        self._delay_s = 0.0
        self._open_gate = threading.Event()
        self._open_gate.set()
        self._lock = threading.Lock()
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._stopping = threading.Event()
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    @property
    def mode(self) -> str:
        return self._mode

    def url_for(self, url: str) -> str:
        """`url` (postgresql://..., redis://...) rewritten to go through this proxy."""
        parts = urlsplit(url)
        credentials, _, _ = parts.netloc.rpartition("@")
        netloc = f"{credentials}@" if credentials else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}{LOOPBACK}:{self.port}"))

    def cut(self) -> None:
        self._set_mode("cut")
        with self._lock:
            pairs, self._pairs = list(self._pairs), set()
        for client, upstream in pairs:
            _reset(client)
            _reset(upstream)

    def pause(self) -> None:
        self._set_mode("paused")

    def slow(self, delay_s: float) -> None:
        self._delay_s = delay_s
        self._set_mode("slow")

    def heal(self) -> None:
        self._delay_s = 0.0
        self._set_mode("pass")

    def close(self) -> None:
        self._stopping.set()
        self.cut()
        self._open_gate.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._acceptor.join(timeout=5)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _set_mode(self, mode: str) -> None:
        self._mode = mode
        if mode == "paused":
            self._open_gate.clear()
        else:
            self._open_gate.set()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._mode == "cut":
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=3)
            except OSError:
                _reset(client)
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            pair = (client, upstream)
            with self._lock:
                self._pairs.add(pair)
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, target, pair), daemon=True
                ).start()

    def _pump(
        self,
        source: socket.socket,
        target: socket.socket,
        pair: tuple[socket.socket, socket.socket],
    ) -> None:
        try:
            while True:
                data = source.recv(_CHUNK)
                if not data:
                    break
                # Paused: hold what was read; the peer waits for an answer that does not come.
                while not self._open_gate.wait(timeout=0.2):
                    if self._stopping.is_set():
                        return
                if self._mode == "slow" and self._delay_s:
                    time.sleep(self._delay_s)
                if self._mode == "cut":
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._pairs.discard(pair)
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


class RedisServer:
    """A private redis-server on a free loopback port, with an append-only file so that a
    stop and start keeps its data (queued jobs survive, as they would in production)."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.url = f"redis://{LOOPBACK}:{self.port}/0"
        self.process: subprocess.Popen | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def start(self, deadline_s: float = 15.0) -> None:
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                LOOPBACK,
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--protected-mode",
                "yes",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        give_up_at = time.monotonic() + deadline_s
        client = self.client()
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.process.returncode}")
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    pass
                if time.monotonic() > give_up_at:
                    raise TimeoutError(f"redis-server on :{self.port} did not answer")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self, deadline_s: float = 10.0) -> None:
        """Stop the server (TERM, then KILL after the deadline); idempotent."""
        process, self.process = self.process, None
        if process is not None:
            stop_process(process, grace_s=deadline_s)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)


@contextmanager
def private_redis(directory: Path) -> Iterator[RedisServer]:
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def proxied(url: str) -> Iterator[TcpProxy]:
    """A TcpProxy in front of the loopback service named by `url`; closed afterwards."""
    parts = urlsplit(url)
    proxy = TcpProxy(parts.hostname or LOOPBACK, parts.port or _default_port(parts.scheme))
    try:
        yield proxy
    finally:
        proxy.close()


def _default_port(scheme: str) -> int:
    return 6379 if scheme.startswith("redis") else 5432
