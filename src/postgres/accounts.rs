//! The administrator accounts an archive holds, read from the archive
//! itself: `pg_restore --schema=public --table=users --file=-` prints the
//! `users` table's definition and rows as SQL text, and the rows of
//! administrators are picked out of it. No database is involved, so this
//! works for every archive, uploaded ones without any record included.
//!
//! pg_dump writes rows as a `COPY … FROM stdin` block (its default) or,
//! with `--inserts` / `--column-inserts`, as `INSERT` statements; both are
//! read. Only the columns sign-in depends on are kept (`username`,
//! `full_name`, `role`, `is_active`, and a digest of `password_hash`), and
//! only for administrators, so a large users table costs time, not memory.

use std::path::Path;
use std::process::Stdio;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

use crate::postgres::archive::{Input, Reading};
use crate::postgres::process::{follow_stderr, tool_command};
use crate::{Error, Result};

/// An administrator account as a backup holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedAdmin {
    pub username: String,
    /// Empty when the account has none.
    pub full_name: String,
    pub is_active: bool,
    /// A digest of the account's password hash when that hash is one
    /// sign-in accepts, `None` when no password signs in. Enough to tell
    /// whether the password then is the one an account has now, without
    /// keeping the hash.
    pub password_tag: Option<String>,
}

impl ArchivedAdmin {
    /// The account could sign in, were this backup restored.
    pub fn can_sign_in(&self) -> bool {
        self.is_active && self.password_tag.is_some()
    }
}

/// The digest [`ArchivedAdmin::password_tag`] holds for a stored password
/// hash: `None` when no password signs in with it.
pub fn password_tag(hash: &str) -> Option<String> {
    crate::users::is_usable_password_hash(hash).then(|| hex::encode(Sha256::digest(hash)))
}

/// The longest line (and `INSERT` value) read from pg_restore's output: a
/// row of a users table is a few hundred bytes, and an archive made
/// elsewhere must not make this process hold gigabytes.
const MAX_LINE: usize = 16 << 20;

/// Reads the administrators of the `public.users` table of the archive
/// `archive` (opened by the caller, and read by pg_restore as its standard
/// input, so the tool reads exactly the file that was checked), sorted by
/// username. [`Error::Invalid`] when the archive has no such table or its
/// rows cannot be read; [`Error::ToolFailed`] when pg_restore cannot read
/// the archive.
pub async fn read_admins(pg_restore: &Path, archive: Input) -> Result<Vec<ArchivedAdmin>> {
    let mut cmd = tool_command(pg_restore);
    cmd.args(["--schema=public", "--table=users", "--file=-"]);
    let mut tool = Reading::spawn(cmd, archive, Stdio::piped())?;
    let stdout = tool.child().stdout.take().expect("stdout is piped");
    let stderr = tool.child().stderr.take().expect("stderr is piped");
    // Followed on its own task: if reading stdout fails, dropping the tool
    // kills it, which ends its stderr too.
    let tail = tokio::spawn(follow_stderr(stderr, |_| {}));
    let dump = match read_users_dump(BufReader::new(stdout)).await {
        Ok(dump) => dump,
        Err(e) => {
            drop(tool);
            return Err(e);
        }
    };
    tool.wait(tail.await.unwrap_or_default()).await?;
    dump.into_admins()
}

/// Reads pg_restore's SQL output line by line.
async fn read_users_dump(mut out: impl AsyncBufRead + Unpin) -> Result<UsersDump> {
    let mut dump = UsersDump::default();
    let mut line = Vec::new();
    while read_line(&mut out, &mut line).await? {
        dump.feed(&line)?;
    }
    Ok(dump)
}

/// Reads one line (with its newline, if any) into `line`; false at the end.
async fn read_line(out: &mut (impl AsyncBufRead + Unpin), line: &mut Vec<u8>) -> Result<bool> {
    line.clear();
    loop {
        let available = out.fill_buf().await?;
        if available.is_empty() {
            return Ok(!line.is_empty());
        }
        let (taken, done) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        if line.len() + taken > MAX_LINE {
            return Err(too_large());
        }
        line.extend_from_slice(&available[..taken]);
        out.consume(taken);
        if done {
            return Ok(true);
        }
    }
}

fn too_large() -> Error {
    Error::Invalid("A row of this backup's users table is too large to read (over 16 MiB).".into())
}

