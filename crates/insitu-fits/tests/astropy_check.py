#!/usr/bin/env python3
"""Independent check of the Insitu demo FITS files with astropy.

Usage: python3 astropy_check.py DEMO_ROOT

DEMO_ROOT is the directory given to insitu_fits::generate_demo_volumes
(it holds allsky-survey/, deep-fields/ and source-catalogue/). Every FITS
file must pass astropy's strictest verification with warnings turned into
errors; the WCS of each image must be understood by astropy.wcs; the
catalogue positions must project onto the injected stars. Prints one line
per problem and exits 1 if there is any, 0 otherwise.
"""

import sys
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time
from astropy.wcs import WCS

problems = []


def problem(msg):
    problems.append(msg)
    print("PROBLEM:", msg)


def check_common(path, header):
    for kw, want in [
        ("TELESCOP", "INSITU-SIM"),
        ("INSTRUME", "SKYSIM"),
        ("ORIGIN", "Insitu demo generator"),
    ]:
        if header.get(kw) != want:
            problem(f"{path}: {kw} = {header.get(kw)!r}, expected {want!r}")
    for kw in ("OBJECT", "DATE-OBS"):
        if kw not in header:
            problem(f"{path}: missing {kw}")
    if not any("SIMULATED" in str(c) for c in header.get("COMMENT", [])):
        problem(f"{path}: no COMMENT saying the data are simulated")
    if "DATE-OBS" in header and "MJD-OBS" in header:
        mjd = Time(header["DATE-OBS"], format="isot", scale="utc").mjd
        if abs(mjd - header["MJD-OBS"]) > 1e-6:
            problem(f"{path}: MJD-OBS {header['MJD-OBS']} != DATE-OBS {mjd}")
    if "DATE-END" in header and "MJD-END" in header:
        mjd = Time(header["DATE-END"], format="isot", scale="utc").mjd
        if abs(mjd - header["MJD-END"]) > 1e-6:
            problem(f"{path}: MJD-END {header['MJD-END']} != DATE-END {mjd}")


