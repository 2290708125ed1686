//! `column_order(columns = 'year DESC, title', limit)`: items ordered by item columns, nulls
//! last; the order is computed once per version and spec.

use std::sync::Arc;

use datafusion::arrow::compute::{lexsort_to_indices, SortColumn, SortOptions};

use super::Retriever;
use crate::error::{Error, Result};
use crate::expr::check_error;
use crate::query::args::{Arg, CallArgs};
use crate::query::{Eligible, Ranked, Request};

struct ColumnOrder {
    /// Stored column names, descending or not.
    columns: Vec<(String, bool)>,
    key: String,
}

pub(super) fn bind(args: &mut CallArgs<'_>) -> Result<Box<dyn Retriever>, feed_lang::QueryError> {
    let (spec, span) = match args.text("columns")? {
        Some((Arg::Lit(s), span)) => (s, span),
        Some((Arg::Param(_), span)) => {
            return Err(check_error(
                "column_order(columns = ...) names columns: write them in the query",
                span,
                Some("e.g. columns = 'year DESC, title'".into()),
            ))
        }
        None => return Err(check_error("column_order needs columns = '...'", args.call.span, None)),
    };
    let mut columns = Vec::new();
    for part in spec.split(',') {
        let words: Vec<&str> = part.split_whitespace().collect();
        let (name, descending) = match words.as_slice() {
            [name] => (*name, false),
            [name, dir] if dir.eq_ignore_ascii_case("desc") => (*name, true),
            [name, dir] if dir.eq_ignore_ascii_case("asc") => (*name, false),
            _ => {
                return Err(check_error(
                    format!("`{}` is not `column [ASC|DESC]`", part.trim()),
                    span,
                    Some("e.g. columns = 'year DESC, title'".into()),
                ))
            }
        };
        let (stored, ty) = args.names.item(name, span)?;
        if crate::expr::Ty::of(ty) == crate::expr::Ty::List {
            return Err(check_error(
                format!("`{stored}` holds lists, which have no order"),
                span,
                Some("order by a column of numbers, text or dates".into()),
            ));
        }
        columns.push((stored.to_string(), descending));
    }
    let key = columns
        .iter()
        .map(|(c, d)| format!("{c}{}", if *d { " DESC" } else { "" }))
        .collect::<Vec<_>>()
        .join(",");
    Ok(Box::new(ColumnOrder { columns, key }))
}

impl ColumnOrder {
    fn order(&self, req: &Request<'_>) -> Result<Arc<Vec<u32>>> {
        let catalog = &req.snapshot.catalog;
        req.snapshot.caches.orders.get_or_try_insert(&self.key, || {
            let columns = self
                .columns
                .iter()
                .map(|(name, descending)| {
                    let values = catalog.column(name).cloned().ok_or_else(|| {
                        Error::Internal(format!("bound column `{name}` is not in the catalog"))
                    })?;
                    Ok(SortColumn {
                        values,
                        options: Some(SortOptions {
                            descending: *descending,
                            nulls_first: false,
                        }),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let indices = lexsort_to_indices(&columns, None)
                .map_err(|e| Error::Internal(format!("ordering by {}: {e}", self.key)))?;
            Ok(Arc::new(indices.values().to_vec()))
        })
    }
}

impl Retriever for ColumnOrder {
    fn retrieve(&self, req: &Request<'_>, eligible: Eligible<'_>, limit: usize) -> Result<Vec<Ranked>> {
        Ok(self
            .order(req)?
            .iter()
            .filter(|&&i| eligible.mask[i as usize])
            .take(limit)
            .enumerate()
            .map(|(pos, &i)| (i, 0.0 - pos as f64))
            .collect())
    }
}
