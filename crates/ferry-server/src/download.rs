//! Downloads, one entity and one page at a time. A checkpoint is a position in the change
//! sequence: every applied change and every deletion takes a unique position, and positions
//! become visible in order, so "everything after the checkpoint" never misses a change.
//!
//! Incremental pages send objects changed after the checkpoint (as objects if the user may read
//! them under the download behaviour, else as removals) and tombstones (as removals). When the
//! user's filter depends on other objects or on the moment (`CurrentDateTime`), or when the
//! checkpoint was made for another model version, user, set of roles, or (for a filter using a
//! day token such as `BeginOfCurrentDay`) another day, the page is *full*: every object the user
//! may read now, and the device removes what it holds beyond them.
//!
//! Checkpoints are `I.<fingerprint>.<seq>` (incremental) or `F.<fingerprint>.<start>.<cursor>`
//! (inside a full download); the fingerprint covers the model version, the user, their roles,
//! the day when the filter depends on it, and the data's epoch once it was restored from a
//! backup.

use ferry_constraint::{Bound, TimeDependence};
use ferry_model::{DownloadBehaviour, Entity, EntityKind, ObjectId};
use ferry_protocol::{DownloadMode, DownloadPageRef, DownloadedObject, ObjectRef, ObjectsResponse};
use ferry_sql::{Param, read_object, select_columns, table_name};
use sha2::{Digest, Sha256};

use crate::State;
use crate::access::{UserRules, context, predicate_sql, user_rules};
use crate::auth::User;
use crate::effects::hex;
use crate::store::{StoreError, Tx, int};
use crate::upload::{Covered, readable_members};

/// Where a download continues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    /// Nothing yet, or a checkpoint that no longer applies: start a full download.
    Start,
    /// Inside a full download that began at sequence `start`, after objects up to `cursor`.
    Full { start: i64, cursor: i64 },
    /// Everything up to `seq` is on the device.
    Incremental { seq: i64 },
}

/// What a checkpoint is valid for: the model version, the user, their roles, and the day when
/// the view depends on it.
fn fingerprint(state: &State, user: &User, day: Option<ferry_model::Timestamp>) -> String {
    let mut roles = user.roles.clone();
    roles.sort();
    let day = day.map(|d| d.to_string()).unwrap_or_default();
    let mut text = format!("{}|{}|{}|{day}", state.model.version(), user.id, roles.join(","));
    if !state.lineage.epoch.is_empty() {
        // A restore begins a new epoch: no checkpoint of the data before it applies.
        text.push_str(&format!("|{}", state.lineage.epoch));
    }
    hex(&Sha256::digest(text.as_bytes())[..8])
}

/// Why a download or a request for objects by id was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DownloadError {
    /// A malformed query; `details` names what.
    #[error("{message}")]
    Bad { message: String, details: serde_json::Value },
    #[error("unknown entity `{0}`")]
    UnknownEntity(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

fn parse_position(checkpoint: Option<&str>, fingerprint: &str) -> Result<Position, DownloadError> {
    let Some(checkpoint) = checkpoint.filter(|c| !c.is_empty()) else { return Ok(Position::Start) };
    let bad = || DownloadError::Bad {
        message: format!("`{checkpoint}` is not a checkpoint this server gave"),
        details: serde_json::json!({ "after": checkpoint }),
    };
    let parts: Vec<&str> = checkpoint.split('.').collect();
    let number = |text: &str| text.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(bad);
    let (position, made_for) = match parts.as_slice() {
        ["I", made_for, seq] => (Position::Incremental { seq: number(seq)? }, *made_for),
        ["F", made_for, start, cursor] => {
            (Position::Full { start: number(start)?, cursor: number(cursor)? }, *made_for)
        }
        _ => return Err(bad()),
    };
    // A checkpoint made for another model version, user or roles says nothing about this view.
    Ok(if made_for == fingerprint { position } else { Position::Start })
}

/// The filter of one user's download of one entity.
struct View<'m> {
    rules: UserRules<'m>,
    download: Option<Bound>,
    /// True when the filter depends only on the object's own members, the user, and the day.
    incremental: bool,
    /// The day the filter was evaluated for, when it depends on the day: a checkpoint of
    /// another day starts a full download.
    day: Option<ferry_model::Timestamp>,
}

