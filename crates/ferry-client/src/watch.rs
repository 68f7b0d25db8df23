//! Watched queries: a query's result set, given again each time a write on the device (an app
//! commit or deletion, an applied download, an upload's answer, a server action's objects, a
//! clear) changes it, and not otherwise.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ferry_model::ObjectId;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::database::{Change, Touched};
use crate::{ClientError, Database, Object, Query};

/// How long a watch waits after a change for the ones that follow it, in milliseconds, so a
/// burst of writes gives one result set.
pub const WATCH_DEBOUNCE_MS: u64 = 5;

/// A watched query; [`Watch::next`] gives its result sets. See [`Database::watch`].
pub struct Watch {
    database: Arc<Database>,
    query: Query,
    changes: tokio::sync::broadcast::Receiver<Change>,
    /// The result set not yet given (the first one), or the last one given.
    first: Option<Vec<Object>>,
    last: Vec<Object>,
}

impl Database {
    /// Watches a query: [`Watch::next`] gives its result set as it stands, then each time a
    /// committed write changes what it returns. A write to another entity re-reads nothing,
    /// unless the constraint follows an association (a `/` path), when any write may matter.
    /// A query with no sort, limit or offset whose constraint reads only the object's own
    /// values (no path, no time token) re-reads only the objects a write touched (up to
    /// [`CHANGE_IDS_MAX`](crate::CHANGE_IDS_MAX) of them), so its cost follows the write,
    /// not the table; any other query is read again in full.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ferry-doc-watch-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir); std::fs::create_dir_all(&dir).unwrap();
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use ferry_client::{Database, Query};
    /// use ferry_model::{Value, samples};
    ///
    /// let db = Arc::new(Database::open(dir.join("device.db"), samples::FIELD_SERVICE)?);
    /// let mut urgent = db.watch(Query::new("Field.WorkOrder").filter("[Priority = 1]"))?;
    /// assert!(urgent.next().await?.is_empty());
    /// let mut order = db.create("Field.WorkOrder")?;
    /// db.set(&mut order, "Number", Value::Integer(7))?;
    /// db.set(&mut order, "Title", Value::String("Burst pipe".to_owned()))?;
    /// db.set(&mut order, "Priority", Value::Integer(1))?;
    /// db.commit(&mut [&mut order])?;
    /// assert_eq!(urgent.next().await?, [order]);
    /// # Ok::<(), ferry_client::ClientError>(())
    /// # }).unwrap();
    /// ```
    pub fn watch(self: &Arc<Self>, query: Query) -> Result<Watch, ClientError> {
        let changes = self.subscribe();
        let first = self.query(&query)?;
        Ok(Watch { database: Arc::clone(self), query, changes, first: Some(first), last: vec![] })
    }
}

impl Watch {
    /// The query's result set: the first call gives it as it stands, each later call waits
    /// until a write changes it.
    pub async fn next(&mut self) -> Result<Vec<Object>, ClientError> {
        if let Some(first) = self.first.take() {
            self.last.clone_from(&first);
            return Ok(first);
        }
        loop {
            let mut touched = self.relevant_change().await;
            tokio::time::sleep(Duration::from_millis(WATCH_DEBOUNCE_MS)).await;
            loop {
                match self.changes.try_recv() {
                    Ok(change) => self.note(&change, &mut touched),
                    Err(TryRecvError::Lagged(_)) => touched = Touched::Some,
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                }
            }
            let now = match touched {
                Touched::These(ids) if self.query.follows_its_objects() => self.refined(&ids)?,
                _ => self.database.query(&self.query)?,
            };
            if now != self.last {
                self.last.clone_from(&now);
                return Ok(now);
            }
        }
    }

    /// The last result set with these objects read again: those that match now in, the
    /// others out, in id order. Only for a query whose result set follows its objects.
    fn refined(&self, ids: &[ObjectId]) -> Result<Vec<Object>, ClientError> {
        if ids.is_empty() {
            return Ok(self.last.clone());
        }
        let fresh = self.database.query_among(&self.query, ids)?;
        let ids: BTreeSet<ObjectId> = ids.iter().copied().collect();
        let kept = self.last.iter().filter(|object| !ids.contains(&object.id()));
        let mut now: Vec<Object> = kept.cloned().chain(fresh).collect();
        now.sort_by_key(Object::id);
        Ok(now)
    }

    /// Adds what a change touched of the watched entity (anything, when the query follows
    /// associations) to `touched`.
    fn note(&self, change: &Change, touched: &mut Touched) {
        if self.follows_paths() {
            *touched = Touched::Some;
        } else if let Some(these) = change.entities.get(&self.query.entity) {
            touched.merge(these.clone());
        }
    }

