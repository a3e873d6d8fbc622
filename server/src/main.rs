use std::process::ExitCode;

use clap::Parser;
use server::cli::Cli;

fn main() -> ExitCode {
    keep_large_blocks_out_of_the_heap();
    run()
}

/// Argon2 allocates 19 MiB for each password check. Past glibc's first
/// frees, its adaptive threshold lets blocks that size come from per-thread
/// heaps, which keep them: 50 sign-ins left the server at 232 MB instead of
/// 19 MB. Pinning the threshold at 1 MiB keeps such blocks in their own
/// mappings, returned to the system when freed (at a few milliseconds per
/// sign-in).
fn keep_large_blocks_out_of_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[tokio::main]
async fn run() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_sessions=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match server::serve::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("lms-admin: {message}");
            ExitCode::FAILURE
        }
    }
}