fn view<'m>(state: &'m State, entity: &'m Entity, user: &User) -> View<'m> {
    let context = context(state, user);
    let rules = user_rules(state, entity, user, &context);
    let download_constraint = state.constraints.download.get(&entity.name);
    let constraints = rules
        .rules
        .iter()
        .filter_map(|(rule, _)| {
            state.constraints.access.get(&(entity.name.clone(), rule.role.clone()))
        })
        .chain(download_constraint);
    let (mut incremental, mut time) = (true, TimeDependence::None);
    for constraint in constraints {
        incremental &= constraint.other_entities().is_empty();
        time = time.max(constraint.time_dependence());
    }
    incremental &= time != TimeDependence::Moment;
    let day = (time == TimeDependence::Day).then(|| context.now.begin_of_day());
    View { download: download_constraint.map(|c| c.bind(&context)), rules, incremental, day }
}

fn downloadable<'m>(state: &'m State, entity_name: &str) -> Result<&'m Entity, DownloadError> {
    state
        .model
        .entity(entity_name)
        .filter(|e| e.kind != EntityKind::System)
        .ok_or_else(|| DownloadError::UnknownEntity(entity_name.to_owned()))
}

/// How a client asked for a page.
pub(crate) struct PageRequest<'a> {
    pub(crate) after: Option<&'a str>,
    pub(crate) limit: Option<usize>,
    /// Full pages carry ids and revisions only.
    pub(crate) index: bool,
    /// Count the entries the download holds from this page on.
    pub(crate) count: bool,
}

pub(crate) async fn download(
    state: &State,
    user: &User,
    entity_name: &str,
    request: PageRequest<'_>,
) -> Result<Rendered, DownloadError> {
    let PageRequest { after, limit, index, count } = request;
    let entity = downloadable(state, entity_name)?;
    let limit = limit.unwrap_or(state.limits.page_rows_max);
    if limit == 0 || limit > state.limits.page_rows_max {
        return Err(DownloadError::Bad {
            message: format!("limit must be between 1 and {}", state.limits.page_rows_max),
            details: serde_json::json!({ "limit": limit }),
        });
    }
    let view = view(state, entity, user);
    let fingerprint = fingerprint(state, user, view.day);
    let mut position = parse_position(after, &fingerprint)?;
    let mut tx = state.store.begin_snapshot().await?;
    let now = tx.sequence_now().await?;
    let total = count.then_some(0);
    let page = match &entity.download {
        DownloadBehaviour::NothingClear => {
            empty(entity, DownloadMode::Full, format!("I.{fingerprint}.{now}"), total)
        }
        DownloadBehaviour::NothingPreserve => {
            empty(entity, DownloadMode::Incremental, format!("I.{fingerprint}.{now}"), total)
        }
        _ if view.rules.is_empty() => {
            empty(entity, DownloadMode::Full, format!("I.{fingerprint}.{now}"), total)
        }
        _ => {
            if !view.incremental && matches!(position, Position::Incremental { .. }) {
                position = Position::Start;
            }
            // Deletion records before this position are gone: an older checkpoint cannot be
            // followed by them, so the download starts over, full.
            let compacted = crate::lifecycle::compacted_through(&mut tx).await?;
            match position {
                Position::Incremental { seq } | Position::Full { start: seq, .. }
                    if seq < compacted =>
                {
                    position = Position::Start;
                }
                _ => {}
            }
            let page = Page { entity, view: &view, limit, fingerprint: &fingerprint, count };
            match position {
                Position::Start => full_page(state, &mut tx, &page, (now, 0), index).await?,
                Position::Full { start, cursor } => {
                    full_page(state, &mut tx, &page, (start, cursor), index).await?
                }
                Position::Incremental { seq } => {
                    incremental_page(state, &mut tx, &page, seq, now).await?
                }
            }
        }
    };
    tx.finish().await?;
    state.metrics.download_pages.increment(1);
    state.metrics.objects_downloaded.increment(page.objects as u64);
    state.metrics.download_page_objects.record(page.objects as f64);
    tracing::info!(objects = page.objects, "download page served");
    Ok(page)
}

/// What every page of one download shares.
struct Page<'a, 'm> {
    entity: &'m Entity,
    view: &'a View<'m>,
    limit: usize,
    fingerprint: &'a str,
    /// The first page reports how many entries the download holds.
    count: bool,
}

