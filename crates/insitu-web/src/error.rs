//! How failures leave the server: every API error is JSON carrying a stable
//! code from `insitu_api::ErrorCode`. The extractors here (JSON bodies, path
//! parameters, forms, raw bodies) map every way a request can be wrong onto
//! one of those codes: as JSON on the API, as the error page on pages.
//! Handlers never use axum's own extractors that answer in plain text.

use axum::extract::rejection::{BytesRejection, FormRejection, JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use insitu_api::{ApiError, ErrorCode};
use insitu_core::Error as CoreError;

/// An API error response.
#[derive(Debug)]
pub struct ApiFailure(pub ApiError);

pub type ApiResult<T> = Result<T, ApiFailure>;

impl ApiFailure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiFailure(ApiError::new(code, message))
    }

    pub fn code(&self) -> ErrorCode {
        self.0.code
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, axum::Json(self.0)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"insitu\""),
            );
        }
        resp
    }
}

/// The one place a service's error becomes a public error code. What the
/// user may read is the variant's text; what they may not (database and
/// internal failures) is logged and answered with a fixed message.
impl From<CoreError> for ApiFailure {
    fn from(e: CoreError) -> Self {
        let code = match &e {
            CoreError::DatalabNotFound(_) => ErrorCode::DatalabNotFound,
            CoreError::VolumeNotFound(_) => ErrorCode::VolumeNotFound,
            CoreError::InvalidQuery { .. } => ErrorCode::InvalidQuery,
            CoreError::InvalidSearch(r) => search_code(r.problem()),
            CoreError::LabNotFound(_) => ErrorCode::LabNotFound,
            CoreError::LabNotRunning { .. } => ErrorCode::LabNotRunning,
            CoreError::LabQuotaExceeded { .. } => ErrorCode::LabQuotaExceeded,
            CoreError::InvalidQuota { .. } | CoreError::InvalidComputeQuota(_) => {
                ErrorCode::InvalidQuota
            }
            CoreError::ResourceQuotaExceeded { .. } => ErrorCode::ResourceQuotaExceeded,
            CoreError::GpuUnavailable { .. } => ErrorCode::GpuUnavailable,
            CoreError::Placement(p) => match p {
                insitu_core::zones::PlacementError::UnknownZone(_) => ErrorCode::ZoneNotFound,
                _ => ErrorCode::VolumesInOtherZones,
            },
            CoreError::ZoneNeedsCredential { .. } => ErrorCode::ZoneNeedsCredential,
            CoreError::ZoneLimitExceeded { .. } => ErrorCode::ZoneLimitExceeded,
            CoreError::Scheduler(_) => ErrorCode::SchedulerUnavailable,
            CoreError::DatalabNotLaunchable { .. } => ErrorCode::DatalabNotLaunchable,
            CoreError::OpensNoFiles { .. } | CoreError::InvalidLaunchFile(_) => {
                ErrorCode::InvalidLaunchFile
            }
            CoreError::InvalidCredentials => ErrorCode::InvalidCredentials,
            CoreError::AccountDisabled => ErrorCode::AccountDisabled,
            CoreError::AccountGone => ErrorCode::Unauthenticated,
            CoreError::ProviderNotLinked { .. } => ErrorCode::OidcAccountNotLinked,
            CoreError::ProviderEmailUnverified { .. } => ErrorCode::OidcEmailUnverified,
            CoreError::InvalidEmail(_) => ErrorCode::InvalidEmail,
            CoreError::InvalidUsageRange { .. } => ErrorCode::InvalidQuery,
            CoreError::EmailTaken(_) => ErrorCode::EmailTaken,
            CoreError::RateLimited { .. } | CoreError::PasswordChecksBusy => ErrorCode::RateLimited,
            CoreError::WeakPassword(_) => ErrorCode::WeakPassword,
            CoreError::InvalidUsername { .. } => ErrorCode::InvalidUsername,
            CoreError::UsernameTaken(_) => ErrorCode::UsernameTaken,
            CoreError::UserNotFound(_) => ErrorCode::UserNotFound,
            CoreError::LastAdmin => ErrorCode::LastAdmin,
            CoreError::TokenName | CoreError::TokenExpiry => ErrorCode::InvalidRequest,
            CoreError::TokenNotFound => ErrorCode::TokenNotFound,
            CoreError::InvalidApplication(_) => ErrorCode::InvalidApplication,
            CoreError::InvalidAccessMessage(_) => ErrorCode::InvalidAccessMessage,
            CoreError::AccessRateLimited { .. } => ErrorCode::AccessRateLimited,
            CoreError::ApplicationsClosed => ErrorCode::ApplicationsClosed,
            CoreError::UsernameClaimed(_) => ErrorCode::UsernameTaken,
            CoreError::AlreadyApplied => ErrorCode::AlreadyApplied,
            CoreError::WaitingListFull { .. } => ErrorCode::WaitingListFull,
            CoreError::AccessRequestNotFound => ErrorCode::AccessRequestNotFound,
            CoreError::AccessRequestDecided(_) => ErrorCode::AccessRequestDecided,
            CoreError::AdmissionCapReached { .. } => ErrorCode::AdmissionCapReached,
            CoreError::AccessNotApproved(_) => ErrorCode::AccessNotApproved,
            CoreError::AccessPasswordSet => ErrorCode::AccessPasswordSet,
            CoreError::TeamNotFound(_) => ErrorCode::TeamNotFound,
            CoreError::InvalidTeamName { .. } => ErrorCode::InvalidTeamName,
            CoreError::TeamNameTaken(_) => ErrorCode::TeamNameTaken,
            CoreError::NotTeamOwner(_) => ErrorCode::NotTeamOwner,
            CoreError::InviteYourself => ErrorCode::InvalidInvitation,
            CoreError::UserDisabled(_) => ErrorCode::UserDisabled,
            CoreError::AlreadyInTeam { .. } => ErrorCode::AlreadyInTeam,
            CoreError::NotInTeam { .. } => ErrorCode::NotInTeam,
            CoreError::LastOwner(_) => ErrorCode::LastOwner,
            CoreError::ShareWithYourself => ErrorCode::InvalidShare,
            CoreError::ShareNotFound(_) => ErrorCode::ShareNotFound,
            CoreError::PipelineNotFound(_) | CoreError::PipelineVersionNotFound { .. } => {
                ErrorCode::PipelineNotFound
            }
            CoreError::InvalidPipeline(_) => ErrorCode::InvalidPipeline,
            CoreError::InvalidCwl(_) => ErrorCode::InvalidCwl,
            CoreError::PipelineVersionExists { .. } => ErrorCode::PipelineVersionExists,
            CoreError::InvalidJob(_) => ErrorCode::InvalidJob,
            CoreError::RunNotFound(_) => ErrorCode::RunNotFound,
            CoreError::RunQueueFull { .. } => ErrorCode::RunQuotaExceeded,
            CoreError::RunNotResumable { .. } => ErrorCode::RunNotResumable,
            CoreError::RunNotEnded { .. } | CoreError::RunHasNo { .. } => ErrorCode::RunNotEnded,
            CoreError::NoEngine => ErrorCode::EngineUnavailable,
            CoreError::DevlabNotFound(_) => ErrorCode::DevlabNotFound,
            CoreError::NotDevlabOwner(_) => ErrorCode::NotDevlabOwner,
            CoreError::DevlabExists(_) => ErrorCode::DevlabExists,
            CoreError::InvalidDevlabName { .. } => ErrorCode::InvalidDevlabName,
            CoreError::InvalidTemplate(_) => ErrorCode::InvalidTemplate,
            CoreError::InvalidDefinition(_) => ErrorCode::InvalidDefinition,
            CoreError::InvalidLicense { .. } => ErrorCode::InvalidLicense,
            CoreError::InvalidSource(_) => ErrorCode::InvalidContainerfile,
            CoreError::BuildRunning { .. } => ErrorCode::BuildRunning,
            CoreError::BuildNotFound { .. } => ErrorCode::BuildNotFound,
            CoreError::BuildNotReady { .. } => ErrorCode::BuildNotReady,
            CoreError::ImageRemoved { .. } => ErrorCode::ImageRemoved,
            CoreError::AlreadySubmitted { .. } => ErrorCode::AlreadySubmitted,
            CoreError::VersionPublished { .. } => ErrorCode::VersionPublished,
            CoreError::NotPending { .. } => ErrorCode::SubmissionNotPending,
            CoreError::OwnSubmission => ErrorCode::OwnSubmission,
            CoreError::ReasonRequired | CoreError::StopReasonRequired => ErrorCode::ReasonRequired,
            CoreError::VersionNotFound { .. } => ErrorCode::VersionNotFound,
            CoreError::UnknownUsers(_) => ErrorCode::UserNotFound,
            CoreError::InvalidImport(_) => ErrorCode::InvalidImport,
            CoreError::ImportTooLarge { .. } => ErrorCode::PayloadTooLarge,
            CoreError::Store(_) if e.is_unavailable() => {
                tracing::error!(error = %e, "database unavailable");
                return ApiFailure::new(
                    ErrorCode::DatabaseUnavailable,
                    "the database cannot be reached; try again shortly",
                );
            }
            CoreError::Store(_) => {
                tracing::error!(error = %e, "store error");
                return internal();
            }
            CoreError::PasswordHash(_)
            | CoreError::SearchIndex(_)
            | CoreError::TeamWorkspace(_)
            | CoreError::WorkspaceDir(_)
            | CoreError::WorkspaceStorage(_)
            | CoreError::Podman(_)
            | CoreError::Io(_)
            | CoreError::NoLabProxy
            | CoreError::Task(_)
            | CoreError::Poisoned
            | CoreError::EngineFailed(_) => {
                tracing::error!(error = %e, "internal error");
                return internal();
            }
        };
        ApiFailure::new(code, e.to_string())
    }
}

