//! Where an image lies on the sky, as far as its header says: a general
//! celestial WCS (FITS WCS Papers I and II) for the projections archives
//! use most — zenithal `TAN` and `SIN`, and `CAR` all-sky maps with their
//! reference on the equator — with the linear part given by `CDi_j`,
//! `PCi_j` + `CDELTi`, or `CDELTi` + `CROTA2`, in equatorial (`RA--`/`DEC-`)
//! or Galactic (`GLON`/`GLAT`) axes. Positions are returned in ICRS degrees.

use crate::reader::Hdu;

/// A projection this module understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// Gnomonic: great circles are straight lines, so an image's edges are
    /// arcs of great circles.
    Tan,
    /// Orthographic (slant parameters `PVi_j` are not supported).
    Sin,
    /// Plate carrée with `CRVAL2 = 0`.
    Car,
}

/// The frame of the celestial axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// Right ascension and declination (ICRS, FK5 J2000 taken as ICRS).
    Equatorial,
    /// Galactic longitude and latitude.
    Galactic,
}

/// A celestial world coordinate system. Pixel coordinates are FITS 1-based:
/// the centre of the first pixel is (1, 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CelestialWcs {
    pub projection: Projection,
    pub frame: Frame,
    /// `CRVAL1`, `CRVAL2` in the axes' own frame (degrees).
    pub crval: (f64, f64),
    /// `CRPIX1`, `CRPIX2`.
    pub crpix: (f64, f64),
    /// Pixel offsets to intermediate world coordinates (degrees):
    /// `[[CD1_1, CD1_2], [CD2_1, CD2_2]]`.
    pub cd: [[f64; 2]; 2],
}

impl CelestialWcs {
    /// Reads the WCS of an HDU; `None` when its axes are not a celestial
    /// pair in a supported projection, or a value is missing or degenerate.
    pub fn from_hdu(hdu: &Hdu) -> Option<CelestialWcs> {
        let (c1, c2) = (hdu.get_str("CTYPE1")?, hdu.get_str("CTYPE2")?);
        let (frame, projection) = axes(c1, c2)?;
        let crval = (hdu.get_f64("CRVAL1")?, hdu.get_f64("CRVAL2")?);
        let crpix = (
            hdu.get_f64("CRPIX1").unwrap_or(0.0),
            hdu.get_f64("CRPIX2").unwrap_or(0.0),
        );
        let cd = linear(hdu)?;
        let det = cd[0][0] * cd[1][1] - cd[0][1] * cd[1][0];
        let finite = [crval.0, crval.1, crpix.0, crpix.1]
            .iter()
            .chain(cd.iter().flatten())
            .all(|v| v.is_finite());
        if !finite || det == 0.0 || !(-90.0..=90.0).contains(&crval.1) {
            return None;
        }
        if projection == Projection::Car && crval.1 != 0.0 {
            return None;
        }
        Some(CelestialWcs {
            projection,
            frame,
            crval,
            crpix,
            cd,
        })
    }

    /// The ICRS position (RA in `[0, 360)`, Dec) of a pixel position, or
    /// `None` outside the projection's domain.
    pub fn pixel_to_icrs(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let (dx, dy) = (x - self.crpix.0, y - self.crpix.1);
        let u = self.cd[0][0] * dx + self.cd[0][1] * dy;
        let v = self.cd[1][0] * dx + self.cd[1][1] * dy;
        let (lon, lat) = match self.projection {
            Projection::Car => (self.crval.0 + u, v),
            Projection::Tan | Projection::Sin => {
                let (phi, theta) = native_zenithal(self.projection, u, v)?;
                rotate_from_native(phi, theta, self.crval)
            }
        };
        if !(-90.0..=90.0).contains(&lat) || !lon.is_finite() {
            return None;
        }
        Some(match self.frame {
            Frame::Equatorial => (lon.rem_euclid(360.0), lat),
            Frame::Galactic => galactic_to_icrs(lon, lat),
        })
    }

    /// Whether an image of `width` × `height` pixels in this WCS covers the
    /// whole sky (an all-sky map).
    pub fn covers_whole_sky(&self, width: usize, height: usize) -> bool {
        if self.projection != Projection::Car {
            return false;
        }
        #[allow(clippy::cast_precision_loss)]
        let (w, h) = (width as f64, height as f64);
        let lon = (self.cd[0][0] * w).abs().max((self.cd[0][1] * h).abs());
        let lat = (self.cd[1][1] * h).abs().max((self.cd[1][0] * w).abs());
        lon >= 359.0 && lat >= 179.0
    }
}

/// The frame and projection of a pair of `CTYPEi` values.
fn axes(c1: &str, c2: &str) -> Option<(Frame, Projection)> {
    let split = |c: &str| -> Option<(String, String)> {
        let (axis, proj) = c.split_at_checked(4)?;
        Some((axis.trim_end_matches('-').to_owned(), proj.to_owned()))
    };
    let ((a1, p1), (a2, p2)) = (split(c1)?, split(c2)?);
    if p1 != p2 {
        return None;
    }
    let frame = match (a1.as_str(), a2.as_str()) {
        ("RA", "DEC") => Frame::Equatorial,
        ("GLON", "GLAT") => Frame::Galactic,
        _ => return None,
    };
    let projection = match p1.as_str() {
        "-TAN" => Projection::Tan,
        "-SIN" => Projection::Sin,
        "-CAR" => Projection::Car,
        _ => return None,
    };
    Some((frame, projection))
}