    fn follows_paths(&self) -> bool {
        self.query.constraint.as_deref().is_some_and(|c| c.contains('/'))
    }

    /// Waits for a write that may change the result set; gives what it touched.
    async fn relevant_change(&mut self) -> Touched {
        loop {
            match self.changes.recv().await {
                Ok(change) => {
                    let mut touched = Touched::default();
                    self.note(&change, &mut touched);
                    if touched != Touched::default() {
                        return touched;
                    }
                }
                // Writes were missed: any of them may have mattered.
                Err(RecvError::Lagged(_)) => return Touched::Some,
                // The database holds the sender and this watch holds the database.
                Err(RecvError::Closed) => std::future::pending().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use ferry_model::{Value, samples};

    use super::Watch;
    use crate::{Database, Object, Order, Query};

    /// A watch, and the result set it gave last (what the database answered then).
    struct Watched {
        watch: Watch,
        shown: Vec<Object>,
    }

    fn database(name: &str) -> Arc<Database> {
        let dir = std::env::temp_dir().join(format!("ferry-watch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Arc::new(Database::open(dir.join("device.db"), samples::FIELD_SERVICE).expect("opens"))
    }

    /// Asserts that the watch gives what the database answers now, or, when that is what it
    /// gave last, nothing (the clock is paused: the wait ends once everything is idle).
    async fn check(database: &Database, watched: &mut Watched, step: &str) {
        let query = watched.watch.query.clone();
        let expected = database.query(&query).expect("query");
        let given = tokio::time::timeout(Duration::from_secs(1), watched.watch.next()).await;
        match given {
            Ok(set) => {
                let set = set.expect("watch reads");
                assert_ne!(set, watched.shown, "{step}: {query:?} gave an unchanged set");
                assert_eq!(set, expected, "{step}: {query:?}");
                watched.shown = set;
            }
            Err(_) => assert_eq!(watched.shown, expected, "{step}: {query:?} missed a change"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_watch_gives_each_changed_result_set_once_and_nothing_else() {
        let db = database("changes");
        let queries = [
            Query::new("Field.WorkOrder").filter("[Priority = 1]"),
            Query::new("Field.WorkOrder")
                .filter("[Priority = 1]")
                .sort("Number", Order::Descending)
                .limit(3),
            Query::new("Field.WorkOrder").filter("[Title = 'Leak' and Priority < 3]"),
            Query::new("Field.WorkOrder").offset(2),
            Query::new("Field.WorkOrder")
                .filter("[Field.WorkOrder_Site/Field.Site/Name = 'Depot']"),
            Query::new("Field.Site"),
        ];
        let mut watches = Vec::new();
        for query in queries {
            let mut watch = db.watch(query).expect("watch");
            let shown = watch.next().await.expect("first set");
            watches.push(Watched { watch, shown });
        }
        let mut site = db.create("Field.Site").expect("site");
        db.set(&mut site, "Name", Value::String("Depot".to_owned())).expect("name");
        db.commit(&mut [&mut site]).expect("commit");
        let mut orders = Vec::new();
        // A fixed walk of creations, changes and deletions that move orders in and out of
        // each result set.
        let mut state = 7u64;
        for step in 0..60 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let pick = (state >> 33) as usize;
            let described = if orders.is_empty() || pick.is_multiple_of(4) {
                let mut order = db.create("Field.WorkOrder").expect("order");
                db.set(&mut order, "Number", Value::Integer(step + 1)).expect("number");
                db.set(&mut order, "Title", Value::String("Leak".to_owned())).expect("title");
                db.commit(&mut [&mut order]).expect("commit");
                orders.push(order);
                "a new order"
            } else if pick % 7 == 1 {
                let mut order = orders.swap_remove(pick % orders.len());
                db.delete(&mut order).expect("delete");
                "a deletion"
            } else {
                let index = pick % orders.len();
                let order = &mut orders[index];
                let priority = Value::Integer((pick % 5) as i64 + 1);
                db.set(order, "Priority", priority).expect("priority");
                if pick.is_multiple_of(3) {
                    let title = if pick.is_multiple_of(2) { "Leak" } else { "Fuse" };
                    db.set(order, "Title", Value::String(title.to_owned())).expect("title");
                }
                if pick.is_multiple_of(5) {
                    db.set(order, "WorkOrder_Site", Value::Reference(site.id())).expect("site");
                }
                db.commit(&mut [order]).expect("commit");
                "a change"
            };
            for watched in &mut watches {
                check(&db, watched, &format!("step {step}, {described}")).await;
            }
        }
    }
}