/// The code of each kind of bad search.
pub fn search_code(p: insitu_search::Problem) -> ErrorCode {
    use insitu_search::Problem;
    match p {
        Problem::Parameter => ErrorCode::InvalidQuery,
        Problem::UnknownFacet => ErrorCode::UnknownFacet,
        Problem::TooLong => ErrorCode::QueryTooLong,
        Problem::Cone => ErrorCode::InvalidCone,
        Problem::Syntax => ErrorCode::InvalidSearchSyntax,
    }
}

fn internal() -> ApiFailure {
    ApiFailure::new(
        ErrorCode::Internal,
        "internal error; the server log has the details",
    )
}

/// A JSON body whose every failure (syntax, unknown field, wrong type, wrong
/// content type, too large) becomes an `ApiFailure` with its own code.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiFailure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiFailure {
    match r {
        JsonRejection::JsonDataError(e) => {
            ApiFailure::new(ErrorCode::InvalidRequest, e.body_text())
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiFailure::new(ErrorCode::MalformedJson, e.body_text())
        }
        JsonRejection::MissingJsonContentType(_) => ApiFailure::new(
            ErrorCode::UnsupportedMediaType,
            "send the body with Content-Type: application/json",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiFailure::new(ErrorCode::PayloadTooLarge, "the request body is too large")
        }
        other => ApiFailure::new(ErrorCode::MalformedJson, other.body_text()),
    }
}

