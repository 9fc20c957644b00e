//! Files an agent's reply sends and voice notes it hears, as the host handles them:
//! [`resolve`] turns the files a reply names (`MEDIA:` paths, Markdown images) into bytes
//! within the operator's limits, and [`stt`] turns speech into text through an
//! OpenAI-compatible transcription server.
pub mod resolve;
pub mod stt;
