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
use futures_util::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::PullPolicy;
use crate::engine::Engine;
use crate::error::{shown, Error};

/// Makes sure `image` is present as `policy` asks.
///
/// # Errors
/// 125 when the image is missing and may not be pulled, or the pull fails
/// or makes no progress for the engine timeout.
pub async fn ensure_image(engine: &Engine, image: &str, policy: PullPolicy) -> Result<(), Error> {
    let what = format!("cannot inspect image {}", shown(image));
    let present = match engine.call(&what, engine.docker.inspect_image(image)).await {
        Ok(_) => true,
        Err(e) if e.status() == Some(404) => false,
        Err(e) => return Err(e),
    };
    match (policy, present) {
        (PullPolicy::Missing | PullPolicy::Never, true) => Ok(()),
        (PullPolicy::Never, false) => Err(Error::Other(format!(
            "image {image} is not present and --pull never forbids pulling it: \
             pull it first (docker pull {image}) or use --pull missing",
            image = shown(image)
        ))),
        (PullPolicy::Always | PullPolicy::Missing, _) => pull(engine, image).await,
    }
}

/// Pulls `image`. A pull may rightly take many minutes, so it has no
/// deadline as a whole; but the engine reports progress all along
/// (downloading, extracting, retrying), so a stream that stays quiet for
/// the engine timeout means a stuck registry or engine.
async fn pull(engine: &Engine, image: &str) -> Result<(), Error> {
    crate::SYSTEMD.status(&format!("pulling {}", shown(image)));
    let options = CreateImageOptionsBuilder::default().from_image(image).build();
    let mut stream = engine.docker.create_image(Some(options), None, None);
    let mut progress = Progress::new(image);
    loop {
        let next = match engine.timeout() {
            None => stream.next().await,
            Some(idle) => match tokio::time::timeout(idle, stream.next()).await {
                Ok(next) => next,
                Err(_) => {
                    progress.abandon();
                    return Err(Error::PullStalled { image: image.to_owned(), after: idle });
                }
            },
        };
        match next {
            Some(Ok(info)) => progress.update(&info),
            Some(Err(e)) => {
                progress.abandon();
                return Err(pull_failed(image, e));
            }
            None => break,
        }
    }
    progress.finish();
    Ok(())
}

/// The registry said no (or the engine did on its behalf): say what to check there;
/// otherwise the engine itself went away.
fn pull_failed(image: &str, err: bollard::errors::Error) -> Error {
    use bollard::errors::Error as E;
    let what = format!("cannot pull image {}", shown(image));
    match err {
        E::DockerStreamError { .. } | E::DockerResponseServerError { .. } => Error::Engine {
            what,
            hint: Some(
                "check the image name and tag, that the registry is reachable from the engine, \
                 and `docker login` for a private registry"
                    .to_owned(),
            ),
            source: err,
        },
        other => Error::engine(what, other),
    }
}

/// Per-layer progress: bars on a TTY, one line per finished layer otherwise.
enum Progress {
    Bars { multi: MultiProgress, bars: HashMap<String, ProgressBar>, style: ProgressStyle },
    Lines { image: String },
}

impl Progress {
    fn new(image: &str) -> Self {
        let image = &shown(image);
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
        let status = &shown(info.status.as_deref().unwrap_or_default());
        let done = matches!(status.as_str(), "Pull complete" | "Already exists");
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
                    b.set_prefix(shown(id));
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
                bar.set_message(status.clone());
                if done {
                    bar.finish();
                }
            }
            Self::Lines { image } => match info.id.as_deref().map(shown).as_deref() {
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
