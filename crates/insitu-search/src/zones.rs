//! The spatial index behind cone search: the *zones* algorithm (Gray,
//! Nieto-Santisteban and Szalay, "The Zones Algorithm for Finding
//! Points-Near-a-Point or Cross-Matching Spatial Datasets", 2006). The sky
//! is cut into declination stripes; within a stripe entries are sorted by
//! RA, so a cone visits only the stripes it overlaps and, in each, a binary
//! searched RA interval wide enough for the cone at that declination (the
//! whole stripe near a pole, two intervals across RA 0). Every candidate is
//! then checked with [`Shape::meets`], so the answer is exactly the
//! brute-force one.
//!
//! Datasets with footprints are kept in classes by the radius that bounds
//! their footprint; a class is searched with the cone's radius widened by
//! its bound. Footprints wider than the largest class (all-sky maps) are
//! few and checked one by one.

use crate::sky::{Cone, Shape};

/// Bounding radii of the classes, degrees; wider footprints are checked
/// one by one.
const CLASSES: [f64; 4] = [0.0, 0.1, 1.0, 10.0];
/// Slack added to every computed bound, far above rounding errors.
const SLACK: f64 = 1e-6;

struct Class {
    pad: f64,
    height: f64,
    /// Per stripe, `(ra, entry)` sorted by RA.
    stripes: Vec<Vec<(f64, u32)>>,
}

/// An immutable spatial index over `(key, shape)` entries.
pub struct ZoneIndex {
    entries: Vec<(u64, Shape)>,
    classes: Vec<Class>,
    wide: Vec<u32>,
}

