//! The JSON API under `/api/`: the pages' operations for scripts, with the
//! same session cookie and the same CSRF rule (state-changing requests
//! carry the session's token in `X-CSRF-Token`). Documented in
//! `docs/webmail-api.md`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::compose::Draft;
use crate::guard::{User, session_cookie};
use crate::listing::ListQuery;
use crate::render;
use crate::sending::Outgoing;
use crate::serve::Peer;
use crate::{App, WebError};

/// Every `/api/` route.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/session", get(whoami).post(sign_in).delete(sign_out))
        .route("/api/folders", get(folders).post(create_folder))
        .route("/api/folders/{id}", axum::routing::patch(rename_folder).delete(delete_folder))
        .route("/api/folders/{id}/messages", get(list))
        .route("/api/folders/{id}/messages/actions", post(act))
        .route("/api/folders/{id}/empty", post(empty))
        .route("/api/folders/{id}/messages/{uid}", get(message))
        .route("/api/send", post(send))
        .route("/api/drafts", post(save_draft))
}

/// An API failure: its status and `{"error": "..."}`.
pub struct ApiError(WebError);

impl From<WebError> for ApiError {
    fn from(e: WebError) -> ApiError {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(&self.0)
    }
}

/// The JSON form of an error.
pub fn error_response(e: &WebError) -> Response {
    if e.status().is_server_error() {
        tracing::warn!(error = %e, "webmail API request failed");
    }
    (e.status(), Json(json!({ "error": e.to_string() }))).into_response()
}

type ApiResult<T> = Result<T, ApiError>;

/// A JSON body; one that does not parse is a 422 with the JSON error
/// every other failure has.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Body<T>, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(ApiError(WebError::Invalid(rejection.body_text()))),
        }
    }
}

/// Checks the `X-CSRF-Token` header of a state-changing request.
fn csrf(user: &User, headers: &HeaderMap) -> Result<(), WebError> {
    user.check_csrf(headers.get("x-csrf-token").and_then(|v| v.to_str().ok()))
}

#[derive(Serialize)]
struct SessionInfo {
    address: String,
    csrf: String,
}

async fn whoami(user: User) -> Json<SessionInfo> {
    Json(SessionInfo { address: user.session.address.to_string(), csrf: user.session.csrf })
}

#[derive(Deserialize)]
struct Credentials {
    address: String,
    password: String,
}

/// Signs in; a cross-site page cannot send JSON without a CORS preflight,
/// which this server never grants, and the origin was checked already.
async fn sign_in(State(app): State<Arc<App>>, peer: Peer, Body(c): Body<Credentials>) -> ApiResult<Response> {
    let token = app.sign_in(peer, &c.address, &c.password).await.map_err(|e| match e {
        WebError::SignedOut => WebError::Invalid("wrong address or password".into()),
        other => other,
    })?;
    let session = app.sessions.touch(&token, app.clock.now()).ok_or(WebError::SignedOut)?;
    let body = SessionInfo { address: session.address.to_string(), csrf: session.csrf };
    let mut r = Json(body).into_response();
    r.headers_mut().append(header::SET_COOKIE, session_cookie(&token, peer.tls));
    Ok(r)
}

async fn sign_out(State(app): State<Arc<App>>, user: User, headers: HeaderMap) -> ApiResult<Response> {
    csrf(&user, &headers)?;
    app.sessions.remove(&user.token);
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().append(header::SET_COOKIE, session_cookie("", user.peer.tls));
    Ok(r)
}

async fn folders(State(app): State<Arc<App>>, user: User) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(json!({ "folders": app.folders(user.session.account).await? })))
}

#[derive(Deserialize)]
struct FolderName {
    name: String,
}

async fn create_folder(
    State(app): State<Arc<App>>,
    user: User,
    headers: HeaderMap,
    Body(f): Body<FolderName>,
) -> ApiResult<Response> {
    csrf(&user, &headers)?;
    let m = app.create_folder(user.session.account, &f.name).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": m.id.0, "name": m.name }))).into_response())
}

