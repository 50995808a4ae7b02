"""hostile_files.py - builds the hostile inputs that test_hostile.py feeds to `serve` and `train`
(our own versions of the reproducers an attack on the project found). Each function writes a
real file; nothing here is a mock.
"""
import struct
import zlib


def _write_zip(path, records):
    """A zip written field by field. records: (name, method, data, size, crc) with method 0
    (stored) or 8 (deflated, `data` a raw deflate stream of `size` bytes)."""
    out, central = bytearray(), bytearray()
    for name, method, data, size, crc in records:
        n = name.encode()
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(data),
                           size, len(n), 0) + n + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc,
                               len(data), size, len(n), 0, 0, 0, 0, 0, offset) + n
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(records), len(records), len(central),
                      len(out), 0)
    with open(path, "wb") as f:
        f.write(bytes(out + central + end))


def _stored(name, data):
    return (name, 0, data, len(data), zlib.crc32(data))


def _zip(path, pickle, extra=()):
    """A torch.save-shaped zip: archive/data.pkl, byteorder, version, then `extra` records."""
    _write_zip(path, [_stored("archive/data.pkl", pickle), _stored("archive/byteorder", b"little"),
                      _stored("archive/version", b"3\n"), *extra])


def parent_first_chain(path, levels=200000):
    """Lists built parent-first, 7 pickle bytes a level: an empty list is memoised (always under
    key 0, so the memo never holds more than the newest), appended into the previous one (which
    is then popped) and fetched back. The root is memoised under key 1, so the whole chain lives
    until the memo is freed; each list is empty when it is placed, so a reader that records depth
    at insertion sees depth 1 throughout, and a recursive free goes 200,000 levels deep."""
    body = bytearray(b"\x80\x02]q\x01")
    body += b"]q\x00a0h\x00" * levels
    body += b"."
    _zip(path, bytes(body))


def mutual_lists(path):
    """Two lists appended into each other: a cycle."""
    _zip(path, b"\x80\x02]\x94]\x94ah\x01h\x00a0.")


def memoised_nones(path, count=6 << 20):
    """A 12 MB pickle of memoised Nones (never a valid state dict)."""
    _zip(path, b"\x80\x02" + b"N\x94" * count + b".")


def storage_pickle(numel):
    """A state dict {"w": FloatTensor[numel]} whose storage is record data/0."""
    n = struct.pack("<i", numel)
    return (b"\x80\x02}(X\x01\x00\x00\x00w"
            b"ctorch._utils\n_rebuild_tensor_v2\n"
            b"((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuJ"
            + n + b"tQK\x00J" + n + b"\x85K\x01\x85\x89tRu.")


def deflated_storage_bomb(path, mib=512):
    """A ~0.5 MB file whose one storage inflates to `mib` MiB of zeros. Each 1 MiB of zeros
    deflates, after a full flush, to the same bytes, so the stream is made without
    compressing the whole size."""
    chunk = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    stream = block * mib + c.flush()
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(chunk, crc)
    _zip(path, storage_pickle((mib << 20) // 4),
         [("archive/data/0", 8, stream, mib << 20, crc)])
