//! The gnomonic (`TAN`) world coordinate system of the deep-field images
//! (FITS WCS Paper II, default `LONPOLE = 180`, no distortion, diagonal
//! `CDELTi` scaling without rotation).

use crate::reader::Hdu;

/// A `RA---TAN` / `DEC--TAN` WCS with `CDELTi` scaling. Pixel coordinates
/// are FITS 1-based: the centre of the first pixel is (1, 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TanWcs {
    /// `CRVAL1`, `CRVAL2`: RA and Dec of the reference point (deg).
    pub crval: (f64, f64),
    /// `CRPIX1`, `CRPIX2`: pixel coordinates of the reference point.
    pub crpix: (f64, f64),
    /// `CDELT1`, `CDELT2`: degrees per pixel (`CDELT1` negative: east left).
    pub cdelt: (f64, f64),
}

impl TanWcs {
    /// Reads the WCS from a header; `None` unless `CTYPE1 = 'RA---TAN'`,
    /// `CTYPE2 = 'DEC--TAN'`, the `CRVALi`, `CRPIXi`, `CDELTi` are present
    /// and no rotation (`PCi_j`, `CDi_j`, `CROTA2`) is given.
    pub fn from_hdu(hdu: &Hdu) -> Option<Self> {
        if hdu.get_str("CTYPE1") != Some("RA---TAN") || hdu.get_str("CTYPE2") != Some("DEC--TAN") {
            return None;
        }
        let rotated = hdu.cards.iter().any(|c| {
            let k = c.keyword.as_str();
            (k.starts_with("PC") || k.starts_with("CD")) && k.contains('_') || k == "CROTA2"
        });
        if rotated {
            return None;
        }
        Some(Self {
            crval: (hdu.get_f64("CRVAL1")?, hdu.get_f64("CRVAL2")?),
            crpix: (hdu.get_f64("CRPIX1")?, hdu.get_f64("CRPIX2")?),
            cdelt: (hdu.get_f64("CDELT1")?, hdu.get_f64("CDELT2")?),
        })
    }

    /// Projects (RA, Dec) in degrees to 1-based pixel coordinates; `None`
    /// for points 90 degrees or more from the reference point.
    pub fn world_to_pixel(&self, ra: f64, dec: f64) -> Option<(f64, f64)> {
        let (a0, d0) = (self.crval.0.to_radians(), self.crval.1.to_radians());
        let (a, d) = (ra.to_radians(), dec.to_radians());
        let cos_c = d0.sin() * d.sin() + d0.cos() * d.cos() * (a - a0).cos();
        if cos_c <= 0.0 {
            return None;
        }
        let xi = d.cos() * (a - a0).sin() / cos_c;
        let eta = (d0.cos() * d.sin() - d0.sin() * d.cos() * (a - a0).cos()) / cos_c;
        Some((
            self.crpix.0 + xi.to_degrees() / self.cdelt.0,
            self.crpix.1 + eta.to_degrees() / self.cdelt.1,
        ))
    }

    /// Deprojects 1-based pixel coordinates to (RA, Dec) in degrees, RA in
    /// `[0, 360)`.
    pub fn pixel_to_world(&self, x: f64, y: f64) -> (f64, f64) {
        let xi = ((x - self.crpix.0) * self.cdelt.0).to_radians();
        let eta = ((y - self.crpix.1) * self.cdelt.1).to_radians();
        let (a0, d0) = (self.crval.0.to_radians(), self.crval.1.to_radians());
        let rho = xi.hypot(eta);
        if rho == 0.0 {
            return (self.crval.0.rem_euclid(360.0), self.crval.1);
        }
        let c = rho.atan();
        let (sin_c, cos_c) = c.sin_cos();
        let dec = (cos_c * d0.sin() + eta * sin_c * d0.cos() / rho).asin();
        let ra = a0 + (xi * sin_c).atan2(rho * d0.cos() * cos_c - eta * d0.sin() * sin_c);
        (ra.to_degrees().rem_euclid(360.0), dec.to_degrees())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tan_roundtrip_and_orientation() {
        let w = TanWcs {
            crval: (10.6847, 41.2690),
            crpix: (128.5, 128.5),
            cdelt: (-1.0 / 3600.0, 1.0 / 3600.0),
        };
        assert_eq!(w.pixel_to_world(128.5, 128.5), (10.6847, 41.2690));
        for (x, y) in [(1.0, 1.0), (256.0, 3.5), (17.25, 200.75), (128.5, 256.0)] {
            let (ra, dec) = w.pixel_to_world(x, y);
            let (x2, y2) = w.world_to_pixel(ra, dec).unwrap();
            assert!((x - x2).abs() < 1e-9 && (y - y2).abs() < 1e-9);
        }
        // East (larger RA) is to the left, north (larger Dec) is up.
        let (ra_left, _) = w.pixel_to_world(100.0, 128.5);
        assert!(ra_left > 10.6847);
        let (_, dec_up) = w.pixel_to_world(128.5, 150.0);
        assert!(dec_up > 41.2690);
        // RA wraps across 0 h.
        let w0 = TanWcs {
            crval: (0.01, 0.0),
            ..w
        };
        let (ra, _) = w0.pixel_to_world(256.0, 128.5);
        assert!(ra > 359.9);
        assert!(w0.world_to_pixel(180.0, 0.0).is_none());
    }
}
