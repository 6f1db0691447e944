// mimalloc: the server allocates many small, short-lived buffers per request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    keyhaven::cli::main().await
}
