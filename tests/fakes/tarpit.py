"""A "tarpit": a loopback TCP server that accepts every connection and never answers.

What a vCenter (or any HTTPS peer) looks like when its process is wedged but the kernel still
completes handshakes: a connect succeeds at once, then every read waits for ever. Clients
that only time out the connect hang on it; the tests use it to prove that nothing does.

Usage::

    with tarpit() as pit:
        VSphereAdapter(host=pit.host, ...)   # "127.0.0.1:PORT"

On exit every connection is closed, so a client thread still stuck on one (the bug under
test) gets EOF and ends instead of keeping the test process alive.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Tarpit:
    port: int
    _listener: socket.socket
    _held: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def host(self) -> str:
        """As VSPHERE_HOST takes it."""
        return f"127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        """How many connections were accepted so far."""
        with self._lock:
            return len(self._held)

    def _accept_forever(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # the listener was closed: the tarpit is over
                return
            with self._lock:
                self._held.append(conn)  # held open, never read from, never written to

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            held, self._held = self._held, []
        for conn in held:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()


@contextlib.contextmanager
def tarpit() -> Iterator[Tarpit]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    pit = Tarpit(port=int(listener.getsockname()[1]), _listener=listener)
    thread = threading.Thread(target=pit._accept_forever, name="tarpit", daemon=True)
    thread.start()
    try:
        yield pit
    finally:
        pit.close()
        thread.join(timeout=5)
