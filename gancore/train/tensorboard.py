"""TensorBoard scalars without a framework: the loop writes the tick record's own names.

TensorBoard's event files are TFRecord files of ``Event`` protos. The ``tensorboard``
package's high-level writer imports TensorFlow when it is installed (a torch process must not
load TensorFlow: slow, and some version pairs crash), so this writes records with its
framework-free ``RecordWriter``.
"""

from __future__ import annotations

import math
import os
import socket
import time
from pathlib import Path
from typing import Any


class ScalarWriter:
    """Append scalars to ``<folder>/events.out.tfevents.<time>.<host>.<pid>``."""

    def __init__(self, folder: str | os.PathLike) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.summary.writer.record_writer import RecordWriter

        self._event = Event
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self._fh = open(folder / name, "wb")  # noqa: SIM115 (kept open while training)
        self._writer = RecordWriter(self._fh)
        self._writer.write(
            Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString()
        )

    def scalars(self, step: int, values: dict[str, Any]) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        items = [
            Summary.Value(tag=k, simple_value=float(v))
            for k, v in values.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        ]
        event = self._event(wall_time=time.time(), step=int(step), summary=Summary(value=items))
        self._writer.write(event.SerializeToString())
        self._writer.flush()

    def close(self) -> None:
        self._fh.close()
