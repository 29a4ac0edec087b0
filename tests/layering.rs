//! Arrows point down: reads every `src/**/*.rs`, extracts the crate-internal paths each file
//! names (`crate::…`, `super::…` climbing into another top-level module, and in the binary
//! `voipsensor::…`), and fails on an import from a lower layer into a higher one and on any
//! cycle between top-level modules. Test code (`#[cfg(test)]`) counts like any other.
//!
//! The layers, bottom up (a module may import its own layer's modules only where stated):
//! - 0 `table`: the fixed-capacity table; `timer_wheel`: its per-second timers; `view`: the constructors of the parsers' views;
//! - 1 `wire`, `sip`, `rtp`: parsers on top of `table`, independent of each other (today's
//!   graph: `wire` → `table`, `view`; `rtp` → `view`; `sip` imports nothing else in the crate);
//! - 2 `track`: the sans-IO tracker;
//! - 3 the edges: `capture`, `publish`, `fixture`, `policy`, `report`, `network` (they may use
//!   each other as long as there is no cycle);
//! - 4 `config`: on top of the layers it configures; only `cli` and `main.rs` import it;
//! - 5 `cli` and `main.rs`: the binary.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layer of each top-level module; a module missing here fails the test (give it a layer).
const LAYERS: &[(&str, u8)] = &[
    ("table", 0),
    ("timer_wheel", 0),
    ("view", 0),
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
    ("noc", 3),
    ("clock", 3),
    ("led", 3),
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
    /// Second path segments (`track::call`), for the check inside a top-level module; the
    /// segment may name an item rather than a module: callers check it against the files.
    from_sub: Option<String>,
    to_sub: Option<String>,
}

impl std::fmt::Display for Import {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sub = |m: &str, s: &Option<String>| match s {
            Some(s) if self.from == self.to => format!("{m}::{s}"),
            _ => m.to_string(),
        };
        write!(
            f,
            "{}:{}: {} -> {}",
            self.file,
            self.line,
            sub(&self.from, &self.from_sub),
            sub(&self.to, &self.to_sub)
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

/// Token index of the first segment of each entry of the `{…}` group opening at `t[i]`.
fn group_starts(t: &[(Tok, usize)], mut i: usize) -> Vec<usize> {
    let mut starts = Vec::new();
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
            Tok::Ident(_) if expect && depth == 1 => {
                starts.push(i);
                expect = false;
            }
            _ => {}
        }
        i += 1;
    }
    starts
}

