//! The FITS reader: headers of every HDU, image pixels, binary-table cells.
//!
//! Every size taken from a header is checked (overflow, and against the file
//! length) before it is used, so malformed input gives an error, never a
//! panic, a huge allocation or an endless loop.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::FitsError;
use crate::card::{BLOCK_LEN, CARD_LEN, Card, Value, parse_card};
use crate::writer::ColumnData;

/// The kind of an HDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HduKind {
    /// The primary HDU (first in the file).
    Primary,
    /// An `IMAGE` extension.
    Image,
    /// A `BINTABLE` extension.
    BinTable,
    /// An ASCII `TABLE` extension.
    AsciiTable,
    /// Any other conforming extension, with its `XTENSION` value.
    Other(String),
}

/// One header-data unit: its header cards and where its data lie.
#[derive(Debug, Clone, PartialEq)]
pub struct Hdu {
    /// Kind of HDU.
    pub kind: HduKind,
    /// All cards of the header, in order, without the `END` card.
    pub cards: Vec<Card>,
    /// Byte offset of the header in the file.
    pub header_offset: u64,
    /// Byte offset of the data in the file.
    pub data_offset: u64,
    /// Length of the data in bytes, without the padding to 2880.
    pub data_len: u64,
}

impl Hdu {
    /// The value of the first card with this keyword.
    pub fn get(&self, keyword: &str) -> Option<&Value> {
        self.cards
            .iter()
            .find(|c| c.keyword == keyword)
            .map(|c| &c.value)
    }

    /// The string value of `keyword`.
    pub fn get_str(&self, keyword: &str) -> Option<&str> {
        self.get(keyword).and_then(Value::as_str)
    }

    /// The numeric value of `keyword` (integer or float) as `f64`.
    pub fn get_f64(&self, keyword: &str) -> Option<f64> {
        self.get(keyword).and_then(Value::as_f64)
    }

    /// The integer value of `keyword`.
    pub fn get_i64(&self, keyword: &str) -> Option<i64> {
        self.get(keyword).and_then(Value::as_i64)
    }

    /// The logical value of `keyword`.
    pub fn get_bool(&self, keyword: &str) -> Option<bool> {
        self.get(keyword).and_then(Value::as_bool)
    }

    /// The image axes (`NAXIS1`, `NAXIS2`, ...).
    pub fn axes(&self) -> Vec<usize> {
        let n = self.get_i64("NAXIS").unwrap_or(0);
        (1..=n)
            .map(|i| {
                self.get_i64(&format!("NAXIS{i}"))
                    .and_then(|v| usize::try_from(v).ok())
                    .unwrap_or(0)
            })
            .collect()
    }
}

/// Reads the headers of every HDU of the FITS file at `path`.
pub fn read_headers(path: &Path) -> Result<Vec<Hdu>, FitsError> {
    let file = File::open(path)?;
    read_headers_from(&mut BufReader::new(file))
}

