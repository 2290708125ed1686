//! Progress bars on stderr (indicatif), drawn only when stderr is a terminal.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// One bar per stage; the engine drives it through [`feed_engine::Progress`].
#[derive(Default)]
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
}

impl feed_engine::Progress for Bars {
    fn start(&self, label: &str, total: Option<u64>) {
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{spinner} {prefix:<28} [{bar:30}] {pos}/{len} {per_sec} {elapsed}<{eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template(
                    "{spinner} {prefix:<28} {human_pos} rows {elapsed} {msg}",
                )
                .expect("valid template"),
            ),
        };
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Some(old) = self.bar.lock().expect("bar lock").replace(bar) {
            old.finish_and_clear();
        }
    }

    fn inc(&self, n: u64) {
        if let Some(b) = self.bar.lock().expect("bar lock").as_ref() {
            b.inc(n);
        }
    }

    fn message(&self, msg: &str) {
        if let Some(b) = self.bar.lock().expect("bar lock").as_ref() {
            b.set_message(msg.to_string());
        }
    }

    fn finish(&self) {
        if let Some(b) = self.bar.lock().expect("bar lock").take() {
            b.finish();
        }
    }
}
