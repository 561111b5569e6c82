//! Public error codes. Codes are stable: clients match on `code`, never on
//! `message`. Add codes; never rename or reuse one.

use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($($variant:ident = ($code:literal, $status:literal, $meaning:literal),)*) => {
        /// Every error the API returns, as a stable snake_case code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $(#[doc = $meaning] $variant,)*
            /// A code this client does not know (sent by a newer server).
            #[serde(other)]
            Unknown,
        }

        impl ErrorCode {
            /// Every code the server may send, in table order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                    ErrorCode::Unknown => "unknown",
                }
            }

            /// The HTTP status the server answers with.
            pub fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                    ErrorCode::Unknown => 500,
                }
            }

            /// What the code means, for documentation.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $meaning,)*
                    ErrorCode::Unknown => "A code this client does not know.",
                }
            }
        }
    };
}

error_codes! {
    MalformedJson = ("malformed_json", 400, "The request body is not valid JSON."),
    InvalidRequest = ("invalid_request", 422, "The JSON is valid but a field is missing, unknown or of the wrong type."),
    InvalidQuery = ("invalid_query", 400, "A query-string parameter is unknown or malformed."),
    UnknownFacet = ("unknown_facet", 400, "A search names a facet the discovery portal does not have (type, property, domain, mission, instrument, filter, year, volume)."),
    QueryTooLong = ("query_too_long", 400, "The search text is longer than the server accepts (500 characters)."),
    InvalidSearchSyntax = ("invalid_search_syntax", 400, "The search text is not a valid query: unbalanced quotes or parentheses, an unknown field, or nesting too deep."),
    InvalidCone = ("invalid_cone", 400, "A cone's RA, Dec or radius is missing, not a number or out of range (RA 0 to 360, Dec -90 to 90, radius 0 to 180 degrees)."),
    InvalidPath = ("invalid_path", 400, "A parameter in the URL's path cannot be read (it is not valid UTF-8)."),
    UnsupportedMediaType = ("unsupported_media_type", 415, "The request body must be sent as application/json."),
    PayloadTooLarge = ("payload_too_large", 413, "The request body is larger than the server accepts."),
    Unauthenticated = ("unauthenticated", 401, "No valid session cookie or API token was sent, or it has expired."),
    InvalidCredentials = ("invalid_credentials", 401, "The username or password is wrong."),
    Forbidden = ("forbidden", 403, "The caller's role does not allow this action."),
    CsrfFailed = ("csrf_failed", 403, "A cookie-authenticated request that changes state lacked a valid CSRF token."),
    AmbiguousSession = ("ambiguous_session", 400, "The request carries the session cookie twice (another site may have planted one); clear the site's cookies and log in again."),
    AccountDisabled = ("account_disabled", 403, "The account has been disabled by an administrator."),
    NotFound = ("not_found", 404, "No such route."),
    MethodNotAllowed = ("method_not_allowed", 405, "The route exists but not for this HTTP method."),
    DatalabNotFound = ("datalab_not_found", 404, "No datalab with this name is in the catalogue."),
    VolumeNotFound = ("volume_not_found", 404, "No data volume with this name is in the catalogue."),
    UserNotFound = ("user_not_found", 404, "No user with this username exists."),
    TokenNotFound = ("token_not_found", 404, "No API token with this id belongs to the caller."),
    UsernameTaken = ("username_taken", 409, "A user with this username already exists."),
    InvalidUsername = ("invalid_username", 422, "The username breaks the naming rules (2-32 lowercase letters, digits, '-', '_')."),
    WeakPassword = ("weak_password", 422, "The new password is too short (at least 10 characters) or equals the username."),
    LastAdmin = ("last_admin", 409, "The change would leave the platform without an active administrator."),
    LabNotFound = ("lab_not_found", 404, "No lab with this id belongs to the caller."),
    LabNotRunning = ("lab_not_running", 409, "The lab is not running, so it cannot be opened."),
    LabQuotaExceeded = ("lab_quota_exceeded", 409, "The caller already runs as many labs as their quota allows; stop one first."),
    InvalidQuota = ("invalid_quota", 422, "A quota is out of range: a workspace at least 16 MiB and at most 1 PiB, CPU a positive number (null sets the configured default back)."),
    ResourceQuotaExceeded = ("resource_quota_exceeded", 409, "The caller's running labs with this one would hold more CPU, memory or GPUs than their quota allows; stop one first."),
    DatalabNotLaunchable = ("datalab_not_launchable", 409, "This datalab cannot be launched on this platform (yet)."),
    InvalidLaunchFile = ("invalid_launch_file", 422, "The file to open is not an absolute path inside the mount path of one of the volumes to mount, does not exist there, or the datalab opens no files."),
    GpuUnavailable = ("gpu_unavailable", 409, "The datalab needs more GPUs than the datazone has free."),
    ZoneNotFound = ("zone_not_found", 404, "No datazone with this name is configured."),
    VolumesInOtherZones = ("volumes_in_other_zones", 409, "No datazone holds every volume asked for (or the zone chosen lacks some); the message says which volume is in which zone."),
    ZoneNeedsCredential = ("zone_needs_credential", 409, "The datalab takes no secret, so it cannot run in a datazone whose labs are reachable from a cluster's network."),
    ZoneLimitExceeded = ("zone_limit_exceeded", 409, "The datalab asks for more CPU, memory or GPUs than one lab may have in the datazone."),
    SchedulerUnavailable = ("scheduler_unavailable", 503, "The datazone's scheduler (Slurm) could not be reached or refused the job; try again later."),
    TeamNotFound = ("team_not_found", 404, "The caller is neither a member of a team with this name nor invited to it."),
    InvalidTeamName = ("invalid_team_name", 422, "The team name breaks the naming rules (1-64 lowercase letters, digits, '-', '_', starting with a letter)."),
    TeamNameTaken = ("team_name_taken", 409, "A team with this name already exists."),
    NotTeamOwner = ("not_team_owner", 403, "Only an owner of the team may invite, remove others or change roles."),
    InvalidInvitation = ("invalid_invitation", 422, "A user cannot invite themself."),
    UserDisabled = ("user_disabled", 409, "The user named is disabled: they cannot be invited into a team or be shared a lab with."),
    AlreadyInTeam = ("already_in_team", 409, "The user is already a member of the team, or invited."),
    NotInTeam = ("not_in_team", 404, "The user named is neither a member of the team nor invited."),
    InvalidShare = ("invalid_share", 422, "A lab cannot be shared with its owner."),
    ShareNotFound = ("share_not_found", 404, "The lab is not shared with the user named."),
    LastOwner = ("last_owner", 409, "The change would leave the team without an owner: make another member an owner first."),
    PipelineNotFound = ("pipeline_not_found", 404, "No pipeline (or version) with this name is in the catalogue, or it is another user's."),
    InvalidPipeline = ("invalid_pipeline", 422, "A pipeline's details are wrong: name, version, licence (SPDX), keywords, file names or sizes."),
    InvalidCwl = ("invalid_cwl", 422, "The CWL does not pass the engine's checks; the message names file:line:column and what was expected."),
    PipelineVersionExists = ("pipeline_version_exists", 409, "The pipeline already has this version; versions never change, so a new one needs a new number."),
    InvalidJob = ("invalid_job", 422, "The job order does not fit the pipeline: an unknown or missing input, a value of the wrong type, or a file outside the caller's workspace and the data volumes."),
    RunNotFound = ("run_not_found", 404, "No run with this id belongs to the caller."),
    RunQuotaExceeded = ("run_quota_exceeded", 409, "The caller already has as many runs waiting as the queue allows; wait or cancel some."),
    RunNotResumable = ("run_not_resumable", 409, "Only a failed or cancelled run resumes."),
    RunNotEnded = ("run_not_ended", 409, "The run has not ended yet (or left nothing of this kind), so this is not available."),
    EngineUnavailable = ("engine_unavailable", 503, "No CWL engine is installed on this platform, so pipelines can be neither checked nor run."),
    DevlabNotFound = ("devlab_not_found", 404, "No datalab in development with this name is the caller's, or shared with them."),
    NotDevlabOwner = ("not_devlab_owner", 403, "Only the datalab's developer may change, build, share, submit or export it."),
    DevlabExists = ("devlab_exists", 409, "A datalab with this name exists already (in the catalogue or in development)."),
    InvalidDevlabName = ("invalid_devlab_name", 422, "The datalab's name breaks the naming rules (1-64 lowercase letters, digits, '-', '_', starting with a letter)."),
    InvalidTemplate = ("invalid_template", 422, "No template of this name: web-tool, desktop-tool or python."),
    InvalidDefinition = ("invalid_definition", 422, "The datalab's definition has problems; the message lists each field and reason."),
    InvalidLicense = ("invalid_license", 422, "The licence is not one of the offered SPDX licences (GET /api/v1/devlabs/licenses)."),
    InvalidContainerfile = ("invalid_containerfile", 422, "The Containerfile or its files break the rules: base images only, no RUN --mount, no parser directives, small plain text files."),
    BuildRunning = ("build_running", 409, "A build of this datalab has not ended yet."),
    BuildNotFound = ("build_not_found", 404, "The datalab has no build with this number."),
    BuildNotReady = ("build_not_ready", 409, "Only a successful build can be submitted, exported or launched."),
    ImageRemoved = ("image_removed", 409, "The build's image was removed to save space (only recent and published builds keep theirs); build again."),
    AlreadySubmitted = ("already_submitted", 409, "This build was submitted for publication already."),
    VersionPublished = ("version_published", 409, "This version of the datalab is published already; raise the version and build again."),
    SubmissionNotPending = ("submission_not_pending", 409, "The build is not waiting for a moderator's decision."),
    OwnSubmission = ("own_submission", 403, "A moderator does not review their own datalab."),
    ReasonRequired = ("reason_required", 422, "A rejection, or an operator's stop of a lab, needs a reason, which the developer or the lab's user reads."),
    VersionNotFound = ("version_not_found", 404, "The datalab has no version the caller may launch under this name (published versions for everyone; builds for its developer and the users it is shared with, never a rejected one for others)."),
    InvalidImport = ("invalid_import", 422, "The upload is not an export of an Insitu datalab, or its definition, source or image does not pass this platform's checks."),
    InvalidApplication = ("invalid_application", 422, "An application for access lacks a field, has one too long or holding control characters, an e-mail address that is not name@domain.example, or a username breaking the naming rules."),
    AlreadyApplied = ("already_applied", 409, "An application with this e-mail address waits already; its status link shows where it stands."),
    ApplicationsClosed = ("applications_closed", 403, "The platform takes no applications for access at present."),
    WaitingListFull = ("waiting_list_full", 503, "The waiting list holds as many applications as the platform keeps; try again later."),
    AccessRateLimited = ("access_rate_limited", 429, "Too many applications from this address or with this e-mail address, or too many status links naming no request from this address; wait before trying again."),
    AccessRequestNotFound = ("access_request_not_found", 404, "No access request has this id, or this status link."),
    AccessRequestDecided = ("access_request_decided", 409, "The access request was approved or denied already."),
    AdmissionCapReached = ("admission_cap_reached", 409, "The platform holds as many accounts as its admission cap allows: the approval is refused and the applicant keeps waiting."),
    InvalidAccessMessage = ("invalid_access_message", 422, "A moderator's message is missing (a denial needs one), longer than 2000 characters or holds control characters."),
    AccessNotApproved = ("access_not_approved", 409, "Only an approved applicant sets their account's password through the status link."),
    AccessPasswordSet = ("access_password_set", 409, "The applicant set their account's password already; they log in."),
    RateLimited = ("rate_limited", 429, "Too many failed logins for this account from this address, from this address or for this account, or too many passwords being checked at once; wait before trying again."),
    DatabaseUnavailable = ("database_unavailable", 503, "The platform's database cannot be reached."),
    TooManyConnections = ("too_many_connections", 503, "The server holds as many connections as it allows, in all or from this client address; the connection is closed: retry shortly."),
    Internal = ("internal", 500, "An unexpected server error; the log holds the details."),
    NotOnLabSocket = ("not_on_lab_socket", 403, "A lab's API socket serves only the pipelines and runs API; the rest of the platform is reached at its address."),
    OidcProviderNotFound = ("oidc_provider_not_found", 404, "No OpenID provider of this name is configured for login."),
    OidcProviderUnavailable = ("oidc_provider_unavailable", 502, "The OpenID provider cannot be reached, or answered its discovery document, keys or token exchange wrongly; try again later."),
    OidcStateInvalid = ("oidc_state_invalid", 400, "The provider's answer does not belong to a login this browser started (unknown, expired, used already or another browser's state); start the login again."),
    OidcTokenInvalid = ("oidc_token_invalid", 401, "The provider's ID token failed a check: signature, key, issuer, audience, expiry or nonce."),
    OidcLoginRefused = ("oidc_login_refused", 403, "The OpenID provider refused the login or reported an error."),
    OidcAccountNotLinked = ("oidc_account_not_linked", 403, "No account is linked to the provider's identity, and this provider does not create accounts on first login."),
    OidcEmailUnverified = ("oidc_email_unverified", 403, "The provider has not verified the e-mail address, so it cannot link the identity to the account that has the address."),
    InvalidEmail = ("invalid_email", 422, "The e-mail address is not of the form local@domain."),
    EmailTaken = ("email_taken", 409, "Another account has this e-mail address."),
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApiError {
    pub code: ErrorCode,
    /// Human-readable explanation; may change between versions.
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code.as_str())
    }
}

