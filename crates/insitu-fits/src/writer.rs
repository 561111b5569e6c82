//! The FITS writer: primary HDU, IMAGE and BINTABLE extensions.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::FitsError;
use crate::card::{BLOCK_LEN, CARD_LEN, Card, Value, format_card, validate_keyword};

/// The user part of a header: every card except the mandatory structural
/// keywords, which the writer emits itself in the required order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Header {
    cards: Vec<Card>,
}

/// Whether `keyword` is one the writer emits itself.
fn is_reserved(keyword: &str) -> bool {
    const FIXED: [&str; 10] = [
        "SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "TFIELDS", "END",
        "GROUPS",
    ];
    if FIXED.contains(&keyword) {
        return true;
    }
    ["NAXIS", "TTYPE", "TFORM", "TUNIT"].iter().any(|prefix| {
        keyword
            .strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

impl Header {
    /// An empty header.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `keyword` to `value` (replacing an earlier card with the same
    /// keyword), with an optional comment (empty string: none).
    ///
    /// Errors on an invalid keyword, a structural keyword the writer emits
    /// itself (`SIMPLE`, `BITPIX`, `NAXISn`, `TTYPEn`, ...), or a value that
    /// cannot be written (non-ASCII text, NaN, too long for one card).
    pub fn set(
        &mut self,
        keyword: &str,
        value: impl Into<Value>,
        comment: &str,
    ) -> Result<&mut Self, FitsError> {
        validate_keyword(keyword)?;
        if is_reserved(keyword) {
            return Err(FitsError::ReservedKeyword(keyword.to_owned()));
        }
        if matches!(keyword, "COMMENT" | "HISTORY") {
            return Err(FitsError::InvalidValue {
                keyword: keyword.to_owned(),
                reason: "use Header::comment / Header::history for commentary cards".to_owned(),
            });
        }
        let card = Card {
            keyword: keyword.to_owned(),
            value: value.into(),
            comment: (!comment.is_empty()).then(|| comment.to_owned()),
        };
        format_card(&card)?;
        if let Some(existing) = self.cards.iter_mut().find(|c| c.keyword == keyword) {
            *existing = card;
        } else {
            self.cards.push(card);
        }
        Ok(self)
    }

    /// Adds `COMMENT` cards holding `text`, word-wrapped at 72 characters.
    pub fn comment(&mut self, text: &str) -> Result<&mut Self, FitsError> {
        self.commentary("COMMENT", text)
    }

    /// Adds `HISTORY` cards holding `text`, word-wrapped at 72 characters.
    pub fn history(&mut self, text: &str) -> Result<&mut Self, FitsError> {
        self.commentary("HISTORY", text)
    }

    fn commentary(&mut self, keyword: &str, text: &str) -> Result<&mut Self, FitsError> {
        let mut new_cards = Vec::new();
        for line in wrap(text, CARD_LEN - 8) {
            let card = Card {
                keyword: keyword.to_owned(),
                value: Value::None,
                comment: Some(line),
            };
            format_card(&card)?;
            new_cards.push(card);
        }
        self.cards.extend(new_cards);
        Ok(self)
    }

    /// The cards, in order.
    pub fn cards(&self) -> &[Card] {
        &self.cards
    }

    /// The value of `keyword`, if set.
    pub fn get(&self, keyword: &str) -> Option<&Value> {
        self.cards
            .iter()
            .find(|c| c.keyword == keyword)
            .map(|c| &c.value)
    }
}

/// Greedy word wrap into lines of at most `width` bytes (words longer than
/// `width` are split).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let mut word = word;
        while word.len() > width {
            if !current.is_empty() {
                lines.push(std::mem::take(&mut current));
            }
            let cut = (1..=width)
                .rev()
                .find(|&i| word.is_char_boundary(i))
                .unwrap_or(word.len());
            lines.push(word[..cut].to_owned());
            word = &word[cut..];
        }
        if current.is_empty() {
            current.push_str(word);
        } else if current.len() + 1 + word.len() <= width {
            current.push(' ');
            current.push_str(word);
        } else {
            lines.push(std::mem::replace(&mut current, word.to_owned()));
        }
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

/// Pixel data of an image HDU.
#[derive(Debug, Clone, Copy)]
pub enum Pixels<'a> {
    /// `BITPIX = -32`: IEEE 754 single precision.
    F32(&'a [f32]),
    /// `BITPIX = 16`: signed 16-bit integers.
    I16(&'a [i16]),
}

impl Pixels<'_> {
    fn bitpix(&self) -> i64 {
        match self {
            Pixels::F32(_) => -32,
            Pixels::I16(_) => 16,
        }
    }

    fn len(&self) -> usize {
        match self {
            Pixels::F32(d) => d.len(),
            Pixels::I16(d) => d.len(),
        }
    }

    fn to_be_bytes(self) -> Vec<u8> {
        match self {
            Pixels::F32(d) => d.iter().flat_map(|v| v.to_be_bytes()).collect(),
            Pixels::I16(d) => d.iter().flat_map(|v| v.to_be_bytes()).collect(),
        }
    }
}

/// The cells of one binary-table column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// `TFORM = 'D'`: 64-bit floats.
    F64(Vec<f64>),
    /// `TFORM = 'E'`: 32-bit floats.
    F32(Vec<f32>),
    /// `TFORM = 'J'`: 32-bit integers.
    I32(Vec<i32>),
    /// `TFORM = 'K'`: 64-bit integers.
    I64(Vec<i64>),
    /// `TFORM = 'nA'`: fixed-width ASCII strings of `width` bytes, padded
    /// with spaces (trailing spaces are dropped when reading).
    Str {
        /// Width in bytes (the `n` of `nA`), at least 1.
        width: usize,
        /// The values, each at most `width` ASCII bytes.
        values: Vec<String>,
    },
}

impl ColumnData {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::F64(v) => v.len(),
            ColumnData::F32(v) => v.len(),
            ColumnData::I32(v) => v.len(),
            ColumnData::I64(v) => v.len(),
            ColumnData::Str { values, .. } => values.len(),
        }
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes per row of this column.
    pub fn width(&self) -> usize {
        match self {
            ColumnData::F64(_) | ColumnData::I64(_) => 8,
            ColumnData::F32(_) | ColumnData::I32(_) => 4,
            ColumnData::Str { width, .. } => *width,
        }
    }

    /// The `TFORMn` value.
    pub fn tform(&self) -> String {
        match self {
            ColumnData::F64(_) => "D".to_owned(),
            ColumnData::F32(_) => "E".to_owned(),
            ColumnData::I32(_) => "J".to_owned(),
            ColumnData::I64(_) => "K".to_owned(),
            ColumnData::Str { width, .. } => format!("{width}A"),
        }
    }

    fn write_cell(&self, row: usize, out: &mut Vec<u8>) {
        match self {
            ColumnData::F64(v) => out.extend_from_slice(&v[row].to_be_bytes()),
            ColumnData::F32(v) => out.extend_from_slice(&v[row].to_be_bytes()),
            ColumnData::I32(v) => out.extend_from_slice(&v[row].to_be_bytes()),
            ColumnData::I64(v) => out.extend_from_slice(&v[row].to_be_bytes()),
            ColumnData::Str { width, values } => {
                let s = values[row].as_bytes();
                out.extend_from_slice(s);
                out.extend(std::iter::repeat_n(b' ', width - s.len()));
            }
        }
    }
}

/// One binary-table column: name (`TTYPEn`), optional unit (`TUNITn`), cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Column name (`TTYPEn`).
    pub name: String,
    /// Physical unit (`TUNITn`), e.g. `deg`, `mag`, `pix`.
    pub unit: Option<String>,
    /// The cells.
    pub data: ColumnData,
}

