//! What a FITS file's headers say about it: telescope, instrument, object,
//! filter, exposure, date, image size, table columns, and where it lies
//! (the WCS footprint of its first celestial image, else its pointing).

use insitu_fits::{CelestialWcs, Hdu, HduKind};

use crate::sky::{Footprint, Shape, SkyPos};

/// The facts read from a FITS file's headers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FitsFacts {
    pub telescope: Option<String>,
    pub instrument: Option<String>,
    pub object: Option<String>,
    pub filter: Option<String>,
    pub date_obs: Option<String>,
    pub exptime: Option<f64>,
    pub image: Vec<u64>,
    pub columns: Vec<String>,
    pub rows: Option<u64>,
    pub shape: Option<Shape>,
    /// `image`, `table` or `header`.
    pub content: &'static str,
}

fn first_str(hdus: &[Hdu], keys: &[&str]) -> Option<String> {
    hdus.iter().find_map(|h| {
        keys.iter().find_map(|k| {
            h.get_str(k)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        })
    })
}

fn first_f64(hdus: &[Hdu], keys: &[&str]) -> Option<f64> {
    hdus.iter()
        .find_map(|h| keys.iter().find_map(|k| h.get_f64(k)))
        .filter(|v| v.is_finite())
}

/// Sexagesimal (`10:41:00.5`, `10 41 00.5`) or decimal degrees; hours when
/// `hours`.
fn angle(value: &insitu_fits::Value, hours: bool) -> Option<f64> {
    if let Some(v) = value.as_f64() {
        return Some(v);
    }
    let s = value.as_str()?.trim();
    let parts: Vec<&str> = s.split([':', ' ']).filter(|p| !p.is_empty()).collect();
    if parts.len() == 1 {
        return parts[0].parse().ok();
    }
    let neg = s.starts_with('-');
    let mut total = 0.0;
    for (i, p) in parts.iter().take(3).enumerate() {
        let v: f64 = p.trim_start_matches(['-', '+']).parse().ok()?;
        total += v / 60f64.powi(i32::try_from(i).ok()?);
    }
    let deg = if hours { total * 15.0 } else { total };
    Some(if neg { -deg } else { deg })
}

fn pointing(hdus: &[Hdu]) -> Option<SkyPos> {
    for (ra_key, dec_key, hours_if_text) in [
        ("RA_OBJ", "DEC_OBJ", false),
        ("RA", "DEC", true),
        ("OBJCTRA", "OBJCTDEC", true),
        ("RA_PNT", "DEC_PNT", false),
        ("RA_NOM", "DEC_NOM", false),
    ] {
        for h in hdus {
            let (Some(r), Some(d)) = (h.get(ra_key), h.get(dec_key)) else {
                continue;
            };
            // Text RA is sexagesimal hours by convention; numbers are degrees.
            let hours = hours_if_text && r.as_str().is_some_and(|s| s.contains([':', ' ']));
            if let (Some(ra), Some(dec)) = (angle(r, hours), angle(d, false))
                && let Ok(p) = SkyPos::wrapped(ra, dec)
            {
                return Some(p);
            }
        }
    }
    None
}

/// Where a celestial image lies: its footprint from the WCS.
fn image_shape(hdu: &Hdu) -> Option<Shape> {
    let wcs = CelestialWcs::from_hdu(hdu)?;
    let axes = hdu.axes();
    let (w, h) = (*axes.first()?, *axes.get(1)?);
    if w == 0 || h == 0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let (wf, hf) = (w as f64, h as f64);
    let at = |x: f64, y: f64| {
        wcs.pixel_to_icrs(x, y)
            .and_then(|(ra, dec)| SkyPos::wrapped(ra, dec).ok())
    };
    let centre = at((wf + 1.0) / 2.0, (hf + 1.0) / 2.0)?;
    if wcs.covers_whole_sky(w, h) {
        return Some(Shape {
            centre,
            footprint: Some(Footprint::AllSky),
        });
    }
    let corners: Option<Vec<SkyPos>> = [
        (0.5, 0.5),
        (wf + 0.5, 0.5),
        (wf + 0.5, hf + 0.5),
        (0.5, hf + 0.5),
    ]
    .iter()
    .map(|(x, y)| at(*x, *y))
    .collect();
    let footprint = match corners.map(Footprint::polygon) {
        Some(Ok(p)) if wcs.projection == insitu_fits::Projection::Tan => p,
        // Edges that are not great circles, or corners outside the
        // projection: a disc through the farthest edge point.
        _ => {
            let mut r: f64 = 0.0;
            for i in 0..=8 {
                let t = f64::from(i) / 8.0;
                for (x, y) in [
                    (0.5 + t * wf, 0.5),
                    (0.5 + t * wf, hf + 0.5),
                    (0.5, 0.5 + t * hf),
                    (wf + 0.5, 0.5 + t * hf),
                ] {
                    r = r.max(at(x, y).map_or(180.0, |p| p.distance(centre)));
                }
            }
            Footprint::Circle {
                radius: (r * 1.01).min(180.0),
            }
        }
    };
    Some(Shape {
        centre,
        footprint: Some(footprint),
    })
}

/// Reads the facts of a file's HDUs.
pub fn facts(hdus: &[Hdu]) -> FitsFacts {
    let mut f = FitsFacts {
        telescope: first_str(hdus, &["TELESCOP"]),
        instrument: first_str(hdus, &["INSTRUME"]),
        object: first_str(hdus, &["OBJECT"]),
        filter: first_str(hdus, &["FILTER", "FILTER1", "FILTNAM1", "BAND"]),
        exptime: first_f64(hdus, &["EXPTIME", "EXPOSURE", "TELAPSE"]),
        content: "header",
        ..FitsFacts::default()
    };
    f.date_obs = first_str(hdus, &["DATE-OBS", "DATE_OBS"])
        .filter(|d| crate::date::parse(d).is_some())
        .or_else(|| first_f64(hdus, &["MJD-OBS", "MJD_OBS"]).and_then(crate::date::from_mjd));
    let image = hdus.iter().find(|h| {
        matches!(h.kind, HduKind::Primary | HduKind::Image)
            && h.axes().iter().filter(|n| **n > 0).count() >= 2
    });
    if let Some(img) = image {
        f.image = img.axes().iter().map(|n| *n as u64).collect();
        f.content = "image";
        f.shape = image_shape(img);
    }
    if let Some(table) = hdus
        .iter()
        .find(|h| h.kind == HduKind::BinTable || h.kind == HduKind::AsciiTable)
    {
        let n = table.get_i64("TFIELDS").unwrap_or(0);
        f.columns = (1..=n)
            .filter_map(|i| {
                table
                    .get_str(&format!("TTYPE{i}"))
                    .map(|s| s.trim().to_owned())
            })
            .filter(|s| !s.is_empty())
            .collect();
        f.rows = table.get_i64("NAXIS2").and_then(|r| u64::try_from(r).ok());
        if image.is_none() {
            f.content = "table";
        }
    }
    if f.shape.is_none() {
        f.shape = pointing(hdus).map(Shape::point);
    }
    f
}
