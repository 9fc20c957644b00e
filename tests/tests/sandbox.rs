//! `hermes gateway --sandbox` on a pseudo-terminal: a typed line goes to the real gateway as a
//! signed webhook and comes back as an SMS reply with its encoding and billed segments, then
//! its delivery report.
use std::process::Command;
use std::time::Duration;

use expectrl::{Eof, Expect, Session};
use gateway_tests::harness::*;

#[test]
fn a_typed_line_comes_back_as_an_sms_with_its_segments() {
    let home = Home::new();
    let mut command: Command = command(home.path(), &[("TERM", "xterm")]);
    command.args(["gateway", "--sandbox"]);
    let mut session = Session::spawn(command).expect("spawning hermes on a pty");
    let _ = session.get_process_mut().set_window_size(200, 50);
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    session
        .expect("Type a message")
        .expect("the phone is ready");

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

    session.send("\x04").expect("Ctrl-D");
    session
        .expect("sandbox closed")
        .expect("closes on end of input");
    session.expect(Eof).expect("exits");
}