impl Column {
    /// A column without unit.
    pub fn new(name: &str, data: ColumnData) -> Self {
        Self {
            name: name.to_owned(),
            unit: None,
            data,
        }
    }

    /// A column with a unit.
    pub fn with_unit(name: &str, unit: &str, data: ColumnData) -> Self {
        Self {
            name: name.to_owned(),
            unit: Some(unit.to_owned()),
            data,
        }
    }
}

/// Writes a FITS file HDU by HDU: first the primary HDU, then extensions.
#[derive(Debug)]
pub struct FitsWriter<W: Write> {
    inner: W,
    hdus: usize,
}

/// Creates (truncates) `path` and returns a writer on it.
pub fn create(path: &Path) -> Result<FitsWriter<BufWriter<File>>, FitsError> {
    Ok(FitsWriter::new(BufWriter::new(File::create(path)?)))
}

fn card(keyword: &str, value: impl Into<Value>, comment: &str) -> Card {
    Card {
        keyword: keyword.to_owned(),
        value: value.into(),
        comment: (!comment.is_empty()).then(|| comment.to_owned()),
    }
}

fn usage(msg: impl Into<String>) -> FitsError {
    FitsError::Usage(msg.into())
}

fn to_i64(n: usize) -> Result<i64, FitsError> {
    i64::try_from(n).map_err(|_| usage("size too large"))
}