/// Reads the headers of every HDU from any seekable byte source.
pub fn read_headers_from<R: Read + Seek>(reader: &mut R) -> Result<Vec<Hdu>, FitsError> {
    let len = reader.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Err(FitsError::Truncated {
            offset: 0,
            what: "empty file".to_owned(),
        });
    }
    let mut hdus: Vec<Hdu> = Vec::new();
    let mut offset = 0u64;
    let mut card_index = 0usize;
    let mut block = [0u8; BLOCK_LEN];
    while offset < len {
        let index = hdus.len();
        let primary = index == 0;
        if len - offset < BLOCK_LEN as u64 {
            return Err(FitsError::Truncated {
                offset,
                what: format!(
                    "partial block of {} bytes where HDU {index} should start",
                    len - offset
                ),
            });
        }
        reader.seek(SeekFrom::Start(offset))?;
        reader.read_exact(&mut block)?;
        if primary && !block.starts_with(b"SIMPLE  =") {
            return Err(FitsError::InvalidHeader {
                hdu: 0,
                reason: "not a FITS file: it does not start with SIMPLE =".to_owned(),
            });
        }
        if !primary && !block.starts_with(b"XTENSION=") {
            return Err(FitsError::InvalidHeader {
                hdu: index,
                reason: format!("unexpected bytes at offset {offset}: expected an XTENSION header"),
            });
        }
        let header_offset = offset;
        let mut cards = Vec::new();
        let mut ended = false;
        loop {
            for raw in block.chunks_exact(CARD_LEN) {
                let card = parse_card(raw, card_index)?;
                card_index += 1;
                if card.keyword == "END" {
                    ended = true;
                    break;
                }
                cards.push(card);
            }
            offset += BLOCK_LEN as u64;
            if ended {
                break;
            }
            if len - offset < BLOCK_LEN as u64 {
                return Err(FitsError::MissingEnd { hdu: index });
            }
            reader.read_exact(&mut block)?;
        }
        let mut hdu = Hdu {
            kind: HduKind::Primary,
            cards,
            header_offset,
            data_offset: offset,
            data_len: 0,
        };
        hdu.kind = check_structure(&hdu, index)?;
        hdu.data_len = data_len(&hdu, index)?;
        let data_end = offset
            .checked_add(hdu.data_len)
            .filter(|&end| end <= len)
            .ok_or_else(|| FitsError::Truncated {
                offset,
                what: format!(
                    "HDU {index} declares {} bytes of data but the file has {} left",
                    hdu.data_len,
                    len - offset
                ),
            })?;
        // Tolerate a missing final padding; anything else must be whole blocks.
        offset = data_end
            .div_ceil(BLOCK_LEN as u64)
            .saturating_mul(BLOCK_LEN as u64)
            .min(len);
        hdus.push(hdu);
    }
    Ok(hdus)
}

fn invalid(hdu: usize, reason: impl Into<String>) -> FitsError {
    FitsError::InvalidHeader {
        hdu,
        reason: reason.into(),
    }
}

/// Checks the mandatory keywords and their order; returns the HDU kind.
fn check_structure(hdu: &Hdu, index: usize) -> Result<HduKind, FitsError> {
    let cards = &hdu.cards;
    let at = |i: usize, kw: &str| -> Result<&Value, FitsError> {
        match cards.get(i) {
            Some(c) if c.keyword == kw => Ok(&c.value),
            Some(c) => Err(invalid(
                index,
                format!("card {} should be {kw}, found {:?}", i + 1, c.keyword),
            )),
            None => Err(invalid(index, format!("missing mandatory keyword {kw}"))),
        }
    };
    let kind = if index == 0 {
        if at(0, "SIMPLE")?.as_bool().is_none() {
            return Err(invalid(index, "SIMPLE must be a logical"));
        }
        HduKind::Primary
    } else {
        match at(0, "XTENSION")?.as_str() {
            Some("IMAGE") => HduKind::Image,
            Some("BINTABLE") => HduKind::BinTable,
            Some("TABLE") => HduKind::AsciiTable,
            Some(other) => HduKind::Other(other.to_owned()),
            None => return Err(invalid(index, "XTENSION must be a string")),
        }
    };
    let bitpix = at(1, "BITPIX")?
        .as_i64()
        .ok_or_else(|| invalid(index, "BITPIX must be an integer"))?;
    if ![8, 16, 32, 64, -32, -64].contains(&bitpix) {
        return Err(invalid(index, format!("invalid BITPIX {bitpix}")));
    }
    let naxis = at(2, "NAXIS")?
        .as_i64()
        .filter(|n| (0..=999).contains(n))
        .ok_or_else(|| invalid(index, "NAXIS must be an integer from 0 to 999"))?;
    for i in 1..=naxis {
        let kw = format!("NAXIS{i}");
        // i <= 999, so the index fits.
        let pos = usize::try_from(2 + i).map_err(|_| invalid(index, "NAXIS too large"))?;
        at(pos, &kw)?
            .as_i64()
            .filter(|n| *n >= 0)
            .ok_or_else(|| invalid(index, format!("{kw} must be a non-negative integer")))?;
    }
    if index > 0 {
        for kw in ["PCOUNT", "GCOUNT"] {
            hdu.get_i64(kw)
                .filter(|n| *n >= 0)
                .ok_or_else(|| invalid(index, format!("missing or invalid {kw}")))?;
        }
    }
    if matches!(kind, HduKind::BinTable | HduKind::AsciiTable) {
        if bitpix != 8 || naxis != 2 {
            return Err(invalid(index, "a table needs BITPIX = 8 and NAXIS = 2"));
        }
        hdu.get_i64("TFIELDS")
            .filter(|n| (0..=999).contains(n))
            .ok_or_else(|| invalid(index, "missing or invalid TFIELDS"))?;
    }
    Ok(kind)
}

