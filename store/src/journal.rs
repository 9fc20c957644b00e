//! The inbound journal (`$HERMES_HOME/inbound.journal`): where a webhook's message is made
//! durable before it is acknowledged.
//!
//! Inserting a message into SQLite costs three b-trees and a commit's page writes, on the
//! thread that answers the webhook. Appending it here costs one `write` for every webhook that
//! arrived meanwhile; an importer then moves the records into the database, deduplicated there,
//! on a thread of its own. An appended record survives the process being killed as a commit
//! does at `synchronous = NORMAL`: once `write` returns it is in the kernel's page cache, and
//! only a power loss can take it back.
//!
//! The file is a header ([`MAGIC`], then the generation as a little-endian `u64`) followed by
//! records: the payload's length (`u32`), its CRC-32 (`u32`), the payload. A record cut short by a
//! crash during an append was never acknowledged, and is dropped when the journal is opened.
//! Once every record is imported the file starts over with the next generation, so that the
//! [`Position`] the database keeps (generation, offset) always says what was imported.
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use platform_api::{Attachment, Control, Inbound};

/// The first bytes of a journal.
pub const MAGIC: &[u8; 8] = b"HRMSJNL1";

/// Bytes before the first record: the magic and the generation.
pub const HEADER: u64 = 16;

/// Most bytes [`Journal::read`] reads at once; more than a record can take.
const READ_AT_ONCE: u64 = 4 << 20;

/// Bytes before a record's payload: its length and its checksum.
const RECORD_HEADER: usize = 8;

/// A record longer than this is taken for a damaged length (a webhook body is at most 64 KiB).
const MAX_RECORD: usize = 1 << 20;

/// How far the importer has got: everything before `offset` in journal `generation` is in the
/// database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub generation: u64,
    pub offset: u64,
}

/// Journal failures, each naming the file.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{0} is locked by another process: is another gateway running with this HERMES_HOME?")]
    Locked(PathBuf),
    #[error("{0} is not an inbound journal (it does not start with the journal header)")]
    NotAJournal(PathBuf),
    #[error("{path}: damaged record at byte {offset}")]
    Damaged { path: PathBuf, offset: u64 },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// What opening found.
#[derive(Debug)]
pub struct Opened {
    pub journal: Journal,
    /// Where importing starts.
    pub start: Position,
    /// Records from `start` on: in the journal, not yet imported.
    pub unimported: u64,
    /// Bytes of an append cut short by a crash, dropped (never acknowledged).
    pub dropped: u64,
}

/// An open journal: appended to by the webhook handlers, read by the importer.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    writer: Mutex<Writer>,
    /// Where complete records end: the importer reads up to here.
    written: AtomicU64,
    /// A second handle for reading without the writer's lock (replaced when the file starts
    /// over).
    reader: Mutex<File>,
}

#[derive(Debug)]
struct Writer {
    file: File,
    len: u64,
    generation: u64,
    /// Encoding buffer, kept between appends.
    buf: Vec<u8>,
}

