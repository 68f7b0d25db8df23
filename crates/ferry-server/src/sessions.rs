//! Sessions: a short-lived access token sent with every request, and a refresh token that gets
//! the next one. A refresh token is spent once: each refresh answers with a new one (rotation).
//! The token spent last stays good until the one it was exchanged for is spent: a device whose
//! refresh lost its answer (the network failed, the device went offline before it arrived)
//! spends it again, and the answer it never got is void. Any other earlier token presented
//! again was copied (a replay), and ends the session for whoever holds it.
//!
//! A refresh token is `<session>_<secret>`, both random hex; the server keeps one row per
//! session with the hashes of its current and previous secrets, so a replay of any earlier
//! token is recognised by its session without keeping every token ever spent.

use ferry_model::{ObjectId, Timestamp};
use ferry_sql::Param;

use crate::State;
use crate::auth::{AuthError, User, read_id, split_roles, token_hash};
use crate::effects::{hex, random_bytes};
use crate::store::{StoreError, Tx, int, text};

/// A session just opened or refreshed: what the device keeps.
pub(crate) struct Session {
    /// The access token.
    pub(crate) token: String,
    pub(crate) expires: Timestamp,
    /// The refresh token to spend for the next access token.
    pub(crate) refresh_token: String,
    pub(crate) refresh_expires: Timestamp,
    pub(crate) user: User,
}

/// `seconds` after `now`, held inside the range of timestamps.
fn later(now: Timestamp, seconds: i64) -> Timestamp {
    let micros = now.unix_micros().saturating_add(seconds.saturating_mul(1_000_000));
    Timestamp::from_unix_micros(micros).unwrap_or(ferry_model::TIMESTAMP_MAX)
}

/// Opens a session of `user`; expired tokens and sessions are dropped on the way.
pub(crate) async fn open(state: &State, user: User, now: Timestamp) -> Result<Session, AuthError> {
    let session = hex(&random_bytes::<16>());
    let secret = hex(&random_bytes::<32>());
    let refresh_expires = later(now, state.limits.refresh_token_lifetime_seconds);
    let mut tx = state.store.begin().await?;
    let now_param = Param::Int(now.unix_micros());
    let past = std::slice::from_ref(&now_param);
    tx.execute("DELETE FROM ferry_tokens WHERE expires_at < $1", past).await?;
    tx.execute("DELETE FROM ferry_sessions WHERE expires_at < $1", past).await?;
    tx.execute(
        "INSERT INTO ferry_sessions (session, user_id, refresh_hash, previous_hash, expires_at) VALUES ($1, $2, $3, '', $4)",
        &[
            Param::Text(session.clone()),
            state.store.id_param(user.id),
            Param::Text(token_hash(&secret)),
            Param::Int(refresh_expires.unix_micros()),
        ],
    )
    .await?;
    let (token, expires) = access_token(state, &mut tx, &session, user.id, now).await?;
    tx.commit().await?;
    let refresh_token = format!("{session}_{secret}");
    Ok(Session { token, expires, refresh_token, refresh_expires, user })
}

/// A new access token of `session`: random, stored only as its hash.
async fn access_token(
    state: &State,
    tx: &mut Tx<'_>,
    session: &str,
    user: ObjectId,
    now: Timestamp,
) -> Result<(String, Timestamp), StoreError> {
    let token = hex(&random_bytes::<32>());
    let expires = later(now, state.limits.access_token_lifetime_seconds);
    tx.execute(
        "INSERT INTO ferry_tokens (token_hash, user_id, expires_at, session) VALUES ($1, $2, $3, $4)",
        &[
            Param::Text(token_hash(&token)),
            state.store.id_param(user),
            Param::Int(expires.unix_micros()),
            Param::Text(session.to_owned()),
        ],
    )
    .await?;
    Ok((token, expires))
}

