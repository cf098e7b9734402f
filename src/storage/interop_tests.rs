//! Cross-checks with the real JS packages (corestore 7.12.5 / hypercore-storage 3.3.1 /
//! rocksdb-native). The node fixtures live in `__test__/fixtures/`. Each test prints a
//! notice and passes without checking anything if `node` or the node_modules are missing.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::db::{Batch, OpenOptions, Storage};
use super::keys;
use super::schema::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn node_modules() -> PathBuf {
    std::env::var_os("NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("node_modules"))
}

/// `Some(())` when node and the JS packages are available.
fn js_available(test: &str) -> Option<()> {
    let nm = node_modules();
    for pkg in ["corestore", "hypercore-storage", "rocksdb-native"] {
        if !nm.join(pkg).join("package.json").exists() {
            eprintln!(
                "NOTICE: skipping {test}: {} not found (run npm install, or set NODE_MODULES)",
                nm.join(pkg).display()
            );
            return None;
        }
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => Some(()),
        _ => {
            eprintln!("NOTICE: skipping {test}: `node` is not on PATH");
            None
        }
    }
}

fn fixture(name: &str) -> PathBuf {
    root().join("__test__").join("fixtures").join(name)
}

fn node(script: &str, args: &[&Path]) -> std::process::Output {
    let mut cmd = Command::new("node");
    cmd.arg(fixture(script)).args(args);
    cmd.env("NODE_MODULES", node_modules());
    cmd.output().expect("spawn node")
}

fn node_ok(script: &str, args: &[&Path]) -> Vec<Vec<String>> {
    let out = node(script, args);
    assert!(
        out.status.success(),
        "node {script} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(|s| s.to_string()).collect())
        .collect()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "cs-interop-{name}-{}-{}",
        std::process::id(),
        super::device_file::now_ms()
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn unhex32(s: &str) -> [u8; 32] {
    let v = unhex(s);
    let mut out = [0u8; 32];
    out.copy_from_slice(&v);
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[derive(Debug)]
struct JsCore {
    name: String,
    namespace: [u8; 32],
    key: [u8; 32],
    dkey: [u8; 32],
    length: u64,
    fork: u64,
    tree_hash: [u8; 32],
    contiguous: u64,
    byte_length: u64,
}

#[test]
fn js_written_store_reads_in_rust_and_back() {
    if js_available("js_written_store_reads_in_rust_and_back").is_none() {
        return;
    }
    let dir = tmp("js2rust");
    let lines = node_ok("make-js-store.js", &[Path::new("create"), &dir]);

    let mut primary_key = [0u8; 32];
    let mut my_ns = [0u8; 32];
    let mut cores = Vec::new();
    let mut raw = Vec::new();
    for l in &lines {
        match l[0].as_str() {
            "primaryKey" => primary_key = unhex32(&l[1]),
            "myNamespace" => my_ns = unhex32(&l[1]),
            "core" => cores.push(JsCore {
                name: l[1].clone(),
                namespace: unhex32(&l[2]),
                key: unhex32(&l[3]),
                dkey: unhex32(&l[4]),
                length: l[5].parse().unwrap(),
                fork: l[6].parse().unwrap(),
                tree_hash: unhex32(&l[7]),
                contiguous: l[8].parse().unwrap(),
                byte_length: l[9].parse().unwrap(),
            }),
            "raw" => raw.push((
                unhex(&l[1]),
                unhex(l.get(2).map(|s| s.as_str()).unwrap_or("")),
            )),
            other => panic!("unexpected fixture line {other}"),
        }
    }
    assert_eq!(cores.len(), 3);
    assert!(raw.len() > 30, "JS store has {} keys", raw.len());

    // writable open: validates the JS device file and takes its lock
    let st = Storage::open(&dir, &OpenOptions::default()).expect("open JS store");

    // 1. the exact same entries, byte for byte
    let (s, e) = keys::clear_range();
    let mut ours = Vec::new();
    st.scan_raw(&s, &e, |k, v| {
        ours.push((k.to_vec(), v.to_vec()));
        Ok(true)
    })
    .unwrap();
    assert_eq!(
        ours, raw,
        "RocksDB contents differ from what rocksdb-native reads"
    );

    // 2. every record decodes and re-encodes to JS's exact bytes; every key re-builds
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (k, v) in &raw {
        let table = match (k[0], k.len()) {
            (0, 1) => {
                assert_eq!(StoreHead::decode(v).unwrap().encode(), *v);
                "head"
            }
            (1, _) => {
                let dkey = keys::parse_core_by_dkey(k).unwrap();
                assert_eq!(keys::core_by_dkey(&dkey), *k);
                assert_eq!(CoreRecord::decode(v).unwrap().encode(), *v);
                "core"
            }
            (2, _) => {
                let (ns, name) = keys::parse_core_by_alias(k).unwrap();
                assert_eq!(keys::core_by_alias(&ns, &name), *k);
                "alias"
            }
            (3, _) => {
                assert_eq!(k[k.len() - 1], 0, "only AUTH expected under CORE");
                assert_eq!(Auth::decode(v).unwrap().encode(), *v);
                "auth"
            }
            (4, _) => {
                let mut cur = &k[1..];
                let dp = crate::encoding::index_key::read_uint(&mut cur).unwrap();
                let sub = crate::encoding::index_key::read_uint(&mut cur).unwrap();
                match sub {
                    keys::DATA_HEAD => {
                        assert_eq!(CoreHead::decode(v).unwrap().encode(), *v);
                        "data head"
                    }
                    keys::DATA_HINTS => {
                        assert_eq!(Hints::decode(v).unwrap().encode(), *v);
                        "hints"
                    }
                    keys::DATA_BLOCK => {
                        let (p, i) = keys::parse_block(k).unwrap();
                        assert_eq!((p, keys::block(dp, i)), (dp, k.clone()));
                        "block"
                    }
                    keys::DATA_TREE => {
                        let n = TreeNode::decode(v).unwrap();
                        assert_eq!(n.encode(), *v);
                        assert_eq!(keys::tree_node(dp, n.index), *k);
                        "tree"
                    }
                    keys::DATA_BITFIELD => {
                        let (_, page, kind) = keys::parse_bitfield(k).unwrap();
                        assert_eq!(keys::bitfield(dp, page, kind), *k);
                        assert_eq!(v.len(), 4096);
                        "bitfield"
                    }
                    keys::DATA_USER_DATA => {
                        let (_, key) = keys::parse_user_data(k).unwrap();
                        assert_eq!(keys::user_data(dp, &key), *k);
                        "user data"
                    }
                    other => panic!("unexpected DATA sub-table {other}"),
                }
            }
            _ => panic!("unexpected key {}", hex(k)),
        };
        *counts.entry(table).or_default() += 1;
    }
    assert_eq!(counts["head"], 1);
    assert_eq!(counts["core"], 3);
    assert_eq!(counts["alias"], 3);
    assert_eq!(counts["auth"], 3);
    assert_eq!(counts["data head"], 3);
    assert_eq!(counts["block"], 7);
    assert_eq!(counts["tree"], 9);
    assert_eq!(counts["bitfield"], 3);
    assert_eq!(counts["user data"], 1);

    // 3. the typed API agrees with what JS corestore reported
    let head = st.head().unwrap().expect("HEAD");
    assert_eq!(head.version, 2);
    assert_eq!((head.cores, head.datas, head.groups), (3, 3, 0));
    assert_eq!(head.seed, Some(primary_key));
    assert_eq!(head.default_discovery_key, Some(cores[0].dkey));

    let mut all: Vec<[u8; 32]> = cores.iter().map(|c| c.dkey).collect();
    all.sort();
    assert_eq!(st.discovery_keys().unwrap(), all);
    // names sort alpha < beta within the default namespace
    assert_eq!(
        st.aliased_discovery_keys(&[0; 32]).unwrap(),
        vec![cores[0].dkey, cores[1].dkey]
    );
    assert_eq!(
        st.aliased_discovery_keys(&my_ns).unwrap(),
        vec![cores[2].dkey]
    );

    for c in &cores {
        assert_eq!(st.alias(&c.namespace, &c.name).unwrap(), Some(c.dkey));
        let rec = st.core_by_dkey(&c.dkey).unwrap().expect("core record");
        assert_eq!(rec.version, 2);
        assert_eq!(
            rec.alias,
            Some(Alias {
                name: c.name.clone(),
                namespace: c.namespace
            })
        );
        let auth = st.auth(rec.core_pointer).unwrap().expect("auth");
        assert_eq!(auth.key, c.key);
        assert_eq!(auth.discovery_key, c.dkey);
        assert!(
            auth.manifest.as_ref().is_some_and(|m| m[0] == 1),
            "manifest v1"
        );
        let kp = auth.key_pair.expect("key pair");
        assert_eq!(kp.public_key.len(), 32);
        assert_eq!(kp.secret_key.map(|s| s.len()), Some(64));
        assert_eq!(auth.encryption_key, None);

        let dp = rec.data_pointer;
        let h = st.core_head(dp).unwrap().expect("core head");
        assert_eq!((h.fork, h.length), (c.fork, c.length));
        assert_eq!(h.root_hash, c.tree_hash);
        assert_eq!(h.signature.map(|s| s.len()), Some(68));
        assert!(h.timestamp.is_some());
        let hints = st.hints(dp).unwrap().expect("hints");
        assert_eq!(hints.contiguous_length, Some(c.contiguous));
        assert_eq!(st.dependency(dp).unwrap(), None);

        let blocks = st.blocks(dp, 0, None).unwrap();
        assert_eq!(blocks.len() as u64, c.length);
        let mut bytes = 0;
        for (i, b) in &blocks {
            assert_eq!(st.block(dp, *i).unwrap().as_ref(), Some(b));
            bytes += b.len() as u64;
            let prefix = match (c.name.as_str(), c.namespace == [0; 32]) {
                ("alpha", true) => format!("a{i}"),
                ("beta", _) => format!("b{i}"),
                _ => format!("ns-c{i}"),
            };
            assert_eq!(b, prefix.as_bytes());
            // leaf node i is flat index 2i; its size is the block's byte length
            let leaf = st.tree_node(dp, 2 * i).unwrap().expect("leaf");
            assert_eq!(leaf.size, b.len() as u64);
        }
        assert_eq!(bytes, c.byte_length);
        let nodes = st.tree_nodes(dp, 0, None).unwrap();
        assert_eq!(nodes.len(), if c.length == 3 { 4 } else { 1 });

        let pages = st.bitfield_pages(dp).unwrap();
        assert_eq!(pages.len(), 1);
        let (page, bits) = &pages[0];
        assert_eq!(*page, 0);
        assert_eq!(st.bitfield_page(dp, 0).unwrap().as_ref(), Some(bits));
        for i in 0..32768u64 {
            let set = bits[(i / 8) as usize] & (1 << (i % 8)) != 0;
            assert_eq!(set, i < c.length, "bit {i}");
        }
    }
    let alpha_dp = st
        .core_by_dkey(&cores[0].dkey)
        .unwrap()
        .unwrap()
        .data_pointer;
    assert_eq!(
        st.user_data(alpha_dp, "hello").unwrap(),
        Some(b"world".to_vec())
    );
    assert_eq!(
        st.user_data_entries(alpha_dp).unwrap(),
        vec![("hello".to_string(), b"world".to_vec())]
    );

    // 4. Rust writes (flushed to an SST with our options), then the real corestore reads
    let mut b = Batch::new();
    b.put_user_data(alpha_dp, "from", b"rust");
    st.write(b).unwrap();
    st.flush().unwrap();
    drop(st);

    let lines = node_ok("make-js-store.js", &[Path::new("check"), &dir]);
    let get = |k: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l[0] == k)
            .map(|l| l[1..].join("\t"))
            .collect()
    };
    assert_eq!(get("length"), vec!["3"]);
    assert_eq!(get("block"), vec!["0\ta0", "1\ta1", "2\ta2"]);
    assert_eq!(get("hello"), vec!["world"]);
    assert_eq!(get("from"), vec!["rust"]);
    assert_eq!(get("lengthAfterAppend"), vec!["4"]);

    // 5. and Rust sees JS's append (and accepts the store JS reopened)
    let st = Storage::open(&dir, &OpenOptions::default()).unwrap();
    assert_eq!(st.core_head(alpha_dp).unwrap().unwrap().length, 4);
    assert_eq!(
        st.block(alpha_dp, 3).unwrap(),
        Some(b"a-after-rust".to_vec())
    );
    drop(st);

    // 6. the CORESTORE lock excludes JS and Rust both ways
    let st = Storage::open(&dir, &OpenOptions::default()).unwrap();
    let out = node("make-js-store.js", &[Path::new("check"), &dir]);
    assert!(!out.status.success(), "JS opened a store Rust holds");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lock"), "unexpected JS error: {err}");
    drop(st);

    let mut child = Command::new("node")
        .arg(fixture("make-js-store.js"))
        .arg("hold")
        .arg(&dir)
        .env("NODE_MODULES", node_modules())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn node");
    let mut first = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut first).unwrap();
    }
    assert_eq!(first.trim(), "ready");
    let err = Storage::open(&dir, &OpenOptions::default()).unwrap_err();
    assert_eq!(err.code(), "STORAGE_CONFLICT", "{err}");
    // read-only needs no lock
    let ro = super::db::open_read_only(&dir).unwrap();
    assert_eq!(ro.head().unwrap().unwrap().seed, Some(primary_key));
    drop(ro);
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.flush();
    } // dropping stdin closes it: the fixture closes the store and exits
    assert!(child.wait().unwrap().success());
    drop(Storage::open(&dir, &OpenOptions::default()).unwrap());

    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rust_written_store_reads_in_js() {
    if js_available("rust_written_store_reads_in_js").is_none() {
        return;
    }
    let dir = tmp("rust2js");
    let seed = [0x11; 32];
    let dkey = [0xdd; 32];
    let key = [0x22; 32];
    let signer_ns = [0x44; 32];
    let public_key = vec![0x55; 32];
    let secret_key = [vec![0x66; 32], public_key.clone()].concat();
    // @core/manifest v1: version, flags, hash, quorum, signers[1]{signature, namespace, publicKey}
    let manifest = [&[1u8, 0, 0, 1, 1, 0][..], &signer_ns, &public_key].concat();
    let root_hash = [0x33; 32];
    let signature = vec![0x77; 68];
    let big = vec![0xab; 5000];

    let st = Storage::open(&dir, &OpenOptions::default()).unwrap();
    let mut b = Batch::new();
    b.put_head(&StoreHead {
        version: 2,
        cores: 1,
        datas: 1,
        groups: 0,
        seed: Some(seed),
        default_discovery_key: Some(dkey),
    });
    b.put_core(
        &dkey,
        &CoreRecord {
            version: 2,
            core_pointer: 0,
            data_pointer: 0,
            alias: Some(Alias {
                name: "alpha".into(),
                namespace: [0; 32],
            }),
        },
    );
    b.put_alias(&[0; 32], "alpha", &dkey);
    b.put_auth(
        0,
        &Auth {
            key,
            discovery_key: dkey,
            manifest: Some(manifest),
            key_pair: Some(AuthKeyPair {
                public_key: public_key.clone(),
                secret_key: Some(secret_key.clone()),
            }),
            encryption_key: None,
        },
    );
    b.put_core_head(
        0,
        &CoreHead {
            fork: 0,
            length: 4,
            root_hash,
            signature: Some(signature.clone()),
            timestamp: Some(1795560629136),
        },
    );
    b.put_hints(
        0,
        &Hints {
            contiguous_length: Some(4),
            ..Default::default()
        },
    );
    b.put_block(0, 0, b"b0");
    b.put_block(0, 1, &big); // >= 4096: goes to a blob file on flush
    b.put_block(0, 2, b"b2");
    for (index, size) in [(0u64, 2u64), (1, 5002), (2, 5000), (4, 2)] {
        b.put_tree_node(
            0,
            &TreeNode {
                index,
                size,
                hash: [index as u8 + 1; 32],
            },
        );
    }
    let mut page = vec![0u8; 4096];
    page[0] = 0x0f;
    b.put_bitfield_page(0, 0, &page);
    st.write(b).unwrap();
    st.flush().unwrap(); // everything so far in SST + blob files
    let mut b = Batch::new(); // and this only in the WAL
    b.put_block(0, 3, b"b3");
    b.put_user_data(0, "hello", b"world");
    st.write(b).unwrap();
    drop(st);

    let lines = node_ok("read-rust-store.js", &[&dir]);
    let get = |k: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l[0] == k)
            .map(|l| l[1..].join("\t"))
            .collect()
    };
    assert_eq!(get("seed"), vec![hex(&seed)]);
    assert_eq!(get("defaultDiscoveryKey"), vec![hex(&dkey)]);
    assert_eq!(get("dkey"), vec![hex(&dkey)]);
    assert_eq!(get("aliased"), vec![hex(&dkey)]);
    assert_eq!(get("alias"), vec![hex(&dkey)]);
    assert_eq!(
        get("auth"),
        vec![format!(
            "{}\t{}\t1/1\t{}\t{}",
            hex(&key),
            hex(&dkey),
            hex(&public_key),
            hex(&secret_key)
        )]
    );
    assert_eq!(
        get("head"),
        vec![format!(
            "0\t4\t{}\t{}\t1795560629136",
            hex(&root_hash),
            hex(&signature)
        )]
    );
    assert_eq!(get("hints"), vec!["4"]);
    assert_eq!(get("userData"), vec!["world"]);
    assert_eq!(
        get("block"),
        vec![
            format!("0\t{}", hex(b"b0")),
            format!("1\t{}", hex(&big)),
            format!("2\t{}", hex(b"b2")),
            format!("3\t{}", hex(b"b3")),
        ]
    );
    assert_eq!(
        get("node"),
        vec![
            format!("0\t2\t{}", hex(&[1; 32])),
            format!("1\t5002\t{}", hex(&[2; 32])),
            format!("2\t5000\t{}", hex(&[3; 32])),
            format!("4\t2\t{}", hex(&[5; 32])),
        ]
    );
    assert_eq!(get("bitfield"), vec!["4096\t15"]);
    assert_eq!(get("stream"), vec!["0\t2", "1\t5000", "2\t2", "3\t2"]);

    // JS wrote its own SESSION_ID and left the store as it found it
    let st = Storage::open(&dir, &OpenOptions::default()).unwrap();
    assert_eq!(st.block(0, 1).unwrap().map(|b| b.len()), Some(5000));
    assert_eq!(st.head().unwrap().unwrap().seed, Some(seed));
    drop(st);
    let _ = std::fs::remove_dir_all(&dir);
}