impl<W: Write> FitsWriter<W> {
    /// A writer on any byte sink.
    pub fn new(inner: W) -> Self {
        Self { inner, hdus: 0 }
    }

    /// Number of HDUs written so far.
    pub fn hdu_count(&self) -> usize {
        self.hdus
    }

    /// Writes a primary HDU without data (`NAXIS = 0`), as used before table
    /// extensions.
    pub fn write_primary_header(&mut self, header: &Header) -> Result<(), FitsError> {
        self.expect_primary(true)?;
        let cards = vec![
            card("SIMPLE", true, "conforms to FITS standard"),
            card("BITPIX", 8i64, "array data type"),
            card("NAXIS", 0i64, "number of array dimensions"),
            card("EXTEND", true, "FITS extensions may follow"),
        ];
        self.write_hdu(cards, header, &[])
    }

    /// Writes a primary HDU holding an image. `axes` lists `NAXIS1` (the
    /// fastest-varying axis, i.e. the width), `NAXIS2`, ...
    pub fn write_primary_image(
        &mut self,
        axes: &[usize],
        pixels: Pixels<'_>,
        header: &Header,
    ) -> Result<(), FitsError> {
        self.expect_primary(true)?;
        let mut cards = vec![card("SIMPLE", true, "conforms to FITS standard")];
        cards.extend(image_cards(axes, pixels)?);
        cards.push(card("EXTEND", true, "FITS extensions may follow"));
        self.write_hdu(cards, header, &pixels.to_be_bytes())
    }

    /// Writes an `IMAGE` extension (after the primary HDU).
    pub fn write_image_extension(
        &mut self,
        axes: &[usize],
        pixels: Pixels<'_>,
        header: &Header,
    ) -> Result<(), FitsError> {
        self.expect_primary(false)?;
        let mut cards = vec![card("XTENSION", "IMAGE", "image extension")];
        cards.extend(image_cards(axes, pixels)?);
        cards.push(card("PCOUNT", 0i64, "number of parameters"));
        cards.push(card("GCOUNT", 1i64, "number of groups"));
        self.write_hdu(cards, header, &pixels.to_be_bytes())
    }

