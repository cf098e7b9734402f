fn main() {
    napi_build::setup();
    // RocksDB's operator new[] / delete[] go to src/storage/memtable_memory.rs, which keeps
    // memtable blocks resident between memtables (docs/DECISIONS.md §50). GNU ld and lld
    // both take --wrap; only RocksDB's objects in this library are affected.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        for symbol in ["_Znam", "_ZdaPv", "_ZdaPvm"] {
            println!("cargo:rustc-link-arg=-Wl,--wrap={symbol}");
        }
    }
}
