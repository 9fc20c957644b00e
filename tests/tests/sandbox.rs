//! `hermes gateway --sandbox` on a pseudo-terminal: a typed line goes to the real gateway as a
//! signed webhook and comes back as an SMS reply with its encoding and billed segments, then
//! its delivery report. `/attach` sends a file the agent is told about, and a reply's file is
//! shown as the provider received it, on SMS (an MMS), WhatsApp, Telegram and Discord.
use expectrl::Expect;
use gateway_tests::harness::*;

#[test]
fn a_typed_line_comes_back_as_an_sms_with_its_segments() {
    let home = Home::new();
    let mut session = sandbox_session(&home, &[], &[]);

    session
        .send_line("Hello from the terminal")
        .expect("typing");
    session
        .expect("[part 1/1 · GSM-7 · 1 segment] You said: Hello from the terminal")
        .expect("the reply, billed as one GSM-7 segment");
    session
        .expect("✓ part 1/1 delivered")
        .expect("Twilio's delivery report, posted to the gateway's status route");
    session.send_line("/status").expect("typing");
    session
        .expect("Last reply: delivered.")
        .expect("the gateway recorded the delivery report");

    session
        .send_line("Curly “quotes” stay cheap, an emoji 🎉 does not")
        .expect("typing");
    session
        .expect("[part 1/1 · UCS-2 · 1 segment] You said: Curly \"quotes\" stay cheap, an emoji 🎉 does not")
        .expect("typographic quotes replaced, the emoji makes it UCS-2");

    let long = "word ".repeat(400);
    session.send_line(long.trim()).expect("typing");
    session
        .expect("[part 1/2 · GSM-7 · 11 segments]")
        .expect("a long reply in parts");
    session.expect("[part 2/2 · GSM-7").expect("second part");

    close_sandbox(&mut session);
}

/// `/attach` a PNG with a caption: the echo agent names the file it was given (`attached_as`:
/// how its name starts); then a reply
/// naming a file under the media directory: the file shows as the provider received it.
fn files_travel_both_ways(platform: &str, attached_as: &str, shown: &str) {
    let home = Home::new();
    let media = tempfile::tempdir().expect("a media directory");
    let picture = media.path().join("cat.png");
    std::fs::write(&picture, platform_telegram::emulator::png(64, 48)).expect("writing");
    let dirs = media.path().display().to_string();
    let mut session = sandbox_session(
        &home,
        &["--platform", platform],
        &[("HERMES_MEDIA_DIRS", dirs.as_str())],
    );

    session
        .send_line(format!("/attach {} look at him", picture.display()))
        .expect("typing");
    session
        .expect("→ [image: cat.png, image/png, ")
        .expect("the file sent, as the terminal shows it");
    session
        .expect("You said: look at him")
        .expect("the caption reaches the agent");
    session
        .expect(format!("[attachment: {attached_as}").as_str())
        .expect("the agent is told of the file it got");
    session
        .expect(".png, image/png, 35 bytes]")
        .expect("its type and size");

    session
        .send_line(format!("here MEDIA:{}", picture.display()))
        .expect("typing");
    session
        .expect(shown)
        .expect("the reply's text, as the platform sent it");
    session
        .expect("[image: cat.png, image/png, 35 bytes]")
        .expect("the reply's file, as the provider received it");

    close_sandbox(&mut session);
}

#[test]
fn sms_files_travel_both_ways_as_mms() {
    // Twilio gives a file no name: the gateway names it by its media SID.
    files_travel_both_ways("sms", "ME", "[part 1/1 · MMS] You said: here");
}

#[test]
fn whatsapp_files_travel_both_ways() {
    // Twilio names no file on WhatsApp either.
    files_travel_both_ways("whatsapp", "ME", "[part 1/1] You said: here");
}

#[test]
fn a_whatsapp_conversation_in_the_sandbox_is_read_and_its_window_open() {
    let home = Home::new();
    let mut session = sandbox_session(&home, &["--platform", "whatsapp"], &[]);
    session.send_line("**Hello** there").expect("typing");
    session
        .expect("[part 1/1] You said: *Hello* there")
        .expect("the reply in WhatsApp's markup");
    session
        .expect("✓ part 1/1 read")
        .expect("WhatsApp's read receipt, posted to the gateway's status route");
    session.send_line("/status").expect("typing");
    session
        .expect("Last reply: read. Reply window: open for")
        .expect("the read receipt recorded, the 24-hour window open");
    close_sandbox(&mut session);
}

#[test]
fn telegram_files_travel_both_ways() {
    files_travel_both_ways("telegram", "cat", "[part 1/1] You said: here");
}

#[test]
fn discord_files_travel_both_ways() {
    files_travel_both_ways("discord", "cat", "[part 1/1] You said: here");
}