/// Data size in bytes from BITPIX, NAXISn, PCOUNT and GCOUNT.
fn data_len(hdu: &Hdu, index: usize) -> Result<u64, FitsError> {
    let overflow = || invalid(index, "data size overflows");
    let naxis = hdu.get_i64("NAXIS").unwrap_or(0);
    if naxis == 0 {
        return Ok(0);
    }
    let bitpix = hdu.get_i64("BITPIX").unwrap_or(8);
    let bytes = bitpix.unsigned_abs() / 8;
    let random_groups = hdu.kind == HduKind::Primary
        && hdu.get_bool("GROUPS") == Some(true)
        && hdu.get_i64("NAXIS1") == Some(0);
    let first = if random_groups { 2 } else { 1 };
    let mut count = 1u64;
    for i in first..=naxis {
        let n = hdu
            .get_i64(&format!("NAXIS{i}"))
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| invalid(index, format!("invalid NAXIS{i}")))?;
        count = count.checked_mul(n).ok_or_else(overflow)?;
    }
    let get_u64 = |kw: &str, default: u64| -> Result<u64, FitsError> {
        match hdu.get(kw) {
            None => Ok(default),
            Some(v) => v
                .as_i64()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| invalid(index, format!("invalid {kw}"))),
        }
    };
    let pcount = get_u64("PCOUNT", 0)?;
    let gcount = get_u64("GCOUNT", 1)?;
    count
        .checked_add(pcount)
        .and_then(|c| c.checked_mul(gcount))
        .and_then(|c| c.checked_mul(bytes))
        .ok_or_else(overflow)
}

fn hdu_at(hdus: Vec<Hdu>, index: usize) -> Result<Hdu, FitsError> {
    let count = hdus.len();
    hdus.into_iter()
        .nth(index)
        .ok_or(FitsError::NoSuchHdu { index, count })
}

fn read_data(path: &Path, hdu: &Hdu) -> Result<Vec<u8>, FitsError> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(hdu.data_offset))?;
    let len = usize::try_from(hdu.data_len).map_err(|_| FitsError::Unsupported {
        what: "data too large for memory".to_owned(),
    })?;
    // The length was checked against the file size in read_headers.
    let mut data = vec![0u8; len];
    file.read_exact(&mut data)?;
    Ok(data)
}

/// Image pixels converted to `f32`, with `BSCALE`/`BZERO` applied and
/// `BLANK` integer pixels as NaN.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageF32 {
    /// `NAXIS1`, `NAXIS2`, ...: `axes[0]` is the width.
    pub axes: Vec<usize>,
    /// Pixels in file order (`NAXIS1` varies fastest; row 0 is FITS `y = 1`).
    pub data: Vec<f32>,
}

impl ImageF32 {
    /// Width (`NAXIS1`).
    pub fn width(&self) -> usize {
        self.axes.first().copied().unwrap_or(0)
    }

    /// Height (`NAXIS2`, 1 for a one-dimensional image).
    pub fn height(&self) -> usize {
        self.axes.get(1).copied().unwrap_or(1)
    }

