//! What administrators manage through the API: users and their roles, and the devices seen
//! (from the syncs they reported).

use ferry_model::Timestamp;
use ferry_protocol::{DeviceInfo, DeviceList, NewUser, UserInfo, UserList};
use ferry_sql::Param;

use crate::State;
use crate::auth::{UserError, add_user, read_id};
use crate::failures::LISTING_ROWS_MAX;
use crate::store::{StoreError, int, text};

pub(crate) async fn users(state: &State) -> Result<UserList, StoreError> {
    let mut tx = state.store.begin_snapshot().await?;
    let rows = tx
        .query(
            "SELECT user_id, name, roles, disabled FROM ferry_credentials ORDER BY name LIMIT $1",
            &[Param::Int(LISTING_ROWS_MAX)],
        )
        .await?;
    tx.finish().await?;
    let users = rows
        .iter()
        .map(|row| {
            Ok(UserInfo {
                id: read_id(state, &row[0])?.to_string(),
                name: text(&row[1])?,
                roles: roles_of(&text(&row[2])?),
                disabled: int(&row[3])? != 0,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(UserList { users })
}

fn roles_of(text: &str) -> Vec<String> {
    text.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect()
}

pub(crate) async fn create(state: &State, new: NewUser) -> Result<UserInfo, UserError> {
    let id = add_user(state, &new.name, &new.roles, &new.password).await?;
    Ok(UserInfo { id: id.to_string(), name: new.name, roles: new.roles, disabled: false })
}

pub(crate) async fn set_roles(
    state: &State,
    name: &str,
    roles: Vec<String>,
) -> Result<UserInfo, UserError> {
    if let Some(unknown) = roles.iter().find(|r| state.model.role(r).is_none()) {
        return Err(UserError::UnknownRole(unknown.clone()));
    }
    let ending = roles.is_empty();
    let column = Param::Text(roles.join(","));
    // A user with no role may do nothing: their sessions end with their last role.
    update_credentials(state, name, Credential::Roles(column), ending).await
}

/// Sets the roles of a user of an identity provider to those its token lists (roles of the
/// model only); with none, their sessions end.
pub(crate) async fn follow_provider_roles(
    state: &State,
    name: &str,
    roles: &[String],
) -> Result<(), StoreError> {
    let column = Param::Text(roles.join(","));
    match update_credentials(state, name, Credential::Roles(column), roles.is_empty()).await {
        Ok(_) | Err(UserError::NotFound(_)) => Ok(()),
        Err(UserError::Store(error)) => Err(error),
        Err(other) => unreachable!("setting known roles fails only in the store: {other}"),
    }
}

/// Disables a user (no sign-in, every session ended at once) or enables them again.
pub(crate) async fn set_disabled(
    state: &State,
    name: &str,
    disabled: bool,
) -> Result<UserInfo, UserError> {
    let flag = Param::Int(i64::from(disabled));
    update_credentials(state, name, Credential::Disabled(flag), disabled).await
}

/// Gives a user a new password; their sessions end, so every device signs in again with it.
pub(crate) async fn set_password(
    state: &State,
    name: &str,
    password: &str,
) -> Result<UserInfo, UserError> {
    if password.len() < 8 || password.len() > crate::auth::PASSWORD_BYTES_MAX {
        return Err(UserError::BadPassword);
    }
    let mut read = state.store.begin_snapshot().await?;
    let rows = read
        .query(
            "SELECT issuer FROM ferry_credentials WHERE name = $1",
            &[Param::Text(name.to_owned())],
        )
        .await?;
    read.finish().await?;
    match rows.first() {
        None => return Err(UserError::NotFound(name.to_owned())),
        Some(row) if !text(&row[0])?.is_empty() => {
            return Err(UserError::ProviderUser(name.to_owned()));
        }
        Some(_) => {}
    }
    let record = Param::Text(state.passwords.record_blocking(password).await);
    update_credentials(state, name, Credential::Password(record), true).await
}

/// A column of a user's credentials, and its new value.
enum Credential {
    Roles(Param),
    Disabled(Param),
    Password(Param),
}

/// Sets one column of the credentials of `name`, ending their sessions when `end`; the user as
/// they are now.
async fn update_credentials(
    state: &State,
    name: &str,
    credential: Credential,
    end: bool,
) -> Result<UserInfo, UserError> {
    let (sql, value) = match credential {
        Credential::Roles(value) => (
            "UPDATE ferry_credentials SET roles = $1 WHERE name = $2 RETURNING user_id, roles, disabled",
            value,
        ),
        Credential::Disabled(value) => (
            "UPDATE ferry_credentials SET disabled = $1 WHERE name = $2 RETURNING user_id, roles, disabled",
            value,
        ),
        Credential::Password(value) => (
            "UPDATE ferry_credentials SET password_hash = $1 WHERE name = $2 RETURNING user_id, roles, disabled",
            value,
        ),
    };
    let mut tx = state.store.begin().await?;
    let rows = tx.query(sql, &[value, Param::Text(name.to_owned())]).await?;
    let Some(row) = rows.first() else {
        tx.finish().await?;
        return Err(UserError::NotFound(name.to_owned()));
    };
    let (id, roles) = (read_id(state, &row[0])?, roles_of(&text(&row[1])?));
    let disabled = int(&row[2])? != 0;
    if end {
        crate::sessions::end_all(state, &mut tx, id).await?;
    }
    tx.commit().await?;
    Ok(UserInfo { id: id.to_string(), name: name.to_owned(), roles, disabled })
}

/// Each device that reported a sync, with its user, how many syncs and the last one.
pub(crate) async fn devices(state: &State) -> Result<DeviceList, StoreError> {
    let mut tx = state.store.begin_snapshot().await?;
    let rows = tx
        .query(
            "SELECT h.user_name, h.device, h.syncs, h.at, (SELECT s.mode FROM ferry_sync_history s WHERE s.user_name = h.user_name AND s.device = h.device ORDER BY s.id DESC LIMIT 1) FROM (SELECT user_name, device, COUNT(*) AS syncs, MAX(at) AS at FROM ferry_sync_history GROUP BY user_name, device) h ORDER BY h.at DESC LIMIT $1",
            &[Param::Int(LISTING_ROWS_MAX)],
        )
        .await?;
    tx.finish().await?;
    let devices = rows
        .iter()
        .map(|row| {
            Ok(DeviceInfo {
                user: text(&row[0])?,
                device: text(&row[1])?,
                syncs: int(&row[2])?,
                last_sync_at: Timestamp::from_unix_micros(int(&row[3])?)
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                last_mode: text(&row[4])?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(DeviceList { devices })
}

/// Minutes of syncs the overview counts, the current one last.
pub const OVERVIEW_MINUTES: i64 = 30;

/// The operator's overview: versions, how many users and devices, live streams, failures
/// waiting, and the syncs reported per minute over the last [`OVERVIEW_MINUTES`].
pub(crate) async fn overview(state: &State) -> Result<ferry_protocol::Overview, StoreError> {
    const MINUTE_MICROS: i64 = 60_000_000;
    let now = state.clock.now().unix_micros();
    let first = (now.div_euclid(MINUTE_MICROS) - (OVERVIEW_MINUTES - 1)) * MINUTE_MICROS;
    let mut tx = state.store.begin_snapshot().await?;
    let counts = tx
        .query(
            "SELECT (SELECT count(*) FROM ferry_credentials), (SELECT count(*) FROM (SELECT DISTINCT user_name, device FROM ferry_sync_history) d), (SELECT count(*) FROM ferry_failures WHERE replayed_at IS NULL)",
            &[],
        )
        .await?;
    let syncs =
        tx.query("SELECT at FROM ferry_sync_history WHERE at >= $1", &[Param::Int(first)]).await?;
    tx.finish().await?;
    let mut per_minute = vec![0i64; OVERVIEW_MINUTES as usize];
    for row in &syncs {
        let minute = (int(&row[0])? - first).div_euclid(MINUTE_MICROS);
        if let Some(count) = usize::try_from(minute).ok().and_then(|m| per_minute.get_mut(m)) {
            *count += 1;
        }
    }
    let syncs_per_minute = per_minute
        .into_iter()
        .enumerate()
        .map(|(minute, count)| {
            let at = Timestamp::from_unix_micros(first + minute as i64 * MINUTE_MICROS);
            (at.map(|t| t.to_string()).unwrap_or_default(), count)
        })
        .collect();
    let row = &counts[0];
    Ok(ferry_protocol::Overview {
        server_version: env!("CARGO_PKG_VERSION").to_owned(),
        model_version: state.model.version().to_string(),
        roles: state.model.roles().map(|role| role.name.to_string()).collect(),
        users: int(&row[0])?,
        devices: int(&row[1])?,
        live_devices: state.store.hints().listeners(),
        failures_waiting: int(&row[2])?,
        syncs_per_minute,
    })
}
