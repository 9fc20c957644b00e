//! `Messages.json`: creating a message (with the scripted faults and Twilio's checks) and
//! reading the message list with Twilio's filters and paging.
use std::time::SystemTime;

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Value, json};

use super::{
    API_VERSION, Fault, MAX_BODY_CHARS, SentMessage, Shared, State, carrier, digits, error_message,
    is_e164, is_http_url, is_sid, param, random_sid, rfc2822, twilio_error, whatsapp,
};
use crate::segments;

/// `POST Messages.json`: scripted faults first, then Twilio's checks.
pub(super) async fn send(
    shared: &web::Data<Shared>,
    headers: &HeaderMap,
    params: Vec<(String, String)>,
) -> HttpResponse {
    let fault = shared.lock().faults.pop_front();
    match fault {
        None => create_message(shared, headers, &params, true),
        Some(Fault::AcceptThenHang) => {
            // The message is created (and will be sent); the answer never leaves.
            drop(create_message(shared, headers, &params, false));
            std::future::pending::<HttpResponse>().await
        }
        Some(Fault::Hang) => {
            shared.record(shared.attempt(&params));
            std::future::pending::<HttpResponse>().await
        }
        Some(Fault::Delay(delay)) => {
            let response = create_message(shared, headers, &params, true);
            actix_web::rt::time::sleep(delay).await;
            response
        }
        Some(fault) => {
            let to = param(&params, "To").unwrap_or_default();
            let (status, code, retry_after) = match fault {
                Fault::TooManyRequests { retry_after } => (429, 20429, retry_after),
                Fault::ServerError => (500, 20500, None),
                Fault::ServiceUnavailable => (503, 20503, None),
                Fault::Error { status, code } => (status, code, None),
                Fault::Hang | Fault::AcceptThenHang | Fault::Delay(_) => (500, 20500, None),
            };
            let mut response = twilio_error(status, Some(code), &error_message(code, to));
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
            }
            let mut attempt = shared.attempt(&params);
            attempt.status = Some(response.status().as_u16());
            attempt.code = Some(code);
            shared.record(attempt);
            response
        }
    }
}

/// A request rejected by Twilio's checks.
pub(super) struct Rejection {
    status: u16,
    code: Option<i64>,
    message: String,
}

impl Rejection {
    pub(super) fn bad_request(code: i64, message: String) -> Rejection {
        Rejection {
            status: 400,
            code: Some(code),
            message,
        }
    }
}

/// What a valid `Messages.json` request asks for.
struct Outgoing {
    to: String,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    body: String,
    media_urls: Vec<String>,
    status_callback: Option<String>,
    template: Option<whatsapp::Template>,
}

