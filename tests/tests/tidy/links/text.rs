//! Text scanning for the link checks: markdown links and headings (with GitHub's anchors),
//! `*.md` paths named in any text, and the quoted section name that may follow one.
use std::collections::HashMap;

/// Link targets of inline links and reference definitions, with their 1-based line numbers,
/// outside fenced code blocks and inline code.
pub(super) fn markdown_links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (line_no, line) in prose_lines(text) {
        let prose = without_inline_code(line);
        let mut rest = prose.as_str();
        while let Some(start) = rest.find("](") {
            rest = &rest[start + 2..];
            let target = match rest.strip_prefix('<') {
                Some(inner) => inner.split('>').next().unwrap_or(""),
                None => rest.split([')', ' ', '\t']).next().unwrap_or(""),
            };
            out.push((line_no, target.to_owned()));
        }
        let trimmed = prose.trim_start();
        if trimmed.starts_with('[')
            && !trimmed.starts_with("[[")
            && let Some((_, after)) = trimmed.split_once("]:")
            && let Some(target) = after.split_whitespace().next()
        {
            out.push((line_no, target.trim_matches(['<', '>']).to_owned()));
        }
    }
    out
}

/// Lines outside fenced code blocks, numbered from 1.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
        } else if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

fn without_inline_code(line: &str) -> String {
    line.split('`').step_by(2).collect::<Vec<_>>().join(" ")
}

/// ATX headings (`#` … `######`) outside fenced code, without the markers and backticks.
pub(super) fn headings(text: &str) -> Vec<String> {
    prose_lines(text)
        .into_iter()
        .filter_map(|(_, line)| {
            let hashes = line.chars().take_while(|&c| c == '#').count();
            let rest = line.get(hashes..)?;
            ((1..=6).contains(&hashes) && rest.starts_with(' '))
                .then(|| rest.trim().trim_end_matches('#').trim().replace('`', ""))
        })
        .collect()
}

/// GitHub's anchors: lowercase; letters, digits, `-` and `_` kept; spaces become `-`;
/// everything else dropped; a repeated slug gets `-1`, `-2`, ….
pub(super) fn heading_slugs(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for heading in headings(text) {
        let slug = github_slug(&heading);
        let count = seen.entry(slug.clone()).or_insert(0);
        out.push(if *count == 0 {
            slug.clone()
        } else {
            format!("{slug}-{count}")
        });
        *count += 1;
    }
    out
}

fn github_slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

#[derive(Debug)]
pub(super) struct Mention {
    pub(super) path: String,
    /// Byte offset just past the path, where a quoted section may follow.
    pub(super) end: usize,
}

pub(super) fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')
}

/// Relative `*.md` paths named in `text`, with their line numbers. A path starting with `/`
/// (absolute, or part of a URL) and a bare `.md` (an extension, not a file) are left out.
pub(super) fn md_mentions(text: &str) -> Vec<(usize, Mention)> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices(".md") {
        let end = at + 3;
        if text[end..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            continue;
        }
        let start = text[..at]
            .char_indices()
            .rev()
            .find(|&(_, c)| !is_path_char(c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let path = &text[start..end];
        if path.starts_with('/') || path == ".md" {
            continue;
        }
        let line_no = text[..at].matches('\n').count() + 1;
        out.push((
            line_no,
            Mention {
                path: path.to_owned(),
                end,
            },
        ));
    }
    out
}

/// A quoted section name right after `at` (skipping spaces, newlines, `,` and `(`). A quote
/// right at `at` closes a string literal the name sat in, so it starts nothing.
pub(super) fn quoted_after(text: &str, at: usize) -> Option<&str> {
    if text[at..].starts_with('"') {
        return None;
    }
    let rest = text[at..].trim_start_matches([' ', '\n', ',', '(']);
    let inner = rest.strip_prefix('"')?;
    let close = inner.find('"')?;
    let name = &inner[..close];
    (!name.is_empty() && name.len() <= 80 && !name.contains('\n')).then_some(name)
}

#[test]
fn scanning_follows_github_and_markdown() {
    let cases = [
        ("Quick start", "quick-start"),
        (
            "Dev CA, upstream mTLS and `connect`",
            "dev-ca-upstream-mtls-and-connect",
        ),
        (
            "SVIDs and bundles from SPIRE (the SPIFFE Workload API)",
            "svids-and-bundles-from-spire-the-spiffe-workload-api",
        ),
        (
            "Decisions that differ from the planned shape (docs/STYLE.md)",
            "decisions-that-differ-from-the-planned-shape-docsstylemd",
        ),
        ("Against the targets", "against-the-targets"),
        ("snake_case — and dashes", "snake_case--and-dashes"),
    ];
    for (heading, slug) in cases {
        assert_eq!(github_slug(heading), slug, "{heading}");
    }
    let links = markdown_links("[a](README.md#status) `[b](not-a-link)`\n```\n[c](in-a-fence)\n```\n[d]: docs\n");
    assert_eq!(links, vec![(1, "README.md#status".to_owned()), (5, "docs".to_owned())]);
    let mentions: Vec<String> = md_mentions("see docs/THREATS.md, `README.md`; /abs/x.md; \".md\" a.mdx")
        .into_iter()
        .map(|(_, m)| m.path)
        .collect();
    assert_eq!(mentions, ["docs/THREATS.md", "README.md"]);
}
