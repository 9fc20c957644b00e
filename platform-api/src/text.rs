//! Text helpers shared by platforms: Markdown to plain text, and splitting into parts.
//!
//! [`markdown_to_plain`] renders agent Markdown for platforms that show text as it is (SMS);
//! [`render_markdown`] lays it out the same way for a platform that keeps styles (Telegram's
//! HTML), telling its [`Styler`] where styles, links and code open and close. [`split`] /
//! [`split_numbered`] cut text into parts within a platform's limit at the most natural places.
//! A platform whose parts cost differently depending on where they end (SMS segments) steers the
//! cut with [`split_numbered_with`] and its own chooser, which sees every candidate break in a
//! [`Window`], can look ahead with [`Window::greedy_after`], and can fall back on [`greedy`].
//!
//! ```
//! use platform_api::text::{markdown_to_plain, split_numbered};
//!
//! let plain = markdown_to_plain("**Done.** See [the docs](https://example.com/docs).");
//! assert_eq!(plain, "Done. See the docs (https://example.com/docs).");
//! let parts = split_numbered("One sentence here. Another one there.", 26);
//! assert_eq!(parts, ["One sentence here. (1/2)", "Another one there. (2/2)"]);
//! ```

use std::ops::Range;

use std::fmt::Write as _;

use pulldown_cmark::{CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd};
use unicode_segmentation::GraphemeCursor;

/// Renders Markdown as plain text: markup removed, structure kept as lines.
///
/// Emphasis, strikethrough and heading marks disappear; list items stay as `- item` or `1. item`
/// lines, nested lists indented by two spaces; code keeps its content without fences or
/// backticks; links become `text (url)` unless the text already is the URL; images become
/// `alt (url)`; quoted lines start with `> `; table cells are separated by ` | `; raw HTML is kept
/// as text; horizontal rules only separate blocks. Paragraphs are separated by one blank line,
/// trailing spaces are dropped and the result has no leading or trailing blank lines. Any input
/// is accepted.
pub fn markdown_to_plain(md: &str) -> String {
    render_markdown(md, Plain::default()).0
}

/// Lays `md` out as [`markdown_to_plain`] does, telling `styler` where its styles, links and code
/// open and close: the text, and the styler with whatever it recorded.
///
/// The same Markdown extensions as [`markdown_to_plain`] are parsed (tables, strikethrough).
///
/// ```
/// use platform_api::text::{MarkdownWriter, Style, Styler, render_markdown};
///
/// /// Records where bold text (a heading's or `**strong**`) starts.
/// #[derive(Default)]
/// struct BoldStarts(Vec<usize>, bool);
///
/// impl<'a> Styler<'a> for BoldStarts {
///     fn open(writer: &mut MarkdownWriter<'a, Self>, style: Style<'a>) {
///         writer.styler_mut().1 = matches!(style, Style::Heading | Style::Strong);
///     }
///     fn text_starts(&mut self, at: usize) {
///         if std::mem::take(&mut self.1) {
///             self.0.push(at);
///         }
///     }
/// }
///
/// let (text, bold) = render_markdown("# Plan\n\n- one **two**", BoldStarts::default());
/// assert_eq!(text, "Plan\n\n- one two");
/// assert_eq!(bold.0, [0, 12]);
/// ```
pub fn render_markdown<'a, S: Styler<'a>>(md: &'a str, styler: S) -> (String, S) {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let mut writer = MarkdownWriter::new(md.len(), styler);
    for event in Parser::new_ext(md, options) {
        writer.event(event);
    }
    writer.finish()
}

/// Deeper list nesting is indented as this level, so that lazy continuation lines of a deeply
/// nested item cannot multiply the size of the output.
const MAX_INDENT_LEVELS: usize = 8;

/// A style that Markdown gives the text inside it, as a [`MarkdownWriter`] tells its [`Styler`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Style<'a> {
    /// `*emphasis*`.
    Emphasis,
    /// `**strong**`.
    Strong,
    /// `~~strikethrough~~`.
    Strikethrough,
    /// A heading's text (its line is laid out as a paragraph).
    Heading,
    /// Inline `` `code` ``.
    Code,
    /// A code block, with the info string of its fence (empty for an indented block).
    CodeBlock(CowStr<'a>),
    /// A block quote (its lines start with the styler's [`Styler::QUOTE_PREFIX`]).
    Quote,
}

/// The inline part of a rendering by a [`MarkdownWriter`], which does the block layout (blocks
/// and blank lines, list markers and indentation, quote prefixes, table cells, footnote
/// references) and tells its styler where styles, links and code open and close.
///
/// Every hook does nothing by default, so a styler that needs nothing costs nothing: the writer
/// is generic over it. Hooks that write get the writer, whose [`MarkdownWriter::out`] is the text
/// so far; the styler itself is [`MarkdownWriter::styler_mut`].
pub trait Styler<'a>: Sized {
    /// What starts a bulleted list item's first line.
    const BULLET: &'static str = "- ";
    /// What starts a line in a block quote (once, however deep the quote).
    const QUOTE_PREFIX: &'static str = "> ";
    /// Whether a `\r` ending a line of text is dropped as the line is written.
    const TRIM_CR: bool = false;

    /// A style opens; what follows up to the matching [`Styler::close`] is inside it. The pending
    /// separator and line prefix are not written yet: they come with the next text (see
    /// [`Styler::text_starts`]).
    fn open(_writer: &mut MarkdownWriter<'a, Self>, _style: Style<'a>) {}

    /// The innermost style still open (from [`Styler::open`]) closes.
    fn close(_writer: &mut MarkdownWriter<'a, Self>) {}

    /// A link or an image to `url` opens; its text (or alt text) follows. The line before it is
    /// written already, so `writer.out().len()` is where its text starts.
    fn open_link(_writer: &mut MarkdownWriter<'a, Self>, _url: CowStr<'a>) {}

    /// The innermost link open (from [`Styler::open_link`]) closes.
    fn close_link(_writer: &mut MarkdownWriter<'a, Self>) {}

    /// Text is about to be written at byte `at` of the output, after any separator and line
    /// prefix.
    #[inline]
    fn text_starts(&mut self, _at: usize) {}

    /// The output was cut to `len` bytes (trailing whitespace of a line, or of the whole text
    /// at the end): positions past it are now `len`.
    #[inline]
    fn truncated(&mut self, _len: usize) {}

    /// The events have ended; anything still open can be closed (only malformed event streams
    /// leave anything).
    fn finish(_writer: &mut MarkdownWriter<'a, Self>) {}
}

/// [`markdown_to_plain`]'s styler: styles dropped, link targets shown as ` (url)`.
#[derive(Default)]
struct Plain<'a> {
    links: Vec<OpenLink<'a>>,
}

struct OpenLink<'a> {
    start: usize,
    url: CowStr<'a>,
}

