//! Sessions and their entry trees. Entries are only ever appended: an edit or a retry
//! appends a sibling and makes it the active leaf, and reading a session means reading
//! the path from a root to a leaf.

use std::collections::{HashMap, HashSet};

use mosaic_api::{
    Branch, Entry, EntryBody, ExportHeader, Page, Session, SessionQuery, DEFAULT_LIMIT, MAX_LIMIT,
};
use sqlx::any::AnyRow;

use crate::db::{Acting, Tx};
use crate::principal::local_user;
use crate::row::{json, Columns, FromRow};
use crate::visibility::Table;
use crate::{format_time, new_id, now_ms, Principal, Result, Store, StoreError};

const SESSION_COLUMNS: &str =
    "id, owner_user_id, agent_id, title, active_leaf_id, archived, created_at, updated_at";

/// Where a new entry goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parent<'a> {
    /// After the active leaf: the conversation goes on (a root when the session is empty).
    ActiveLeaf,
    /// A new root: an edit of the first message.
    Root,
    /// Under this entry: an edit or a retry when it already has children.
    Entry(&'a str),
}

/// Largest session an import accepts, in entries.
const MAX_IMPORT_ENTRIES: usize = 100_000;

impl FromRow for Session {
    fn from_row(row: &AnyRow) -> Result<Session> {
        Ok(Session {
            id: row.col("id")?,
            agent_id: row.col("agent_id")?,
            title: row.col("title")?,
            active_leaf_id: row.col("active_leaf_id")?,
            archived: row.col::<i64>("archived")? != 0,
            created_at: format_time(row.col("created_at")?),
            updated_at: format_time(row.col("updated_at")?),
        })
    }
}

impl FromRow for Entry {
    fn from_row(row: &AnyRow) -> Result<Entry> {
        let body: String = row.col("body")?;
        Ok(Entry {
            id: row.col("id")?,
            parent_id: row.col("parent_id")?,
            created_at: format_time(row.col("created_at")?),
            body: json("entry", &body)?,
        })
    }
}

fn check_title(title: &str) -> Result<String> {
    let title = title.trim();
    if title.chars().count() > 200 {
        return Err(StoreError::Invalid(
            "title is longer than 200 characters".into(),
        ));
    }
    Ok(title.to_string())
}

pub(crate) async fn select_session(tx: &mut Tx<'_>, p: &Principal, id: &str) -> Result<Session> {
    let visible = tx.visible(p, Table::Sessions, 2);
    let sql = tx
        .sql(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE {visible} AND id = $1"
        ))
        .into_owned();
    let row = tx
        .fetch_optional(visible.bind(sqlx::query(&sql).bind(id)))
        .await?
        .ok_or(StoreError::NotFound)?;
    Session::from_row(&row)
}

/// Every entry of a session, in the order they were appended.
async fn all_entries(tx: &mut Tx<'_>, session_id: &str) -> Result<Vec<Entry>> {
    let sql = tx
        .sql("SELECT id, parent_id, body, created_at FROM session_entries WHERE session_id = $1 ORDER BY seq")
        .into_owned();
    let rows = tx.fetch_all(sqlx::query(&sql).bind(session_id)).await?;
    rows.iter().map(Entry::from_row).collect()
}

/// The path from a root to `leaf`, read by walking parent links in the database (only
/// the path's rows are read, however large the tree). Empty when there is no such
/// entry.
async fn path_in(tx: &mut Tx<'_>, session_id: &str, leaf: &str) -> Result<Vec<Entry>> {
    let sql = tx
        .sql(
            "WITH RECURSIVE path(id, parent_id, body, created_at, depth) AS ( \
               SELECT id, parent_id, body, created_at, 0 FROM session_entries \
                 WHERE session_id = $1 AND id = $2 \
               UNION ALL \
               SELECT e.id, e.parent_id, e.body, e.created_at, path.depth + 1 \
                 FROM session_entries e JOIN path ON e.session_id = $1 AND e.id = path.parent_id \
                 WHERE path.depth < $3) \
             SELECT id, parent_id, body, created_at FROM path ORDER BY depth DESC",
        )
        .into_owned();
    let rows = tx
        .fetch_all(
            sqlx::query(&sql)
                .bind(session_id)
                .bind(leaf)
                .bind(MAX_IMPORT_ENTRIES as i64),
        )
        .await?;
    rows.iter().map(Entry::from_row).collect()
}

