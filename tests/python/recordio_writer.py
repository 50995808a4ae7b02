"""recordio_writer.py - a small RecordIO writer of our own for the tests: records as MXNet's
im2rec packs them (IRHeader flag/label/id/id2, then the encoded image), framed as dmlc-core's
recordio frames them (magic, length word with the continuation flag in its top 3 bits, data
padded to 4 bytes; the data split wherever the magic number sits at a 4-byte boundary).
"""
import struct

MAGIC = 0xced7230a
MAGIC_BYTES = struct.pack("<I", MAGIC)


def pack(label, image, rec_id=0, labels=None):
    """One im2rec record: labels=None -> flag 0 and the label in the header; a list -> flag
    len(labels) and the float labels after the header."""
    if labels is None:
        return struct.pack("<IfQQ", 0, float(label), rec_id, 0) + image
    return (struct.pack("<IfQQ", len(labels), 0.0, rec_id, 0) +
            struct.pack(f"<{len(labels)}f", *labels) + image)


def frame(data, cflag=None):
    """The bytes of one logical record: split at aligned magic numbers into parts with
    cflag 1 (first), 2 (middle), 3 (last), or a single part with cflag 0."""
    cuts, start = [], 0
    for pos in range(0, len(data) - 3, 4):
        if data[pos:pos + 4] == MAGIC_BYTES:
            cuts.append(data[start:pos])
            start = pos + 4
    cuts.append(data[start:])
    out = b""
    for i, part in enumerate(cuts):
        flag = 0 if len(cuts) == 1 else 1 if i == 0 else 3 if i == len(cuts) - 1 else 2
        if cflag is not None:
            flag = cflag
        out += MAGIC_BYTES + struct.pack("<I", (flag << 29) | len(part)) + part
        out += b"\0" * (-len(part) % 4)
    return out


def write_rec(path, records, idx=True):
    """records: [(label, image bytes)] or [(label, image bytes, labels)]. Writes path and,
    with idx, the .idx beside it ("key<TAB>offset" lines)."""
    offsets, blob = [], b""
    for i, r in enumerate(records):
        offsets.append(len(blob))
        blob += frame(pack(r[0], r[1], i, r[2] if len(r) > 2 else None))
    with open(path, "wb") as f:
        f.write(blob)
    if idx:
        with open(path[:-4] + ".idx", "w") as f:
            f.writelines(f"{i}\t{o}\n" for i, o in enumerate(offsets))
    return offsets