fn validate(
    shared: &Shared,
    state: &State,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<Outgoing, Rejection> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(Rejection {
            status: 415,
            code: None,
            message: "Unsupported Media Type: send application/x-www-form-urlencoded".to_string(),
        });
    }
    let non_empty = |name: &str| param(params, name).filter(|v| !v.is_empty());
    let Some(to) = non_empty("To") else {
        return Err(Rejection::bad_request(
            21604,
            "A 'To' phone number is required.".to_string(),
        ));
    };
    let from = non_empty("From");
    let messaging_service_sid = non_empty("MessagingServiceSid");
    if from.is_none() && messaging_service_sid.is_none() {
        return Err(Rejection::bad_request(
            21603,
            "A 'From' phone number is required.".to_string(),
        ));
    }
    let template = whatsapp::check(state, to, from, params)?;
    let channel = whatsapp::is_whatsapp(to);
    // A template send carries the template's text; its `Body`, if any, is ignored.
    let body = match &template {
        Some(template) => template.body.as_str(),
        None => param(params, "Body").unwrap_or_default(),
    };
    let media_urls: Vec<String> = params
        .iter()
        .filter(|(key, value)| key == "MediaUrl" && !value.is_empty())
        .map(|(_, value)| value.clone())
        .collect();
    if body.is_empty() && media_urls.is_empty() {
        return Err(Rejection::bad_request(
            21602,
            "Message body is required.".to_string(),
        ));
    }
    if !is_e164(whatsapp::address(to)) {
        return Err(Rejection::bad_request(21211, error_message(21211, to)));
    }
    if let Some(from) = from.filter(|from| !channel && *from != shared.phone_number) {
        return Err(Rejection::bad_request(
            21606,
            format!(
                "The From phone number {from} is not a valid, SMS-capable inbound phone number or short code for your account."
            ),
        ));
    }
    if let Some(sid) = messaging_service_sid.filter(|sid| !is_sid(sid, "MG")) {
        return Err(Rejection::bad_request(
            21701,
            format!("The Messaging Service Sid {sid} is invalid."),
        ));
    }
    if let Some(url) = media_urls.iter().find(|url| !is_http_url(url)) {
        return Err(Rejection::bad_request(
            21620,
            format!("Invalid media URL(s): {url}"),
        ));
    }
    if media_urls.len() > super::media::MAX_MEDIA {
        return Err(Rejection::bad_request(
            21623,
            "Number of media files exceeds allowed limit".to_string(),
        ));
    }
    let status_callback = param(params, "StatusCallback").filter(|v| !v.is_empty());
    if let Some(url) = status_callback.filter(|url| !is_http_url(url)) {
        return Err(Rejection::bad_request(
            21609,
            format!("The StatusCallback URL {url} is not a valid URL."),
        ));
    }
    if template.is_none() && body.chars().count() > MAX_BODY_CHARS {
        return Err(Rejection::bad_request(
            21617,
            "The concatenated message body exceeds the 1600 character limit.".to_string(),
        ));
    }
    if state.opted_out.contains(to) {
        return Err(Rejection::bad_request(21610, error_message(21610, to)));
    }
    Ok(Outgoing {
        to: to.to_string(),
        from: from.map(str::to_string),
        messaging_service_sid: messaging_service_sid.map(str::to_string),
        body: body.to_string(),
        media_urls,
        status_callback: status_callback.map(str::to_string),
        template,
    })
}

/// Twilio's normal processing of `POST Messages.json`; `answered` is false when the answer
/// will never leave ([`Fault::AcceptThenHang`]), and the attempt is recorded so.
fn create_message(
    shared: &web::Data<Shared>,
    headers: &HeaderMap,
    params: &[(String, String)],
    answered: bool,
) -> HttpResponse {
    let mut attempt = shared.attempt(params);
    let mut state = shared.lock();
    let outgoing = match validate(shared, &state, headers, params) {
        Ok(outgoing) => outgoing,
        Err(rejection) => {
            let response = twilio_error(rejection.status, rejection.code, &rejection.message);
            if answered {
                attempt.status = Some(response.status().as_u16());
                attempt.code = rejection.code;
            }
            state.attempts.push(attempt);
            return response;
        }
    };
    let (encoding, mut segments) = segments::segments(&outgoing.body);
    // An MMS, and any WhatsApp message, is billed and reported as one message whatever the
    // length of its text.
    if !outgoing.media_urls.is_empty() || whatsapp::is_whatsapp(&outgoing.to) {
        segments = 1;
    }
    let now = SystemTime::now();
    // Twilio answers "accepted" while a Messaging Service picks the sender, "queued" otherwise.
    let status = if outgoing.messaging_service_sid.is_some() && outgoing.from.is_none() {
        "accepted"
    } else {
        "queued"
    };
    let message = SentMessage {
        sid: random_sid("SM"),
        to: outgoing.to,
        from: outgoing.from,
        messaging_service_sid: outgoing.messaging_service_sid,
        body: outgoing.body,
        media_urls: outgoing.media_urls,
        segments,
        encoding: encoding.label().to_string(),
        status: status.to_string(),
        error_code: None,
        date_created: rfc2822(now),
        date_updated: rfc2822(now),
        date_sent: None,
        status_callback: outgoing.status_callback,
        content_sid: outgoing.template.as_ref().map(|t| t.sid.clone()),
        content_variables: outgoing.template.and_then(|t| t.variables),
        created: now,
        sent: None,
    };
    let json = message_json(shared, &message);
    if answered {
        attempt.status = Some(201);
    }
    attempt.sid = Some(message.sid.clone());
    state.attempts.push(attempt);
    let position = state.messages.len();
    state.index.insert(message.sid.clone(), position);
    state.messages.push(message.clone());
    let on_message = state.on_message.clone();
    carrier::accepted(shared, &mut state, &message);
    drop(state);
    if let Some(on_message) = on_message {
        on_message(&message);
    }
    HttpResponse::Created().json(json)
}

