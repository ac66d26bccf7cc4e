//! Notes: markdown documents with tags, optionally in a project.

use mosaic_api::{BrainKind, CreateNoteRequest, Note, NoteQuery, Owner, Page, UpdateNoteRequest};
use sqlx::any::AnyRow;

use super::list::BrainList;
use super::{
    check_body, check_may_delete, check_reference, check_title, decode_labels, encode_labels,
    index_text, new_owner, normalise_labels, owner_columns,
};
use crate::db::{Acting, Tx};
use crate::row::{Columns, FromRow};
use crate::visibility::Table;
use crate::{format_time, new_id, now_ms, Principal, Result, Store, StoreError};

const NOTE_COLUMNS: &str =
    "id, title, body, tags, project_id, owner_user_id, owner_team_id, created_at, updated_at";

impl FromRow for Note {
    fn from_row(row: &AnyRow) -> Result<Note> {
        Ok(Note {
            id: row.col("id")?,
            title: row.col("title")?,
            body: row.col("body")?,
            tags: decode_labels(&row.col::<String>("tags")?),
            project_id: row.col("project_id")?,
            owner: Owner::from_row(row)?,
            created_at: format_time(row.col("created_at")?),
            updated_at: format_time(row.col("updated_at")?),
        })
    }
}

async fn select_note(tx: &mut Tx<'_>, p: &Principal, id: &str) -> Result<Note> {
    let visible = tx.visible(p, Table::Notes, 2);
    let sql = tx
        .sql(&format!(
            "SELECT {NOTE_COLUMNS} FROM notes WHERE id = $1 AND {visible}"
        ))
        .into_owned();
    let row = tx
        .fetch_optional(visible.bind(sqlx::query(&sql).bind(id)))
        .await?
        .ok_or(StoreError::NotFound)?;
    Note::from_row(&row)
}

impl Store {
    /// Create a note, owned by the caller or by one of their teams.
    #[tracing::instrument(name = "store.create_note", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn create_note(&self, p: &Principal, req: &CreateNoteRequest) -> Result<Note> {
        let title = check_title(&req.title, "note title")?;
        check_body(&req.body, "note")?;
        let tags = normalise_labels(&req.tags)?;
        let mut tx = self.begin(Acting::As(p), true).await?;
        let owner = new_owner(&mut tx, p, req.team_id.as_deref()).await?;
        if let Some(project) = &req.project_id {
            check_reference(&mut tx, p, Table::Projects, "project", project, &owner).await?;
        }
        let (user_owner, team_owner) = owner_columns(&owner)?;
        let id = new_id();
        let sql = tx
            .sql(&format!(
                "INSERT INTO notes ({NOTE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"
            ))
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(&id)
                .bind(&title)
                .bind(&req.body)
                .bind(encode_labels(&tags))
                .bind(req.project_id.clone())
                .bind(user_owner)
                .bind(team_owner)
                .bind(now_ms()),
        )
        .await?;
        index_text(&mut tx, self.backend(), "notes", &id, &title, &req.body).await?;
        let note = select_note(&mut tx, p, &id).await?;
        tx.commit().await?;
        self.text_changed();
        Ok(note)
    }

    #[tracing::instrument(name = "store.get_note", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn get_note(&self, p: &Principal, id: &str) -> Result<Note> {
        let mut tx = self.begin(Acting::As(p), false).await?;
        let note = select_note(&mut tx, p, id).await?;
        tx.commit().await?;
        Ok(note)
    }

    /// The notes the caller can see that pass every given filter, newest first.
    #[tracing::instrument(name = "store.list_notes", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn list_notes(&self, p: &Principal, q: &NoteQuery) -> Result<Page<Note>> {
        BrainList::new(Table::Notes, NOTE_COLUMNS)
            .eq("project_id", q.project_id.as_deref())
            .label("tags", q.tag.as_deref())
            .words(self, q.q.as_deref())
            .page(self, p, q.cursor.as_deref(), q.limit, Note::from_row, |n| {
                n.id.clone()
            })
            .await
    }

    /// Change a note; members of an owning team may.
    #[tracing::instrument(name = "store.update_note", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn update_note(
        &self,
        p: &Principal,
        id: &str,
        req: &UpdateNoteRequest,
    ) -> Result<Note> {
        let title = req
            .title
            .as_deref()
            .map(|t| check_title(t, "note title"))
            .transpose()?;
        if let Some(body) = &req.body {
            check_body(body, "note")?;
        }
        let tags = req.tags.as_deref().map(normalise_labels).transpose()?;
        let mut tx = self.begin(Acting::As(p), true).await?;
        let old = select_note(&mut tx, p, id).await?;
        if let Some(Some(project)) = &req.project_id {
            check_reference(&mut tx, p, Table::Projects, "project", project, &old.owner).await?;
        }
        let (old_title, old_body) = (old.title.clone(), old.body.clone());
        let title = title.unwrap_or(old.title);
        let body = req.body.clone().unwrap_or(old.body);
        let sql = tx
            .sql(
                "UPDATE notes SET title = $2, body = $3, tags = $4, project_id = $5, \
                 updated_at = $6 WHERE id = $1",
            )
            .into_owned();
        tx.execute(
            sqlx::query(&sql)
                .bind(id)
                .bind(&title)
                .bind(&body)
                .bind(encode_labels(&tags.unwrap_or(old.tags)))
                .bind(req.project_id.clone().unwrap_or(old.project_id))
                .bind(now_ms()),
        )
        .await?;
        let text_changed = title != old_title || body != old_body;
        if text_changed {
            index_text(&mut tx, self.backend(), "notes", id, &title, &body).await?;
        }
        let note = select_note(&mut tx, p, id).await?;
        tx.commit().await?;
        if text_changed {
            self.text_changed();
        }
        Ok(note)
    }

    /// Delete a note (a team's: its owners and admins only).
    #[tracing::instrument(name = "store.delete_note", skip_all,
        fields(otel.kind = "internal", db.system = self.backend().otel_name()))]
    pub async fn delete_note(&self, p: &Principal, id: &str) -> Result<()> {
        let mut tx = self.begin(Acting::As(p), true).await?;
        let old = select_note(&mut tx, p, id).await?;
        check_may_delete(&mut tx, p, &old.owner).await?;
        let sql = tx.sql("DELETE FROM notes WHERE id = $1").into_owned();
        tx.execute(sqlx::query(&sql).bind(id)).await?;
        tx.commit().await?;
        self.forget_vector(BrainKind::Note, id).await;
        Ok(())
    }
}
