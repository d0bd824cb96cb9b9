//! The typed chat API against the real CLI, `node dist/cli.js serve --default echo`.

mod common;

use common::Server;
use lapce_ai_client::chat::{ChatEvent, ChatMessage, ChatRequest};

#[test]
fn chat_streams_typed_events_from_the_echo_provider() {
    let server = Server::cli("chat");
    let client = server.connect();
    let mut req = ChatRequest::user("hello from rust");
    req.model = Some("echo/any".into());
    let events: Vec<ChatEvent> = client.chat(&req).unwrap().map(|e| e.unwrap()).collect();
    assert!(
        matches!(&events[0], ChatEvent::Start { provider, .. } if provider == "echo"),
        "{events:?}"
    );
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Delta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "[echo provider] You said: hello from rust");
    assert!(
        matches!(events.last().unwrap(), ChatEvent::Finish { finish_reason, .. } if finish_reason == "stop"),
        "{events:?}"
    );
}

#[test]
fn a_conversation_with_history_and_providers() {
    let server = Server::cli("chat-history");
    let client = server.connect();
    let req = ChatRequest {
        messages: vec![
            ChatMessage::system("be brief"),
            ChatMessage::user("first"),
            ChatMessage::assistant("ok"),
            ChatMessage::user("second"),
        ],
        max_tokens: Some(1000),
        ..Default::default()
    };
    let text: String = client
        .chat(&req)
        .unwrap()
        .filter_map(|e| match e.unwrap() {
            ChatEvent::Delta { text } => Some(text),
            _ => None,
        })
        .collect();
    assert!(text.ends_with("second"), "{text}");
    let p = client.providers().unwrap();
    assert_eq!(p.default, "echo");
    assert!(p.providers.iter().any(|x| x.name == "echo" && x.kind == "echo"), "{p:?}");
}

#[test]
fn an_invalid_chat_request_is_a_typed_error() {
    let server = Server::cli("chat-bad");
    let client = server.connect();
    let err = client.chat(&ChatRequest::default()).unwrap().next().unwrap().unwrap_err();
    assert_eq!(err.code(), "BAD_REQUEST", "{err:?}");
    assert!(err.to_string().contains("messages"), "{err}");
}
