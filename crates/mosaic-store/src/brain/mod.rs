//! The brain: projects, tasks, missions, notes and memories, and hybrid (lexical and
//! vector) search over tasks, notes and memories.
//!
//! Tenancy follows workspaces: an item is owned by one user or one team, chosen at
//! creation and never changed. A personal item is its owner's alone; a team's items are
//! read *and written* by every member (they are shared working material: whoever picks
//! up a task moves it), and deleted only by the team's owners and admins. Workspaces
//! are stricter (only owners and admins change them) because they are structure, not
//! work. Anything the principal may not see is `NotFound`.
//!
//! References stay inside one owner: a project's workspace, an item's project and a
//! task's parent and mission must be visible to the principal and have the item's
//! owner, and a task's assignee is the owning user or a member of the owning team.

mod kinds;
mod list;
mod memories;
mod missions;
mod notes;
mod projects;
mod search;
mod tasks;
mod vectors;

pub use search::MAX_HITS;
pub(crate) use vectors::VectorIndex;
pub use vectors::{PendingText, QueryVector, MAX_EMBED_CHARS};

use mosaic_api::{Owner, MAX_BODY_BYTES, MAX_LABELS, MAX_LABEL_CHARS, MAX_TITLE_CHARS};

use crate::db::{Backend, Tx};
use crate::principal::local_user;
use crate::row::FromRow;
use crate::teams::role_in_team;
use crate::visibility::Table;
use crate::{Principal, Result, StoreError};

/// The `(owner_user_id, owner_team_id)` columns of an owner.
pub(crate) fn owner_columns(owner: &Owner) -> Result<(Option<String>, Option<String>)> {
    match owner {
        Owner::User { id } => Ok((Some(id.clone()), None)),
        Owner::Team { id } => Ok((None, Some(id.clone()))),
        Owner::Unknown => Err(unknown_owner()),
    }
}

/// An owner of a kind this build does not store (it only ever reads users and teams).
pub(crate) fn unknown_owner() -> StoreError {
    StoreError::Invalid("an owner of a kind this gateway does not know".into())
}

/// The owner of a new item: the caller, or a team they are a member of.
pub(crate) async fn new_owner(
    tx: &mut Tx<'_>,
    p: &Principal,
    team_id: Option<&str>,
) -> Result<Owner> {
    match team_id {
        Some(team) => {
            role_in_team(tx, p, team).await?;
            Ok(Owner::Team { id: team.into() })
        }
        None => Ok(Owner::User {
            id: local_user(p)?.into(),
        }),
    }
}

/// Fails unless the principal may delete an item of this (visible) owner.
pub(crate) async fn check_may_delete(tx: &mut Tx<'_>, p: &Principal, owner: &Owner) -> Result<()> {
    match owner {
        Owner::User { .. } => Ok(()),
        Owner::Unknown => Err(unknown_owner()),
        Owner::Team { id } => {
            if role_in_team(tx, p, id).await?.can_manage() {
                Ok(())
            } else {
                Err(StoreError::Forbidden(
                    "only team owners and admins delete a team's items".into(),
                ))
            }
        }
    }
}

/// Fails with `Conflict` unless `table` has a row `id` visible to the principal with
/// this owner.
pub(crate) async fn check_reference(
    tx: &mut Tx<'_>,
    p: &Principal,
    table: Table,
    what: &str,
    id: &str,
    owner: &Owner,
) -> Result<()> {
    let visible = tx.visible(p, table, 2);
    let sql = tx
        .sql(&format!(
            "SELECT owner_user_id, owner_team_id FROM {} WHERE id = $1 AND {visible}",
            table.name()
        ))
        .into_owned();
    let row = tx
        .fetch_optional(visible.bind(sqlx::query(&sql).bind(id)))
        .await?;
    match row {
        Some(row) if Owner::from_row(&row)? == *owner => Ok(()),
        // Well formed, but naming nothing it may refer to: a conflict with what exists.
        _ => Err(StoreError::Conflict(format!(
            "no {what} {id} with the same owner"
        ))),
    }
}

/// A title or project name: trimmed, 1 to 300 characters.
pub(crate) fn check_title(title: &str, what: &str) -> Result<String> {
    let title = title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return Err(StoreError::Invalid(format!(
            "{what} must be 1-{MAX_TITLE_CHARS} characters"
        )));
    }
    Ok(title.to_string())
}

