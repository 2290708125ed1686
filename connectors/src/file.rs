//! `type: file`: CSV, TSV, Parquet and newline-delimited JSON from a file, a folder or a glob.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::DataFusionError;
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionContext};

use crate::bucket::{is_url, Bucket};
use crate::{ColumnType, Connector, ConnectorError, DataPaths, FileConnectorConfig, FileFormat};

/// A resolved `file` connector.
#[derive(Debug, Clone)]
pub struct FileConnector {
    id: String,
    source: Source,
    format: FileFormat,
    has_header: bool,
    delimiter: u8,
    schema: Option<Arc<Schema>>,
}

/// Where the files are.
#[derive(Debug, Clone)]
enum Source {
    Local {
        /// Absolute path, folder or glob pattern.
        location: PathBuf,
        kind: LocationKind,
        /// For a folder: the extension of its data files (`.csv`, `.jsonl`, ...), so that
        /// DataFusion lists exactly the files validation looked at. Empty for a file or a glob.
        folder_extension: String,
    },
    /// `s3://`, `gs://` or `az://` (boxed: a bucket is much larger than a path).
    Remote(Box<Bucket>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LocationKind {
    File,
    Folder,
    Glob,
}

impl FileConnector {
    /// Resolves the block against `base_dir` and checks that the location exists and holds at
    /// least one file, so that a typo in a path fails validation, not training.
    pub fn new(config: &FileConnectorConfig, paths: &DataPaths) -> Result<Self, ConnectorError> {
        let id = config.id.clone();
        let config_err = |field: &str, message: String| ConnectorError::Config {
            connector: id.clone(),
            field: field.to_string(),
            message,
        };
        if config.path.trim().is_empty() {
            return Err(config_err(
                "path",
                "is empty; give a file, a folder or a glob".into(),
            ));
        }
        let (source, sample) = if is_url(&config.path) {
            let bucket = Bucket::new(&id, &config.path, config.s3.as_ref())?;
            let sample = PathBuf::from(bucket.file_name());
            (Source::Remote(Box::new(bucket)), sample)
        } else if config.s3.is_some() {
            return Err(config_err(
                "s3",
                "applies only to s3:// paths; this path is local".into(),
            ));
        } else {
            Self::local(config, paths)?
        };
        let format = match config.format {
            Some(f) => f,
            None => format_of(&sample).ok_or_else(|| {
                config_err(
                    "format",
                    format!(
                        "cannot tell the format of `{}` from its extension; set `format:` to csv, tsv, parquet or ndjson",
                        match &source {
                            Source::Remote(b) => b.url().to_string(),
                            Source::Local { .. } => sample.display().to_string(),
                        }
                    ),
                )
            })?,
        };
        let delimiter = match &config.delimiter {
            None => {
                if format == FileFormat::Tsv {
                    b'\t'
                } else {
                    b','
                }
            }
            Some(d) => parse_delimiter(d).ok_or_else(|| {
                config_err(
                    "delimiter",
                    format!("`{d}` is not one ASCII character (use `\\t` for tab)"),
                )
            })?,
        };
        if config.delimiter.is_some() && !matches!(format, FileFormat::Csv | FileFormat::Tsv) {
            return Err(config_err(
                "delimiter",
                "applies only to csv and tsv files".into(),
            ));
        }
        if config.has_header.is_some() && !matches!(format, FileFormat::Csv | FileFormat::Tsv) {
            return Err(config_err(
                "has_header",
                "applies only to csv and tsv files".into(),
            ));
        }
        let schema = match &config.schema {
            None => None,
            Some(fields) => {
                if fields.is_empty() {
                    return Err(config_err(
                        "schema",
                        "is empty; list the columns or leave it out".into(),
                    ));
                }
                let mut seen = std::collections::HashSet::new();
                for f in fields {
                    if !seen.insert(f.name.as_str()) {
                        return Err(config_err(
                            "schema",
                            format!("column `{}` is declared twice", f.name),
                        ));
                    }
                }
                Some(Arc::new(Schema::new(
                    fields
                        .iter()
                        .map(|f| Field::new(&f.name, arrow_type(f.data_type), true))
                        .collect::<Vec<_>>(),
                )))
            }
        };
        Ok(Self {
            id: config.id.clone(),
            source,
            format,
            has_header: config.has_header.unwrap_or(true),
            delimiter,
            schema,
        })
    }

    /// Resolves a local path against the model file's folder, confined to the data roots, and
    /// finds a first data file (the sample whose extension tells the format).
    fn local(
        config: &FileConnectorConfig,
        paths: &DataPaths,
    ) -> Result<(Source, PathBuf), ConnectorError> {
        let base_dir = paths.base_dir();
        let id = config.id.clone();
        let config_err = |field: &str, message: String| ConnectorError::Config {
            connector: id.clone(),
            field: field.to_string(),
            message,
        };
        let location = if Path::new(&config.path).is_absolute() {
            PathBuf::from(&config.path)
        } else {
            base_dir.join(&config.path)
        };
        let display = location.display().to_string();
        let source_err = |message: String| unreadable(&id, &display, message);
        let is_glob = config.path.contains(['*', '?', '[']);
        // Confined to the data roots before anything is read (the fixed part of a glob first).
        let fixed: PathBuf = location
            .components()
            .take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '[']))
            .collect();
        paths
            .check_lexically(if is_glob { &fixed } else { &location })
            .map_err(|m| config_err("path", m))?;
        if !is_glob {
            paths
                .check_resolved(&location)
                .map_err(|m| config_err("path", m))?;
        }
        let (kind, sample) = if is_glob {
            // Files a link leads outside the roots are not matches (and are not named).
            let matches: Vec<PathBuf> = glob::glob(&display)
                .map_err(|e| config_err("path", format!("is not a valid glob: {e}")))?
                .filter_map(Result::ok)
                .filter(|p| p.is_file() && paths.allows_resolved(p))
                .collect();
            let first = matches.into_iter().next().ok_or_else(|| {
                source_err(
                    "the pattern matches no file; check the path and the working folder".into(),
                )
            })?;
            (LocationKind::Glob, first)
        } else {
            let meta = std::fs::metadata(&location).map_err(|e| {
                source_err(format!(
                    "{}; paths are relative to the model file's folder",
                    io_reason(&e)
                ))
            })?;
            if meta.is_dir() {
                let first = first_data_file(&location, config.format)
                    .map_err(|e| source_err(io_reason(&e)))?;
                let first = first.ok_or_else(|| {
                    source_err("the folder holds no data file (.csv, .tsv, .parquet, .ndjson, .json, .jsonl)".into())
                })?;
                (LocationKind::Folder, first)
            } else {
                std::fs::File::open(&location).map_err(|e| source_err(io_reason(&e)))?;
                (LocationKind::File, location.clone())
            }
        };
        let folder_extension = match kind {
            LocationKind::Folder => sample
                .extension()
                .and_then(|e| e.to_str())
                .map(|e| format!(".{e}"))
                .unwrap_or_default(),
            _ => String::new(),
        };
        let source = Source::Local {
            location,
            kind,
            folder_extension,
        };
        Ok((source, sample))
    }

    /// Where the files are: the resolved local path (absolute file, folder or glob), or the
    /// storage URL as written.
    pub fn location(&self) -> String {
        match &self.source {
            Source::Local { location, .. } => location.display().to_string(),
            Source::Remote(bucket) => bucket.url().to_string(),
        }
    }

    /// The resolved format.
    pub fn format(&self) -> FileFormat {
        self.format
    }

    /// What DataFusion lists, and the extension it keeps (DataFusion filters listed files by
    /// extension: a folder keeps only files of its format, a single file or a glob already
    /// names what to read). Remote locations are checked here, with one listing.
    async fn table_location(
        &self,
        ctx: &SessionContext,
    ) -> Result<(String, String), ConnectorError> {
        match &self.source {
            Source::Local {
                location,
                kind,
                folder_extension,
            } => {
                let mut location = location.display().to_string();
                if *kind == LocationKind::Folder && !location.ends_with('/') {
                    location.push('/');
                }
                Ok((location, folder_extension.clone()))
            }
            Source::Remote(bucket) => {
                let prepared = bucket.prepare(ctx, self.format).await?;
                Ok((prepared.url, prepared.extension))
            }
        }
    }
}

