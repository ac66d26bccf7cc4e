//! The list query every brain kind shares: the rows the principal can see, newest
//! first, one page after a cursor, narrowed by the filters the caller gave (a filter
//! that was not given adds nothing to the SQL).

use mosaic_api::{Page, DEFAULT_LIMIT, MAX_LIMIT};
use sqlx::any::AnyRow;

use super::{label_pattern, matches, text_query};
use crate::db::Acting;
use crate::page::paginate;
use crate::visibility::Table;
use crate::{Principal, Result, Store};

/// A value a filter binds.
enum Arg {
    Text(String),
    Int(i64),
}

/// One list query being built. Each filter binds the next number; the visibility
/// condition takes the numbers after the last.
pub(crate) struct BrainList {
    table: Table,
    columns: String,
    conditions: Vec<String>,
    args: Vec<Arg>,
}

impl BrainList {
    pub(crate) fn new(table: Table, columns: impl Into<String>) -> BrainList {
        BrainList {
            table,
            columns: columns.into(),
            conditions: Vec::new(),
            args: Vec::new(),
        }
    }

    /// The placeholder of the next argument.
    fn next(&self) -> String {
        format!("${}", self.args.len() + 1)
    }

    /// `column = value`, when a value is given.
    pub(crate) fn eq(mut self, column: &str, value: Option<&str>) -> BrainList {
        if let Some(value) = value {
            self.conditions.push(format!("{column} = {}", self.next()));
            self.args.push(Arg::Text(value.to_string()));
        }
        self
    }

    /// `column = value` for a number (flags stored as 0/1), when given.
    pub(crate) fn eq_int(mut self, column: &str, value: Option<i64>) -> BrainList {
        if let Some(value) = value {
            self.conditions.push(format!("{column} = {}", self.next()));
            self.args.push(Arg::Int(value));
        }
        self
    }

    /// `column < value` for a number (times in ms), when given.
    pub(crate) fn before(mut self, column: &str, value: Option<i64>) -> BrainList {
        if let Some(value) = value {
            self.conditions.push(format!("{column} < {}", self.next()));
            self.args.push(Arg::Int(value));
        }
        self
    }

    /// Has this label or tag (stored `,a,b,`), when given.
    pub(crate) fn label(mut self, column: &str, label: Option<&str>) -> BrainList {
        let pattern = label_pattern(label);
        if !pattern.is_empty() {
            self.conditions
                .push(format!("{column} LIKE {} ESCAPE '\\'", self.next()));
            self.args.push(Arg::Text(pattern));
        }
        self
    }

    /// Contains every word of `q`, when it has words.
    pub(crate) fn words(mut self, store: &Store, q: Option<&str>) -> BrainList {
        if let Some(text) = q.and_then(|q| text_query(store.backend(), q)) {
            let n = (self.args.len() + 1) as u32;
            self.conditions
                .push(matches(store.backend(), self.table.name(), n));
            self.args.push(Arg::Text(text));
        }
        self
    }

    /// One page, newest first, read as `p`.
    pub(crate) async fn page<T>(
        mut self,
        store: &Store,
        p: &Principal,
        cursor: Option<&str>,
        limit: Option<u32>,
        row: fn(&AnyRow) -> Result<T>,
        id: fn(&T) -> String,
    ) -> Result<Page<T>> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        if let Some(cursor) = cursor.filter(|c| !c.is_empty()) {
            self.conditions.push(format!("id < {}", self.next()));
            self.args.push(Arg::Text(cursor.to_string()));
        }
        let limit_mark = self.next();
        self.args.push(Arg::Int(i64::from(limit) + 1));
        let mut tx = store.begin(Acting::As(p), false).await?;
        let visible = tx.visible(p, self.table, self.args.len() as u32 + 1);
        let mut sql = format!(
            "SELECT {} FROM {} WHERE {visible}",
            self.columns,
            self.table.name()
        );
        for condition in &self.conditions {
            sql.push_str(" AND ");
            sql.push_str(condition);
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {limit_mark}"));
        let sql = tx.sql(&sql).into_owned();
        let mut query = sqlx::query(&sql);
        for arg in self.args {
            query = match arg {
                Arg::Text(text) => query.bind(text),
                Arg::Int(n) => query.bind(n),
            };
        }
        let rows = tx.fetch_all(visible.bind(query)).await?;
        tx.commit().await?;
        let items = rows.iter().map(row).collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, limit, id))
    }
}
