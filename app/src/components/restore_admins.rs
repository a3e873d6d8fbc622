//! Who could sign in after a restore, shown in the restore dialog: the
//! administrators the backup holds (a restore brings its accounts back with
//! its data) and, when the administrator restoring would be locked out, a
//! warning with the command that gets them back in.

use leptos::prelude::*;
use thaw::{MessageBar, MessageBarBody, MessageBarIntent, MessageBarLayout, MessageBarTitle};

use crate::functions::get_backup_administrators;
use crate::models::{grant_admin_command, AccessAfterRestore, BackupAdmin, CurrentUser};

/// The administrators of the backup `backup_id` and what its restore would
/// do to the one restoring.
#[component]
pub fn RestoreAdmins(
    /// The backup the dialog is about (`None`: closed).
    #[prop(into)]
    backup_id: Signal<Option<i64>>,
) -> impl IntoView {
    let seen = Resource::new(
        move || backup_id.get(),
        |id| async move {
            match id {
                Some(id) => Some(get_backup_administrators(id).await),
                None => None,
            }
        },
    );
    view! {
        <Suspense fallback=|| {
            view! { <p class="muted">"Reading which administrators it holds…"</p> }
        }>
            {move || Suspend::new(async move {
                let view = match seen.await? {
                    Ok(seen) => {
                        let you = seen.you.clone();
                        let warning = lockout(seen.your_access, &you, seen.anyone_can_sign_in())
                            .map(|lockout| {
                                view! {
                                    <LockoutWarning lockout command=seen.recovery_command.clone() />
                                }
                            });
                        view! {
                            <p class="restore-admins" data-testid="restore-admins">
                                <strong>"Administrators in this backup: "</strong>
                                {admin_list(&seen.admins, &you)}
                            </p>
                            {changes(&seen.returning, &seen.leaving)
                                .map(|text| {
                                    view! { <p class="restore-admins-changes muted">{text}</p> }
                                })}
                            {warning}
                        }
                            .into_any()
                    }
                    Err(e) => view! { <UnknownAdmins message=e.to_string() /> }.into_any(),
                };
                Some(view)
            })}
        </Suspense>
    }
}

/// "alice (Alice Admin), carol (deactivated), erin (you)".
fn admin_list(admins: &[BackupAdmin], you: &str) -> String {
    if admins.is_empty() {
        return "none.".into();
    }
    let names: Vec<String> = admins
        .iter()
        .map(|a| {
            let mut notes = Vec::new();
            if !a.full_name.trim().is_empty() {
                notes.push(a.full_name.trim().to_owned());
            }
            if !a.is_active {
                notes.push("deactivated".into());
            } else if !a.can_sign_in {
                notes.push("no password".into());
            }
            if a.username == you {
                notes.push("you".into());
            }
            if notes.is_empty() {
                a.username.clone()
            } else {
                format!("{} ({})", a.username, notes.join(", "))
            }
        })
        .collect();
    format!("{}.", names.join(", "))
}

/// Who comes back and who can no longer sign in, if anyone.
fn changes(returning: &[String], leaving: &[String]) -> Option<String> {
    let mut parts = Vec::new();
    if !returning.is_empty() {
        parts.push(format!("Back as administrators: {}.", returning.join(", ")));
    }
    if !leaving.is_empty() {
        parts.push(format!(
            "No longer able to sign in: {}.",
            leaving.join(", ")
        ));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// What the warning says when the one restoring would be locked out (or
/// sign in with an older password only).
struct Lockout {
    intent: MessageBarIntent,
    title: &'static str,
    text: String,
    /// What the command below is for.
    lead: &'static str,
}

fn lockout(access: AccessAfterRestore, you: &str, anyone: bool) -> Option<Lockout> {
    let locked = "After the restore you will be signed out and unable to sign in.";
    let text = match access {
        AccessAfterRestore::Kept => return None,
        AccessAfterRestore::OlderPassword => {
            return Some(Lockout {
                intent: MessageBarIntent::Warning,
                title: "Your password will change back",
                text: format!(
                    "In this backup your account ({you}) has the password it had then, not \
                     today's. After the restore, sign in with that older password."
                ),
                lead: "If you do not remember it, run this on the server afterwards \
                       (it reads a new password from standard input):",
            });
        }
        AccessAfterRestore::NotAdmin => {
            format!("You ({you}) are not an administrator in this backup. {locked}")
        }
        AccessAfterRestore::Deactivated => {
            format!("Your account ({you}) is deactivated in this backup. {locked}")
        }
        AccessAfterRestore::NoPassword => {
            format!("Your account ({you}) has no password in this backup. {locked}")
        }
    };
    let text = if anyone {
        text
    } else {
        format!("{text} No administrator in this backup can sign in.")
    };
    Some(Lockout {
        intent: MessageBarIntent::Error,
        title: "You will be locked out",
        text,
        lead: "To get back in, run this on the server after the restore \
               (it reads a new password from standard input):",
    })
}

#[component]
fn LockoutWarning(lockout: Lockout, command: String) -> impl IntoView {
    view! {
        <MessageBar
            intent=lockout.intent
            layout=MessageBarLayout::Multiline
            class="lockout-warning"
            attr:role="alert"
            attr:data-testid="lockout-warning"
        >
            <MessageBarBody>
                <MessageBarTitle>{lockout.title}</MessageBarTitle>
                <p>{lockout.text}</p>
                <p>{lockout.lead}</p>
                <ShellCommand command />
            </MessageBarBody>
        </MessageBar>
    }
}

/// The backup's accounts could not be read (no users table, a damaged
/// file): say so, and how to get back in should the restore lock the
/// administrator out.
#[component]
fn UnknownAdmins(message: String) -> impl IntoView {
    let command = use_context::<CurrentUser>().map(|u| grant_admin_command(&u.username));
    view! {
        <MessageBar
            intent=MessageBarIntent::Error
            layout=MessageBarLayout::Multiline
            class="lockout-warning"
            attr:role="alert"
            attr:data-testid="lockout-warning"
        >
            <MessageBarBody>
                <MessageBarTitle>"Who can sign in afterwards is unknown"</MessageBarTitle>
                <p>{message}</p>
                {command
                    .map(|command| {
                        view! {
                            <p>
                                "If the restore locks you out, run this on the server \
                                (it reads a new password from standard input):"
                            </p>
                            <ShellCommand command />
                        }
                    })}
            </MessageBarBody>
        </MessageBar>
    }
}

/// A command to copy into a terminal, wrapped between its words only (one
/// click selects all of it).
#[component]
fn ShellCommand(command: String) -> impl IntoView {
    let words: Vec<String> = command.split(' ').map(str::to_owned).collect();
    view! {
        <code class="command">
            {words
                .into_iter()
                .enumerate()
                .map(|(i, word)| view! { {(i > 0).then_some(" ")} <span>{word}</span> })
                .collect_view()}
        </code>
    }
}
