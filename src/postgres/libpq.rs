//! A `postgres://` URL read for both kinds of client: sqlx (the console's own
//! connections) and libpq (`pg_dump`, `pg_restore`).
//!
//! Whatever the URL asks of a connection (verified TLS, a client
//! certificate, server options) must bind the tools as much as the pools:
//! otherwise a dump travels unencrypted while the console's own connections
//! are verified. The tools take it all from their environment (libpq's
//! `PG…` variables), never from argv. sqlx cannot report back everything it
//! read (the certificate paths), and libpq knows parameters sqlx does not
//! (`sslcrl`, `channel_binding`, …), so the URL is read here as well.

use std::borrow::Cow;
use std::collections::BTreeMap;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// Parameters both clients read whose values the pools' options do not
/// report back (sqlx's own spellings too), and the variable libpq reads.
const CERTIFICATE_FILES: &[(&[&str], &str)] = &[
    (&["sslrootcert", "ssl-root-cert", "ssl-ca"], "PGSSLROOTCERT"),
    (&["sslcert", "ssl-cert"], "PGSSLCERT"),
    (&["sslkey", "ssl-key"], "PGSSLKEY"),
];

/// Parameters only libpq knows. sqlx would ignore them (logging their
/// values), so they are taken out of the URL it reads and reach the tools
/// alone: the tools are never less strict than the URL says.
const LIBPQ_ONLY: &[(&str, &str)] = &[
    ("sslcrl", "PGSSLCRL"),
    ("sslcrldir", "PGSSLCRLDIR"),
    ("sslsni", "PGSSLSNI"),
    ("sslcompression", "PGSSLCOMPRESSION"),
    ("sslcertmode", "PGSSLCERTMODE"),
    ("sslnegotiation", "PGSSLNEGOTIATION"),
    ("ssl_min_protocol_version", "PGSSLMINPROTOCOLVERSION"),
    ("ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION"),
    ("channel_binding", "PGCHANNELBINDING"),
    ("require_auth", "PGREQUIREAUTH"),
    ("gssencmode", "PGGSSENCMODE"),
    ("gssdelegation", "PGGSSDELEGATION"),
    ("krbsrvname", "PGKRBSRVNAME"),
    ("gsslib", "PGGSSLIB"),
    ("requirepeer", "PGREQUIREPEER"),
    ("target_session_attrs", "PGTARGETSESSIONATTRS"),
    ("load_balance_hosts", "PGLOADBALANCEHOSTS"),
    ("connect_timeout", "PGCONNECT_TIMEOUT"),
];

/// How the tools reach the LMS server: the libpq environment for
/// everything the URL says except the password (which goes to a private
/// password file) and the database (which each run chooses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibpqSettings {
    user: String,
    database: String,
    vars: BTreeMap<&'static str, String>,
}

impl LibpqSettings {
    /// The role the tools sign in as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The same server and settings, signed in as `user`.
    pub fn as_user(&self, user: &str) -> Self {
        let mut vars = self.vars.clone();
        vars.insert("PGUSER", user.to_owned());
        Self {
            user: user.to_owned(),
            database: self.database.clone(),
            vars,
        }
    }

    /// The URL's database.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// `(variable, value)` for the tools' environment.
    pub fn vars(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.vars.iter().map(|(k, v)| (*k, v.as_str()))
    }
}

/// Reads a postgres:// URL for both clients: the options for the pools and
/// the settings for the tools. The error says what is wrong, for a
/// configuration message.
pub fn parse(url: &str) -> Result<(PgConnectOptions, LibpqSettings), String> {
    let invalid = || "is not a valid postgres:// URL".to_owned();
    let parsed = url::Url::parse(url).map_err(|_| invalid())?;
    let mut libpq_only = BTreeMap::new();
    let mut files = BTreeMap::new();
    let mut kept = Vec::new();
    for (key, value) in parsed.query_pairs() {
        if key == "sslpassword" {
            // sqlx would log it, and neither client here can use it.
            return Err(
                "sets sslpassword: encrypted client keys are not supported; \
                 give sslkey an unencrypted key file that only the server's user can read"
                    .into(),
            );
        }
        if let Some((_, var)) = LIBPQ_ONLY.iter().find(|(name, _)| *name == key) {
            libpq_only.insert(*var, value.into_owned());
            continue;
        }
        if let Some((_, var)) = CERTIFICATE_FILES
            .iter()
            .find(|(names, _)| names.contains(&key.as_ref()))
        {
            // The last one wins, as in sqlx.
            files.insert(*var, value.to_string());
        }
        kept.push((key, value));
    }
    let for_sqlx: Cow<str> = if libpq_only.is_empty() {
        Cow::Borrowed(url)
    } else {
        let mut stripped = parsed.clone();
        stripped.set_query(None);
        if !kept.is_empty() {
            stripped.query_pairs_mut().extend_pairs(&kept);
        }
        Cow::Owned(stripped.into())
    };
    let options: PgConnectOptions = for_sqlx.parse().map_err(|_| invalid())?;

    // What the pools settled on, defaults and sqlx's own reading of the
    // server's environment (PGSSLMODE, PGOPTIONS, …) included: the tools
    // must not fall back on a default of their own.
    let host = match options.get_socket() {
        Some(dir) => dir.display().to_string(),
        None => options.get_host().to_owned(),
    };
    let mut vars = BTreeMap::from([
        ("PGHOST", host),
        ("PGPORT", options.get_port().to_string()),
        ("PGUSER", options.get_username().to_owned()),
        (
            "PGSSLMODE",
            ssl_mode_name(options.get_ssl_mode()).to_owned(),
        ),
    ]);
    if let Some(server_options) = options.get_options() {
        vars.insert("PGOPTIONS", server_options.to_owned());
    }
    vars.extend(files);
    vars.extend(libpq_only);
    let settings = LibpqSettings {
        user: options.get_username().to_owned(),
        database: options.get_database().unwrap_or_default().to_owned(),
        vars,
    };
    Ok((options, settings))
}