impl std::error::Error for ApiError {}

/// The error-code table as Markdown, for the documentation.
pub fn error_table_markdown() -> String {
    let mut s = String::from("| code | HTTP status | meaning |\n|---|---|---|\n");
    for c in ErrorCode::ALL {
        s.push_str(&format!(
            "| `{}` | {} | {} |\n",
            c.as_str(),
            c.status(),
            c.meaning()
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_serialize_as_themselves() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "duplicate {}", c.as_str());
            assert!(
                c.as_str()
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch == '_')
            );
            let json = serde_json_string(*c);
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert!((400..600).contains(&c.status()));
        }
    }

    fn serde_json_string(c: ErrorCode) -> String {
        serde_json::to_string(&c).unwrap()
    }

    #[test]
    fn the_documented_table_is_the_real_one() {
        let doc = include_str!("../../../docs/api-errors.md");
        assert!(
            doc.ends_with(&error_table_markdown()),
            "docs/api-errors.md is stale: regenerate it with `insitu errors`"
        );
    }

    #[test]
    fn unknown_codes_from_a_newer_server_still_parse() {
        let e: ApiError = serde_json::from_str(r#"{"code":"brand_new","message":"m"}"#).unwrap();
        assert_eq!(e.code, ErrorCode::Unknown);
    }
}
