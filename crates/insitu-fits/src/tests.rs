//! Crate-level tests: writer/reader round trips, layout, robustness against
//! malformed input, and the demo data (determinism, WCS cross-match).

use std::io::Cursor;
use std::path::Path;

use crate::rng::XorShift;
use crate::*;

fn sample_header() -> Header {
    let mut h = Header::new();
    h.set("OBJECT", "O'Brien field", "quoted")
        .unwrap()
        .set("EXPTIME", 12.5, "[s]")
        .unwrap()
        .set("NCOMBINE", 3i64, "")
        .unwrap()
        .set("FLAT", false, "flat-fielded?")
        .unwrap()
        .set("DATE-OBS", "2024-01-02T03:04:05", "")
        .unwrap();
    h.comment("a long comment that will certainly need to be wrapped over more than one card because it is longer than seventy-two characters")
        .unwrap();
    h
}

fn write_to_vec(f: impl FnOnce(&mut FitsWriter<Vec<u8>>)) -> Vec<u8> {
    let mut w = FitsWriter::new(Vec::new());
    f(&mut w);
    w.finish().unwrap()
}

#[test]
fn roundtrip_headers_and_images() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rt.fits");
    let img: Vec<f32> = (0..12 * 5).map(|i| i as f32 * 0.5 - 3.0).collect();
    let ints: Vec<i16> = (0..4 * 3).map(|i| (i * 1000 - 6000) as i16).collect();
    let mut ext_header = Header::new();
    ext_header.set("EXTNAME", "INTS", "").unwrap();
    let bytes = write_to_vec(|w| {
        w.write_primary_image(&[12, 5], Pixels::F32(&img), &sample_header())
            .unwrap();
        w.write_image_extension(&[4, 3], Pixels::I16(&ints), &ext_header)
            .unwrap();
    });
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(bytes.len() % BLOCK_LEN, 0);

    let hdus = read_headers(&path).unwrap();
    assert_eq!(hdus.len(), 2);
    let p = &hdus[0];
    assert_eq!(p.kind, HduKind::Primary);
    let kws: Vec<&str> = p.cards.iter().take(6).map(|c| c.keyword.as_str()).collect();
    assert_eq!(
        kws,
        ["SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND"]
    );
    assert_eq!(p.get("BITPIX"), Some(&Value::Int(-32)));
    assert_eq!(p.get_str("OBJECT"), Some("O'Brien field"));
    assert_eq!(p.get_f64("EXPTIME"), Some(12.5));
    assert_eq!(p.get_i64("NCOMBINE"), Some(3));
    assert_eq!(p.get_bool("FLAT"), Some(false));
    assert_eq!(p.get("SIMPLE"), Some(&Value::Logical(true)));
    assert_eq!(p.get("MISSING"), None);
    let comments: Vec<&str> = p
        .cards
        .iter()
        .filter(|c| c.keyword == "COMMENT")
        .filter_map(|c| c.comment.as_deref())
        .collect();
    assert_eq!(comments.len(), 2);
    assert!(comments.iter().all(|c| c.len() <= 72));
    let e = &hdus[1];
    assert_eq!(e.kind, HduKind::Image);
    assert_eq!(e.get_str("XTENSION"), Some("IMAGE"));
    assert_eq!(e.get_i64("PCOUNT"), Some(0));
    assert_eq!(e.get_i64("GCOUNT"), Some(1));
    assert_eq!(e.get_str("EXTNAME"), Some("INTS"));
    assert_eq!(e.header_offset, 2 * BLOCK_LEN as u64);

    let back = read_image_f32(&path, 0).unwrap();
    assert_eq!(back.axes, vec![12, 5]);
    assert_eq!(back.data, img);
    assert_eq!(back.pixel(3, 2), Some(img[2 * 12 + 3]));
    let back = read_image_f32(&path, 1).unwrap();
    assert_eq!(back.axes, vec![4, 3]);
    assert_eq!(
        back.data,
        ints.iter().map(|&v| f32::from(v)).collect::<Vec<_>>()
    );
    assert!(matches!(
        read_image_f32(&path, 2),
        Err(FitsError::NoSuchHdu { index: 2, count: 2 })
    ));
}

