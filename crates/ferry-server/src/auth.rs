//! Users, passwords and tokens. Users are objects of `System.User` (so associations and
//! `[%CurrentUser%]` can point at them); their credentials and roles live in a fixed table.
//! Passwords are hashed with argon2id; tokens are random and stored only as SHA-256 hashes.

use std::sync::{Arc, Mutex, OnceLock};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use ferry_model::{ObjectId, Timestamp, Value};
use ferry_sql::{Param, Side, insert_statement};
use sha2::{Digest, Sha256};

use crate::State;
use crate::effects::{hex, new_object_id, random_bytes};
use crate::http::ApiError;
use crate::store::{StoreError, int, text};

/// argon2id memory cost in KiB, time cost and lanes (the OWASP recommendation).
const ARGON2_MEMORY_KIB: u32 = 19_456;
const ARGON2_ITERATIONS: u32 = 2;
const ARGON2_LANES: u32 = 1;
/// A user name's longest form in bytes (the `System.User` name attribute holds 200 characters).
pub const USER_NAME_BYTES_MAX: usize = 200;
/// A password's longest form in bytes.
pub const PASSWORD_BYTES_MAX: usize = 1_024;

/// A signed-in user, as requests see them.
#[derive(Clone, Debug)]
pub(crate) struct User {
    pub(crate) id: ObjectId,
    pub(crate) name: String,
    pub(crate) roles: Vec<String>,
}

