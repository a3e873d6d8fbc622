//! Engine integration tests against a real PostgreSQL (see `scripts/test.sh`).
//! Each test gets its own databases, so they run in parallel.

mod admins;
mod audit;
mod backup;
mod backup_dir;
mod clock;
mod compare;
mod demo;
mod drill;
mod fidelity;
mod full_disk;
mod migrations;
mod notify;
mod offsite;
mod outage;
mod overview;
mod pgtools;
mod privileges;
mod records;
mod recovery;
mod restore;
mod retention;
mod schedule;
mod tls;
mod upload_room;
mod users;