impl<'a> Styler<'a> for Plain<'a> {
    fn open_link(writer: &mut MarkdownWriter<'a, Self>, url: CowStr<'a>) {
        let start = writer.out.len();
        writer.styler.links.push(OpenLink { start, url });
    }

    fn close_link(writer: &mut MarkdownWriter<'a, Self>) {
        let Some(link) = writer.styler.links.pop() else {
            return;
        };
        if link.url.is_empty() {
            return;
        }
        let label = writer.out[link.start..].trim();
        let url: &str = &link.url;
        let bare = url.strip_prefix("mailto:").unwrap_or(url);
        let (unlabelled, shows_url) = (label.is_empty(), label == url || label == bare);
        if unlabelled {
            writer.text(&link.url);
        } else if !shows_url {
            writer.text(" (");
            writer.text(&link.url);
            writer.text(")");
        }
    }

    #[inline]
    fn truncated(&mut self, len: usize) {
        for link in &mut self.links {
            link.start = link.start.min(len);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Separator {
    None,
    Line,
    Blank,
}

enum Container {
    Quote,
    List { next: Option<u64> },
}

/// The marker of the next list item's first line.
#[derive(Clone, Copy)]
enum Marker {
    Bullet,
    Number(u64),
}

/// Writes Markdown events as text laid out as [`markdown_to_plain`] lays it out, telling its
/// [`Styler`] where styles, links and code are. [`render_markdown`] drives one over a whole
/// Markdown text.
pub struct MarkdownWriter<'a, S> {
    out: String,
    pending: Separator,
    at_line_start: bool,
    containers: Vec<Container>,
    marker: Option<Marker>,
    cell: usize,
    styler: S,
    _events: std::marker::PhantomData<Event<'a>>,
}

impl<'a, S: Styler<'a>> MarkdownWriter<'a, S> {
    /// A writer with no text yet, room for `capacity` bytes, and its styler.
    pub fn new(capacity: usize, styler: S) -> Self {
        MarkdownWriter {
            out: String::with_capacity(capacity),
            pending: Separator::None,
            at_line_start: true,
            containers: Vec::new(),
            marker: None,
            cell: 0,
            styler,
            _events: std::marker::PhantomData,
        }
    }

    /// The text written so far.
    pub fn out(&self) -> &str {
        &self.out
    }

    /// The styler.
    pub fn styler(&self) -> &S {
        &self.styler
    }

    /// The styler, to change.
    pub fn styler_mut(&mut self) -> &mut S {
        &mut self.styler
    }

    /// Writes one Markdown event.
    pub fn event(&mut self, event: Event<'a>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Code(code) => {
                S::open(self, Style::Code);
                self.text(&code);
                S::close(self);
            }
            Event::Text(text)
            | Event::Html(text)
            | Event::InlineHtml(text)
            | Event::InlineMath(text)
            | Event::DisplayMath(text) => self.text(&text),
            Event::FootnoteReference(label) => {
                self.text("[");
                self.text(&label);
                self.text("]");
            }
            Event::SoftBreak | Event::HardBreak => self.newline(),
            Event::Rule => self.separate(Separator::Blank),
            Event::TaskListMarker(done) => self.text(if done { "[x] " } else { "[ ] " }),
        }
    }

    fn start(&mut self, tag: Tag<'a>) {
        match tag {
            Tag::Paragraph
            | Tag::HtmlBlock
            | Tag::Table(_)
            | Tag::FootnoteDefinition(_)
            | Tag::DefinitionList
            | Tag::MetadataBlock(_) => self.block(),
            Tag::Heading { .. } => {
                self.block();
                S::open(self, Style::Heading);
            }
            Tag::CodeBlock(kind) => {
                self.block();
                let info = match kind {
                    CodeBlockKind::Fenced(info) => info,
                    CodeBlockKind::Indented => CowStr::Borrowed(""),
                };
                S::open(self, Style::CodeBlock(info));
            }
            Tag::BlockQuote(_) => {
                self.block();
                self.containers.push(Container::Quote);
                S::open(self, Style::Quote);
            }
            Tag::List(first) => {
                self.block();
                self.containers.push(Container::List { next: first });
            }
            Tag::Item => {
                self.separate(Separator::Line);
                let marker = match self.containers.last_mut() {
                    Some(Container::List { next: Some(number) }) => {
                        let marker = Marker::Number(*number);
                        *number = number.saturating_add(1);
                        marker
                    }
                    _ => Marker::Bullet,
                };
                self.marker = Some(marker);
            }
            Tag::TableHead
            | Tag::TableRow
            | Tag::DefinitionListTitle
            | Tag::DefinitionListDefinition => {
                self.separate(Separator::Line);
                self.cell = 0;
            }
            Tag::TableCell => {
                if self.cell > 0 {
                    self.text(" | ");
                }
                self.cell += 1;
            }
            Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                self.flush();
                S::open_link(self, dest_url);
            }
            Tag::Emphasis => S::open(self, Style::Emphasis),
            Tag::Strong => S::open(self, Style::Strong),
            Tag::Strikethrough => S::open(self, Style::Strikethrough),
            Tag::Superscript | Tag::Subscript => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph
            | TagEnd::HtmlBlock
            | TagEnd::Table
            | TagEnd::FootnoteDefinition
            | TagEnd::DefinitionList
            | TagEnd::MetadataBlock(_) => self.end_block(),
            TagEnd::Heading(_) | TagEnd::CodeBlock => {
                S::close(self);
                self.end_block();
            }
            TagEnd::BlockQuote(_) => {
                S::close(self);
                self.containers.pop();
                self.end_block();
            }
            TagEnd::List(_) => {
                self.containers.pop();
                self.end_block();
            }
            TagEnd::Item => {
                self.marker = None;
                self.separate(Separator::Line);
            }
            TagEnd::TableHead
            | TagEnd::TableRow
            | TagEnd::DefinitionListTitle
            | TagEnd::DefinitionListDefinition => self.separate(Separator::Line),
            TagEnd::Link | TagEnd::Image => S::close_link(self),
            TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough => S::close(self),
            TagEnd::TableCell | TagEnd::Superscript | TagEnd::Subscript => {}
        }
    }

    /// Inside a list every block is one line of an item, so blocks there are not spaced out.
    fn block_separator(&self) -> Separator {
        if self
            .containers
            .iter()
            .any(|c| matches!(c, Container::List { .. }))
        {
            Separator::Line
        } else {
            Separator::Blank
        }
    }

    fn block(&mut self) {
        self.separate(self.block_separator());
    }

    fn end_block(&mut self) {
        self.separate(self.block_separator());
    }

    fn separate(&mut self, separator: Separator) {
        self.pending = self.pending.max(separator);
    }

    fn newline(&mut self) {
        self.flush();
        self.break_line();
        self.at_line_start = true;
    }

    /// Ends the current line. The text is tidied as it is written rather than copied again at
    /// the end: the line's trailing whitespace is dropped, and no break is written where it would
    /// start the text or make a run of more than one blank line.
    fn break_line(&mut self) {
        let kept = self
            .out
            .trim_end_matches(|c: char| c != '\n' && c.is_whitespace())
            .len();
        self.out.truncate(kept);
        self.styler.truncated(kept);
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    /// Writes the pending separator, and the line prefix when a line starts, before any text;
    /// then tells the styler where the text starts.
    #[inline]
    pub fn flush(&mut self) {
        if self.pending != Separator::None || self.at_line_start {
            self.start_line();
        }
        self.styler.text_starts(self.out.len());
    }

    fn start_line(&mut self) {
        if !self.out.is_empty() {
            match self.pending {
                Separator::None => {}
                Separator::Line => {
                    if !self.at_line_start {
                        self.break_line();
                    }
                }
                Separator::Blank => {
                    self.break_line();
                    self.break_line();
                }
            }
        }
        if self.pending != Separator::None {
            self.at_line_start = true;
            self.pending = Separator::None;
        }
        if self.at_line_start {
            self.at_line_start = false;
            self.write_prefix();
        }
    }

    fn write_prefix(&mut self) {
        let innermost_list = self
            .containers
            .iter()
            .rposition(|c| matches!(c, Container::List { .. }));
        let mut quoted = false;
        let mut levels = 0;
        for (index, container) in self.containers.iter().enumerate() {
            match container {
                Container::Quote => {
                    if !quoted {
                        self.out.push_str(S::QUOTE_PREFIX);
                        quoted = true;
                    }
                }
                Container::List { .. } => {
                    let marker = if Some(index) == innermost_list {
                        self.marker.take()
                    } else {
                        None
                    };
                    if let Some(marker) = marker {
                        match marker {
                            Marker::Bullet => self.out.push_str(S::BULLET),
                            Marker::Number(number) => {
                                let _ = write!(self.out, "{number}. ");
                            }
                        }
                    } else if levels < MAX_INDENT_LEVELS {
                        self.out.push_str("  ");
                        levels += 1;
                    }
                }
            }
        }
    }

    /// Writes text, each of its lines after the pending separator and line prefix; a line
    /// break in it ends the line.
    pub fn text(&mut self, text: &str) {
        let mut rest = text;
        loop {
            let line_end = memchr::memchr(b'\n', rest.as_bytes());
            let line = line_end.map_or(rest, |at| &rest[..at]);
            let line = if S::TRIM_CR {
                line.strip_suffix('\r').unwrap_or(line)
            } else {
                line
            };
            if !line.is_empty() {
                self.flush();
                self.out.push_str(line);
            }
            let Some(at) = line_end else {
                return;
            };
            self.break_line();
            self.at_line_start = true;
            rest = &rest[at + 1..];
        }
    }

    /// Appends text as it is: no separator, line prefix or line handling, and the styler is not
    /// told. For text that belongs to what was just written (a link's hidden target).
    pub fn push_raw(&mut self, text: &str) {
        self.out.push_str(text);
    }

    /// Ends the text: what is still open is closed ([`Styler::finish`]) and trailing whitespace
    /// dropped. The text, and the styler.
    pub fn finish(mut self) -> (String, S) {
        S::finish(&mut self);
        let kept = self.out.trim_end().len();
        self.out.truncate(kept);
        self.styler.truncated(kept);
        (self.out, self.styler)
    }
}

/// How natural a place to cut text is; later variants are preferred.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BreakKind {
    /// Inside a word longer than the limit, between two grapheme clusters.
    Grapheme,
    /// Between two words.
    Space,
    /// After a sentence: `.`, `!`, `?` or `…` (maybe followed by a closing quote), then a space.
    Sentence,
    /// At a line break.
    Line,
    /// At a blank line between paragraphs.
    Paragraph,
}

