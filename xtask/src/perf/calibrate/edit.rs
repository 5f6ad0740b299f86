//! The proposal as an edit of `loja.toml`: each service's own table gets
//! `requests.cpu_millis`, `autoscaling.cpu_percent` and `replicas.max`
//! (inside the inline tables it already has, beside their other keys),
//! every comment and the layout kept; the edit is shown as a line diff and
//! written only when asked, whole or not at all.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use toml_edit::{DocumentMut, InlineTable, Item, Value};

use super::propose::Proposal;
use crate::model::Model;

/// `text` with every service's proposal in its `[services.NAME]` table.
pub fn apply(text: &str, proposals: &BTreeMap<String, Proposal>) -> Result<String> {
    let mut doc: DocumentMut = text.parse().context("loja.toml is not TOML")?;
    for (service, p) in proposals {
        let table = doc["services"][service.as_str()]
            .as_table_mut()
            .with_context(|| format!("loja.toml has no [services.{service}] table"))?;
        let values = [
            ("requests", "cpu_millis", i64::from(p.cpu_millis)),
            ("autoscaling", "cpu_percent", i64::from(p.cpu_percent)),
            ("replicas", "max", i64::from(p.replicas_max)),
        ];
        for (key, field, value) in values {
            let entry = table
                .entry(key)
                .or_insert_with(|| Item::Value(Value::InlineTable(InlineTable::default())));
            let inline = entry
                .as_inline_table_mut()
                .with_context(|| format!("[services.{service}] {key} is not an inline table"))?;
            match inline.get_mut(field) {
                // Keeps the spacing and any comment around the number.
                Some(old) => {
                    let decor = old.decor().clone();
                    *old = Value::from(value);
                    *old.decor_mut() = decor;
                }
                None => {
                    inline.insert(field, Value::from(value));
                }
            }
        }
    }
    Ok(doc.to_string())
}

/// Applies the proposals and checks that the result is still a valid
/// model (a replica bound under `replicas.min` of an environment, say).
pub fn checked(file: &str, text: &str, proposals: &BTreeMap<String, Proposal>) -> Result<String> {
    let new = apply(text, proposals)?;
    if let Err(err) = Model::parse(file, &new) {
        bail!("the proposal would make {file} invalid, so it is not applied:\n{err}");
    }
    Ok(new)
}

/// The lines that differ, `-` old and `+` new, each with its line number
/// (from a longest common subsequence of the lines).
pub fn diff(file: &str, old: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("-{file}:{}: {}\n", i + 1, a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+{file}:{}: {}\n", j + 1, b[j]));
            j += 1;
        }
    }
    out
}

/// Writes `new` over `path` whole (a temporary file renamed into place),
/// unless the file changed since `old` was read from it.
pub fn write(path: &Path, old: &str, new: &str) -> Result<()> {
    let now =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if now != old {
        bail!(
            "{} changed during the calibration: nothing written, run it again",
            path.display()
        );
    }
    crate::util::fs::write_atomic(path, new.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# the shop\n[services.pedidos]\n# its pool\nrequests = { cpu_millis = 100, memory_mib = 64 } # tuned\nroutes = [\"/o\"]\n\n[services.estoque]\nroutes = [\"/p\"]\n";

    fn proposals() -> BTreeMap<String, Proposal> {
        let p = |cpu_millis, cpu_percent, replicas_max| Proposal {
            cpu_millis,
            cpu_percent,
            replicas_max,
        };
        BTreeMap::from([
            ("estoque".to_string(), p(60, 66, 3)),
            ("pedidos".to_string(), p(340, 66, 5)),
        ])
    }

    #[test]
    fn the_edit_sets_the_keys_and_keeps_comments_and_other_values() {
        let new = apply(TEXT, &proposals()).unwrap();
        assert!(
            new.starts_with("# the shop\n[services.pedidos]\n# its pool\n"),
            "{new}"
        );
        assert!(
            new.contains("requests = { cpu_millis = 340, memory_mib = 64 } # tuned\n"),
            "{new}"
        );
        let doc: DocumentMut = new.parse().unwrap();
        let estoque = &doc["services"]["estoque"];
        assert_eq!(estoque["requests"]["cpu_millis"].as_integer(), Some(60));
        assert_eq!(estoque["autoscaling"]["cpu_percent"].as_integer(), Some(66));
        assert_eq!(estoque["replicas"]["max"].as_integer(), Some(3));
        assert_eq!(estoque["routes"][0].as_str(), Some("/p"));
        // Applying the same proposal again changes nothing.
        assert_eq!(apply(&new, &proposals()).unwrap(), new);
    }

    #[test]
    fn a_service_without_its_table_is_an_error() {
        let mut p = proposals();
        p.insert("unknown".into(), p["estoque"]);
        assert!(apply(TEXT, &p).is_err());
    }

    #[test]
    fn the_diff_shows_only_changed_lines_with_their_numbers() {
        let old = "a\nb\nc\n";
        let new = "a\nB\nc\nd\n";
        assert_eq!(diff("f", old, new), "-f:2: b\n+f:2: B\n+f:4: d\n");
        assert_eq!(diff("f", old, old), "");
    }

    #[test]
    fn writes_land_whole_and_refuse_a_file_changed_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loja.toml");
        std::fs::write(&path, TEXT).unwrap();
        let new = apply(TEXT, &proposals()).unwrap();
        write(&path, TEXT, &new).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), new);
        assert!(write(&path, TEXT, "x = 1\n").is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), new);
    }

    #[test]
    fn a_proposal_that_breaks_the_model_is_refused() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../loja.toml")).unwrap();
        let p = Proposal {
            cpu_millis: 100,
            cpu_percent: 66,
            // Below prod's replicas.min of 3.
            replicas_max: 1,
        };
        let bad = BTreeMap::from([("pagamentos".to_string(), p)]);
        let err = checked("loja.toml", &text, &bad).unwrap_err().to_string();
        assert!(err.contains("would make loja.toml invalid"), "{err}");
        let good = BTreeMap::from([(
            "pagamentos".to_string(),
            Proposal {
                replicas_max: 6,
                ..p
            },
        )]);
        assert!(checked("loja.toml", &text, &good).is_ok());
    }
}
