"""The embedded broker (exchange_site/embedded_broker.py) against kombu issue 1551: a reader that
meets a half-written message file must not die, and writers never leave one to be met."""

import json
import multiprocessing
from pathlib import Path

import pytest
from kombu import Connection

import exchange_site.embedded_broker  # noqa: F401  (registers embedded://)

MESSAGES = 2_000


# A process remembers the bindings it declared (kombu's BrokerState), so each test uses queue
# names of its own: a name bound in an earlier test's folders would not be bound in this one's.


def broker_options(root: Path) -> dict:
    folders = {name: root / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(exist_ok=True)
    return {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "store_processed": False,
    }


def half_written_message(root: Path, *, queue: str) -> Path:
    """What a reader sees between kombu's open() and write(): the file exists and is empty."""
    path = root / "queue" / f"0_00000000-0000-0000-0000-000000000000.{queue}.msg"
    path.write_bytes(b"")
    return path


def test_kombus_own_filesystem_transport_dies_on_a_half_written_message(tmp_path):
    # given: the failure issue 19 saw after 17 minutes of `make run`, made deterministic
    options = broker_options(tmp_path)
    half_written_message(tmp_path, queue="kombu-jobs")
    with Connection("filesystem://", transport_options=options) as conn:
        queue = conn.SimpleQueue("kombu-jobs")
        # then: kombu's reader raises (the worker's consumer crashes on it)
        with pytest.raises(json.JSONDecodeError):
            queue.get(block=False)


def test_embedded_broker_sets_a_half_written_message_aside_and_delivers_the_next(tmp_path):
    # given: a half-written file ahead of a whole message
    options = broker_options(tmp_path)
    damaged = half_written_message(tmp_path, queue="aside-jobs")
    with Connection("embedded://", transport_options=options) as conn:
        queue = conn.SimpleQueue("aside-jobs")
        queue.put({"n": 1})
        # when
        message = queue.get(block=True, timeout=5)
    # then
    assert message.payload == {"n": 1}
    assert (tmp_path / "processed" / "damaged" / damaged.name).exists()
    assert not damaged.exists()


def _publish(options: dict, count: int) -> None:
    with Connection("embedded://", transport_options=options) as conn:
        queue = conn.SimpleQueue("race-jobs")
        for n in range(count):
            queue.put({"n": n, "pad": "x" * 4096})


def test_a_reader_racing_a_writer_gets_every_message_whole(tmp_path):
    # given: another process writing 2,000 messages of 4 kB as fast as it can
    options = broker_options(tmp_path)
    writer = multiprocessing.get_context("spawn").Process(target=_publish, args=(options, MESSAGES))
    writer.start()
    received = []
    # when: this process reads them while they are being written
    with Connection("embedded://", transport_options=options) as conn:
        queue = conn.SimpleQueue("race-jobs")
        while len(received) < MESSAGES:
            message = queue.get(block=True, timeout=30)
            received.append(message.payload["n"])
            message.ack()
    writer.join(timeout=30)
    # then: all of them, none damaged, nothing left half-written in the folder
    assert writer.exitcode == 0
    assert sorted(received) == list(range(MESSAGES))
    assert not (tmp_path / "processed" / "damaged").exists()
    assert not list((tmp_path / "queue").iterdir())