/// The path from a root to `leaf`, given every entry.
fn path_to(entries: &[Entry], leaf: &str) -> Result<Vec<Entry>> {
    let by_id: HashMap<&str, &Entry> = entries.iter().map(|e| (e.id.as_str(), e)).collect();
    let mut path = Vec::new();
    let mut at = Some(leaf);
    let mut seen = HashSet::new();
    while let Some(id) = at {
        let entry = by_id.get(id).ok_or(StoreError::NotFound)?;
        if !seen.insert(id) {
            return Err(StoreError::Corrupt("the entry tree has a cycle".into()));
        }
        path.push((*entry).clone());
        at = entry.parent_id.as_deref();
    }
    path.reverse();
    Ok(path)
}

async fn insert_entry(
    tx: &mut Tx<'_>,
    session_id: &str,
    entry: &Entry,
    created_ms: i64,
) -> Result<()> {
    let sql = tx
        .sql(
            "INSERT INTO session_entries (session_id, id, parent_id, seq, kind, body, search_text, created_at) \
             VALUES ($1, $2, $3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM session_entries WHERE session_id = $1), \
             $4, $5, $6, $7)",
        )
        .into_owned();
    let body = serde_json::to_string(&entry.body)
        .map_err(|e| StoreError::Invalid(format!("entry: {e}")))?;
    tx.execute(
        sqlx::query(&sql)
            .bind(session_id)
            .bind(&entry.id)
            .bind(entry.parent_id.clone())
            .bind(entry.body.kind())
            .bind(body)
            .bind(entry.body.searchable_text().to_lowercase())
            .bind(created_ms),
    )
    .await?;
    Ok(())
}

/// Append an entry inside a transaction and make it the active leaf.
pub(crate) async fn append_in(
    tx: &mut Tx<'_>,
    p: &Principal,
    session_id: &str,
    parent: Parent<'_>,
    body: EntryBody,
) -> Result<Entry> {
    // Appends to one session take turns (seq is the next number).
    tx.lock(&format!("session:{session_id}")).await?;
    let session = select_session(tx, p, session_id).await?;
    let parent = match parent {
        Parent::Entry(id) => {
            check_entry(tx, session_id, id).await?;
            Some(id.to_string())
        }
        Parent::ActiveLeaf => session.active_leaf_id.clone(),
        Parent::Root => None,
    };
    let now = now_ms();
    let entry = Entry {
        id: new_id(),
        parent_id: parent,
        created_at: format_time(now),
        body,
    };
    insert_entry(tx, session_id, &entry, now).await?;
    let sql = tx
        .sql("UPDATE sessions SET active_leaf_id = $2, updated_at = $3 WHERE id = $1")
        .into_owned();
    tx.execute(sqlx::query(&sql).bind(session_id).bind(&entry.id).bind(now))
        .await?;
    Ok(entry)
}

/// Fails with `Invalid` unless the session has this entry.
pub(crate) async fn check_entry(tx: &mut Tx<'_>, session_id: &str, id: &str) -> Result<()> {
    let sql = tx
        .sql("SELECT id FROM session_entries WHERE session_id = $1 AND id = $2")
        .into_owned();
    tx.fetch_optional(sqlx::query(&sql).bind(session_id).bind(id))
        .await?
        // An id that names nothing here is not found, like any other id.
        .ok_or(StoreError::NotFound)?;
    Ok(())
}

fn parse_time(text: &str) -> Result<i64> {
    let t = humantime::parse_rfc3339_weak(text)
        .map_err(|e| StoreError::Invalid(format!("'{text}' is not a time: {e}")))?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0))
}

