"""Cuts a square out of an all-sky map in a cylindrical (CAR) projection.

The cutout is SIZE degrees wide, centred on the pixel nearest (GLON, GLAT);
its pixels are the map's own (no resampling), columns wrapping around in
longitude, rows beyond a pole left blank (NaN). Its header is the map's
with the reference pixel moved, so its WCS gives every pixel's true
position. Writes NAME.fits, a preview NAME.png and NAME.json (position,
size, minimum, maximum, mean and the brightest pixel's position).

Usage: cutout.py MAP NAME GLON GLAT SIZE STRETCH
"""

import json
import sys

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

import png


def main():
    map_path, name, glon, glat, size, stretch = sys.argv[1:7]
    glon, glat, size = float(glon), float(glat), float(size)
    with fits.open(map_path) as hdus:
        header = hdus[0].header.copy()
        sky = hdus[0].data.astype(float)
    height, width = sky.shape
    ctype = str(header.get("CTYPE1", ""))
    if not ctype.endswith("-CAR"):
        sys.exit(f"{map_path}: the map must be in a CAR projection, not {ctype!r}")
    cdelt1, cdelt2 = float(header["CDELT1"]), float(header["CDELT2"])
    crpix1, crpix2 = float(header["CRPIX1"]), float(header["CRPIX2"])
    crval1, crval2 = float(header["CRVAL1"]), float(header["CRVAL2"])
    # 0-based pixel of the centre, the longitude taken nearest the reference.
    dl = (glon - crval1 + 180.0) % 360.0 - 180.0
    xc = crpix1 - 1 + dl / cdelt1
    yc = crpix2 - 1 + (glat - crval2) / cdelt2
    n = max(1, int(round(size / abs(cdelt1))))
    x0 = int(round(xc - (n - 1) / 2.0))
    y0 = int(round(yc - (n - 1) / 2.0))
    cols = (x0 + np.arange(n)) % width
    rows = y0 + np.arange(n)
    cut = np.full((n, n), np.nan)
    inside = (rows >= 0) & (rows < height)
    cut[inside] = sky[rows[inside]][:, cols]
    out = header.copy()
    out["CRPIX1"] = crpix1 - x0
    out["CRPIX2"] = crpix2 - y0
    out["OBJECT"] = name
    out["HISTORY"] = f"cut out of {map_path.rsplit('/', 1)[-1]} at x0={x0} y0={y0} (0-based)"
    fits.PrimaryHDU(cut.astype(np.float32), out).writeto(f"{name}.fits", overwrite=True)
    png.write(f"{name}.png", png.stretched(cut, stretch))
    wcs = WCS(out)
    finite = np.isfinite(cut)
    peak = np.unravel_index(np.nanargmax(cut), cut.shape) if finite.any() else (0, 0)
    pl, pb = wcs.all_pix2world([[peak[1], peak[0]]], 0)[0]
    cl, cb = wcs.all_pix2world([[(n - 1) / 2.0, (n - 1) / 2.0]], 0)[0]
    summary = {
        "name": name,
        "glon": glon,
        "glat": glat,
        "centre": [float(cl) % 360.0, float(cb)],
        "pixels": n,
        "size_deg": n * abs(cdelt1),
        "unit": str(header.get("BUNIT", "")),
        "min": float(np.nanmin(cut)) if finite.any() else None,
        "max": float(np.nanmax(cut)) if finite.any() else None,
        "mean": float(np.nanmean(cut)) if finite.any() else None,
        "peak": [float(pl) % 360.0, float(pb)],
    }
    with open(f"{name}.json", "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary), file=sys.stderr)


if __name__ == "__main__":
    main()
