//! Arrows point down: reads every `src/**/*.rs`, extracts the crate-internal paths each file
//! names (`crate::…`, `super::…` climbing into another top-level module, and in the binary
//! `voipsensor::…`), and fails on an import from a lower layer into a higher one and on any
//! cycle between top-level modules. Test code (`#[cfg(test)]`) counts like any other.
//!
//! The layers, bottom up (a module may import its own layer's modules only where stated):
//! - 0 `table`: the fixed-capacity table;
//! - 1 `wire`, `sip`, `rtp`: parsers on top of `table`, independent of each other (today's
//!   graph: `wire` → `table`; `sip` and `rtp` import nothing else in the crate);
//! - 2 `track`: the sans-IO tracker;
//! - 3 the edges: `capture`, `publish`, `fixture`, `policy`, `report`, `network` (they may use
//!   each other as long as there is no cycle);
//! - 4 `config`: on top of the layers it configures; only `cli` and `main.rs` import it;
//! - 5 `cli` and `main.rs`: the binary.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Layer of each top-level module; a module missing here fails the test (give it a layer).
const LAYERS: &[(&str, u8)] = &[
    ("table", 0),
    ("wire", 1),
    ("sip", 1),
    ("rtp", 1),
    ("track", 2),
    ("capture", 3),
    ("publish", 3),
    ("fixture", 3),
    ("policy", 3),
    ("report", 3),
    ("network", 3),
    ("config", 4),
    ("cli", 5),
    ("main", 5),
];

/// Same-layer imports allowed below the edges (the edges may import each other freely).
const SAME_LAYER_ALLOWED: &[(&str, &str)] = &[];

/// Highest layer whose same-layer imports are free (the edges).
const EDGES: u8 = 3;

fn layer(m: &str) -> Option<u8> {
    LAYERS.iter().find(|(n, _)| *n == m).map(|(_, l)| *l)
}

/// One crate-internal path: file, line, importing and imported top-level modules.
#[derive(Debug)]
struct Import {
    file: String,
    line: usize,
    from: String,
    to: String,
}

