//! `ascent serve`: an OpenAI-compatible HTTP server for a trained model, with batched
//! generation, tool use, test-time strategies per request, and a small web chat page.
//!
//! - [`ServeArgs`]: the command's flags; [`Server::start`] loads the model and listens (port 0
//!   picks a free port), [`Server::stop`] shuts it down; [`run`] starts one and serves until
//!   Ctrl-C.
//! - [`api`]: the request bodies read, the OpenAI fields supported and not supported;
//!   [`plan`]: validation against the limits and the model's context.
//! - [`prompt`]: the only place that knows the chat format: the project's, or an imported
//!   model's template and end ids (rendering, end of turn, tool-call text ⇄ OpenAI `tool_calls`).
//! - [`scheduler`]: batches concurrent requests into `generate_batch` calls (how, and its
//!   limits, in its doc); [`engine`]: a request's rows, results and events; [`row`]: one
//!   generated sequence token by token (stop strings, reasoning, tool calls, streaming);
//!   [`strategy`]: self-consistency and best-of-N.
//! - [`http`] and [`sse`]: routes, errors in OpenAI's shape ([`error`]), whole and streamed
//!   responses; [`assets`]: the chat page, embedded in the binary.
//!
//! Invariant: only this crate knows HTTP. One line is logged per request (`tracing`, target
//! `serve::engine`): id, prompt and completion tokens, milliseconds, finish reasons.

pub mod api;
pub mod assets;
pub mod engine;
pub mod error;
pub mod http;
pub mod plan;
pub mod prompt;
pub mod row;
pub mod scheduler;
mod sse;
pub mod strategy;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use error::{ApiError, ServeError};

