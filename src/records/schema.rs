//! What a database's own catalog says of its tables: their columns, primary
//! keys, unique keys and foreign keys. Read from `pg_catalog`, so the diff
//! and the recovery work for any schema, not only the LMS one.

use std::collections::BTreeMap;

use serde_json::Value;
use sqlx::PgConnection;

use crate::postgres::databases::quote_ident;
use crate::postgres::fingerprint::NATIVE_HASH_TYPES;
use crate::Result;

/// A table's name: (schema, name).
pub(crate) type TableName = (String, String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Column {
    pub name: String,
    /// `format_type`: a type spelling valid in SQL on this database.
    pub type_sql: String,
    /// Hashed natively by `hash_record_extended` (see fingerprint).
    pub native_hash: bool,
    /// A generated column: never inserted.
    pub generated: bool,
    /// `GENERATED ALWAYS AS IDENTITY`: inserted with OVERRIDING SYSTEM VALUE.
    pub identity_always: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub schema: String,
    pub name: String,
    pub columns: Vec<Column>,
    /// The primary key's columns, in key order.
    pub key: Option<Vec<String>>,
    /// Unique indexes other than the primary key (plain columns, no
    /// predicate): (name, columns).
    pub uniques: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ForeignKey {
    pub name: String,
    pub child: TableName,
    pub child_columns: Vec<String>,
    pub parent: TableName,
    pub parent_columns: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Schema {
    pub tables: BTreeMap<TableName, Table>,
    pub foreign_keys: Vec<ForeignKey>,
}

impl Table {
    pub fn sql_name(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }

    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// `AS k(col type, ...)` for `jsonb_to_recordset` over `columns`.
    pub fn record_definition(&self, columns: &[String]) -> String {
        let defs: Vec<String> = columns
            .iter()
            .map(|c| {
                let ty = self
                    .column(c)
                    .map(|c| c.type_sql.as_str())
                    .unwrap_or("text");
                format!("{} {ty}", quote_ident(c))
            })
            .collect();
        format!("k({})", defs.join(", "))
    }

    /// `a.c1 = b.c1 AND a.c2 = b.c2` over `columns`.
    pub fn equal_on(columns: &[String], a: &str, b: &str) -> String {
        join_columns(columns, a, b, " AND ")
    }

    /// `jsonb_build_object('c1', t.c1, ...)` over the key: a row's identity
    /// as text both databases spell alike.
    pub fn key_object(&self, alias: &str) -> Option<String> {
        self.key.as_ref().map(|key| json_object(key, alias))
    }

    /// The columns a row's content hash covers, rendered for
    /// `hash_record_extended(ROW(...), 0)`; only those in `among`.
    pub fn hashed_columns(&self, alias: &str, among: &[String]) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| among.contains(&c.name))
            .map(|c| render_for_hash(c, alias))
            .collect()
    }

    /// The key's columns rendered for hashing (bucket numbers).
    pub fn hashed_key(&self, alias: &str) -> Option<Vec<String>> {
        let key = self.key.as_ref()?;
        Some(
            key.iter()
                .filter_map(|k| self.column(k))
                .map(|c| render_for_hash(c, alias))
                .collect(),
        )
    }

    /// Columns an insert writes (generated ones are computed).
    pub fn insertable(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| !c.generated)
            .map(|c| c.name.clone())
            .collect()
    }

    /// The values of `columns` in `row` (a `to_jsonb` of a row), as one
    /// canonical string; `None` when one is NULL (a foreign key with a NULL
    /// column refers to nothing).
    pub fn values_of(columns: &[String], row: &Value) -> Option<String> {
        let values: Option<Vec<&Value>> = columns
            .iter()
            .map(|c| row.get(c).filter(|v| !v.is_null()))
            .collect();
        values.map(|v| serde_json::to_string(&v).unwrap_or_default())
    }

    /// `{"c1": v1, ...}` of `columns` in `row`.
    pub fn project(columns: &[String], row: &Value) -> Value {
        Value::Object(
            columns
                .iter()
                .map(|c| (c.clone(), row.get(c).cloned().unwrap_or(Value::Null)))
                .collect(),
        )
    }
}

fn render_for_hash(c: &Column, alias: &str) -> String {
    let column = format!("{alias}.{}", quote_ident(&c.name));
    if c.native_hash {
        column
    } else {
        format!("{column}::text")
    }
}

fn join_columns(columns: &[String], a: &str, b: &str, sep: &str) -> String {
    columns
        .iter()
        .map(|c| format!("{a}.{q} = {b}.{q}", q = quote_ident(c)))
        .collect::<Vec<_>>()
        .join(sep)
}

pub(crate) fn json_object(columns: &[String], alias: &str) -> String {
    let pairs: Vec<String> = columns
        .iter()
        .map(|c| {
            format!(
                "{}, {alias}.{}",
                crate::postgres::databases::quote_literal(c),
                quote_ident(c)
            )
        })
        .collect();
    format!("jsonb_build_object({})", pairs.join(", "))
}

