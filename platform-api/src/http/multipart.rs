//! `multipart/form-data` bodies (RFC 7578) for uploads: Telegram's `sendPhoto` and kin,
//! Discord's `files[n]` with `payload_json`, a transcription server's `file`.
//!
//! A form is encoded whole, once, into one buffer: awc then sends it with a `Content-Length`,
//! which every server takes (a chunked upload is refused or mishandled by some transcription
//! servers, and a length lets a service refuse an oversized file before reading it), and each
//! file's bytes are copied once. The files a gateway sends are already in memory, so
//! streaming them would save nothing.
use std::borrow::Cow;

use actix_web::web::Bytes;

/// The type of a file whose own type is empty.
const OCTET_STREAM: &str = "application/octet-stream";

/// A form being put together: text fields and files, sent in the order they were added.
#[derive(Clone, Debug, Default)]
pub struct Form<'a> {
    parts: Vec<Part<'a>>,
}

/// One field of a [`Form`].
#[derive(Clone, Debug)]
struct Part<'a> {
    name: Cow<'a, str>,
    /// The file name and MIME type, for a file.
    file: Option<(Cow<'a, str>, Cow<'a, str>)>,
    value: Cow<'a, [u8]>,
}

/// An encoded form: the body and the `Content-Type` that names its boundary.
#[derive(Clone, Debug)]
pub struct FormBody {
    /// `multipart/form-data; boundary=…`.
    pub content_type: String,
    /// The whole body; its length is the request's `Content-Length`.
    pub body: Bytes,
}

impl<'a> Form<'a> {
    /// An empty form.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the text field `name` = `value`.
    pub fn text(
        &mut self,
        name: impl Into<Cow<'a, str>>,
        value: impl Into<Cow<'a, str>>,
    ) -> &mut Self {
        let value = match value.into() {
            Cow::Borrowed(value) => Cow::Borrowed(value.as_bytes()),
            Cow::Owned(value) => Cow::Owned(value.into_bytes()),
        };
        self.parts.push(Part {
            name: name.into(),
            file: None,
            value,
        });
        self
    }

    /// Adds the file `bytes` as the field `name`, called `filename`, of MIME type
    /// `content_type` (`application/octet-stream` when empty).
    pub fn file(
        &mut self,
        name: impl Into<Cow<'a, str>>,
        filename: impl Into<Cow<'a, str>>,
        content_type: impl Into<Cow<'a, str>>,
        bytes: &'a [u8],
    ) -> &mut Self {
        self.parts.push(Part {
            name: name.into(),
            file: Some((filename.into(), content_type.into())),
            value: Cow::Borrowed(bytes),
        });
        self
    }

    /// The form as one body, with a random boundary that no field holds.
    pub fn encode(&self) -> FormBody {
        self.encode_with(|| format!("hermes-{:032x}", rand::random::<u128>()))
    }

    /// [`Form::encode`] with boundaries drawn from `boundary`: the first that appears in no
    /// field's value. A random one collides by a 2^-128 chance; checking makes it never.
    fn encode_with(&self, mut boundary: impl FnMut() -> String) -> FormBody {
        let boundary = loop {
            let candidate = boundary();
            let held = self
                .parts
                .iter()
                .any(|part| memchr::memmem::find(&part.value, candidate.as_bytes()).is_some());
            if !held {
                break candidate;
            }
        };
        FormBody {
            content_type: format!("multipart/form-data; boundary={boundary}"),
            body: Bytes::from(self.write(&boundary)),
        }
    }

