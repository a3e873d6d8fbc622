//! Shared pieces of the pages.

mod activity;
mod backup_card;
mod backup_list;
mod channels;
mod compare;
mod console;
mod dialog;
mod error_bar;
mod facts;
mod health_banner;
mod layout;
mod operation_panel;
mod overview_card;
mod pin;
mod prepared;
mod restore_admins;
mod schedules;
mod style_primer;
mod table_header;
mod time;
mod tokens;
mod upload;

pub use backup_card::BackupCard;
pub use layout::{AdminLayout, AdminsOnly, SignOutButton};
pub use overview_card::OverviewCard;
pub use style_primer::ThawStyles;
pub use time::LocalTime;