#[async_trait]
impl Connector for FileConnector {
    fn id(&self) -> &str {
        &self.id
    }

    async fn register(&self, ctx: &SessionContext) -> Result<(), ConnectorError> {
        let (location, ext) = self.table_location(ctx).await?;
        let ext = ext.as_str();
        let schema = self.schema.as_deref();
        let result = match self.format {
            FileFormat::Csv | FileFormat::Tsv => {
                let mut options = CsvReadOptions::new()
                    .has_header(self.has_header)
                    .delimiter(self.delimiter)
                    .file_extension(ext);
                options.schema = schema;
                ctx.register_csv(self.id.as_str(), &location, options).await
            }
            FileFormat::Parquet => {
                let options = ParquetReadOptions {
                    file_extension: ext,
                    schema,
                    ..Default::default()
                };
                ctx.register_parquet(self.id.as_str(), &location, options)
                    .await
            }
            FileFormat::Ndjson => {
                let options = JsonReadOptions {
                    file_extension: ext,
                    schema,
                    ..Default::default()
                };
                ctx.register_json(self.id.as_str(), &location, options)
                    .await
            }
        };
        // Whatever DataFusion says of a remote source, cleaned of the store's secrets.
        let said = |e: &DataFusionError| {
            let text = e.strip_backtrace().to_string();
            match &self.source {
                Source::Remote(bucket) => bucket.clean(&text),
                Source::Local { .. } => text,
            }
        };
        result.map_err(|e| match e {
            // DataFusion's own bugs are not the data's fault (an unsupported option is the
            // connector block's, and stays a source error located at its path).
            DataFusionError::Internal(_) => ConnectorError::Internal {
                connector: self.id.clone(),
                message: said(&e),
            },
            DataFusionError::ObjectStore(e) => match &self.source {
                Source::Remote(bucket) => bucket.source_error(&e),
                Source::Local { .. } => unreadable(&self.id, &location, e.to_string()),
            },
            e => unreadable(&self.id, &self.location(), said(&e)),
        })?;
        tracing::debug!(connector = %self.id, location = %location, format = ?self.format, "registered");
        Ok(())
    }
}

