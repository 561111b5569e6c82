//! `insitu-fits`: a small, pure-Rust FITS (Flexible Image Transport System)
//! writer and header reader, plus the generator of the simulated demo data
//! volumes used by the platform's setup. It depends on nothing of ours (only
//! `thiserror`) and does no network I/O: it only reads and writes local files.
//!
//! * Writer ([`FitsWriter`], [`create`]): primary images (`BITPIX` -32 and
//!   16), `IMAGE` extensions and `BINTABLE` extensions (columns `D`, `E`,
//!   `J`, `K`, `nA`), laid out per FITS 4.0 (80-character cards, 2880-byte
//!   blocks, big-endian data, mandatory keywords in order).
//! * Reader ([`read_headers`], [`read_image_f32`], [`read_bintable`]):
//!   headers of every HDU as typed cards, image pixels, table cells.
//!   Malformed input yields a [`FitsError`], never a panic.
//! * Demo data ([`generate_demo_volumes`]): an all-sky map, three deep-field
//!   images with a TAN WCS and the catalogue of their stars, all clearly
//!   marked as simulated, byte-identical on every run.
//! * Sky ([`CelestialWcs`]): where an image lies, from its header's WCS
//!   (`TAN`, `SIN`, all-sky `CAR`; equatorial or Galactic axes), in ICRS.

mod card;
mod demo;
mod reader;
mod rng;
mod sky;
mod wcs;
mod writer;

#[cfg(test)]
mod tests;

pub use card::{BLOCK_LEN, CARD_LEN, Card, Value, format_card, validate_keyword};
pub use demo::{DemoVolume, INSTRUME, MISSION, ORIGIN, TELESCOP, generate_demo_volumes};
pub use reader::{
    Hdu, HduKind, ImageF32, Table, TableColumn, read_bintable, read_headers, read_headers_from,
    read_image_f32,
};
pub use sky::{CelestialWcs, Frame, Projection, galactic_to_icrs};
pub use wcs::TanWcs;
pub use writer::{Column, ColumnData, FitsWriter, Header, Pixels, create};

/// Errors raised by the FITS writer, reader and demo generator.
#[derive(Debug, thiserror::Error)]
pub enum FitsError {
    /// An underlying I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A keyword that is not 1 to 8 characters from `A-Z 0-9 _ -`.
    #[error("invalid FITS keyword {0:?}: 1 to 8 characters from A-Z, 0-9, '_' and '-'")]
    InvalidKeyword(String),
    /// A structural keyword that the writer emits itself.
    #[error("keyword {0} is written by the FITS writer itself and cannot be set")]
    ReservedKeyword(String),
    /// A value or comment that cannot be written in a header card.
    #[error("invalid value for {keyword}: {reason}")]
    InvalidValue {
        /// The keyword.
        keyword: String,
        /// Why.
        reason: String,
    },
    /// Writer misuse: wrong data size, HDU order, column lengths.
    #[error("invalid FITS writer use: {0}")]
    Usage(String),
    /// A header card that cannot be parsed.
    #[error("bad header card #{card} ({text:?}): {reason}")]
    BadCard {
        /// 0-based index of the card in the file.
        card: usize,
        /// The card text (lossy).
        text: String,
        /// Why.
        reason: String,
    },
    /// A header whose mandatory keywords are missing, misplaced or invalid.
    #[error("invalid header in HDU {hdu}: {reason}")]
    InvalidHeader {
        /// 0-based HDU index.
        hdu: usize,
        /// Why.
        reason: String,
    },
    /// A header without `END` card before the end of the file.
    #[error("HDU {hdu} has no END card before the end of the file")]
    MissingEnd {
        /// 0-based HDU index.
        hdu: usize,
    },
    /// The file ends before the data its headers announce.
    #[error("truncated FITS file at byte {offset}: {what}")]
    Truncated {
        /// Byte offset where the problem was found.
        offset: u64,
        /// What is missing.
        what: String,
    },
    /// An HDU index past the last HDU.
    #[error("no HDU {index}: the file has {count}")]
    NoSuchHdu {
        /// Requested 0-based index.
        index: usize,
        /// Number of HDUs in the file.
        count: usize,
    },
    /// Valid FITS this crate does not handle.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What.
        what: String,
    },
}
