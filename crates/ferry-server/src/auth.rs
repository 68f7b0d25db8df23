//! Users, passwords and tokens. Users are objects of `System.User` (so associations and
//! `[%CurrentUser%]` can point at them); their credentials and roles live in a fixed table.
//! Passwords are hashed with argon2id; tokens are random and stored only as SHA-256 hashes.

use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use ferry_model::{ObjectId, Value};
use ferry_sql::{Param, Side, insert_statement};
use sha2::{Digest, Sha256};

use crate::State;
use crate::effects::{hex, new_object_id, random_bytes};
use crate::sessions::{self, Session};
use crate::store::{StoreError, int, text};

/// argon2id memory cost in KiB, time cost and lanes for new passwords: of the settings OWASP
/// lists as equally strong (19 MiB × 2 passes, 12 × 3, 9 × 4, 7 × 5), the one that holds the least
/// memory, since a server keeps a block per check at once. Stored records keep their own:
/// changing these never locks anyone out.
const ARGON2_MEMORY_KIB: u32 = 7_168;
const ARGON2_ITERATIONS: u32 = 5;
const ARGON2_LANES: u32 = 1;
/// The most memory a stored record may ask a check to spend, in KiB: a record asking for more
/// is treated as damaged and matches no password.
const ARGON2_MEMORY_KIB_MAX: u32 = 256 * 1024;
/// How many password checks run at once, each in its own block of memory; more wait their turn.
pub const PASSWORD_CHECKS_AT_ONCE_MAX: usize = 2;
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
    #[error("no user `{0}`")]
    NotFound(String),
    #[error("user `{0}` signs in through the identity provider: their password is the provider's")]
    ProviderUser(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Password hashing for one server. Argon2 works in blocks of memory (`ARGON2_MEMORY_KIB`
/// blocks of 1 KiB for new records), kept in a pool of at most [`PASSWORD_CHECKS_AT_ONCE_MAX`]
/// and reused: a fresh 7 MiB per sign-in would be kept by the allocator of each thread that ran
/// one, and the server's memory would grow with its sign-ins. Records are standard PHC strings
/// (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) carrying their own parameters.
pub(crate) struct Passwords {
    /// Turns to use a block of memory; a check waits for one.
    turns: Arc<tokio::sync::Semaphore>,
    /// Blocks of memory not in use (never more than the turns).
    memory: Mutex<Vec<Vec<Block>>>,
    /// A record no password was ever set for, to spend the time of a real check on unknown users.
    unknown: OnceLock<String>,
}

impl Default for Passwords {
    fn default() -> Passwords {
        Passwords {
            turns: Arc::new(tokio::sync::Semaphore::new(PASSWORD_CHECKS_AT_ONCE_MAX)),
            memory: Mutex::new(Vec::new()),
            unknown: OnceLock::new(),
        }
    }
}

/// What a record says to compute: the function, its parameters, the salt and the hash expected.
struct Stored {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl Stored {
    /// An argon2id record to be made with `params` and `salt` (its hash to compute).
    fn argon2id(params: Params, salt: &[u8]) -> Stored {
        let hash = vec![0; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
        Stored {
            algorithm: Algorithm::Argon2id,
            version: Version::V0x13,
            params,
            salt: salt.to_vec(),
            hash,
        }
    }

    /// A PHC string, or the form records had before (`argon2id$m$t$p$salt-hex$hash-hex`).
    fn parse(record: &str) -> Option<Stored> {
        if let Some(legacy) = record.strip_prefix("argon2id$") {
            let parts: Vec<&str> = legacy.split('$').collect();
            let [m, t, p, salt, hash] = parts.as_slice() else { return None };
            let hash = unhex(hash)?;
            let params =
                Params::new(m.parse().ok()?, t.parse().ok()?, p.parse().ok()?, Some(hash.len()))
                    .ok()?;
            return Some(Stored { hash, ..Stored::argon2id(params, &unhex(salt)?) });
        }
        let phc = PasswordHash::new(record).ok()?;
        Some(Stored {
            algorithm: Algorithm::try_from(phc.algorithm.as_str()).ok()?,
            version: phc.version.map_or(Ok(Version::default()), Version::try_from).ok()?,
            params: Params::try_from(&phc).ok()?,
            salt: phc.salt?.as_ref().to_vec(),
            hash: phc.hash?.as_bytes().to_vec(),
        })
    }
}

impl Passwords {
    /// The hash of `password` under `stored`'s function and parameters, in a pooled block of
    /// memory; `None` when the parameters are beyond what a check may spend.
    fn hash(&self, stored: &Stored, password: &str) -> Option<Vec<u8>> {
        if stored.params.m_cost() > ARGON2_MEMORY_KIB_MAX {
            return None;
        }
        let taken = self.memory.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
        let mut memory = taken.unwrap_or_default();
        memory.resize(stored.params.block_count(), Block::default());
        let mut out = vec![0; stored.hash.len()];
        let hashed = Argon2::new(stored.algorithm, stored.version, stored.params.clone())
            .hash_password_into_with_memory(
                password.as_bytes(),
                &stored.salt,
                &mut out,
                &mut memory,
            )
            .is_ok();
        // New records' size is what the pool keeps; a larger block from an old record goes.
        memory.truncate(ARGON2_MEMORY_KIB as usize);
        memory.shrink_to_fit();
        let mut pool = self.memory.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if pool.len() < PASSWORD_CHECKS_AT_ONCE_MAX {
            pool.push(memory);
        }
        hashed.then_some(out)
    }

    fn record(&self, password: &str) -> String {
        let salt = random_bytes::<16>();
        let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_LANES, Some(32))
            .expect("the argon2 parameters are valid");
        let stored = Stored::argon2id(params, &salt);
        let hash = self.hash(&stored, password).expect("new records are within the limits");
        PasswordHash {
            algorithm: stored.algorithm.ident(),
            version: Some(stored.version.into()),
            params: ParamsString::try_from(&stored.params).expect("the parameters have a PHC form"),
            salt: Some(Salt::new(&salt).expect("a 16-byte salt is a PHC salt")),
            hash: Some(Output::new(&hash).expect("a 32-byte hash is a PHC output")),
        }
        .to_string()
    }

    fn matches(&self, record: &str, password: &str) -> bool {
        let Some(stored) = Stored::parse(record) else { return false };
        let Some(actual) = self.hash(&stored, password) else { return false };
        // Compare in constant time: the loop never stops early.
        stored.hash.len() == actual.len()
            && stored.hash.iter().zip(actual).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    async fn take_turn(&self) -> tokio::sync::OwnedSemaphorePermit {
        Arc::clone(&self.turns).acquire_owned().await.expect("the turns are never closed")
    }

    /// A new record for `password`, made on a blocking thread in its turn.
    pub(crate) async fn record_blocking(self: &Arc<Self>, password: &str) -> String {
        let turn = self.take_turn().await;
        let (passwords, password) = (Arc::clone(self), password.to_owned());
        // The turn goes with the work: a caller that stops waiting does not free it early.
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            passwords.record(&password)
        })
        .await
        .expect("hashing a password does not panic")
    }

    /// [`Passwords::matches`] on a blocking thread (it takes tens of milliseconds of CPU) once
    /// a turn is free; `None` checks against a record of no one, in the same time.
    async fn matches_blocking(self: &Arc<Self>, record: Option<String>, password: &str) -> bool {
        let turn = self.take_turn().await;
        let (passwords, password) = (Arc::clone(self), password.to_owned());
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
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

pub(crate) fn token_hash(token: &str) -> String {
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
    let record = state.passwords.record_blocking(password).await;
    insert_user(state, name, roles, &record, "").await
}

/// Makes the `System.User` object and the credentials of a new user: a password record, or
/// none ('') for a user of the identity provider `issuer`.
async fn insert_user(
    state: &State,
    name: &str,
    roles: &[String],
    record: &str,
    issuer: &str,
) -> Result<ObjectId, UserError> {
    let id = new_object_id(state.clock.now());
    let mut tx = state.store.begin().await?;
    let seq = tx.take_sequence(1).await?;
    tx.changed(ferry_model::USER_ENTITY);
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
        "INSERT INTO ferry_credentials (user_id, name, password_hash, roles, issuer) VALUES ($1, $2, $3, $4, $5)",
        &[
            state.store.id_param(id),
            Param::Text(name.to_owned()),
            Param::Text(record.to_owned()),
            Param::Text(roles.join(",")),
            Param::Text(issuer.to_owned()),
        ],
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
    address: Option<std::net::IpAddr>,
) -> Result<Session, AuthError> {
    if name.len() > USER_NAME_BYTES_MAX || password.len() > PASSWORD_BYTES_MAX {
        return Err(AuthError::WrongPassword);
    }
    let now = state.clock.now();
    state.limit_sign_in(name, address, now)?;
    // The password is checked outside any write transaction: a check takes tens of
    // milliseconds and may wait its turn, and holds no connection meanwhile.
    let mut read = state.store.begin_snapshot().await?;
    let rows = read
        .query(
            "SELECT user_id, password_hash, roles, disabled FROM ferry_credentials WHERE name = $1 AND issuer = ''",
            &[Param::Text(name.to_owned())],
        )
        .await?;
    read.finish().await?;
    let Some(row) = rows.into_iter().next() else {
        // Spend the same time as a real check so timing reveals nothing either.
        state.passwords.matches_blocking(None, password).await;
        return Err(AuthError::WrongPassword);
    };
    if !state.passwords.matches_blocking(Some(text(&row[1])?), password).await {
        return Err(AuthError::WrongPassword);
    }
    if int(&row[3])? != 0 {
        return Err(AuthError::Disabled);
    }
    let user = User {
        id: read_id(state, &row[0])?,
        name: name.to_owned(),
        roles: split_roles(&text(&row[2])?),
    };
    sessions::open(state, user, now).await
}

/// Signs in with an identity provider's token: the user it names (made on their first
/// sign-in) gets a session as after a password sign-in.
pub(crate) async fn sign_in_with_identity(
    state: &State,
    token: &str,
) -> Result<Session, AuthError> {
    let user = identity_user(state, token).await?;
    sessions::open(state, user, state.clock.now()).await
}

/// The user an identity provider's token names, once it verifies. The provider decides the
/// user's roles (those of the model it lists): they follow the token at every sign-in, and a
/// token that lists none ends the user's sessions. A name already taken by a built-in user, or
/// by another provider's, is refused.
async fn identity_user(state: &State, token: &str) -> Result<User, AuthError> {
    let identity = state.identity.as_ref().ok_or(AuthError::NoProvider)?;
    let claimed = identity.verify(token, state.clock.now()).await?;
    let roles: Vec<String> =
        claimed.roles.into_iter().filter(|r| state.model.role(r).is_some()).collect();
    let mut read = state.store.begin_snapshot().await?;
    let rows = read
        .query(
            "SELECT user_id, roles, disabled, issuer FROM ferry_credentials WHERE name = $1",
            &[Param::Text(claimed.name.clone())],
        )
        .await?;
    read.finish().await?;
    let Some(row) = rows.first() else {
        if roles.is_empty() {
            return Err(AuthError::NoRole);
        }
        let made = insert_user(state, &claimed.name, &roles, "", identity.issuer()).await;
        let id = made.map_err(|e| match e {
            UserError::Store(error) => AuthError::Store(error),
            // Made by a sign-in at the same moment: the next attempt finds them.
            _ => AuthError::Unavailable("the user is being made by another sign-in".to_owned()),
        })?;
        return Ok(User { id, name: claimed.name, roles });
    };
    if text(&row[3])? != identity.issuer() {
        return Err(AuthError::ForeignUser);
    }
    if int(&row[2])? != 0 {
        return Err(AuthError::Disabled);
    }
    let id = read_id(state, &row[0])?;
    if split_roles(&text(&row[1])?) != roles {
        crate::operators::follow_provider_roles(state, &claimed.name, &roles).await?;
    }
    if roles.is_empty() {
        return Err(AuthError::NoRole);
    }
    Ok(User { id, name: claimed.name, roles })
}

/// Why a sign-in or a token was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthError {
    /// The same answer for an unknown user and a wrong password, so neither is revealed.
    #[error("wrong user name or password")]
    WrongPassword,
    #[error("unknown token: sign in again")]
    UnknownToken,
    #[error("the token has expired: sign in again")]
    Expired,
    /// A refresh token spent before was presented again: it was copied, so the session ends.
    #[error("the refresh token was already spent: the session is ended, sign in again")]
    Replayed,
    /// An administrator disabled the user: no sign-in, and every session ended.
    #[error("the user is disabled: ask an administrator")]
    Disabled,
    #[error("{0}")]
    TooMany(String),
    #[error(transparent)]
    Identity(#[from] crate::identity::TokenRefusal),
    #[error("this server signs in no one through an identity provider")]
    NoProvider,
    #[error("the identity token gives the user no role of this app")]
    NoRole,
    #[error("the user name belongs to a user who signs in another way")]
    ForeignUser,
    /// Not the caller's fault: asking again later may succeed.
    #[error("{0}: try again")]
    Unavailable(String),
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

/// The user a bearer token belongs to, if it is known and not expired: a session token of
/// Ferry's, or an identity provider's token.
pub(crate) async fn authenticate(state: &State, token: &str) -> Result<User, AuthError> {
    // Ferry's own tokens are hex; a JWT has three dot-separated parts.
    if token.contains('.') && state.identity.is_some() {
        return identity_user(state, token).await;
    }
    let mut tx = state.store.begin_snapshot().await?;
    let rows = tx
        .query(
            "SELECT t.user_id, t.expires_at, c.name, c.roles, c.disabled FROM ferry_tokens t JOIN ferry_credentials c ON c.user_id = t.user_id WHERE t.token_hash = $1",
            &[Param::Text(token_hash(token))],
        )
        .await?;
    tx.finish().await?;
    let Some(row) = rows.into_iter().next() else {
        return Err(AuthError::UnknownToken);
    };
    if int(&row[1])? < state.clock.now().unix_micros() {
        return Err(AuthError::Expired);
    }
    if int(&row[4])? != 0 {
        return Err(AuthError::Disabled);
    }
    Ok(User {
        id: read_id(state, &row[0])?,
        name: text(&row[2])?,
        roles: split_roles(&text(&row[3])?),
    })
}

pub(crate) fn split_roles(roles: &str) -> Vec<String> {
    roles.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect()
}

pub(crate) fn read_id(state: &State, stored: &Param) -> Result<ObjectId, StoreError> {
    match ferry_sql::read_value(stored.clone(), None, state.store.dialect()) {
        Some(Value::Reference(id)) => Ok(id),
        _ => Err(StoreError::Corrupt(format!("not an object id: {stored:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use argon2::PasswordHasher as _;

    use super::*;

    #[test]
    fn new_records_are_phc_strings_that_match_only_their_password() {
        let passwords = Passwords::default();
        let record = passwords.record("correct horse");
        assert!(record.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{record}");
        assert!(passwords.matches(&record, "correct horse"));
        assert!(!passwords.matches(&record, "correct horse "));
    }

    /// A record made elsewhere (the argon2 crate's own hasher) with other costs and another
    /// variant still verifies: the parameters travel with the record.
    #[test]
    fn records_with_other_parameters_still_verify() {
        let passwords = Passwords::default();
        for (algorithm, memory_kib, iterations, lanes) in
            [(Algorithm::Argon2id, 8_192, 1, 1), (Algorithm::Argon2i, 4_096, 3, 2)]
        {
            let params = Params::new(memory_kib, iterations, lanes, Some(32)).unwrap();
            let record = Argon2::new(algorithm, Version::V0x13, params)
                .hash_password_with_salt(b"tr0ub4dor&3", b"sixteen byte salt")
                .unwrap()
                .to_string();
            assert!(passwords.matches(&record, "tr0ub4dor&3"), "{record}");
            assert!(!passwords.matches(&record, "tr0ub4dor&4"), "{record}");
        }
    }

    #[test]
    fn records_of_the_earlier_form_still_verify() {
        let passwords = Passwords::default();
        let salt = [7u8; 16];
        let params = Params::new(ARGON2_MEMORY_KIB, 1, 1, Some(32)).unwrap();
        let stored = Stored::argon2id(params, &salt);
        let hash = passwords.hash(&stored, "an old password").unwrap();
        let record = format!("argon2id${ARGON2_MEMORY_KIB}$1$1${}${}", hex(&salt), hex(&hash));
        assert!(passwords.matches(&record, "an old password"));
        assert!(!passwords.matches(&record, "a new password"));
    }

    #[test]
    fn damaged_or_too_costly_records_match_nothing() {
        let passwords = Passwords::default();
        let costly = format!("$argon2id$v=19$m={},t=1,p=1$c2l4dGVlbiBieXRlIHNhbHQ$", 1 << 30);
        for record in ["", "plain text", "$argon2id$v=19$m=8,t=1", &costly] {
            assert!(!passwords.matches(record, "anything"), "{record}");
        }
    }

    /// Checks at once each take a block of memory from the pool; the pool never holds more
    /// blocks than checks may run at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checks_share_a_bounded_pool_of_memory() {
        let passwords = Arc::new(Passwords::default());
        let record = passwords.record_blocking("pooled password").await;
        let checks = (0..6).map(|n| {
            let (passwords, record) = (Arc::clone(&passwords), record.clone());
            tokio::spawn(async move {
                let password = if n % 2 == 0 { "pooled password" } else { "wrong" };
                passwords.matches_blocking(Some(record), password).await
            })
        });
        let results: Vec<bool> =
            futures_util::future::join_all(checks).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(results, [true, false, true, false, true, false]);
        let pooled = passwords.memory.lock().unwrap().len();
        assert!((1..=PASSWORD_CHECKS_AT_ONCE_MAX).contains(&pooled), "{pooled} blocks");
    }
}
