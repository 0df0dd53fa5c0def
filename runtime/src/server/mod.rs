//! The agent server: the agent plane over stdio (LSP framing) and over the network (WebSocket and
//! HTTP). Both hand requests to one [`service::AgentService`], so the model is loaded once and
//! shared by every connection.

pub mod network;
pub mod service;
pub mod stdio;
#[cfg(test)]
mod test_agent;