/// The paths (up to `n` segments, each with its line) starting at `t[i]`: a segment chain,
/// `{…}` groups expanded.
fn paths_at(t: &[(Tok, usize)], i: usize, n: usize) -> Vec<(Vec<String>, usize)> {
    match t.get(i) {
        Some((Tok::Ident(s), l)) => {
            let mut rest = if n > 1 && t.get(i + 1).is_some_and(|x| x.0 == Tok::Path) {
                paths_at(t, i + 2, n - 1)
            } else {
                Vec::new()
            };
            if rest.is_empty() {
                rest.push((Vec::new(), *l));
            }
            rest.into_iter()
                .map(|(mut p, _)| {
                    p.insert(0, s.clone());
                    (p, *l)
                })
                .collect()
        }
        Some((Tok::Open, _)) => group_starts(t, i)
            .into_iter()
            .flat_map(|j| paths_at(t, j, n))
            .collect(),
        _ => Vec::new(),
    }
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
                // Resolve the path to (up to) its first two module segments.
                let lib_root = root == "voipsensor";
                let paths: Vec<(Vec<String>, usize)> = if root == "super" {
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
                    if here.len() >= 2 {
                        vec![(here[..2].to_vec(), line)]
                    } else {
                        let mut p: Vec<_> = paths_at(&t, i, 2 - here.len())
                            .into_iter()
                            .map(|(p, l)| ([here.clone(), p].concat(), l))
                            .collect();
                        if p.is_empty() {
                            p.push((here, line)); // `super::*`
                        }
                        p
                    }
                } else {
                    i += 2;
                    paths_at(&t, i, 2)
                };
                for (path, l) in paths {
                    let Some(first) = path.first() else { continue };
                    // In the binary, `crate::x` is `cli` or an item of `main.rs`.
                    let to = if bin && !lib_root {
                        if first == "cli" {
                            "cli".into()
                        } else {
                            "main".into()
                        }
                    } else if first == "self" {
                        me.clone()
                    } else if layer(first).is_some() {
                        first.clone()
                    } else {
                        // An item of the crate root (lib.rs), not a module.
                        continue;
                    };
                    out.push(Import {
                        file: file.into(),
                        line: l,
                        from: me.clone(),
                        to,
                        from_sub: module.get(1).cloned(),
                        to_sub: path.get(1).cloned(),
                    });
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Every import of `src/`, the top-level modules, and the (module, submodule) pairs that
/// are files (`track/call.rs`, `track/media/`).
type Scan = (Vec<Import>, Vec<String>, BTreeSet<(String, String)>);

fn all_imports() -> Scan {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    files.sort();
    let mut all = Vec::new();
    let mut tops = Vec::new();
    let mut subs = BTreeSet::new();
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
            tops.push(top.clone());
        }
        if let Some(sub) = module.get(1) {
            subs.insert((top, sub.clone()));
        }
        let text = std::fs::read_to_string(f).unwrap();
        let name = format!("src/{}", rel.join("/"));
        all.extend(imports(&name, &text, &module, bin));
    }
    (all, tops, subs)
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

fn graph_of(edges: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, Vec<String>> {
    let mut g: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (from, to) in edges {
        g.entry(to.clone()).or_default();
        let e = g.entry(from).or_default();
        if !e.contains(&to) {
            e.push(to);
        }
    }
    g
}

/// Imports between two top-level modules, as graph edges.
fn top_edges(all: &[Import]) -> impl Iterator<Item = (String, String)> + '_ {
    all.iter()
        .filter(|i| i.from != i.to)
        .map(|i| (i.from.clone(), i.to.clone()))
}

/// `module::a -> module::b` when `i` goes from one file (or folder) of a top-level module to
/// another of the same module.
fn sibling_edge(i: &Import, subs: &BTreeSet<(String, String)>) -> Option<(String, String)> {
    let (from, to) = (i.from_sub.as_ref()?, i.to_sub.as_ref()?);
    let known = |s: &String| subs.contains(&(i.from.clone(), s.clone()));
    (i.from == i.to && from != to && known(from) && known(to))
        .then(|| (format!("{}::{from}", i.from), format!("{}::{to}", i.to)))
}

/// Each cycle with the imports that make it, for the failure message.
fn describe(found: &[Vec<String>], edges: &[(String, String, &Import)]) -> String {
    found
        .iter()
        .map(|c| {
            let mut lines: Vec<String> = edges
                .iter()
                .filter(|(f, t, _)| c.contains(f) && c.contains(t))
                .map(|(_, _, i)| format!("    {i}"))
                .collect();
            lines.dedup();
            format!("  cycle {c:?}:\n{}", lines.join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Why `i` breaks the layering, if it does.
fn violation(i: &Import) -> Option<String> {
    if i.from == i.to {
        return None;
    }
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
    let (_, tops, _) = all_imports();
    let missing: Vec<_> = tops.iter().filter(|m| layer(m).is_none()).collect();
    assert!(
        missing.is_empty(),
        "give these modules a layer in LAYERS: {missing:?}"
    );
}

#[test]
fn no_module_imports_a_higher_layer_and_only_the_binary_imports_config() {
    let (all, _, _) = all_imports();
    assert!(
        all.iter().any(|i| i.from == "track" && i.to == "wire"),
        "the import scan found nothing: {all:?}"
    );
    let bad: Vec<String> = all
        .iter()
        .filter_map(|i| violation(i).map(|why| format!("  {i}  ({why})")))
        .collect();
    let mut bad = bad;
    bad.dedup(); // `use crate::x::{a, b}`: one line, one report
    assert!(
        bad.is_empty(),
        "{} import(s) point up:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn there_is_no_cycle_between_top_level_modules() {
    let (all, _, _) = all_imports();
    let found = cycles(&graph_of(top_edges(&all)));
    let edges: Vec<_> = all
        .iter()
        .filter(|i| i.from != i.to)
        .map(|i| (i.from.clone(), i.to.clone(), i))
        .collect();
    assert!(
        found.is_empty(),
        "module cycles:\n{}",
        describe(&found, &edges)
    );
}

/// Inside a top-level module the files point one way too (`track/call.rs` and
/// `track/media/` are peers the tracker drives, neither calls the other back).
#[test]
fn there_is_no_cycle_between_the_files_of_a_top_level_module() {
    let (all, _, subs) = all_imports();
    let edges: Vec<_> = all
        .iter()
        .filter_map(|i| sibling_edge(i, &subs).map(|(f, t)| (f, t, i)))
        .collect();
    assert!(
        edges
            .iter()
            .any(|(f, t, _)| f == "track::tracker" && t == "track::call"),
        "the scan found no import inside track/: {edges:?}"
    );
    let found = cycles(&graph_of(
        edges.iter().map(|(f, t, _)| (f.clone(), t.clone())),
    ));
    assert!(
        found.is_empty(),
        "cycles inside modules:\n{}",
        describe(&found, &edges)
    );
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
    let scan = imports("x.rs", text, &module, false);
    let found: Vec<(String, usize)> = scan
        .iter()
        .filter(|i| i.to != "track")
        .map(|i| (i.to.clone(), i.line))
        .collect();
    let mut found = found;
    found.dedup(); // `table::{self, Table}`
    assert_eq!(
        found,
        [
            ("wire".to_string(), 2),
            ("table".to_string(), 2),
            ("rtp".to_string(), 3),
            ("sip".to_string(), 9),
        ]
    );
    let inside: Vec<_> = scan
        .iter()
        .filter(|i| i.to == "track")
        .map(|i| (i.to_sub.as_deref(), i.line))
        .collect();
    assert_eq!(inside, [(Some("event"), 6), (Some("media"), 8)]);
    let g = graph_of(
        [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")].map(|(f, t)| (f.into(), t.into())),
    );
    assert_eq!(cycles(&g), [["a", "b", "c"]]);
}
