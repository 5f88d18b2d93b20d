//! Encode and decode of five typical frames with this project's codec, side by side with the
//! same information as a Rust struct encoded with postcard and with serde_json.
//!
//! `cargo bench -p cluster-benches --bench codec`
//!
//! Like with like: both encoders write into a preallocated 4 KiB slice and return the length
//! (nothing allocates); this project's codec also writes the frame's header, length and
//! footer and checks every varint against the reserved `C0 8D` prefix, which postcard has no
//! counterpart for.
//!
//! The decodes, two of each codec so that each is compared with the same work:
//! - `cluster`: `Message::parse`, strings kept as bytes (peers do not guarantee UTF-8) and
//!   lists as views of the frame: no UTF-8 check, no allocation.
//! - `postcard_borrowed`: the same work with postcard: every text field a borrowed `&[u8]`
//!   (`serde_bytes`) and every list a `heapless::Vec` of them (no allocation), decoded from
//!   the very bytes `postcard` decodes (the two structs encode identically).
//! - `cluster_text`: `Message::parse` and then the UTF-8 check (`Str::to_str`) of every text
//!   field and list item present: what an application reading strings pays, and what
//!   `postcard` does.
//! - `postcard`: a struct of `&str` fields (each checked for UTF-8, the 1 KiB payload
//!   included) and `Vec<&str>` lists (allocated on the heap).
//! - `serde_json`: the `postcard` struct from JSON.

use std::hint::black_box;

use cluster_core::wire::Message;
use criterion::{Criterion, criterion_group, criterion_main};

#[path = "codec/cases.rs"]
mod cases;

use cases::{Packet, PacketBytes, cases, parse_text};

fn codec(c: &mut Criterion) {
    let kib: &'static str = Box::leak("x".repeat(1024).into_boxed_str());
    for case in cases(kib) {
        let mut buf = vec![0u8; 4096];
        let len = case.message.encode(case.placement, &mut buf).unwrap();
        let ours = buf[..len].to_vec();
        let post = postcard::to_allocvec(&case.packet).unwrap();
        let borrowed = case.packet.to_bytes();
        // Both postcard decodes read the same bytes.
        assert_eq!(postcard::to_allocvec(&borrowed).unwrap(), post);
        let json = serde_json::to_vec(&case.packet).unwrap();
        eprintln!(
            "bytes/frame {:<15} cluster {:>5}  postcard {:>5}  json {:>5}  (cluster/json {:.0}%)",
            case.name,
            ours.len(),
            post.len(),
            json.len(),
            100.0 * ours.len() as f64 / json.len() as f64
        );
        // Sanity: every codec reads back what it wrote.
        let (decoded, _) = Message::parse(&ours).unwrap();
        assert_eq!(decoded, case.message);
        assert_eq!(parse_text(&ours), Some(case.message));
        assert_eq!(
            postcard::from_bytes::<Packet<'_>>(&post).unwrap(),
            case.packet
        );
        assert_eq!(
            postcard::from_bytes::<PacketBytes<'_>>(&post).unwrap(),
            borrowed
        );
        assert_eq!(
            serde_json::from_slice::<Packet<'_>>(&json).unwrap(),
            case.packet
        );

        let mut group = c.benchmark_group(format!("encode/{}", case.name));
        group.bench_function("cluster", |b| {
            b.iter(|| {
                black_box(&case.message)
                    .encode(case.placement, black_box(&mut buf))
                    .unwrap()
            })
        });
        let mut post_buf = vec![0u8; 4096];
        group.bench_function("postcard", |b| {
            b.iter(|| {
                postcard::to_slice(black_box(&case.packet), black_box(&mut post_buf))
                    .unwrap()
                    .len()
            })
        });
        let mut json_buf = Vec::with_capacity(4096);
        group.bench_function("serde_json", |b| {
            b.iter(|| {
                json_buf.clear();
                serde_json::to_writer(&mut json_buf, black_box(&case.packet)).unwrap();
                json_buf.len()
            })
        });
        group.finish();

        let mut group = c.benchmark_group(format!("decode/{}", case.name));
        group.bench_function("cluster", |b| {
            b.iter(|| Message::parse(black_box(&ours)).unwrap().0)
        });
        group.bench_function("cluster_text", |b| {
            b.iter(|| parse_text(black_box(&ours)).unwrap())
        });
        group.bench_function("postcard", |b| {
            b.iter(|| postcard::from_bytes::<Packet<'_>>(black_box(&post)).unwrap())
        });
        group.bench_function("postcard_borrowed", |b| {
            b.iter(|| postcard::from_bytes::<PacketBytes<'_>>(black_box(&post)).unwrap())
        });
        group.bench_function("serde_json", |b| {
            b.iter(|| serde_json::from_slice::<Packet<'_>>(black_box(&json)).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
