//! The platform's Virtual Observatory face: an IVOA Simple Cone Search
//! (1.03) endpoint over the datasets of the data volumes the caller may
//! see, answering VOTables, so TOPCAT, Aladin or astropy's pyvo can query
//! the platform's holdings. Errors are VOTables too, with `QUERY_STATUS`
//! `ERROR` and the stable error code.

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use insitu_api::ErrorCode;
use insitu_core::Principal;
use insitu_search::{Cone, RequestError, votable};

use crate::error::ApiFailure;
use crate::state::AppState;

/// The VOTable media type.
pub const VOTABLE: &str = "application/x-votable+xml";

/// The most datasets one answer holds unless `MAXREC` asks for fewer.
pub const MAX_RECORDS: usize = 10_000;

/// A failure as a VOTable error document, with the code's HTTP status.
pub fn failure(f: &ApiFailure) -> Response {
    let status =
        StatusCode::from_u16(f.code().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(VOTABLE))],
        votable::error(f.code().as_str(), &f.0.message),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"insitu\""),
        );
    }
    resp
}

/// `RA`, `DEC`, `SR` (degrees) and `MAXREC`, names in any case; other
/// parameters (`VERB`, `RESPONSEFORMAT`, …) are ignored, as the standard
/// asks.
fn parameters(query: Option<&str>) -> Result<(Cone, usize), ApiFailure> {
    let (mut ra, mut dec, mut sr, mut maxrec) = (None, None, None, MAX_RECORDS);
    let bad = |e: RequestError| ApiFailure::new(ErrorCode::InvalidCone, e.to_string());
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let v = v.trim();
        match k.to_ascii_uppercase().as_str() {
            "RA" => ra = Some(insitu_search::request::degrees("RA", v).map_err(bad)?),
            "DEC" => dec = Some(insitu_search::request::degrees("DEC", v).map_err(bad)?),
            "SR" => sr = Some(insitu_search::request::degrees("SR", v).map_err(bad)?),
            "MAXREC" => {
                maxrec = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n <= MAX_RECORDS)
                    .ok_or_else(|| {
                        ApiFailure::new(
                            ErrorCode::InvalidQuery,
                            format!(
                                "MAXREC must be a whole number from 0 to {MAX_RECORDS}, not {v:?}"
                            ),
                        )
                    })?;
            }
            _ => {}
        }
    }
    let (Some(ra), Some(dec), Some(sr)) = (ra, dec, sr) else {
        return Err(ApiFailure::new(
            ErrorCode::InvalidCone,
            "a cone search needs RA, DEC and SR, in degrees",
        ));
    };
    let cone = Cone::new(ra, dec, sr).map_err(|e| bad(e.into()))?;
    Ok((cone, maxrec))
}

/// `GET /api/v1/scs?RA=…&DEC=…&SR=…`: the datasets whose footprint (or,
/// without one, whose centre) lies within `SR` degrees of the position,
/// nearest first.
pub async fn cone_search(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Response {
    let (cone, maxrec) = match parameters(q.as_deref()) {
        Ok(x) => x,
        Err(f) => return failure(&f),
    };
    let viewer = match s.platform.viewer(&p).await {
        Ok(v) => v,
        Err(e) => return failure(&ApiFailure::from(e)),
    };
    match s.platform.search().cone(&viewer, cone, maxrec).await {
        Ok((hits, more)) => {
            let about = format!(
                "Datasets of the Insitu data volumes within {} deg of RA {} Dec {} (ICRS)",
                cone.radius, cone.centre.ra, cone.centre.dec
            );
            (
                [(header::CONTENT_TYPE, HeaderValue::from_static(VOTABLE))],
                votable::results(&hits, more, &about),
            )
                .into_response()
        }
        Err(e) => failure(&ApiFailure::from(e)),
    }
}
