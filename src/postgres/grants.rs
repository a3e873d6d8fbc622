//! The privileges an archive carries (`GRANT` / `REVOKE` entries), so a
//! restore keeps them: which roles they name (each must exist on this
//! server, or the restore is refused before anything changes), and the
//! list of entries pg_restore is given.
//!
//! Default privileges (`ALTER DEFAULT PRIVILEGES FOR ROLE <owner> …`) are
//! left out: they belong to the role that owned the objects where the backup
//! was made, which the restore role is not and may not become. The live
//! database's default privileges are carried to the copy instead
//! (`restore::carry`).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncReadExt;

use crate::postgres::archive::{Input, Reading};
use crate::postgres::process::{follow_stderr, tool_command};
use crate::storage::ArchiveSource;
use crate::Result;

/// What a restore needs to know about an archive's privileges.
pub struct ArchivePrivileges {
    /// Every role a `GRANT` or `REVOKE` in the archive names (not PUBLIC).
    pub roles: BTreeSet<String>,
    /// Default-privilege entries left out of the restore.
    pub default_privileges_skipped: usize,
    /// The archive's table of contents without them, for `--use-list`.
    pub restore_list: tempfile::NamedTempFile,
}

/// Reads the archive's table of contents and its privilege statements.
pub async fn inspect(pg_restore: &Path, archive: &ArchiveSource) -> Result<ArchivePrivileges> {
    let toc = run(pg_restore, &[], archive.input().await?).await?;
    let (acl_only, restore, skipped) = split_toc(&toc);
    let acl_list = list_file(&acl_only).await?;
    let sql = run(
        pg_restore,
        &[
            format!("--use-list={}", acl_list.path().display()),
            "--file=-".to_owned(),
        ],
        archive.input().await?,
    )
    .await?;
    Ok(ArchivePrivileges {
        roles: roles_named(&sql),
        default_privileges_skipped: skipped,
        restore_list: list_file(&restore).await?,
    })
}

/// Runs pg_restore on `archive` with no connection and returns its output
/// (`--list` when no arguments are given).
async fn run(pg_restore: &Path, args: &[String], archive: Input) -> Result<String> {
    let mut cmd = tool_command(pg_restore);
    if args.is_empty() {
        cmd.arg("--list");
    } else {
        cmd.args(args);
    }
    let mut tool = Reading::spawn(cmd, archive, Stdio::piped())?;
    let mut stdout = tool.child().stdout.take().expect("stdout is piped");
    let stderr = tool.child().stderr.take().expect("stderr is piped");
    let mut out = String::new();
    let (read, tail) = tokio::join!(
        stdout.read_to_string(&mut out),
        follow_stderr(stderr, |_| {})
    );
    read?;
    tool.wait(tail).await?;
    Ok(out)
}

async fn list_file(text: &str) -> Result<tempfile::NamedTempFile> {
    let text = text.to_owned();
    crate::storage::blocking(move || {
        let mut file = tempfile::Builder::new()
            .prefix("lms-admin-toc-")
            .tempfile()?;
        file.write_all(text.as_bytes())?;
        file.flush()?;
        Ok(file)
    })
    .await
}

/// The entry's description in a `--list` line: "ACL", "DEFAULT ACL",
/// "TABLE DATA", … (`4006; 0 0 ACL public TABLE t owner`).
fn is_entry(line: &str, desc: &str) -> bool {
    if line.starts_with(';') {
        return false;
    }
    let Some((_, rest)) = line.split_once("; ") else {
        return false;
    };
    // "<catalog oid> <object oid> <desc> …"
    rest.splitn(3, ' ')
        .nth(2)
        .is_some_and(|r| r.strip_prefix(desc).is_some_and(|r| r.starts_with(' ')))
}