/// The message resource as Twilio returns it.
pub(super) fn message_json(shared: &Shared, message: &SentMessage) -> Value {
    let uri = format!("{}/Messages/{}", shared.account_uri(), message.sid);
    json!({
        "account_sid": shared.account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": message.date_created,
        "date_sent": message.date_sent,
        "date_updated": message.date_updated,
        "direction": "outbound-api",
        "error_code": message.error_code,
        "error_message": message.error_code.map(|code| error_message(code, &message.to)),
        "from": message.from,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": message.media_urls.len().to_string(),
        "num_segments": message.segments.to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": message.sid,
        "status": message.status,
        "subresource_uris": {
            "media": format!("{uri}/Media.json"),
            "feedback": format!("{uri}/Feedback.json"),
        },
        "to": message.to,
        "uri": format!("{uri}.json"),
    })
}

/// Twilio's largest page.
const MAX_PAGE_SIZE: usize = 1000;
/// The page size when none is asked for.
const DEFAULT_PAGE_SIZE: usize = 50;
/// The filters of the message list, carried from page to page.
const FILTERS: [&str; 5] = ["To", "From", "DateSent", "DateSent<", "DateSent>"];

/// A bound on `date_sent`: a whole day (`YYYY-MM-DD`) or an instant (`…THH:MM:SSZ`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum When {
    Day(NaiveDate),
    Instant(DateTime<Utc>),
}

impl When {
    fn parse(text: &str) -> Option<When> {
        let text = text.trim();
        if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return Some(When::Day(day));
        }
        if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
            return Some(When::Instant(instant.with_timezone(&Utc)));
        }
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
            .ok()
            .map(|naive| When::Instant(naive.and_utc()))
    }

    /// The first and last instants the bound names.
    fn range(self) -> (DateTime<Utc>, DateTime<Utc>) {
        match self {
            When::Instant(at) => (at, at),
            When::Day(day) => {
                let start = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
                (start, start + chrono::Duration::seconds(86_399))
            }
        }
    }
}

/// The list's query, checked.
struct ListQuery {
    filters: Vec<(String, String)>,
    to: Option<(String, String)>,
    from: Option<(String, String)>,
    on: Option<When>,
    before: Option<When>,
    after: Option<When>,
    page: usize,
    page_size: usize,
    offset: usize,
}

/// The list's query, or what is wrong with it.
fn list_query(query: &[(String, String)]) -> Result<ListQuery, String> {
    let invalid = |name: &str, value: &str| format!("Invalid {name}: {value:?}");
    let date = |name: &str| -> Result<Option<When>, String> {
        match param(query, name) {
            None => Ok(None),
            Some(value) => When::parse(value)
                .map(Some)
                .ok_or_else(|| invalid(name, value)),
        }
    };
    let page_size = match param(query, "PageSize") {
        None => DEFAULT_PAGE_SIZE,
        Some(value) => value
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| invalid("PageSize", value))?,
    };
    let page = match param(query, "Page") {
        None => 0,
        Some(value) => value.parse::<usize>().map_err(|_| invalid("Page", value))?,
    };
    // The token names where the page starts; without one, the page number does.
    let offset = match param(query, "PageToken") {
        None => page * page_size,
        Some(token) => token
            .strip_prefix("PA")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| invalid("PageToken", token))?,
    };
    let filters: Vec<(String, String)> = FILTERS
        .iter()
        .filter_map(|name| param(query, name).map(|v| (name.to_string(), v.to_string())))
        .collect();
    Ok(ListQuery {
        to: param(query, "To").map(address_key),
        from: param(query, "From").map(address_key),
        on: date("DateSent")?,
        before: date("DateSent<")?,
        after: date("DateSent>")?,
        filters,
        page,
        page_size,
        offset,
    })
}

