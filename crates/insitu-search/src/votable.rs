//! Cone search answers as IVOA VOTable 1.3 documents, per Simple Cone
//! Search 1.03: one `results` resource holding one table whose columns
//! carry the UCDs the standard requires (`ID_MAIN`, `POS_EQ_RA_MAIN`,
//! `POS_EQ_DEC_MAIN`) and UCD1+ words for the rest; errors as a resource
//! whose `QUERY_STATUS` is `ERROR`.

use std::fmt::Write;

use crate::index::Hit;

const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VOTABLE version=\"1.3\" \
    xmlns=\"http://www.ivoa.net/xml/VOTable/v1.3\" \
    xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n";

/// The columns of an answer: name, datatype, unit, UCD, description.
const COLUMNS: [(&str, &str, &str, &str, &str); 15] = [
    (
        "id",
        "char",
        "",
        "ID_MAIN",
        "The dataset's id: dataset:<volume>/<path>",
    ),
    (
        "ra",
        "double",
        "deg",
        "POS_EQ_RA_MAIN",
        "Right ascension of the dataset's centre (ICRS)",
    ),
    (
        "dec",
        "double",
        "deg",
        "POS_EQ_DEC_MAIN",
        "Declination of the dataset's centre (ICRS)",
    ),
    (
        "distance",
        "double",
        "deg",
        "pos.angDistance",
        "Distance from the cone's centre to the dataset's centre",
    ),
    (
        "extent",
        "double",
        "deg",
        "phys.angSize",
        "Radius of a circle around the centre holding the whole footprint (0 without one)",
    ),
    ("title", "char", "", "meta.title", "Title"),
    (
        "volume",
        "char",
        "",
        "meta.id.parent",
        "Data volume holding the dataset",
    ),
    (
        "file",
        "char",
        "",
        "meta.ref",
        "The file's path in a lab that mounts the volume",
    ),
    ("object", "char", "", "meta.id;src", "Target (OBJECT)"),
    ("mission", "char", "", "instr.obsty", "Mission"),
    ("telescope", "char", "", "instr.tel", "Telescope (TELESCOP)"),
    ("instrument", "char", "", "instr", "Instrument (INSTRUME)"),
    ("filter", "char", "", "instr.filter", "Filter or band"),
    (
        "date_obs",
        "char",
        "",
        "time.start;obs",
        "Start of the observation (ISO 8601, UTC)",
    ),
    (
        "exptime",
        "double",
        "s",
        "time.duration;obs.exposure",
        "Exposure time",
    ),
];

/// Escapes text for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn number(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map(|x| format!("{x}"))
        .unwrap_or_default()
}

/// The answer to a cone search: the hits, nearest first; `overflow` when
/// more matched than were returned.
pub fn results(hits: &[Hit], overflow: bool, description: &str) -> String {
    let mut s = String::from(HEAD);
    s.push_str("<RESOURCE type=\"results\">\n");
    let status = if overflow { "OVERFLOW" } else { "OK" };
    let _ = writeln!(s, "<INFO name=\"QUERY_STATUS\" value=\"{status}\"/>");
    let _ = writeln!(
        s,
        "<TABLE name=\"results\">\n<DESCRIPTION>{}</DESCRIPTION>",
        escape(description)
    );
    for (name, datatype, unit, ucd, about) in COLUMNS {
        let _ = write!(
            s,
            "<FIELD name=\"{name}\" ID=\"{name}\" datatype=\"{datatype}\""
        );
        if datatype == "char" {
            s.push_str(" arraysize=\"*\"");
        }
        if !unit.is_empty() {
            let _ = write!(s, " unit=\"{unit}\"");
        }
        let _ = writeln!(
            s,
            " ucd=\"{ucd}\"><DESCRIPTION>{}</DESCRIPTION></FIELD>",
            escape(about)
        );
    }
    s.push_str("<DATA><TABLEDATA>\n");
    for h in hits {
        let a = &h.asset;
        let centre = a.shape.as_ref().map(|sh| sh.centre);
        let cells = [
            a.id(),
            number(centre.map(|c| c.ra)),
            number(centre.map(|c| c.dec)),
            number(h.distance),
            number(a.shape.as_ref().map(crate::sky::Shape::bounding_radius)),
            a.title.clone(),
            a.volume.clone().unwrap_or_default(),
            a.file.clone().unwrap_or_default(),
            a.object.clone().unwrap_or_default(),
            a.mission.join(", "),
            a.telescope.clone().unwrap_or_default(),
            a.instrument.join(", "),
            a.filter.join(", "),
            a.date_obs.clone().unwrap_or_default(),
            number(a.exptime),
        ];
        s.push_str("<TR>");
        for c in cells {
            let _ = write!(s, "<TD>{}</TD>", escape(&c));
        }
        s.push_str("</TR>\n");
    }
    s.push_str("</TABLEDATA></DATA>\n</TABLE>\n</RESOURCE>\n</VOTABLE>\n");
    s
}

/// An error answer: `QUERY_STATUS` `ERROR` with the stable code and the
/// message, and the `Error` INFO older clients look for.
pub fn error(code: &str, message: &str) -> String {
    let text = escape(&format!("{code}: {message}"));
    format!(
        "{HEAD}<RESOURCE type=\"results\">\n<INFO name=\"QUERY_STATUS\" value=\"ERROR\">{text}</INFO>\n\
         <INFO ID=\"Error\" name=\"Error\" value=\"{text}\"/>\n<INFO name=\"ERROR_CODE\" value=\"{}\"/>\n</RESOURCE>\n</VOTABLE>\n",
        escape(code)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot; ");
        let e = error("invalid_cone", "RA <0");
        assert!(
            e.contains("value=\"ERROR\">invalid_cone: RA &lt;0</INFO>"),
            "{e}"
        );
    }
}
