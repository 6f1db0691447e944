//! tyntec 2FA API v1 under `/2fa/v1`: OTPs and 2FA applications, authenticated by `apiKey`.

pub mod accounts;
pub mod applications;
pub mod error;
mod extract;
pub mod otp;
pub mod wire;

use tower_http::catch_panic::CatchPanicLayer;

use axum::{
    extract::{DefaultBodyLimit, State},
    http::StatusCode,
    routing::{get, post},
    Json, Router,
};

use self::{
    error::TyntecError,
    extract::{ApiKey, JsonBody, Params, Path},
    wire::{ApplicationRequest, ApplicationResponse, EventResponse, OtpResponse},
};
use crate::{
    domain::{self, now_ms, OtpCode, PhoneNumber, PinLength, Via},
    error::{Error, Resource},
    state::AppState,
    storage::OtpFilter,
};

type Reply<T> = Result<Json<T>, TyntecError>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/otp", post(send_otp).get(list_otps))
        .route(
            "/otp/{otp_id}",
            get(otp_status).post(resend_otp).delete(delete_otp),
        )
        .route("/otp/{otp_id}/check", post(check_otp))
        .route("/otp/{otp_id}/events", get(otp_events))
        .route(
            "/application",
            get(list_applications).post(create_application),
        )
        .route(
            "/application/",
            get(list_applications).post(create_application),
        )
        .route(
            "/application/{application_id}",
            get(get_application)
                .post(edit_application)
                .delete(delete_application),
        )
        .route(
            "/application/{application_id}/language",
            post(set_language).delete(delete_language),
        )
        .fallback(|| async { TyntecError(Error::NotFound(Resource::Route)) })
        .method_not_allowed_fallback(|| async { TyntecError(Error::MethodNotAllowed) })
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(CatchPanicLayer::custom(error::panic_response))
}

/// tyntec: POST /2fa/v1/otp
async fn send_otp(State(s): State<AppState>, key: ApiKey, p: Params) -> Reply<OtpResponse> {
    let number = p
        .get("number")
        .ok_or_else(|| Error::invalid("number", "is required"))?;
    let req = otp::SendRequest {
        number: PhoneNumber::parse(number, p.get("country"))?,
        application_id: p.get("applicationId").map(str::to_string),
        text: p.parse("text", |t| applications::template_text("text", t))?,
        pin_length: p.int("pinLength")?.map(PinLength::new).transpose()?,
        otp_code: p.parse("otpCode", |c| OtpCode::parse("otpCode", c))?,
        via: p.parse("via", Via::parse)?.unwrap_or(Via::Auto),
        language: p.parse("language", domain::parse_language)?,
        sender: p.parse("sender", |v| applications::sender_id("sender", v))?,
        caller: p.parse("caller", |v| applications::sender_id("caller", v))?,
        reference_id: p.get("referenceId").map(str::to_string),
    };
    let row = otp::send(&s, &key.account_id, req).await?;
    Ok(Json(OtpResponse::from_row(&row, now_ms())))
}

/// Extension: GET /2fa/v1/otp?number=&otpStatus=&limit=
async fn list_otps(State(s): State<AppState>, key: ApiKey, p: Params) -> Reply<Vec<OtpResponse>> {
    let filter = OtpFilter {
        number: p
            .get("number")
            .map(|n| PhoneNumber::parse(n, p.get("country")))
            .transpose()?
            .map(|n| n.as_str().to_string()),
        status: p.parse("otpStatus", |v| {
            domain::OtpStatus::parse(&v.to_ascii_uppercase())
                .map(|st| st.as_str().to_string())
                .ok_or_else(|| Error::invalid("otpStatus", "unknown status"))
        })?,
        limit: p.int("limit")?.unwrap_or(100).clamp(1, 1000),
    };
    let rows = otp::list(&s, &key.account_id, filter).await?;
    let now = now_ms();
    Ok(Json(
        rows.iter().map(|r| OtpResponse::from_row(r, now)).collect(),
    ))
}

/// tyntec: GET /2fa/v1/otp/{otpId}
async fn otp_status(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
) -> Reply<OtpResponse> {
    let row = otp::status(&s, &key.account_id, &id).await?;
    Ok(Json(OtpResponse::from_row(&row, now_ms())))
}

