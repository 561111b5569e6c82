"""Merges per-image source catalogues into one and, given a reference
catalogue, cross-matches each field with it.

The merged catalogue (sources.fits, sources.csv) holds every source of
every image. With a reference (a FITS table with FIELD, RA, DEC and MAG_G
columns, like the demo's source-catalogue volume), each found source is
matched to the nearest reference source of its field within RADIUS arcsec
(each reference source used once), and report.json gives, per field and in
all: sources found and expected, matched, completeness, false detections,
the rms of the position offsets (arcsec), and the median and 90th
percentile of the magnitude differences.

Usage: compare.py RADIUS [--truth TRUTH.fits] CATALOGUE.fits...
"""

import json
import math
import sys

import numpy as np
from astropy.io import fits
from astropy.table import Table, vstack


def offsets_arcsec(ra1, dec1, ra2, dec2):
    d = np.radians(dec1)
    dra = (ra2 - ra1 + 540.0) % 360.0 - 180.0
    return np.hypot(dra * np.cos(d), dec2 - dec1) * 3600.0


def compare(found, truth, radius):
    n_found, n_truth = len(found), len(truth)
    used = np.zeros(n_truth, dtype=bool)
    dpos, dmag = [], []
    # Brightest first, so a faint neighbour never takes a bright star's match.
    for i in np.argsort(found["MAG"]):
        s = found[i]
        if n_truth == 0:
            break
        d = offsets_arcsec(s["RA"], s["DEC"], truth["RA"], truth["DEC"])
        d[used] = np.inf
        j = int(np.argmin(d))
        if d[j] <= radius:
            used[j] = True
            dpos.append(float(d[j]))
            dmag.append(float(s["MAG"] - truth["MAG_G"][j]))
    matched = len(dpos)
    adm = sorted(abs(x) for x in dmag)
    return {
        "found": n_found,
        "expected": n_truth,
        "matched": matched,
        "completeness": matched / n_truth if n_truth else None,
        "false_detections": n_found - matched,
        "position_rms_arcsec": math.sqrt(sum(x * x for x in dpos) / matched) if matched else None,
        "median_dmag": float(np.median(dmag)) if matched else None,
        "p90_abs_dmag": adm[min(len(adm) - 1, int(0.9 * len(adm)))] if matched else None,
    }


def main():
    args = sys.argv[1:]
    radius = float(args.pop(0))
    truth_path = None
    if args and args[0] == "--truth":
        args.pop(0)
        truth_path = args.pop(0)
    tables = [Table.read(p) for p in args]
    for t in tables:
        t.meta.clear()
    merged = vstack(tables) if tables else Table(names=["FIELD", "RA", "DEC", "MAG"])
    merged.write("sources.fits", overwrite=True)
    merged.write("sources.csv", format="ascii.csv", overwrite=True)
    report = {"sources": len(merged), "images": len(tables), "match_radius_arcsec": radius}
    if truth_path:
        with fits.open(truth_path) as hdus:
            truth = Table(hdus[1].data)
        truth["FIELD"] = [str(f).strip() for f in truth["FIELD"]]
        fields = sorted({str(f).strip() for f in merged["FIELD"]})
        report["fields"] = {}
        for field in fields:
            found = merged[[str(f).strip() == field for f in merged["FIELD"]]]
            ref = truth[truth["FIELD"] == field]
            report["fields"][field] = compare(found, ref, radius)
        per = report["fields"].values()
        matched = sum(r["matched"] for r in per)
        expected = sum(r["expected"] for r in per)
        report["all"] = {
            "found": sum(r["found"] for r in per),
            "expected": expected,
            "matched": matched,
            "completeness": matched / expected if expected else None,
            "false_detections": sum(r["false_detections"] for r in per),
        }
        print(json.dumps(report["all"]), file=sys.stderr)
    with open("report.json", "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
