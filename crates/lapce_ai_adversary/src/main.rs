//! Hostile peers for lapce-ai-ipc's adversarial suite (`__test__/adversary`).
//!
//! ```text
//! lapce_ai_adversary client <socketPath> <attack> [--iterations N] [--seed S] [--duration-ms D] [--connections K]
//! lapce_ai_adversary server <socketPath> <attack> [--iterations N] [--seed S]
//! lapce_ai_adversary list
//! ```
//!
//! Written from `docs/PROTOCOL.md` and the session plan's protocol v2 only; it shares no code
//! with the implementation under test. Output: one JSON object per line on stdout.

mod bell;
mod client;
mod ctl;
mod out;
mod peer;
mod ring;
mod rng;
mod server;
mod wire;

use out::Line;

fn usage() -> ! {
    eprintln!(
        "usage: lapce_ai_adversary client|server <socketPath> <attack> [--iterations N] [--seed S] [--duration-ms D] [--connections K]\n       lapce_ai_adversary list"
    );
    std::process::exit(64)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("list") {
        for (role, list) in [("client", client::ATTACKS), ("server", server::ATTACKS)] {
            for (name, help) in list {
                Line::new("attack").s("role", role).s("name", name).s("help", help).print();
            }
        }
        return;
    }
    if args.len() < 3 {
        usage();
    }
    let (role, socket, attack) = (args[0].as_str(), args[1].clone(), args[2].as_str());
    let mut iterations = 1usize;
    let mut seed = 1u64;
    let mut duration_ms = 3000u64;
    let mut connections = 8usize;
    let mut rest = args[3..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or_else(|| usage());
        match flag.as_str() {
            "--iterations" => iterations = value as usize,
            "--seed" => seed = value,
            "--duration-ms" => duration_ms = value,
            "--connections" => connections = value as usize,
            _ => usage(),
        }
    }
    let known = match role {
        "client" => client::run(
            attack,
            &client::Opts {
                socket,
                iterations,
                seed,
                duration_ms,
                connections,
            },
        ),
        "server" => server::run(attack, &server::Opts { socket, iterations, seed }),
        _ => usage(),
    };
    if !known {
        eprintln!("unknown {role} attack {attack:?}; `lapce_ai_adversary list` shows them all");
        std::process::exit(64);
    }
}