#[test]
fn raw_layout_is_fits() {
    let bytes = write_to_vec(|w| {
        w.write_primary_image(&[3, 2], Pixels::F32(&[1.0; 6]), &sample_header())
            .unwrap()
    });
    assert_eq!(bytes.len(), 2 * BLOCK_LEN);
    let header = &bytes[..BLOCK_LEN];
    assert!(header.starts_with(b"SIMPLE  =                    T"));
    assert_eq!(&header[80..110], b"BITPIX  =                  -32");
    let end = header
        .chunks(80)
        .position(|c| c.starts_with(b"END "))
        .unwrap();
    assert!(header[(end + 1) * 80..].iter().all(|&b| b == b' '));
    assert!(header.iter().all(|b| (0x20..=0x7e).contains(b)));
    // Big-endian 1.0f32, then zero padding.
    assert_eq!(&bytes[BLOCK_LEN..BLOCK_LEN + 4], &[0x3f, 0x80, 0, 0]);
    assert!(bytes[BLOCK_LEN + 24..].iter().all(|&b| b == 0));
}

#[test]
fn bintable_layout_and_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.fits");
    let columns = vec![
        Column::new("ID", ColumnData::I64(vec![1, 2, 3])),
        Column::new(
            "NAME",
            ColumnData::Str {
                width: 10,
                values: vec!["a".into(), "b'c".into(), "0123456789".into()],
            },
        ),
        Column::with_unit("RA", "deg", ColumnData::F64(vec![0.5, 359.9, 180.0])),
        Column::with_unit("MAG", "mag", ColumnData::F32(vec![12.5, 13.0, 20.25])),
        Column::new("N", ColumnData::I32(vec![-1, 0, i32::MAX])),
    ];
    let mut h = Header::new();
    h.set("EXTNAME", "CAT", "").unwrap();
    let bytes = write_to_vec(|w| {
        w.write_primary_header(&Header::new()).unwrap();
        w.write_bintable(&columns, &h).unwrap();
    });
    assert_eq!(bytes.len() % BLOCK_LEN, 0);
    std::fs::write(&path, &bytes).unwrap();
    let hdus = read_headers(&path).unwrap();
    assert_eq!(hdus.len(), 2);
    assert_eq!(hdus[0].get_i64("NAXIS"), Some(0));
    assert_eq!(hdus[0].data_len, 0);
    let t = &hdus[1];
    assert_eq!(t.kind, HduKind::BinTable);
    let row: usize = columns.iter().map(|c| c.data.width()).sum();
    assert_eq!(row, 8 + 10 + 8 + 4 + 4);
    assert_eq!(t.get_i64("NAXIS1"), Some(row as i64));
    assert_eq!(t.get_i64("NAXIS2"), Some(3));
    assert_eq!(t.get_i64("TFIELDS"), Some(5));
    assert_eq!(t.data_len, 3 * row as u64);
    let kws: Vec<&str> = t
        .cards
        .iter()
        .take(11)
        .map(|c| c.keyword.as_str())
        .collect();
    assert_eq!(
        kws,
        [
            "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "PCOUNT", "GCOUNT", "TFIELDS",
            "TTYPE1", "TFORM1", "TTYPE2"
        ]
    );
    assert_eq!(t.get_str("TFORM2"), Some("10A"));
    assert_eq!(t.get_str("TUNIT3"), Some("deg"));
    assert_eq!(t.get("TUNIT1"), None);
    let table = read_bintable(&path, 1).unwrap();
    assert_eq!(table.nrows, 3);
    assert!(table.skipped.is_empty());
    for (col, back) in columns.iter().zip(&table.columns) {
        assert_eq!(col.name, back.name);
        assert_eq!(col.unit, back.unit);
        assert_eq!(col.data, back.data);
    }
}

