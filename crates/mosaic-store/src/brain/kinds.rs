//! The three searchable kinds (tasks, notes, memories) as SQL: their tables, their text
//! columns, and statements that cover several kinds at once. Shared by word search,
//! meaning search and the embedder.

use mosaic_api::BrainKind;

use crate::row::Columns;
use crate::visibility::{Table, Visible};
use crate::Result;

/// The name of a kind's table.
pub(crate) fn table(kind: BrainKind) -> &'static str {
    Table::brain(kind).name()
}

/// The `title` and `body` of a kind's rows, as SQL (a memory has only its text).
pub(crate) fn text_columns(kind: BrainKind) -> &'static str {
    match kind {
        BrainKind::Memory => "text AS title, '' AS body",
        _ => "title, body",
    }
}

/// The condition "the text is still `$2`/`$3`".
pub(crate) fn same_text(kind: BrainKind, first: u32) -> String {
    match kind {
        BrainKind::Memory => format!("text = ${first}"),
        _ => format!("title = ${first} AND body = ${}", first + 1),
    }
}

pub(crate) const ALL_KINDS: [BrainKind; 3] = [BrainKind::Task, BrainKind::Note, BrainKind::Memory];

/// One statement over several kinds: `part(i, kind)` is the parenthesised query of
/// the `i`-th kind, selecting `i AS k` (read back with [`row_kind`]).
pub(crate) fn union_per_kind(
    kinds: &[BrainKind],
    part: impl Fn(usize, BrainKind) -> String,
) -> String {
    kinds
        .iter()
        .enumerate()
        .map(|(i, &kind)| part(i, kind))
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// The position in `kinds` of a row of a [`union_per_kind`] statement.
pub(crate) fn row_kind(row: &sqlx::any::AnyRow, kinds: &[BrainKind]) -> Result<Option<usize>> {
    let k: i32 = row.col("k")?;
    Ok(usize::try_from(k).ok().filter(|&k| k < kinds.len()))
}

/// The visibility conditions of several kinds' tables for one statement, numbered one
/// after another from `$first`; `one(table, first)` makes one (bind them all, in order,
/// with [`bind_all`]).
pub(crate) fn visible_per_kind(
    kinds: &[BrainKind],
    first: u32,
    one: impl Fn(Table, u32) -> Visible,
) -> Vec<Visible> {
    let mut next = first;
    kinds
        .iter()
        .map(|&kind| {
            let visible = one(Table::brain(kind), next);
            next += visible.binds.len() as u32;
            visible
        })
        .collect()
}

/// Bind the values of [`visible_per_kind`]'s conditions.
pub(crate) fn bind_all<'q>(
    visible: Vec<Visible>,
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for v in visible {
        query = v.bind(query);
    }
    query
}
