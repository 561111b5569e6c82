//! Observation dates as FITS writes them (`DATE-OBS`: `YYYY-MM-DD` with an
//! optional `Thh:mm:ss[.sss]`) and as query parameters give them.

/// The year and the Unix time (seconds, UTC) of an ISO 8601 date or date
/// and time; `None` when it is not one.
pub fn parse(s: &str) -> Option<(i32, i64)> {
    let s = s.trim();
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.trim_end_matches('Z'))),
        None => (s, None),
    };
    let mut d = date.split('-');
    let year: i32 = d.next()?.parse().ok()?;
    let month: u8 = d.next()?.parse().ok()?;
    let day: u8 = d.next()?.parse().ok()?;
    if d.next().is_some() || !(1..=9999).contains(&year) {
        return None;
    }
    let month = time::Month::try_from(month).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let (mut h, mut m, mut sec) = (0u8, 0u8, 0u8);
    if let Some(t) = time {
        let mut parts = t.split(':');
        h = parts.next()?.parse().ok()?;
        m = parts.next().unwrap_or("0").parse().ok()?;
        let secs = parts.next().unwrap_or("0");
        sec = secs.split('.').next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
    }
    let at = date.with_hms(h, m, sec).ok()?.assume_utc().unix_timestamp();
    Some((year, at))
}

/// The ISO 8601 date and time (UTC, seconds) of a Modified Julian Date.
pub fn from_mjd(mjd: f64) -> Option<String> {
    if !mjd.is_finite() || !(0.0..=2_973_483.0).contains(&mjd) {
        return None;
    }
    // MJD 40587 is 1970-01-01.
    #[allow(clippy::cast_possible_truncation)]
    let secs = ((mjd - 40_587.0) * 86_400.0).round() as i64;
    let t = time::OffsetDateTime::from_unix_timestamp(secs).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_parse_and_nonsense_does_not() {
        assert_eq!(parse("1970-01-02"), Some((1970, 86_400)));
        assert_eq!(parse("2023-04-05T06:07:08.5"), Some((2023, 1_680_674_828)));
        assert_eq!(parse("2023-04-05T06:07:08Z"), Some((2023, 1_680_674_828)));
        for bad in [
            "",
            "2023",
            "2023-13-01",
            "2023-02-30",
            "20x3-01-01",
            "2023-01-01T25:00",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(from_mjd(40_588.5).as_deref(), Some("1970-01-02T12:00:00"));
        assert_eq!(from_mjd(f64::NAN), None);
    }
}