#[test]
fn writer_rejects_misuse() {
    let mut w = FitsWriter::new(Vec::new());
    assert!(matches!(
        w.write_bintable(
            &[Column::new("A", ColumnData::I32(vec![1]))],
            &Header::new()
        ),
        Err(FitsError::Usage(_))
    ));
    assert!(
        w.write_primary_image(&[2, 2], Pixels::F32(&[0.0; 3]), &Header::new())
            .is_err()
    );
    w.write_primary_header(&Header::new()).unwrap();
    assert!(w.write_primary_header(&Header::new()).is_err());
    let uneven = [
        Column::new("A", ColumnData::I32(vec![1, 2])),
        Column::new("B", ColumnData::I32(vec![1])),
    ];
    assert!(w.write_bintable(&uneven, &Header::new()).is_err());
    let too_long = [Column::new(
        "S",
        ColumnData::Str {
            width: 2,
            values: vec!["abc".into()],
        },
    )];
    assert!(w.write_bintable(&too_long, &Header::new()).is_err());
    assert!(FitsWriter::new(Vec::new()).finish().is_err());

    let mut h = Header::new();
    for bad in [
        "NAXIS", "NAXIS2", "BITPIX", "SIMPLE", "TTYPE3", "TFORM1", "END",
    ] {
        assert!(
            matches!(h.set(bad, 1i64, ""), Err(FitsError::ReservedKeyword(_))),
            "{bad}"
        );
    }
    for bad in ["lower", "WAYTOOLONG", "A B", "", "É"] {
        assert!(
            matches!(h.set(bad, 1i64, ""), Err(FitsError::InvalidKeyword(_))),
            "{bad}"
        );
    }
    assert!(h.set("X", f64::INFINITY, "").is_err());
    assert!(h.set("X", "x".repeat(69).as_str(), "").is_err());
    assert!(h.set("X", "x".repeat(68).as_str(), "").is_ok());
    assert!(h.set("NAXISA", 1i64, "").is_ok());
    assert!(h.set("TTYPE", 1i64, "").is_ok());
}

fn valid_file() -> Vec<u8> {
    let img: Vec<f32> = (0..100).map(|i| i as f32).collect();
    write_to_vec(|w| {
        w.write_primary_image(&[10, 10], Pixels::F32(&img), &sample_header())
            .unwrap();
        w.write_bintable(
            &[Column::new("A", ColumnData::F64(vec![1.0, 2.0]))],
            &Header::new(),
        )
        .unwrap();
    })
}

#[test]
fn malformed_files_give_clear_errors() {
    let good = valid_file();
    assert_eq!(read_headers_from(&mut Cursor::new(&good)).unwrap().len(), 2);
    let read = |b: &[u8]| read_headers_from(&mut Cursor::new(b.to_vec()));

    assert!(matches!(read(b""), Err(FitsError::Truncated { .. })));
    assert!(matches!(
        read(&[b' '; BLOCK_LEN]),
        Err(FitsError::InvalidHeader { hdu: 0, .. })
    ));
    // Truncated in the header, in the data, in the extension.
    assert!(matches!(
        read(&good[..100]),
        Err(FitsError::Truncated { .. })
    ));
    assert!(matches!(
        read(&good[..BLOCK_LEN + 10]),
        Err(FitsError::Truncated { .. })
    ));
    assert!(matches!(
        read(&good[..2 * BLOCK_LEN + 100]),
        Err(FitsError::Truncated { .. })
    ));
    // Missing END: blank out the END card.
    let mut no_end = good[..BLOCK_LEN].to_vec();
    let end = no_end
        .chunks(80)
        .position(|c| c.starts_with(b"END "))
        .unwrap();
    no_end[end * 80..end * 80 + 3].copy_from_slice(b"   ");
    assert!(matches!(
        read(&no_end),
        Err(FitsError::MissingEnd { hdu: 0 })
    ));
    // A bad card: a non-ASCII byte, a broken value.
    let mut bad = good.clone();
    bad[80 * 4 + 20] = 0xff;
    assert!(matches!(
        read(&bad),
        Err(FitsError::BadCard { card: 4, .. })
    ));
    let mut bad = good.clone();
    bad[80 + 10..80 + 30].copy_from_slice(b"          banana!!  ");
    assert!(matches!(
        read(&bad),
        Err(FitsError::BadCard { card: 1, .. })
    ));
    // NAXIS1 out of order / absurd sizes.
    let mut bad = good.clone();
    bad[80 * 3..80 * 3 + 8].copy_from_slice(b"NAXIS9  ");
    assert!(matches!(read(&bad), Err(FitsError::InvalidHeader { .. })));
    let mut bad = good.clone();
    bad[80 * 3 + 10..80 * 3 + 30].copy_from_slice(b" 9223372036854775807");
    assert!(read(&bad).is_err());
    // Garbage after the last HDU.
    let mut bad = good.clone();
    bad.extend_from_slice(&[b'x'; BLOCK_LEN]);
    assert!(matches!(
        read(&bad),
        Err(FitsError::InvalidHeader { hdu: 2, .. })
    ));
    let mut bad = good.clone();
    bad.extend_from_slice(b"trailing");
    assert!(matches!(read(&bad), Err(FitsError::Truncated { .. })));
    // Errors render as readable messages.
    let msg = read(&good[..100]).unwrap_err().to_string();
    assert!(msg.contains("truncated"), "{msg}");
}

