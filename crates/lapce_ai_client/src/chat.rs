//! Typed API of the chat backend (`lapce-ai-ipc serve`): the `chat` stream and the `providers`
//! request, as serde types matching `src/ai/types.ts` and `src/backend.ts`. Event types this
//! crate does not know arrive as [`ChatEvent::Unknown`], never as an error.

use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::error::Result;
use crate::stream::{StreamOptions, TypedStream};
use crate::Payload;

/// Name of the streaming chat method.
pub const CHAT_METHOD: &str = "chat";
/// Name of the request listing the configured providers.
pub const PROVIDERS_METHOD: &str = "providers";

/// A part of a user message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ContentPart {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image, base64 without a `data:` prefix.
    Image {
        /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
        #[serde(rename = "mediaType")]
        media_type: String,
        /// Base64 data.
        data: String,
    },
}

/// A user message's content: plain text or parts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Text and image parts.
    Parts(Vec<ContentPart>),
}

/// A tool call of an earlier assistant turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call's id.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// Arguments as JSON text or as an object.
    pub arguments: serde_json::Value,
}

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum ChatMessage {
    /// A system instruction.
    System {
        /// The instruction.
        content: String,
    },
    /// What the user said.
    User {
        /// Text or parts.
        content: Content,
    },
    /// What the assistant said earlier.
    Assistant {
        /// The reply text.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        content: Option<String>,
        /// Tool calls it made.
        #[serde(rename = "toolCalls", skip_serializing_if = "Option::is_none", default)]
        tool_calls: Option<Vec<ToolCall>>,
    },
    /// A tool's result.
    Tool {
        /// The assistant's tool call this answers.
        #[serde(rename = "toolCallId")]
        tool_call_id: String,
        /// The tool's name.
        name: String,
        /// The result.
        content: String,
    },
}

impl ChatMessage {
    /// A user message of plain text.
    pub fn user(text: impl Into<String>) -> Self {
        ChatMessage::User {
            content: Content::Text(text.into()),
        }
    }

    /// An assistant message of plain text.
    pub fn assistant(text: impl Into<String>) -> Self {
        ChatMessage::Assistant {
            content: Some(text.into()),
            tool_calls: None,
        }
    }

    /// A system instruction.
    pub fn system(text: impl Into<String>) -> Self {
        ChatMessage::System { content: text.into() }
    }
}

/// A tool the model may call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Letters, digits, `_` and `-`, at most 64.
    pub name: String,
    /// What it does.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub description: Option<String>,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// Reasoning ("thinking") controls.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reasoning {
    /// `false` turns reasoning off where the provider allows it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub enabled: Option<bool>,
    /// `low`, `medium` or `high`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub effort: Option<String>,
    /// Token budget for thinking.
    #[serde(rename = "budgetTokens", skip_serializing_if = "Option::is_none", default)]
    pub budget_tokens: Option<u32>,
}

/// The argument of the `chat` stream. Unset fields are left out (the server's defaults apply).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// `provider/model`, a bare model id, a provider name, or `None` for the default.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub model: Option<String>,
    /// More models to try, in order, when the first fails before its first token.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub models: Option<Vec<String>>,
    /// The conversation (at least one message).
    pub messages: Vec<ChatMessage>,
    /// System prompt.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub system: Option<String>,
    /// 0..2.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub temperature: Option<f64>,
    /// Upper bound on output tokens.
    #[serde(rename = "maxTokens", skip_serializing_if = "Option::is_none", default)]
    pub max_tokens: Option<u32>,
    /// Tools the model may call.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tools: Option<Vec<Tool>>,
    /// `"auto"`, `"none"`, `"required"` or `{"name": ...}`.
    #[serde(rename = "toolChoice", skip_serializing_if = "Option::is_none", default)]
    pub tool_choice: Option<serde_json::Value>,
    /// Reasoning controls.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reasoning: Option<Reasoning>,
    /// Passed as-is to the provider under its key.
    #[serde(rename = "providerOptions", skip_serializing_if = "Option::is_none", default)]
    pub provider_options: Option<serde_json::Value>,
}

impl ChatRequest {
    /// A one-message request to the default (or the given) model.
    pub fn user(text: impl Into<String>) -> Self {
        ChatRequest {
            messages: vec![ChatMessage::user(text)],
            ..Default::default()
        }
    }
}

