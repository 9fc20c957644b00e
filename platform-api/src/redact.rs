//! URLs made fit for logs and errors: the credentials a URL may carry are replaced by `***`.
//!
//! Every URL the gateway logs or puts in an error goes through [`redact_url`] (or
//! [`redact_database_url`] for `HERMES_DATABASE_URL`): a webhook URL behind HTTP Basic auth
//! (`https://user:password@bot.example.com/…`, which Twilio supports) or an API base URL with a
//! token in its user info must not leak through a warning, `hermes gateway doctor` or `Debug`.

/// A URL with the password of its user info replaced by `***` (a lone user info, which may be
/// a token, is replaced whole), and so are the values of `password=` query parameters; fit for
/// logs and errors. A value without `scheme://` is read as starting with its authority, so that
/// a malformed one (`user:password@host/path`) is redacted too.
pub fn redact_url(url: &str) -> String {
    redact(url, Userinfo::HideLoneUser)
}

/// A PostgreSQL connection URL with its password replaced by `***`, fit for logs and errors;
/// its user name is kept (a lone user name is not a secret there). Anything that is not a URL
/// is shown as `***`.
pub fn redact_database_url(url: &str) -> String {
    if !url.contains("://") {
        return "***".to_string();
    }
    redact(url, Userinfo::KeepUser)
}

/// What to do with user info that has no `:password` part.
#[derive(Clone, Copy)]
enum Userinfo {
    /// `https://TOKEN@host`: the lone part is as good as a password.
    HideLoneUser,
    /// `postgres://hermes@db`: the lone part is a user name.
    KeepUser,
}

fn redact(url: &str, lone: Userinfo) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let (head, rest) = url.split_at(start);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let shown = match (userinfo.split_once(':'), lone) {
                (Some((user, _)), _) => format!("{user}:***"),
                (None, Userinfo::KeepUser) => format!("{userinfo}:***"),
                (None, Userinfo::HideLoneUser) => "***".to_string(),
            };
            format!("{shown}@{host}")
        }
        None => authority.to_string(),
    };
    format!("{head}{authority}{}", redact_query_passwords(tail))
}

/// `tail` (a URL's path, query and fragment) with the value of every `password=` query
/// parameter replaced by `***`.
fn redact_query_passwords(tail: &str) -> String {
    let (before_fragment, fragment) = match tail.find('#') {
        Some(i) => tail.split_at(i),
        None => (tail, ""),
    };
    let Some((path, query)) = before_fragment.split_once('?') else {
        return tail.to_string();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}{fragment}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_is_redacted_wherever_a_url_is_shown() {
        let cases = [
            (
                "https://hermes:s3cret@bot.example.com/webhooks/twilio",
                "https://hermes:***@bot.example.com/webhooks/twilio",
            ),
            (
                "https://hermes:s3cret@bot.example.com:443/webhooks/twilio#rc=3&rp=ct,rt,5xx",
                "https://hermes:***@bot.example.com:443/webhooks/twilio#rc=3&rp=ct,rt,5xx",
            ),
            // A lone user info is how many services take a token.
            (
                "https://t0k3n@api.example.com/v1",
                "https://***@api.example.com/v1",
            ),
            // An `@` in an unencoded password does not end the user info early.
            ("http://u:p@ss@h:8080?x=1", "http://u:***@h:8080?x=1"),
            (
                "wss://u:p@gateway.discord.gg/?v=10",
                "wss://u:***@gateway.discord.gg/?v=10",
            ),
            // Not a valid URL, yet still redacted: check_url shows such values in its error.
            (
                "user:s3cret@bot.example.com/x",
                "user:***@bot.example.com/x",
            ),
            ("ftp://u:s3cret@h", "ftp://u:***@h"),
            // Nothing to hide: shown as written, an `@` in the path or query included.
            (
                "https://bot.example.com/webhooks/twilio",
                "https://bot.example.com/webhooks/twilio",
            ),
            (
                "https://medium.com/@user?q=a@b",
                "https://medium.com/@user?q=a@b",
            ),
            (
                "https://h/x?password=s3cret&a=1#f",
                "https://h/x?password=***&a=1#f",
            ),
            ("", ""),
            ("not a url", "not a url"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
            assert!(!redact_url(url).contains("s3cret") && !redact_url(url).contains("t0k3n"));
        }
    }

    #[test]
    fn database_urls_keep_the_user_name_and_hide_the_password() {
        let cases = [
            (
                "postgres://hermes:s3cret@db:5432/hermes?sslmode=disable",
                "postgres://hermes:***@db:5432/hermes?sslmode=disable",
            ),
            (
                "postgresql://db/hermes?user=h&password=s3cret",
                "postgresql://db/hermes?user=h&password=***",
            ),
            (
                "postgres://hermes@db/hermes",
                "postgres://hermes:***@db/hermes",
            ),
            ("postgres://db", "postgres://db"),
            ("s3cret", "***"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_database_url(url), shown, "{url}");
        }
    }
}
