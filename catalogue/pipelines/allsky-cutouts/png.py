"""Grey-scale PNG images from arrays, with the standard library alone."""

import struct
import zlib

import numpy as np


def stretched(data, stretch):
    """Values scaled to 0..255 between the 1st and 99.5th percentiles,
    through a linear, square-root or logarithmic stretch; rows from the
    top (FITS rows grow upwards)."""
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return np.zeros(data.shape, dtype=np.uint8)
    lo, hi = np.percentile(finite, [1.0, 99.5])
    if hi <= lo:
        hi = lo + 1.0
    x = np.clip((np.nan_to_num(data, nan=lo) - lo) / (hi - lo), 0.0, 1.0)
    if stretch == "sqrt":
        x = np.sqrt(x)
    elif stretch == "log":
        x = np.log1p(1000.0 * x) / np.log1p(1000.0)
    return (255.0 * x[::-1]).round().astype(np.uint8)


def write(path, pixels):
    """Writes a 2-D uint8 array (rows from the top) as an 8-bit grey PNG."""
    h, w = pixels.shape
    raw = b"".join(b"\x00" + pixels[r].tobytes() for r in range(h))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))