def open_strict(path):
    """Opens, verifies ('exception') and loads every HDU's data."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hdul = fits.open(path, memmap=False)
        hdul.verify("exception")
        for hdu in hdul:
            _ = hdu.data
    return hdul


def wcs_strict(path, header):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return WCS(header)


def main(root):
    root = Path(root)
    files = sorted(root.glob("*/*.fits"))
    if len(files) != 5:
        problem(f"expected 5 FITS files under {root}, found {len(files)}")
    hduls = {}
    for f in files:
        if f.stat().st_size % 2880:
            problem(f"{f}: size {f.stat().st_size} is not a multiple of 2880")
        try:
            hduls[f.name] = open_strict(f)
        except Exception as e:  # noqa: BLE001 - report any failure
            problem(f"{f}: astropy rejects the file: {type(e).__name__}: {e}")
            continue
        for hdu in hduls[f.name]:
            check_common(f, hdu.header)
    for d in ("allsky-survey", "deep-fields", "source-catalogue"):
        if not (root / d / "README.txt").is_file():
            problem(f"{d}: missing README.txt")

    # All-sky map: plate carree in Galactic coordinates.
    sky = hduls.get("allsky_skysim_car.fits")
    if sky is not None:
        h, data = sky[0].header, sky[0].data
        if data.shape != (360, 720) or data.dtype.kind != "f" or not np.isfinite(data).all():
            problem(f"all-sky map: shape {data.shape} dtype {data.dtype}")
        try:
            w = wcs_strict("allsky", h)
            x, y = w.world_to_pixel_values(0.0, 0.0)
            if abs(x - 359.5) > 1e-6 or abs(y - 179.5) > 1e-6:
                problem(f"all-sky: (l,b)=(0,0) at pixel ({x}, {y}), expected (359.5, 179.5)")
            lon, lat = w.pixel_to_world_values(0, 0)
            if abs(lon - 179.75) > 1e-6 or abs(lat + 89.75) > 1e-6:
                problem(f"all-sky: first pixel at ({lon}, {lat}), expected (179.75, -89.75)")
            if w.wcs.lngtyp != "GLON" or w.world_axis_physical_types[0] != "pos.galactic.lon":
                problem(f"all-sky: unexpected axis types {w.world_axis_physical_types}")
            if data[180, 359] < data[359, 359] + 3:
                problem("all-sky: the Galactic plane is not brighter than the pole")
        except Exception as e:  # noqa: BLE001
            problem(f"all-sky WCS: {type(e).__name__}: {e}")

    # Deep fields.
    images = {}
    for name, hdul in hduls.items():
        if not name.startswith("skysim_"):
            continue
        h, data = hdul[0].header, hdul[0].data
        if data.shape != (256, 256) or not np.isfinite(data).all():
            problem(f"{name}: shape {data.shape}")
        try:
            w = wcs_strict(name, h)
        except Exception as e:  # noqa: BLE001
            problem(f"{name}: WCS: {type(e).__name__}: {e}")
            continue
        ra, dec = w.all_pix2world(128.5, 128.5, 1)
        if abs(ra - h["RA"]) > 1e-9 or abs(dec - h["DEC"]) > 1e-9:
            problem(f"{name}: centre at ({ra}, {dec}), RA/DEC say ({h['RA']}, {h['DEC']})")
        scale = np.abs(w.proj_plane_pixel_scales()[0].to_value("arcsec"))
        if abs(scale - 1.0) > 1e-9:
            problem(f"{name}: pixel scale {scale} arcsec")
        if w.wcs.radesys != "ICRS" or h.get("EQUINOX") != 2000.0:
            problem(f"{name}: frame {w.wcs.radesys} equinox {h.get('EQUINOX')}")
        for kw in ("EXPTIME", "FILTER", "RA", "DEC", "MJD-OBS"):
            if kw not in h:
                problem(f"{name}: missing {kw}")
        images[h["OBJECT"]] = (w, data)

    # Catalogue: positions project onto the injected stars.
    cat = hduls.get("deepfields_sources.fits")
    if cat is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                t = Table.read(root / "source-catalogue" / "deepfields_sources.fits", hdu=1)
        except Exception as e:  # noqa: BLE001
            problem(f"catalogue: Table.read: {type(e).__name__}: {e}")
            t = None
        want = ["SOURCE_ID", "FIELD", "RA", "DEC", "MAG_G", "FLUX", "X_IMAGE", "Y_IMAGE"]
        if t is not None and t.colnames != want:
            problem(f"catalogue: columns {t.colnames}")
        elif t is not None:
            if str(t["RA"].unit) != "deg" or str(t["MAG_G"].unit) != "mag":
                problem(f"catalogue: units {t['RA'].unit} {t['MAG_G'].unit}")
            if len(set(t["SOURCE_ID"])) != len(t) or len(t) == 0:
                problem("catalogue: SOURCE_ID not unique or empty table")
            worst = 0.0
            for row in t:
                field = row["FIELD"].strip()
                if field not in images:
                    problem(f"catalogue: unknown FIELD {field!r}")
                    continue
                w, data = images[field]
                x, y = w.all_world2pix(row["RA"], row["DEC"], 1)
                err = max(abs(x - row["X_IMAGE"]), abs(y - row["Y_IMAGE"]))
                worst = max(worst, err)
                if err > 0.01:
                    problem(
                        f"catalogue row {row['SOURCE_ID']}: WCS pixel ({x:.4f}, {y:.4f}) "
                        f"vs ({row['X_IMAGE']:.4f}, {row['Y_IMAGE']:.4f})"
                    )
                    continue
                i, j = int(round(float(x) - 1)), int(round(float(y) - 1))
                if not (1 <= i < data.shape[1] - 1 and 1 <= j < data.shape[0] - 1):
                    problem(f"catalogue row {row['SOURCE_ID']}: ({x:.1f}, {y:.1f}) off the image")
                    continue
                box = data[j - 1 : j + 2, i - 1 : i + 2]
                if box.max() < np.median(data) + 50:
                    problem(f"catalogue row {row['SOURCE_ID']}: no star at ({x:.1f}, {y:.1f})")
            print(f"catalogue: {len(t)} rows, worst WCS mismatch {worst:.2e} pix")

    for name, hdul in hduls.items():
        hdul.close()
    if problems:
        print(f"{len(problems)} problem(s)")
        return 1
    print(f"OK: {len(files)} FITS files pass astropy verify('exception'), WCS and catalogue checks")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
