//! `hermes format`: the exact parts a platform would send, as operators preview cost and
//! platform authors check their formatter.
use gateway_tests::harness::*;
use serde_json::Value;

const REPLY: &str = "# Packing list\n\nHere’s what you’ll need — don’t forget the “essentials”…\n\n- **Passport** (check the expiry date)\n- Charger and *adapter*\n- Snacks\n\nBook the train at [the operator's site](https://trains.example.com/book?from=LIS&to=OPO).\n\n```\nhermes cron add --schedule '0 7 * * *' --prompt 'weather in Porto'\n```\n";

fn parts(stdin: &str, platform: &str) -> Vec<Value> {
    let home = Home::new();
    let out = run(
        home.path(),
        &[],
        &["format", "--platform", platform, "--json"],
        stdin,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .expect("JSON")
        .as_array()
        .expect("array")
        .clone()
}

#[test]
fn sms_parts_are_plain_gsm7_text_with_their_segments() {
    let parts = parts(REPLY, "sms");
    assert_eq!(parts.len(), 1);
    let body = parts[0]["body"].as_str().unwrap();
    assert_eq!(
        parts[0]["encoding"], "GSM-7",
        "typography was replaced: {body}"
    );
    assert!(parts[0]["segments"].as_u64().unwrap() >= 2);
    assert!(
        !body.contains("**") && !body.contains("# ") && !body.contains("```"),
        "{body}"
    );
    assert!(
        body.contains("- Passport (check the expiry date)"),
        "{body}"
    );
    assert!(
        body.contains("the operator's site (https://trains.example.com/book?from=LIS&to=OPO)"),
        "{body}"
    );
    assert!(
        body.contains("Here's what you'll need - don't forget the \"essentials\"..."),
        "{body}"
    );
}

#[test]
fn long_replies_are_split_within_limits_and_numbered() {
    let long = "A long answer keeps going with plenty of detail about everything. ".repeat(100);
    let parts = parts(&long, "sms");
    assert!(parts.len() >= 4);
    let n = parts.len();
    let mut words = 0;
    for (i, part) in parts.iter().enumerate() {
        let body = part["body"].as_str().unwrap();
        assert!(body.chars().count() <= 1600);
        assert!(body.ends_with(&format!(" ({}/{n})", i + 1)), "{body}");
        words += body.split_whitespace().count() - 1;
    }
    assert_eq!(
        words,
        long.split_whitespace().count(),
        "no word lost or cut"
    );
}

#[test]
fn an_emoji_makes_a_part_ucs2_and_the_text_preview_shows_the_bill() {
    let parts = parts("Great job 🎉", "sms");
    assert_eq!(parts[0]["encoding"], "UCS-2");
    assert_eq!(parts[0]["segments"], 1);
    let home = Home::new();
    let out = run(
        home.path(),
        &[],
        &["format", "--platform", "sms"],
        "Great job 🎉",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("UCS-2") && text.contains("1 segment(s) billed"),
        "{text}"
    );
}

#[test]
fn whatsapp_parts_use_its_markup_within_1600_characters() {
    let reply = parts(REPLY, "whatsapp");
    assert_eq!(reply.len(), 1);
    let body = reply[0]["body"].as_str().unwrap();
    assert!(body.starts_with("*Packing list*\n\n"), "{body}");
    assert!(
        body.contains("- *Passport* (check the expiry date)\n- Charger and _adapter_"),
        "{body}"
    );
    assert!(
        body.contains("the operator's site (https://trains.example.com/book?from=LIS&to=OPO)"),
        "{body}"
    );
    assert!(body.contains("```\nhermes cron add"), "{body}");
    let long = parts(&"word ".repeat(1000), "whatsapp");
    assert_eq!(long.len(), 4);
    for (i, part) in long.iter().enumerate() {
        let body = part["body"].as_str().unwrap();
        assert!(body.chars().count() <= 1600);
        assert!(body.ends_with(&format!("({}/4)", i + 1)), "{body}");
    }
}

#[test]
fn other_platforms_use_their_own_limits_and_unknown_ones_are_refused() {
    let long = "word ".repeat(1000);
    for (platform, limit) in [("discord", 2000), ("telegram", 4096)] {
        let parts = parts(&long, platform);
        assert!(
            parts
                .iter()
                .all(|p| p["body"].as_str().unwrap().chars().count() <= limit)
        );
        assert_eq!(parts.len(), long.len().div_ceil(limit));
    }
    let home = Home::new();
    let out = run(home.path(), &[], &["format", "--platform", "fax"], "hi");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown platform \"fax\""));
}

#[test]
fn a_media_line_makes_an_sms_an_mms_billed_as_one_message_with_its_file_named() {
    let home = Home::new();
    let media = home.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let chart = media.join("chart.png");
    std::fs::write(&chart, vec![0u8; 48_000]).unwrap();
    let clip = media.join("clip.mp4");
    std::fs::write(&clip, vec![0u8; 6_000_000]).unwrap();
    let reply = format!(
        "Here’s this week’s chart.\n\nMEDIA:{}\nMEDIA:{}\n",
        chart.display(),
        clip.display()
    );

    let parts = parts(&reply, "sms");
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert_eq!(parts[0]["encoding"], "MMS");
    assert_eq!(parts[0]["segments"], 1);
    let body = parts[0]["body"].as_str().unwrap();
    assert!(!body.contains("MEDIA:"), "{body}");
    assert!(
        body.starts_with("Here's this week's chart.")
            && body.contains("(clip.mp4 not sent: 6.0 MB, over the 5.0 MB a file that MMS allows)"),
        "{body}"
    );
    let files = parts[0]["media"].as_array().expect("files");
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0]["name"], "chart.png");
    assert_eq!(files[0]["content_type"], "image/png");
    assert_eq!(files[0]["size"], 48_000);

    let out = run(home.path(), &[], &["format", "--platform", "sms"], &reply);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for shown in [
        "--- part 1/1 · MMS · 1 message",
        "[file: chart.png, image/png, 48 KB]",
        "[not sent: clip.mp4: 6.0 MB, over the 5.0 MB a file that MMS allows]",
        "--- 1 part(s), 1 MMS billed",
    ] {
        assert!(text.contains(shown), "{shown:?} not in:\n{text}");
    }
    assert!(!text.contains("segment"), "{text}");
}
