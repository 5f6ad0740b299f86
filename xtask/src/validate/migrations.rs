//! Schema changes that survive a rolling update. While a rollout runs, the
//! previous release's replicas serve against the new schema, so a migration
//! may only add: one that drops or renames a table or a column breaks them.
//! Such a change ships in two releases (expand, then contract; README.md,
//! "Schema changes"), and the contract migration says so on a line of its
//! own: `-- contract: <the expand migration's file name>`, which must be an
//! earlier migration of the same service.

use std::path::Path;

use anyhow::{Context, Result};

use super::{Outcome, Tree};

/// The validator: every service's migrations.
pub fn expand_before_contract(t: &Tree) -> Outcome {
    Outcome::of(
        "migrations only expand, or are marked as the contract step of an earlier expand",
        check(t.root),
    )
}

/// Every problem in `services/*/migrations/*.sql` under `root`.
pub fn check(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let services = root.join("services");
    let Ok(entries) = std::fs::read_dir(&services) else {
        return Ok(problems);
    };
    let mut dirs: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    dirs.sort();
    for dir in dirs
        .iter()
        .map(|d| d.join("migrations"))
        .filter(|d| d.is_dir())
    {
        let mut files: Vec<String> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        for (n, file) in files.iter().enumerate() {
            let path = dir.join(file);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            let marked = contract_of(&text);
            if let Some(expand) = &marked {
                let stem = |f: &String| f.trim_end_matches(".sql").to_string();
                if !files[..n].iter().any(|f| stem(f) == *expand || f == expand) {
                    problems.push(format!(
                        "{rel}: marked as the contract of `{expand}`, which is no earlier migration of this service"
                    ));
                }
                continue;
            }
            for (line, statement, what) in destructive(&text) {
                problems.push(format!(
                    "{rel}:{line}: `{statement}` {what}, which the previous release's replicas still use during a rollout; ship the expand step in one release and this as its contract in the next, marked `-- contract: <expand migration>` (README.md, \"Schema changes\")"
                ));
            }
        }
    }
    Ok(problems)
}

/// The expand migration a contract migration names, if it is marked.
fn contract_of(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("--"))
        .filter_map(|l| l.trim().strip_prefix("contract:"))
        .map(|l| l.trim().to_string())
        .find(|l| !l.is_empty())
}

/// `(line, statement, what it does)` of every statement that drops or
/// renames a table or a column.
fn destructive(text: &str) -> Vec<(usize, String, &'static str)> {
    let mut found = Vec::new();
    let mut statement = String::new();
    let mut start = 0;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split("--").next().unwrap_or("");
        for (i, part) in line.split(';').enumerate() {
            if i > 0 {
                judge(&statement, start, &mut found);
                statement.clear();
            }
            if statement.trim().is_empty() && !part.trim().is_empty() {
                start = n + 1;
            }
            statement.push(' ');
            statement.push_str(part);
        }
    }
    judge(&statement, start, &mut found);
    found
}

/// Records `statement` in `found` if it drops or renames a table or a
/// column: `DROP TABLE`, or an `ALTER TABLE` clause (comma-separated) that
/// starts with `DROP [COLUMN]` or `RENAME` (constraints excepted).
fn judge(statement: &str, line: usize, found: &mut Vec<(usize, String, &'static str)>) {
    let upper = statement.to_ascii_uppercase();
    let words: Vec<&str> = upper.split_whitespace().collect();
    let shown = statement.split_whitespace().collect::<Vec<_>>().join(" ");
    let what = match words.as_slice() {
        ["DROP", "TABLE", ..] => Some("drops a table"),
        ["ALTER", "TABLE", rest @ ..] => {
            // Past the table name (and IF EXISTS / ONLY).
            let skip = rest
                .iter()
                .position(|w| !matches!(*w, "IF" | "EXISTS" | "ONLY"))
                .map_or(rest.len(), |i| i + 1);
            let clauses = rest[skip..].join(" ");
            clauses.split(',').find_map(|clause| {
                let w: Vec<&str> = clause.split_whitespace().collect();
                match w.as_slice() {
                    ["DROP", "CONSTRAINT", ..] => None,
                    ["DROP", ..] => Some("drops a column"),
                    ["RENAME", "TO", ..] => Some("renames a table"),
                    ["RENAME", "CONSTRAINT", ..] => None,
                    ["RENAME", ..] => Some("renames a column"),
                    _ => None,
                }
            })
        }
        _ => None,
    };
    if let Some(what) = what {
        found.push((line, shown, what));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(sql: &str) -> Vec<&'static str> {
        destructive(sql).into_iter().map(|(_, _, w)| w).collect()
    }

    #[test]
    fn drops_and_renames_of_tables_and_columns_are_found() {
        assert_eq!(verdicts("DROP TABLE orders;"), ["drops a table"]);
        assert_eq!(
            verdicts("alter table orders drop column token;"),
            ["drops a column"]
        );
        assert_eq!(
            verdicts("ALTER TABLE orders DROP token;"),
            ["drops a column"]
        );
        assert_eq!(
            verdicts("ALTER TABLE orders RENAME TO purchases;"),
            ["renames a table"]
        );
        assert_eq!(
            verdicts("ALTER TABLE orders\n  RENAME COLUMN token TO card_token;"),
            ["renames a column"]
        );
    }

    #[test]
    fn additive_changes_and_constraint_drops_pass() {
        let sql = "CREATE TABLE a (id int);\nALTER TABLE a ADD COLUMN b text; -- DROP TABLE a;\n\
                   ALTER TABLE a ALTER COLUMN b DROP NOT NULL;\nALTER TABLE a DROP CONSTRAINT a_b;\n\
                   ALTER TABLE a ALTER b DROP DEFAULT;\nALTER TABLE a RENAME CONSTRAINT x TO y;\n\
                   DROP INDEX a_b;";
        assert!(verdicts(sql).is_empty(), "{:?}", destructive(sql));
    }

    #[test]
    fn the_line_of_the_statement_is_reported() {
        let found =
            destructive("-- header\nCREATE TABLE a (id int);\n\nALTER TABLE a\n DROP COLUMN id;\n");
        assert_eq!(found[0].0, 4);
        assert_eq!(found[0].1, "ALTER TABLE a DROP COLUMN id");
    }
}
