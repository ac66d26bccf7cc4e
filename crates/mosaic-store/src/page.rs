//! Cursor pagination over id-ordered rows: ids are UUIDv7, so "after this id" is
//! "created after this one", and a page is one indexed range scan.

use mosaic_api::{Page, PageQuery};
use sqlx::any::AnyRow;

use crate::db::Acting;
use crate::{Principal, Result, Store};

/// Cut a fetched `limit + 1` rows down to a page, with the cursor of the next one.
pub(crate) fn paginate<T>(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(key)
    } else {
        None
    };
    Page { items, next_cursor }
}

/// What one list query needs: its SQL and how to read a row.
pub(crate) struct ListQuery<T> {
    /// `$1` is the cursor, `$2` the limit, `$3`… the values of `binds` (a visibility
    /// condition's, say). Rows come back ordered by `id`.
    pub sql: String,
    pub binds: Vec<String>,
    pub row: fn(&AnyRow) -> Result<T>,
    pub id: fn(&T) -> String,
}

impl Store {
    /// One page of a list, read as `p`.
    pub(crate) async fn list_page<T>(
        &self,
        p: &Principal,
        page: &PageQuery,
        q: ListQuery<T>,
    ) -> Result<Page<T>> {
        let limit = page.effective_limit();
        let cursor = page.cursor.clone().unwrap_or_default();
        let mut tx = self.begin(Acting::As(p), false).await?;
        let sql = tx.sql(&q.sql).into_owned();
        let mut query = sqlx::query(&sql).bind(cursor).bind(i64::from(limit) + 1);
        for value in q.binds {
            query = query.bind(value);
        }
        let rows = tx.fetch_all(query).await?;
        tx.commit().await?;
        let items = rows.iter().map(q.row).collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, limit, q.id))
    }
}
