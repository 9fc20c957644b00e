//! Speech to text through an OpenAI-compatible server (`HERMES_STT_URL`): OpenAI itself,
//! speaches (faster-whisper), vLLM, LocalAI, whisper.cpp's server.
use std::time::Duration;

use anyhow::{Context, bail};
use platform_api::http::multipart::{Form, FormBody};
use serde_json::Value;

/// The model asked for when the operator names none (`HERMES_STT_MODEL`).
pub const DEFAULT_MODEL: &str = "whisper-1";

/// The longest answer read from the server.
const ANSWER_LIMIT: usize = 1024 * 1024;

/// `POST {url}/audio/transcriptions`: a voice note's words.
#[derive(Clone)]
pub struct Transcriber {
    /// The server's base URL, ending in `/v1`.
    url: String,
    /// The model to transcribe with.
    model: String,
    /// Sent as `Authorization: Bearer`, when set.
    api_key: Option<String>,
    /// How long one transcription may take.
    timeout: Duration,
}

impl std::fmt::Debug for Transcriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcriber")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Transcriber {
    /// A client of the server at `url` (ending in `/v1`) transcribing with `model`.
    pub fn new(url: &str, model: &str, api_key: Option<String>, timeout: Duration) -> Self {
        Transcriber {
            url: url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            api_key,
            timeout,
        }
    }

    /// The text spoken in `bytes`, an audio file called `name` of type `content_type`.
    ///
    /// Errors name the server's status and its own message (OpenAI's `error.message`), never
    /// the API key.
    pub async fn transcribe(
        &self,
        bytes: &[u8],
        name: &str,
        content_type: &str,
    ) -> anyhow::Result<String> {
        let FormBody { content_type, body } = Form::new()
            .text("model", self.model.as_str())
            .text("response_format", "json")
            .file("file", audio_name(name, content_type), content_type, bytes)
            .encode();
        let client = awc::Client::builder().timeout(self.timeout).finish();
        let mut req = client
            .post(format!("{}/audio/transcriptions", self.url))
            .insert_header(("Content-Type", content_type));
        if let Some(key) = &self.api_key {
            req = req.insert_header(("Authorization", format!("Bearer {key}")));
        }
        let mut response = req
            .send_body(body)
            .await
            .map_err(|e| anyhow::anyhow!("transcription server unreachable: {e}"))?;
        let status = response.status();
        let answer = response
            .body()
            .limit(ANSWER_LIMIT)
            .await
            .context("reading the transcription server's answer")?;
        if !status.is_success() {
            let said = server_message(&answer);
            let said = match &self.api_key {
                Some(key) if !key.is_empty() => said.replace(key.as_str(), "<key>"),
                _ => said,
            };
            bail!("transcription server answered {status}: {said}");
        }
        let value: Value = serde_json::from_slice(&answer)
            .context("the transcription server answered non-JSON")?;
        let text = value["text"]
            .as_str()
            .context("the transcription server's answer has no text")?;
        Ok(text.trim().to_string())
    }
}

/// What an error answer says: OpenAI's `error.message` (or a bare `error` or `detail`, as
/// other servers write it), else the start of the body.
fn server_message(answer: &[u8]) -> String {
    let value: Value = serde_json::from_slice(answer).unwrap_or(Value::Null);
    let said = [
        &value["error"]["message"],
        &value["error"],
        &value["detail"],
        &value["message"],
    ]
    .into_iter()
    .find_map(Value::as_str)
    .map(str::to_string)
    .unwrap_or_else(|| String::from_utf8_lossy(answer).into_owned());
    said.trim().chars().take(300).collect()
}

/// The extensions OpenAI transcribes, preferred among those of a type.
const TRANSCRIBED: [&str; 10] = [
    "flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm",
];

