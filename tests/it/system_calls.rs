//! Downsizing makes its system calls (`munmap`, `madvise`) without the pool's lock, so
//! other threads keep taking and giving back blocks while memory goes back to the OS.

use crate::util::{KIB, MIB, check};
use perfloc::Pool;
use perfloc::fault_injection::{self, SystemCall};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn other_threads_use_the_pool_while_downsizing_calls_the_os() {
    let pool = Pool::builder()
        .first_top_chunk_size(256 * KIB)
        .first_block_size(4 * KIB)
        .retain(0)
        .build()
        .unwrap();
    // Keeps the first top chunk mapped, so its free blocks are purged, not unmapped.
    let long_lived = pool.chunk();
    let seen: Rc<RefCell<Vec<(SystemCall, bool)>>> = Rc::default();
    std::thread::scope(|s| {
        let (ask, asked) = mpsc::channel::<()>();
        let (answer, answered) = mpsc::channel::<()>();
        let pool = &pool;
        // Each time this thread is about to call the OS, another thread makes a chunk,
        // allocates in it, drops it and reads the stats: all of it needs the pool's lock.
        s.spawn(move || {
            for () in asked {
                let chunk = pool.chunk();
                chunk.alloc_slice_copy(&[1u8; 100 * KIB]);
                drop(chunk);
                let _ = pool.stats();
                let _ = answer.send(()); // the hook may have given up waiting
            }
        });
        let record = Rc::clone(&seen);
        fault_injection::on_system_call(move |call| {
            ask.send(()).unwrap();
            let other_thread_got_the_lock = answered.recv_timeout(Duration::from_secs(10)).is_ok();
            record.borrow_mut().push((call, other_thread_got_the_lock));
        });
        long_lived.alloc_slice_copy(&[2u8; 200 * KIB]); // free blocks to purge later
        let spike: Vec<_> = (0..4)
            .map(|_| {
                let chunk = pool.chunk();
                chunk.alloc_slice_copy(&vec![3u8; MIB]); // top chunks to unmap later
                chunk
            })
            .collect();
        drop(spike);
        pool.trim();
        fault_injection::clear(); // drops the hook and its sender: the other thread ends
    });
    let seen = seen.borrow();
    assert!(seen.contains(&(SystemCall::Unmap, true)), "{seen:?}");
    assert!(seen.contains(&(SystemCall::Purge, true)), "{seen:?}");
    assert!(seen.iter().all(|&(_, ok)| ok), "the pool's lock was held across a system call");
    drop(long_lived);
    check(&pool);
}