    /// The body, delimited by `boundary`, in a buffer of exactly its length.
    fn write(&self, boundary: &str) -> Vec<u8> {
        let headers: Vec<String> = self
            .parts
            .iter()
            .map(|part| {
                let name = escaped(&part.name);
                match &part.file {
                    None => format!(
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                    ),
                    Some((filename, content_type)) => format!(
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                         filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
                        escaped(filename),
                        header_value(content_type),
                    ),
                }
            })
            .collect();
        let close = format!("--{boundary}--\r\n");
        let length = self
            .parts
            .iter()
            .zip(&headers)
            .map(|(part, header)| header.len() + part.value.len() + 2)
            .sum::<usize>()
            + close.len();
        let mut body = Vec::with_capacity(length);
        for (part, header) in self.parts.iter().zip(&headers) {
            body.extend_from_slice(header.as_bytes());
            body.extend_from_slice(&part.value);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(close.as_bytes());
        body
    }
}

/// A field name or file name inside its quotes: `"`, CR and LF percent-encoded, as browsers
/// encode them (the WHATWG multipart/form-data encoding that RFC 7578 section 2 points to), so
/// that no name can end its parameter or start a header of its own. Other characters,
/// UTF-8 included, are sent as they are (RFC 7578 section 4.2).
fn escaped(name: &str) -> Cow<'_, str> {
    if !name.contains(['"', '\r', '\n']) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        match c {
            '"' => out.push_str("%22"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A MIME type as a header value: control characters (line breaks above all) dropped, so
/// that it cannot start another header.
fn header_value(content_type: &str) -> Cow<'_, str> {
    let kept: String = content_type
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_string();
    if kept.is_empty() {
        Cow::Borrowed(OCTET_STREAM)
    } else if kept == content_type {
        Cow::Borrowed(content_type)
    } else {
        Cow::Owned(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(boundaries: &[&str]) -> impl FnMut() -> String {
        let mut left = boundaries
            .iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .into_iter();
        move || left.next().expect("a boundary left")
    }

    fn text(body: &FormBody) -> &str {
        std::str::from_utf8(&body.body).expect("UTF-8")
    }

    #[test]
    fn fields_and_files_are_encoded_in_order() {
        let mut form = Form::new();
        form.text("chat_id", "42")
            .text("caption", String::from("<b>Hi</b>"))
            .file("document", "report.pdf", "application/pdf", b"%PDF-1.7");
        let body = form.encode_with(fixed(&["B"]));
        assert_eq!(body.content_type, "multipart/form-data; boundary=B");
        assert_eq!(
            text(&body),
            "--B\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n42\r\n\
             --B\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\n<b>Hi</b>\r\n\
             --B\r\nContent-Disposition: form-data; name=\"document\"; filename=\"report.pdf\"\r\n\
             Content-Type: application/pdf\r\n\r\n%PDF-1.7\r\n--B--\r\n"
        );
    }

    #[test]
    fn the_capacity_reserved_is_the_length_sent() {
        let audio = vec![7u8; 10_000];
        let mut form = Form::new();
        form.text("model", "whisper-1")
            .file("file", "voice \"1\".ogg", "audio/ogg\r\n", &audio);
        let body = form.write("B");
        // Exactly what was reserved was written: the buffer never grew, the audio was copied once.
        assert_eq!(body.capacity(), body.len());
        assert_eq!(body.len(), form.encode_with(fixed(&["B"])).body.len());
        assert!(body.len() > audio.len());
    }

    #[test]
    fn names_cannot_break_out_of_their_quotes() {
        let cases = [
            ("report.pdf", "report.pdf"),
            ("a \"quoted\"\r\nname.pdf", "a %22quoted%22%0D%0Aname.pdf"),
            (
                "a\"b\r\nContent-Type: text/html.ogg",
                "a%22b%0D%0AContent-Type: text/html.ogg",
            ),
            ("Grüße 📎.txt", "Grüße 📎.txt"),
            ("100%.txt", "100%.txt"),
        ];
        for (name, sent) in cases {
            let mut form = Form::new();
            form.text(name, "v").file(name, name, "text/plain", b"x");
            let body = form.encode_with(fixed(&["B"]));
            assert!(
                text(&body).contains(&format!("name=\"{sent}\"\r\n\r\nv\r\n")),
                "{name:?}: {}",
                text(&body)
            );
            assert!(
                text(&body).contains(&format!("name=\"{sent}\"; filename=\"{sent}\"\r\n")),
                "{name:?}: {}",
                text(&body)
            );
        }
    }

    #[test]
    fn a_type_cannot_add_a_header_and_an_empty_one_is_octet_stream() {
        for (given, sent) in [
            ("audio/ogg", "audio/ogg"),
            ("audio/ogg\r\nX-Evil: 1", "audio/oggX-Evil: 1"),
            ("image/png\n", "image/png"),
            ("", OCTET_STREAM),
            ("\r\n", OCTET_STREAM),
        ] {
            let mut form = Form::new();
            form.file("file", "f", given, b"x");
            let body = form.encode_with(fixed(&["B"]));
            assert_eq!(
                text(&body),
                format!(
                    "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\
                     Content-Type: {sent}\r\n\r\nx\r\n--B--\r\n"
                ),
                "{given:?}"
            );
        }
    }

    #[test]
    fn a_boundary_held_by_a_field_is_never_used() {
        let file = b"--hermes-a\r\nnot a part\r\n--hermes-a--";
        let mut form = Form::new();
        form.text("note", "mentions hermes-b")
            .file("file", "f.txt", "text/plain", file);
        let body = form.encode_with(fixed(&["hermes-a", "hermes-b", "hermes-c"]));
        assert_eq!(body.content_type, "multipart/form-data; boundary=hermes-c");
        assert!(text(&body).ends_with("\r\n--hermes-c--\r\n"));
    }

    #[test]
    fn random_boundaries_differ_and_an_empty_form_is_only_its_close() {
        let form = Form::new();
        let (one, two) = (form.encode(), form.encode());
        assert_ne!(one.content_type, two.content_type);
        let boundary = one
            .content_type
            .strip_prefix("multipart/form-data; boundary=")
            .expect("a boundary");
        assert_eq!(boundary.len(), "hermes-".len() + 32);
        assert_eq!(text(&one), format!("--{boundary}--\r\n"));
    }
}
