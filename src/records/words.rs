//! Rows in the LMS's own words: a course by its title, a user by username,
//! an enrollment as user and course. Tables the LMS does not know are
//! described by their primary key.

use serde_json::Value;
use sqlx::PgPool;

use super::schema::Table;

/// `key` (`{"column": value}`) of `table`, as read from `pool`.
pub(crate) async fn describe(pool: &PgPool, table: &Table, key: &Value) -> String {
    let by_key = by_key(key);
    let Some(id) = lms_id(table, key) else {
        return by_key;
    };
    let words: Result<Option<String>, sqlx::Error> = match table.name.as_str() {
        "users" => {
            sqlx::query_scalar(
                "SELECT 'user ' || username || CASE WHEN full_name <> '' THEN ' (' || full_name || ')' ELSE '' END
                 FROM public.users WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        }
        "courses" => {
            sqlx::query_scalar(
                "SELECT 'course “' || title || '” (' || code || ')' FROM public.courses WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        }
        "lessons" => {
            sqlx::query_scalar(
                "SELECT 'lesson “' || l.title || '” of ' || coalesce('“' || c.title || '”', 'course ' || l.course_id)
                 FROM public.lessons l LEFT JOIN public.courses c ON c.id = l.course_id WHERE l.id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        }
        "enrollments" => {
            sqlx::query_scalar(
                "SELECT 'enrollment of ' || coalesce(u.username, 'user ' || e.user_id) || ' in '
                        || coalesce('“' || c.title || '”', 'course ' || e.course_id)
                 FROM public.enrollments e
                 LEFT JOIN public.users u ON u.id = e.user_id
                 LEFT JOIN public.courses c ON c.id = e.course_id WHERE e.id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        }
        "activity_events" => {
            sqlx::query_scalar(
                "SELECT coalesce(u.username, 'user ' || a.user_id) || ' ' || replace(a.kind, '_', ' ')
                        || ' at ' || to_char(a.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC'
                 FROM public.activity_events a LEFT JOIN public.users u ON u.id = a.user_id
                 WHERE a.id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        }
        "lesson_attachments" => {
            sqlx::query_scalar(
                "SELECT 'attachment ' || filename FROM public.lesson_attachments WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        }
        _ => Ok(None),
    };
    match words {
        Ok(Some(words)) => format!("{words} [{by_key}]"),
        Ok(None) => by_key,
        Err(e) => {
            tracing::debug!(error = %e, table = %table.qualified(), "could not describe a row");
            by_key
        }
    }
}

/// The LMS table's `id`, when `table` is one of the LMS's and keyed by it.
fn lms_id(table: &Table, key: &Value) -> Option<i64> {
    if lms_types::records::table_nouns(&table.schema, &table.name).is_none()
        || table.key.as_deref() != Some(&["id".to_owned()][..])
    {
        return None;
    }
    key.get("id")?.as_i64()
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
