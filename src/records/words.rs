//! Rows in the LMS's own words: a course by its title, a user by username,
//! an enrollment as user and course. Tables the LMS does not know are
//! described by their primary key.

use serde_json::Value;
use sqlx::PgPool;

use super::schema::Table;

/// `key` (`{"column": value}`) of `table`, as read from `pool`.
pub(crate) async fn describe(pool: &PgPool, table: &Table, key: &Value) -> String {
    describe_many(pool, table, std::slice::from_ref(key))
        .await
        .pop()
        .unwrap_or_else(|| by_key(key))
}

/// Each of `keys` of `table`, as read from `pool`, in one query: in the
/// LMS's words with the key after them, or by key alone.
pub(crate) async fn describe_many(pool: &PgPool, table: &Table, keys: &[Value]) -> Vec<String> {
    let plain: Vec<String> = keys.iter().map(by_key).collect();
    let ids: Vec<Option<i64>> = keys.iter().map(|k| lms_id(table, k)).collect();
    let wanted: Vec<i64> = ids.iter().flatten().copied().collect();
    let Some(sql) = words_sql(&table.name).filter(|_| !wanted.is_empty()) else {
        return plain;
    };
    let found: Result<Vec<(i64, String)>, sqlx::Error> =
        sqlx::query_as(sql).bind(&wanted).fetch_all(pool).await;
    let found: std::collections::HashMap<i64, String> = match found {
        Ok(rows) => rows.into_iter().collect(),
        Err(e) => {
            tracing::debug!(error = %e, table = %table.qualified(), "could not describe rows");
            Default::default()
        }
    };
    ids.iter()
        .zip(plain)
        .map(|(id, plain)| match id.and_then(|id| found.get(&id)) {
            Some(words) => format!("{words} [{plain}]"),
            None => plain,
        })
        .collect()
}

/// The query giving (id, words) of the LMS table `name` for `ids` ($1).
fn words_sql(name: &str) -> Option<&'static str> {
    Some(match name {
        "users" => {
            "SELECT id, 'user ' || username || ' (' || CASE WHEN full_name <> '' THEN full_name || ', ' ELSE '' END
                    || email || ')'
             FROM public.users WHERE id = ANY($1)"
        }
        "courses" => {
            "SELECT id, 'course “' || title || '” (' || code || ')' FROM public.courses WHERE id = ANY($1)"
        }
        "lessons" => {
            "SELECT l.id, 'lesson “' || l.title || '” of ' || coalesce('“' || c.title || '”', 'course ' || l.course_id)
             FROM public.lessons l LEFT JOIN public.courses c ON c.id = l.course_id WHERE l.id = ANY($1)"
        }
        "enrollments" => {
            "SELECT e.id, 'enrollment of ' || coalesce(u.username, 'user ' || e.user_id) || ' in '
                    || coalesce('“' || c.title || '”', 'course ' || e.course_id)
             FROM public.enrollments e
             LEFT JOIN public.users u ON u.id = e.user_id
             LEFT JOIN public.courses c ON c.id = e.course_id WHERE e.id = ANY($1)"
        }
        "activity_events" => {
            "SELECT a.id, coalesce(u.username, 'user ' || a.user_id) || ' ' || replace(a.kind, '_', ' ')
                    || ' at ' || to_char(a.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC'
             FROM public.activity_events a LEFT JOIN public.users u ON u.id = a.user_id
             WHERE a.id = ANY($1)"
        }
        "lesson_attachments" => {
            "SELECT id, 'attachment ' || filename FROM public.lesson_attachments WHERE id = ANY($1)"
        }
        _ => return None,
    })
}

/// The LMS table's `id`, when `table` is one of the LMS's and keyed by it.
fn lms_id(table: &Table, key: &Value) -> Option<i64> {
    if lms_types::records::table_nouns(&table.schema, &table.name).is_none()
        || table.key.as_deref() != Some(&["id".to_owned()][..])
    {
        return None;
    }
    match key.get("id")? {
        Value::String(s) => s.parse().ok(),
        other => other.as_i64(),
    }
}

/// `id=5` / `course_id=3, user_id=7`.
pub(crate) fn by_key(key: &Value) -> String {
    // A row of a table without a primary key: `[row, n]`.
    if let Some(row) = key.as_array().and_then(|a| a.first()) {
        return by_key(row);
    }
    match key.as_object() {
        Some(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        None => key.to_string(),
    }
}
