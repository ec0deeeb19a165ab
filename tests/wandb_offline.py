"""Read back what an offline W&B run wrote: its ``run-<id>.wandb`` transaction log.

wandb >= 0.2x writes runs from its Go core and ships no Python reader of the file, so this reads the framing
(W&B's LevelDB-style log: a 7-byte file header, 32 KiB blocks, records split into checksummed chunks) and
parses each record with wandb's own protobuf message, ``wandb.proto.wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

BLOCK = 32768
CHUNK_HEADER = 7  # crc32 (4), length (2), kind (1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path):
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), f"not a W&B run file: {path}"
    pos, pending = 7, b""
    while pos + CHUNK_HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < CHUNK_HEADER:  # block trailer padding
            pos += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + CHUNK_HEADER])
        if kind == 0:  # zero padding to the end of the block
            pos += left
            continue
        chunk = data[pos + CHUNK_HEADER : pos + CHUNK_HEADER + length]
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == crc, f"bad checksum at byte {pos} of {path}"
        pos += CHUNK_HEADER + length
        pending += chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def offline_run(wandb_dir: Path) -> tuple[Path, list[dict[str, Any]], dict[str, Any]]:
    """The one offline run under ``wandb_dir``: its directory, its history rows and its config."""
    runs = sorted(Path(wandb_dir).rglob("offline-run-*"))
    assert len(runs) == 1, f"expected one offline run under {wandb_dir}, found {runs}"
    (log,) = runs[0].glob("run-*.wandb")
    history, config = [], {}
    for record in read_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind in ("config", "run"):
            items = record.config.update if kind == "config" else record.run.config.update
            config.update({_key(i): json.loads(i.value_json) for i in items})
    return runs[0], history, config


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def logged_file(run_dir: Path, row: dict[str, Any], key: str) -> Path:
    """The file a logged table or image under ``key`` points at (``files/media/...``)."""
    return run_dir / "files" / row[f"{key}/path"]


def logged_table(run_dir: Path, row: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The rows of the table logged under ``key`` in a history row, as dicts."""
    assert row[f"{key}/_type"] == "table-file"
    table = json.loads(logged_file(run_dir, row, key).read_text())
    return [dict(zip(table["columns"], values)) for values in table["data"]]
