//! The layers of `src/` (docs/ARCHITECTURE.md): a module may use modules on
//! lower floors only, never one on its own floor or above. `make lint` runs
//! this; it reads the `crate::` paths of every non-test line of `src/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every top-level module of the library and its floor.
const FLOORS: &[(&str, u32)] = &[
    // Foundations: no imports of the crate.
    ("secret", 0),
    ("shard", 0),
    // The WeChat client: what WeChat answers, nothing about tables or files.
    ("wechat", 1),
    // The job file.
    ("job", 2),
    // Pure polars functions; the simulator (the crate crates/simulator,
    // re-exported: it depends on no part of unionsnap at all).
    ("transform", 3),
    ("simulator", 3),
    // Files and objects: the warehouse layout, Parquet, Delta, the commit.
    ("load", 4),
    // One snapshotter per account kind.
    ("extract", 5),
    // What the pipeline and the report build on.
    ("report", 6),
    // Orchestration: one run.
    ("pipeline", 7),
    // The operator's side: runner, serve, merge, metrics, preflight, demo.
    ("ops", 8),
];

fn floor(module: &str) -> Option<u32> {
    FLOORS.iter().find(|(m, _)| *m == module).map(|(_, f)| *f)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().unwrap() != "tests" {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let name = path.file_name().unwrap().to_string_lossy();
            if !name.starts_with("tests") {
                out.push(path);
            }
        }
    }
}

/// The crate modules `text` names outside comments and `#[cfg(test)] mod`s.
fn used_modules(text: &str) -> Vec<(usize, String)> {
    let mut used = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((n, line)) = lines.next() {
        if line.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|(_, next)| next.starts_with("mod "))
        {
            break;
        }
        let code = line.split("//").next().unwrap_or("");
        for (i, _) in code.match_indices("crate::") {
            let module: String = code[i + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !module.is_empty() {
                used.push((n + 1, module));
            }
        }
    }
    used
}

/// Every import that goes sideways or up: (file:line, from, to).
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = top.trim_end_matches(".rs").to_string();
        // The crate roots, and the binary's own module (declared by main.rs).
        if ["main", "lib", "allocator"].contains(&module.as_str()) {
            continue;
        }
        let Some(own) = floor(&module) else {
            found.push(format!(
                "src/{}: module `{module}` has no floor in tests/layers.rs (add it)",
                relative.display()
            ));
            continue;
        };
        for (line, used) in used_modules(&std::fs::read_to_string(&file).unwrap()) {
            if used == module {
                continue;
            }
            match floor(&used) {
                Some(theirs) if theirs < own => {}
                Some(theirs) => found.push(format!(
                    "src/{}:{line}: `{module}` (floor {own}) uses `{used}` (floor {theirs})",
                    relative.display()
                )),
                None => found.push(format!(
                    "src/{}:{line}: `{module}` uses `{used}`, which has no floor",
                    relative.display()
                )),
            }
        }
    }
    found
}

#[test]
fn every_module_uses_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "imports against the layers of docs/ARCHITECTURE.md:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_an_import_from_a_higher_layer() {
    let text = "use crate::job::Job;\n// crate::pipeline in a comment\nuse crate::pipeline::run;\n#[cfg(test)]\nmod tests {\n    use crate::runner::Runner;\n}\n";
    assert_eq!(
        used_modules(text),
        [(1, "job".to_string()), (3, "pipeline".to_string())]
    );
    let mut modules: BTreeMap<&str, u32> = BTreeMap::new();
    for (m, f) in FLOORS {
        assert!(modules.insert(m, *f).is_none(), "{m} listed twice");
    }
}
