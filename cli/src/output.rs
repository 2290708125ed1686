//! Plain-text tables for the terminal.

use feed_engine::arrow::record_batch::RecordBatch;
use feed_engine::arrow::util::display::{ArrayFormatter, FormatOptions};
use feed_engine::eval::{EvalReport, Metrics};

/// Left-aligned columns separated by two spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let s: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(s.join("  ").trim_end());
        out.push('\n');
    };
    line(headers.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

fn metric_cells(m: &Metrics) -> Vec<String> {
    vec![
        format!("{:.4}", m.ndcg),
        format!("{:.4}", m.hit_rate),
        format!("{:.4}", m.mrr),
        format!("{:.3}", m.coverage),
    ]
}

/// Test metrics per policy, popularity reference first, with the lift over it.
pub fn metrics_table(report: &EvalReport) -> String {
    let reference = report.reference.test.ndcg;
    let mut rows = Vec::new();
    let mut row = vec!["popularity (reference)".to_string(), "popular".to_string()];
    row.extend(metric_cells(&report.reference.test));
    row.extend([
        "1.00x".to_string(),
        format!("{:.4}", report.reference.valid.ndcg),
        format!("{:.1}", report.reference.train_seconds),
    ]);
    rows.push(row);
    for (name, r) in report.policies.iter().filter(|(_, r)| r.ranker.is_none()) {
        let mut row = vec![name.clone(), r.kind.clone()];
        row.extend(metric_cells(&r.test));
        let lift = if reference > 0.0 {
            format!("{:.2}x", r.test.ndcg / reference)
        } else {
            "-".into()
        };
        row.extend([
            lift,
            format!("{:.4}", r.valid.ndcg),
            format!("{:.1}", r.train_seconds),
        ]);
        rows.push(row);
    }
    let mut out = table(
        &[
            "POLICY",
            "TYPE",
            "NDCG@10",
            "HR@10",
            "MRR@10",
            "COVERAGE@10",
            "VS POPULAR",
            "VALID NDCG@10",
            "TRAIN S",
        ],
        &rows,
    );
    out.push_str(&format!(
        "test users: {}, items: {}, events: {}\nprotocol: {}\n",
        report.users, report.items, report.events, report.protocol
    ));
    for (name, r) in &report.policies {
        if let Some(ranker) = &r.ranker {
            out.push('\n');
            out.push_str(&ranker_table(name, ranker));
        }
        if let Some(t) = &r.tuning {
            out.push('\n');
            out.push_str(&tuning_table(name, t));
        }
    }
    out
}

/// A policy's search: each trial's settings and validation figure, the kept one marked.
fn tuning_table(name: &str, t: &feed_engine::eval::TuningReport) -> String {
    let fields: Vec<&String> = t
        .trials
        .first()
        .map(|x| x.settings.keys().collect())
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = t
        .trials
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let mut row = vec![format!("{}{}", i + 1, if i == t.best { " *" } else { "" })];
            row.extend(fields.iter().map(|f| {
                x.settings.get(*f).map_or("-".into(), |v| match v.as_f64() {
                    Some(n) if v.is_f64() => format!("{n:.4e}"),
                    _ => v.to_string(),
                })
            }));
            row.push(format!("{:.4}", x.valid));
            row.push(format!("{:.1}", x.seconds));
            row
        })
        .collect();
    let upper: Vec<String> = fields.iter().map(|f| f.to_uppercase()).collect();
    let valid = format!("VALID {}", t.metric.to_uppercase());
    let mut headers = vec!["TRIAL"];
    headers.extend(upper.iter().map(String::as_str));
    headers.extend([valid.as_str(), "S"]);
    let mut out = format!("tuning of {name} ({} search; * kept):\n", t.method);
    out.push_str(&table(&headers, &rows));
    out
}

/// A ranker's heads on its test impressions: ordering, loss and calibration.
fn ranker_table(name: &str, r: &feed_engine::eval::RankerReport) -> String {
    let rows: Vec<Vec<String>> = r
        .heads
        .iter()
        .map(|h| {
            vec![
                format!("{name}.{}", h.head),
                format!("{:.4}", h.test.base_rate),
                format!("{:.4}", h.test.auc),
                format!("{:.4}", h.test.log_loss),
                format!("{:.4}", h.test.normalized_entropy),
                format!("{:.4}", h.test.ece),
                format!("{:.4}", h.test_uncalibrated.ece),
                format!("{:.3}", h.test.predicted_over_observed),
                h.baseline
                    .as_ref()
                    .map_or("-".into(), |b| format!("{:.4}", b.test.auc)),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "HEAD",
            "BASE RATE",
            "AUC",
            "LOG LOSS",
            "NE",
            "ECE",
            "ECE UNCALIBRATED",
            "PRED/OBS",
            "BASELINE AUC",
        ],
        &rows,
    );
    out.push_str(&format!(
        "{name}: {} train, {} validation, {} test impressions; {}\n",
        r.train_rows, r.valid_rows, r.test_rows, r.protocol
    ));
    if let Some(b) = r.heads.iter().find_map(|h| h.baseline.as_ref()) {
        out.push_str(&format!(
            "baseline: a logistic regression on {}, fitted on the training impressions\n",
            b.inputs.join(" + ")
        ));
    }
    out
}

/// A ranked list: rank, item, score, then the items' attribute columns (if any).
pub fn ranking_table(
    ids: &[String],
    scores: &[f64],
    metadata: Option<&RecordBatch>,
) -> anyhow::Result<String> {
    let mut headers = vec!["RANK".to_string(), "ITEM".to_string(), "SCORE".to_string()];
    let mut rows: Vec<Vec<String>> = ids
        .iter()
        .zip(scores)
        .enumerate()
        .map(|(i, (id, s))| vec![(i + 1).to_string(), id.clone(), format!("{s:.4}")])
        .collect();
    if let Some(meta) = metadata {
        let options = FormatOptions::default().with_null("");
        for (field, col) in meta.schema().fields().iter().zip(meta.columns()).skip(1) {
            headers.push(field.name().to_uppercase());
            let f = ArrayFormatter::try_new(col.as_ref(), &options)?;
            for (i, row) in rows.iter_mut().enumerate() {
                row.push(f.value(i).to_string());
            }
        }
    }
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    Ok(table(&headers, &rows))
}