/// The linear transformation from pixel offsets to intermediate world
/// coordinates, from `CDi_j`, or `PCi_j` with `CDELTi`, or `CDELTi` with
/// `CROTA2`.
fn linear(hdu: &Hdu) -> Option<[[f64; 2]; 2]> {
    let has = |prefix: &str| {
        ["1_1", "1_2", "2_1", "2_2"]
            .iter()
            .any(|s| hdu.get(&format!("{prefix}{s}")).is_some())
    };
    if has("CD") {
        let cd = |s: &str| hdu.get_f64(&format!("CD{s}")).unwrap_or(0.0);
        return Some([[cd("1_1"), cd("1_2")], [cd("2_1"), cd("2_2")]]);
    }
    let (d1, d2) = (hdu.get_f64("CDELT1")?, hdu.get_f64("CDELT2")?);
    if has("PC") {
        let pc = |s: &str, unit: f64| hdu.get_f64(&format!("PC{s}")).unwrap_or(unit);
        return Some([
            [d1 * pc("1_1", 1.0), d1 * pc("1_2", 0.0)],
            [d2 * pc("2_1", 0.0), d2 * pc("2_2", 1.0)],
        ]);
    }
    let rho = hdu.get_f64("CROTA2").unwrap_or(0.0).to_radians();
    let (s, c) = rho.sin_cos();
    Some([[d1 * c, -d2 * s], [d1 * s, d2 * c]])
}

/// Native spherical coordinates (φ, θ) in degrees of intermediate world
/// coordinates (x, y) for a zenithal projection.
fn native_zenithal(p: Projection, x: f64, y: f64) -> Option<(f64, f64)> {
    let r = x.hypot(y);
    let phi = if r == 0.0 {
        0.0
    } else {
        x.atan2(-y).to_degrees()
    };
    let theta = match p {
        Projection::Tan => (180.0 / std::f64::consts::PI).atan2(r).to_degrees(),
        Projection::Sin => {
            let s = r.to_radians();
            if s > 1.0 {
                return None;
            }
            s.acos().to_degrees()
        }
        Projection::Car => return None,
    };
    Some((phi, theta))
}

/// Celestial coordinates of native (φ, θ) for a zenithal projection whose
/// reference point is `crval`, with the default `LONPOLE` of 180°.
fn rotate_from_native(phi: f64, theta: f64, crval: (f64, f64)) -> (f64, f64) {
    let (ap, dp) = (crval.0.to_radians(), crval.1.to_radians());
    let (phi, theta) = (phi.to_radians(), theta.to_radians());
    let dphi = phi - std::f64::consts::PI;
    let dec = (theta.sin() * dp.sin() + theta.cos() * dp.cos() * dphi.cos())
        .clamp(-1.0, 1.0)
        .asin();
    let ra = ap
        + (-theta.cos() * dphi.sin())
            .atan2(theta.sin() * dp.cos() - theta.cos() * dp.sin() * dphi.cos());
    (ra.to_degrees(), dec.to_degrees())
}

/// The rotation from ICRS (equatorial J2000) to Galactic unit vectors
/// (Hipparcos definition, as in astropy).
#[allow(clippy::excessive_precision)]
const ICRS_TO_GALACTIC: [[f64; 3]; 3] = [
    [
        -0.054_875_560_416_215_4,
        -0.873_437_090_234_885,
        -0.483_835_015_548_713,
    ],
    [
        0.494_109_427_875_583_7,
        -0.444_829_629_960_011_2,
        0.746_982_244_497_218_9,
    ],
    [
        -0.867_666_149_019_004_7,
        -0.198_076_373_431_201_5,
        0.455_983_776_175_066_9,
    ],
];

