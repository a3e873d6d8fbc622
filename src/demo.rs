//! Realistic demo data for the LMS database: instructors, students, courses
//! with lessons, enrollments and a long tail of learning activity.
//!
//! Everything is generated inside PostgreSQL from `generate_series`, so even
//! hundreds of megabytes take seconds, and the same scale always produces the
//! same rows. Demo accounts cannot sign in (their password hash is `!`).

use serde::Serialize;
use sqlx::PgPool;

use crate::{Error, Result};

/// Largest accepted `--scale` (about 5 MB per unit).
pub const MAX_SCALE: u32 = 400;

/// What seeding did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub enum SeedOutcome {
    /// The database already held courses; nothing was changed.
    AlreadySeeded { courses: i64, users: i64 },
    /// Rows inserted, and the database size afterwards.
    Seeded {
        users: i64,
        courses: i64,
        lessons: i64,
        attachments: i64,
        enrollments: i64,
        events: i64,
        database_bytes: i64,
    },
}

/// Fills an LMS database that has no courses yet; leaves any other alone.
/// Scale 1 is a few megabytes, and size grows linearly with the scale.
#[tracing::instrument(skip(lms))]
pub async fn seed(lms: &PgPool, scale: u32) -> Result<SeedOutcome> {
    if scale == 0 || scale > MAX_SCALE {
        return Err(Error::Invalid(format!(
            "--scale must be between 1 and {MAX_SCALE}"
        )));
    }
    let scale = i64::from(scale);
    let mut tx = lms.begin().await?;
    // Two seeders at once would otherwise both see an empty database.
    sqlx::query("LOCK TABLE courses IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let (courses, users): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM courses), (SELECT count(*) FROM users)")
            .fetch_one(&mut *tx)
            .await?;
    if courses > 0 {
        return Ok(SeedOutcome::AlreadySeeded { courses, users });
    }
    sqlx::query("SELECT setseed(0.42)")
        .execute(&mut *tx)
        .await?;

    let mut inserted = Vec::new();
    for statement in SEED_STATEMENTS {
        let done = sqlx::query(statement).bind(scale).execute(&mut *tx).await?;
        inserted.push(done.rows_affected() as i64);
    }
    tx.commit().await?;
    let database_bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(lms)
        .await?;
    Ok(SeedOutcome::Seeded {
        users: inserted[0] + inserted[1],
        courses: inserted[2],
        lessons: inserted[3],
        attachments: inserted[4],
        enrollments: inserted[5],
        events: inserted[6],
        database_bytes,
    })
}

/// Inserts `$1 * 20` attachments of 64 KiB of incompressible bytes.
pub const ATTACHMENTS_SQL: &str = "WITH ls AS (SELECT array_agg(id ORDER BY id) AS a FROM lessons)
     INSERT INTO lesson_attachments (lesson_id, filename, content_type, content)
     SELECT ls.a[1 + (g * 31) % cardinality(ls.a)], format('slides-%s.pdf', g), 'application/pdf',
            decode((SELECT string_agg(md5(g || ':' || s || ':' || random()), '') FROM generate_series(1, 4096) AS s), 'hex')
     FROM generate_series(1, $1 * 20) AS g, ls";

