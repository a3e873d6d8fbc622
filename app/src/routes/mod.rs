//! One page per file.

mod admin;
mod home;
mod login;
mod not_found;

pub use admin::AdminPage;
pub use home::Home;
pub use login::{signed_out, LoginPage};
pub use not_found::NotFound;