/// libpq's name for an sslmode.
fn ssl_mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(url: &str) -> BTreeMap<&'static str, String> {
        parse(url).unwrap().1.vars
    }

    #[test]
    fn tls_settings_reach_the_tools() {
        let url = "postgres://u:pw@db.example:6543/lms?sslmode=verify-full\
                   &sslrootcert=/etc/lms/ca.crt&sslcert=/etc/lms/client.crt\
                   &sslkey=/etc/lms/client.key&options=-c%20statement_timeout%3D0";
        let (options, settings) = parse(url).unwrap();
        assert_eq!(options.get_host(), "db.example");
        assert_eq!(settings.user(), "u");
        let other = settings.as_user("r");
        assert_eq!(other.user(), "r");
        assert!(other.vars().any(|(k, v)| k == "PGUSER" && v == "r"));
        assert_eq!(settings.database(), "lms");
        let expected = BTreeMap::from([
            ("PGHOST", "db.example".to_owned()),
            ("PGPORT", "6543".to_owned()),
            ("PGUSER", "u".to_owned()),
            ("PGSSLMODE", "verify-full".to_owned()),
            ("PGSSLROOTCERT", "/etc/lms/ca.crt".to_owned()),
            ("PGSSLCERT", "/etc/lms/client.crt".to_owned()),
            ("PGSSLKEY", "/etc/lms/client.key".to_owned()),
            ("PGOPTIONS", "-c statement_timeout=0".to_owned()),
        ]);
        assert_eq!(settings.vars, expected);
        assert!(
            settings.vars().all(|(_, v)| !v.contains("pw")),
            "no password"
        );
    }

    #[test]
    fn sqlx_spellings_and_options_pairs_are_understood() {
        let v = vars(
            "postgres://u@h/db?ssl-mode=require&ssl-ca=/a.crt&ssl-root-cert=/b.crt\
             &options[search_path]=lms",
        );
        assert_eq!(v["PGSSLMODE"], "require");
        assert_eq!(
            v["PGSSLROOTCERT"], "/b.crt",
            "the last one wins, as in sqlx"
        );
        assert_eq!(v["PGOPTIONS"], "-c search_path=lms");
    }

    #[test]
    fn the_tools_get_the_mode_the_pools_use_even_when_the_url_names_none() {
        let (options, settings) = parse("postgres://u@127.0.0.1:5432/db").unwrap();
        assert_eq!(
            settings.vars["PGSSLMODE"],
            ssl_mode_name(options.get_ssl_mode())
        );
    }

    #[test]
    fn parameters_only_libpq_knows_go_to_the_tools_alone() {
        let url = "postgres://u:p%40ss@h:5432/db?sslcrl=/crl.pem&sslmode=verify-ca\
                   &channel_binding=require&connect_timeout=3";
        let (options, settings) = parse(url).unwrap();
        assert_eq!(settings.vars["PGSSLCRL"], "/crl.pem");
        assert_eq!(settings.vars["PGCHANNELBINDING"], "require");
        assert_eq!(settings.vars["PGCONNECT_TIMEOUT"], "3");
        assert_eq!(settings.vars["PGSSLMODE"], "verify-ca");
        // The rest of the URL reached sqlx unchanged.
        assert_eq!(options.get_database(), Some("db"));
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyCa));
    }

    #[test]
    fn a_socket_directory_is_the_host() {
        let v = vars("postgres://u@localhost/db?host=/run/postgresql");
        assert_eq!(v["PGHOST"], "/run/postgresql");
    }

    #[test]
    fn key_passphrases_are_refused_without_repeating_them() {
        let err = parse("postgres://u@h/db?sslkey=/k.pem&sslpassword=hunter2").unwrap_err();
        assert!(err.contains("sslpassword"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn garbage_is_not_a_url() {
        assert!(parse("not a url").is_err());
    }
}
