//! Embeds the rule pack in `policies/` into the binary, so an installed
//! `amiaudit` audits with its own rules from any directory.
use std::fs;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=policies");
    let mut files: Vec<String> = walkdir::WalkDir::new("policies")
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().to_string_lossy().replace('\\', "/"))
        .filter(|p| p.ends_with(".yaml") || p.ends_with(".yml"))
        .collect();
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
    let out_dir = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".to_string());
    if let Err(e) = fs::write(Path::new(&out_dir).join("builtin_policies.rs"), code) {
        eprintln!("cannot write the built-in policy list: {e}");
        std::process::exit(1);
    }
}
