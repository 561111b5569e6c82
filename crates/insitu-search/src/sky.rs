//! Positions and footprints on the sky, and the one predicate cone search
//! answers with: a dataset is found when its footprint reaches within the
//! cone's radius of the cone's centre (any part of it: they overlap), or,
//! without a footprint, when its position does. Angles are degrees, ICRS.

use serde::{Deserialize, Serialize};

/// Why a position or a cone was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SkyError {
    #[error("RA must be a number of degrees from 0 to 360, not {0}")]
    Ra(f64),
    #[error("Dec must be a number of degrees from -90 to 90, not {0}")]
    Dec(f64),
    #[error("the radius must be a number of degrees from 0 to 180, not {0}")]
    Radius(f64),
    #[error("a footprint polygon needs 3 to 64 corners, not {0}")]
    Corners(usize),
    #[error("a footprint polygon must be convex, smaller than a hemisphere, its corners in order")]
    NotConvex,
}

/// A position: RA in `[0, 360)`, Dec in `[-90, 90]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SkyPos {
    pub ra: f64,
    pub dec: f64,
}

type Vec3 = [f64; 3];

fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn norm(a: Vec3) -> f64 {
    dot(a, a).sqrt()
}

/// The angle between two vectors, degrees; exact near 0 and 180.
fn angle(a: Vec3, b: Vec3) -> f64 {
    norm(cross(a, b)).atan2(dot(a, b)).to_degrees()
}

impl SkyPos {
    /// A checked position; RA 360 is RA 0.
    pub fn new(ra: f64, dec: f64) -> Result<SkyPos, SkyError> {
        if !ra.is_finite() || !(0.0..=360.0).contains(&ra) {
            return Err(SkyError::Ra(ra));
        }
        if !dec.is_finite() || !(-90.0..=90.0).contains(&dec) {
            return Err(SkyError::Dec(dec));
        }
        Ok(SkyPos {
            ra: if ra == 360.0 { 0.0 } else { ra },
            dec,
        })
    }

    /// A position from any finite RA (wrapped) and a Dec in range.
    pub fn wrapped(ra: f64, dec: f64) -> Result<SkyPos, SkyError> {
        if !ra.is_finite() {
            return Err(SkyError::Ra(ra));
        }
        SkyPos::new(ra.rem_euclid(360.0), dec)
    }

    pub(crate) fn vec(self) -> Vec3 {
        let (ra, dec) = (self.ra.to_radians(), self.dec.to_radians());
        [dec.cos() * ra.cos(), dec.cos() * ra.sin(), dec.sin()]
    }

    /// The angular distance to another position, degrees.
    pub fn distance(self, other: SkyPos) -> f64 {
        angle(self.vec(), other.vec())
    }
}

/// What a dataset covers beyond its centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Footprint {
    /// A convex polygon with great-circle edges, smaller than a hemisphere
    /// (an image's four corners).
    Polygon { corners: Vec<SkyPos> },
    /// A disc of this radius around the centre.
    Circle { radius: f64 },
    /// The whole sky (an all-sky map).
    AllSky,
}

/// Where a dataset lies: its centre, and its footprint when known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    pub centre: SkyPos,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footprint: Option<Footprint>,
}

/// A cone: every position within `radius` of `centre`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cone {
    pub centre: SkyPos,
    pub radius: f64,
}

impl Cone {
    pub fn new(ra: f64, dec: f64, radius: f64) -> Result<Cone, SkyError> {
        if !radius.is_finite() || !(0.0..=180.0).contains(&radius) {
            return Err(SkyError::Radius(radius));
        }
        Ok(Cone {
            centre: SkyPos::new(ra, dec)?,
            radius,
        })
    }
}