/// Each statement takes the scale as `$1`.
const SEED_STATEMENTS: [&str; 7] = [
    // Instructors.
    "INSERT INTO users (username, email, full_name, password_hash, role, created_at)
     SELECT format('instructor%s', lpad(g::text, 4, '0')),
            format('instructor%s@example.edu', g),
            (ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald','Frances','John'])[1 + g % 8]
              || ' ' || (ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Allen','Backus'])[1 + (g / 8) % 8],
            '!', 'instructor', now() - (g % 900) * interval '1 day'
     FROM generate_series(1, $1 * 10) AS g",
    // Students.
    "INSERT INTO users (username, email, full_name, password_hash, role, is_active, created_at)
     SELECT format('student%s', lpad(g::text, 6, '0')),
            format('student%s@example.edu', g),
            (ARRAY['Amara','Bruno','Chen','Dana','Emil','Farah','Goran','Hana','Ines','Jonas'])[1 + g % 10]
              || ' ' || (ARRAY['Okafor','Silva','Wang','Novak','Berg','Haddad','Petrov','Sato','Costa','Meyer'])[1 + (g / 10) % 10],
            '!', 'student', g % 23 <> 0, now() - (g % 700) * interval '1 day'
     FROM generate_series(1, $1 * 200) AS g",
    // Courses, each taught by an instructor.
    "WITH ins AS (SELECT array_agg(id ORDER BY id) AS a FROM users WHERE role = 'instructor')
     INSERT INTO courses (code, title, description, instructor_id, is_published, created_at)
     SELECT format('C%s', lpad(g::text, 5, '0')),
            (ARRAY['Introduction to','Advanced','Applied','Foundations of','Topics in'])[1 + g % 5]
              || ' ' || (ARRAY['Algebra','Biology','Chemistry','Databases','Economics','French',
                               'Geography','History','Poetry','Statistics'])[1 + (g / 5) % 10],
            (SELECT string_agg(md5(g::text || ':' || s), ' ') FROM generate_series(1, 8) AS s),
            ins.a[1 + (g - 1) % cardinality(ins.a)], g % 7 <> 0,
            now() - (g % 500) * interval '1 day'
     FROM generate_series(1, $1 * 20) AS g, ins",
    // Fifteen lessons per course, with a body of about 2 KB.
    "INSERT INTO lessons (course_id, position, title, body, duration_minutes)
     SELECT c.id, p, format('Lesson %s: %s', p, left(md5(c.code || p), 12)),
            (SELECT string_agg(md5(c.code || ':' || p || ':' || s), ' ') FROM generate_series(1, 60) AS s),
            5 + (c.id * p) % 55
     FROM courses c, generate_series(1, 15) AS p",
    // Twenty 64 KiB attachments per scale unit; random bytes, so they do not
    // compress (like the PDFs and images of a real LMS).
    ATTACHMENTS_SQL,
    // Five enrollments per student.
    "WITH cs AS (SELECT array_agg(id ORDER BY id) AS a FROM courses),
          st AS (SELECT id, row_number() OVER (ORDER BY id) AS i FROM users WHERE role = 'student')
     INSERT INTO enrollments (course_id, user_id, enrolled_at, progress, completed_at)
     SELECT cs.a[1 + (st.i * 7 + k * 13) % cardinality(cs.a)], st.id,
            now() - ((st.i * k) % 365) * interval '1 day',
            (st.i * (k + 3)) % 101,
            CASE WHEN (st.i * (k + 3)) % 101 = 100 THEN now() - (k * interval '3 days') END
     FROM st, cs, generate_series(0, 4) AS k
     WHERE $1 > 0
     ON CONFLICT (course_id, user_id) DO NOTHING",
    // Learning activity: the bulk of the data.
    "WITH st AS (SELECT array_agg(id ORDER BY id) AS a FROM users WHERE role = 'student'),
          ls AS (SELECT array_agg(id ORDER BY id) AS a FROM lessons)
     INSERT INTO activity_events (user_id, lesson_id, kind, occurred_at, details)
     SELECT st.a[1 + (g * 7919) % cardinality(st.a)],
            ls.a[1 + (g * 104729) % cardinality(ls.a)],
            (ARRAY['viewed','completed','quiz_submitted','comment'])[1 + g % 4],
            now() - (g % 525600) * interval '1 minute',
            jsonb_build_object('session', md5(g::text), 'score', g % 101,
                               'client', (ARRAY['web','ios','android'])[1 + g % 3],
                               'note', CASE WHEN g % 4 = 3 THEN md5(g::text || 'c') END)
     FROM generate_series(1, $1 * 20000) AS g, st, ls",
];