impl ListQuery {
    fn matches(&self, message: &SentMessage) -> bool {
        if self
            .to
            .as_ref()
            .is_some_and(|to| *to != address_key(&message.to))
        {
            return false;
        }
        if self
            .from
            .as_ref()
            .is_some_and(|from| message.from.as_deref().map(address_key).as_ref() != Some(from))
        {
            return false;
        }
        if self.on.is_none() && self.before.is_none() && self.after.is_none() {
            return true;
        }
        // Date filters match on the send date: a message not sent yet has none.
        let Some(sent) = message.sent.map(DateTime::<Utc>::from) else {
            return false;
        };
        let sent = DateTime::from_timestamp(sent.timestamp(), 0).unwrap_or(sent);
        self.on.is_none_or(|on| {
            let (first, last) = on.range();
            first <= sent && sent <= last
        }) && self.before.is_none_or(|before| sent <= before.range().1)
            && self.after.is_none_or(|after| after.range().0 <= sent)
    }

    fn uri(&self, shared: &Shared, page: usize, offset: usize) -> String {
        let mut query = self.filters.clone();
        query.push(("PageSize".to_string(), self.page_size.to_string()));
        query.push(("Page".to_string(), page.to_string()));
        if page > 0 {
            query.push(("PageToken".to_string(), format!("PA{offset}")));
        }
        format!(
            "{}/Messages.json?{}",
            shared.account_uri(),
            serde_urlencoded::to_string(&query).unwrap_or_default()
        )
    }
}

/// What an address filter compares: the channel (`whatsapp` for `whatsapp:+…`, empty for a
/// phone number) and the digits, since a `+` sent unencoded arrives as a space.
fn address_key(address: &str) -> (String, String) {
    match address.split_once(':') {
        Some((channel, number)) => (channel.trim().to_ascii_lowercase(), digits(number)),
        None => (String::new(), digits(address)),
    }
}

/// `GET Messages.json`: the account's messages, newest first, filtered and paged as Twilio does.
pub(super) fn list(shared: &Shared, query: &str) -> HttpResponse {
    let query: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    shared.lock().list_queries.push(query.clone());
    let query = match list_query(&query) {
        Ok(query) => query,
        Err(why) => return twilio_error(400, Some(20001), &why),
    };
    let state = shared.lock();
    let mut matching: Vec<&SentMessage> = state
        .messages
        .iter()
        .rev()
        .filter(|message| query.matches(message))
        .collect();
    // Newest first; messages created in the same instant keep their reverse creation order.
    matching.sort_by_key(|message| std::cmp::Reverse(message.created));
    let page: Vec<Value> = matching
        .iter()
        .skip(query.offset)
        .take(query.page_size)
        .map(|message| message_json(shared, message))
        .collect();
    let end = query.offset + page.len();
    let next = (end < matching.len()).then(|| query.uri(shared, query.page + 1, end));
    let previous = (query.page > 0).then(|| {
        query.uri(
            shared,
            query.page - 1,
            query.offset.saturating_sub(query.page_size),
        )
    });
    let json = json!({
        "end": end.saturating_sub(1),
        "first_page_uri": query.uri(shared, 0, 0),
        "messages": page,
        "next_page_uri": next,
        "page": query.page,
        "page_size": query.page_size,
        "previous_page_uri": previous,
        "start": query.offset,
        "uri": query.uri(shared, query.page, query.offset),
    });
    drop(state);
    HttpResponse::Ok().json(json)
}
