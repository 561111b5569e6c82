//! The platform's use over time as the API and the operator's console show
//! it: the `from`, `to` and `step` of a request, the series on the wire,
//! and the series drawn as SVG bar charts (labs running, CPU hours,
//! storage), on the server, with no script. Every text is escaped.

use insitu_api::{ErrorCode, UsagePoint, UsageSeries};
use insitu_core::usage::UsagePoint as Point;

use crate::error::ApiFailure;
use crate::time_fmt::rfc3339;

/// A series asked for: Unix seconds, and seconds per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageRange {
    pub from: i64,
    pub to: i64,
    pub step: i64,
}

impl UsageRange {
    /// The last `span` seconds in `steps` steps.
    pub fn last(span: i64, steps: i64, now: i64) -> UsageRange {
        let step = (span / steps).max(1);
        // Steps aligned to the step, the last one holding now.
        let to = (now / step + 1) * step;
        UsageRange {
            from: to - step * steps,
            to,
            step,
        }
    }

    /// `from` and `to` (Unix seconds; default: the last 24 hours) and
    /// `step` (seconds, or a duration such as `5m`, `1h`; default one hour).
    pub fn parse(query: Option<&str>, now: i64) -> Result<UsageRange, ApiFailure> {
        let bad = |m: String| ApiFailure::new(ErrorCode::InvalidQuery, m);
        let (mut from, mut to, mut step) = (None, None, None);
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let seconds = |v: &str| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| bad(format!("{k} must be Unix seconds, not {v:?}")))
            };
            match k.as_ref() {
                "from" => from = Some(seconds(&v)?),
                "to" => to = Some(seconds(&v)?),
                "step" => {
                    let s = match v.trim().parse::<i64>() {
                        Ok(n) => n,
                        Err(_) => insitu_domain::datalab::parse_duration(&v)
                            .ok()
                            .and_then(|s| i64::try_from(s).ok())
                            .ok_or_else(|| {
                                bad(format!(
                                    "step must be seconds or a duration such as 5m, not {v:?}"
                                ))
                            })?,
                    };
                    step = Some(s);
                }
                other => {
                    return Err(bad(format!(
                        "unknown query parameter {other:?}: expected from, to or step"
                    )));
                }
            }
        }
        let to = to.unwrap_or(now);
        Ok(UsageRange {
            from: from.unwrap_or(to.saturating_sub(86_400)),
            to,
            step: step.unwrap_or(3600),
        })
    }
}

/// The series on the wire.
pub fn series(range: UsageRange, points: &[Point]) -> UsageSeries {
    UsageSeries {
        from: range.from,
        to: range.to,
        step_seconds: range.step,
        points: points
            .iter()
            .map(|p| UsagePoint {
                at: rfc3339(p.at),
                samples: p.samples,
                labs_running: p.labs_running,
                cpu_hours: p.cpu_hours,
                storage_bytes: p.storage_bytes,
            })
            .collect(),
    }
}