/// tyntec: POST /2fa/v1/otp/{otpId} (resend)
async fn resend_otp(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
    p: Params,
) -> Reply<OtpResponse> {
    let req = otp::ResendRequest {
        via: p.parse("via", Via::parse)?.unwrap_or(Via::Auto),
        sender: p.parse("sender", |v| applications::sender_id("sender", v))?,
        caller: p.parse("caller", |v| applications::sender_id("caller", v))?,
    };
    let row = otp::resend(&s, &key.account_id, &id, req).await?;
    Ok(Json(OtpResponse::from_row(&row, now_ms())))
}

/// tyntec: DELETE /2fa/v1/otp/{otpId}
async fn delete_otp(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
) -> Reply<OtpResponse> {
    let row = otp::delete(&s, &key.account_id, &id).await?;
    Ok(Json(OtpResponse::from_row(&row, now_ms())))
}

/// tyntec: POST /2fa/v1/otp/{otpId}/check?otpCode=
async fn check_otp(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
    p: Params,
) -> Result<(StatusCode, Json<OtpResponse>), TyntecError> {
    let code = p
        .get("otpCode")
        .ok_or_else(|| Error::invalid("otpCode", "is required"))?;
    let row = otp::check(&s, &key.account_id, &id, code).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(OtpResponse::from_row(&row, now_ms())),
    ))
}

/// tyntec: GET /2fa/v1/otp/{otpId}/events
async fn otp_events(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
) -> Reply<Vec<EventResponse>> {
    let events = otp::events(&s, &key.account_id, &id).await?;
    Ok(Json(events.into_iter().map(EventResponse::from).collect()))
}

/// tyntec: GET /2fa/v1/application/
async fn list_applications(
    State(s): State<AppState>,
    key: ApiKey,
) -> Reply<Vec<ApplicationResponse>> {
    let apps = applications::list(&s, &key.account_id).await?;
    Ok(Json(
        apps.into_iter().map(ApplicationResponse::from).collect(),
    ))
}

/// tyntec: POST /2fa/v1/application/
async fn create_application(
    State(s): State<AppState>,
    key: ApiKey,
    JsonBody(req): JsonBody<ApplicationRequest>,
) -> Reply<ApplicationResponse> {
    let app = applications::create(&s, &key.account_id, req).await?;
    Ok(Json(app.into()))
}

/// tyntec: GET /2fa/v1/application/{applicationId}
async fn get_application(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
) -> Reply<ApplicationResponse> {
    let app = applications::get(&s, &key.account_id, &id).await?;
    Ok(Json(app.into()))
}

/// tyntec: POST /2fa/v1/application/{applicationId} (edit)
async fn edit_application(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ApplicationRequest>,
) -> Reply<ApplicationResponse> {
    Ok(Json(
        applications::edit(&s, &key.account_id, &id, req)
            .await?
            .into(),
    ))
}

/// tyntec: DELETE /2fa/v1/application/{applicationId}
async fn delete_application(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
) -> Reply<ApplicationResponse> {
    Ok(Json(
        applications::delete(&s, &key.account_id, &id).await?.into(),
    ))
}

/// tyntec: POST /2fa/v1/application/{applicationId}/language — `language` and `template`
/// as query parameters or JSON body.
async fn set_language(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
    p: Params,
) -> Reply<ApplicationResponse> {
    let language = p
        .get("language")
        .ok_or_else(|| Error::invalid("language", "is required"))?;
    let template = p
        .get("template")
        .or_else(|| p.get("text"))
        .ok_or_else(|| Error::invalid("template", "is required"))?;
    let app = applications::set_template(&s, &key.account_id, &id, language, template).await?;
    Ok(Json(app.into()))
}

/// tyntec: DELETE /2fa/v1/application/{applicationId}/language?language=
async fn delete_language(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
    p: Params,
) -> Reply<ApplicationResponse> {
    let language = p
        .get("language")
        .ok_or_else(|| Error::invalid("language", "is required"))?;
    let app = applications::delete_template(&s, &key.account_id, &id, language).await?;
    Ok(Json(app.into()))
}