    /// Writes a `BINTABLE` extension (after the primary HDU). All columns
    /// must have the same number of rows.
    pub fn write_bintable(&mut self, columns: &[Column], header: &Header) -> Result<(), FitsError> {
        self.expect_primary(false)?;
        if columns.is_empty() || columns.len() > 999 {
            return Err(usage("a binary table needs 1 to 999 columns"));
        }
        let nrows = columns[0].data.len();
        let mut row_len = 0usize;
        for col in columns {
            if col.data.len() != nrows {
                return Err(usage(format!(
                    "column {} has {} rows, expected {nrows}",
                    col.name,
                    col.data.len()
                )));
            }
            if let ColumnData::Str { width, values } = &col.data {
                if *width == 0 {
                    return Err(usage(format!("string column {} has width 0", col.name)));
                }
                if let Some(v) = values
                    .iter()
                    .find(|v| v.len() > *width || !v.bytes().all(|b| (0x20..=0x7e).contains(&b)))
                {
                    return Err(usage(format!(
                        "value {v:?} of column {} is not printable ASCII of at most {width} bytes",
                        col.name
                    )));
                }
            }
            row_len = row_len
                .checked_add(col.data.width())
                .ok_or_else(|| usage("row too wide"))?;
        }
        let mut cards = vec![
            card("XTENSION", "BINTABLE", "binary table extension"),
            card("BITPIX", 8i64, "array data type"),
            card("NAXIS", 2i64, "number of array dimensions"),
            card("NAXIS1", to_i64(row_len)?, "length of a row in bytes"),
            card("NAXIS2", to_i64(nrows)?, "number of rows"),
            card("PCOUNT", 0i64, "size of the heap"),
            card("GCOUNT", 1i64, "one data group"),
            card("TFIELDS", to_i64(columns.len())?, "number of columns"),
        ];
        for (i, col) in columns.iter().enumerate() {
            let n = i + 1;
            cards.push(card(&format!("TTYPE{n}"), col.name.as_str(), ""));
            cards.push(card(&format!("TFORM{n}"), col.data.tform(), ""));
            if let Some(unit) = &col.unit {
                cards.push(card(&format!("TUNIT{n}"), unit.as_str(), ""));
            }
        }
        let mut data = Vec::with_capacity(row_len.saturating_mul(nrows));
        for row in 0..nrows {
            for col in columns {
                col.data.write_cell(row, &mut data);
            }
        }
        self.write_hdu(cards, header, &data)
    }

    /// Flushes and returns the underlying sink. Errors if no HDU was written.
    pub fn finish(mut self) -> Result<W, FitsError> {
        if self.hdus == 0 {
            return Err(usage("no HDU written: a FITS file needs a primary HDU"));
        }
        self.inner.flush()?;
        Ok(self.inner)
    }

    fn expect_primary(&self, primary: bool) -> Result<(), FitsError> {
        match (primary, self.hdus) {
            (true, 0) | (false, 1..) => Ok(()),
            (true, _) => Err(usage("the primary HDU was already written")),
            (false, _) => Err(usage("write the primary HDU before extensions")),
        }
    }

    fn write_hdu(
        &mut self,
        mut cards: Vec<Card>,
        header: &Header,
        data: &[u8],
    ) -> Result<(), FitsError> {
        cards.extend(header.cards().iter().cloned());
        cards.push(card("END", Value::None, ""));
        let mut bytes = Vec::with_capacity(
            (cards.len() * CARD_LEN).div_ceil(BLOCK_LEN) * BLOCK_LEN
                + data.len().div_ceil(BLOCK_LEN) * BLOCK_LEN,
        );
        for c in &cards {
            bytes.extend_from_slice(&format_card(c)?);
        }
        pad(&mut bytes, b' ');
        let header_len = bytes.len();
        bytes.extend_from_slice(data);
        let data_len = bytes.len() - header_len;
        if data_len % BLOCK_LEN != 0 {
            bytes.resize(header_len + data_len.div_ceil(BLOCK_LEN) * BLOCK_LEN, 0);
        }
        self.inner.write_all(&bytes)?;
        self.hdus += 1;
        Ok(())
    }
}

fn pad(bytes: &mut Vec<u8>, fill: u8) {
    let len = bytes.len().div_ceil(BLOCK_LEN) * BLOCK_LEN;
    bytes.resize(len, fill);
}

/// `BITPIX`, `NAXIS`, `NAXISn` for an image, after checking the data size.
fn image_cards(axes: &[usize], pixels: Pixels<'_>) -> Result<Vec<Card>, FitsError> {
    if axes.is_empty() || axes.len() > 999 {
        return Err(usage("an image needs 1 to 999 axes"));
    }
    let count = axes
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .ok_or_else(|| usage("image too large"))?;
    if count != pixels.len() {
        return Err(usage(format!(
            "image axes {axes:?} need {count} pixels, got {}",
            pixels.len()
        )));
    }
    let mut cards = vec![
        card("BITPIX", pixels.bitpix(), "array data type"),
        card("NAXIS", to_i64(axes.len())?, "number of array dimensions"),
    ];
    for (i, &n) in axes.iter().enumerate() {
        cards.push(card(&format!("NAXIS{}", i + 1), to_i64(n)?, ""));
    }
    Ok(cards)
}
