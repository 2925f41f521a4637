//! The SPF and DKIM lines of the human summary: the SPF status with its lookup counts and the
//! evaluation tree, and one line per DKIM selector.

use std::io::Write;

use mtasts_check::report::DomainReport;
use mtasts_proto::dkim::KeyStatus;
use mtasts_proto::spf::{NodeStatus, SpfNode, SpfStatus};

use super::Style;

/// Prints the SPF and DKIM sections that ran.
pub(super) fn summary(out: &mut impl Write, r: &DomainReport, st: &Style) -> std::io::Result<()> {
    if let Some(spf) = &r.spf {
        let good = spf.status == SpfStatus::Valid;
        let lookups_ok = spf.dns_lookups <= spf.dns_lookup_limit;
        let voids_ok = spf.void_lookups <= spf.void_lookup_limit;
        writeln!(
            out,
            "  SPF {}, {} DNS lookups, {} void lookups",
            st.ok(good, spf.status.as_str()),
            st.ok(
                lookups_ok,
                &format!("{}/{}", spf.dns_lookups, spf.dns_lookup_limit)
            ),
            st.ok(
                voids_ok,
                &format!("{}/{}", spf.void_lookups, spf.void_lookup_limit)
            ),
        )?;
        if spf.tree.status != NodeStatus::None {
            tree(out, &spf.tree, 6, st)?;
        }
    }
    if let Some(dkim) = &r.dkim {
        for key in &dkim.selectors {
            let mut line = format!("  DKIM {} ", key.selector);
            let status = match key.status {
                KeyStatus::Valid => "valid",
                KeyStatus::Missing => "missing",
                KeyStatus::Revoked => "revoked",
                KeyStatus::Invalid => "invalid",
                KeyStatus::TempError => "temp-error",
            };
            line.push_str(&st.ok(key.status == KeyStatus::Valid, status));
            if let (Some(kind), Some(bits)) = (&key.key_type, key.bits) {
                let kind = serde_json::to_value(kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                line.push_str(&format!(", {kind} {bits} bits"));
            }
            writeln!(out, "{line} {}", st.dim(&key.name))?;
        }
    }
    Ok(())
}

/// One node of the SPF tree and, indented, the terms that cost a lookup or say something.
fn tree(out: &mut impl Write, node: &SpfNode, indent: usize, st: &Style) -> std::io::Result<()> {
    let pad = " ".repeat(indent);
    let what = match (node.status, node.records.as_slice()) {
        (NodeStatus::Valid, [record]) => record.clone(),
        (_, _) => st.ok(
            false,
            &node
                .error
                .clone()
                .unwrap_or_else(|| format!("{:?}", node.status).to_lowercase()),
        ),
    };
    writeln!(out, "{pad}{}: {what}", node.domain)?;
    for term in &node.terms {
        if term.lookup.is_none() && term.note.is_none() && term.target.is_none() {
            continue;
        }
        let mut line = format!("{pad}  {}", term.term);
        if let Some(n) = term.lookup {
            line.push_str(&format!(" [lookup {n}]"));
        }
        if let Some(note) = &term.note {
            line.push_str(&format!(" {}", st.ok(!term.void, note)));
        }
        writeln!(out, "{line}")?;
        if let Some(target) = &term.target {
            tree(out, target, indent + 4, st)?;
        }
    }
    Ok(())
}
