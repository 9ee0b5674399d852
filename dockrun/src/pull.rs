//! Getting the image per `--pull`, with progress a person or a journal can read.
//!
//! On a terminal each layer gets an indicatif bar; anywhere else (the journal)
//! each layer gets one line when it is done, so a pull of a big image does not
//! flood the log with percentages. Progress goes to stderr: stdout belongs to
//! the container.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use bollard::models::CreateImageInfo;
use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::Docker;
use fleetkit_core::ToolError;
use futures_util::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::PullPolicy;
use crate::engine::{self, ENGINE_FAILED};

/// Makes sure `image` is present as `policy` asks.
///
/// # Errors
/// 125 when the image is missing and may not be pulled, or the pull fails.
pub async fn ensure_image(docker: &Docker, image: &str, policy: PullPolicy) -> Result<(), ToolError> {
    let present = match docker.inspect_image(image).await {
        Ok(_) => true,
        Err(e) if engine::status(&e) == Some(404) => false,
        Err(e) => return Err(engine::failed(&format!("cannot inspect image {image}"), &e)),
    };
    match (policy, present) {
        (PullPolicy::Missing, true) => Ok(()),
        (PullPolicy::Never, true) => Ok(()),
        (PullPolicy::Never, false) => Err(ToolError::with_code(
            ENGINE_FAILED,
            format!(
                "image {image} is not present and --pull never forbids pulling it: \
                 pull it first (docker pull {image}) or use --pull missing"
            ),
        )),
        (PullPolicy::Always | PullPolicy::Missing, _) => pull(docker, image).await,
    }
}

async fn pull(docker: &Docker, image: &str) -> Result<(), ToolError> {
    crate::SYSTEMD.status(&format!("pulling {image}"));
    let options = CreateImageOptionsBuilder::default().from_image(image).build();
    let mut stream = docker.create_image(Some(options), None, None);
    let mut progress = Progress::new(image);
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => progress.update(&info),
            Err(e) => {
                progress.abandon();
                return Err(pull_failed(image, &e));
            }
        }
    }
    progress.finish();
    Ok(())
}

/// The registry said no (or the engine did on its behalf): say what to check there;
/// otherwise the engine itself went away.
fn pull_failed(image: &str, err: &bollard::errors::Error) -> ToolError {
    use bollard::errors::Error;
    match err {
        Error::DockerStreamError { .. } | Error::DockerResponseServerError { .. } => ToolError::with_code(
            ENGINE_FAILED,
            format!(
                "cannot pull image {image}: {}: check the image name and tag, that the registry is \
                 reachable from the engine, and `docker login` for a private registry",
                engine::message(err)
            ),
        ),
        other => engine::failed(&format!("cannot pull image {image}"), other),
    }
}

/// Per-layer progress: bars on a TTY, one line per finished layer otherwise.
enum Progress {
    Bars { multi: MultiProgress, bars: HashMap<String, ProgressBar>, style: ProgressStyle },
    Lines { image: String },
}

impl Progress {
    fn new(image: &str) -> Self {
        if std::io::stderr().is_terminal() {
            let style =
                ProgressStyle::with_template("{prefix:.bold} {msg:<16} [{bar:30}] {bytes}/{total_bytes}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let _ = multi.println(format!("pulling {image}"));
            Self::Bars { multi, bars: HashMap::new(), style }
        } else {
            eprintln_flush(&format!("dockrun: pulling {image}"));
            Self::Lines { image: image.to_owned() }
        }
    }

    fn update(&mut self, info: &CreateImageInfo) {
        let status = info.status.as_deref().unwrap_or_default();
        let done = matches!(status, "Pull complete" | "Already exists");
        match self {
            Self::Bars { multi, bars, style } => {
                let Some(id) = info.id.as_deref().filter(|_| info.progress_detail.is_some() || done) else {
                    if !status.is_empty() {
                        let _ = multi.println(status);
                    }
                    return;
                };
                let bar = bars.entry(id.to_owned()).or_insert_with(|| {
                    let b = multi.add(ProgressBar::new(0).with_style(style.clone()));
                    b.set_prefix(id.to_owned());
                    b
                });
                if let Some(detail) = &info.progress_detail {
                    if let Some(total) = detail.total.and_then(|t| u64::try_from(t).ok()) {
                        bar.set_length(total);
                    }
                    if let Some(current) = detail.current.and_then(|c| u64::try_from(c).ok()) {
                        bar.set_position(current);
                    }
                }
                bar.set_message(status.to_owned());
                if done {
                    bar.finish();
                }
            }
            Self::Lines { image } => match info.id.as_deref() {
                Some(id) if done => eprintln_flush(&format!("dockrun: {image}: layer {id}: {status}")),
                None if !status.is_empty() => eprintln_flush(&format!("dockrun: {image}: {status}")),
                _ => {}
            },
        }
    }

    fn abandon(&self) {
        if let Self::Bars { bars, .. } = self {
            bars.values().for_each(ProgressBar::abandon);
        }
    }

    fn finish(&self) {
        if let Self::Bars { bars, .. } = self {
            bars.values().for_each(ProgressBar::finish);
        }
    }
}

fn eprintln_flush(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
    let _ = err.flush();
}
