//! Compiles every `.proto` under the workspace `proto/` directory with protox (pure Rust, so
//! no system `protoc`), keeps the descriptor set for gRPC reflection, and generates prost
//! messages plus tonic clients and servers from it.

use std::error::Error;
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    // Read when the script runs, not baked in when it is compiled: checkouts that share a
    // target directory share this script's binary, and each must compile its own protos.
    let proto_root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    println!("cargo:rerun-if-changed={}", proto_root.display());

    let mut proto_files = Vec::new();
    collect_proto_files(&proto_root, &mut proto_files)?;
    proto_files.sort();
    for file in &proto_files {
        // A directory watch misses edits inside nested files on some platforms.
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let mut compiler = protox::Compiler::new([&proto_root])?;
    // Imports are kept so reflection clients can resolve google.protobuf types too, and
    // source info so reflection shows the proto comments.
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(&proto_files)?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("veil_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Unimplemented RPCs answer UNIMPLEMENTED until their issue lands.
        .generate_default_stubs(true)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}

fn collect_proto_files(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_proto_files(&path, found)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            found.push(path);
        }
    }
    Ok(())
}
