//! Store operations per second on a real SQLite file (WAL): `cargo bench -p gateway-host`.
use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use hermes_store::journal::Position;
use hermes_store::{Store, TurnCommit};
use platform_api::{Inbound, Part};

fn inbound(n: u64) -> Inbound {
    Inbound {
        sender_name: None,
        platform: "sms".into(),
        chat: format!("+1555000{:04}", n % 1000),
        sender: format!("+1555000{:04}", n % 1000),
        text: "Can you remind me what time the dentist is tomorrow?".into(),
        attachments: vec![],
        provider_id: format!("SM{n:032}"),
        received_at: SystemTime::now(),
        control: None,
    }
}

fn store_operations(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("gateway.db")).expect("store");
    let mut n = 0u64;
    c.bench_function("store_insert_inbound", |b| {
        b.iter(|| {
            n += 1;
            store
                .insert_inbound(black_box(&inbound(n)))
                .expect("insert")
        })
    });
    // What the importer does with the journal under load: many messages, one transaction.
    c.bench_function("store_import_inbound_batch_of_64", |b| {
        b.iter(|| {
            let batch: Vec<Inbound> = (0..64)
                .map(|_| {
                    n += 1;
                    inbound(n)
                })
                .collect();
            let to = Position {
                generation: 1,
                offset: n,
            };
            store.import_inbound(black_box(&batch), to).expect("import")
        })
    });
    c.bench_function("store_insert_duplicate", |b| {
        b.iter(|| {
            store
                .insert_inbound(black_box(&inbound(1)))
                .expect("insert")
        })
    });
    let parts = vec![
        Part::plain("You said: hello there (1/2)"),
        Part::plain("and more (2/2)"),
    ];
    c.bench_function("store_commit_turn_two_parts", |b| {
        b.iter(|| {
            store
                .commit_turn(&TurnCommit {
                    platform: "sms",
                    chat: "+15550001111",
                    inbound_ids: &[],
                    user: Some("hello there"),
                    assistant: Some("You said: hello there"),
                    parts: &parts,
                    origin: "reply",
                    refused: &[],
                })
                .expect("commit")
        })
    });
    c.bench_function("store_claim_and_mark_sent", |b| {
        b.iter_batched(
            || {
                store
                    .enqueue("sms", "+15550002222", &parts[..1], "send")
                    .expect("enqueue")[0]
            },
            |id| {
                let claim = store
                    .claim(id, Duration::from_secs(60))
                    .expect("claim")
                    .expect("claimable");
                assert!(store.mark_sent(claim, "SM1", Some(1)).expect("sent"));
            },
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, store_operations);
criterion_main!(benches);