/// Token counts of a reply; counts the provider did not send are `None`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    #[serde(rename = "inputTokens", default)]
    pub input_tokens: Option<u64>,
    /// Reply tokens (reasoning included).
    #[serde(rename = "outputTokens", default)]
    pub output_tokens: Option<u64>,
    /// Reasoning tokens.
    #[serde(rename = "reasoningTokens", default)]
    pub reasoning_tokens: Option<u64>,
    /// Cached prompt tokens.
    #[serde(rename = "cachedInputTokens", default)]
    pub cached_input_tokens: Option<u64>,
}

/// When the first event and the first text arrived, ms from the answering try's start.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// First provider event of any kind.
    #[serde(rename = "firstEventMs", default)]
    pub first_event_ms: Option<f64>,
    /// First reply text.
    #[serde(rename = "firstTextMs", default)]
    pub first_text_ms: Option<f64>,
    /// Whole reply.
    #[serde(rename = "totalMs", default)]
    pub total_ms: Option<f64>,
}

/// A provider that failed before the one that answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailedAttempt {
    /// Provider name.
    pub provider: String,
    /// Model.
    #[serde(default)]
    pub model: String,
    /// Error code (UPPER_SNAKE).
    pub code: String,
    /// Error text.
    #[serde(default)]
    pub message: String,
}

/// One event of a `chat` stream.
#[derive(Clone, Debug, PartialEq)]
pub enum ChatEvent {
    /// First event of a successful chat: who answers.
    Start {
        /// Provider name.
        provider: String,
        /// Model.
        model: String,
        /// Providers that failed first.
        fallback_from: Vec<FailedAttempt>,
    },
    /// A piece of the reply text.
    Delta {
        /// The text.
        text: String,
    },
    /// A piece of the model's reasoning (not part of the reply).
    Reasoning {
        /// The text.
        text: String,
    },
    /// The model started a tool call.
    ToolCallStart {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
    },
    /// More of a tool call's arguments (JSON text).
    ToolCallDelta {
        /// Call id.
        id: String,
        /// The next piece of the arguments.
        arguments_delta: String,
    },
    /// A complete tool call.
    ToolCall {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
        /// Arguments as JSON text.
        arguments: String,
    },
    /// A keep-alive while nothing else shows (`waiting`, `working`, `retrying`).
    Progress {
        /// The state.
        state: String,
        /// Provider in use.
        provider: String,
        /// Ms since the chat started.
        elapsed_ms: f64,
        /// The whole event, for the optional fields (`attempt`, `code`, `delayMs`).
        raw: serde_json::Value,
    },
    /// Last event of a successful chat.
    Finish {
        /// `stop`, `length`, `content-filter`, `tool-calls`, `other`, or the provider's word.
        finish_reason: String,
        /// Token counts.
        usage: Usage,
        /// The provider's response id.
        response_id: Option<String>,
        /// Timing.
        timing: Option<Timing>,
    },
    /// An event type this crate does not know (newer servers may add some): the raw JSON.
    Unknown(serde_json::Value),
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum Known {
    #[serde(rename = "start")]
    Start {
        provider: String,
        model: String,
        #[serde(rename = "fallbackFrom", default)]
        fallback_from: Vec<FailedAttempt>,
    },
    #[serde(rename = "delta")]
    Delta { text: String },
    #[serde(rename = "reasoning")]
    Reasoning { text: String },
    #[serde(rename = "tool-call-start")]
    ToolCallStart { id: String, name: String },
    #[serde(rename = "tool-call-delta")]
    ToolCallDelta {
        id: String,
        #[serde(rename = "argumentsDelta")]
        arguments_delta: String,
    },
    #[serde(rename = "tool-call")]
    ToolCall { id: String, name: String, arguments: String },
    #[serde(rename = "progress")]
    Progress {
        state: String,
        #[serde(default)]
        provider: String,
        #[serde(rename = "elapsedMs", default)]
        elapsed_ms: f64,
    },
    #[serde(rename = "finish")]
    Finish {
        #[serde(rename = "finishReason")]
        finish_reason: String,
        #[serde(default)]
        usage: Usage,
        #[serde(rename = "responseId", default)]
        response_id: Option<String>,
        #[serde(default)]
        timing: Option<Timing>,
    },
}

impl<'de> Deserialize<'de> for ChatEvent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let raw = serde_json::Value::deserialize(d)?;
        // Unknown types, and known types with fields of an unexpected shape, stay readable raw.
        let Ok(known) = Known::deserialize(&raw) else {
            return Ok(ChatEvent::Unknown(raw));
        };
        Ok(match known {
            Known::Start {
                provider,
                model,
                fallback_from,
            } => ChatEvent::Start {
                provider,
                model,
                fallback_from,
            },
            Known::Delta { text } => ChatEvent::Delta { text },
            Known::Reasoning { text } => ChatEvent::Reasoning { text },
            Known::ToolCallStart { id, name } => ChatEvent::ToolCallStart { id, name },
            Known::ToolCallDelta { id, arguments_delta } => ChatEvent::ToolCallDelta { id, arguments_delta },
            Known::ToolCall { id, name, arguments } => ChatEvent::ToolCall { id, name, arguments },
            Known::Progress {
                state,
                provider,
                elapsed_ms,
            } => ChatEvent::Progress {
                state,
                provider,
                elapsed_ms,
                raw,
            },
            Known::Finish {
                finish_reason,
                usage,
                response_id,
                timing,
            } => ChatEvent::Finish {
                finish_reason,
                usage,
                response_id,
                timing,
            },
        })
    }
}