/// The file name sent: `name`, with an extension of `content_type` added when it has none
/// (one OpenAI transcribes, if the type has one), since OpenAI judges an upload's format by
/// its name's extension.
fn audio_name(name: &str, content_type: &str) -> String {
    let has_extension = std::path::Path::new(name).extension().is_some();
    let extensions = mime_guess::get_mime_extensions_str(content_type).unwrap_or_default();
    let extension = extensions
        .iter()
        .find(|e| TRANSCRIBED.contains(e))
        .or(extensions.first());
    match extension {
        Some(extension) if !has_extension => format!("{name}.{extension}"),
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use gateway_tests::fake_llm::{FakeLlm, MAX_AUDIO_BYTES, TranscriptionRequest};

    use super::*;

    const OGG: &[u8] = b"OggS\x00\x02 a voice note";
    const WAIT: Duration = Duration::from_secs(10);

    fn transcriber(llm: &FakeLlm, key: Option<&str>) -> Transcriber {
        Transcriber::new(
            &format!("{}/", llm.base_url()),
            DEFAULT_MODEL,
            key.map(str::to_string),
            WAIT,
        )
    }

    async fn failure(transcriber: &Transcriber, audio: &[u8], name: &str, kind: &str) -> String {
        match transcriber.transcribe(audio, name, kind).await {
            Ok(text) => panic!("transcribed as {text:?}"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[actix_rt::test]
    async fn a_voice_note_is_sent_as_a_form_and_its_transcript_returned() {
        let llm = FakeLlm::start();
        llm.set_transcript(OGG, " What time do you open tomorrow? ");
        let text = transcriber(&llm, None)
            .transcribe(OGG, "voice.ogg", "audio/ogg")
            .await
            .expect("transcribed");
        assert_eq!(text, "What time do you open tomorrow?");
        let custom = Transcriber::new(&llm.base_url(), "large-v3", None, WAIT);
        let text = custom
            .transcribe(b"RIFF audio", "memo", "audio/wav")
            .await
            .expect("transcribed");
        assert_eq!(text, "transcript of memo.wav (10 bytes)");
        let asked = llm.transcriptions();
        assert_eq!(
            asked[0],
            TranscriptionRequest {
                model: Some("whisper-1".into()),
                filename: Some("voice.ogg".into()),
                content_type: Some("audio/ogg".into()),
                size: OGG.len(),
                has_file: true,
                fields: [("response_format".to_string(), "json".to_string())].into(),
            }
        );
        assert_eq!(asked[1].model.as_deref(), Some("large-v3"));
    }

    #[actix_rt::test]
    async fn the_key_is_sent_as_a_bearer_token_and_a_refusal_is_reported() {
        let llm = FakeLlm::start();
        llm.require_key("sk-right");
        let text = transcriber(&llm, Some("sk-right"))
            .transcribe(OGG, "voice.ogg", "audio/ogg")
            .await
            .expect("transcribed with the key");
        assert_eq!(
            text,
            format!("transcript of voice.ogg ({} bytes)", OGG.len())
        );
        let said = failure(&transcriber(&llm, None), OGG, "voice.ogg", "audio/ogg").await;
        assert!(
            said.starts_with(
                "transcription server answered 401 Unauthorized: You didn't provide an API key."
            ),
            "{said}"
        );
        let said = failure(
            &transcriber(&llm, Some("sk-wrong")),
            OGG,
            "voice.ogg",
            "audio/ogg",
        )
        .await;
        assert_eq!(
            said,
            "transcription server answered 401 Unauthorized: Incorrect API key provided."
        );
    }

    #[actix_rt::test]
    async fn the_server_s_errors_say_its_status_and_message() {
        let llm = FakeLlm::start();
        let stt = transcriber(&llm, None);
        assert_eq!(
            failure(&stt, b"hello", "notes.txt", "text/plain").await,
            "transcription server answered 400 Bad Request: Invalid file format. Supported \
             formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm']"
        );
        let long = vec![0u8; MAX_AUDIO_BYTES + 1];
        let said = failure(&stt, &long, "long.ogg", "audio/ogg").await;
        assert!(
            said.starts_with(
                "transcription server answered 413 Payload Too Large: Maximum content size limit"
            ),
            "{said}"
        );
        llm.fail_next(1);
        assert_eq!(
            failure(&stt, OGG, "voice.ogg", "audio/ogg").await,
            "transcription server answered 500 Internal Server Error: The server had an error \
             while processing your request. Sorry about that!"
        );
        stt.transcribe(OGG, "voice.ogg", "audio/ogg")
            .await
            .expect("the next try is transcribed");
        llm.stop();
        let said = failure(&stt, OGG, "voice.ogg", "audio/ogg").await;
        assert!(
            said.starts_with("transcription server unreachable"),
            "{said}"
        );
    }

    #[actix_rt::test]
    async fn the_key_never_appears_in_an_error() {
        use actix_web::{HttpRequest, HttpResponse, web};

        // A server quoting the key it was given, as some proxies do.
        async fn quoting(req: HttpRequest) -> HttpResponse {
            let given = req
                .headers()
                .get("Authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .trim_start_matches("Bearer ")
                .to_string();
            HttpResponse::Unauthorized().json(serde_json::json!({
                "error": {"message": format!("Key {given} is not valid.")}
            }))
        }
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("binding");
        let server = platform_api::loopback::LoopbackServer::start("quoting", listener, |cfg| {
            cfg.default_service(web::to(quoting));
        })
        .expect("listening");
        let stt = Transcriber::new(
            &format!("http://{}/v1", server.addr()),
            DEFAULT_MODEL,
            Some("sk-secret-4242".into()),
            WAIT,
        );
        assert_eq!(
            failure(&stt, OGG, "voice.ogg", "audio/ogg").await,
            "transcription server answered 401 Unauthorized: Key <key> is not valid."
        );
        assert!(!format!("{stt:?}").contains("sk-secret-4242"));
    }

    #[test]
    fn an_audio_name_gets_the_extension_of_its_type_when_it_has_none() {
        for (name, content_type, sent) in [
            ("voice.oga", "audio/ogg", "voice.oga"),
            ("voice", "audio/ogg", "voice.oga"),
            ("voice", "audio/wav", "voice.wav"),
            ("recording", "audio/mpeg", "recording.mp3"),
            ("memo.m4a", "audio/mp4", "memo.m4a"),
            ("file", "application/x-unknown-kind", "file"),
        ] {
            assert_eq!(
                audio_name(name, content_type),
                sent,
                "{name} {content_type}"
            );
        }
    }

    #[test]
    fn a_server_s_error_message_is_taken_from_its_json() {
        for (answer, said) in [
            (
                r#"{"error":{"message":"Invalid file format.","type":"invalid_request_error"}}"#,
                "Invalid file format.",
            ),
            (r#"{"detail":"Model not found"}"#, "Model not found"),
            (r#"{"error":"model is required"}"#, "model is required"),
            ("upstream timed out\n", "upstream timed out"),
        ] {
            assert_eq!(server_message(answer.as_bytes()), said);
        }
    }
}
