//! The Markdown layout: [`render_markdown`] and its [`MarkdownWriter`], which lays blocks,
//! lists, quotes and tables out as lines and tells a [`Styler`] where styles, links and code are.
use std::fmt::Write as _;

use pulldown_cmark::{CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd};

#[cfg(doc)]
use super::markdown_to_plain;

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
    pub(super) out: String,
    pending: Separator,
    at_line_start: bool,
    containers: Vec<Container>,
    marker: Option<Marker>,
    cell: usize,
    pub(super) styler: S,
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