/// Path parameters; a value that cannot be read is `invalid_path`.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(r) => Err(path_rejection(&r)),
        }
    }
}

fn path_rejection(r: &PathRejection) -> ApiFailure {
    ApiFailure::new(
        ErrorCode::InvalidPath,
        match r {
            PathRejection::FailedToDeserializePathParams(_) => {
                "a parameter in the URL's path is not valid UTF-8"
            }
            _ => "the URL's path cannot be read",
        },
    )
}

/// What a page does with a failure: the error page with the code's status.
pub struct PageFailure(pub ApiFailure);

impl IntoResponse for PageFailure {
    fn into_response(self) -> Response {
        crate::error_page::failure_page(self.0)
    }
}

/// Path parameters of a page; a value that cannot be read is the error
/// page with `invalid_path`.
pub struct PagePath<T>(pub T);

impl<S, T> FromRequestParts<S> for PagePath<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = PageFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(PagePath(v)),
            Err(r) => Err(PageFailure(path_rejection(&r))),
        }
    }
}

/// A page's form; a body that is not the form is the error page with the
/// matching code.
pub struct PageForm<T>(pub T);

impl<S, T> FromRequest<S> for PageForm<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = PageFailure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Form::<T>::from_request(req, state).await {
            Ok(axum::extract::Form(v)) => Ok(PageForm(v)),
            Err(r) => Err(PageFailure(form_rejection(&r))),
        }
    }
}

fn form_rejection(r: &FormRejection) -> ApiFailure {
    match r {
        FormRejection::InvalidFormContentType(_) => ApiFailure::new(
            ErrorCode::UnsupportedMediaType,
            "send the form as application/x-www-form-urlencoded",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiFailure::new(ErrorCode::PayloadTooLarge, "the form is too large")
        }
        _ => ApiFailure::new(
            ErrorCode::InvalidRequest,
            "the form lacks a field or has one of the wrong kind",
        ),
    }
}

/// A page's raw body (a form read field by field); too large a body is the
/// error page with `payload_too_large`.
pub struct PageBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for PageBody {
    type Rejection = PageFailure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => Ok(PageBody(b)),
            Err(r) => Err(PageFailure(bytes_rejection(&r))),
        }
    }
}

fn bytes_rejection(r: &BytesRejection) -> ApiFailure {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiFailure::new(ErrorCode::PayloadTooLarge, "the form is too large")
    } else {
        ApiFailure::new(ErrorCode::InvalidRequest, "the request body cannot be read")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_errors_keep_their_text_but_internal_ones_are_not_described() {
        let f = ApiFailure::from(CoreError::LastAdmin);
        assert_eq!(f.code(), ErrorCode::LastAdmin);
        assert_eq!(f.0.message, "this is the last active administrator");
        let f = ApiFailure::from(CoreError::Poisoned);
        assert_eq!(f.code(), ErrorCode::Internal);
        assert_eq!(
            f.0.message,
            "internal error; the server log has the details"
        );
    }
}
