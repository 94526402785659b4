"""Shared fixtures: a real engine on a loopback port chosen by the OS, with its own
home and SQLite file under tmp_path, and clients connected to it."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import grpc
import pytest

from engine.clock import ManualClock
from engine.server import EngineServer

UTC = timezone.utc


def start_engine(tmp_path: Path, **options) -> EngineServer:
    return EngineServer(home=tmp_path / "home", listen="127.0.0.1:0", **options).start()


@pytest.fixture
def engine(tmp_path):
    server = start_engine(tmp_path)
    yield server
    server.stop(grace=1)


@pytest.fixture
def clock():
    return ManualClock(datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC))


@pytest.fixture
def clocked_engine(tmp_path, clock):
    """An engine whose scheduler reads `clock`: tests move time with clock.advance()."""
    server = start_engine(tmp_path, clock=clock)
    yield server
    server.stop(grace=1)


@pytest.fixture
def jobs(engine):
    from client import Jobs

    with Jobs.connect(engine.address, token=engine.admin_token) as client:
        yield client


@pytest.fixture
def channel(engine):
    with grpc.insecure_channel(engine.address) as ch:
        yield ch


@pytest.fixture
def auth(engine):
    """Call metadata carrying the admin token."""
    return (("authorization", f"Bearer {engine.admin_token}"),)
