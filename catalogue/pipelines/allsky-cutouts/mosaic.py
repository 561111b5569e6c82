"""Lays cutouts side by side in one image: a grid of as many columns as
the square root of their number, each cutout stretched on its own, with a
gap between them. Writes mosaic.png and mosaic.json (which cutout is
where).

Usage: mosaic.py STRETCH CUTOUT.fits...
"""

import json
import math
import sys

import numpy as np
from astropy.io import fits

import png

GAP = 4


def main():
    stretch, paths = sys.argv[1], sys.argv[2:]
    tiles, names = [], []
    for p in paths:
        with fits.open(p) as hdus:
            tiles.append(png.stretched(hdus[0].data.astype(float), stretch))
            names.append(str(hdus[0].header.get("OBJECT", p)))
    if not tiles:
        sys.exit("no cutouts to lay out")
    size = max(max(t.shape) for t in tiles)
    cols = int(math.ceil(math.sqrt(len(tiles))))
    rows = int(math.ceil(len(tiles) / cols))
    sheet = np.zeros((rows * (size + GAP) - GAP, cols * (size + GAP) - GAP), dtype=np.uint8)
    places = []
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        y, x = r * (size + GAP), c * (size + GAP)
        sheet[y:y + t.shape[0], x:x + t.shape[1]] = t
        places.append({"name": names[k], "row": r, "column": c})
    png.write("mosaic.png", sheet)
    with open("mosaic.json", "w") as f:
        json.dump({"tile_pixels": size, "columns": cols, "rows": rows, "tiles": places}, f, indent=2)


if __name__ == "__main__":
    main()