/// A place where a part may end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Break {
    /// How natural the place is.
    pub kind: BreakKind,
    /// Byte offset in [`Window::rest`] where the part's text ends; whitespace after it is dropped.
    pub end: usize,
    /// Byte offset in [`Window::rest`] where the next part's text starts.
    pub next: usize,
    /// Characters (Unicode scalar values) in the part if it ends here.
    pub chars: usize,
}

/// What a chooser sees when the rest of the text does not fit in one part.
#[derive(Clone, Copy)]
pub struct Window<'a> {
    /// The text from the start of this part to the end of the input.
    pub rest: &'a str,
    /// Every place where this part may end within the limit, in text order; never empty.
    pub breaks: &'a [Break],
    /// Most characters the part's text may have.
    pub max_chars: usize,
    /// Characters that will be appended to the part (its ` (i/N)` suffix), outside `max_chars`.
    pub suffix_chars: usize,
    layout: &'a Layout<'a>,
    pos: usize,
    pos_chars: usize,
    /// When the breaks are the layout's gaps from this index on, rather than a cut in a word.
    first_gap: Option<usize>,
}

impl std::fmt::Debug for Window<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Window")
            .field("rest", &self.rest)
            .field("breaks", &self.breaks)
            .field("max_chars", &self.max_chars)
            .field("suffix_chars", &self.suffix_chars)
            .finish_non_exhaustive()
    }
}

impl<'a> Window<'a> {
    /// The same window offering only its first `len` breaks, for choosing among those.
    pub fn truncated(&self, len: usize) -> Window<'a> {
        Window {
            breaks: &self.breaks[..len.min(self.breaks.len())],
            ..*self
        }
    }

    /// Characters of the whole text before this part.
    pub fn start_chars(&self) -> usize {
        self.pos_chars
    }

    /// The parts [`greedy`] makes of the text after `breaks[index]`, with the same limit, each as
    /// its range of bytes and its range of characters within [`Window::rest`]. Cheap: the text is
    /// not scanned again. Empty for an index out of range.
    pub fn greedy_after(&self, index: usize) -> GreedyParts<'a> {
        let (pos, pos_chars) = match self.breaks.get(index) {
            Some(cut) => (self.pos + cut.next, self.next_chars(cut)),
            None => (self.layout.end, self.layout.end_chars),
        };
        GreedyParts {
            layout: self.layout,
            base: self.pos,
            base_chars: self.pos_chars,
            pos,
            pos_chars,
            max_chars: self.max_chars,
        }
    }

    /// Characters before the start of the part that follows `cut`, counted from the text's start.
    fn next_chars(&self, cut: &Break) -> usize {
        if cut.next == cut.end {
            return self.pos_chars + cut.chars;
        }
        let end = self.pos + cut.end;
        let gaps = &self.layout.gaps;
        let index = gaps.partition_point(|gap| gap.end < end);
        gaps.get(index)
            .filter(|gap| gap.end == end)
            .map_or(self.pos_chars + cut.chars, |gap| gap.next_chars)
    }
}

/// The default choice of where a part ends: the index in `window.breaks` of the latest break of
/// the most natural kind among those that leave the part at least half full.
///
/// Breaks in the first half of the limit are only used when the second half has none, so a
/// paragraph break early on does not win over filling the part up to a line, sentence or word
/// break. Returns 0 for an empty `window.breaks`.
pub fn greedy(window: &Window<'_>) -> usize {
    let breaks = window.breaks;
    // Without gaps, the window's one break is a cut inside a word too long for the part.
    match window.first_gap {
        Some(first) if !breaks.is_empty() => {
            let gaps = first..first + breaks.len();
            window
                .layout
                .pick_gap(gaps, window.pos_chars, window.max_chars)
                - first
        }
        _ => 0,
    }
}

/// Splits text into parts of at most `max_chars` characters at natural places (see [`greedy`]).
///
/// Preference: blank line, line break, sentence end, space. A word is only cut when it alone is
/// longer than `max_chars`, and then between grapheme clusters, so an emoji sequence or a flag
/// stays whole (only a single cluster longer than the limit is cut between characters). Whitespace
/// around cuts and at both ends is dropped; every other character is kept, in order. Empty or
/// whitespace-only text gives no parts; a `max_chars` of 0 is taken as 1.
pub fn split(text: &str, max_chars: usize) -> Vec<String> {
    split_with(text, max_chars, greedy)
}

/// Like [`split`], with `choose` deciding where each part that does not hold the rest ends.
///
/// `choose` returns an index into [`Window::breaks`]; an index out of range means [`greedy`].
pub fn split_with<F>(text: &str, max_chars: usize, choose: F) -> Vec<String>
where
    F: FnMut(&Window<'_>) -> usize,
{
    parts(text, max_chars, 0, choose)
        .map(str::to_owned)
        .collect()
}

/// Like [`split`], but when there is more than one part each ends with ` (i/N)`, counted within
/// `max_chars`.
///
/// When `max_chars` is too small to hold a suffix and a character, the parts are not numbered.
pub fn split_numbered(text: &str, max_chars: usize) -> Vec<String> {
    split_numbered_with(text, max_chars, greedy)
}

/// Like [`split_numbered`], with `choose` deciding where parts end (see [`split_with`]).
///
/// `choose` sees the room reserved for the suffix in [`Window::suffix_chars`].
pub fn split_numbered_with<F>(text: &str, max_chars: usize, choose: F) -> Vec<String>
where
    F: FnMut(&Window<'_>) -> usize,
{
    numbered_spans_with(text, max_chars, choose)
        .iter()
        .map(|span| span.body(text))
        .collect()
}

/// One part of a split text: where its text lies in the input, and its number when the text
/// has several parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// Byte range of the part's text in the input.
    pub bytes: Range<usize>,
    /// The same range in characters (Unicode scalar values) from the input's start.
    pub chars: Range<usize>,
    /// `(i, N)` for part `i` (from 1) of `N`, or `None` for a part that is not numbered.
    pub number: Option<(usize, usize)>,
}

impl Span {
    /// The ` (i/N)` appended to the part, or an empty string.
    pub fn suffix(&self) -> String {
        self.number
            .map(|(index, total)| format!(" ({index}/{total})"))
            .unwrap_or_default()
    }

    /// Characters of [`Span::suffix`].
    pub fn suffix_chars(&self) -> usize {
        self.number.map_or(0, |(index, total)| {
            4 + decimal_digits(index) + decimal_digits(total)
        })
    }

    /// The part as it is sent: its text from `text` (the input it was split from), then its
    /// suffix.
    pub fn body(&self, text: &str) -> String {
        let part = &text[self.bytes.clone()];
        let mut body = String::with_capacity(part.len() + self.suffix_chars());
        body.push_str(part);
        if let Some((index, total)) = self.number {
            let _ = write!(body, " ({index}/{total})");
        }
        body
    }
}

/// [`split_numbered_with`]'s parts as [`Span`]s of `text`, for a caller that needs to know where
/// each part came from (to count what it costs without scanning it again).
pub fn numbered_spans_with<F>(text: &str, max_chars: usize, mut choose: F) -> Vec<Span>
where
    F: FnMut(&Window<'_>) -> usize,
{
    let max_chars = max_chars.max(1);
    let (start, end) = bounds(text);
    if start >= end {
        return Vec::new();
    }
    let whole = |start_chars: usize, chars: usize| {
        vec![Span {
            bytes: start..end,
            chars: start_chars..start_chars + chars,
            number: None,
        }]
    };
    // A text of no more bytes than the limit has no more characters either.
    if end - start <= max_chars {
        let start_chars = text[..start].chars().count();
        return whole(start_chars, text[start..end].chars().count());
    }
    let layout = Layout::new(text);
    if layout.end_chars - layout.start_chars <= max_chars {
        return whole(layout.start_chars, layout.end_chars - layout.start_chars);
    }
    // The suffix is reserved at its widest (` (N/N)`); more parts can mean a wider N, which can
    // mean more parts again, so this repeats until the width of N no longer grows.
    let mut digits = 1;
    loop {
        let reserve = 4 + 2 * digits;
        if reserve >= max_chars {
            return collect_parts(&layout, max_chars, 0, &mut choose);
        }
        let mut numbered = collect_parts(&layout, max_chars - reserve, reserve, &mut choose);
        let total = numbered.len();
        if decimal_digits(total) > digits {
            digits = decimal_digits(total);
            continue;
        }
        if total > 1 {
            for (index, span) in numbered.iter_mut().enumerate() {
                span.number = Some((index + 1, total));
            }
        }
        return numbered;
    }
}

fn decimal_digits(mut n: usize) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

/// The parts of `text` as slices of it, without numbering: see [`split_with`].
///
/// `suffix_chars` is only passed on to `choose` in [`Window::suffix_chars`]; `max_chars` is the
/// room for the text itself (0 is taken as 1).
pub fn parts<F>(text: &str, max_chars: usize, suffix_chars: usize, choose: F) -> Parts<'_, F>
where
    F: FnMut(&Window<'_>) -> usize,
{
    Parts::new(Layout::new(text), max_chars, suffix_chars, choose)
}

/// A place between words, found once per text, with positions from the start of the text.
#[derive(Clone, Copy, Debug)]
struct Gap {
    kind: BreakKind,
    /// Byte where the text before the gap ends.
    end: usize,
    /// Byte where the text after the gap starts.
    next: usize,
    /// Characters before `end`.
    end_chars: usize,
    /// Characters before `next`.
    next_chars: usize,
}

/// The offsets of the bytes of a text that are not printable ASCII (whitespace, control
/// characters and every byte of a non-ASCII character), in order.
///
/// Gaps between words are a few bytes apart at unpredictable distances, so looking for them a
/// byte at a time costs a mispredicted branch per word. This finds them 64 bytes at a time
/// instead: eight bytes are classified at once with arithmetic on a `u64` (no byte can carry
/// into its neighbour), and the block's stops are then visited through a bit mask.
struct Stops<'a> {
    bytes: &'a [u8],
    /// Offset of the block `mask` describes; a multiple of 64.
    block: usize,
    /// Bit `k` set: the byte at `block + k` is a stop not yet returned.
    mask: u64,
}

impl<'a> Stops<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Stops {
            bytes,
            block: 0,
            mask: block_mask(bytes, 0),
        }
    }

    /// Forgets the stops before `offset`.
    fn skip_to(&mut self, offset: usize) {
        let block = offset - offset % 64;
        if block != self.block {
            self.block = block;
            self.mask = block_mask(self.bytes, block);
        }
        let below = offset - block;
        self.mask &= u64::MAX.checked_shl(below as u32).unwrap_or(0);
    }
}

