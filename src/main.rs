//! Entry point: parse and check the flags, then run the TUI or the headless summary.

use std::process::ExitCode;

use clap::Parser;
use warren::cli::Cli;
use warren::{headless, tui};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print and succeed; usage errors are one line and exit 1
            // (2 means timeout).
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let first = std::env::args().nth(1);
            eprintln!("warren: {}", warren::cli::usage_error(&e, first.as_deref()));
            return ExitCode::from(headless::EXIT_ERROR);
        }
    };
    if let Some(warren::cli::Command::Play(args)) = &cli.command {
        let (scenario, cfg) = match warren::play::prepare(args) {
            Ok(ready) => ready,
            Err(e) => {
                eprintln!("warren: {e}");
                return ExitCode::from(headless::EXIT_ERROR);
            }
        };
        return run_async(async move {
            if cfg.headless.is_some() {
                return warren::play::run_headless(scenario, cfg).await;
            }
            let output = match tui::Output::open(cfg.record.as_deref(), &scenario.title) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("warren: {e}");
                    return headless::EXIT_ERROR;
                }
            };
            loop {
                match tui::run(cfg.clone(), Some(scenario.clone()), &output).await {
                    Ok(tui::Exit::Restart) => continue,
                    Ok(tui::Exit::Quit) => return headless::EXIT_OK,
                    Ok(tui::Exit::Signal(s)) => return s.exit_code(),
                    Err(e) => {
                        eprintln!("warren: {e}");
                        return headless::EXIT_ERROR;
                    }
                }
            }
        });
    }
    if let Some(warren::cli::Command::Broker(args)) = cli.command {
        return run_async(async move {
            match warren::serve::run(args).await {
                Ok(()) => headless::EXIT_OK,
                Err(e) => {
                    eprintln!("warren: {e}");
                    headless::EXIT_ERROR
                }
            }
        });
    }
    let cfg = match cli.into_config() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("warren: {e}");
            return ExitCode::from(headless::EXIT_ERROR);
        }
    };
    run_async(async move {
        if cfg.headless.is_some() {
            headless::run(cfg).await
        } else {
            let output = match tui::Output::open(cfg.record.as_deref(), "") {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("warren: {e}");
                    return headless::EXIT_ERROR;
                }
            };
            match tui::run(cfg, None, &output).await {
                Ok(tui::Exit::Signal(s)) => s.exit_code(),
                Ok(_) => headless::EXIT_OK,
                Err(e) => {
                    eprintln!("warren: {e}");
                    headless::EXIT_ERROR
                }
            }
        }
    })
}

/// Run to completion on a multi-threaded runtime and turn the code into an exit status.
fn run_async(work: impl std::future::Future<Output = u8>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("warren: cannot start the async runtime: {e}");
            return ExitCode::from(headless::EXIT_ERROR);
        }
    };
    let code = runtime.block_on(work);
    // Actors still closing connections must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    ExitCode::from(code)
}