async fn rename_folder(
    State(app): State<Arc<App>>,
    user: User,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Body(f): Body<FolderName>,
) -> ApiResult<StatusCode> {
    csrf(&user, &headers)?;
    app.rename_folder(user.session.account, id, &f.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_folder(
    State(app): State<Arc<App>>,
    user: User,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    csrf(&user, &headers)?;
    app.delete_folder(user.session.account, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list(
    State(app): State<Arc<App>>,
    user: User,
    Path(id): Path<i64>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<crate::listing::Page>> {
    let mailbox = app.mailbox(user.session.account, id).await?;
    Ok(Json(app.page(&mailbox, q.page.unwrap_or(1), q.search()).await?))
}

#[derive(Deserialize)]
struct Action {
    op: String,
    uids: Vec<u32>,
    #[serde(default)]
    to: Option<i64>,
}

async fn act(
    State(app): State<Arc<App>>,
    user: User,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Body(a): Body<Action>,
) -> ApiResult<Json<serde_json::Value>> {
    csrf(&user, &headers)?;
    let uids: Vec<String> = a.uids.iter().map(u32::to_string).collect();
    let done = app.apply(&user, id, &uids, &a.op, a.to).await?;
    Ok(Json(json!({ "done": done })))
}

async fn empty(
    State(app): State<Arc<App>>,
    user: User,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Json<serde_json::Value>> {
    csrf(&user, &headers)?;
    let mailbox = app.mailbox(user.session.account, id).await?;
    Ok(Json(json!({ "removed": app.empty(&mailbox).await? })))
}

#[derive(Serialize)]
struct MessageJson {
    uid: u32,
    flags: Vec<&'static str>,
    subject: String,
    from: Vec<render::Mailbox>,
    to: Vec<render::Mailbox>,
    cc: Vec<render::Mailbox>,
    date: Option<i64>,
    message_id: Option<String>,
    text: Option<String>,
    /// Where the sanitised HTML body is, when there is one.
    html_url: Option<String>,
    attachments: Vec<AttachmentJson>,
}

#[derive(Serialize)]
struct AttachmentJson {
    filename: String,
    content_type: String,
    size: u64,
    url: String,
}

/// A message, decoded; reading it marks it `\Seen` unless `?peek=1`.
async fn message(
    State(app): State<Arc<App>>,
    user: User,
    Path((id, uid)): Path<(i64, u32)>,
    Query(q): Query<Peek>,
) -> ApiResult<Json<MessageJson>> {
    let (mailbox, m) = app.message(user.session.account, id, uid).await?;
    let raw = app.raw(&m).await?;
    let v = render::view(&raw);
    if q.peek != Some(1) && !m.flags.contains(mailroom_types::Flags::SEEN) {
        app.set_flags(mailbox.id, &[m.uid], mailroom_types::Flags::SEEN, true).await?;
    }
    let base = format!("/mail/{id}/{uid}");
    Ok(Json(MessageJson {
        uid,
        flags: m.flags.names().collect(),
        subject: v.subject,
        from: v.from,
        to: v.to,
        cc: v.cc,
        date: v.date,
        message_id: v.message_id,
        text: v.text,
        html_url: v.has_html.then(|| format!("{base}/body")),
        attachments: v
            .attachments
            .into_iter()
            .map(|a| AttachmentJson {
                url: format!("{base}/part/{}", a.part),
                filename: a.filename,
                content_type: a.content_type,
                size: a.size,
            })
            .collect(),
    }))
}

#[derive(Deserialize)]
struct Peek {
    #[serde(default)]
    peek: Option<u8>,
}

/// A message to send or save: the composer's fields, with attachments as
/// base64.
#[derive(Deserialize)]
struct ComposeJson {
    #[serde(flatten)]
    draft: Draft,
    #[serde(default)]
    attachments: Vec<AttachmentIn>,
    /// `[folder, uid]` of a draft this replaces.
    #[serde(default)]
    replaces: Option<(i64, u32)>,
    /// `[folder, uid]` of the message this answers.
    #[serde(default)]
    answers: Option<(i64, u32)>,
}

#[derive(Deserialize)]
struct AttachmentIn {
    filename: String,
    #[serde(default = "octet_stream")]
    content_type: String,
    /// The bytes, base64 (RFC 4648 §4).
    data: String,
}

fn octet_stream() -> String {
    "application/octet-stream".into()
}

impl ComposeJson {
    fn outgoing(self) -> Result<Outgoing, WebError> {
        let mut uploads = Vec::new();
        for a in self.attachments {
            let bytes = base64_decode(&a.data)
                .ok_or_else(|| WebError::Invalid(format!("{}: data is not base64", a.filename)))?;
            uploads.push(crate::compose::Upload { filename: a.filename, content_type: a.content_type, bytes });
        }
        Ok(Outgoing { draft: self.draft, uploads, carried: None, replaces: self.replaces, answers: self.answers })
    }
}

async fn send(
    State(app): State<Arc<App>>,
    user: User,
    headers: HeaderMap,
    Body(c): Body<ComposeJson>,
) -> ApiResult<Json<serde_json::Value>> {
    csrf(&user, &headers)?;
    let sent = app.send(&user, c.outgoing()?).await?;
    Ok(Json(json!({ "queued_as": sent.id, "local": sent.local, "remote": sent.remote })))
}

async fn save_draft(
    State(app): State<Arc<App>>,
    user: User,
    headers: HeaderMap,
    Body(c): Body<ComposeJson>,
) -> ApiResult<Response> {
    csrf(&user, &headers)?;
    let (folder, uid) = app.save_draft(&user, c.outgoing()?).await?;
    Ok((StatusCode::CREATED, Json(json!({ "folder": folder, "uid": uid }))).into_response())
}

/// Standard base64 (RFC 4648 §4), padded or not; whitespace is skipped.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let text: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let engine = base64::engine::general_purpose::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::general_purpose::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(text).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(super::base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(super::base64_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(super::base64_decode("aGVs\r\nbG8h").unwrap(), b"hello!");
        assert!(super::base64_decode("a$b").is_none());
    }
}
