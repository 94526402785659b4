"""Starting and stopping the engine: the home directory, the store, the scheduler and
the gRPC server, with health checking and reflection. `capsule serve` lands here."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from google.protobuf import message_factory

from capsule.v1 import admin_pb2, executions_pb2, jobs_pb2, messages_pb2
from engine import services
from engine.clock import Clock, SystemClock
from engine.core import Engine
from engine.retention import RetentionSweeper
from engine.scheduler import DEFAULT_WORKERS, Scheduler
from engine.store import Store

log = logging.getLogger("capsule.server")

DEFAULT_LISTEN = "127.0.0.1:50051"
GRPC_THREADS = 32
SHORT_CALL_THREADS = 8  # never taken by waits and streams (services.LongCalls)
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
_SERVICES = {
    "JobService": jobs_pb2.DESCRIPTOR.services_by_name["JobService"],
    "ExecutionService": executions_pb2.DESCRIPTOR.services_by_name["ExecutionService"],
    "MessageService": messages_pb2.DESCRIPTOR.services_by_name["MessageService"],
    "AdminService": admin_pb2.DESCRIPTOR.services_by_name["AdminService"],
}
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
    """(layer, in force, detail) for what this machine gives the sandbox, detected now."""
    import sandbox

    return sandbox.default_sandbox().layers()


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
    tls_cert: Path | None = None  # with tls_key: serve TLS only (PEM files)
    tls_key: Path | None = None

    def start(self) -> "EngineServer":
        import sandbox
        from sandbox.zygote import set_dumpable

        # Same-uid processes may no longer read our memory, environment or descriptors.
        set_dumpable(False)
        if self.check_source is None or self.run_attempt is None:
            sandbox.default_sandbox().start()  # the fork server, before any request
        self.admin_token = prepare_home(Path(self.home))
        self.store = Store(Path(self.db) if self.db else Path(self.home) / "capsule.db")
        self.store.ensure_admin_token(self.admin_token, self.clock.now())
        self.engine = Engine(self.store, self.clock, check_source=self.check_source or sandbox.check_source)
        self.scheduler = Scheduler(self.engine, self.run_attempt or sandbox.run_attempt, workers=self.workers)
        self._grpc = self._build_grpc()
        self.port = self._add_port()
        if self.port == 0:
            raise OSError(f"cannot listen on {self.listen}; is another engine running there? "
                          "pick another address with --listen HOST:PORT")
        self.address = f"{self.listen.rsplit(':', 1)[0]}:{self.port}"
        self.scheduler.start()
        self.retention = RetentionSweeper(self.engine)
        self.retention.start()
        self._grpc.start()
        self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        log.info("engine listening on %s, store %s%s", self.address, self.store.path,
                 ", TLS" if self.tls_cert else "",
                 extra={"action": "start", "address": self.address, "store": str(self.store.path)})
        return self

    def _add_port(self) -> int:
        if self.tls_cert is None and self.tls_key is None:
            return self._grpc.add_insecure_port(self.listen)
        if self.tls_cert is None or self.tls_key is None:
            raise ValueError("tls_cert and tls_key go together; pass both PEM files, or neither")
        try:
            pair = (Path(self.tls_key).read_bytes(), Path(self.tls_cert).read_bytes())
        except OSError as exc:
            raise OSError(f"cannot read the TLS certificate or key {exc.filename} ({exc.strerror}); "
                          "pass PEM files with --tls-cert and --tls-key") from None
        return self._grpc.add_secure_port(self.listen, grpc.ssl_server_credentials([pair]))

    def _build_grpc(self) -> grpc.Server:
        server = grpc.server(
            ThreadPoolExecutor(max_workers=GRPC_THREADS, thread_name_prefix="capsule-grpc"),
            options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)])
        layers = isolation_layers()
        for name, active, detail in layers:
            log.info("isolation layer %s: %s (%s)", name, "on" if active else "off", detail,
                     extra={"action": "isolation_layer"})
        info = {"listen": self.listen, "layers": layers, "started_at": self.clock.now()}
        self.long_calls = long_calls = services.LongCalls(GRPC_THREADS - SHORT_CALL_THREADS)
        for servicer in (services.JobService(self.engine, long_calls), services.ExecutionService(self.engine, long_calls),
                         services.MessageService(self.engine, long_calls),
                         services.AdminService(self.engine, info, long_calls)):
            server.add_generic_rpc_handlers((_lenient_handlers(servicer),))
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
        self.retention.stop()
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


def _lenient_handlers(servicer: services._Service) -> grpc.GenericRpcHandler:
    """The servicer's methods, registered like the generated add_*_to_server does but
    with request parsers that never raise (see services.lenient_parser)."""
    service = _SERVICES[type(servicer).__name__]
    handlers = {}
    for method in service.methods:
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        make = grpc.unary_stream_rpc_method_handler if method.server_streaming else grpc.unary_unary_rpc_method_handler
        handlers[method.name] = make(getattr(servicer, method.name),
                                     request_deserializer=services.lenient_parser(request_class),
                                     response_serializer=response_class.SerializeToString)
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def serve_forever(home: str | Path | None = None, db: str | Path | None = None,
                  listen: str | None = None, tls_cert: str | Path | None = None,
                  tls_key: str | Path | None = None, max_running: int | None = None) -> None:
    """The `capsule serve` command."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = EngineServer(home=Path(home) if home else default_home(),
                          db=Path(db) if db else None, listen=listen or DEFAULT_LISTEN,
                          tls_cert=Path(tls_cert) if tls_cert else None,
                          tls_key=Path(tls_key) if tls_key else None,
                          workers=max_running or DEFAULT_WORKERS)
    server.serve_forever()
