//! Watched queries: a query's result set, given again each time a write on the device (an app
//! commit or deletion, an applied download, an upload's answer, a server action's objects, a
//! clear) changes it, and not otherwise.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use crate::database::Change;
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
            self.relevant_change().await;
            tokio::time::sleep(Duration::from_millis(WATCH_DEBOUNCE_MS)).await;
            while self.changes.try_recv().is_ok() {}
            let now = self.database.query(&self.query)?;
            if now != self.last {
                self.last.clone_from(&now);
                return Ok(now);
            }
        }
    }

    /// Waits for a write that may change the result set.
    async fn relevant_change(&mut self) {
        let any = self.query.constraint.as_deref().is_some_and(|c| c.contains('/'));
        loop {
            match self.changes.recv().await {
                Ok(change) if any || change.entities.contains(&self.query.entity) => return,
                Ok(_) => {}
                // Writes were missed: any of them may have mattered.
                Err(RecvError::Lagged(_)) => return,
                // The database holds the sender and this watch holds the database.
                Err(RecvError::Closed) => std::future::pending().await,
            }
        }
    }
}