impl Journal {
    /// Opens (or creates) the journal at `path` for the one gateway using it; `imported` is the
    /// position the database keeps. A record cut short at the end is dropped.
    pub fn open(path: &Path, imported: Position) -> Result<Opened, JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(JournalError::Locked(path.to_path_buf()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut len = file.metadata().map_err(io)?.len();
        let start = if len == 0 {
            let generation = imported.generation + 1;
            (&file).write_all(&header(generation)).map_err(io)?;
            len = HEADER;
            Position {
                generation,
                offset: HEADER,
            }
        } else {
            start(&file, len, imported).ok_or_else(|| JournalError::NotAJournal(path.into()))?
        };
        let (end, unimported) = valid_end(&file, start.offset, len).map_err(io)?;
        if end < len {
            // A torn last record is the usual reason, but not the only one: the bytes are kept
            // beside the journal for the operator rather than destroyed.
            let mut tail = vec![0u8; (len - end) as usize];
            file.read_exact_at(&mut tail, end).map_err(io)?;
            let kept = dropped_path(path);
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&kept)
                .and_then(|mut f| f.write_all(&tail))
                .map_err(|source| JournalError::Io { path: kept, source })?;
            file.set_len(end).map_err(io)?;
        }
        let reader = File::open(path).map_err(io)?;
        Ok(Opened {
            journal: Journal {
                path: path.to_path_buf(),
                writer: Mutex::new(Writer {
                    file,
                    len: end,
                    generation: start.generation,
                    buf: Vec::new(),
                }),
                written: AtomicU64::new(end),
                reader: Mutex::new(reader),
            },
            start,
            unimported,
            dropped: len - end,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `batch` with one write; the messages are durable once this returns. On failure
    /// nothing of the batch stays in the file.
    pub fn append<'a>(&self, batch: impl IntoIterator<Item = &'a Inbound>) -> io::Result<()> {
        let mut writer = self.writer();
        let Writer { file, len, buf, .. } = &mut *writer;
        buf.clear();
        for inbound in batch {
            encode_record(buf, inbound);
        }
        if let Err(e) = file.write_all(buf) {
            // A partial record would hide every later one from the importer.
            let _ = file.set_len(*len);
            return Err(e);
        }
        *len += buf.len() as u64;
        self.written.store(*len, Ordering::Release);
        // Appends are rare after a burst; a large buffer is not kept for them.
        if buf.capacity() > 1 << 20 {
            *buf = Vec::new();
        }
        Ok(())
    }

    /// Where complete records end.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// Up to `max` records from `offset` (a record boundary) on, and the offset after them.
    pub fn read(&self, offset: u64, max: usize) -> Result<(Vec<Inbound>, u64), JournalError> {
        let end = self.written();
        if offset >= end {
            return Ok((Vec::new(), offset));
        }
        // Records are small: a bounded read holds many, and the rest waits for the next call.
        let mut bytes = vec![0u8; (end - offset).min(READ_AT_ONCE) as usize];
        self.reader
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .read_exact_at(&mut bytes, offset)
            .map_err(|source| JournalError::Io {
                path: self.path.clone(),
                source,
            })?;
        let mut records = Vec::new();
        let mut at = 0;
        while records.len() < max && at < bytes.len() {
            let damaged = || JournalError::Damaged {
                path: self.path.clone(),
                offset: offset + at as u64,
            };
            match split_record(&bytes[at..]) {
                Record::Complete(payload, used) => {
                    records.push(decode(payload).ok_or_else(damaged)?);
                    at += used;
                }
                // Cut by the bounded read: the record is read whole next time.
                Record::Short if at > 0 => break,
                // Complete records end at `written`, and one fits in a read.
                Record::Short | Record::Damaged => return Err(damaged()),
            }
        }
        Ok((records, offset + at as u64))
    }

    /// Starts the file over with the next generation once it holds more than `min_len` bytes,
    /// carrying over the records from `imported` on (those not imported yet, usually few).
    /// Returns the new position, which the caller records.
    ///
    /// The new file is written beside the journal and renamed over it, so that a crash at any
    /// point leaves one whole journal: the old one (the database's position still matches it)
    /// or the new one (another generation: read from its start, which holds only records not
    /// imported).
    pub fn start_over(&self, imported: u64, min_len: u64) -> io::Result<Option<Position>> {
        let mut writer = self.writer();
        if writer.len <= min_len || imported > writer.len {
            return Ok(None);
        }
        let generation = writer.generation + 1;
        let mut carried = vec![0u8; (writer.len - imported) as usize];
        writer.file.read_exact_at(&mut carried, imported)?;
        let mut next = self.path.as_os_str().to_owned();
        next.push(".next");
        let next = PathBuf::from(next);
        // A leftover of a crash during an earlier start-over is not a journal yet.
        match std::fs::remove_file(&next) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(&next)?;
        file.try_lock().map_err(io::Error::other)?;
        file.write_all(&header(generation))?;
        file.write_all(&carried)?;
        // The handle (and its lock) goes on with the file under its new name.
        std::fs::rename(&next, &self.path)?;
        *self.reader.lock().unwrap_or_else(|p| p.into_inner()) = File::open(&self.path)?;
        writer.file = file;
        writer.len = HEADER + carried.len() as u64;
        writer.generation = generation;
        self.written.store(writer.len, Ordering::Release);
        Ok(Some(Position {
            generation,
            offset: HEADER,
        }))
    }
}

/// Where importing a journal file of `len` bytes starts, given the database's position: there,
/// in the same generation; at the first record, in another. `None` when it is not a journal.
fn start(file: &File, len: u64, imported: Position) -> Option<Position> {
    let mut head = [0u8; HEADER as usize];
    if len < HEADER || file.read_exact_at(&mut head, 0).is_err() || &head[..8] != MAGIC {
        return None;
    }
    let generation = u64::from_le_bytes(head[8..].try_into().ok()?);
    let offset = if generation == imported.generation {
        imported.offset.clamp(HEADER, len)
    } else {
        HEADER
    };
    Some(Position { generation, offset })
}

/// How many complete records of the journal at `path` are not imported yet (`imported` is the
/// database's position), read without taking the journal from a gateway that may be running;
/// `None` when there is no journal.
pub fn count_unimported(path: &Path, imported: Position) -> Result<Option<u64>, JournalError> {
    let io = |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let len = file.metadata().map_err(io)?.len();
    let start =
        start(&file, len, imported).ok_or_else(|| JournalError::NotAJournal(path.into()))?;
    Ok(Some(valid_end(&file, start.offset, len).map_err(io)?.1))
}

/// Where bytes dropped from the end of the journal at `path` are kept.
pub fn dropped_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".dropped");
    PathBuf::from(name)
}