#[derive(sqlx::FromRow)]
struct ForeignKeyRow {
    name: String,
    child_schema: String,
    child_name: String,
    child_columns: Vec<String>,
    parent_schema: String,
    parent_name: String,
    parent_columns: Vec<String>,
}

impl Schema {
    /// Reads the user tables (partitions are covered by their parent) and
    /// the foreign keys between them.
    pub async fn read(conn: &mut PgConnection) -> Result<Schema> {
        let columns: Vec<(String, String, String, String, bool, bool, bool)> = sqlx::query_as(
            "SELECT n.nspname::text, c.relname::text, a.attname::text,
                    format_type(a.atttypid, a.atttypmod),
                    ty.typnamespace = 'pg_catalog'::regnamespace
                    AND (ty.typname = ANY($1)
                         OR (ty.typcategory = 'A' AND EXISTS (
                             SELECT 1 FROM pg_type el
                             WHERE el.oid = ty.typelem
                               AND el.typnamespace = 'pg_catalog'::regnamespace
                               AND el.typname = ANY($1)))),
                    a.attgenerated <> '', a.attidentity = 'a'
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             JOIN pg_type ty ON ty.oid = a.atttypid
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
             ORDER BY 1, 2, a.attnum",
        )
        .bind(NATIVE_HASH_TYPES)
        .fetch_all(&mut *conn)
        .await?;
        let mut tables: BTreeMap<TableName, Table> = BTreeMap::new();
        for (schema, name, column, type_sql, native_hash, generated, identity_always) in columns {
            tables
                .entry((schema.clone(), name.clone()))
                .or_insert_with(|| Table {
                    schema,
                    name,
                    columns: vec![],
                    key: None,
                    uniques: vec![],
                })
                .columns
                .push(Column {
                    name: column,
                    type_sql,
                    native_hash,
                    generated,
                    identity_always,
                });
        }
        let indexes: Vec<(String, String, String, bool, Vec<String>)> = sqlx::query_as(
            "SELECT n.nspname::text, c.relname::text, ic.relname::text, i.indisprimary,
                    array(SELECT a.attname::text
                          FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
                          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                          ORDER BY k.ord)
             FROM pg_index i
             JOIN pg_class c ON c.oid = i.indrelid
             JOIN pg_class ic ON ic.oid = i.indexrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE i.indisunique AND i.indexprs IS NULL AND i.indpred IS NULL
               AND NOT (0 = ANY(i.indkey::int2[]))
             ORDER BY 1, 2, i.indisprimary DESC, 3",
        )
        .fetch_all(&mut *conn)
        .await?;
        for (schema, name, index, primary, columns) in indexes {
            if let Some(table) = tables.get_mut(&(schema, name)) {
                if primary {
                    table.key = Some(columns);
                } else {
                    table.uniques.push((index, columns));
                }
            }
        }
        let fks: Vec<ForeignKeyRow> =
            sqlx::query_as(
                "SELECT con.conname::text AS name, cn.nspname::text AS child_schema,
                        c.relname::text AS child_name,
                        array(SELECT a.attname::text
                              FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
                              JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                              ORDER BY k.ord) AS child_columns,
                        pn.nspname::text AS parent_schema, p.relname::text AS parent_name,
                        array(SELECT a.attname::text
                              FROM unnest(con.confkey) WITH ORDINALITY k(attnum, ord)
                              JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                              ORDER BY k.ord) AS parent_columns
                 FROM pg_constraint con
                 JOIN pg_class c ON c.oid = con.conrelid
                 JOIN pg_namespace cn ON cn.oid = c.relnamespace
                 JOIN pg_class p ON p.oid = con.confrelid
                 JOIN pg_namespace pn ON pn.oid = p.relnamespace
                 WHERE con.contype = 'f' AND con.conparentid = 0
                 ORDER BY 2, 3, 1",
            )
            .fetch_all(&mut *conn)
            .await?;
        let foreign_keys = fks
            .into_iter()
            .map(|r| ForeignKey {
                name: r.name,
                child: (r.child_schema, r.child_name),
                child_columns: r.child_columns,
                parent: (r.parent_schema, r.parent_name),
                parent_columns: r.parent_columns,
            })
            .filter(|fk| tables.contains_key(&fk.child) && tables.contains_key(&fk.parent))
            .collect();
        Ok(Schema {
            tables,
            foreign_keys,
        })
    }

    pub fn table(&self, name: &TableName) -> Option<&Table> {
        self.tables.get(name)
    }

    /// Finds a table by `schema.name` or a bare name (in `public`, or the
    /// only schema that has it).
    pub fn find(&self, spelled: &str) -> Option<&Table> {
        match spelled.split_once('.') {
            Some((schema, name)) => self.tables.get(&(schema.to_owned(), name.to_owned())),
            None => self
                .tables
                .get(&("public".to_owned(), spelled.to_owned()))
                .or_else(|| {
                    let mut matching = self.tables.values().filter(|t| t.name == spelled);
                    match (matching.next(), matching.next()) {
                        (Some(t), None) => Some(t),
                        _ => None,
                    }
                }),
        }
    }
}