    /// The pixel at 0-based column `x` and row `y` of the first plane.
    pub fn pixel(&self, x: usize, y: usize) -> Option<f32> {
        if x >= self.width() || y >= self.height() {
            return None;
        }
        self.data.get(y * self.width() + x).copied()
    }
}

/// Reads the image of HDU `hdu_index` (0 = primary) as `f32`. Supports every
/// BITPIX (-32 and 16 are what the writer produces).
pub fn read_image_f32(path: &Path, hdu_index: usize) -> Result<ImageF32, FitsError> {
    let hdu = hdu_at(read_headers(path)?, hdu_index)?;
    if !matches!(hdu.kind, HduKind::Primary | HduKind::Image) || hdu.axes().is_empty() {
        return Err(FitsError::Unsupported {
            what: format!("HDU {hdu_index} is not an image ({:?})", hdu.kind),
        });
    }
    if hdu.get_bool("GROUPS") == Some(true) {
        return Err(FitsError::Unsupported {
            what: "random-groups data".to_owned(),
        });
    }
    let bytes = read_data(path, &hdu)?;
    let bscale = hdu.get_f64("BSCALE").unwrap_or(1.0);
    let bzero = hdu.get_f64("BZERO").unwrap_or(0.0);
    let blank = hdu.get_i64("BLANK");
    let scale = |raw: i64| -> f32 {
        if Some(raw) == blank {
            f32::NAN
        } else {
            #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
            let v = (bzero + bscale * raw as f64) as f32;
            v
        }
    };
    let scale_f = |raw: f64| -> f32 {
        #[allow(clippy::cast_possible_truncation)]
        let v = (bzero + bscale * raw) as f32;
        v
    };
    let identity = bscale == 1.0 && bzero == 0.0;
    let data: Vec<f32> = match hdu.get_i64("BITPIX").unwrap_or(0) {
        8 => bytes.iter().map(|&b| scale(i64::from(b))).collect(),
        16 => bytes
            .chunks_exact(2)
            .map(|c| scale(i64::from(i16::from_be_bytes([c[0], c[1]]))))
            .collect(),
        32 => bytes
            .chunks_exact(4)
            .map(|c| scale(i64::from(i32::from_be_bytes([c[0], c[1], c[2], c[3]]))))
            .collect(),
        64 => bytes
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                scale(i64::from_be_bytes(b))
            })
            .collect(),
        -32 => bytes
            .chunks_exact(4)
            .map(|c| {
                let v = f32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                if identity { v } else { scale_f(f64::from(v)) }
            })
            .collect(),
        -64 => bytes
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                scale_f(f64::from_be_bytes(b))
            })
            .collect(),
        other => {
            return Err(FitsError::Unsupported {
                what: format!("BITPIX {other}"),
            });
        }
    };
    Ok(ImageF32 {
        axes: hdu.axes(),
        data,
    })
}

/// One column read from a binary table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableColumn {
    /// `TTYPEn` (empty if absent).
    pub name: String,
    /// `TUNITn`.
    pub unit: Option<String>,
    /// The cells.
    pub data: ColumnData,
}

/// A binary table read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Number of rows (`NAXIS2`).
    pub nrows: usize,
    /// The columns of supported types (`D`, `E`, `J`, `K`, `nA`).
    pub columns: Vec<TableColumn>,
    /// Names and `TFORMn` of columns skipped because their type is not
    /// supported (vectors, variable-length arrays, complex, bits, ...).
    pub skipped: Vec<(String, String)>,
}

impl Table {
    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnData> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.data)
    }
}

/// Parses a `TFORMn` value into (repeat, type letter).
fn parse_tform(tform: &str) -> Option<(usize, char)> {
    let t = tform.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let repeat = if digits == 0 {
        1
    } else {
        t[..digits].parse().ok()?
    };
    let letter = t[digits..].chars().next()?;
    Some((repeat, letter))
}