fn header(generation: u64) -> [u8; HEADER as usize] {
    let mut head = [0u8; HEADER as usize];
    head[..8].copy_from_slice(MAGIC);
    head[8..].copy_from_slice(&generation.to_le_bytes());
    head
}

/// Where the complete records from `offset` end, reading the file up to `len`, and how many
/// there are.
fn valid_end(file: &File, mut offset: u64, len: u64) -> io::Result<(u64, u64)> {
    let mut count = 0;
    let mut record = Vec::new();
    while offset + RECORD_HEADER as u64 <= len {
        // The header says how much to read; the record is then checked as a read checks it.
        record.resize(RECORD_HEADER, 0);
        file.read_exact_at(&mut record, offset)?;
        let (size, _) = record_header(&record);
        if size > MAX_RECORD || offset + (RECORD_HEADER + size) as u64 > len {
            break;
        }
        record.resize(RECORD_HEADER + size, 0);
        file.read_exact_at(&mut record[RECORD_HEADER..], offset + RECORD_HEADER as u64)?;
        match split_record(&record) {
            Record::Complete(payload, used) if decode(payload).is_some() => {
                offset += used as u64;
                count += 1;
            }
            _ => break,
        }
    }
    Ok((offset, count))
}

fn record_header(head: &[u8]) -> (usize, u32) {
    let word = |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    (word(0) as usize, word(4))
}

enum Record<'a> {
    /// A checked payload, and the bytes the record takes.
    Complete(&'a [u8], usize),
    /// The bytes end before the record does.
    Short,
    /// A length out of bounds or a checksum that does not match.
    Damaged,
}

fn split_record(bytes: &[u8]) -> Record<'_> {
    let Some(head) = bytes.get(..RECORD_HEADER) else {
        return Record::Short;
    };
    let (size, crc) = record_header(head);
    if size == 0 || size > MAX_RECORD {
        return Record::Damaged;
    }
    let Some(payload) = bytes.get(RECORD_HEADER..RECORD_HEADER + size) else {
        return Record::Short;
    };
    if crc32fast::hash(payload) != crc {
        return Record::Damaged;
    }
    Record::Complete(payload, RECORD_HEADER + size)
}