/// Spends a refresh token: the session's next access token and refresh token, the previous
/// access token of the session no longer good. An unknown, expired or replayed token, or a
/// disabled user, is refused; a replay also ends the session.
pub(crate) async fn refresh(state: &State, presented: &str) -> Result<Session, AuthError> {
    let is_hex = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_hexdigit());
    let (session, secret) = presented
        .trim()
        .split_once('_')
        .filter(|(session, secret)| is_hex(session) && is_hex(secret))
        .ok_or(AuthError::UnknownToken)?;
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    // The row's lock first: two refreshes of one session run one after the other.
    let lock = "UPDATE ferry_sessions SET expires_at = expires_at WHERE session = $1";
    if tx.execute(lock, &[Param::Text(session.to_owned())]).await? == 0 {
        tx.finish().await?;
        return Err(AuthError::UnknownToken);
    }
    let rows = tx
        .query(
            "SELECT s.user_id, s.refresh_hash, s.previous_hash, s.expires_at, c.name, c.roles, c.disabled FROM ferry_sessions s JOIN ferry_credentials c ON c.user_id = s.user_id WHERE s.session = $1",
            &[Param::Text(session.to_owned())],
        )
        .await?;
    let row = rows
        .first()
        .ok_or_else(|| StoreError::Corrupt(format!("session `{session}` belongs to no user")))?;
    let user = User {
        id: read_id(state, &row[0])?,
        name: text(&row[4])?,
        roles: split_roles(&text(&row[5])?),
    };
    let (current, previous) = (text(&row[1])?, text(&row[2])?);
    let refusal = if int(&row[3])? < now.unix_micros() {
        Some(AuthError::Expired)
    } else if int(&row[6])? != 0 {
        Some(AuthError::Disabled)
    } else {
        None
    };
    let hash = token_hash(secret);
    let retried = !previous.is_empty() && hash == previous;
    let refusal = refusal.or_else(|| (hash != current && !retried).then_some(AuthError::Replayed));
    if let Some(refusal) = refusal {
        end(&mut tx, session).await?;
        tx.commit().await?;
        return Err(refusal);
    }
    // A retry voids the answer it replaces: the token spent last stays the previous one.
    let previous = if retried { previous } else { current };
    let secret = hex(&random_bytes::<32>());
    let refresh_expires = later(now, state.limits.refresh_token_lifetime_seconds);
    tx.execute(
        "UPDATE ferry_sessions SET refresh_hash = $1, previous_hash = $2, expires_at = $3 WHERE session = $4",
        &[
            Param::Text(token_hash(&secret)),
            Param::Text(previous),
            Param::Int(refresh_expires.unix_micros()),
            Param::Text(session.to_owned()),
        ],
    )
    .await?;
    tx.execute("DELETE FROM ferry_tokens WHERE session = $1", &[Param::Text(session.to_owned())])
        .await?;
    let (token, expires) = access_token(state, &mut tx, session, user.id, now).await?;
    tx.commit().await?;
    let refresh_token = format!("{session}_{secret}");
    Ok(Session { token, expires, refresh_token, refresh_expires, user })
}

/// Ends one session: its access tokens and its refresh token are no longer good.
async fn end(tx: &mut Tx<'_>, session: &str) -> Result<(), StoreError> {
    let session = [Param::Text(session.to_owned())];
    tx.execute("DELETE FROM ferry_tokens WHERE session = $1", &session).await?;
    tx.execute("DELETE FROM ferry_sessions WHERE session = $1", &session).await?;
    Ok(())
}

/// Ends every session of the user: their next request is answered 401, and no refresh token
/// of theirs gets another access token.
pub(crate) async fn end_all(
    state: &State,
    tx: &mut Tx<'_>,
    user: ObjectId,
) -> Result<(), StoreError> {
    let user = [state.store.id_param(user)];
    tx.execute("DELETE FROM ferry_tokens WHERE user_id = $1", &user).await?;
    tx.execute("DELETE FROM ferry_sessions WHERE user_id = $1", &user).await?;
    Ok(())
}
