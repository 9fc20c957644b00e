//! Every crate under `platforms/` has the shape section 2 of `ADDING_A_PLATFORM.md` writes down:
//! the file-per-role table and the table of each crate's extra files are read from the page, so
//! that the page and the crates cannot drift apart.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The workspace root.
fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// When a crate must have a role's file.
#[derive(Debug)]
enum Required {
    /// Always.
    Yes,
    /// When the platform has one.
    Optional,
    /// At least one of these files.
    OneOf(Vec<String>),
    /// Exactly when it has this other file.
    With(String),
}

/// One row of the file-per-role table.
#[derive(Debug)]
struct Role {
    file: String,
    required: Required,
    /// Text only this file of a crate contains, when the role has something checkable.
    holds: Option<String>,
}

/// The text of every `code span` in a cell.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The tables of section 2, each as its header and its rows of cells.
fn tables(guide: &str) -> Vec<(Vec<String>, Vec<Vec<String>>)> {
    let section = guide
        .split("\n## ")
        .find(|section| section.starts_with("2. Crate layout"))
        .expect("ADDING_A_PLATFORM.md has a section \"2. Crate layout\"");
    let mut tables = Vec::new();
    let mut lines = section.lines().peekable();
    while let Some(line) = lines.next() {
        if !line.starts_with('|') {
            continue;
        }
        let cells = |line: &str| -> Vec<String> {
            line.trim()
                .trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().to_string())
                .collect()
        };
        let header = cells(line);
        let mut rows = Vec::new();
        while let Some(row) = lines.next_if(|line| line.starts_with('|')) {
            if !row.starts_with("| ---") {
                rows.push(cells(row));
            }
        }
        tables.push((header, rows));
    }
    tables
}

fn table(guide: &str, first_column: &str) -> Vec<Vec<String>> {
    tables(guide)
        .into_iter()
        .find(|(header, _)| header.first().map(String::as_str) == Some(first_column))
        .unwrap_or_else(|| panic!("section 2 has no table whose first column is {first_column:?}"))
        .1
}

fn roles(guide: &str) -> Vec<Role> {
    table(guide, "File")
        .into_iter()
        .map(|row| {
            let [file, _role, required, holds] = row.as_slice() else {
                panic!("a row of the file table has not four cells: {row:?}");
            };
            let file = code_spans(file)
                .pop()
                .unwrap_or_else(|| panic!("a row of the file table names no file: {row:?}"));
            let required = match required.as_str() {
                "yes" => Required::Yes,
                "when the platform has one" => Required::Optional,
                other if other.starts_with("at least one of ") => {
                    Required::OneOf(code_spans(other))
                }
                other if other.starts_with("with ") => Required::With(
                    code_spans(other)
                        .pop()
                        .unwrap_or_else(|| panic!("{file}: \"with\" names no file")),
                ),
                other => panic!("{file}: unknown requirement {other:?}"),
            };
            Role {
                file,
                required,
                holds: code_spans(holds).pop(),
            }
        })
        .collect()
}

/// Each crate's extra files, by the crate's folder under `platforms/`.
fn extras(guide: &str) -> BTreeMap<String, Vec<String>> {
    table(guide, "Crate")
        .into_iter()
        .map(|row| {
            let [name, files] = row.as_slice() else {
                panic!("a row of the extras table has not two cells: {row:?}");
            };
            let name = code_spans(name)
                .pop()
                .unwrap_or_else(|| panic!("a row of the extras table names no crate: {row:?}"));
            let files = code_spans(files)
                .into_iter()
                .filter(|file| file.ends_with(".rs") || file.ends_with('/'))
                .collect();
            (name, files)
        })
        .collect()
}

/// The paths in `dir` and their names, sorted by name.
fn listing(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut listing: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a listed entry can be read").path();
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .expect("a file named in UTF-8")
                .to_string();
            (name, path)
        })
        .collect();
    listing.sort();
    listing
}

/// The platform crates: the folders under `platforms/` with a manifest.
fn crates() -> Vec<(String, PathBuf)> {
    listing(&root().join("platforms"))
        .into_iter()
        .filter(|(_, path)| path.join("Cargo.toml").is_file())
        .collect()
}

/// What `src/` holds: `file.rs`, or `folder/`.
fn entries(src: &Path) -> Vec<String> {
    listing(src)
        .into_iter()
        .map(|(name, path)| if path.is_dir() { name + "/" } else { name })
        .collect()
}

/// Every Rust file below `dir`, by its path relative to `src`.
fn sources(src: &Path, dir: &Path, found: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("src/ can be listed") {
        let path = entry.expect("src/ can be listed").path();
        if path.is_dir() {
            sources(src, &path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let relative = path
                .strip_prefix(src)
                .expect("below src/")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
            found.push((relative, text));
        }
    }
}

#[test]
fn every_platform_crate_has_one_file_per_role() {
    let guide = std::fs::read_to_string(root().join("ADDING_A_PLATFORM.md"))
        .expect("ADDING_A_PLATFORM.md at the workspace root");
    let roles = roles(&guide);
    let extras = extras(&guide);
    assert!(
        roles.len() >= 10,
        "only {} roles read: {roles:?}",
        roles.len()
    );
    let crates = crates();
    assert!(
        crates.len() >= 4,
        "only {} platform crates found",
        crates.len()
    );
    let names: Vec<&String> = crates.iter().map(|(name, _)| name).collect();
    assert_eq!(
        extras.keys().collect::<Vec<_>>(),
        names,
        "the table of extras has one row for each crate under platforms/"
    );
    let mut problems = Vec::new();
    for (name, path) in &crates {
        let src = path.join("src");
        let present = entries(&src);
        let has = |file: &str| present.iter().any(|entry| entry == file);
        let own = &extras[name];
        for entry in &present {
            if !roles.iter().any(|role| &role.file == entry) && !own.contains(entry) {
                problems.push(format!(
                    "{name}: src/{entry} is neither a role of the file table nor an extra of {name}"
                ));
            }
        }
        for extra in own {
            if !has(extra) {
                problems.push(format!("{name}: the extra src/{extra} does not exist"));
            }
        }
        let mut files = Vec::new();
        sources(&src, &src, &mut files);
        for role in &roles {
            let file = &role.file;
            let problem = match &role.required {
                Required::Yes if !has(file) => Some(format!("src/{file} is missing")),
                Required::OneOf(any) if !any.iter().any(|one| has(one)) => {
                    Some(format!("none of {any:?} is in src/"))
                }
                Required::With(other) if has(file) != has(other) => Some(format!(
                    "src/{file} and src/{other} go together: both or neither"
                )),
                _ => None,
            };
            if let Some(problem) = problem {
                problems.push(format!("{name}: {problem}"));
            }
            let Some(holds) = &role.holds else { continue };
            for (file, text) in &files {
                let here = file == &role.file;
                if here && !text.contains(holds.as_str()) {
                    problems.push(format!("{name}: src/{file} does not hold {holds:?}"));
                }
                if !here && text.contains(holds.as_str()) {
                    problems.push(format!(
                        "{name}: src/{file} holds {holds:?}, which belongs in src/{}",
                        role.file
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the platform crates and section 2 of ADDING_A_PLATFORM.md disagree:\n{}",
        problems.join("\n")
    );
}