fn encode_record(buf: &mut Vec<u8>, inbound: &Inbound) {
    let start = buf.len();
    buf.extend_from_slice(&[0; RECORD_HEADER]);
    for field in [
        &inbound.platform,
        &inbound.provider_id,
        &inbound.chat,
        &inbound.sender,
        &inbound.text,
    ] {
        put_str(buf, field);
    }
    put_u32(buf, inbound.attachments.len());
    for attachment in &inbound.attachments {
        put_str(buf, &attachment.url);
        // 0: no type, 1: a type; 2: the optional type, name and size follow, each behind a
        // byte saying whether it is there (records written before names and sizes were kept
        // use 0 and 1, and still read).
        buf.push(2);
        put_opt_str(buf, attachment.content_type.as_deref());
        put_opt_str(buf, attachment.name.as_deref());
        match attachment.size {
            Some(size) => {
                buf.push(1);
                buf.extend_from_slice(&size.to_le_bytes());
            }
            None => buf.push(0),
        }
    }
    buf.push(match inbound.control {
        None => 0,
        Some(Control::OptOut) => 1,
        Some(Control::OptIn) => 2,
        Some(Control::Help) => 3,
    });
    let millis = inbound
        .received_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    buf.extend_from_slice(&millis.to_le_bytes());
    // The sender's name comes last, behind a byte saying whether it is there: records written
    // before names were kept end at the time, and still read.
    put_opt_str(buf, inbound.sender_name.as_deref());
    let payload = &buf[start + RECORD_HEADER..];
    let (size, crc) = (payload.len() as u32, crc32fast::hash(payload));
    buf[start..start + 4].copy_from_slice(&size.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn put_u32(buf: &mut Vec<u8>, n: usize) {
    buf.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_opt_str(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            buf.push(1);
            put_str(buf, s);
        }
        None => buf.push(0),
    }
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_u32(buf, s.len());
    buf.extend_from_slice(s.as_bytes());
}

/// Reads a payload back; `None` when it is not one [`encode_record`] wrote.
fn decode(payload: &[u8]) -> Option<Inbound> {
    let mut fields = Fields(payload);
    let platform = fields.string()?;
    let provider_id = fields.string()?;
    let chat = fields.string()?;
    let sender = fields.string()?;
    let text = fields.string()?;
    let count = fields.u32()?;
    let mut attachments = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let url = fields.string()?;
        let mut attachment = Attachment::new(url, None);
        match fields.byte()? {
            0 => {}
            1 => attachment.content_type = Some(fields.string()?),
            2 => {
                attachment.content_type = fields.opt_string()?;
                attachment.name = fields.opt_string()?;
                attachment.size = match fields.byte()? {
                    0 => None,
                    1 => Some(u64::from_le_bytes(fields.take(8)?.try_into().ok()?)),
                    _ => return None,
                };
            }
            _ => return None,
        }
        attachments.push(attachment);
    }
    let control = match fields.byte()? {
        0 => None,
        1 => Some(Control::OptOut),
        2 => Some(Control::OptIn),
        3 => Some(Control::Help),
        _ => return None,
    };
    let millis = u64::from_le_bytes(fields.take(8)?.try_into().ok()?);
    let sender_name = if fields.0.is_empty() {
        None
    } else {
        fields.opt_string()?
    };
    if !fields.0.is_empty() {
        return None;
    }
    Some(Inbound {
        sender_name,
        platform,
        chat,
        sender,
        text,
        attachments,
        provider_id,
        received_at: UNIX_EPOCH + Duration::from_millis(millis),
        control,
    })
}