impl ZoneIndex {
    pub fn build(entries: Vec<(u64, Shape)>) -> ZoneIndex {
        let mut classes: Vec<Class> = CLASSES
            .iter()
            .map(|&pad| {
                let height = pad.max(0.1);
                // The stripe count of 180° by at least 0.1° is small.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let n = (180.0 / height).ceil() as usize;
                Class {
                    pad,
                    height,
                    stripes: vec![Vec::new(); n],
                }
            })
            .collect();
        let mut wide = Vec::new();
        for (i, (_, shape)) in entries.iter().enumerate() {
            let Ok(i) = u32::try_from(i) else { break };
            let r = shape.bounding_radius();
            match classes.iter_mut().find(|c| r <= c.pad) {
                Some(c) => {
                    let s = stripe(c, shape.centre.dec);
                    c.stripes[s].push((shape.centre.ra, i));
                }
                None => wide.push(i),
            }
        }
        for c in &mut classes {
            for s in &mut c.stripes {
                s.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
        }
        ZoneIndex {
            entries,
            classes,
            wide,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The keys of every entry the cone meets, sorted.
    pub fn query(&self, cone: &Cone) -> Vec<u64> {
        let mut out = Vec::new();
        let mut check = |i: u32| {
            let (key, shape) = &self.entries[i as usize];
            if shape.meets(cone) {
                out.push(*key);
            }
        };
        for c in &self.classes {
            let r = cone.radius + c.pad + SLACK;
            let (lo, hi) = (cone.centre.dec - r, cone.centre.dec + r);
            let alpha = ra_half_width(cone.centre.dec, r);
            for s in stripe(c, lo.max(-90.0))..=stripe(c, hi.min(90.0)) {
                let row = &c.stripes[s];
                if alpha >= 180.0 {
                    row.iter().for_each(|(_, i)| check(*i));
                    continue;
                }
                let (a, b) = (cone.centre.ra - alpha, cone.centre.ra + alpha);
                let mut scan = |from: f64, to: f64| {
                    let start = row.partition_point(|(ra, _)| *ra < from);
                    for (ra, i) in &row[start..] {
                        if *ra > to {
                            break;
                        }
                        check(*i);
                    }
                };
                scan(a.max(0.0), b.min(360.0));
                if a < 0.0 {
                    scan(a + 360.0, 360.0);
                }
                if b > 360.0 {
                    scan(0.0, b - 360.0);
                }
            }
        }
        self.wide.iter().for_each(|i| check(*i));
        out.sort_unstable();
        out.dedup();
        out
    }
}

fn stripe(c: &Class, dec: f64) -> usize {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let s = ((dec + 90.0) / c.height).floor().max(0.0) as usize;
    s.min(c.stripes.len() - 1)
}

/// Half the RA extent of a cone of radius `r` at declination `dec`
/// (degrees), or 180 where the cone reaches a pole.
fn ra_half_width(dec: f64, r: f64) -> f64 {
    if dec.abs() + r >= 89.9 {
        return 180.0;
    }
    let (d, r) = (dec.to_radians(), r.to_radians());
    let alpha = r
        .sin()
        .atan2(((d - r).cos() * (d + r).cos()).abs().sqrt())
        .to_degrees();
    (alpha * (1.0 + 1e-9) + SLACK).min(180.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sky::{Footprint, SkyPos};

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
            #[allow(clippy::cast_precision_loss)]
            let f = v as f64 / (1u64 << 53) as f64;
            f
        }
        /// A position uniform on the sphere, or within 2° of a pole or of
        /// RA 0, where bugs hide.
        fn pos(&mut self) -> SkyPos {
            let u = self.next();
            let (ra, dec) = if u < 0.15 {
                let d = 88.0 + 2.0 * self.next();
                (360.0 * self.next(), if self.next() < 0.5 { d } else { -d })
            } else if u < 0.3 {
                let ra = (self.next() * 4.0 - 2.0).rem_euclid(360.0);
                (ra, (self.next() * 2.0 - 1.0).asin().to_degrees())
            } else {
                (
                    360.0 * self.next(),
                    (self.next() * 2.0 - 1.0).asin().to_degrees(),
                )
            };
            SkyPos::new(ra.min(359.999_999_999), dec).unwrap()
        }
    }

    /// A square footprint of half-width `h` around `c`, through a small
    /// TAN-like offset in the local tangent plane.
    fn square(c: SkyPos, h: f64) -> Option<Footprint> {
        let cos = c.dec.to_radians().cos().max(1e-3);
        let corners: Option<Vec<SkyPos>> = [(-h, -h), (h, -h), (h, h), (-h, h)]
            .iter()
            .map(|(dx, dy)| SkyPos::wrapped(c.ra + dx / cos, c.dec + dy).ok())
            .collect();
        Footprint::polygon(corners?).ok()
    }

    fn shapes(rng: &mut Rng, n: usize) -> Vec<(u64, Shape)> {
        (0..n)
            .map(|k| {
                let centre = rng.pos();
                let footprint = match k % 7 {
                    0..=2 => None,
                    3 => square(centre, 0.05),
                    4 => square(centre, 0.4),
                    5 => Some(Footprint::Circle {
                        radius: 5.0 * rng.next(),
                    }),
                    _ if k % 500 == 6 => Some(Footprint::AllSky),
                    _ => square(centre, 3.0),
                };
                (k as u64, Shape { centre, footprint })
            })
            .collect()
    }

    #[test]
    fn cone_search_equals_brute_force_everywhere() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let entries = shapes(&mut rng, 12_000);
        let index = ZoneIndex::build(entries.clone());
        let mut found = 0;
        for q in 0..400 {
            let radius = [0.0001, 0.01, 0.1, 0.5, 1.0, 2.5, 10.0, 45.0][q % 8];
            let cone = Cone {
                centre: rng.pos(),
                radius,
            };
            let mut brute: Vec<u64> = entries
                .iter()
                .filter(|(_, s)| s.meets(&cone))
                .map(|(k, _)| *k)
                .collect();
            brute.sort_unstable();
            let got = index.query(&cone);
            assert_eq!(got, brute, "cone {cone:?}");
            found += got.len();
        }
        assert!(
            found > 20_000,
            "the cones found {found}: too few to mean much"
        );
    }

    #[test]
    fn the_poles_and_ra_zero_are_covered() {
        let at = |ra, dec| (0, Shape::point(SkyPos::new(ra, dec).unwrap()));
        let entries = vec![
            at(0.0, 90.0),
            at(180.0, 89.95),
            at(359.99, 0.0),
            at(0.01, 0.0),
            at(0.0, -90.0),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (_, s))| (i as u64, s))
        .collect();
        let index = ZoneIndex::build(entries);
        let cone = |ra, dec, r| Cone::new(ra, dec, r).unwrap();
        assert_eq!(index.query(&cone(0.0, 89.97, 0.1)), [0, 1]);
        assert_eq!(index.query(&cone(0.0, 0.0, 0.02)), [2, 3]);
        assert_eq!(index.query(&cone(359.995, 0.0, 0.006)), [2]);
        assert_eq!(index.query(&cone(77.0, -89.999, 0.01)), [4]);
        assert_eq!(index.query(&cone(10.0, 0.0, 180.0)).len(), 5);
    }
}
