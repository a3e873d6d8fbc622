//! Shared pieces of the pages.

mod backup_card;
mod layout;
mod operation_panel;
mod overview_card;

pub use backup_card::BackupCard;
pub use layout::{AdminLayout, AdminsOnly, SignOutButton};
pub use overview_card::OverviewCard;
