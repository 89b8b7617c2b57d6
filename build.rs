//! Embeds the rule pack in `policies/` into the binary, so an installed
//! `amiaudit` audits with its own rules from any directory.
use std::fs;
use std::path::Path;

fn collect(dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path.to_string_lossy().replace('\\', "/"));
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=policies");
    let mut files = Vec::new();
    collect(Path::new("policies"), &mut files);
    files.sort();
    let mut code = String::from(
        "/// Rule files of the built-in pack: (path, text).\npub const BUILTIN_POLICIES: &[(&str, &str)] = &[\n",
    );
    for f in &files {
        code.push_str(&format!(
            "    ({f:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/\", {f:?}))),\n"
        ));
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("builtin_policies.rs");
    fs::write(out, code).expect("write generated file");
}
