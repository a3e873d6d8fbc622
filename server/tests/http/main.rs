//! HTTP tests: the real router on a real port, against fresh databases on the
//! test PostgreSQL server. One binary, one module per area.

mod activity;
mod adapters;
mod attacks;
mod auth;
mod auth_limits;
mod authorization;
mod backup_dir;
mod backups;
mod chaos;
mod cli;
mod client;
mod crash;
mod csrf;
mod health;
mod instances;
mod notify;
mod offsite;
mod pages;
mod restore;
mod scheduler;
mod support;
mod tokens;
mod upload;