/// What has been read of pg_restore's output so far.
#[derive(Default)]
struct UsersDump {
    state: State,
    /// `CREATE TABLE public.users` was seen.
    has_table: bool,
    /// Its columns in table order (what an `INSERT` without a column list
    /// follows).
    table_columns: Vec<String>,
    admins: Vec<ArchivedAdmin>,
}

#[derive(Default)]
enum State {
    #[default]
    Outside,
    /// Inside `CREATE TABLE public.users (`, one column per line.
    TableDefinition,
    /// Inside `COPY public.users (…) FROM stdin;`, one row per line.
    Copy(Columns),
    /// Inside an `INSERT INTO public.users … VALUES` statement.
    Insert(Columns, Box<ValuesParser>),
}

const CREATE: &str = "CREATE TABLE public.users (";
const COPY: &str = "COPY public.users ";
const INSERT: &str = "INSERT INTO public.users ";

impl UsersDump {
    fn feed(&mut self, raw: &[u8]) -> Result<()> {
        match &mut self.state {
            State::Outside => {
                let line = String::from_utf8_lossy(raw);
                let line = line.trim_end_matches(['\n', '\r']);
                if line.starts_with(CREATE) {
                    self.has_table = true;
                    self.state = State::TableDefinition;
                } else if let Some(rest) = line.strip_prefix(COPY) {
                    let list = rest
                        .strip_prefix('(')
                        .and_then(|r| r.strip_suffix(") FROM stdin;"))
                        .ok_or_else(unreadable)?;
                    self.state = State::Copy(Columns::find(&split_identifiers(list))?);
                } else if let Some(rest) = line.strip_prefix(INSERT) {
                    let (names, values) = insert_header(rest)?;
                    let columns = match names {
                        Some(names) => Columns::find(&names)?,
                        None => Columns::find(&self.table_columns)?,
                    };
                    let mut parser = Box::<ValuesParser>::default();
                    parser.feed(values)?;
                    parser.feed("\n")?;
                    self.finish_insert(columns, parser);
                }
            }
            State::TableDefinition => {
                let line = String::from_utf8_lossy(raw);
                let line = line.trim();
                if line.starts_with(')') {
                    self.state = State::Outside;
                } else if !line.starts_with("CONSTRAINT ") {
                    if let Some(name) = split_identifiers(line).into_iter().next() {
                        self.table_columns.push(name);
                    }
                }
            }
            State::Copy(columns) => {
                let line = raw.strip_suffix(b"\n").unwrap_or(raw);
                if line == b"\\." {
                    self.state = State::Outside;
                } else {
                    let fields: Vec<Option<String>> =
                        line.split(|&b| b == b'\t').map(copy_field).collect();
                    if let Some(admin) = columns.admin(&fields) {
                        self.admins.push(admin);
                    }
                }
            }
            State::Insert(columns, parser) => {
                parser.feed(&String::from_utf8_lossy(raw))?;
                let (columns, parser) = (columns.clone(), std::mem::take(parser));
                self.finish_insert(columns, parser);
            }
        }
        Ok(())
    }

    /// Takes the rows an `INSERT` has yielded; stays in it until its end.
    fn finish_insert(&mut self, columns: Columns, mut parser: Box<ValuesParser>) {
        for row in parser.rows.drain(..) {
            if let Some(admin) = columns.admin(&row) {
                self.admins.push(admin);
            }
        }
        self.state = if parser.ended {
            State::Outside
        } else {
            State::Insert(columns, parser)
        };
    }

    fn into_admins(mut self) -> Result<Vec<ArchivedAdmin>> {
        if !self.has_table {
            return Err(Error::Invalid(
                "This backup has no users table (public.users), so it holds no accounts: \
                 nobody could sign in after restoring it."
                    .into(),
            ));
        }
        if !matches!(self.state, State::Outside) {
            return Err(unreadable());
        }
        self.admins.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(self.admins)
    }
}

fn unreadable() -> Error {
    Error::Invalid("The users table of this backup could not be read.".into())
}

/// Where the columns sign-in depends on are in a row.
#[derive(Debug, Clone)]
struct Columns {
    username: usize,
    role: usize,
    full_name: Option<usize>,
    is_active: Option<usize>,
    password_hash: Option<usize>,
}

impl Columns {
    fn find(names: &[String]) -> Result<Self> {
        let at = |name: &str| names.iter().position(|n| n == name);
        let (Some(username), Some(role)) = (at("username"), at("role")) else {
            return Err(Error::Invalid(
                "The users table of this backup has no username or role column, so its \
                 administrators cannot be told."
                    .into(),
            ));
        };
        Ok(Self {
            username,
            role,
            full_name: at("full_name"),
            is_active: at("is_active"),
            password_hash: at("password_hash"),
        })
    }

