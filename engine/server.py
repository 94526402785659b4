"""Starting and stopping the engine: the home directory, the store, the scheduler and
the gRPC server, with health checking and reflection. `capsule serve` lands here."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from capsule.v1 import admin_pb2, admin_pb2_grpc, executions_pb2, executions_pb2_grpc
from capsule.v1 import jobs_pb2, jobs_pb2_grpc, messages_pb2, messages_pb2_grpc
from engine import services
from engine.clock import Clock, SystemClock
from engine.core import Engine
from engine.scheduler import DEFAULT_WORKERS, Scheduler
from engine.store import Store

log = logging.getLogger("capsule.server")

DEFAULT_LISTEN = "127.0.0.1:50051"
GRPC_THREADS = 32
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
SERVICE_NAMES = (
    jobs_pb2.DESCRIPTOR.services_by_name["JobService"].full_name,
    executions_pb2.DESCRIPTOR.services_by_name["ExecutionService"].full_name,
    messages_pb2.DESCRIPTOR.services_by_name["MessageService"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
)


def default_home() -> Path:
    return Path(os.environ.get("CAPSULE_HOME") or Path.home() / ".capsule")


def prepare_home(home: Path) -> str:
    """Creates the home (0700) and the admin token file (0600) once; returns the token."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    token_file = home / "admin.token"
    if not token_file.exists():
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("cap_admin_" + secrets.token_urlsafe(32) + "\n")
    return token_file.read_text().strip()


def isolation_layers() -> list[tuple[str, bool, str]]:
    """(layer, in force, detail) for what this machine gives the sandbox."""
    return [
        ("child process", True, "a new process per attempt, its own process group, killed at the timeout"),
        ("rlimits", True, "address space, CPU seconds, file size, open files and core dumps capped in the child"),
        ("restricted python", True, "RestrictedPython policy with an import allow-list (restricted profile)"),
        ("scrubbed environment", True, "the child gets a minimal environment and a fresh empty working directory"),
        ("bubblewrap", bool(shutil.which("bwrap")),
         "found, not yet used by this version" if shutil.which("bwrap") else "not installed"),
    ]


@dataclass
class EngineServer:
    """A whole engine: use `start()` then `stop()`, or `serve_forever()` from the CLI."""

    home: Path = field(default_factory=default_home)
    db: Path | None = None
    listen: str = DEFAULT_LISTEN
    clock: Clock = field(default_factory=SystemClock)
    workers: int = DEFAULT_WORKERS
    check_source: Callable[..., None] | None = None
    run_attempt: Callable[..., Any] | None = None

    def start(self) -> "EngineServer":
        import sandbox

        self.admin_token = prepare_home(Path(self.home))
        self.store = Store(Path(self.db) if self.db else Path(self.home) / "capsule.db")
        self.store.ensure_admin_token(self.admin_token, self.clock.now())
        self.engine = Engine(self.store, self.clock, check_source=self.check_source or sandbox.check_source)
        self.scheduler = Scheduler(self.engine, self.run_attempt or sandbox.run_attempt, workers=self.workers)
        self._grpc = self._build_grpc()
        self.port = self._grpc.add_insecure_port(self.listen)
        if self.port == 0:
            raise OSError(f"cannot listen on {self.listen}; is another engine running there? "
                          "pick another address with --listen HOST:PORT")
        self.address = f"{self.listen.rsplit(':', 1)[0]}:{self.port}"
        self.scheduler.start()
        self._grpc.start()
        self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        log.info("engine listening on %s, store %s", self.address, self.store.path,
                 extra={"action": "start", "address": self.address, "store": str(self.store.path)})
        return self

    def _build_grpc(self) -> grpc.Server:
        server = grpc.server(
            ThreadPoolExecutor(max_workers=GRPC_THREADS, thread_name_prefix="capsule-grpc"),
            options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)])
        info = {"listen": self.listen, "layers": isolation_layers(), "started_at": self.clock.now()}
        jobs_pb2_grpc.add_JobServiceServicer_to_server(services.JobService(self.engine), server)
        executions_pb2_grpc.add_ExecutionServiceServicer_to_server(services.ExecutionService(self.engine), server)
        messages_pb2_grpc.add_MessageServiceServicer_to_server(services.MessageService(self.engine), server)
        admin_pb2_grpc.add_AdminServiceServicer_to_server(services.AdminService(self.engine, info), server)
        self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            SERVICE_NAMES + (health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            server)
        return server

    def stop(self, grace: float = 5.0) -> None:
        """Stops taking requests, lets running attempts finish, closes the store."""
        self._health.enter_graceful_shutdown()
        self._grpc.stop(grace).wait()
        self.scheduler.stop()
        self.store.close()
        log.info("engine stopped", extra={"action": "stop"})

    def serve_forever(self) -> None:
        """Runs until SIGINT or SIGTERM, then shuts down cleanly."""
        done = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: done.set())
        self.start()
        done.wait()
        self.stop()


def serve_forever(home: str | Path | None = None, db: str | Path | None = None,
                  listen: str | None = None, max_running: int | None = None) -> None:
    """The `capsule serve` command."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = EngineServer(home=Path(home) if home else default_home(),
                          db=Path(db) if db else None, listen=listen or DEFAULT_LISTEN,
                          workers=max_running or DEFAULT_WORKERS)
    for name, active, detail in isolation_layers():
        log.info("isolation layer %s: %s (%s)", name, "on" if active else "off", detail,
                 extra={"action": "isolation_layer"})
    server.serve_forever()