/// Splits a table of contents into (privilege entries only, everything but
/// default privileges, how many default-privilege entries were left out).
fn split_toc(toc: &str) -> (String, String, usize) {
    let mut acl = String::new();
    let mut restore = String::new();
    let mut skipped = 0;
    for line in toc.lines() {
        if is_entry(line, "DEFAULT ACL") {
            skipped += 1;
            continue;
        }
        if is_entry(line, "ACL") {
            acl.push_str(line);
            acl.push('\n');
        }
        restore.push_str(line);
        restore.push('\n');
    }
    (acl, restore, skipped)
}

/// The roles named as grantees in `GRANT … TO …` and `REVOKE … FROM …`
/// statements (one per line, as pg_dump writes them).
fn roles_named(sql: &str) -> BTreeSet<String> {
    let mut roles = BTreeSet::new();
    for line in sql.lines() {
        let keyword = if line.starts_with("GRANT ") {
            "TO"
        } else if line.starts_with("REVOKE ") {
            "FROM"
        } else {
            continue;
        };
        let tokens = tokens(line);
        let Some(at) = tokens.iter().rposition(|t| t.is(keyword)) else {
            continue;
        };
        for token in &tokens[at + 1..] {
            match token {
                Token::Word(w) if w == "WITH" || w == "GRANTED" => break,
                Token::Word(w) if w == "PUBLIC" || w == "," || w == ";" => {}
                Token::Word(w) => {
                    roles.insert(w.clone());
                }
                Token::Quoted(q) => {
                    roles.insert(q.clone());
                }
            }
        }
    }
    roles
}

#[derive(Debug, PartialEq)]
enum Token {
    /// An unquoted word, or `,` / `;` / `(` / `)`.
    Word(String),
    /// A double-quoted identifier, unescaped.
    Quoted(String),
}

impl Token {
    fn is(&self, word: &str) -> bool {
        matches!(self, Token::Word(w) if w == word)
    }
}

/// Splits a statement into words and quoted identifiers; string literals
/// and parentheses are kept whole enough not to be taken for keywords.
fn tokens(line: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            '"' => {
                chars.next();
                let mut ident = String::new();
                while let Some(c) = chars.next() {
                    if c == '"' {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            ident.push('"');
                        } else {
                            break;
                        }
                    } else {
                        ident.push(c);
                    }
                }
                out.push(Token::Quoted(ident));
            }
            '\'' => {
                chars.next();
                while let Some(c) = chars.next() {
                    if c == '\'' && chars.next_if_eq(&'\'').is_none() {
                        break;
                    }
                }
                out.push(Token::Word("'…'".into()));
            }
            ',' | ';' | '(' | ')' => {
                chars.next();
                out.push(Token::Word(c.to_string()));
            }
            c if c.is_whitespace() => {
                chars.next();
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')' | '"' | '\'') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grantees_are_found() {
        let sql = r#"
GRANT SELECT ON TABLE public.courses TO reporting;
REVOKE ALL ON FUNCTION public.grade(integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.grade(integer) TO "Web App", reporting WITH GRANT OPTION;
GRANT SELECT ON TABLE public."odd TO name" TO "x""y";
REVOKE SELECT ON TABLE public.t FROM old_role;
COMMENT ON TABLE public.t IS 'GRANT ALL TO nobody';
"#;
        let roles: Vec<_> = roles_named(sql).into_iter().collect();
        assert_eq!(roles, ["Web App", "old_role", "reporting", "x\"y"]);
    }

    #[test]
    fn default_privileges_are_left_out_and_acls_picked() {
        let toc = "\
;
; Archive created at 2026-12-01
4000; 1259 16390 TABLE public courses lms
4006; 0 0 ACL public TABLE courses lms
4007; 826 16400 DEFAULT ACL public DEFAULT PRIVILEGES FOR TABLES lms
4010; 0 16390 TABLE DATA public courses lms
";
        let (acl, restore, skipped) = split_toc(toc);
        assert_eq!(acl, "4006; 0 0 ACL public TABLE courses lms\n");
        assert_eq!(skipped, 1);
        assert!(!restore.contains("DEFAULT ACL"));
        assert!(restore.contains("TABLE DATA public courses"));
        assert!(restore.contains("; Archive created"));
    }
}