impl Iterator for Stops<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            self.block += 64;
            if self.block >= self.bytes.len() {
                return None;
            }
            self.mask = block_mask(self.bytes, self.block);
        }
        let bit = self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(self.block + bit)
    }
}

/// Bit `k` set when byte `block + k` of `bytes` is not printable ASCII; bytes past the end are
/// not stops.
fn block_mask(bytes: &[u8], block: usize) -> u64 {
    let mut padded = [b'a'; 64];
    let chunk = bytes.get(block..).unwrap_or_default();
    let chunk = &chunk[..chunk.len().min(64)];
    padded[..chunk.len()].copy_from_slice(chunk);
    let mut mask = 0;
    for (index, word) in padded.chunks_exact(8).enumerate() {
        let word = u64::from_le_bytes(word.try_into().unwrap_or([b'a'; 8]));
        mask |= word_stops(word) << (8 * index);
    }
    mask
}

/// Bit `k` set when byte `k` of the little-endian `word` is not printable ASCII (`!` to `~`).
fn word_stops(word: u64) -> u64 {
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low = word & LOW;
    // Adding to seven-bit values never carries past a byte's top bit.
    let from_bang = (low + 0x5f5f_5f5f_5f5f_5f5f) & HIGH;
    let is_delete = (low + 0x0101_0101_0101_0101) & HIGH;
    let graphic = from_bang & !is_delete & !word;
    let stops = !graphic & HIGH;
    // Gathers the eight top bits into the top byte: no two partial products overlap.
    (stops >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// A text with its surrounding whitespace located and every gap between words found, so that
/// parts can be chosen (and look-aheads simulated) without scanning the text again.
#[derive(Clone, Debug)]
struct Layout<'a> {
    text: &'a str,
    start: usize,
    start_chars: usize,
    end: usize,
    end_chars: usize,
    gaps: Gaps,
}

/// The gaps of a text in order, with those that are not plain spaces also listed by kind, so that
/// the latest gap of the most natural kind in a range is found without visiting every gap.
#[derive(Clone, Debug)]
struct Gaps {
    all: Vec<Gap>,
    /// Indices in `all` of the sentence, line and paragraph gaps, in that order of kinds.
    by_kind: [Vec<usize>; 3],
}

impl Gaps {
    fn with_capacity(capacity: usize) -> Self {
        Gaps {
            all: Vec::with_capacity(capacity),
            by_kind: Default::default(),
        }
    }

    fn push(&mut self, gap: Gap) {
        let list = match gap.kind {
            BreakKind::Grapheme | BreakKind::Space => None,
            BreakKind::Sentence => Some(0),
            BreakKind::Line => Some(1),
            BreakKind::Paragraph => Some(2),
        };
        if let Some(list) = list {
            self.by_kind[list].push(self.all.len());
        }
        self.all.push(gap);
    }

    /// Records the whitespace at bytes `run` of the text's body (which starts at byte `start`
    /// of `text`), `chars` its characters counted from the text's start, with `newlines` line
    /// ends in it: its kind comes from them and from the word before it, and its edges are moved
    /// off any grapheme cluster they would split (a gap left without a boundary is dropped).
    fn add(
        &mut self,
        text: &str,
        start: usize,
        run: Range<usize>,
        chars: Range<usize>,
        newlines: usize,
    ) {
        let body = &text[start..];
        let bytes = body.as_bytes();
        let last = match run.start.checked_sub(1).map(|j| bytes[j]) {
            Some(byte) if byte.is_ascii() => char::from(byte),
            Some(_) => body[..run.start].chars().next_back().unwrap_or('\0'),
            None => '\0',
        };
        let kind = match newlines {
            0 if ends_sentence(last, || before_last(body, run.start)) => BreakKind::Sentence,
            0 => BreakKind::Space,
            1 => BreakKind::Line,
            _ => BreakKind::Paragraph,
        };
        let gap = Gap {
            kind,
            end: start + run.start,
            next: start + run.end,
            end_chars: chars.start,
            next_chars: chars.end,
        };
        // Between ASCII neighbours the gap's edges are always cluster boundaries.
        if last.is_ascii() && bytes[run.end].is_ascii() {
            self.push(gap);
        } else if let Some(gap) = align_gap(text, gap) {
            self.push(gap);
        }
    }

    /// The index of the latest gap of the most natural kind in `range`, as [`greedy`] chooses
    /// within one half; `None` for an empty range.
    fn best_in(&self, range: Range<usize>) -> Option<usize> {
        if range.is_empty() {
            return None;
        }
        for list in self.by_kind.iter().rev() {
            let before_end = list.partition_point(|&index| index < range.end);
            if let Some(&index) = before_end.checked_sub(1).and_then(|at| list.get(at))
                && index >= range.start
            {
                return Some(index);
            }
        }
        // Only spaces are left, and the last of them is the latest.
        Some(range.end - 1)
    }
}

impl std::ops::Deref for Gaps {
    type Target = [Gap];

    fn deref(&self) -> &[Gap] {
        &self.all
    }
}

impl<'a> Layout<'a> {
    fn new(text: &'a str) -> Self {
        let (start, end) = bounds(text);
        let start_chars = text[..start].chars().count();
        let body = &text[start..end];
        let bytes = body.as_bytes();
        let mut gaps = Gaps::with_capacity(bytes.len() / 4);
        // Characters are counted as bytes less the bytes that continue a multi-byte character;
        // those only follow a non-ASCII byte, which is always a stop.
        let mut continuation = 0;
        let mut stops = Stops::new(bytes);
        while let Some(at) = stops.next() {
            // The common gap, one space between ASCII words, takes the short way.
            if bytes[at] == b' '
                && let Some(&after) = bytes.get(at + 1)
                && after.is_ascii_graphic()
                && let Some(&last) = at.checked_sub(1).and_then(|j| bytes.get(j))
                && last.is_ascii()
            {
                let chars = start_chars + at - continuation;
                let sentence = ends_sentence(char::from(last), || before_last(body, at));
                gaps.push(Gap {
                    kind: if sentence {
                        BreakKind::Sentence
                    } else {
                        BreakKind::Space
                    },
                    end: start + at,
                    next: start + at + 1,
                    end_chars: chars,
                    next_chars: chars + 1,
                });
                continue;
            }
            let Some(c) = char_at(body, at) else {
                break;
            };
            if !c.is_whitespace() {
                continuation += c.len_utf8() - 1;
                stops.skip_to(at + c.len_utf8());
                continue;
            }
            let (next, newlines, run_chars) = whitespace_run(body, at);
            if next >= bytes.len() {
                break;
            }
            let chars = start_chars + at - continuation;
            continuation += (next - at) - run_chars;
            stops.skip_to(next);
            gaps.add(text, start, at..next, chars..chars + run_chars, newlines);
        }
        Layout {
            text,
            start,
            start_chars,
            end,
            end_chars: start_chars + bytes.len() - continuation,
            gaps,
        }
    }

    /// The gaps within the limit of a part starting at `pos`, as a range of `gaps`, or `None`
    /// when the rest of the text fits in the part.
    fn window(&self, pos: usize, pos_chars: usize, max_chars: usize) -> Option<(usize, usize)> {
        if self.end_chars - pos_chars <= max_chars {
            return None;
        }
        let first = self.gaps.partition_point(|gap| gap.end <= pos);
        let last = self.gaps[first..].partition_point(|gap| gap.end_chars - pos_chars <= max_chars);
        Some((first, first + last))
    }

    /// What [`greedy`] chooses among the non-empty range `gaps` of a part starting after
    /// `pos_chars` characters, as an index in `self.gaps`, with the gaps' kinds looked up rather
    /// than visited.
    fn pick_gap(&self, gaps: Range<usize>, pos_chars: usize, max_chars: usize) -> usize {
        let second_half = gaps.start
            + self.gaps[gaps.clone()]
                .partition_point(|gap| (gap.end_chars - pos_chars).saturating_mul(2) < max_chars);
        self.gaps
            .best_in(second_half..gaps.end)
            .or_else(|| self.gaps.best_in(gaps.start..second_half))
            .unwrap_or(gaps.start)
    }

    /// The cut inside a word longer than the limit: the last grapheme boundary within it.
    /// Returns the byte where it falls and the characters before it in the part.
    fn cut_word(&self, pos: usize, max_chars: usize) -> (usize, usize) {
        let text = self.text;
        let body = &text[pos..self.end];
        let hard = pos
            + body
                .char_indices()
                .nth(max_chars)
                .map_or(body.len(), |(offset, _)| offset);
        let mut cut = hard;
        while cut > pos && !is_boundary(text, cut) {
            cut = previous_char(text, cut);
        }
        if cut == pos {
            // A single cluster longer than the whole limit: the limit wins.
            cut = hard;
        }
        (cut, text[pos..cut].chars().count())
    }
}

/// Moves the edges of a gap off any grapheme cluster that a whitespace character shares with
/// its neighbour (a prepended mark before it, a combining mark after it); `None` when no cluster
/// boundary is left to cut at.
fn align_gap(text: &str, mut gap: Gap) -> Option<Gap> {
    while gap.end < gap.next && !is_boundary(text, gap.end) {
        gap.end = next_char(text, gap.end);
        gap.end_chars += 1;
    }
    while gap.next > gap.end && !is_boundary(text, gap.next) {
        gap.next = previous_char(text, gap.next);
        gap.next_chars -= 1;
    }
    (is_boundary(text, gap.end) && is_boundary(text, gap.next)).then_some(gap)
}

/// Where the text of `text` starts and ends once whitespace around it is dropped, keeping any
/// whitespace that shares a grapheme cluster with a visible character.
fn bounds(text: &str) -> (usize, usize) {
    let mut start = text.len() - text.trim_start().len();
    while start > 0 && !is_boundary(text, start) {
        start = previous_char(text, start);
    }
    let mut end = text.trim_end().len();
    while end < text.len() && !is_boundary(text, end) {
        end = next_char(text, end);
    }
    (start, end.max(start))
}

/// Iterator over the parts of a text: see [`parts`].
pub struct Parts<'a, F> {
    layout: Layout<'a>,
    cursor: Cursor,
    max_chars: usize,
    suffix_chars: usize,
    choose: F,
    breaks: Vec<Break>,
}

