//! The media settings, read once at start-up.
use std::path::{Path, PathBuf};
use std::time::Duration;

use platform_api::ConfigSection;

use crate::settings;

/// Bytes in the megabyte of `HERMES_MEDIA_MAX_MB`.
const MB: u64 = 1_000_000;

/// Where a transcription server is (`HERMES_STT_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SttConfig {
    /// Base URL ending in `/v1`.
    pub url: String,
    /// The model it transcribes with.
    pub model: String,
    /// Its bearer key, if it wants one.
    pub api_key: Option<String>,
}

/// How files are fetched, kept, shown to the agent and sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaConfig {
    /// The largest file fetched or sent (`HERMES_MEDIA_MAX_MB`).
    pub max_bytes: u64,
    /// How long files are kept (`HERMES_MEDIA_RETENTION_DAYS`).
    pub retention: Duration,
    /// How long a reply file's public URL serves it (`HERMES_MEDIA_URL_TTL_SECS`).
    pub url_ttl: Duration,
    /// Directories a `MEDIA:` line may send files from (`HERMES_MEDIA_DIRS`).
    pub dirs: Vec<PathBuf>,
    /// Markdown images may come from private addresses (`HERMES_MEDIA_ALLOW_PRIVATE`).
    pub allow_private: bool,
    /// Images go to the agent as image parts (`HERMES_AGENT_VISION`).
    pub vision: bool,
    /// The public origin of the listener (`HERMES_PUBLIC_URL`), without a trailing slash.
    pub public_url: Option<String>,
    /// The transcription server, if any.
    pub stt: Option<SttConfig>,
    /// Where files are written for a backend that reads them from disk.
    pub cache_dir: PathBuf,
}

impl MediaConfig {
    /// The media settings of the host's `section`, for the home at `home`.
    pub fn from_section(section: &ConfigSection, home: &Path) -> anyhow::Result<MediaConfig> {
        let number = |setting: &platform_api::Setting, default: u64| -> anyhow::Result<u64> {
            Ok(section.number(setting.env)?.unwrap_or(default))
        };
        let mut dirs: Vec<PathBuf> = section
            .list(settings::MEDIA_DIRS.env)
            .into_iter()
            .map(|d| home.join(d))
            .collect();
        if dirs.is_empty() {
            dirs.push(home.join("media"));
        }
        let stt = section.url(settings::STT_URL.env)?.map(|url| SttConfig {
            url: url.trim_end_matches('/').to_string(),
            model: section
                .text(settings::STT_MODEL.env)
                .filter(|m| !m.is_empty())
                .unwrap_or(super::stt::DEFAULT_MODEL)
                .to_string(),
            api_key: section
                .text(settings::STT_API_KEY.env)
                .filter(|k| !k.is_empty())
                .map(str::to_string),
        });
        Ok(MediaConfig {
            max_bytes: number(&settings::MEDIA_MAX_MB, 20)?.max(1) * MB,
            retention: Duration::from_secs(number(&settings::MEDIA_RETENTION_DAYS, 7)? * 86_400),
            url_ttl: Duration::from_secs(number(&settings::MEDIA_URL_TTL_SECS, 86_400)?),
            dirs,
            allow_private: section
                .bool(settings::MEDIA_ALLOW_PRIVATE.env)?
                .unwrap_or(false),
            vision: section.bool(settings::AGENT_VISION.env)?.unwrap_or(false),
            public_url: section
                .url(settings::PUBLIC_URL.env)?
                .map(|u| u.trim_end_matches('/').to_string()),
            stt,
            cache_dir: home.join("cache").join("media"),
        })
    }

    /// The public URL of a reply file kept under `token`, for a platform whose own public
    /// origin is `platform_origin`: that origin first (SMS: `SMS_WEBHOOK_URL`'s), else
    /// `HERMES_PUBLIC_URL`.
    pub fn public_url(&self, platform_origin: Option<String>, token: &str) -> Option<String> {
        let origin = platform_origin.or_else(|| self.public_url.clone())?;
        Some(format!("{}/media/{token}", origin.trim_end_matches('/')))
    }
}