/// `ascent serve`.
#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    /// The model: a checkpoint folder (`.../checkpoints/step-N`) or a run folder (its newest checkpoint).
    #[arg(long)]
    pub model: PathBuf,
    /// Address to listen on (loopback by default: the server has no authentication).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The model's id in the API (default: the run folder's name for RUN/checkpoints/step-N, else the --model folder's).
    #[arg(long)]
    pub model_name: Option<String>,
    /// Run the model's tool calls with the project's tools (calc, run; lookup and find over
    /// --kb) and inject the results, instead of returning them to the client.
    #[arg(long)]
    pub tools: bool,
    /// Facts (JSONL triples, as `kb.jsonl`) for the `lookup` and `find` tools; needs --tools.
    #[arg(long)]
    pub kb: Option<PathBuf>,
    /// Largest request body in bytes (larger ones get a 413).
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Longest prompt in tokens (0 = the model's context less one token).
    #[arg(long, default_value_t = 0)]
    pub max_prompt_tokens: usize,
    /// Largest `max_tokens` a request may ask for.
    #[arg(long, default_value_t = 2048)]
    pub max_tokens_limit: usize,
    /// `max_tokens` of a request that gives none (at most --max-tokens-limit; cut to what the context leaves).
    #[arg(long, default_value_t = 256)]
    pub default_max_tokens: usize,
    /// Most sequences generated in one batch; also the most one request may ask for (n × samples).
    #[arg(long, default_value_t = 32)]
    pub max_batch: usize,
    /// Most requests queued or generating at once; more get a 503.
    #[arg(long, default_value_t = 256)]
    pub max_concurrent: usize,
    /// How long the scheduler waits for more requests to batch with the first (milliseconds).
    #[arg(long, default_value_t = 5)]
    pub batch_window_ms: u64,
    /// Batches generated at the same time (a new batch starts while another runs, up to this).
    #[arg(long, default_value_t = 2)]
    pub parallel_batches: usize,
    /// Compute threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

#[derive(clap::Parser)]
struct Flags {
    #[command(flatten)]
    args: ServeArgs,
}

impl ServeArgs {
    /// The arguments from command-line flags (without the program name), e.g.
    /// `["--model", "runs/x", "--port", "0"]`.
    pub fn from_flags<I, S>(flags: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser;
        let all = std::iter::once(std::ffi::OsString::from("serve")).chain(flags.into_iter().map(Into::into));
        Flags::try_parse_from(all).map(|f| f.args)
    }

    fn check(&self) -> Result<(), ServeError> {
        let bad = |field, message: &str| Err(ServeError::Setting { field, message: message.to_string() });
        if self.max_batch == 0 {
            return bad("max-batch", "must be at least 1");
        }
        if self.max_concurrent == 0 {
            return bad("max-concurrent", "must be at least 1");
        }
        if self.parallel_batches == 0 {
            return bad("parallel-batches", "must be at least 1");
        }
        if self.max_tokens_limit == 0 || self.default_max_tokens == 0 {
            return bad("max-tokens-limit", "--max-tokens-limit and --default-max-tokens must be at least 1");
        }
        if self.kb.is_some() && !self.tools {
            return bad("kb", "--kb gives facts to the lookup and find tools: add --tools");
        }
        Ok(())
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    model_name: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), ServeError>>>,
}

impl Server {
    /// Loads the model, starts the engine and listens. Returns once the socket is bound.
    pub fn start(args: &ServeArgs) -> Result<Server, ServeError> {
        Self::start_inner(args, false)
    }

    fn start_inner(args: &ServeArgs, ctrl_c: bool) -> Result<Server, ServeError> {
        args.check()?;
        model::engine::set_threads(args.threads);
        let device = model::engine::device(model::engine::Backend::Cpu).map_err(ServeError::Runtime)?;
        let (model, tok, cfg) = train::eval::load_for_inference(&args.model, &device)
            .map_err(|e| ServeError::Model { path: args.model.display().to_string(), message: e.to_string() })?;
        let registry = if args.tools {
            let mut reg = tools::Registry::new();
            match &args.kb {
                Some(kb) => {
                    let facts = world::KnowledgeBase::read(kb, &world::KbConfig::default())
                        .map_err(|e| ServeError::Knowledge { path: kb.display().to_string(), message: e.to_string() })?
                        .facts();
                    reg = tools::Registry::standard(&facts);
                }
                None => {
                    reg.register(tools::CalcTool::default());
                    reg.register(tools::RunTool::default());
                }
            }
            Some(Arc::new(reg))
        } else {
            None
        };
        let model_name = args.model_name.clone().unwrap_or_else(|| default_name(&args.model));
        let context = cfg.max_seq_len;
        let limits = plan::Limits {
            context,
            max_prompt_tokens: if args.max_prompt_tokens == 0 { context } else { args.max_prompt_tokens },
            max_tokens_limit: args.max_tokens_limit,
            default_max_tokens: args.default_max_tokens.min(args.max_tokens_limit),
            max_rows: args.max_batch,
        };
        let format = Arc::new(prompt::ChatFormat::of(&tok));
        let tok = Arc::new(tok);
        let server_tools =
            registry.as_ref().map(|r| r.names().iter().map(|s| s.to_string()).collect()).unwrap_or_default();
        let batch = scheduler::BatchConfig {
            max_batch: args.max_batch,
            window: Duration::from_millis(args.batch_window_ms),
            parallel: args.parallel_batches,
        };
        let engine = scheduler::Engine::start(model, Arc::clone(&tok), Arc::clone(&format), registry, device, batch)
            .map_err(|e| ServeError::Runtime(format!("cannot start the scheduler thread: {e}")))?;
        let state = Arc::new(http::AppState {
            engine,
            tok,
            format,
            limits,
            model_name: model_name.clone(),
            created: http::now(),
            permits: Arc::new(tokio::sync::Semaphore::new(args.max_concurrent)),
            max_concurrent: args.max_concurrent,
            max_body_bytes: args.max_body_bytes,
            server_tools,
        });
        let where_ = format!("{}:{}", args.host, args.port);
        let listener =
            std::net::TcpListener::bind(&where_).map_err(|source| ServeError::Bind { addr: where_.clone(), source })?;
        listener.set_nonblocking(true).map_err(|source| ServeError::Bind { addr: where_.clone(), source })?;
        let addr = listener.local_addr().map_err(|source| ServeError::Bind { addr: where_, source })?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("serve-http".into())
            .spawn(move || serve(listener, state, rx, ctrl_c))
            .map_err(|e| ServeError::Runtime(format!("cannot start the HTTP thread: {e}")))?;
        tracing::info!(%addr, model = %model_name, context, "serving");
        Ok(Server { addr, model_name, shutdown: Some(tx), thread: Some(thread) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The model's id in the API.
    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// Stops accepting, lets open requests finish, and waits for the server to end.
    pub fn stop(mut self) -> Result<(), ServeError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.join()
    }

    /// Waits until the server ends (Ctrl-C, for one started by [`run`]).
    pub fn wait(mut self) -> Result<(), ServeError> {
        self.join()
    }

    fn join(&mut self) -> Result<(), ServeError> {
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(ServeError::Runtime("the HTTP thread panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
            let _ = self.join();
        }
    }
}

/// The model's id: the folder's name, or for `RUN/checkpoints/step-N` the run's.
fn default_name(path: &std::path::Path) -> String {
    let name = |p: &std::path::Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let parent = path.parent();
    let run = parent.filter(|p| name(p).as_deref() == Some("checkpoints")).and_then(|p| p.parent()).and_then(name);
    run.or_else(|| name(path)).unwrap_or_else(|| "ascent".into())
}

fn serve(
    listener: std::net::TcpListener,
    state: Arc<http::AppState>,
    stop: tokio::sync::oneshot::Receiver<()>,
    ctrl_c: bool,
) -> Result<(), ServeError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("serve-io")
        .enable_all()
        .build()
        .map_err(|e| ServeError::Runtime(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|source| ServeError::Bind { addr: "the bound socket".into(), source })?;
        let signal = async move {
            if ctrl_c {
                tokio::select! {
                    _ = stop => {}
                    _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: shutting down"),
                }
            } else {
                let _ = stop.await;
            }
        };
        axum::serve(listener, http::router(state))
            .with_graceful_shutdown(signal)
            .await
            .map_err(|e| ServeError::Runtime(format!("the server failed: {e}")))
    })
}

/// `ascent serve`: starts the server and serves until Ctrl-C.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let server = Server::start_inner(&args, true)?;
    println!("ascent serve: {} at {} (OpenAI API under /v1, chat page at /)", server.model_name(), server.url());
    server.wait()?;
    Ok(())
}
