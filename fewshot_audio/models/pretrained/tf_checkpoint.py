"""A reader of TensorFlow (V2) checkpoints written with numpy alone: no TensorFlow needed.

A checkpoint is ``PREFIX.index`` plus ``PREFIX.data-00000-of-0000N``. The index is a LevelDB-style
sorted table: data blocks of prefix-compressed key/value entries (with a restart array), an index
block pointing at them, and a 48-byte footer ending in a magic number. The empty key holds a
``BundleHeaderProto``; every other key is a tensor name whose value is a ``BundleEntryProto``
(dtype, shape, shard, offset, size, crc32c) locating its bytes in a data shard. Every block's and
every tensor's crc32c is verified.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from fewshot_audio.errors import CheckpointError

TABLE_MAGIC = 0xDB4775248B80FB57
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
           10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64}


# ----------------------------------------------------------------------------- crc32c (Castagnoli)
def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data`` (uses the ``crc32c`` or ``google_crc32c`` package when installed)."""
    try:
        import crc32c as fast  # optional fast CRC32C

        return fast.crc32c(data)
    except ImportError:
        pass
    try:
        import google_crc32c  # optional fast CRC32C

        return google_crc32c.value(data)
    except ImportError:
        pass
    crc, table = 0xFFFFFFFF, _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def unmask(masked: int) -> int:
    """The CRC32C of a TensorFlow checkpoint record from its masked form (TensorFlow's ``crc32c::Unmask``)."""
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# ----------------------------------------------------------------------------- varints and protobuf
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _proto_fields(buf: bytes) -> list[tuple[int, int, object]]:
    """Decode a protobuf message into ``(field number, wire type, value)`` triples."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + n], pos + n
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire}")
        out.append((field, wire, value))
    return out


def _parse_entry(buf: bytes) -> dict:
    entry = {"dtype": 0, "shape": [], "shard_id": 0, "offset": 0, "size": 0, "crc32c": None}
    for field, _, value in _proto_fields(buf):
        if field == 1:
            entry["dtype"] = value
        elif field == 2:
            for f2, _, dim in _proto_fields(value):
                if f2 == 2:
                    size = next((v for f3, _, v in _proto_fields(dim) if f3 == 1), 0)
                    entry["shape"].append(size)
        elif field == 3:
            entry["shard_id"] = value
        elif field == 4:
            entry["offset"] = value
        elif field == 5:
            entry["size"] = value
        elif field == 6:
            entry["crc32c"] = value
        elif field == 7:
            entry["sliced"] = True
    return entry


# ----------------------------------------------------------------------------- the sorted table
def _read_block(data: bytes, offset: int, size: int, name: str) -> bytes:
    block = data[offset : offset + size]
    trailer = data[offset + size : offset + size + 5]
    if len(block) != size or len(trailer) != 5:
        raise CheckpointError(f"{name} is truncated (block at {offset} runs past the end of the file)")
    if trailer[0] != 0:
        raise CheckpointError(f"{name}: compressed table blocks (type {trailer[0]}) are not supported")
    if unmask(struct.unpack("<I", trailer[1:])[0]) != crc32c(block + trailer[:1]):
        raise CheckpointError(f"{name} is corrupt: crc32c mismatch in the block at offset {offset}")
    return block


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * n_restarts
    entries, pos, key = [], 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        non_shared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        entries.append((key, block[pos : pos + value_len]))
        pos += value_len
    return entries


def read_index(path: str | Path) -> dict[str, dict]:
    """All ``BundleEntryProto`` records of a ``.index`` file, keyed by tensor name."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint index {path} does not exist") from None
    if len(data) < 48:
        raise CheckpointError(f"{path} is truncated ({len(data)} bytes); it is not a TensorFlow checkpoint index")
    footer = data[-48:]
    if struct.unpack("<Q", footer[40:])[0] != TABLE_MAGIC:
        raise CheckpointError(f"{path} is not a TensorFlow checkpoint index (bad magic number)")
    _, pos = _varint(footer, 0)  # metaindex handle (unused)
    _, pos = _varint(footer, pos)
    index_offset, pos = _varint(footer, pos)
    index_size, pos = _varint(footer, pos)
    entries: dict[str, dict] = {}
    for _, handle in _block_entries(_read_block(data, index_offset, index_size, str(path))):
        offset, p = _varint(handle, 0)
        size, _ = _varint(handle, p)
        for key, value in _block_entries(_read_block(data, offset, size, str(path))):
            if key:  # the empty key is the BundleHeaderProto
                entries[key.decode()] = _parse_entry(value)
    return entries


def read_checkpoint(prefix: str | Path, *, verify: bool = True) -> dict[str, np.ndarray]:
    """Every tensor of the checkpoint at ``prefix`` (``prefix.index`` and its data shards) as numpy arrays."""
    prefix = str(prefix)
    entries = read_index(prefix + ".index")
    n_shards = 1 + max((e["shard_id"] for e in entries.values()), default=0)
    shards: dict[int, bytes] = {}
    out = {}
    for name, e in sorted(entries.items()):
        if e["dtype"] not in _DTYPES or e.get("sliced"):
            continue  # strings, resources and partitioned variables are not model weights here
        sid = e["shard_id"]
        if sid not in shards:
            shard = Path(f"{prefix}.data-{sid:05d}-of-{n_shards:05d}")
            try:
                shards[sid] = shard.read_bytes()
            except FileNotFoundError:
                raise CheckpointError(f"checkpoint data shard {shard} does not exist") from None
        raw = shards[sid][e["offset"] : e["offset"] + e["size"]]
        if len(raw) != e["size"]:
            raise CheckpointError(f"tensor {name!r} runs past the end of its data shard: the checkpoint is truncated")
        if verify and e["crc32c"] is not None and unmask(e["crc32c"]) != crc32c(raw):
            raise CheckpointError(f"tensor {name!r} fails its crc32c check: the checkpoint is corrupt")
        out[name] = np.frombuffer(raw, dtype=np.dtype(_DTYPES[e["dtype"]]).newbyteorder("<")).reshape(e["shape"]).copy()
    return out
