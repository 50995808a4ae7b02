"""cifar_python_batches.py - CIFAR-10/100 "python version" batches as the real download holds them
(cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta: Python 2 cPickle protocol 2,
byte-string keys, the pixels a numpy uint8 array [N,3072] rebuilt by
numpy.core.multiarray._reconstruct, labels a list of ints), the opcodes written by hand so that
the files are what Python 2 wrote (Python 3's pickler writes bytes differently)."""
import struct

import numpy as np


def _s(b):  # a Python 2 str: SHORT_BINSTRING or BINSTRING
    return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<I", len(b)) + b)


def _int(v):
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    return b"J" + struct.pack("<i", v)


def batch_pickle(data, labels, label_key=b"labels", batch_label=b"training batch 1 of 5",
                 filenames=None, extra_labels=None):
    """data: uint8 [N,3072]; labels: list of ints."""
    n = data.shape[0]
    out = [b"\x80\x02}q\x01("]
    out.append(_s(b"data") + b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85"
               + _s(b"b") + b"\x87R(K\x01" + _int(n) + _int(3072) + b"\x86cnumpy\ndtype\n"
               + _s(b"u1") + b"K\x00K\x01\x87R(K\x03" + _s(b"|")
               + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
               + _s(np.ascontiguousarray(data, dtype=np.uint8).tobytes()) + b"tb")
    for key, vals in [(label_key, labels)] + ([extra_labels] if extra_labels else []):
        out.append(_s(key) + b"](" + b"".join(_int(int(v)) for v in vals) + b"e")
    out.append(_s(b"batch_label") + _s(batch_label))
    fn = filenames or [b"img_%05d.png" % i for i in range(n)]
    out.append(_s(b"filenames") + b"](" + b"".join(_s(f) for f in fn) + b"e")
    out.append(b"u.")
    return b"".join(out)


def meta_pickle(names, key=b"label_names"):
    return (b"\x80\x02}q\x01(" + _s(key) + b"](" + b"".join(_s(n) for n in names) + b"e"
            + _s(b"num_cases_per_batch") + _int(10000) + _s(b"num_vis") + _int(3072) + b"u.")