impl<'a, F> Parts<'a, F> {
    fn new(layout: Layout<'a>, max_chars: usize, suffix_chars: usize, choose: F) -> Self {
        Parts {
            cursor: Cursor::start(&layout),
            layout,
            max_chars: max_chars.max(1),
            suffix_chars,
            choose,
            breaks: Vec::new(),
        }
    }
}

impl<'a, F> Iterator for Parts<'a, F>
where
    F: FnMut(&Window<'_>) -> usize,
{
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        next_part(
            &self.layout,
            &mut self.cursor,
            (self.max_chars, self.suffix_chars),
            &mut self.choose,
            &mut self.breaks,
        )
        .map(|(part, _)| part)
    }
}

/// Where a split stands: the next part starts at byte `pos`, after `pos_chars` characters.
#[derive(Clone, Copy, Debug)]
struct Cursor {
    pos: usize,
    pos_chars: usize,
}

impl Cursor {
    fn start(layout: &Layout<'_>) -> Self {
        Cursor {
            pos: layout.start,
            pos_chars: layout.start_chars,
        }
    }
}

fn collect_parts<F>(
    layout: &Layout<'_>,
    max_chars: usize,
    suffix_chars: usize,
    choose: &mut F,
) -> Vec<Span>
where
    F: FnMut(&Window<'_>) -> usize,
{
    let mut cursor = Cursor::start(layout);
    let mut breaks = Vec::new();
    let mut spans = Vec::new();
    let limits = (max_chars.max(1), suffix_chars);
    loop {
        let (start, start_chars) = (cursor.pos, cursor.pos_chars);
        let Some((part, chars)) = next_part(layout, &mut cursor, limits, choose, &mut breaks)
        else {
            return spans;
        };
        spans.push(Span {
            bytes: start..start + part.len(),
            chars: start_chars..start_chars + chars,
            number: None,
        });
    }
}

/// The next part from `cursor`, with `limits` as (`max_chars`, `suffix_chars`); `breaks` is a
/// buffer for the window's breaks.
fn next_part<'a, F>(
    layout: &Layout<'a>,
    cursor: &mut Cursor,
    (max_chars, suffix_chars): (usize, usize),
    choose: &mut F,
    breaks: &mut Vec<Break>,
) -> Option<(&'a str, usize)>
where
    F: FnMut(&Window<'_>) -> usize,
{
    let text = layout.text;
    let Cursor { pos, pos_chars } = *cursor;
    if pos >= layout.end {
        return None;
    }
    let Some((first, last)) = layout.window(pos, pos_chars, max_chars) else {
        cursor.pos = layout.end;
        return Some((&text[pos..layout.end], layout.end_chars - pos_chars));
    };
    breaks.clear();
    breaks.extend(layout.gaps[first..last].iter().map(|gap| Break {
        kind: gap.kind,
        end: gap.end - pos,
        next: gap.next - pos,
        chars: gap.end_chars - pos_chars,
    }));
    let first_gap = (!breaks.is_empty()).then_some(first);
    if breaks.is_empty() {
        let (cut, chars) = layout.cut_word(pos, max_chars);
        breaks.push(Break {
            kind: BreakKind::Grapheme,
            end: cut - pos,
            next: cut - pos,
            chars,
        });
    }
    let window = Window {
        rest: &text[pos..],
        breaks,
        max_chars,
        suffix_chars,
        layout,
        pos,
        pos_chars,
        first_gap,
    };
    let chosen = choose(&window);
    let index = if chosen < breaks.len() {
        chosen
    } else {
        greedy(&window)
    };
    let cut = breaks[index];
    cursor.pos_chars = match layout.gaps.get(first + index) {
        Some(gap) if first + index < last => gap.next_chars,
        _ => pos_chars + cut.chars,
    };
    cursor.pos = pos + cut.next;
    Some((&text[pos..pos + cut.end], cut.chars))
}

/// The parts [`greedy`] would make of the rest of a text: see [`Window::greedy_after`].
pub struct GreedyParts<'a> {
    layout: &'a Layout<'a>,
    base: usize,
    base_chars: usize,
    pos: usize,
    pos_chars: usize,
    max_chars: usize,
}

impl Iterator for GreedyParts<'_> {
    type Item = (Range<usize>, Range<usize>);

    fn next(&mut self) -> Option<(Range<usize>, Range<usize>)> {
        let layout = self.layout;
        let pos = self.pos;
        if pos >= layout.end {
            return None;
        }
        let pos_chars = self.pos_chars;
        let (end, end_chars, next, next_chars) = match layout.window(pos, pos_chars, self.max_chars)
        {
            None => (layout.end, layout.end_chars, layout.end, layout.end_chars),
            Some((first, last)) if first == last => {
                let (cut, chars) = layout.cut_word(pos, self.max_chars);
                (cut, pos_chars + chars, cut, pos_chars + chars)
            }
            Some((first, last)) => {
                let gap = layout.gaps[layout.pick_gap(first..last, pos_chars, self.max_chars)];
                (gap.end, gap.end_chars, gap.next, gap.next_chars)
            }
        };
        self.pos = next;
        self.pos_chars = next_chars;
        Some((
            pos - self.base..end - self.base,
            pos_chars - self.base_chars..end_chars - self.base_chars,
        ))
    }
}