/// A file that cannot be read: the `path` field is the one to check.
fn unreadable(connector: &str, location: &str, message: String) -> ConnectorError {
    ConnectorError::Source {
        connector: connector.to_string(),
        field: "path".into(),
        location: location.to_string(),
        message,
        hint: "check the path; relative paths start at the model file's folder".into(),
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or folder".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

pub(crate) fn format_of(path: &Path) -> Option<FileFormat> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "csv" => Some(FileFormat::Csv),
        "tsv" | "tab" => Some(FileFormat::Tsv),
        "parquet" | "pq" => Some(FileFormat::Parquet),
        "json" | "ndjson" | "jsonl" => Some(FileFormat::Ndjson),
        _ => None,
    }
}

/// The first data file of a folder (sorted by name, hidden files skipped), to infer the format.
fn first_data_file(dir: &Path, format: Option<FileFormat>) -> std::io::Result<Option<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .filter(|p| match format {
            Some(f) => format_of(p) == Some(f),
            None => format_of(p).is_some(),
        })
        .collect();
    files.sort();
    Ok(files.into_iter().next())
}

fn parse_delimiter(d: &str) -> Option<u8> {
    match d {
        "\\t" | "\t" | "tab" => Some(b'\t'),
        _ if d.len() == 1 && d.is_ascii() => Some(d.as_bytes()[0]),
        _ => None,
    }
}