impl User {
    pub(crate) fn is_admin(&self, state: &State) -> bool {
        self.roles.iter().any(|role| state.model.role(role).is_some_and(|r| r.admin))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user name must be 1 to {USER_NAME_BYTES_MAX} bytes without control characters")]
    BadName,
    #[error("password must be 8 to {PASSWORD_BYTES_MAX} bytes")]
    BadPassword,
    #[error("unknown role `{0}`")]
    UnknownRole(String),
    #[error("user `{0}` already exists")]
    Exists(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Password hashing for one server. Argon2 works in one block of memory (`ARGON2_MEMORY_KIB`
/// blocks of 1 KiB), made at the first use and taken in turn: a fresh 19 MiB per sign-in would be
/// kept by the allocator of each thread that ran one, and the server's memory would grow with
/// its sign-ins.
#[derive(Default)]
pub(crate) struct Passwords {
    memory: Mutex<Vec<Block>>,
    /// A record no password was ever set for, to spend the time of a real check on unknown users.
    unknown: OnceLock<String>,
}

impl Passwords {
    fn hash(&self, password: &str, salt: &[u8; 16]) -> [u8; 32] {
        let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_LANES, Some(32))
            .expect("the argon2 parameters are valid");
        let mut out = [0; 32];
        let mut memory = self.memory.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if memory.is_empty() {
            *memory = vec![Block::default(); ARGON2_MEMORY_KIB as usize];
        }
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..])
            .expect("argon2 accepts any password with a 16-byte salt");
        out
    }

    fn record(&self, password: &str) -> String {
        let salt = random_bytes::<16>();
        let hash = self.hash(password, &salt);
        format!(
            "argon2id${ARGON2_MEMORY_KIB}${ARGON2_ITERATIONS}${ARGON2_LANES}${}${}",
            hex(&salt),
            hex(&hash)
        )
    }

    fn matches(&self, record: &str, password: &str) -> bool {
        let parts: Vec<&str> = record.split('$').collect();
        let [_, _, _, _, salt, hash] = parts.as_slice() else { return false };
        let Some(salt) = unhex(salt).and_then(|s| <[u8; 16]>::try_from(s).ok()) else {
            return false;
        };
        let Some(expected) = unhex(hash) else { return false };
        let actual = self.hash(password, &salt);
        // Compare in constant time: the loop never stops early.
        expected.len() == actual.len()
            && expected.iter().zip(actual).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    /// [`Passwords::matches`] on a blocking thread (it takes tens of milliseconds of CPU and
    /// waits its turn for the memory); `None` checks against a record of no one, in the same time.
    async fn matches_blocking(self: &Arc<Self>, record: Option<String>, password: &str) -> bool {
        let (passwords, password) = (Arc::clone(self), password.to_owned());
        tokio::task::spawn_blocking(move || {
            let unknown = || passwords.record("not a real password");
            let record = record.unwrap_or_else(|| passwords.unknown.get_or_init(unknown).clone());
            passwords.matches(&record, &password)
        })
        .await
        .unwrap_or(false)
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub(crate) async fn add_user(
    state: &State,
    name: &str,
    roles: &[String],
    password: &str,
) -> Result<ObjectId, UserError> {
    if name.is_empty() || name.len() > USER_NAME_BYTES_MAX || name.chars().any(char::is_control) {
        return Err(UserError::BadName);
    }
    if password.len() < 8 || password.len() > PASSWORD_BYTES_MAX {
        return Err(UserError::BadPassword);
    }
    if let Some(role) = roles.iter().find(|r| state.model.role(r).is_none()) {
        return Err(UserError::UnknownRole(role.clone()));
    }
    let record = state.passwords.record(password);
    let id = new_object_id(state.clock.now());
    let mut tx = state.store.begin().await?;
    let seq = tx.take_sequence(1).await?;
    let existing = tx
        .query(
            "SELECT user_id FROM ferry_credentials WHERE name = $1",
            &[Param::Text(name.to_owned())],
        )
        .await?;
    if !existing.is_empty() {
        return Err(UserError::Exists(name.to_owned()));
    }
    let user_entity =
        state.model.entity(ferry_model::USER_ENTITY).expect("every model has System.User");
    let dialect = tx.dialect();
    let mut params = vec![state.store.id_param(id)];
    params.extend(std::iter::once(ferry_sql::param(&Value::String(name.to_owned()), dialect)));
    params.extend([Param::Int(1), Param::Int(seq)]);
    tx.execute(&insert_statement(user_entity, dialect, Side::Server), &params).await?;
    tx.execute(
        "INSERT INTO ferry_credentials (user_id, name, password_hash, roles) VALUES ($1, $2, $3, $4)",
        &[state.store.id_param(id), Param::Text(name.to_owned()), Param::Text(record), Param::Text(roles.join(","))],
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Checks the password and issues a token; the same answer for an unknown user and a wrong
/// password, so sign-in reveals nothing about who exists.
pub(crate) async fn sign_in(
    state: &State,
    name: &str,
    password: &str,
) -> Result<(String, User, Timestamp), ApiError> {
    if name.len() > USER_NAME_BYTES_MAX || password.len() > PASSWORD_BYTES_MAX {
        return Err(ApiError::Unauthorized("wrong user name or password".to_owned()));
    }
    let now = state.clock.now();
    state.limit_sign_in(name, now)?;
    let mut tx = state.store.begin().await?;
    let rows = tx
        .query(
            "SELECT user_id, password_hash, roles FROM ferry_credentials WHERE name = $1",
            &[Param::Text(name.to_owned())],
        )
        .await?;
    let Some(row) = rows.into_iter().next() else {
        // Spend the same time as a real check so timing reveals nothing either.
        state.passwords.matches_blocking(None, password).await;
        return Err(ApiError::Unauthorized("wrong user name or password".to_owned()));
    };
    if !state.passwords.matches_blocking(Some(text(&row[1])?), password).await {
        return Err(ApiError::Unauthorized("wrong user name or password".to_owned()));
    }
    let user = User {
        id: read_id(state, &row[0])?,
        name: name.to_owned(),
        roles: split_roles(&text(&row[2])?),
    };
    let token = hex(&random_bytes::<32>());
    let lifetime = state.limits.token_lifetime_seconds.saturating_mul(1_000_000);
    let expires = Timestamp::from_unix_micros(now.unix_micros().saturating_add(lifetime))
        .unwrap_or(ferry_model::TIMESTAMP_MAX);
    tx.execute(
        "INSERT INTO ferry_tokens (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        &[
            Param::Text(token_hash(&token)),
            state.store.id_param(user.id),
            Param::Int(expires.unix_micros()),
        ],
    )
    .await?;
    tx.execute("DELETE FROM ferry_tokens WHERE expires_at < $1", &[Param::Int(now.unix_micros())])
        .await?;
    tx.commit().await?;
    Ok((token, user, expires))
}

/// The user a bearer token belongs to, if it is known and not expired.
pub(crate) async fn authenticate(state: &State, token: &str) -> Result<User, ApiError> {
    let mut tx = state.store.begin_snapshot().await?;
    let rows = tx
        .query(
            "SELECT t.user_id, t.expires_at, c.name, c.roles FROM ferry_tokens t JOIN ferry_credentials c ON c.user_id = t.user_id WHERE t.token_hash = $1",
            &[Param::Text(token_hash(token))],
        )
        .await?;
    tx.finish().await?;
    let Some(row) = rows.into_iter().next() else {
        return Err(ApiError::Unauthorized("unknown token: sign in again".to_owned()));
    };
    if int(&row[1])? < state.clock.now().unix_micros() {
        return Err(ApiError::Unauthorized("the token has expired: sign in again".to_owned()));
    }
    Ok(User {
        id: read_id(state, &row[0])?,
        name: text(&row[2])?,
        roles: split_roles(&text(&row[3])?),
    })
}

fn split_roles(roles: &str) -> Vec<String> {
    roles.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect()
}

pub(crate) fn read_id(state: &State, stored: &Param) -> Result<ObjectId, StoreError> {
    match ferry_sql::read_value(stored.clone(), None, state.store.dialect()) {
        Some(Value::Reference(id)) => Ok(id),
        _ => Err(StoreError::Corrupt(format!("not an object id: {stored:?}"))),
    }
}