/// The whitespace of `body` from byte `at`: where it ends, how many line ends it holds
/// ([`newline_weight`]) and how many characters it is.
fn whitespace_run(body: &str, at: usize) -> (usize, usize, usize) {
    let bytes = body.as_bytes();
    let (mut i, mut newlines, mut chars) = (at, 0, 0);
    while let Some(&byte) = bytes.get(i) {
        if byte == b' ' {
            i += 1;
        } else if let Some(c) = char_at(body, i).filter(|c| c.is_whitespace()) {
            i += c.len_utf8();
            newlines += newline_weight(c, bytes.get(i).copied());
        } else {
            break;
        }
        chars += 1;
    }
    (i, newlines, chars)
}

/// The character before the last one of `body[..end]`, or `'\0'`.
fn before_last(body: &str, end: usize) -> char {
    let mut before = body[..end].chars().rev();
    before.next();
    before.next().unwrap_or('\0')
}

/// How many line ends a whitespace character adds, given the byte after it; `\r\n` counts
/// once, U+2029 as a blank line.
fn newline_weight(c: char, next: Option<u8>) -> usize {
    match c {
        '\n' | '\u{000B}' | '\u{000C}' | '\u{0085}' | '\u{2028}' => 1,
        '\r' => usize::from(next != Some(b'\n')),
        '\u{2029}' => 2,
        _ => 0,
    }
}

/// Whether a word ending in `last`, preceded by `before_last()` (only worked out when it matters),
/// ends a sentence. A `.` after a digit is taken for a list number or a version (`1. item`, `v2.`)
/// rather than a sentence end.
fn ends_sentence(last: char, before_last: impl FnOnce() -> char) -> bool {
    match last {
        '!' | '?' | '…' => true,
        '.' => !before_last().is_ascii_digit(),
        '"' | '\'' | ')' | ']' | '’' | '”' | '»' => {
            matches!(before_last(), '.' | '!' | '?' | '…')
        }
        _ => false,
    }
}

/// Whether `offset` (a char boundary of `text`) is also a grapheme cluster boundary.
fn is_boundary(text: &str, offset: usize) -> bool {
    let bytes = text.as_bytes();
    if offset == 0 || offset >= bytes.len() {
        return true;
    }
    let (before, after) = (bytes[offset - 1], bytes[offset]);
    // No ASCII character extends or joins a cluster; only CR LF stays together.
    if before.is_ascii() && after.is_ascii() {
        return !(before == b'\r' && after == b'\n');
    }
    GraphemeCursor::new(offset, text.len(), true)
        .is_boundary(text, 0)
        .unwrap_or(true)
}

fn char_at(text: &str, offset: usize) -> Option<char> {
    match text.as_bytes().get(offset) {
        Some(&byte) if byte.is_ascii() => Some(char::from(byte)),
        Some(_) => text.get(offset..).and_then(|rest| rest.chars().next()),
        None => None,
    }
}

fn next_char(text: &str, offset: usize) -> usize {
    text[offset..]
        .chars()
        .next()
        .map_or(text.len(), |c| offset + c.len_utf8())
}

