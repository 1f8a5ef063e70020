"""The embedded broker (`embedded://`): kombu's filesystem transport, made safe for a worker, beat
and the web process writing and reading the same folders at once.

kombu's own filesystem transport creates a message file and then writes into it; a reader that
lists the folder in between reads an empty file and the worker dies on
`JSONDecodeError('Expecting value: line 1 column 1 (char 0)')` (kombu issue 1551; the demo went
down after about 17 minutes). The exchange tables in the control folder are rewritten in place the
same way. Here every file is written under a name no reader picks up and then renamed into place
(`os.replace` is atomic on one filesystem), so a reader sees a whole file or none; a file that
cannot be decoded all the same (a disk filled mid-write, a hand edit) is set aside in
`<processed_folder>/damaged/` with a warning instead of stopping the worker.
"""

import json
import logging
import os
import tempfile
import uuid
from pathlib import Path
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem, virtual
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

SCHEME = "embedded"
# Any name a reader skips: kombu's reader takes only `<time>_<uuid>.<queue>.msg`.
_PARTIAL_SUFFIX = ".partial"


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that no reader ever sees a partly written file. (No fsync: the
    rename is what readers need; surviving a power cut is not the embedded demo's job.)"""
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}{_PARTIAL_SUFFIX}")
    try:
        with open(partial, "wb") as out:
            out.write(data)
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ChannelError(f"Cannot write {path}") from exc


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        write_atomically(Path(self.data_folder_out) / name, dumps(payload).encode())

    def _get(self, queue):
        """The oldest message of `queue`. Two consumers may race for a file: the one whose
        rename succeeds takes it, the other moves on to the next file."""
        wanted = f"{queue}.msg"
        folder = Path(self.data_folder_in)
        taken_dir = Path(self.processed_folder if self.store_processed else tempfile.gettempdir())
        for name in sorted(os.listdir(folder)):
            if name.partition(".")[2] != wanted:
                continue
            taken = taken_dir / name
            try:
                os.replace(folder / name, taken)
            except OSError:
                continue  # another consumer took it first
            try:
                payload = taken.read_bytes()
                message = loads(payload)
            except (OSError, ValueError) as exc:
                self._set_aside(taken, exc)
                continue
            if not self.store_processed:
                taken.unlink(missing_ok=True)
            return message
        raise virtual.Empty()

    def _set_aside(self, taken: Path, exc: Exception) -> None:
        damaged = Path(self.processed_folder) / "damaged"
        damaged.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(taken, damaged / taken.name)
        except OSError:
            taken.unlink(missing_ok=True)
        logger.warning("embedded broker: set aside unreadable message %s: %r", taken.name, exc)

    # The exchange tables (which queues a fanout reaches) are read whole and replaced whole.

    def get_table(self, exchange):
        try:
            table = json.loads(self._exchange_file(exchange).read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise ChannelError(f"Cannot read the table of exchange {exchange!r}") from exc
        return [filesystem.exchange_queue_t(*row) for row in table]

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        row = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._table_change(exchange, lambda rows: rows if row in rows else [row, *rows])

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        virtual.Channel._delete(self, queue, exchange, routing_key, pattern, *args, **kwargs)
        row = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._table_change(exchange, lambda rows: [r for r in rows if r != row])

    def _table_change(self, exchange, change) -> None:
        """Read, change and replace one exchange table under an exclusive lock on its own lock
        file, so two processes binding at once cannot lose each other's row."""
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        with open(file.with_name(file.name + ".lock"), "a+b") as guard:
            filesystem.lock(guard, filesystem.LOCK_EX)
            try:
                rows = self.get_table(exchange)
                changed = change(rows)
                if changed != rows:
                    write_atomically(file, json.dumps(changed).encode())
            finally:
                filesystem.unlock(guard)


class Transport(filesystem.Transport):
    Channel = Channel
    driver_type = driver_name = SCHEME
    # Bindings a process has declared, kept apart from kombu's own filesystem transport's.
    global_state = virtual.BrokerState()
    # No host to default to: kombu would warn "No hostname was supplied" on every connection.
    default_connection_params = {}


TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"