pub(crate) fn check_body(body: &str, what: &str) -> Result<()> {
    if body.len() > MAX_BODY_BYTES {
        return Err(StoreError::Invalid(format!(
            "{what} is longer than {MAX_BODY_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Labels or tags as stored: trimmed, lowercase, sorted, without repeats or blanks.
pub(crate) fn normalise_labels(labels: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = labels
        .iter()
        .map(|l| l.trim().to_lowercase())
        .filter(|l| !l.is_empty())
        .collect();
    out.sort();
    out.dedup();
    if out.len() > MAX_LABELS {
        return Err(StoreError::Invalid(format!(
            "at most {MAX_LABELS} labels or tags"
        )));
    }
    for l in &out {
        if l.chars().count() > MAX_LABEL_CHARS || l.contains(',') {
            return Err(StoreError::Invalid(format!(
                "a label or tag is at most {MAX_LABEL_CHARS} characters, without commas: '{l}'"
            )));
        }
    }
    Ok(out)
}

/// `,a,b,` (or empty): "has label x" is then `LIKE '%,x,%'`.
pub(crate) fn encode_labels(labels: &[String]) -> String {
    if labels.is_empty() {
        String::new()
    } else {
        format!(",{},", labels.join(","))
    }
}

pub(crate) fn decode_labels(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The LIKE pattern of a label filter; empty (no filter) when absent.
pub(crate) fn label_pattern(label: Option<&str>) -> String {
    match label.map(|l| l.trim().to_lowercase()) {
        Some(l) if !l.is_empty() => format!(
            "%,{},%",
            l.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        ),
        _ => String::new(),
    }
}

pub(crate) fn parse_time(text: &str) -> Result<i64> {
    let t = humantime::parse_rfc3339_weak(text)
        .map_err(|e| StoreError::Invalid(format!("'{text}' is not a time: {e}")))?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0))
}

/// Most words a search uses.
const MAX_TERMS: usize = 32;

/// The words of a search or of indexed text: lowercased (Unicode-aware) runs of letters
/// and digits. Everything else separates words, so user input reaches the engines'
/// query languages as plain words only (no operators, quotes or wildcards).
pub(crate) fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The engine's query for the words of `q` (all must occur); `None` when `q` has none.
pub(crate) fn text_query(backend: Backend, q: &str) -> Option<String> {
    // Each word once: a repeated word matches the same items, and PostgreSQL would
    // count it twice when it estimates how many items match (and plan for too few).
    let mut seen = std::collections::HashSet::new();
    let terms: Vec<String> = words(q)
        .filter(|w| seen.insert(w.clone()))
        .take(MAX_TERMS)
        .collect();
    if terms.is_empty() {
        return None;
    }
    Some(match backend {
        // Each term a quoted FTS5 string: only letters and digits inside, so no
        // operator, column filter or NEAR group can be formed.
        Backend::Sqlite => terms
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(" "),
        // Given to plainto_tsquery, which ANDs the words and has no operators.
        Backend::Postgres => terms.join(" "),
    })
}

/// The SQL condition "row matches `$n`" for a table's text index.
pub(crate) fn matches(backend: Backend, table: &str, n: u32) -> String {
    match backend {
        Backend::Sqlite => {
            format!("seq IN (SELECT rowid FROM {table}_fts WHERE {table}_fts MATCH ${n})")
        }
        Backend::Postgres => format!(
            "id IN (SELECT id FROM {table}_words WHERE search @@ plainto_tsquery('simple', ${n}))"
        ),
    }
}

/// Keep a row's text index current after its text was written, and drop its embedding,
/// which described the old text (the embedder computes a new one). SQLite's FTS5
/// index follows by triggers; PostgreSQL's `search` column is written here, from the
/// same words a query is made of.
pub(crate) async fn index_text(
    tx: &mut Tx<'_>,
    backend: Backend,
    table: &str,
    id: &str,
    title: &str,
    body: &str,
) -> Result<()> {
    let clear = "embedding = NULL, embedding_model = NULL, embedding_dims = NULL";
    match backend {
        Backend::Sqlite => {
            let sql = format!("UPDATE {table} SET {clear} WHERE id = ?1");
            tx.execute(sqlx::query(&sql).bind(id)).await?;
        }
        Backend::Postgres => {
            let sql = format!("UPDATE {table} SET {clear} WHERE id = $1");
            tx.execute(sqlx::query(&sql).bind(id)).await?;
            // The words live beside the row (see migration 0009): the owner is copied
            // from it, so a search can filter by owner before it ranks.
            let sql = format!(
                "INSERT INTO {table}_words (id, owner_user_id, owner_team_id, search) \
                 SELECT id, owner_user_id, owner_team_id, \
                 setweight(to_tsvector('simple', $2), 'A') || setweight(to_tsvector('simple', $3), 'B') \
                 FROM {table} WHERE id = $1 \
                 ON CONFLICT (id) DO UPDATE SET search = EXCLUDED.search"
            );
            let title: Vec<String> = words(title).collect();
            let body: Vec<String> = words(body).collect();
            tx.execute(
                sqlx::query(&sql)
                    .bind(id)
                    .bind(title.join(" "))
                    .bind(body.join(" ")),
            )
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_search_input_becomes_plain_quoted_words() {
        assert_eq!(
            text_query(Backend::Sqlite, r#"say "hi" NEAR(a b) -x * title:Größe"#).as_deref(),
            Some(r#""say" "hi" "near" "a" "b" "x" "title" "größe""#)
        );
        assert_eq!(text_query(Backend::Sqlite, r#" "* - ( ) ""#), None);
        assert_eq!(
            text_query(Backend::Postgres, "a&b | !c:*").as_deref(),
            Some("a b c")
        );
    }

    #[test]
    fn labels_are_trimmed_lowercased_sorted_and_unique() {
        let labels = normalise_labels(&[" Urgent ".into(), "bug".into(), "BUG".into(), "".into()])
            .unwrap_or_default();
        assert_eq!(labels, vec!["bug".to_string(), "urgent".to_string()]);
        assert_eq!(encode_labels(&labels), ",bug,urgent,");
        assert_eq!(decode_labels(",bug,urgent,"), labels);
        assert!(normalise_labels(&["a,b".into()]).is_err());
        assert_eq!(label_pattern(Some(" A_b ")), "%,a\\_b,%");
    }
}