/// One configured provider, as `providers` reports it (never its key).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// Provider name.
    pub name: String,
    /// Provider kind (`openai`, `gemini`, `anthropic`, `ollama`, `echo`, ...).
    pub kind: String,
    /// Base URL, if configured.
    #[serde(rename = "baseURL", default)]
    pub base_url: Option<String>,
    /// Whether a key is set.
    #[serde(rename = "hasKey", default)]
    pub has_key: bool,
    /// Default model.
    #[serde(rename = "defaultModel", default)]
    pub default_model: Option<String>,
    /// Known models.
    #[serde(default)]
    pub models: Vec<String>,
    /// Whether it is the default provider.
    #[serde(rename = "isDefault", default)]
    pub is_default: bool,
    /// Position in the fallback chain.
    #[serde(rename = "fallbackIndex", default)]
    pub fallback_index: Option<u32>,
    /// Epoch ms a cooldown ends, if one runs.
    #[serde(rename = "cooldownUntil", default)]
    pub cooldown_until: Option<f64>,
    /// Why the cooldown runs.
    #[serde(rename = "cooldownCode", default)]
    pub cooldown_code: Option<String>,
}

/// The `providers` reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Providers {
    /// Provider used when a request names none.
    pub default: String,
    /// Fallback chain, in order.
    #[serde(default)]
    pub fallback: Vec<String>,
    /// Every configured provider.
    pub providers: Vec<ProviderInfo>,
    /// Cooldowns in force, as the server reports them (shape defined by the chat backend).
    #[serde(default)]
    pub cooldowns: Option<serde_json::Value>,
}

/// A `chat` stream of typed events.
pub type ChatStream = TypedStream<ChatEvent>;

impl Client {
    /// Starts a chat; iterate the events (or poll them from a UI thread).
    pub fn chat(&self, request: &ChatRequest) -> Result<ChatStream> {
        self.chat_with(request, StreamOptions::default())
    }

    /// Starts a chat with stream options (a readiness callback for a UI loop, a window).
    pub fn chat_with(&self, request: &ChatRequest, options: StreamOptions) -> Result<ChatStream> {
        Ok(TypedStream::new(self.stream_with(
            CHAT_METHOD,
            &Payload::json(request)?,
            options,
        )?))
    }

    /// The configured providers.
    pub fn providers(&self) -> Result<Providers> {
        self.request_json(PROVIDERS_METHOD, &())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_and_unknown_types_survive() {
        let e: ChatEvent = serde_json::from_str(r#"{"type":"delta","text":"hi"}"#).unwrap();
        assert_eq!(e, ChatEvent::Delta { text: "hi".into() });
        let e: ChatEvent = serde_json::from_str(r#"{"type":"finish","finishReason":"stop","usage":{"inputTokens":3}}"#).unwrap();
        assert!(
            matches!(e, ChatEvent::Finish { ref finish_reason, ref usage, .. } if finish_reason == "stop" && usage.input_tokens == Some(3))
        );
        let e: ChatEvent = serde_json::from_str(r#"{"type":"citation","url":"x"}"#).unwrap();
        assert!(matches!(e, ChatEvent::Unknown(v) if v["url"] == "x"));
    }

    #[test]
    fn requests_leave_unset_fields_out() {
        let r = ChatRequest::user("hello");
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"messages":[{"role":"user","content":"hello"}]}"#
        );
    }
}