#[test]
fn fuzz_random_and_mutated_bytes_never_panic() {
    let good = valid_file();
    let mut rng = XorShift::new(0xF022);
    let mut ok = 0;
    for round in 0..3000 {
        let bytes: Vec<u8> = match round % 3 {
            0 => {
                let len = (rng.next_u64() % (3 * BLOCK_LEN as u64)) as usize;
                let mut v: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                if round % 2 == 0 && v.len() > 10 {
                    v[..9].copy_from_slice(b"SIMPLE  =");
                }
                v
            }
            1 => {
                let mut v = good.clone();
                for _ in 0..1 + rng.next_u64() % 4 {
                    let i = (rng.next_u64() % v.len() as u64) as usize;
                    // Mostly hit the headers, where the parsing is.
                    let i = if rng.next_u64().is_multiple_of(4) {
                        i
                    } else {
                        i % 800
                    };
                    let alphabet = b" 0123456789-+.ETF'=/ABCXNS\x00\xff";
                    v[i] = alphabet[(rng.next_u64() % alphabet.len() as u64) as usize];
                }
                v
            }
            _ => {
                let cut = (rng.next_u64() % good.len() as u64) as usize;
                good[..cut].to_vec()
            }
        };
        if read_headers_from(&mut Cursor::new(bytes)).is_ok() {
            ok += 1;
        }
    }
    // Some mutations are harmless (comments), most truncations are not.
    assert!(ok > 0 && ok < 3000, "{ok}");
}

fn demo_files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for vol in ["allsky-survey", "deep-fields", "source-catalogue"] {
        let mut names: Vec<_> = std::fs::read_dir(root.join(vol))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        for n in names {
            let bytes = std::fs::read(root.join(vol).join(&n)).unwrap();
            out.push((format!("{vol}/{n}"), bytes));
        }
    }
    out
}