    /// The row as an administrator, or `None` for anyone else.
    fn admin(&self, row: &[Option<String>]) -> Option<ArchivedAdmin> {
        let field = |i: usize| row.get(i).and_then(Option::as_deref);
        if field(self.role)? != "admin" {
            return None;
        }
        Some(ArchivedAdmin {
            username: field(self.username)?.to_owned(),
            full_name: self
                .full_name
                .and_then(field)
                .unwrap_or_default()
                .to_owned(),
            // A table without the column has every account active; an
            // unreadable value is taken as inactive.
            is_active: match self.is_active {
                None => true,
                Some(i) => matches!(field(i), Some("t" | "true")),
            },
            password_tag: self.password_hash.and_then(field).and_then(password_tag),
        })
    }
}

/// One field of a `COPY` text row: `\N` is NULL; `\\`, `\t`, `\n`, `\r`,
/// `\b`, `\f`, `\v`, octal `\NNN` and hex `\xHH` are the bytes they stand
/// for; any other escaped character is itself.
fn copy_field(raw: &[u8]) -> Option<String> {
    if raw == b"\\N" {
        return None;
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        i += 1;
        if b != b'\\' || i == raw.len() {
            out.push(b);
            continue;
        }
        let c = raw[i];
        i += 1;
        match c {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut value = u32::from(c - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(value as u8);
            }
            b'x' if raw.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut value = 0u8;
                for _ in 0..2 {
                    match raw.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            value = value * 16 + d as u8;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push(value);
            }
            other => out.push(other),
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Splits `a, "b c", "d""e"` (a column list, or the start of a column
/// definition) into identifiers, unquoting quoted ones. A bare identifier
/// ends at a comma or a space (the type that follows it in a definition).
fn split_identifiers(list: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut chars = list.trim().chars().peekable();
    loop {
        while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
        let Some(first) = chars.next() else {
            return names;
        };
        let mut name = String::new();
        if first == '"' {
            while let Some(c) = chars.next() {
                // `""` inside quotes is one `"`; a single one ends the name.
                if c == '"' && chars.next_if_eq(&'"').is_none() {
                    break;
                }
                name.push(c);
            }
        } else {
            name.push(first);
            while let Some(c) = chars.next_if(|c| *c != ',' && !c.is_whitespace()) {
                name.push(c);
            }
        }
        names.push(name);
        // A column definition: only its first word is the name.
        while chars.next_if(|c| *c != ',').is_some() {}
    }
}

/// The part of `INSERT INTO public.users ` that follows the table's name:
/// the column list if any, and the text from `VALUES` on.
fn insert_header(rest: &str) -> Result<(Option<Vec<String>>, &str)> {
    if let Some(values) = rest.strip_prefix("VALUES") {
        return Ok((None, values));
    }
    let list = rest.strip_prefix('(').ok_or_else(unreadable)?;
    // The list ends at the first `)` outside a quoted identifier.
    let mut quoted = false;
    let end = list
        .char_indices()
        .find(|&(_, c)| {
            if c == '"' {
                quoted = !quoted;
            }
            c == ')' && !quoted
        })
        .map(|(at, _)| at)
        .ok_or_else(unreadable)?;
    let values = list[end + 1..]
        .trim_start()
        .strip_prefix("VALUES")
        .ok_or_else(unreadable)?;
    Ok((Some(split_identifiers(&list[..end])), values))
}

/// Reads the tuples after `VALUES` of an `INSERT`, as pg_dump writes them:
/// `(1, 'text', NULL, true), (…);`, strings quoted with `''` for a quote
/// (or `E'…'` with backslash escapes), spread over as many lines as their
/// text has. Fed in pieces; yields complete rows.
#[derive(Default)]
struct ValuesParser {
    rows: Vec<Vec<Option<String>>>,
    row: Vec<Option<String>>,
    /// Parentheses open (1 inside a tuple).
    depth: u32,
    value: String,
    quoted: bool,
    in_string: bool,
    /// Inside an `E'…'` string.
    escapes: bool,
    /// A backslash was just read in an `E'…'` string.
    escaped: bool,
    /// A quote was just read in a string: the end, unless another follows.
    quote_pending: bool,
    /// The statement's `;` was read.
    ended: bool,
}

impl ValuesParser {
    fn feed(&mut self, text: &str) -> Result<()> {
        for c in text.chars() {
            if self.ended {
                break;
            }
            self.next(c)?;
        }
        Ok(())
    }

    fn next(&mut self, c: char) -> Result<()> {
        if self.quote_pending {
            self.quote_pending = false;
            if c == '\'' {
                self.push(c)?;
                return Ok(());
            }
            self.in_string = false;
        }
        if self.in_string {
            if self.escaped {
                self.escaped = false;
                let unescaped = match c {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    other => other,
                };
                return self.push(unescaped);
            }
            match c {
                '\\' if self.escapes => self.escaped = true,
                '\'' => self.quote_pending = true,
                other => self.push(other)?,
            }
            return Ok(());
        }
        match (self.depth, c) {
            (0, ';') => self.ended = true,
            (0, '(') => self.depth = 1,
            (0, c) if c == ',' || c.is_whitespace() => {}
            (0, _) => return Err(unreadable()),
            (_, '\'') => {
                self.escapes = matches!(self.value.trim(), "E" | "e");
                self.value.clear();
                self.in_string = true;
                self.quoted = true;
            }
            (1, ',') => self.end_value(),
            (1, ')') => {
                self.end_value();
                self.rows.push(std::mem::take(&mut self.row));
                self.depth = 0;
            }
            (_, '(') => {
                self.depth += 1;
                self.push_bare(c)?;
            }
            (_, ')') => {
                self.depth -= 1;
                self.push_bare(c)?;
            }
            (_, c) => self.push_bare(c)?,
        }
        Ok(())
    }

    /// A character of a value outside quotes; after a quoted string (a
    /// space, a `::type` cast) it is not part of the value.
    fn push_bare(&mut self, c: char) -> Result<()> {
        if self.quoted {
            return Ok(());
        }
        self.push(c)
    }

    fn push(&mut self, c: char) -> Result<()> {
        if self.value.len() >= MAX_LINE {
            return Err(too_large());
        }
        self.value.push(c);
        Ok(())
    }

    fn end_value(&mut self) {
        let value = std::mem::take(&mut self.value);
        let value = if std::mem::take(&mut self.quoted) {
            Some(value)
        } else {
            let bare = value.trim();
            (!bare.eq_ignore_ascii_case("NULL")).then(|| bare.to_owned())
        };
        self.row.push(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

    async fn admins_of(output: &str) -> Result<Vec<ArchivedAdmin>> {
        read_users_dump(output.as_bytes()).await?.into_admins()
    }

    fn definition() -> String {
        "CREATE TABLE public.users (\n    id bigint NOT NULL,\n    username text NOT NULL,\n    \
         email text NOT NULL,\n    full_name text DEFAULT ''::text NOT NULL,\n    \
         password_hash text NOT NULL,\n    role text NOT NULL,\n    \
         is_active boolean DEFAULT true NOT NULL,\n    \
         CONSTRAINT users_role_check CHECK ((role = ANY (ARRAY['admin'::text])))\n);\n"
            .to_owned()
    }

    #[test]
    fn copy_fields_are_unescaped() {
        assert_eq!(copy_field(b"\\N"), None);
        assert_eq!(copy_field(b"").as_deref(), Some(""));
        assert_eq!(
            copy_field(b"a\\tb\\\\c\\nd\\re").as_deref(),
            Some("a\tb\\c\nd\re")
        );
        assert_eq!(copy_field(b"\\101\\x42\\7").as_deref(), Some("AB\u{7}"));
        assert_eq!(copy_field(b"\\303\\274").as_deref(), Some("ü"));
        assert_eq!(copy_field(b"x\\N").as_deref(), Some("xN"));
        assert_eq!(copy_field(b"\\\\N").as_deref(), Some("\\N"));
        assert_eq!(copy_field(b"end\\").as_deref(), Some("end\\"));
    }

    #[test]
    fn identifiers_are_split_and_unquoted() {
        assert_eq!(
            split_identifiers(r#"id, username, "role", "odd ""name"", here""#),
            ["id", "username", "role", r#"odd "name", here"#]
        );
        assert_eq!(
            split_identifiers("full_name text DEFAULT ''::text NOT NULL,"),
            ["full_name"]
        );
    }

    #[tokio::test]
    async fn admins_are_read_from_a_copy_block() {
        let output = format!(
            "--\n-- PostgreSQL database dump\n--\n\\restrict abc\nSET client_encoding = 'UTF8';\n\n{}\n\
             COPY public.users (id, username, email, full_name, password_hash, role, is_active) FROM stdin;\n\
             1\tzoe\tz@x\tZoe\\tTab \\\\ and\\nline\t{HASH}\tadmin\tt\n\
             2\tsam\ts@x\t\t{HASH}\tstudent\tt\n\
             3\tbob\tb@x\t\\N\t!\tadmin\tt\n\
             4\tann\ta@x\tAnn\t{HASH}\tadmin\tf\n\
             \\.\n\n\\unrestrict abc\n",
            definition()
        );
        let admins = admins_of(&output).await.unwrap();
        let names: Vec<_> = admins.iter().map(|a| a.username.as_str()).collect();
        assert_eq!(names, ["ann", "bob", "zoe"], "sorted, administrators only");
        assert_eq!(admins[2].full_name, "Zoe\tTab \\ and\nline");
        assert_eq!(admins[1].full_name, "", "NULL reads as no name");
        assert!(admins[2].can_sign_in());
        assert!(!admins[0].can_sign_in(), "deactivated");
        assert!(!admins[0].is_active);
        assert_eq!(admins[1].password_tag, None, "'!' signs in with nothing");
        assert!(!admins[1].can_sign_in());
        assert_eq!(admins[2].password_tag, password_tag(HASH));
        assert_ne!(
            admins[2].password_tag.as_deref(),
            Some(HASH),
            "a digest, not the hash"
        );
    }

    #[tokio::test]
    async fn admins_are_read_from_inserts_with_and_without_columns() {
        // pg_dump --inserts: table order, one statement per row.
        let plain = format!(
            "{}\nINSERT INTO public.users VALUES (1, 'o''neil', 'o@x', 'Line one\nline two; (not the end)', '{HASH}', 'admin', true);\n\
             INSERT INTO public.users VALUES (2, 'sam', 's@x', '', '{HASH}', 'student', true);\n",
            definition()
        );
        let admins = admins_of(&plain).await.unwrap();
        assert_eq!(admins.len(), 1);
        assert_eq!(admins[0].username, "o'neil");
        assert_eq!(admins[0].full_name, "Line one\nline two; (not the end)");
        assert!(admins[0].can_sign_in());

        // pg_dump --column-inserts --rows-per-insert: its own column order,
        // several rows per statement.
        let columns = format!(
            "{}\nINSERT INTO public.users (role, is_active, username, full_name, password_hash) VALUES\n\
             \t('admin', false, 'ann', NULL, '{HASH}'),\n\
             \t('admin', true, 'bob', E'B\\'s \\\\ name', '{HASH}');\n\
             INSERT INTO public.users (role, is_active, username, full_name, password_hash) VALUES\n\
             \t('instructor', true, 'ida', 'Ida', '{HASH}');\n",
            definition()
        );
        let admins = admins_of(&columns).await.unwrap();
        let read: Vec<_> = admins
            .iter()
            .map(|a| (a.username.as_str(), a.full_name.as_str(), a.is_active))
            .collect();
        assert_eq!(read, [("ann", "", false), ("bob", "B's \\ name", true)]);
    }

    #[tokio::test]
    async fn an_archive_without_a_users_table_is_said_to_have_none() {
        let err = admins_of("SET client_encoding = 'UTF8';\n")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no users table"), "{err}");
        // A table without rows (or a schema-only archive): no administrators.
        assert_eq!(admins_of(&definition()).await.unwrap(), []);
    }

    #[tokio::test]
    async fn a_table_without_the_columns_sign_in_needs_is_refused() {
        let output = "CREATE TABLE public.users (\n    id integer\n);\n\
                      COPY public.users (id) FROM stdin;\n1\n\\.\n";
        let err = admins_of(output).await.unwrap_err();
        assert!(err.to_string().contains("no username or role"), "{err}");
    }

    #[tokio::test]
    async fn a_cut_off_statement_or_an_endless_line_is_an_error() {
        let cut = format!("{}\nINSERT INTO public.users VALUES (1, 'a", definition());
        assert!(admins_of(&cut).await.is_err());
        let endless = format!(
            "{}COPY public.users (username, role) FROM stdin;\n{}",
            definition(),
            "x".repeat(MAX_LINE + 1)
        );
        let err = admins_of(&endless).await.unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
    }
}
