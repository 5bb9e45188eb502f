use clap::Parser;
use std::io::{IsTerminal, Write};
use twslake::cli::{run, stdout_closed, Cli, EXIT_STDOUT_CLOSED};

/// Standard error for log lines, with secrets redacted from each line ([`twslake::error::redact`]):
/// tracing formats an event into one buffer and writes it at once, so a line is redacted whole.
struct RedactedStderr;

impl Write for RedactedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = twslake::error::redact(&String::from_utf8_lossy(buf));
        std::io::stderr().lock().write_all(text.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Colours only for a person at a terminal: never in a captured stderr, never with `NO_COLOR`
/// set to anything non-empty (<https://no-color.org>).
fn colours() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A print to a closed standard output (`twslake status --json | head -c 10`) panics inside
/// `println!`; the commands write through `cli`'s checked writer instead, and this hook is the
/// net for a print elsewhere: the reader has gone, so the process ends quietly, as a Unix tool
/// killed by SIGPIPE does, without a panic message or a backtrace.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") {
            std::process::exit(EXIT_STDOUT_CLOSED);
        }
        default(info);
    }));
}

fn main() {
    quiet_on_closed_stdout();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // clap quotes a refused value: redact it like any other message (a URL with a password).
        Err(e) => {
            let text = twslake::error::redact(&e.render().to_string());
            let _ = match e.use_stderr() {
                true => std::io::stderr().write_all(text.as_bytes()),
                false => std::io::stdout().write_all(text.as_bytes()),
            };
            std::process::exit(e.exit_code());
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("TWSLAKE_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(|| RedactedStderr)
        .with_ansi(colours())
        .init();
    // Multi-threaded: polars' cloud reader must not run inside a current-thread runtime.
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    let code = match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(_) if stdout_closed() => EXIT_STDOUT_CLOSED,
        Err(e) => {
            eprintln!("error: {}", twslake::error::describe(e.as_ref()));
            2
        }
    };
    std::process::exit(code);
}