#[test]
fn demo_generation_is_deterministic_and_well_formed() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let t0 = std::time::Instant::now();
    let vols = generate_demo_volumes(a.path()).unwrap();
    eprintln!("demo generation took {:?}", t0.elapsed());
    let vols_b = generate_demo_volumes(b.path()).unwrap();
    let (fa, fb) = (demo_files(a.path()), demo_files(b.path()));
    assert_eq!(fa.len(), 8);
    assert_eq!(
        fa.iter().map(|f| &f.0).collect::<Vec<_>>(),
        fb.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((name, x), (_, y)) in fa.iter().zip(&fb) {
        assert!(x == y, "{name} differs between runs");
        if name.ends_with(".fits") {
            assert_eq!(x.len() % BLOCK_LEN, 0, "{name}");
        }
    }
    // Regenerating in place is fine too.
    generate_demo_volumes(a.path()).unwrap();
    assert_eq!(demo_files(a.path()).len(), 8);

    let names: Vec<&str> = vols.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["allsky-survey", "deep-fields", "source-catalogue"]);
    for (v, vb) in vols.iter().zip(&vols_b) {
        assert_eq!(
            (&v.title, &v.description, &v.files),
            (&vb.title, &vb.description, &vb.files)
        );
        assert_eq!(v.metadata["domain"], "astronomy");
        assert_eq!(v.metadata["mission"], "Insitu Simulated Sky Survey");
        assert_eq!(v.metadata["instrument"], "SKYSIM");
        assert!(v.files.contains(&"README.txt".to_owned()));
        for f in &v.files {
            assert!(v.path.join(f).is_file(), "{f}");
            if !f.ends_with(".fits") {
                continue;
            }
            let hdus = read_headers(&v.path.join(f)).unwrap();
            for h in &hdus {
                assert_eq!(h.get_str("TELESCOP"), Some("INSITU-SIM"), "{f}");
                assert_eq!(h.get_str("INSTRUME"), Some("SKYSIM"), "{f}");
                assert_eq!(h.get_str("ORIGIN"), Some("Insitu demo generator"), "{f}");
                assert!(h.get_str("OBJECT").is_some(), "{f}");
                assert!(h.get_str("DATE-OBS").is_some(), "{f}");
                assert!(
                    h.cards.iter().any(|c| c.keyword == "COMMENT"
                        && c.comment.as_deref().unwrap_or("").contains("SIMULATED")),
                    "{f}"
                );
            }
            if hdus[0].get_i64("NAXIS") != Some(0) {
                assert!(hdus[0].get_f64("RA").is_some() && hdus[0].get_f64("DEC").is_some());
            }
        }
    }

    // The all-sky map.
    let sky = a.path().join("allsky-survey/allsky_skysim_car.fits");
    let h = &read_headers(&sky).unwrap()[0];
    assert_eq!(h.axes(), vec![720, 360]);
    assert_eq!(h.get_str("CTYPE1"), Some("GLON-CAR"));
    assert_eq!(h.get_str("CTYPE2"), Some("GLAT-CAR"));
    assert!(h.get_f64("CDELT1").unwrap() < 0.0);
    // Pixel 1 and 720 are at l = 179.75 and -179.75, rows 1 and 360 at b = -/+89.75.
    let l = |x: f64| {
        h.get_f64("CRVAL1").unwrap()
            + h.get_f64("CDELT1").unwrap() * (x - h.get_f64("CRPIX1").unwrap())
    };
    let b = |y: f64| {
        h.get_f64("CRVAL2").unwrap()
            + h.get_f64("CDELT2").unwrap() * (y - h.get_f64("CRPIX2").unwrap())
    };
    assert_eq!(
        (l(1.0), l(720.0), b(1.0), b(360.0)),
        (179.75, -179.75, -89.75, 89.75)
    );
    let img = read_image_f32(&sky, 0).unwrap();
    let plane = img.pixel(359, 180).unwrap();
    let pole = img.pixel(359, 359).unwrap();
    assert!(plane > pole + 3.0, "plane {plane} vs pole {pole}");
    assert!(img.data.iter().all(|v| v.is_finite()));
}