/// XML text of `s`, safe in content and in attribute values.
fn escape(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 150.0;
const LEFT: f64 = 70.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 22.0;

/// One bar chart: a bar per step with a value, the largest value on the
/// axis, the first and last step's times below.
fn chart(
    id: &str,
    title: &str,
    values: &[Option<f64>],
    label: impl Fn(f64) -> String,
    times: (&str, &str),
) -> String {
    let max = values.iter().flatten().fold(0.0f64, |m, v| m.max(*v));
    let plot_w = WIDTH - LEFT - 10.0;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let n = values.len().max(1) as f64;
    let bar_w = plot_w / n;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"{id}\" class=\"usage-chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{t}\">\
         <title>{t}</title>\
         <text x=\"{LEFT}\" y=\"15\" font-size=\"13\" font-weight=\"600\" fill=\"#1f2937\">{t}</text>\
         <line x1=\"{LEFT}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#9ca3af\"/>\
         <line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{y0}\" stroke=\"#9ca3af\"/>\
         <text x=\"{lx}\" y=\"{ty}\" font-size=\"11\" text-anchor=\"end\" fill=\"#4b5563\">{top}</text>\
         <text x=\"{lx}\" y=\"{y0}\" font-size=\"11\" text-anchor=\"end\" fill=\"#4b5563\">0</text>",
        t = escape(title),
        y0 = TOP + plot_h,
        x1 = LEFT + plot_w,
        lx = LEFT - 6.0,
        ty = TOP + 9.0,
        top = escape(&label(max)),
    );
    for (i, v) in values.iter().enumerate() {
        let Some(v) = v else { continue };
        let h = if max > 0.0 { v / max * plot_h } else { 0.0 };
        // A step with a sample shows, even at zero.
        let h = h.max(1.0);
        svg.push_str(&format!(
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"#2563eb\"><title>{l}</title></rect>",
            x = LEFT + i as f64 * bar_w + bar_w * 0.1,
            y = TOP + plot_h - h,
            w = (bar_w * 0.8).max(0.5),
            l = escape(&label(*v)),
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{LEFT}\" y=\"{y}\" font-size=\"11\" fill=\"#4b5563\">{a}</text>\
         <text x=\"{x1}\" y=\"{y}\" font-size=\"11\" text-anchor=\"end\" fill=\"#4b5563\">{b}</text></svg>",
        y = HEIGHT - 6.0,
        x1 = LEFT + plot_w,
        a = escape(times.0),
        b = escape(times.1),
    ));
    svg
}

fn bytes(b: f64) -> String {
    insitu_domain::datalab::format_bytes(b as u64)
}

/// The three charts of a series.
pub fn svg(points: &[Point]) -> String {
    let first = points.first().map(|p| rfc3339(p.at)).unwrap_or_default();
    let last = points.last().map(|p| rfc3339(p.at)).unwrap_or_default();
    let times = (first.as_str(), last.as_str());
    let labs: Vec<Option<f64>> = points
        .iter()
        .map(|p| p.labs_running.map(|l| l as f64))
        .collect();
    let cpu: Vec<Option<f64>> = points.iter().map(|p| p.cpu_hours).collect();
    let storage: Vec<Option<f64>> = points
        .iter()
        .map(|p| p.storage_bytes.map(|b| b as f64))
        .collect();
    [
        chart(
            "usage-labs",
            "Labs running",
            &labs,
            |v| format!("{v:.0}"),
            times,
        ),
        chart(
            "usage-cpu",
            "CPU hours",
            &cpu,
            |v| format!("{v:.3} h"),
            times,
        ),
        chart("usage-storage", "Workspace storage", &storage, bytes, times),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_with_defaults_and_refuse_the_unknown() {
        let r = UsageRange::parse(None, 100_000).unwrap();
        assert_eq!((r.from, r.to, r.step), (13_600, 100_000, 3600));
        let r = UsageRange::parse(Some("from=10&to=70&step=1m"), 0).unwrap();
        assert_eq!((r.from, r.to, r.step), (10, 70, 60));
        let r = UsageRange::parse(Some("step=30"), 0).unwrap();
        assert_eq!(r.step, 30);
        for q in ["from=yesterday", "step=fortnight", "zone=x"] {
            let e = UsageRange::parse(Some(q), 0).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidQuery, "{q}");
        }
        let r = UsageRange::last(3600, 48, 10_000);
        assert_eq!((r.step, r.to - r.from), (75, 3600));
        assert!(r.from <= 10_000 && 10_000 < r.to);
    }

    #[test]
    fn charts_draw_a_bar_per_step_with_a_sample() {
        let p = |at, labs: Option<u64>| Point {
            at,
            samples: u64::from(labs.is_some()),
            labs_running: labs,
            cpu_hours: labs.map(|l| l as f64 / 10.0),
            storage_bytes: labs.map(|l| l * 1024),
        };
        let out = svg(&[p(0, Some(2)), p(60, None), p(120, Some(0))]);
        assert_eq!(out.matches("<svg").count(), 3);
        assert_eq!(out.matches("class=\"bar\"").count(), 6);
        assert!(!out.contains("<script"));
    }
}
