"""Finds the point sources of one FITS image and measures them.

Background: the median of each 16x16-pixel box (3-sigma clipped),
interpolated bilinearly between box centres, taken off the image, so smooth
diffuse light (a galaxy, a nebula) does not count as sources. Detection: the
local maxima of the background-free image smoothed with the PSF (a Gaussian
of the header's SEEING) that stand `threshold` times the smoothed noise
above zero, at least `min_separation` pixels apart. Measurement: the
intensity-weighted centroid in a 5x5 box, the flux in a circular aperture of
`aperture` times the FWHM (minus the local background already removed), its
signal-to-noise from the pixel noise, the magnitude from the header's MAGZP,
and RA/Dec through the image's WCS. Writes a FITS table and a CSV file.

Usage: extract.py IMAGE THRESHOLD APERTURE MIN_SEPARATION OUT_PREFIX
"""

import csv
import math
import sys

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

BOX = 16


def clipped_stats(values, sigma=3.0, rounds=5):
    v = values[np.isfinite(values)]
    for _ in range(rounds):
        if v.size < 3:
            break
        med, std = np.median(v), np.std(v)
        keep = np.abs(v - med) < sigma * std
        if keep.all():
            break
        v = v[keep]
    if v.size == 0:
        return 0.0, 0.0
    return float(np.median(v)), float(np.std(v))


def interpolate(grid, shape):
    """A map of `shape` from values at box centres, bilinearly."""
    ny, nx = shape
    by, bx = grid.shape
    cy = (np.arange(by) + 0.5) * BOX - 0.5
    cx = (np.arange(bx) + 0.5) * BOX - 0.5
    rows = np.array([np.interp(np.arange(nx), cx, grid[j]) for j in range(by)])
    return np.array([np.interp(np.arange(ny), cy, rows[:, i]) for i in range(nx)]).T


def background(img):
    """The background and noise maps: each box's clipped median and
    standard deviation, bilinearly interpolated."""
    ny, nx = img.shape
    by, bx = max(1, ny // BOX), max(1, nx // BOX)
    level, spread = np.zeros((by, bx)), np.zeros((by, bx))
    for j in range(by):
        for i in range(bx):
            box = img[j * BOX:(j + 1) * BOX, i * BOX:(i + 1) * BOX]
            level[j, i], spread[j, i] = clipped_stats(box.ravel())
    return interpolate(level, img.shape), interpolate(spread, img.shape)


def smooth(img, sigma):
    """Convolution with a normalised Gaussian, through FFTs (wrapping
    edges are harmless: sources are kept off the border)."""
    ny, nx = img.shape
    y = np.fft.fftfreq(ny) * ny
    x = np.fft.fftfreq(nx) * nx
    kernel = np.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma ** 2))
    kernel /= kernel.sum()
    return np.real(np.fft.ifft2(np.fft.fft2(img) * np.fft.fft2(kernel)))


def local_maxima(s, level, separation):
    """Pixels above `level` that are the largest within `separation`."""
    r = max(1, int(separation))
    pad = np.pad(s, r, mode="constant", constant_values=-np.inf)
    ny, nx = s.shape
    peak = s > level
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dx == 0 and dy == 0 or dx * dx + dy * dy > r * r:
                continue
            shifted = pad[r + dy:r + dy + ny, r + dx:r + dx + nx]
            peak &= s >= shifted
    ys, xs = np.nonzero(peak)
    order = np.argsort(-s[ys, xs])
    return ys[order], xs[order]


def main():
    image, threshold, aperture, separation, prefix = sys.argv[1:6]
    threshold, aperture, separation = float(threshold), float(aperture), float(separation)
    with fits.open(image) as hdus:
        header = hdus[0].header
        img = hdus[0].data.astype(float)
    field = str(header.get("OBJECT", image)).strip()
    seeing = float(header.get("SEEING", 3.0))
    pixscale = abs(float(header.get("CDELT2", 1.0 / 3600))) * 3600
    fwhm = seeing / pixscale
    psf_sigma = fwhm / 2.3548
    magzp = float(header.get("MAGZP", 25.0))

    bkg, noise_map = background(img)
    sub = img - bkg
    noise = clipped_stats(sub.ravel())[1]
    smoothed = smooth(sub, psf_sigma)
    # Smoothing lowers the noise by the same factor everywhere: the local
    # noise of the smoothed image is the local pixel noise times it.
    factor = clipped_stats(smoothed.ravel())[1] / max(noise, 1e-12)
    ys, xs = local_maxima(smoothed / (noise_map * factor), threshold, separation)
    print(f"{field}: background noise {noise:.2f}, FWHM {fwhm:.2f} px, "
          f"{len(ys)} peaks above {threshold} sigma", file=sys.stderr)

    wcs = WCS(header)
    ny, nx = img.shape
    radius = aperture * fwhm
    yy, xx = np.mgrid[0:ny, 0:nx]
    rows = []
    edge = int(math.ceil(radius)) + 1
    for y0, x0 in zip(ys, xs):
        if not (edge <= y0 < ny - edge and edge <= x0 < nx - edge):
            continue
        cut = sub[y0 - 2:y0 + 3, x0 - 2:x0 + 3].clip(min=0)
        total = cut.sum()
        if total <= 0:
            continue
        dy, dx = np.mgrid[-2:3, -2:3]
        cy = y0 + (cut * dy).sum() / total
        cx = x0 + (cut * dx).sum() / total
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
        flux = float(sub[inside].sum())
        if flux <= 0:
            continue
        # Pixel noise over the aperture plus the source's Poisson noise.
        gain = float(header.get("GAIN", 1.0))
        local = float(noise_map[int(round(cy)), int(round(cx))])
        err = math.sqrt(inside.sum() * local ** 2 + flux / gain)
        ra, dec = wcs.all_pix2world([[cx, cy]], 0)[0]
        rows.append({
            "FIELD": field,
            "RA": float(ra),
            "DEC": float(dec),
            # FITS 1-based pixel positions, as the catalogue volume has them.
            "X_IMAGE": float(cx + 1),
            "Y_IMAGE": float(cy + 1),
            "FLUX": flux,
            "FLUX_ERR": err,
            "MAG": magzp - 2.5 * math.log10(flux),
            "SNR": flux / err,
        })
    names = ["FIELD", "RA", "DEC", "X_IMAGE", "Y_IMAGE", "FLUX", "FLUX_ERR", "MAG", "SNR"]
    table = Table(rows=[[r[n] for n in names] for r in rows] or None, names=names,
                  dtype=["U16", "f8", "f8", "f4", "f4", "f4", "f4", "f4", "f4"])
    table.meta["FIELD"] = field
    table.meta["IMAGE"] = image.rsplit("/", 1)[-1]
    table.meta["THRESH"] = threshold
    table.write(prefix + ".sources.fits", overwrite=True)
    with open(prefix + ".sources.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=names)
        w.writeheader()
        for r in rows:
            w.writerow(r)
    print(f"{field}: {len(rows)} sources measured", file=sys.stderr)


if __name__ == "__main__":
    main()