/// Reads the binary table of HDU `hdu_index`.
pub fn read_bintable(path: &Path, hdu_index: usize) -> Result<Table, FitsError> {
    let hdu = hdu_at(read_headers(path)?, hdu_index)?;
    if hdu.kind != HduKind::BinTable {
        return Err(FitsError::Unsupported {
            what: format!("HDU {hdu_index} is not a binary table ({:?})", hdu.kind),
        });
    }
    let axes = hdu.axes();
    let (row_len, nrows) = (axes[0], axes[1]);
    let tfields = hdu.get_i64("TFIELDS").unwrap_or(0);
    let bad = |reason: String| invalid(hdu_index, reason);
    let mut layout = Vec::new();
    let mut offset = 0usize;
    for n in 1..=tfields {
        let tform = hdu
            .get_str(&format!("TFORM{n}"))
            .ok_or_else(|| bad(format!("missing TFORM{n}")))?
            .to_owned();
        let (repeat, letter) =
            parse_tform(&tform).ok_or_else(|| bad(format!("invalid TFORM{n} {tform:?}")))?;
        let elem = match letter {
            'L' | 'B' | 'A' => 1,
            'X' => 0,
            'I' => 2,
            'J' | 'E' => 4,
            'K' | 'D' | 'C' | 'P' => 8,
            'M' | 'Q' => 16,
            _ => return Err(bad(format!("unknown TFORM{n} {tform:?}"))),
        };
        let width = if letter == 'X' {
            repeat.div_ceil(8)
        } else {
            repeat
                .checked_mul(elem)
                .ok_or_else(|| bad(format!("TFORM{n} too wide")))?
        };
        let name = hdu
            .get_str(&format!("TTYPE{n}"))
            .unwrap_or_default()
            .to_owned();
        let unit = hdu.get_str(&format!("TUNIT{n}")).map(str::to_owned);
        layout.push((name, unit, tform, repeat, letter, offset, width));
        offset = offset
            .checked_add(width)
            .ok_or_else(|| bad("row too wide".to_owned()))?;
    }
    if offset != row_len {
        return Err(bad(format!(
            "columns add up to {offset} bytes but NAXIS1 = {row_len}"
        )));
    }
    let bytes = read_data(path, &hdu)?;
    let main = bytes.get(..row_len.saturating_mul(nrows)).unwrap_or(&[]);
    let rows = || main.chunks_exact(row_len.max(1)).take(nrows);
    let mut table = Table {
        nrows,
        columns: Vec::new(),
        skipped: Vec::new(),
    };
    for (name, unit, tform, repeat, letter, off, width) in layout {
        let cell = |r: &[u8]| -> [u8; 8] {
            let mut b = [0u8; 8];
            let src = &r[off..off + width.min(8)];
            b[..src.len()].copy_from_slice(src);
            b
        };
        let data = match (letter, repeat) {
            ('D', 1) => ColumnData::F64(rows().map(|r| f64::from_be_bytes(cell(r))).collect()),
            ('K', 1) => ColumnData::I64(rows().map(|r| i64::from_be_bytes(cell(r))).collect()),
            ('E', 1) => ColumnData::F32(
                rows()
                    .map(|r| {
                        let b = cell(r);
                        f32::from_be_bytes([b[0], b[1], b[2], b[3]])
                    })
                    .collect(),
            ),
            ('J', 1) => ColumnData::I32(
                rows()
                    .map(|r| {
                        let b = cell(r);
                        i32::from_be_bytes([b[0], b[1], b[2], b[3]])
                    })
                    .collect(),
            ),
            ('A', w) if w > 0 => ColumnData::Str {
                width: w,
                values: rows()
                    .map(|r| {
                        let s = &r[off..off + w];
                        let end = s.iter().position(|&b| b == 0).unwrap_or(w);
                        String::from_utf8_lossy(&s[..end]).trim_end().to_owned()
                    })
                    .collect(),
            },
            _ => {
                table.skipped.push((name, tform));
                continue;
            }
        };
        table.columns.push(TableColumn { name, unit, data });
    }
    Ok(table)
}