impl std::fmt::Display for Import {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {} -> {}",
            self.file, self.line, self.from, self.to
        )
    }
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `text` with comments, string and char literals blanked (newlines kept, for line numbers).
fn code_only(text: &str) -> Vec<char> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::with_capacity(c.len());
    let blank = |out: &mut Vec<char>, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let at = |j: usize| c.get(j).copied().unwrap_or('\0');
        if at(i) == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if at(i) == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    blank(&mut out, c[i]);
                    i += 1;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    blank(&mut out, c[i]);
                    i += 1;
                    if depth == 0 {
                        blank(&mut out, c[i]);
                        i += 1;
                        break;
                    }
                }
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if at(i) == 'r'
            && (at(i + 1) == '"' || (at(i + 1) == '#' && (at(i + 2) == '"' || at(i + 2) == '#')))
            && !(i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_'))
        {
            // Raw string r#"…"#: ends at a quote followed by as many hashes.
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            j += 1;
            while j < c.len() && !(c[j] == '"' && (1..=hashes).all(|h| c.get(j + h) == Some(&'#')))
            {
                j += 1;
            }
            let end = (j + 1 + hashes).min(c.len());
            for &ch in &c[i..end] {
                blank(&mut out, ch);
            }
            i = end;
        } else if at(i) == '"' {
            blank(&mut out, c[i]);
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            if i < c.len() {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if at(i) == '\'' && (at(i + 1) == '\\' || at(i + 2) == '\'') {
            // A char literal ('x', '\n', '\u{..}'); a lifetime ('a) has no closing quote.
            let mut j = i + 1;
            if c[j] == '\\' {
                j += 2;
            } else {
                j += 1;
            }
            while j < c.len() && c[j] != '\'' {
                j += 1;
            }
            let end = (j + 1).min(c.len());
            for &ch in &c[i..end] {
                blank(&mut out, ch);
            }
            i = end;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    Path, // `::`
    Open,
    Close,
    Comma,
    Dollar,
    Other,
}

fn tokens(code: &[char]) -> Vec<(Tok, usize)> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < code.len() {
        let ch = code[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphabetic() || ch == '_' {
            let s = i;
            while i < code.len() && (code[i].is_alphanumeric() || code[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(code[s..i].iter().collect()), line));
        } else if ch == ':' && code.get(i + 1) == Some(&':') {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            out.push((
                match ch {
                    '{' => Tok::Open,
                    '}' => Tok::Close,
                    ',' => Tok::Comma,
                    '$' => Tok::Dollar,
                    _ => Tok::Other,
                },
                line,
            ));
            i += 1;
        }
    }
    out
}

/// First path segment of each entry of the `{…}` group opening at `t[i]`.
fn group_heads(t: &[(Tok, usize)], mut i: usize) -> Vec<(String, usize)> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expect = true;
    while i < t.len() {
        match &t[i].0 {
            Tok::Open => {
                depth += 1;
                expect = depth == 1;
            }
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Tok::Comma if depth == 1 => expect = true,
            Tok::Ident(s) if expect && depth == 1 => {
                heads.push((s.clone(), t[i].1));
                expect = false;
            }
            _ => {}
        }
        i += 1;
    }
    heads
}

/// The crate-internal paths of one file whose module path is `module` (`[]` for a crate root),
/// in the library (`bin == false`) or in the binary.
fn imports(file: &str, text: &str, module: &[String], bin: bool) -> Vec<Import> {
    let top_of = |path: &[String]| -> String {
        match path.first() {
            Some(m) => m.clone(),
            None if bin => "main".into(),
            None => "lib".into(),
        }
    };
    let me = top_of(module);
    let t = tokens(&code_only(text));
    let mut out = Vec::new();
    // Inline `mod name {` blocks: (name, brace depth at which it closes).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < t.len() {
        match &t[i].0 {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth -= 1;
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(k) if k == "mod" => {
                if let (Some((Tok::Ident(name), _)), Some((Tok::Open, _))) =
                    (t.get(i + 1), t.get(i + 2))
                {
                    inline.push((name.clone(), depth));
                }
            }
            Tok::Ident(root)
                if (root == "crate" || root == "super" || (bin && root == "voipsensor"))
                    && t.get(i + 1).is_some_and(|x| x.0 == Tok::Path)
                    && !(i > 0 && (t[i - 1].0 == Tok::Dollar || t[i - 1].0 == Tok::Path)) =>
            {
                let line = t[i].1;
                // Resolve the path's base module and the index of its next segment.
                let mut base: Vec<String> = match root.as_str() {
                    "super" => {
                        let mut here: Vec<String> = module.to_vec();
                        here.extend(inline.iter().map(|(n, _)| n.clone()));
                        let mut j = i;
                        while matches!(&t[j].0, Tok::Ident(s) if s == "super")
                            && t.get(j + 1).is_some_and(|x| x.0 == Tok::Path)
                        {
                            here.pop();
                            j += 2;
                        }
                        i = j;
                        here
                    }
                    _ => {
                        i += 2;
                        Vec::new()
                    }
                };
                let lib_root = root == "voipsensor";
                let targets: Vec<(String, usize)> = if !base.is_empty() {
                    vec![(base.remove(0), line)]
                } else {
                    match t.get(i) {
                        Some((Tok::Ident(s), l)) => vec![(s.clone(), *l)],
                        Some((Tok::Open, _)) => group_heads(&t, i),
                        _ => Vec::new(),
                    }
                };
                for (to, l) in targets {
                    // In the binary, `crate::x` is `cli` or an item of `main.rs`.
                    let to = if bin && !lib_root {
                        if to == "cli" { to } else { "main".into() }
                    } else if layer(&to).is_some() || to == "self" {
                        to
                    } else {
                        // An item of the crate root (lib.rs), not a module.
                        continue;
                    };
                    let to = if to == "self" { me.clone() } else { to };
                    if to != me {
                        out.push(Import {
                            file: file.into(),
                            line: l,
                            from: me.clone(),
                            to,
                        });
                    }
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn all_imports() -> (Vec<Import>, Vec<String>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    files.sort();
    let mut all = Vec::new();
    let mut tops = Vec::new();
    for f in &files {
        let rel: Vec<String> = f
            .strip_prefix(&src)
            .unwrap()
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        let bin = rel[0] == "main.rs" || rel[0] == "cli";
        let mut module: Vec<String> = rel
            .iter()
            .map(|s| s.trim_end_matches(".rs").to_string())
            .collect();
        if matches!(
            module.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            module.pop();
        }
        let top = match module.first() {
            Some(m) => m.clone(),
            None if bin => "main".into(),
            None => "lib".into(),
        };
        if top != "lib" && !tops.contains(&top) {
            tops.push(top);
        }
        let text = std::fs::read_to_string(f).unwrap();
        let name = format!("src/{}", rel.join("/"));
        all.extend(imports(&name, &text, &module, bin));
    }
    (all, tops)
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, Vec<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, Vec<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: Vec<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut T<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on.push(v);
        for w in s.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on.contains(&w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.retain(|x| *x != w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = T {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: Vec::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

fn graph_of(imports: &[Import]) -> BTreeMap<String, Vec<String>> {
    let mut g: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in imports {
        let e = g.entry(i.from.clone()).or_default();
        if !e.contains(&i.to) {
            e.push(i.to.clone());
        }
        g.entry(i.to.clone()).or_default();
    }
    g
}

/// Why `i` breaks the layering, if it does.
fn violation(i: &Import) -> Option<String> {
    let (from, to) = (layer(&i.from)?, layer(&i.to)?);
    if i.to == "config" && i.from != "cli" && i.from != "main" {
        return Some("config is on top: only cli and main.rs import it".into());
    }
    if to > from {
        return Some(format!("layer {from} imports layer {to}"));
    }
    if to == from && from < EDGES && !SAME_LAYER_ALLOWED.contains(&(i.from.as_str(), i.to.as_str()))
    {
        return Some(format!(
            "layer {from} modules are independent of each other"
        ));
    }
    None
}

#[test]
fn every_top_level_module_has_a_layer() {
    let (_, tops) = all_imports();
    let missing: Vec<_> = tops.iter().filter(|m| layer(m).is_none()).collect();
    assert!(
        missing.is_empty(),
        "give these modules a layer in LAYERS: {missing:?}"
    );
}

#[test]
fn no_module_imports_a_higher_layer_and_only_the_binary_imports_config() {
    let (all, _) = all_imports();
    assert!(
        all.iter().any(|i| i.from == "track" && i.to == "wire"),
        "the import scan found nothing: {all:?}"
    );
    let bad: Vec<String> = all
        .iter()
        .filter_map(|i| violation(i).map(|why| format!("  {i}  ({why})")))
        .collect();
    assert!(
        bad.is_empty(),
        "{} import(s) point up:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn there_is_no_cycle_between_top_level_modules() {
    let (all, _) = all_imports();
    let found = cycles(&graph_of(&all));
    let detail: Vec<String> = found
        .iter()
        .map(|c| {
            let edges: Vec<String> = all
                .iter()
                .filter(|i| c.contains(&i.from) && c.contains(&i.to))
                .map(|i| format!("    {i}"))
                .collect();
            format!("  cycle {c:?}:\n{}", edges.join("\n"))
        })
        .collect();
    assert!(found.is_empty(), "module cycles:\n{}", detail.join("\n"));
}

#[test]
fn the_scanner_resolves_crate_super_groups_and_skips_comments_and_strings() {
    let text = r#"
use crate::{wire::link, table::{self, Table}};
use super::super::rtp::packet; // crate::publish in a comment
/* crate::config in a block comment */
const S: &str = "crate::capture in a string";
fn f<'a>(x: &'a u8) -> char { let _ = crate::track::event::Ts; '{' }
mod tests {
    use super::*;
    use super::super::super::sip::text;
}
"#;
    let module = ["track".to_string(), "media".to_string()];
    let found: Vec<(String, usize)> = imports("x.rs", text, &module, false)
        .into_iter()
        .map(|i| (i.to, i.line))
        .collect();
    assert_eq!(
        found,
        [
            ("wire".to_string(), 2),
            ("table".to_string(), 2),
            ("rtp".to_string(), 3),
            ("sip".to_string(), 9),
        ]
    );
    let g = graph_of(&[
        Import {
            file: "a".into(),
            line: 1,
            from: "a".into(),
            to: "b".into(),
        },
        Import {
            file: "b".into(),
            line: 2,
            from: "b".into(),
            to: "c".into(),
        },
        Import {
            file: "c".into(),
            line: 3,
            from: "c".into(),
            to: "a".into(),
        },
        Import {
            file: "c".into(),
            line: 4,
            from: "c".into(),
            to: "d".into(),
        },
    ]);
    assert_eq!(cycles(&g), [["a", "b", "c"]]);
}
