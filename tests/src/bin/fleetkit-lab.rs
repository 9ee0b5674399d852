//! `fleetkit-lab`: the machine lab from the shell, for `make demo` and for
//! trying fleetkit by hand on real machines. The same code as the tests'
//! `Lab` (fleetkit_tests::lab); this is only its command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fleetkit_tests::lab::{self, Lab};

/// Real machines (systemd, sshd, a Docker engine each, at their own IPs) and
/// a real etcd cluster on a Docker network of their own.
#[derive(Parser)]
#[command(
    name = "fleetkit-lab",
    version,
    after_help = "Examples:\n  eval \"$(fleetkit-lab up --machines 4 --etcd 3)\"   # start one, keep its description\n  \
                  ssh -i \"$LAB_SSH_KEY\" root@${LAB_IPS%% *}            # log in to its first machine\n  \
                  fleetkit-lab down \"$LAB\"                            # remove it\n\n\
                  A lab left running is removed by the next `up` once its owner process (--owner) is gone."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the machine image if the engine lacks it (minutes, once per recipe); print its tag.
    Image,
    /// Start a lab and print its description as shell assignments (for `eval`).
    Up {
        /// Machines to start.
        #[arg(long, default_value_t = 4)]
        machines: usize,
        /// etcd members to start.
        #[arg(long, default_value_t = 3)]
        etcd: usize,
        /// Directory of fleetkit's built binaries, mounted on every machine
        /// [default: the directory of this program].
        #[arg(long, value_name = "DIR")]
        bin: Option<PathBuf>,
        /// The process whose exit makes the lab a leftover [default: the parent process].
        #[arg(long, value_name = "PID")]
        owner: Option<u32>,
    },
    /// Remove labs: every container, the network and the host-side files.
    Down {
        /// Labs to remove (the LAB value `up` printed).
        #[arg(required_unless_present = "all")]
        names: Vec<String>,
        /// Remove every lab on this engine.
        #[arg(long)]
        all: bool,
    },
    /// List the labs on this engine: name and owner PID.
    Ls,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleetkit-lab: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Cmd::Image => println!("{}", lab::image::ensure()?),
        Cmd::Up { machines, etcd, bin, owner } => {
            let bin = match bin {
                Some(b) => b,
                None => fleetkit_tests::bin::dir(),
            };
            let owner = owner.unwrap_or_else(|| nix::unistd::getppid().as_raw().unsigned_abs());
            let lab = Lab::new().machines(machines).etcd(etcd).bin_dir(bin).owner(owner).try_start()?;
            let join = |v: Vec<String>| v.join(" ");
            let m = lab.machines();
            println!("LAB={}", lab.name());
            println!("LAB_NETWORK={}", lab.network());
            println!("ETCDCTL_ENDPOINTS={}", lab.endpoints());
            println!("LAB_ETCD='{}'", join(lab.etcd().iter().map(|e| e.container().to_owned()).collect()));
            println!("LAB_MACHINES='{}'", join(m.iter().map(|x| x.container().to_owned()).collect()));
            println!("LAB_IPS='{}'", join(m.iter().map(|x| x.ip().to_string()).collect()));
            println!("LAB_IDS='{}'", join(m.iter().map(|x| x.id().to_owned()).collect()));
            println!("LAB_IMAGE={}", lab.image());
            println!("LAB_SSH_KEY={}", lab.ssh_key().display());
            lab.keep();
        }
        Cmd::Down { names, all } => {
            let known: Vec<String> = lab::labs().into_iter().map(|(n, _)| n).collect();
            if let Some(unknown) = names.iter().find(|n| !known.contains(n)) {
                return Err(format!(
                    "no lab named {unknown:?} on this engine (`fleetkit-lab ls` lists them)"
                ));
            }
            for name in if all { known } else { names } {
                lab::remove_lab(&name);
            }
        }
        Cmd::Ls => {
            for (name, owner) in lab::labs() {
                println!("{name} {}", owner.map_or_else(|| "-".to_owned(), |p| p.to_string()));
            }
        }
    }
    Ok(())
}