/// The nearest and farthest angular distances from `c` to the minor
/// great-circle arc from `a` to `b`.
fn arc_extremes(c: Vec3, a: Vec3, b: Vec3) -> (f64, f64) {
    let (da, db) = (angle(c, a), angle(c, b));
    let (mut near, mut far) = (da.min(db), da.max(db));
    let n = cross(a, b);
    let nn = norm(n);
    if nn == 0.0 {
        return (near, far);
    }
    let n = [n[0] / nn, n[1] / nn, n[2] / nn];
    let k = dot(c, n);
    let p = [c[0] - k * n[0], c[1] - k * n[1], c[2] - k * n[2]];
    if norm(p) == 0.0 {
        // c is a pole of the arc's great circle: every point is 90° away.
        return (90.0, 90.0);
    }
    let on_arc = |q: Vec3| dot(cross(a, q), n) >= 0.0 && dot(cross(q, b), n) >= 0.0;
    if on_arc(p) {
        near = near.min(angle(c, p));
    }
    let q = [-p[0], -p[1], -p[2]];
    if on_arc(q) {
        far = far.max(angle(c, q));
    }
    (near, far)
}

/// Whether `c` lies inside a convex polygon smaller than a hemisphere
/// (either winding): on the inner side of every edge, the side the
/// corners' mean lies on.
fn inside_convex(c: Vec3, corners: &[Vec3]) -> bool {
    let mean = corners
        .iter()
        .fold([0.0; 3], |m, p| [m[0] + p[0], m[1] + p[1], m[2] + p[2]]);
    corners.iter().enumerate().all(|(i, a)| {
        let n = cross(*a, corners[(i + 1) % corners.len()]);
        let (s, inner) = (dot(n, c), dot(n, mean));
        s == 0.0 || (s > 0.0) == (inner > 0.0)
    })
}

impl Footprint {
    /// A checked polygon: 3 to 64 corners making a convex polygon smaller
    /// than a hemisphere, in either winding.
    pub fn polygon(corners: Vec<SkyPos>) -> Result<Footprint, SkyError> {
        if !(3..=64).contains(&corners.len()) {
            return Err(SkyError::Corners(corners.len()));
        }
        let v: Vec<Vec3> = corners.iter().map(|p| p.vec()).collect();
        let n = v.len();
        let turns: Vec<f64> = (0..n)
            .map(|i| dot(cross(v[i], v[(i + 1) % n]), v[(i + 2) % n]))
            .collect();
        let convex = turns.iter().all(|t| *t > 0.0) || turns.iter().all(|t| *t < 0.0);
        // Smaller than a hemisphere: every corner on the inner side of
        // every edge.
        let mean = v
            .iter()
            .fold([0.0; 3], |m, p| [m[0] + p[0], m[1] + p[1], m[2] + p[2]]);
        let within = v.iter().all(|p| dot(*p, mean) > 0.0);
        if !convex || norm(mean) == 0.0 || !within {
            return Err(SkyError::NotConvex);
        }
        Ok(Footprint::Polygon { corners })
    }
}

impl Shape {
    pub fn point(centre: SkyPos) -> Shape {
        Shape {
            centre,
            footprint: None,
        }
    }

    /// The largest distance from the centre to any point of the footprint.
    pub fn bounding_radius(&self) -> f64 {
        match &self.footprint {
            None => 0.0,
            Some(Footprint::AllSky) => 180.0,
            Some(Footprint::Circle { radius }) => *radius,
            Some(Footprint::Polygon { corners }) => {
                let c = self.centre.vec();
                let v: Vec<Vec3> = corners.iter().map(|p| p.vec()).collect();
                (0..v.len())
                    .map(|i| arc_extremes(c, v[i], v[(i + 1) % v.len()]).1)
                    .fold(0.0, f64::max)
            }
        }
    }