/// ICRS (RA in `[0, 360)`, Dec) of Galactic (l, b), degrees.
pub fn galactic_to_icrs(l: f64, b: f64) -> (f64, f64) {
    let (l, b) = (l.to_radians(), b.to_radians());
    let g = [b.cos() * l.cos(), b.cos() * l.sin(), b.sin()];
    let m = ICRS_TO_GALACTIC;
    // The transpose undoes the rotation.
    let e = [
        m[0][0] * g[0] + m[1][0] * g[1] + m[2][0] * g[2],
        m[0][1] * g[0] + m[1][1] * g[1] + m[2][1] * g[2],
        m[0][2] * g[0] + m[1][2] * g[1] + m[2][2] * g[2],
    ];
    let ra = e[1].atan2(e[0]).to_degrees().rem_euclid(360.0);
    let dec = e[2].clamp(-1.0, 1.0).asin().to_degrees();
    (ra, dec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::{Card, Value};
    use crate::reader::HduKind;

    fn hdu(cards: &[(&str, Value)]) -> Hdu {
        Hdu {
            kind: HduKind::Primary,
            cards: cards
                .iter()
                .map(|(k, v)| Card {
                    keyword: (*k).to_owned(),
                    value: v.clone(),
                    comment: None,
                })
                .collect(),
            header_offset: 0,
            data_offset: 0,
            data_len: 0,
        }
    }

    fn close(a: (f64, f64), b: (f64, f64), tol: f64) -> bool {
        let dra = ((a.0 - b.0 + 540.0).rem_euclid(360.0) - 180.0).abs();
        dra < tol && (a.1 - b.1).abs() < tol
    }

    #[test]
    fn galactic_landmarks_land_where_astropy_puts_them() {
        // SkyCoord(l=0, b=0, frame='galactic').icrs
        assert!(close(
            galactic_to_icrs(0.0, 0.0),
            (266.404_996, -28.936_172),
            1e-5
        ));
        // The north Galactic pole.
        assert!(close(
            galactic_to_icrs(0.0, 90.0),
            (192.859_481, 27.128_251),
            1e-5
        ));
    }

    #[test]
    fn tan_with_a_cd_matrix_agrees_with_cdelt_and_crota() {
        let base = [
            ("CTYPE1", Value::from("RA---TAN")),
            ("CTYPE2", Value::from("DEC--TAN")),
            ("CRVAL1", Value::Float(150.0)),
            ("CRVAL2", Value::Float(2.2)),
            ("CRPIX1", Value::Float(50.5)),
            ("CRPIX2", Value::Float(50.5)),
        ];
        let (s, c) = 30f64.to_radians().sin_cos();
        let d = 1.0 / 3600.0;
        let mut with_cd = base.to_vec();
        with_cd.extend([
            ("CD1_1", Value::Float(-d * c)),
            ("CD1_2", Value::Float(-d * s)),
            ("CD2_1", Value::Float(-d * s)),
            ("CD2_2", Value::Float(d * c)),
        ]);
        let mut with_crota = base.to_vec();
        with_crota.extend([
            ("CDELT1", Value::Float(-d)),
            ("CDELT2", Value::Float(d)),
            ("CROTA2", Value::Float(30.0)),
        ]);
        let a = CelestialWcs::from_hdu(&hdu(&with_cd)).unwrap();
        let b = CelestialWcs::from_hdu(&hdu(&with_crota)).unwrap();
        for (x, y) in [(1.0, 1.0), (100.0, 1.0), (50.5, 50.5), (17.0, 90.0)] {
            let (p, q) = (
                a.pixel_to_icrs(x, y).unwrap(),
                b.pixel_to_icrs(x, y).unwrap(),
            );
            assert!(close(p, q, 1e-9), "{p:?} {q:?}");
        }
        assert!(close(
            a.pixel_to_icrs(50.5, 50.5).unwrap(),
            (150.0, 2.2),
            1e-12
        ));
    }

    #[test]
    fn tan_agrees_with_the_demo_wcs() {
        let t = crate::TanWcs {
            crval: (10.68, 41.27),
            crpix: (128.5, 128.5),
            cdelt: (-1.0 / 3600.0, 1.0 / 3600.0),
        };
        let w = CelestialWcs {
            projection: Projection::Tan,
            frame: Frame::Equatorial,
            crval: t.crval,
            crpix: t.crpix,
            cd: [[t.cdelt.0, 0.0], [0.0, t.cdelt.1]],
        };
        for (x, y) in [(1.0, 1.0), (256.0, 3.0), (128.5, 256.0)] {
            assert!(close(
                w.pixel_to_icrs(x, y).unwrap(),
                t.pixel_to_world(x, y),
                1e-10
            ));
        }
    }

    #[test]
    fn car_all_sky_maps_are_recognised_and_others_refused() {
        let map = hdu(&[
            ("CTYPE1", Value::from("GLON-CAR")),
            ("CTYPE2", Value::from("GLAT-CAR")),
            ("CRVAL1", Value::Float(0.0)),
            ("CRVAL2", Value::Float(0.0)),
            ("CRPIX1", Value::Float(360.5)),
            ("CRPIX2", Value::Float(180.5)),
            ("CDELT1", Value::Float(-0.5)),
            ("CDELT2", Value::Float(0.5)),
        ]);
        let w = CelestialWcs::from_hdu(&map).unwrap();
        assert!(w.covers_whole_sky(720, 360));
        assert!(!w.covers_whole_sky(100, 100));
        assert!(close(
            w.pixel_to_icrs(360.5, 180.5).unwrap(),
            (266.405, -28.936),
            1e-3
        ));
        let linear = hdu(&[
            ("CTYPE1", Value::from("LINEAR")),
            ("CTYPE2", Value::from("LINEAR")),
            ("CRVAL1", Value::Float(0.0)),
            ("CRVAL2", Value::Float(0.0)),
            ("CDELT1", Value::Float(1.0)),
            ("CDELT2", Value::Float(1.0)),
        ]);
        assert!(CelestialWcs::from_hdu(&linear).is_none());
    }
}