fn empty(entity: &Entity, mode: DownloadMode, checkpoint: String, total: Option<u64>) -> Rendered {
    let page = DownloadPageRef {
        entity: entity.name.as_str(),
        mode,
        objects: Vec::new(),
        removed: &[],
        checkpoint: &checkpoint,
        more: false,
        index: false,
        total,
    };
    render(page)
}

/// Rows of `entity` after `after` in sequence order, with revision, sequence and coverage;
/// `filtered` keeps only those the user's view holds.
async fn changed_rows(
    state: &State,
    tx: &mut Tx<'_>,
    entity: &Entity,
    view: &View<'_>,
    after: i64,
    filtered: bool,
    limit: usize,
) -> Result<Vec<(Covered, i64, bool)>, StoreError> {
    let dialect = state.store.dialect();
    let mut params = Vec::new();
    let (coverage, download) = view_sql(state, view, &mut params);
    let conditions = row_conditions(dialect, &mut params, after, filtered, &coverage, &download);
    let limit_marker = param_marker(&mut params, Param::Int(limit as i64), dialect);
    let condition = format!("{conditions} ORDER BY \"t0\"._seq LIMIT {limit_marker}");
    let sql = covered_select(entity, dialect, &coverage, &download, &condition);
    let rows = tx.query(&sql, &params).await?;
    rows.iter().map(|row| covered_row(entity, dialect, row)).collect()
}

/// How many rows [`changed_rows`] would read without a limit.
async fn count_rows(
    state: &State,
    tx: &mut Tx<'_>,
    entity: &Entity,
    view: &View<'_>,
    after: i64,
    filtered: bool,
) -> Result<u64, StoreError> {
    let dialect = state.store.dialect();
    let mut params = Vec::new();
    // Every parameter must appear in the statement: the view's only when it filters.
    let (coverage, download) = match filtered {
        true => view_sql(state, view, &mut params),
        false => (Vec::new(), String::new()),
    };
    let conditions = row_conditions(dialect, &mut params, after, filtered, &coverage, &download);
    let sql = format!("SELECT COUNT(*) FROM {} \"t0\" WHERE {conditions}", table_name(entity));
    let rows = tx.query(&sql, &params).await?;
    Ok(rows.first().map(|row| int(&row[0])).transpose()?.unwrap_or(0).max(0) as u64)
}

/// The view's SQL over the row `t0`: one coverage column per rule, and the download filter.
fn view_sql(state: &State, view: &View<'_>, params: &mut Vec<Param>) -> (Vec<String>, String) {
    let coverage = view.rules.coverage_columns(state, "t0", params);
    (coverage, predicate_sql(state, view.download.as_ref(), "t0", params))
}

/// The `WHERE` conditions of rows after `after`, within the user's view when `filtered`.
fn row_conditions(
    dialect: ferry_sql::Dialect,
    params: &mut Vec<Param>,
    after: i64,
    filtered: bool,
    coverage: &[String],
    download: &str,
) -> String {
    let mut conditions =
        vec![format!("\"t0\"._seq > {}", param_marker(params, Param::Int(after), dialect))];
    if filtered {
        conditions.push(format!("({})", coverage.join(" OR ")));
        conditions.push(download.to_owned());
    }
    conditions.join(" AND ")
}

/// The query whose rows [`covered_row`] reads: every member, revision, sequence position,
/// whether the row is in the download, and one coverage column per rule.
fn covered_select(
    entity: &Entity,
    dialect: ferry_sql::Dialect,
    coverage: &[String],
    download: &str,
    condition: &str,
) -> String {
    format!(
        "SELECT {}, \"t0\"._rev, \"t0\"._seq, {download}, {} FROM {} \"t0\" WHERE {condition}",
        select_columns(entity, "\"t0\"", dialect),
        coverage.join(", "),
        table_name(entity),
    )
}

fn param_marker(params: &mut Vec<Param>, param: Param, dialect: ferry_sql::Dialect) -> String {
    params.push(param);
    ferry_sql::placeholder(params.len(), ferry_model::ValueType::Integer, dialect)
}

fn downloaded(entity: &Entity, view: &View<'_>, covered: &Covered) -> DownloadedObject {
    DownloadedObject {
        id: covered.object.id.to_string(),
        revision: covered.revision,
        values: readable_members(entity, &view.rules, covered),
    }
}