    /// Whether the cone reaches the dataset: the exact predicate of cone
    /// search, which the spatial index must agree with.
    pub fn meets(&self, cone: &Cone) -> bool {
        let d = self.centre.distance(cone.centre);
        match &self.footprint {
            None => d <= cone.radius,
            Some(Footprint::AllSky) => true,
            Some(Footprint::Circle { radius }) => d <= cone.radius + radius,
            Some(Footprint::Polygon { corners }) => {
                let c = cone.centre.vec();
                let v: Vec<Vec3> = corners.iter().map(|p| p.vec()).collect();
                inside_convex(c, &v)
                    || (0..v.len())
                        .any(|i| arc_extremes(c, v[i], v[(i + 1) % v.len()]).0 <= cone.radius)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(ra: f64, dec: f64) -> SkyPos {
        SkyPos::new(ra, dec).unwrap()
    }

    #[test]
    fn distances_are_exact_across_ra_zero_and_at_the_poles() {
        assert!((p(359.5, 0.0).distance(p(0.5, 0.0)) - 1.0).abs() < 1e-12);
        assert!((p(10.0, 89.5).distance(p(190.0, 89.5)) - 1.0).abs() < 1e-12);
        assert!((p(0.0, -90.0).distance(p(123.0, -90.0))).abs() < 1e-12);
        assert!((p(0.0, 0.0).distance(p(180.0, 0.0)) - 180.0).abs() < 1e-12);
        // Haversine as an independent check.
        let (a, b) = (p(10.684, 41.269), p(83.822, -5.391));
        let h = {
            let (d1, d2) = (a.dec.to_radians(), b.dec.to_radians());
            let (dd, dr) = (d2 - d1, (b.ra - a.ra).to_radians());
            let s = (dd / 2.0).sin().powi(2) + d1.cos() * d2.cos() * (dr / 2.0).sin().powi(2);
            (2.0 * s.sqrt().asin()).to_degrees()
        };
        assert!((a.distance(b) - h).abs() < 1e-9);
    }

    #[test]
    fn bad_positions_and_radii_are_refused() {
        assert!(SkyPos::new(-0.1, 0.0).is_err());
        assert!(SkyPos::new(360.1, 0.0).is_err());
        assert!(SkyPos::new(f64::NAN, 0.0).is_err());
        assert!(SkyPos::new(0.0, 90.01).is_err());
        assert_eq!(SkyPos::new(360.0, 1.0).unwrap().ra, 0.0);
        assert!(Cone::new(0.0, 0.0, -1.0).is_err());
        assert!(Cone::new(0.0, 0.0, f64::INFINITY).is_err());
        assert!(Cone::new(0.0, 0.0, 180.0).is_ok());
    }

    #[test]
    fn a_polygon_is_met_from_inside_from_its_edges_and_not_from_afar() {
        // A 1° square straddling RA 0.
        let sq = Shape {
            centre: p(0.0, 0.0),
            footprint: Some(
                Footprint::polygon(vec![
                    p(359.5, -0.5),
                    p(0.5, -0.5),
                    p(0.5, 0.5),
                    p(359.5, 0.5),
                ])
                .unwrap(),
            ),
        };
        let cone = |ra, dec, r| Cone::new(ra, dec, r).unwrap();
        assert!(sq.meets(&cone(0.1, 0.1, 0.0)), "inside");
        assert!(sq.meets(&cone(1.0, 0.0, 0.51)), "reaches the east edge");
        assert!(!sq.meets(&cone(1.0, 0.0, 0.49)), "falls short of it");
        assert!(
            sq.meets(&cone(359.0, 0.0, 0.51)),
            "the west edge across RA 0"
        );
        assert!(!sq.meets(&cone(180.0, 0.0, 10.0)));
        // Corners are the farthest points of a small square.
        let r = sq.bounding_radius();
        assert!((r - p(0.0, 0.0).distance(p(0.5, 0.5))).abs() < 1e-9, "{r}");
        assert!(Footprint::polygon(vec![p(0.0, 0.0), p(1.0, 0.0)]).is_err());
        // A bow tie is not convex.
        assert!(
            Footprint::polygon(vec![p(0.0, 0.0), p(1.0, 1.0), p(1.0, 0.0), p(0.0, 1.0)]).is_err()
        );
    }

    #[test]
    fn a_polygon_around_a_pole_contains_it() {
        let cap = Shape {
            centre: p(0.0, 90.0),
            footprint: Some(
                Footprint::polygon(vec![
                    p(0.0, 89.0),
                    p(90.0, 89.0),
                    p(180.0, 89.0),
                    p(270.0, 89.0),
                ])
                .unwrap(),
            ),
        };
        assert!(cap.meets(&Cone::new(45.0, 89.9, 0.0).unwrap()));
        assert!(
            cap.meets(&Cone::new(0.0, 88.8, 0.3).unwrap()),
            "near a corner"
        );
        // Edges are great circles: between corners they bulge poleward, to
        // Dec 89.29 halfway.
        assert!(!cap.meets(&Cone::new(45.0, 88.8, 0.3).unwrap()));
        assert!(cap.meets(&Cone::new(45.0, 88.8, 0.5).unwrap()));
    }
}