fn arrow_type(t: ColumnType) -> DataType {
    match t {
        ColumnType::String => DataType::Utf8,
        ColumnType::Int => DataType::Int64,
        ColumnType::Float => DataType::Float64,
        ColumnType::Bool => DataType::Boolean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SchemaField;

    fn cfg(path: &str) -> FileConnectorConfig {
        FileConnectorConfig {
            id: "t".into(),
            path: path.into(),
            format: None,
            has_header: None,
            delimiter: None,
            schema: None,
            s3: None,
        }
    }

    async fn count(ctx: &SessionContext) -> usize {
        let df = ctx.sql("SELECT count(*) AS n FROM t").await.unwrap();
        let batches = df.collect().await.unwrap();
        let col = batches[0].column(0);
        let arr = col
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Int64Array>()
            .unwrap();
        arr.value(0) as usize
    }

    #[tokio::test]
    async fn reads_csv_tsv_ndjson_folder_and_glob() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.csv"), "u,i\n1,2\n3,4\n").unwrap();
        std::fs::write(dir.path().join("b.tsv"), "u\ti\n1\t2\n").unwrap();
        std::fs::write(
            dir.path().join("c.ndjson"),
            "{\"u\":1}\n{\"u\":2}\n{\"u\":3}\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("parts")).unwrap();
        std::fs::write(dir.path().join("parts/1.csv"), "u\n1\n").unwrap();
        std::fs::write(dir.path().join("parts/2.csv"), "u\n2\n").unwrap();
        std::fs::create_dir(dir.path().join("lines")).unwrap();
        std::fs::write(dir.path().join("lines/a.jsonl"), "{\"u\":1}\n").unwrap();
        std::fs::write(dir.path().join("lines/b.jsonl"), "{\"u\":2}\n").unwrap();
        std::fs::write(dir.path().join("lines/notes.txt"), "not data").unwrap();
        for (path, n) in [
            ("a.csv", 2),
            ("b.tsv", 1),
            ("c.ndjson", 3),
            ("parts", 2),
            ("parts/*.csv", 2),
            ("lines", 2),
        ] {
            let ctx = SessionContext::new();
            let c = FileConnector::new(&cfg(path), &DataPaths::new(dir.path(), &[])).unwrap();
            c.register(&ctx).await.unwrap();
            assert_eq!(count(&ctx).await, n, "{path}");
        }
    }

    #[tokio::test]
    async fn headerless_with_schema_and_custom_delimiter() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("u.data"), "1|10\n2|20\n").unwrap();
        let mut c = cfg("u.data");
        c.format = Some(FileFormat::Csv);
        c.has_header = Some(false);
        c.delimiter = Some("|".into());
        c.schema = Some(vec![
            SchemaField {
                name: "user_id".into(),
                data_type: ColumnType::String,
            },
            SchemaField {
                name: "item_id".into(),
                data_type: ColumnType::Int,
            },
        ]);
        let conn = FileConnector::new(&c, &DataPaths::new(dir.path(), &[])).unwrap();
        let ctx = SessionContext::new();
        conn.register(&ctx).await.unwrap();
        let df = ctx
            .sql("SELECT sum(item_id) FROM t WHERE user_id = '2'")
            .await
            .unwrap();
        let b = df.collect().await.unwrap();
        let v = b[0]
            .column(0)
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Int64Array>()
            .unwrap()
            .value(0);
        assert_eq!(v, 20);
    }

    #[tokio::test]
    async fn reads_parquet_written_by_datafusion() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("events.parquet");
        let ctx = SessionContext::new();
        let df = ctx
            .sql("SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, 'c')) AS t(u, i)")
            .await
            .unwrap();
        df.write_parquet(
            out.to_str().unwrap(),
            datafusion::dataframe::DataFrameWriteOptions::new(),
            None,
        )
        .await
        .unwrap();
        let ctx = SessionContext::new();
        let c =
            FileConnector::new(&cfg("events.parquet"), &DataPaths::new(dir.path(), &[])).unwrap();
        assert_eq!(c.format(), FileFormat::Parquet);
        c.register(&ctx).await.unwrap();
        assert_eq!(count(&ctx).await, 3);
    }

    #[test]
    fn missing_file_names_connector_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let err =
            FileConnector::new(&cfg("nope.csv"), &DataPaths::new(dir.path(), &[])).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("connector `t`")
                && msg.contains("nope.csv")
                && msg.contains("no such file"),
            "{msg}"
        );
        let err =
            FileConnector::new(&cfg("*.parquet"), &DataPaths::new(dir.path(), &[])).unwrap_err();
        assert!(err.to_string().contains("matches no file"), "{err}");
    }

    #[test]
    fn unknown_extension_asks_for_format() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.dat"), "1,2\n").unwrap();
        let err = FileConnector::new(&cfg("x.dat"), &DataPaths::new(dir.path(), &[])).unwrap_err();
        assert!(
            matches!(err, ConnectorError::Config { ref field, .. } if field == "format"),
            "{err}"
        );
    }
}