async fn full_page(
    state: &State,
    tx: &mut Tx<'_>,
    page: &Page<'_, '_>,
    (start, cursor): (i64, i64),
    index: bool,
) -> Result<Rendered, StoreError> {
    let Page { entity, view, limit, fingerprint, count } = *page;
    let total = match count {
        true => Some(count_rows(state, tx, entity, view, cursor, true).await?),
        false => None,
    };
    let rows = changed_rows(state, tx, entity, view, cursor, true, limit).await?;
    let more = rows.len() == limit;
    let last = rows.last().map_or(cursor, |(_, seq, _)| *seq);
    let objects: Vec<ObjectRef<'_>> =
        rows.iter().map(|(covered, _, _)| object_ref(entity, view, covered, index)).collect();
    let checkpoint = if more {
        format!("F.{fingerprint}.{start}.{last}")
    } else {
        format!("I.{fingerprint}.{start}")
    };
    let mode = DownloadMode::Full;
    Ok(render(DownloadPageRef {
        entity: entity.name.as_str(),
        mode,
        objects,
        removed: &[],
        checkpoint: &checkpoint,
        more,
        index,
        total,
    }))
}

async fn incremental_page(
    state: &State,
    tx: &mut Tx<'_>,
    page: &Page<'_, '_>,
    after: i64,
    now: i64,
) -> Result<Rendered, StoreError> {
    let Page { entity, view, limit, fingerprint, count } = *page;
    let total = match count {
        true => {
            let changed = count_rows(state, tx, entity, view, after, false).await?;
            let deleted = tx
                .query(
                    "SELECT COUNT(*) FROM ferry_tombstones WHERE entity = $1 AND seq > $2",
                    &[Param::Text(entity.name.to_string()), Param::Int(after)],
                )
                .await?;
            let deleted = deleted.first().map(|row| int(&row[0])).transpose()?.unwrap_or(0);
            Some(changed + deleted.max(0) as u64)
        }
        false => None,
    };
    let rows = changed_rows(state, tx, entity, view, after, false, limit).await?;
    let tombstones = tx
        .query(
            "SELECT object_id, seq FROM ferry_tombstones WHERE entity = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[Param::Text(entity.name.to_string()), Param::Int(after), Param::Int(limit as i64)],
        )
        .await?;
    // Merge both streams in sequence order and keep the first `limit` positions.
    let mut events: Vec<(i64, Result<&Covered, String>, bool)> =
        rows.iter().map(|(c, seq, inside)| (*seq, Ok(c), *inside)).collect();
    for row in tombstones.iter().filter(|_| !ferry_model::planted::active("skip-tombstones")) {
        let id = crate::auth::read_id(state, &row[0])?;
        events.push((int(&row[1])?, Err(id.to_string()), false));
    }
    events.sort_by_key(|(seq, _, _)| *seq);
    let more = events.len() > limit || rows.len() == limit || tombstones.len() == limit;
    events.truncate(limit);
    let mut objects = Vec::new();
    let mut removed = Vec::new();
    for (_, event, inside) in &events {
        match event {
            Ok(covered)
                if *inside
                    && (view.rules.covering(&covered.coverage).next().is_some()
                        || ferry_model::planted::active("skip-read-rule")) =>
            {
                objects.push(object_ref(entity, view, covered, false));
            }
            Ok(covered) => removed.push(covered.object.id.to_string()),
            Err(id) => removed.push(id.clone()),
        }
    }
    let last = if more { events.last().map_or(after, |(seq, _, _)| *seq) } else { now.max(after) };
    let checkpoint = format!("I.{fingerprint}.{last}");
    let mode = DownloadMode::Incremental;
    Ok(render(DownloadPageRef {
        entity: entity.name.as_str(),
        mode,
        objects,
        removed: &removed,
        checkpoint: &checkpoint,
        more,
        index: false,
        total,
    }))
}

/// A page as the JSON it is answered with, and how many objects it holds.
pub(crate) struct Rendered {
    pub(crate) json: String,
    pub(crate) objects: usize,
}

fn render(page: DownloadPageRef<'_>) -> Rendered {
    let objects = page.objects.len();
    Rendered { json: serde_json::to_string(&page).expect("pages serialise"), objects }
}