fn previous_char(text: &str, offset: usize) -> usize {
    text[..offset]
        .chars()
        .next_back()
        .map_or(0, |c| offset - c.len_utf8())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use unicode_segmentation::UnicodeSegmentation;

    fn non_whitespace(text: &str) -> String {
        text.chars().filter(|c| !c.is_whitespace()).collect()
    }

    fn strip_suffix(part: &str) -> &str {
        match part.rfind(" (") {
            Some(at) if part.ends_with(')') => &part[..at],
            _ => part,
        }
    }

    #[test]
    fn markdown_to_plain_renders_assistant_replies() {
        let cases: &[(&str, &str, &str)] = &[
            ("empty", "", ""),
            ("whitespace", "  \n\n \t \n", ""),
            (
                "emphasis",
                "This is **bold**, *italic*, ~~gone~~ and ***both***.",
                "This is bold, italic, gone and both.",
            ),
            (
                "headings",
                "# Plan\n\nFirst do this.\n\n## Details\nThen that.",
                "Plan\n\nFirst do this.\n\nDetails\n\nThen that.",
            ),
            (
                "bullets",
                "Shopping:\n\n* milk\n* eggs\n* bread",
                "Shopping:\n\n- milk\n- eggs\n- bread",
            ),
            (
                "ordered from three",
                "3. third\n4. fourth\n5. fifth",
                "3. third\n4. fourth\n5. fifth",
            ),
            (
                "nested",
                "1. Install\n   - run `cargo install`\n   - check the path\n2. Configure\n   1. copy the file\n   2. edit it",
                "1. Install\n  - run cargo install\n  - check the path\n2. Configure\n  1. copy the file\n  2. edit it",
            ),
            (
                "loose list stays compact",
                "- first item\n\n- second item\n\n  with more\n",
                "- first item\n- second item\n  with more",
            ),
            (
                "fenced code",
                "Run this:\n\n```bash\ncargo build --release\n  ./target/release/hermes\n```\n\nThen wait.",
                "Run this:\n\ncargo build --release\n  ./target/release/hermes\n\nThen wait.",
            ),
            (
                "inline code",
                "Use `git status` to check.",
                "Use git status to check.",
            ),
            (
                "link",
                "See [the guide](https://example.com/guide?x=1&y=2) for more.",
                "See the guide (https://example.com/guide?x=1&y=2) for more.",
            ),
            (
                "link whose text is the url",
                "[https://example.com](https://example.com)",
                "https://example.com",
            ),
            (
                "mail link",
                "Write to [ops@example.com](mailto:ops@example.com).",
                "Write to ops@example.com.",
            ),
            (
                "autolink",
                "Docs: <https://docs.rs/hermes>",
                "Docs: https://docs.rs/hermes",
            ),
            (
                "email autolink",
                "Mail <ops@example.com>",
                "Mail ops@example.com",
            ),
            (
                "image",
                "![A cat](https://example.com/cat.png)",
                "A cat (https://example.com/cat.png)",
            ),
            (
                "image without alt",
                "![](https://example.com/cat.png)",
                "https://example.com/cat.png",
            ),
            (
                "reference link",
                "Read [the RFC][rfc].\n\n[rfc]: https://www.rfc-editor.org/rfc/rfc9110",
                "Read the RFC (https://www.rfc-editor.org/rfc/rfc9110).",
            ),
            (
                "quote",
                "> Be careful.\n> Really.\n\nOk.",
                "> Be careful.\n> Really.\n\nOk.",
            ),
            ("nested quote has one marker", "> > deep", "> deep"),
            (
                "table",
                "| Plan | Price |\n|------|------:|\n| Basic | $5 |\n| Pro | $20 |",
                "Plan | Price\nBasic | $5\nPro | $20",
            ),
            (
                "breaks",
                "line one\nline two  \nline three",
                "line one\nline two\nline three",
            ),
            (
                "html",
                "Press <kbd>Ctrl</kbd>+C\n\n<div>block</div>",
                "Press <kbd>Ctrl</kbd>+C\n\n<div>block</div>",
            ),
            ("rule", "Above\n\n---\n\nBelow", "Above\n\nBelow"),
            ("blank lines collapse", "One\n\n\n\n\nTwo", "One\n\nTwo"),
            (
                "curly quotes and emoji pass through",
                "“Great idea!” she said — it’s done 🎉",
                "“Great idea!” she said — it’s done 🎉",
            ),
            (
                "escapes and entities",
                "5 \\* 3 &amp; 1 &lt; 2",
                "5 * 3 & 1 < 2",
            ),
        ];
        for (name, markdown, expected) in cases {
            assert_eq!(markdown_to_plain(markdown), *expected, "case {name}");
        }
    }

    #[test]
    fn markdown_to_plain_full_reply() {
        let reply = "## Your trip to Lisbon 🇵🇹\n\nHere’s a **3-day plan**:\n\n1. **Day 1** – Alfama and the *castle*\n2. **Day 2** – Belém:\n   - Jerónimos Monastery\n   - [Pastéis de Belém](https://pasteisdebelem.pt)\n3. **Day 3** – Sintra\n\n> Tip: buy a `Viva Viagem` card.\n\n```\nTotal: ~€250\n```\n\nHave fun!";
        let expected = "Your trip to Lisbon 🇵🇹\n\nHere’s a 3-day plan:\n\n1. Day 1 – Alfama and the castle\n2. Day 2 – Belém:\n  - Jerónimos Monastery\n  - Pastéis de Belém (https://pasteisdebelem.pt)\n3. Day 3 – Sintra\n\n> Tip: buy a Viva Viagem card.\n\nTotal: ~€250\n\nHave fun!";
        assert_eq!(markdown_to_plain(reply), expected);
    }

    #[test]
    fn markdown_to_plain_survives_odd_input() {
        for input in [
            "[",
            "[]()",
            "[x]()",
            "![](",
            "```",
            "> ",
            "- ",
            "1.",
            "|a|\n|-|",
            "*a **b* c**",
            "<",
            "&#0;",
            "\r\n\r\n",
            "- - - - - - - - - - - - - x\ny\nz",
            "[a](<b c>)",
        ] {
            let _ = markdown_to_plain(input);
        }
        let deep = format!("{}x", "- ".repeat(50));
        let plain = markdown_to_plain(&format!("{deep}\ny"));
        assert!(plain.len() < 200, "{plain:?}");
    }

    #[test]
    fn split_prefers_natural_boundaries() {
        let cases: &[(&str, &str, usize, &[&str])] = &[
            ("fits", "Short reply.", 20, &["Short reply."]),
            ("empty", "", 10, &[]),
            ("whitespace only", " \n\t ", 10, &[]),
            (
                "paragraph",
                "First paragraph here.\n\nSecond one, longer.",
                30,
                &["First paragraph here.", "Second one, longer."],
            ),
            (
                "line before sentence",
                "Items:\n- apples. - pears and more",
                24,
                &["Items:\n- apples.", "- pears and more"],
            ),
            (
                "sentence before space",
                "It is done. Now we wait for it",
                20,
                &["It is done.", "Now we wait for it"],
            ),
            (
                "space",
                "alpha beta gamma delta",
                12,
                &["alpha beta", "gamma delta"],
            ),
            (
                "early paragraph loses to a full part",
                "Hi.\n\nThis sentence keeps going on and on",
                30,
                &["Hi.\n\nThis sentence keeps going", "on and on"],
            ),
            (
                "long word is cut",
                "see abcdefghijklmnop",
                8,
                &["see", "abcdefgh", "ijklmnop"],
            ),
            (
                "list number is not a sentence end",
                "1. one 2. two",
                9,
                &["1. one 2.", "two"],
            ),
            (
                "quoted sentence end",
                "He said “stop.” Then left quickly",
                22,
                &["He said “stop.”", "Then left quickly"],
            ),
            ("emoji sequence stays whole", "👩‍👩‍👧‍👦👩‍👩‍👧‍👦", 8, &["👩‍👩‍👧‍👦", "👩‍👩‍👧‍👦"]),
            ("flags stay whole", "🇵🇹🇧🇷🇺🇸", 3, &["🇵🇹", "🇧🇷", "🇺🇸"]),
            (
                "combining mark stays with its letter",
                "cafe\u{301}cafe\u{301}",
                4,
                &["caf", "e\u{301}ca", "fe\u{301}"],
            ),
            (
                "crlf",
                "one two\r\nthree four",
                12,
                &["one two", "three four"],
            ),
        ];
        for (name, text, max, expected) in cases {
            assert_eq!(split(text, *max), *expected, "case {name}");
        }
    }

    #[test]
    fn split_long_reply_fills_parts() {
        let sentence = "The quick brown fox jumps over the lazy dog. ";
        let text = sentence.repeat(100);
        let parts = split(&text, 1600);
        assert_eq!(parts.len(), 3);
        for part in &parts[..2] {
            assert!(part.chars().count() > 1500, "{}", part.len());
            assert!(part.ends_with('.'));
        }
        assert_eq!(non_whitespace(&parts.concat()), non_whitespace(&text));
    }

    #[test]
    fn split_numbered_reserves_room_for_the_suffix() {
        let cases: &[(&str, &str, usize, &[&str])] = &[
            (
                "single part has no suffix",
                "hello there",
                11,
                &["hello there"],
            ),
            (
                "two parts",
                "alpha beta gamma delta",
                17,
                &["alpha beta (1/2)", "gamma delta (2/2)"],
            ),
            (
                "limit too small for a suffix",
                "abc def",
                4,
                &["abc", "def"],
            ),
        ];
        for (name, text, max, expected) in cases {
            assert_eq!(split_numbered(text, *max), *expected, "case {name}");
        }
    }

    #[test]
    fn split_numbered_widens_for_ten_parts_or_more() {
        let text = "word ".repeat(60);
        let parts = split_numbered(&text, 20);
        assert!(parts.len() >= 10);
        let total = parts.len();
        for (index, part) in parts.iter().enumerate() {
            assert!(part.chars().count() <= 20, "{part:?}");
            assert!(
                part.ends_with(&format!(" ({}/{total})", index + 1)),
                "{part:?}"
            );
        }
    }

    #[test]
    fn chooser_out_of_range_means_greedy() {
        assert_eq!(
            split_with("alpha beta gamma", 11, |_| usize::MAX),
            split("alpha beta gamma", 11)
        );
    }

    #[test]
    fn chooser_sees_reserved_suffix() {
        let mut seen = Vec::new();
        let parts = split_numbered_with("alpha beta gamma delta", 17, |window| {
            seen.push((window.max_chars, window.suffix_chars));
            greedy(window)
        });
        assert_eq!(parts.len(), 2);
        assert_eq!(seen, [(11, 6)]);
    }

    #[test]
    fn truncated_window_keeps_its_first_breaks() {
        let mut lens = Vec::new();
        let _ = split_with("one two three four five six", 10, |window| {
            lens.push((window.breaks.len(), window.truncated(1).breaks.len()));
            lens.push((window.truncated(99).breaks.len(), 0));
            greedy(window)
        });
        assert_eq!(lens[..2], [(2, 1), (2, 0)]);
    }

    fn word() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                "[a-zA-Z0-9]{1,6}",
                Just("é".to_owned()),
                Just("e\u{301}".to_owned()),
                Just("👩‍💻".to_owned()),
                Just("🇵🇹".to_owned()),
                Just("日本".to_owned()),
                Just("’".to_owned()),
                Just(".".to_owned()),
                Just("!".to_owned()),
                Just("https://x.io/a?b=c".to_owned()),
            ],
            1..4,
        )
        .prop_map(|pieces| pieces.concat())
    }

    fn separator() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            6 => Just(" "),
            1 => Just("  "),
            1 => Just("\n"),
            1 => Just("\n\n"),
            1 => Just(". "),
            1 => Just("\r\n"),
            1 => Just("\u{a0}"),
        ]
    }

    fn prose() -> impl Strategy<Value = String> {
        prop::collection::vec((word(), separator()), 0..60).prop_map(|items| {
            items
                .into_iter()
                .map(|(word, sep)| format!("{word}{sep}"))
                .collect()
        })
    }

    fn offsets<'a>(text: &'a str, part: &'a str) -> (usize, usize) {
        let start = part.as_ptr() as usize - text.as_ptr() as usize;
        (start, start + part.len())
    }

    /// [`greedy`]'s rule visiting every one of `len` candidates in text order (so with
    /// growing characters), `candidate(index)` giving each one's kind and characters.
    fn pick(
        len: usize,
        max_chars: usize,
        candidate: impl Fn(usize) -> (BreakKind, usize),
    ) -> usize {
        let (mut second_half, mut high) = (0, len);
        while second_half < high {
            let middle = (second_half + high) / 2;
            if candidate(middle).1.saturating_mul(2) < max_chars {
                second_half = middle + 1;
            } else {
                high = middle;
            }
        }
        // Scanning from the end, the first break of a kind is its latest, and a paragraph break
        // cannot be beaten.
        let best_in = |range: Range<usize>| {
            let mut best: Option<(BreakKind, usize)> = None;
            for index in range.rev() {
                let (kind, _) = candidate(index);
                if best.is_none_or(|(found, _)| kind > found) {
                    best = Some((kind, index));
                    if kind == BreakKind::Paragraph {
                        break;
                    }
                }
            }
            best.map(|(_, index)| index)
        };
        best_in(second_half..len)
            .or_else(|| best_in(0..second_half))
            .unwrap_or(0)
    }

    /// The byte-at-a-time scan the block scan replaced, as a reference.
    fn reference_layout(text: &str) -> Layout<'_> {
        let (start, end) = bounds(text);
        let start_chars = text[..start].chars().count();
        let body = &text[start..end];
        let bytes = body.as_bytes();
        let mut gaps = Gaps::with_capacity(bytes.len() / 4);
        let mut chars = start_chars;
        let mut i = 0;
        while i < bytes.len() {
            // Printable ASCII is taken in runs; anything else is decoded to tell whitespace.
            loop {
                let run = i;
                while i < bytes.len() && bytes[i].is_ascii_graphic() {
                    i += 1;
                }
                chars += i - run;
                match char_at(body, i) {
                    Some(c) if !c.is_whitespace() => {
                        chars += 1;
                        i += c.len_utf8();
                    }
                    _ => break,
                }
            }
            if i >= bytes.len() {
                break;
            }
            let (next, newlines, run_chars) = whitespace_run(body, i);
            if next >= bytes.len() {
                break;
            }
            gaps.add(text, start, i..next, chars..chars + run_chars, newlines);
            chars += run_chars;
            i = next;
        }
        Layout {
            text,
            start,
            start_chars,
            end,
            end_chars: chars,
            gaps,
        }
    }

    #[test]
    fn word_stops_match_printable_ascii() {
        for byte in 0..=u8::MAX {
            for position in 0..8 {
                let word = u64::from(byte) << (8 * position)
                    | 0x6161_6161_6161_6161 & !(0xff << (8 * position));
                let expected = if byte.is_ascii_graphic() {
                    0
                } else {
                    1 << position
                };
                assert_eq!(word_stops(word), expected, "byte {byte:#04x} at {position}");
            }
        }
    }

    proptest! {
        #[test]
        fn split_keeps_limits_and_text(text in prose(), max in 1usize..80) {
            let parts = split(&text, max);
            for part in &parts {
                prop_assert!(part.chars().count() <= max, "{part:?} over {max}");
                prop_assert!(!part.is_empty());
            }
            prop_assert_eq!(non_whitespace(&parts.concat()), non_whitespace(&text));
        }

        #[test]
        fn split_never_cuts_a_word_that_fits(text in prose(), extra in 0usize..60) {
            let words: Vec<&str> = text.split_whitespace().collect();
            let longest = words.iter().map(|w| w.chars().count()).max().unwrap_or(0);
            let max = (longest + extra).max(1);
            let parts = split(&text, max);
            let cut: Vec<&str> = parts.iter().flat_map(|p| p.split_whitespace()).collect();
            prop_assert_eq!(cut, words);
        }

        #[test]
        fn split_never_splits_a_grapheme(text in prose(), max in 1usize..80) {
            let clusters_fit = text.graphemes(true).all(|g| g.chars().count() <= max);
            prop_assume!(clusters_fit);
            let boundaries: Vec<usize> = text
                .grapheme_indices(true)
                .map(|(i, _)| i)
                .chain([text.len()])
                .collect();
            for part in parts(&text, max, 0, greedy) {
                let (start, end) = offsets(&text, part);
                prop_assert!(boundaries.binary_search(&start).is_ok(), "start {start} of {part:?}");
                prop_assert!(boundaries.binary_search(&end).is_ok(), "end {end} of {part:?}");
            }
        }

        #[test]
        fn block_scan_finds_the_gaps_a_byte_scan_finds(text in prose(), noise in any::<String>()) {
            for text in [text.as_str(), noise.as_str(), &format!("{text}{noise}{text}")] {
                let (fast, slow) = (Layout::new(text), reference_layout(text));
                prop_assert_eq!(format!("{fast:?}"), format!("{slow:?}"));
            }
        }

        #[test]
        fn greedy_looks_up_what_visiting_every_break_finds(text in prose(), max in 1usize..80) {
            let mut mismatches = Vec::new();
            let _ = split_with(&text, max, |window| {
                for len in 1..=window.breaks.len() {
                    let window = window.truncated(len);
                    let breaks = window.breaks;
                    let visited =
                        pick(len, window.max_chars, |i| (breaks[i].kind, breaks[i].chars));
                    if greedy(&window) != visited {
                        mismatches.push((window.rest.to_owned(), len));
                    }
                }
                greedy(window)
            });
            prop_assert!(mismatches.is_empty(), "{mismatches:?}");
        }

        #[test]
        fn greedy_after_matches_splitting_the_rest(text in prose(), max in 1usize..80) {
            let mut mismatches = Vec::new();
            let mut part = 0;
            let _ = split_with(&text, max, |window| {
                // Every part but the last is chosen, so this window is part number `part`.
                let here = window.start_chars();
                for index in 0..window.breaks.len() {
                    let after: Vec<&str> = window
                        .greedy_after(index)
                        .map(|(range, chars)| {
                            let part = &window.rest[range.clone()];
                            assert_eq!(part.chars().count(), chars.len());
                            assert_eq!(window.rest[..range.start].chars().count(), chars.start);
                            part
                        })
                        .collect();
                    // The same text split again, cut here at `index` and greedily elsewhere
                    // (the text before a cut can decide a break's kind, so the rest is not
                    // split on its own).
                    let whole = split_with(&text, max, |other| {
                        if other.start_chars() == here { index } else { greedy(other) }
                    });
                    let expected = whole.get(part + 1..).unwrap_or_default();
                    if after != expected {
                        mismatches.push((after.join("|"), expected.join("|")));
                    }
                }
                part += 1;
                let before = &text[..text.len() - window.rest.len()];
                if window.start_chars() != before.chars().count() {
                    mismatches.push(("start_chars".to_owned(), before.to_owned()));
                }
                if window.greedy_after(window.breaks.len()).count() != 0 {
                    mismatches.push(("past the last break".to_owned(), String::new()));
                }
                greedy(window)
            });
            prop_assert!(mismatches.is_empty(), "{mismatches:?}");
        }

        #[test]
        fn split_handles_any_text(text in any::<String>(), max in 1usize..40) {
            let parts = split(&text, max);
            for part in &parts {
                prop_assert!(part.chars().count() <= max);
            }
            prop_assert_eq!(non_whitespace(&parts.concat()), non_whitespace(&text));
        }

        #[test]
        fn split_numbered_keeps_limits_and_text(text in prose(), max in 1usize..80) {
            let parts = split_numbered(&text, max);
            let total = parts.len();
            let mut bodies = String::new();
            for (index, part) in parts.iter().enumerate() {
                prop_assert!(part.chars().count() <= max, "{part:?} over {max}");
                let body = if total > 1 && part.ends_with(&format!(" ({}/{total})", index + 1)) {
                    strip_suffix(part)
                } else {
                    part.as_str()
                };
                bodies.push_str(body);
            }
            prop_assert_eq!(non_whitespace(&bodies), non_whitespace(&text));
        }

        #[test]
        fn markdown_to_plain_never_panics(text in any::<String>()) {
            let _ = markdown_to_plain(&text);
        }

        #[test]
        fn markdown_to_plain_never_panics_on_markdown_syntax(
            text in "[-*_`#>!\\[\\]()<>|~\\\\ \na-z0-9:/.]{0,200}"
        ) {
            let _ = markdown_to_plain(&text);
        }

        #[test]
        fn markdown_to_plain_keeps_every_link_url(
            blocks in prop::collection::vec(
                (
                    prop_oneof![Just(""), Just("# "), Just("- "), Just("1. "), Just("> "), Just("| a | ")],
                    "[a-z ]{0,12}",
                    prop_oneof![Just(""), Just("**"), Just("*"), Just("`"), Just("~~")],
                    "[a-zA-Z ]{0,10}",
                    prop_oneof![
                        "https://[a-z]{1,8}\\.com/[a-z0-9_.?=&%-]{0,20}",
                        "mailto:[a-z]{1,5}@[a-z]{1,5}\\.org",
                        "[a-z]{1,8}\\.html",
                    ],
                    prop_oneof![Just("link"), Just("image"), Just("auto"), Just("same")],
                ),
                1..8,
            )
        ) {
            let mut markdown = String::new();
            for (prefix, before, emphasis, label, url, shape) in &blocks {
                let link = match *shape {
                    "link" => format!("[{emphasis}{label}{emphasis}]({url})"),
                    "image" => format!("![{label}]({url})"),
                    "auto" if url.contains("://") => format!("<{url}>"),
                    _ => format!("[{url}]({url})"),
                };
                markdown.push_str(&format!("{prefix}{before} {link} tail\n\n"));
            }
            let mut options = Options::empty();
            options.insert(Options::ENABLE_TABLES);
            options.insert(Options::ENABLE_STRIKETHROUGH);
            let urls: Vec<String> = Parser::new_ext(&markdown, options)
                .filter_map(|event| match event {
                    Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                        Some(dest_url.into_string())
                    }
                    _ => None,
                })
                .collect();
            let plain = markdown_to_plain(&markdown);
            let squeezed = non_whitespace(&plain);
            for url in &urls {
                let bare = url.strip_prefix("mailto:").unwrap_or(url);
                prop_assert!(
                    squeezed.contains(&non_whitespace(bare)),
                    "{url:?} missing from {plain:?} (markdown {markdown:?})"
                );
            }
        }
    }
}
