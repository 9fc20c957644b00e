//! `ADDING_A_PLATFORM.md` stays true: every Rust or TOML block that names a file is quoted
//! verbatim from it, and every other Rust block is a doc-test of this crate (compiled through
//! the `include_str!` in `lib.rs`).
use std::path::Path;

/// The workspace root.
fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// A fenced block of the guide: its info string, its lines, and the line it starts on.
struct Block {
    info: String,
    lines: Vec<String>,
    line: usize,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (number, line) in markdown.lines().enumerate() {
        match (open.take(), line.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block {
                    info: info.trim().to_string(),
                    lines: Vec::new(),
                    line: number + 1,
                })
            }
            (None, None) => {}
            (Some(block), Some("")) => blocks.push(block),
            (Some(mut block), _) => {
                block.lines.push(line.to_string());
                open = Some(block);
            }
        }
    }
    assert!(open.is_none(), "a code block is never closed");
    blocks
}

#[test]
fn quotations_match_their_files_and_other_rust_blocks_are_doc_tests() {
    let guide = std::fs::read_to_string(root().join("ADDING_A_PLATFORM.md"))
        .expect("ADDING_A_PLATFORM.md at the workspace root");
    let mut quoted = 0;
    let mut compiled = 0;
    for block in blocks(&guide) {
        let at = format!("ADDING_A_PLATFORM.md:{}", block.line);
        let first = block.lines.first().map(String::as_str).unwrap_or_default();
        let source = match block.info.as_str() {
            "rs" => first.strip_prefix("// "),
            "toml" => first.strip_prefix("# "),
            "rust" => {
                compiled += 1;
                continue;
            }
            "text" | "sh" => continue,
            other => {
                panic!(
                    "{at}: a block marked {other:?}; use rust, rs (a quotation), toml, text or sh"
                )
            }
        };
        let Some(path) = source else {
            panic!("{at}: a quoted block must start by naming its file");
        };
        let text = std::fs::read_to_string(root().join(path))
            .unwrap_or_else(|err| panic!("{at}: cannot read {path}: {err}"));
        let quotation = block.lines[1..].join("\n");
        assert!(
            text.contains(&quotation),
            "{at}: no longer matches {path}; update the guide:\n{quotation}"
        );
        quoted += 1;
    }
    assert!(quoted >= 20, "only {quoted} quotations found");
    assert!(compiled >= 1, "no compiled example found");
}
