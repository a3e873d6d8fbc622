//! Test support (feature `testing`): a fresh, migrated pair of databases per
//! test, on the PostgreSQL server named by `TEST_DATABASE_URL` (a role with
//! CREATEDB; `scripts/test.sh` starts one and sets it).

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::db::{quote_ident, DatabaseUrls};
use crate::Databases;

/// The server URL tests run against. Panics with instructions when unset:
/// integration tests never skip silently.
pub fn test_server_url() -> String {
    std::env::var("TEST_DATABASE_URL").expect(
        "TEST_DATABASE_URL is not set: run scripts/test.sh, which starts a PostgreSQL \
         server for the tests, or point it at a role with CREATEDB",
    )
}

/// Creates an empty database with a unique name and returns its URL.
pub async fn fresh_database_url() -> String {
    let server = test_server_url();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let options = PgConnectOptions::from_str(&server).expect("TEST_DATABASE_URL is a URL");
    let mut conn = PgConnection::connect_with(&options)
        .await
        .expect("connect to the test server");
    sqlx::query(&format!("CREATE DATABASE {}", quote_ident(&name)))
        .execute(&mut conn)
        .await
        .expect("create a test database");
    let (base, _) = server.rsplit_once('/').expect("URL has a database part");
    format!("{base}/{name}")
}

/// A fresh LMS database and its control database, both migrated.
pub async fn spawn_db() -> Databases {
    let urls = DatabaseUrls {
        lms: fresh_database_url().await,
        control: None,
    };
    let dbs = Databases::connect(&urls)
        .await
        .expect("connect to the test databases");
    dbs.migrate().await.expect("migrate the test databases");
    dbs
}