/// The payload not read yet.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u32(&mut self) -> Option<usize> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize)
    }

    fn string(&mut self) -> Option<String> {
        let len = self.u32()?;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }

    /// A string behind a byte saying whether it is there: `Some(None)` when it is not.
    fn opt_string(&mut self) -> Option<Option<String>> {
        match self.byte()? {
            0 => Some(None),
            1 => Some(Some(self.string()?)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    const FRESH: Position = Position {
        generation: 0,
        offset: 0,
    };

    fn inbound(id: &str) -> Inbound {
        Inbound {
            sender_name: None,
            platform: "sms".into(),
            chat: "+15550001111".into(),
            sender: "+15550001111".into(),
            text: format!("héllo “{id}” 🇵🇹"),
            attachments: vec![],
            provider_id: id.into(),
            received_at: SystemTime::now(),
            control: None,
        }
    }

    fn ids(records: &[Inbound]) -> Vec<&str> {
        records.iter().map(|r| r.provider_id.as_str()).collect()
    }

    fn open(path: &Path, imported: Position) -> Opened {
        Journal::open(path, imported).expect("journal opens")
    }

    #[test]
    fn an_attachment_written_before_names_and_sizes_were_kept_still_reads() {
        let mut payload = Vec::new();
        for field in ["sms", "SM9", "+15550001111", "+15550001111", ""] {
            put_str(&mut payload, field);
        }
        put_u32(&mut payload, 2);
        put_str(&mut payload, "https://api.twilio.com/media/ME9");
        payload.push(1);
        put_str(&mut payload, "image/jpeg");
        put_str(&mut payload, "https://example.com/y");
        payload.push(0);
        payload.push(0);
        payload.extend_from_slice(&1_700_000_000_000u64.to_le_bytes());
        let read = decode(&payload).expect("an older record decodes");
        assert_eq!(read.sender_name, None);
        assert_eq!(
            read.attachments,
            [
                Attachment::new(
                    "https://api.twilio.com/media/ME9",
                    Some("image/jpeg".into())
                ),
                Attachment::new("https://example.com/y", None),
            ]
        );
    }

    #[test]
    fn records_read_back_as_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inbound.journal");
        let opened = open(&path, FRESH);
        assert_eq!(
            opened.start,
            Position {
                generation: 1,
                offset: HEADER
            }
        );
        let journal = opened.journal;
        let mut picture = inbound("SM2");
        picture.text.clear();
        picture.attachments = vec![
            Attachment {
                name: Some("plan.png".into()),
                size: Some(123_456),
                ..Attachment::new("https://api.twilio.com/media/ME1", Some("image/png".into()))
            },
            Attachment::new("https://example.com/x", None),
        ];
        let mut stop = inbound("SM3");
        stop.control = Some(Control::OptOut);
        stop.sender_name = Some("Ada Lovelace".into());
        let batch = [inbound("SM1"), picture, stop];
        journal.append(&batch).unwrap();
        journal.append([&inbound("SM4")]).unwrap();
        let (records, end) = journal.read(HEADER, 100).unwrap();
        assert_eq!(end, journal.written());
        assert_eq!(end, std::fs::metadata(&path).unwrap().len());
        assert_eq!(ids(&records), ["SM1", "SM2", "SM3", "SM4"]);
        for (read, written) in records.iter().zip(&batch) {
            let millis = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_millis();
            assert_eq!(millis(read.received_at), millis(written.received_at));
            let read = Inbound {
                received_at: written.received_at,
                ..read.clone()
            };
            assert_eq!(&read, written);
        }
        // A bounded read stops at a record boundary, and the next one goes on from there.
        let (first, next) = journal.read(HEADER, 2).unwrap();
        assert_eq!(ids(&first), ["SM1", "SM2"]);
        let (rest, _) = journal.read(next, 100).unwrap();
        assert_eq!(ids(&rest), ["SM3", "SM4"]);
        assert!(journal.read(end, 100).unwrap().0.is_empty());
    }

    #[test]
    fn a_write_cut_short_is_dropped_on_open_and_appends_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inbound.journal");
        let journal = open(&path, FRESH).journal;
        journal.append([&inbound("SM1"), &inbound("SM2")]).unwrap();
        let complete = journal.written();
        drop(journal);
        // Most of a third record, as a crash during the write leaves it.
        let mut buf = Vec::new();
        encode_record(&mut buf, &inbound("SM3"));
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&buf[..buf.len() - 5]).unwrap();
        drop(file);

        let opened = open(&path, FRESH);
        assert_eq!(opened.dropped, buf.len() as u64 - 5);
        assert_eq!(opened.unimported, 2);
        assert_eq!(
            std::fs::read(dropped_path(&path)).unwrap(),
            &buf[..buf.len() - 5],
            "the dropped bytes are kept"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), complete);
        let journal = opened.journal;
        journal.append([&inbound("SM4")]).unwrap();
        let (records, _) = journal.read(opened.start.offset, 100).unwrap();
        assert_eq!(ids(&records), ["SM1", "SM2", "SM4"]);
    }

    #[test]
    fn a_damaged_record_is_dropped_with_what_follows_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inbound.journal");
        let journal = open(&path, FRESH).journal;
        journal.append([&inbound("SM1")]).unwrap();
        let first = journal.written();
        journal.append([&inbound("SM2"), &inbound("SM3")]).unwrap();
        drop(journal);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(b"X", first + RECORD_HEADER as u64 + 6)
            .unwrap();
        drop(file);
        let opened = open(&path, FRESH);
        assert!(opened.dropped > 0);
        let (records, _) = opened.journal.read(HEADER, 100).unwrap();
        assert_eq!(ids(&records), ["SM1"]);
    }

    /// A fresh journal with SM1 and SM2 appended one at a time; its start, and where SM1 ends.
    fn two_records(path: &Path) -> (Journal, Position, u64) {
        let opened = open(path, FRESH);
        let journal = opened.journal;
        journal.append([&inbound("SM1")]).unwrap();
        let after_first = journal.written();
        journal.append([&inbound("SM2")]).unwrap();
        (journal, opened.start, after_first)
    }

    #[test]
    fn importing_resumes_where_the_database_says() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inbound.journal");
        let (journal, start, after_first) = two_records(&path);
        drop(journal);
        let imported = Position {
            offset: after_first,
            ..start
        };
        assert_eq!(count_unimported(&path, imported).unwrap(), Some(1));
        assert_eq!(count_unimported(&path, FRESH).unwrap(), Some(2));
        assert_eq!(
            count_unimported(&dir.path().join("none"), FRESH).unwrap(),
            None
        );
        let reopened = open(&path, imported);
        assert_eq!(reopened.start, imported);
        assert_eq!(reopened.unimported, 1);
        let (records, _) = reopened.journal.read(reopened.start.offset, 100).unwrap();
        assert_eq!(ids(&records), ["SM2"]);
        drop(reopened);
        // A position of another generation says nothing about this file: all of it is new.
        let stale = Position {
            generation: 7,
            offset: after_first,
        };
        assert_eq!(open(&path, stale).start.offset, HEADER);
    }

    #[test]
    fn a_grown_journal_starts_over_with_what_is_not_imported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inbound.journal");
        let (journal, start, after_first) = two_records(&path);
        let end = journal.written();
        assert_eq!(journal.start_over(after_first, end).unwrap(), None, "small");
        // A crash in an earlier start-over left its new file behind.
        std::fs::write(dir.path().join("inbound.journal.next"), b"half").unwrap();
        let restarted = journal.start_over(after_first, 0).unwrap().unwrap();
        assert_eq!(
            restarted,
            Position {
                generation: 2,
                offset: HEADER
            }
        );
        assert!(!dir.path().join("inbound.journal.next").exists());
        assert_eq!(journal.written(), HEADER + (end - after_first));
        journal.append([&inbound("SM3")]).unwrap();
        let (records, _) = journal.read(HEADER, 100).unwrap();
        assert_eq!(
            ids(&records),
            ["SM2", "SM3"],
            "SM1 was imported, SM2 not yet"
        );
        let locked = Journal::open(&path, FRESH).unwrap_err();
        assert!(matches!(locked, JournalError::Locked(_)), "{locked}");
        drop(journal);
        // A crash before the database learnt of the new generation: it still has the old
        // one's position, and reading starts at the new file's first record.
        let old = Position {
            offset: after_first,
            ..start
        };
        let reopened = open(&path, old);
        assert_eq!(reopened.start, restarted);
        assert_eq!(reopened.unimported, 2);
        let (records, _) = reopened.journal.read(HEADER, 100).unwrap();
        assert_eq!(ids(&records), ["SM2", "SM3"]);
    }

    #[test]
    fn one_gateway_at_a_time_and_only_on_a_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inbound.journal");
        let first = open(&path, FRESH);
        let second = Journal::open(&path, FRESH).unwrap_err();
        assert!(matches!(second, JournalError::Locked(_)), "{second}");
        assert!(second.to_string().contains("another gateway"), "{second}");
        drop(first);
        assert!(Journal::open(&path, FRESH).is_ok(), "unlocked when closed");

        let other = dir.path().join("notes.txt");
        std::fs::write(&other, "not a journal at all").unwrap();
        let err = Journal::open(&other, FRESH).unwrap_err();
        assert!(matches!(err, JournalError::NotAJournal(_)), "{err}");
    }
}