/// An object as a page sends it: readable members only, or none in an index.
fn object_ref<'a>(
    entity: &'a Entity,
    view: &View<'_>,
    covered: &'a Covered,
    index: bool,
) -> ObjectRef<'a> {
    let members = match index {
        true => Vec::new(),
        false => view
            .rules
            .readable(&covered.coverage)
            .into_iter()
            .map(|slot| (entity.member_name(slot), &covered.object.values[slot.0]))
            .collect(),
    };
    ObjectRef { id: covered.object.id, revision: covered.revision, members }
}

/// The objects a device asks for in full (after reconciling an index, or for a selected sync),
/// as the user may read them now within the entity's download filter; asked-for ids the user
/// may not read, or that are gone, come back as removed.
pub(crate) async fn objects(
    state: &State,
    user: &User,
    entity_name: &str,
    ids: &[String],
) -> Result<ObjectsResponse, DownloadError> {
    let entity = downloadable(state, entity_name)?;
    if ids.len() > state.limits.page_rows_max {
        return Err(DownloadError::TooLarge(format!(
            "ask for at most {} objects at once",
            state.limits.page_rows_max
        )));
    }
    let ids = ids
        .iter()
        .map(|id| {
            ObjectId::parse(id).ok_or_else(|| DownloadError::Bad {
                message: format!("`{id}` is not an object id"),
                details: serde_json::json!({ "id": id }),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let view = view(state, entity, user);
    let dialect = state.store.dialect();
    let mut found = Vec::new();
    // Entities cleared on devices, or that the user may not read, answer every id as removed.
    // A `nothing-preserve` entity is never downloaded whole, but the objects a device holds
    // (pushed, selected, or its own uploads) come back fresh when asked for.
    let cleared = matches!(entity.download, DownloadBehaviour::NothingClear);
    let ids_to_read = if !cleared && !view.rules.is_empty() { ids.as_slice() } else { &[] };
    let mut tx = state.store.begin_snapshot().await?;
    for chunk in ids_to_read.chunks(IDS_PER_QUERY) {
        let mut params = Vec::new();
        let coverage = view.rules.coverage_columns(state, "t0", &mut params);
        let download = predicate_sql(state, view.download.as_ref(), "t0", &mut params);
        let first = params.len() + 1;
        params.extend(
            chunk.iter().map(|id| ferry_sql::param(&ferry_model::Value::Reference(*id), dialect)),
        );
        let list: Vec<String> = (first..first + chunk.len())
            .map(|i| ferry_sql::placeholder(i, ferry_model::ValueType::Reference, dialect))
            .collect();
        let condition = format!(
            "\"t0\".id IN ({}) AND ({}) AND {download}",
            list.join(", "),
            coverage.join(" OR ")
        );
        let sql = covered_select(entity, dialect, &coverage, &download, &condition);
        for row in tx.query(&sql, &params).await? {
            found.push(covered_row(entity, dialect, &row)?.0);
        }
    }
    tx.finish().await?;
    let objects: Vec<DownloadedObject> =
        found.iter().map(|covered| downloaded(entity, &view, covered)).collect();
    let present: std::collections::BTreeSet<ObjectId> = found.iter().map(|c| c.object.id).collect();
    let removed = ids.iter().filter(|id| !present.contains(id)).map(|id| id.to_string()).collect();
    state.metrics.objects_downloaded.increment(objects.len() as u64);
    Ok(ObjectsResponse { objects, removed })
}

/// Ids asked for in one query.
const IDS_PER_QUERY: usize = 500;

/// A row of `changed_rows`' shape: the object, revision, sequence position, whether it is in
/// the download, and the coverage of each rule.
fn covered_row(
    entity: &Entity,
    dialect: ferry_sql::Dialect,
    row: &[Param],
) -> Result<(Covered, i64, bool), StoreError> {
    let width = entity.member_count() + 1;
    let object = read_object(entity, &row[..width], dialect)
        .ok_or_else(|| StoreError::Corrupt(format!("a row of `{}`", entity.name)))?;
    let revision = int(&row[width])?;
    let seq = int(&row[width + 1])?;
    let in_download = crate::access::is_true(&row[width + 2]);
    Ok((Covered { object, revision, coverage: row[width + 3..].to_vec() }, seq, in_download))
}
