//! Streams a chat reply from a running `lapce-ai-ipc serve` to stdout; Ctrl-C cancels it.
//!
//! ```text
//! node dist/cli.js serve --default echo &
//! cargo run -p lapce_ai_client --example chat -- "hello"
//! cargo run -p lapce_ai_client --example chat -- --socket /tmp/x/ai.sock --model echo/any "hello"
//! ```
//!
//! The socket is `--socket`, else `LAPCE_AI_SOCKET`, else the server's default path.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lapce_ai_client::chat::{ChatEvent, ChatRequest};
use lapce_ai_client::{default_socket_path, Client, ClientOptions};

fn main() {
    if let Err(e) = run() {
        eprintln!("error [{}]: {e}", e.code());
        std::process::exit(1);
    }
}

fn run() -> lapce_ai_client::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut socket, mut model, mut prompt) = (default_socket_path(), None, Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--socket" => socket = PathBuf::from(args.next().expect("--socket needs a path")),
            "--model" => model = args.next(),
            _ => prompt.push(a),
        }
    }
    let prompt = if prompt.is_empty() { "hello".to_string() } else { prompt.join(" ") };

    let client = Client::connect(&socket, ClientOptions::default())?;
    let mut request = ChatRequest::user(prompt);
    request.model = model;

    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).expect("install the Ctrl-C handler");

    let mut events = client.chat(&request)?;
    let mut out = std::io::stdout();
    loop {
        if interrupted.load(Ordering::SeqCst) {
            // CANCEL goes to the server; the stream then ends with CANCELLED.
            events.cancel();
        }
        let event = match events.next_timeout(Duration::from_millis(50)) {
            Ok(Some(event)) => event,
            Ok(None) if events.is_finished() => break,
            Ok(None) => continue,
            Err(e) if e.code() == "CANCELLED" => {
                eprintln!("\n[cancelled]");
                std::process::exit(130);
            }
            Err(e) => return Err(e),
        };
        match event {
            ChatEvent::Start { provider, model, .. } => eprintln!("[{provider}/{model}]"),
            ChatEvent::Delta { text } => {
                print!("{text}");
                let _ = out.flush();
            }
            ChatEvent::Reasoning { text } => eprint!("{text}"),
            ChatEvent::ToolCall { name, arguments, .. } => eprintln!("\n[tool call {name}({arguments})]"),
            ChatEvent::Finish { finish_reason, usage, .. } => {
                println!();
                eprintln!(
                    "[{finish_reason}; {} in, {} out]",
                    usage.input_tokens.map_or("?".into(), |n| n.to_string()),
                    usage.output_tokens.map_or("?".into(), |n| n.to_string())
                );
            }
            _ => {}
        }
    }
    Ok(())
}
