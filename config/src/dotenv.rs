use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

/// Reads a `.env` file (`KEY=value`, quotes, `export`, comments) without touching the process
/// environment.
pub fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, dotenvy::Error> {
    let mut vars = BTreeMap::new();
    for item in dotenvy::from_path_iter(path)? {
        let (key, value) = item?;
        vars.insert(key, value);
    }
    Ok(vars)
}

fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-_.,:/@%".contains(c));
    if plain {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}

/// Sets variables in a `.env` file, keeping every other line and comment as it was.
///
/// The file is rewritten atomically (temporary file, then rename) with mode 0600, since it
/// holds secrets. An existing line for a key is replaced in place; new keys are appended.
pub fn set_env_vars(path: &Path, vars: &[(&str, &str)]) -> io::Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let mut done = vec![false; vars.len()];
    let mut out = String::with_capacity(existing.len() + 64);
    for line in existing.lines() {
        let body = line.trim_start();
        let body = body.strip_prefix("export ").unwrap_or(body);
        let key = body.split('=').next().unwrap_or("").trim();
        match vars.iter().position(|(k, _)| *k == key) {
            Some(i) if body.contains('=') && !body.starts_with('#') => {
                if !done[i] {
                    out.push_str(&format!("{}={}\n", vars[i].0, quote(vars[i].1)));
                    done[i] = true;
                }
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for (i, (key, value)) in vars.iter().enumerate() {
        if !done[i] {
            out.push_str(&format!("{key}={}\n", quote(value)));
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(out.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_given_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "# my settings\nOPENAI_API_KEY=sk-1\nexport SMS_HOME_CHANNEL=+15550000000\n\nOTHER='a b'\n").unwrap();
        set_env_vars(
            &path,
            &[
                ("SMS_HOME_CHANNEL", "+15551234567"),
                ("SMS_HOME_CHANNEL_NAME", "My phone"),
            ],
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "# my settings\nOPENAI_API_KEY=sk-1\nSMS_HOME_CHANNEL=+15551234567\n\nOTHER='a b'\nSMS_HOME_CHANNEL_NAME='My phone'\n"
        );
        let vars = read_env_file(&path).unwrap();
        assert_eq!(vars["SMS_HOME_CHANNEL_NAME"], "My phone");
        assert_eq!(vars["OTHER"], "a b");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
}