#[test]
fn catalogue_matches_images_through_the_wcs() {
    let dir = tempfile::tempdir().unwrap();
    generate_demo_volumes(dir.path()).unwrap();
    let cat = read_bintable(
        &dir.path().join("source-catalogue/deepfields_sources.fits"),
        1,
    )
    .unwrap();
    let names: Vec<&str> = cat.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "SOURCE_ID",
            "FIELD",
            "RA",
            "DEC",
            "MAG_G",
            "FLUX",
            "X_IMAGE",
            "Y_IMAGE"
        ]
    );
    let (
        Some(ColumnData::I64(ids)),
        Some(ColumnData::Str { values: fields, .. }),
        Some(ColumnData::F64(ra)),
        Some(ColumnData::F64(dec)),
        Some(ColumnData::F32(mag)),
        Some(ColumnData::F32(flux)),
        Some(ColumnData::F32(xs)),
        Some(ColumnData::F32(ys)),
    ) = (
        cat.column("SOURCE_ID"),
        cat.column("FIELD"),
        cat.column("RA"),
        cat.column("DEC"),
        cat.column("MAG_G"),
        cat.column("FLUX"),
        cat.column("X_IMAGE"),
        cat.column("Y_IMAGE"),
    )
    else {
        panic!("unexpected column types");
    };
    assert_eq!(cat.nrows, 135);
    let mut ids_sorted = ids.clone();
    ids_sorted.dedup();
    assert_eq!(ids_sorted.len(), ids.len());

    let deep = dir.path().join("deep-fields");
    let mut images = std::collections::HashMap::new();
    for entry in std::fs::read_dir(&deep).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "fits") {
            let hdu = read_headers(&p).unwrap().remove(0);
            let object = hdu.get_str("OBJECT").unwrap().to_owned();
            assert_eq!(hdu.get_f64("CRVAL1"), hdu.get_f64("RA"));
            assert_eq!(hdu.get_f64("CRVAL2"), hdu.get_f64("DEC"));
            assert_eq!(hdu.get_str("RADESYS"), Some("ICRS"));
            let wcs = TanWcs::from_hdu(&hdu).unwrap();
            let img = read_image_f32(&p, 0).unwrap();
            images.insert(object, (hdu, wcs, img));
        }
    }
    assert_eq!(images.len(), 3);
    let mut brighter_than_19 = 0;
    for i in 0..cat.nrows {
        let (hdu, wcs, img) = &images[&fields[i]];
        let zp = hdu.get_f64("MAGZP").unwrap();
        let m = zp - 2.5 * f64::from(flux[i]).log10();
        assert!((m - f64::from(mag[i])).abs() < 1e-3);
        if mag[i] < 19.0 {
            brighter_than_19 += 1;
        }
        let (x, y) = wcs.world_to_pixel(ra[i], dec[i]).unwrap();
        assert!(
            (x - f64::from(xs[i])).abs() < 0.01 && (y - f64::from(ys[i])).abs() < 0.01,
            "row {i}: WCS gives ({x}, {y}), catalogue ({}, {})",
            xs[i],
            ys[i]
        );
        // Local maximum: the brightest pixel of the 3x3 box around the
        // position is a strict maximum of its own 3x3 neighbourhood and
        // stands well above the local background (annulus median).
        let (cx, cy) = ((x - 1.0).round() as i64, (y - 1.0).round() as i64);
        let px = |i: i64, j: i64| img.pixel(i as usize, j as usize).unwrap();
        let (mut bx, mut by) = (cx, cy);
        for j in cy - 1..=cy + 1 {
            for i in cx - 1..=cx + 1 {
                if px(i, j) > px(bx, by) {
                    (bx, by) = (i, j);
                }
            }
        }
        for j in by - 1..=by + 1 {
            for i in bx - 1..=bx + 1 {
                if (i, j) != (bx, by) {
                    assert!(px(i, j) < px(bx, by), "row {i}: not a local maximum");
                }
            }
        }
        let mut ring = Vec::new();
        for j in cy - 8..=cy + 8 {
            for i in cx - 8..=cx + 8 {
                let r2 = (i - cx).pow(2) + (j - cy).pow(2);
                if (36..=64).contains(&r2) {
                    ring.push(px(i, j));
                }
            }
        }
        ring.sort_by(f32::total_cmp);
        let background = ring[ring.len() / 2];
        let noise = (background / hdu.get_f64("GAIN").unwrap() as f32).sqrt();
        assert!(
            px(bx, by) > background + 10.0 * noise,
            "row {i}: peak {} vs background {background}",
            px(bx, by)
        );
    }
    // A realistic magnitude distribution: faint stars outnumber bright ones.
    assert!(brighter_than_19 < cat.nrows / 2, "{brighter_than_19}");
}