impl Store {
    /// Start a session with one of the principal's agents (their default when `None`).
    #[tracing::instrument(name = "store.create_session", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn create_session(
        &self,
        p: &Principal,
        agent_id: Option<&str>,
        title: &str,
    ) -> Result<Session> {
        let title = check_title(title)?;
        let agent_id = match agent_id {
            Some(id) => self.get_agent(p, id).await?.id,
            None => self.agent_by_name(p, mosaic_api::DEFAULT_AGENT).await?.id,
        };
        let id = new_id();
        let now = now_ms();
        let mut tx = self.begin(Acting::As(p), true).await?;
        let sql = tx
            .sql(&format!(
                "INSERT INTO sessions ({SESSION_COLUMNS}, title_search) \
                 VALUES ($1, $2, $3, $4, NULL, 0, $5, $5, $6)"
            ))
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(&id)
                .bind(local_user(p)?)
                .bind(&agent_id)
                .bind(&title)
                .bind(now)
                .bind(title.to_lowercase()),
        )
        .await?;
        let session = select_session(&mut tx, p, &id).await?;
        tx.commit().await?;
        Ok(session)
    }

    /// The principal's sessions, newest first, optionally matching words in their
    /// titles or entries.
    #[tracing::instrument(name = "store.list_sessions", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn list_sessions(&self, p: &Principal, q: &SessionQuery) -> Result<Page<Session>> {
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let like = |s: &str| {
            format!(
                "%{}%",
                s.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )
        };
        let text = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
        // Titles and entries are searched in forms lowercased by Rust (Unicode-aware);
        // SQL's lower() folds ASCII only on SQLite.
        let pattern = text.map(|t| like(&t.to_lowercase())).unwrap_or_default();
        let mut tx = self.begin(Acting::As(p), false).await?;
        let search = if text.is_some() {
            "AND (title_search LIKE $4 ESCAPE '\\' \
             OR id IN (SELECT session_id FROM session_entries WHERE search_text LIKE $4 ESCAPE '\\'))"
        } else {
            "AND $4 = ''"
        };
        let visible = tx.visible(p, Table::Sessions, 5);
        let sql = tx
            .sql(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE {visible} AND archived = $1 \
                 AND ($2 = '' OR id < $2) {search} ORDER BY id DESC LIMIT $3"
            ))
            .into_owned();
        let rows = tx
            .fetch_all(
                visible.bind(
                    sqlx::query(&sql)
                        .bind(i64::from(q.archived.unwrap_or(false)))
                        .bind(q.cursor.clone().unwrap_or_default())
                        .bind(i64::from(limit) + 1)
                        .bind(pattern),
                ),
            )
            .await?;
        tx.commit().await?;
        let mut items = rows
            .iter()
            .map(Session::from_row)
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|s| s.id.clone())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    #[tracing::instrument(name = "store.get_session", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn get_session(&self, p: &Principal, id: &str) -> Result<Session> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        let s = select_session(&mut tx, p, id).await?;
        tx.commit().await?;
        Ok(s)
    }

    /// Rename and/or archive (or unarchive) a session.
    #[tracing::instrument(name = "store.update_session", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn update_session(
        &self,
        p: &Principal,
        id: &str,
        title: Option<&str>,
        archived: Option<bool>,
    ) -> Result<Session> {
        let title = title.map(check_title).transpose()?;
        let mut tx = self.begin(Acting::As(p), true).await?;
        select_session(&mut tx, p, id).await?;
        let sql = tx
            .sql(
                "UPDATE sessions SET title = COALESCE($2, title), \
                 title_search = COALESCE($5, title_search), archived = COALESCE($3, archived), \
                 updated_at = $4 WHERE id = $1",
            )
            .into_owned();
        let title_search = title.as_deref().map(str::to_lowercase);
        tx.execute(
            sqlx::query(&sql)
                .bind(id)
                .bind(title)
                .bind(archived.map(i64::from))
                .bind(now_ms())
                .bind(title_search),
        )
        .await?;
        let s = select_session(&mut tx, p, id).await?;
        tx.commit().await?;
        Ok(s)
    }

    #[tracing::instrument(name = "store.delete_session", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn delete_session(&self, p: &Principal, id: &str) -> Result<()> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        select_session(&mut tx, p, id).await?;
        let sql = tx.sql("DELETE FROM sessions WHERE id = $1").into_owned();
        tx.execute(sqlx::query(&sql).bind(id)).await?;
        tx.commit().await
    }

    /// Append an entry and make it the active leaf. Appending under an entry that
    /// already has children starts a branch.
    #[tracing::instrument(name = "store.append_entry", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn append_entry(
        &self,
        p: &Principal,
        session_id: &str,
        parent: Parent<'_>,
        body: EntryBody,
    ) -> Result<Entry> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        let entry = append_in(&mut tx, p, session_id, parent, body).await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// The entries from a root to `leaf` (the active leaf when `None`).
    #[tracing::instrument(name = "store.session_path", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn session_path(
        &self,
        p: &Principal,
        session_id: &str,
        leaf: Option<&str>,
    ) -> Result<Vec<Entry>> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        let session = select_session(&mut tx, p, session_id).await?;
        let Some(target) = leaf.or(session.active_leaf_id.as_deref()) else {
            tx.commit().await?;
            return Ok(Vec::new());
        };
        let path = path_in(&mut tx, session_id, target).await?;
        tx.commit().await?;
        match (path.first(), leaf) {
            (Some(root), _) if root.parent_id.is_some() => {
                Err(StoreError::Corrupt("the entry tree is broken".into()))
            }
            // A leaf that names nothing here is not found, like any other id.
            (None, Some(_)) => Err(StoreError::NotFound),
            (None, None) => Err(StoreError::NotFound),
            _ => Ok(path),
        }
    }

    /// Every branch (leaf) of a session, oldest first.
    #[tracing::instrument(name = "store.session_branches", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn session_branches(&self, p: &Principal, session_id: &str) -> Result<Vec<Branch>> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        let session = select_session(&mut tx, p, session_id).await?;
        let entries = all_entries(&mut tx, session_id).await?;
        tx.commit().await?;
        let parents: HashSet<&str> = entries
            .iter()
            .filter_map(|e| e.parent_id.as_deref())
            .collect();
        entries
            .iter()
            .filter(|e| !parents.contains(e.id.as_str()))
            .map(|leaf| {
                Ok(Branch {
                    leaf: leaf.clone(),
                    length: path_to(&entries, &leaf.id)?.len() as u32,
                    active: session.active_leaf_id.as_deref() == Some(leaf.id.as_str()),
                })
            })
            .collect()
    }

    /// Continue the session from another entry.
    #[tracing::instrument(name = "store.set_active_leaf", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn set_active_leaf(
        &self,
        p: &Principal,
        session_id: &str,
        entry_id: &str,
    ) -> Result<Session> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        select_session(&mut tx, p, session_id).await?;
        check_entry(&mut tx, session_id, entry_id).await?;
        let sql = tx
            .sql("UPDATE sessions SET active_leaf_id = $2, updated_at = $3 WHERE id = $1")
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(session_id)
                .bind(entry_id)
                .bind(now_ms()),
        )
        .await?;
        let s = select_session(&mut tx, p, session_id).await?;
        tx.commit().await?;
        Ok(s)
    }

    /// The session as JSON Lines: a header, then every entry, parents first.
    #[tracing::instrument(name = "store.export_session", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn export_session(&self, p: &Principal, session_id: &str) -> Result<String> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        let session = select_session(&mut tx, p, session_id).await?;
        let entries = all_entries(&mut tx, session_id).await?;
        tx.commit().await?;
        let agent = match &session.agent_id {
            Some(id) => self.get_agent(p, id).await.ok().map(|a| a.name),
            None => None,
        };
        let header = ExportHeader {
            format: "mosaic.session".into(),
            version: 1,
            title: session.title,
            agent,
            active_leaf_id: session.active_leaf_id,
            archived: session.archived,
            created_at: session.created_at,
        };
        let mut out = json_line(&header)?;
        for e in &entries {
            out.push_str(&json_line(e)?);
        }
        Ok(out)
    }

    /// Recreate an exported session (a new session id; the same entries, ids, times
    /// and tree). Everything is checked before anything is written.
    #[tracing::instrument(name = "store.import_session", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn import_session(&self, p: &Principal, jsonl: &str) -> Result<Session> {
        let mut lines = jsonl.lines().filter(|l| !l.trim().is_empty());
        let header: ExportHeader = serde_json::from_str(
            lines
                .next()
                .ok_or_else(|| StoreError::Invalid("the export is empty".into()))?,
        )
        .map_err(|e| StoreError::Invalid(format!("line 1 is not a session header: {e}")))?;
        if header.format != "mosaic.session" || header.version != 1 {
            return Err(StoreError::Invalid(format!(
                "unsupported export format {} version {}",
                header.format, header.version
            )));
        }
        let mut entries = Vec::new();
        let mut ids = HashSet::new();
        for (i, line) in lines.enumerate() {
            let entry: Entry = serde_json::from_str(line)
                .map_err(|e| StoreError::Invalid(format!("line {} is not an entry: {e}", i + 2)))?;
            if entry.body == EntryBody::Unknown {
                return Err(StoreError::Invalid(format!(
                    "line {}: an entry of a kind this gateway does not know",
                    i + 2
                )));
            }
            if let Some(parent) = &entry.parent_id {
                if !ids.contains(parent) {
                    return Err(StoreError::Invalid(format!(
                        "line {}: parent {parent} does not come before it",
                        i + 2
                    )));
                }
            }
            if !ids.insert(entry.id.clone()) || entry.id.is_empty() || entry.id.len() > 64 {
                return Err(StoreError::Invalid(format!(
                    "line {}: bad or repeated entry id",
                    i + 2
                )));
            }
            entries.push(entry);
            if entries.len() > MAX_IMPORT_ENTRIES {
                return Err(StoreError::Invalid(
                    "the export has too many entries".into(),
                ));
            }
        }
        if let Some(leaf) = &header.active_leaf_id {
            if !ids.contains(leaf) {
                return Err(StoreError::Invalid(
                    "the active leaf is not among the entries".into(),
                ));
            }
        }
        let title = check_title(&header.title)?;
        let agent_id = match &header.agent {
            Some(name) => match self.agent_by_name(p, name).await {
                Ok(a) => a.id,
                Err(StoreError::NotFound) => {
                    self.agent_by_name(p, mosaic_api::DEFAULT_AGENT).await?.id
                }
                Err(e) => return Err(e),
            },
            None => self.agent_by_name(p, mosaic_api::DEFAULT_AGENT).await?.id,
        };
        let created = parse_time(&header.created_at)?;
        let times = entries
            .iter()
            .map(|e| parse_time(&e.created_at))
            .collect::<Result<Vec<_>>>()?;
        let id = new_id();
        let mut tx = self.begin(Acting::As(p), true).await?;
        let sql = tx
            .sql(&format!(
                "INSERT INTO sessions ({SESSION_COLUMNS}, title_search) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ))
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(&id)
                .bind(local_user(p)?)
                .bind(&agent_id)
                .bind(&title)
                .bind(header.active_leaf_id.clone())
                .bind(i64::from(header.archived))
                .bind(created)
                .bind(now_ms())
                .bind(title.to_lowercase()),
        )
        .await?;
        for (entry, ms) in entries.iter().zip(times) {
            insert_entry(&mut tx, &id, entry, ms).await?;
        }
        let s = select_session(&mut tx, p, &id).await?;
        tx.commit().await?;
        Ok(s)
    }
}

/// One JSON line of an export.
fn json_line<T: serde::Serialize>(value: &T) -> Result<String> {
    let mut s =
        serde_json::to_string(value).map_err(|e| StoreError::Invalid(format!("export: {e}")))?;
    s.push('\n');
    Ok(s)
}
