//! The RSS sampler: a thread that reads `/proc/PID/statm` every 100 ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Time between two samples.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// How the report says RSS was measured.
pub const RSS_SOURCE: &str = "resident pages of /proc/PID/statm × the page size (AT_PAGESZ)";

/// A running sampler; [`Sampler::stop`] returns its samples.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<(Instant, u64)>>>,
}

impl Sampler {
    /// Starts sampling process `pid`: (when, RSS bytes) every [`INTERVAL`], until stopped or
    /// until the process is gone.
    pub fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let page = page_size();
        let thread = std::thread::spawn(move || {
            let path = format!("/proc/{pid}/statm");
            let mut samples = Vec::new();
            let mut next = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                let Some(pages) = std::fs::read_to_string(&path).ok().as_deref().and_then(resident)
                else {
                    break;
                };
                samples.push((Instant::now(), pages * page));
                // On the 100 ms grid; after a late sample, a full interval later.
                next += INTERVAL;
                let now = Instant::now();
                if next < now {
                    next = now + INTERVAL;
                }
                std::thread::sleep(next - now);
            }
            samples
        });
        Sampler { stop, thread: Some(thread) }
    }

    /// Stops the thread and returns the samples.
    pub fn stop(mut self) -> Vec<(Instant, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().map(|t| t.join().unwrap_or_default()).unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The resident pages: the second field of a `statm` line.
pub fn resident(statm: &str) -> Option<u64> {
    statm.split_whitespace().nth(1)?.parse().ok()
}

/// The page size, from this process's auxiliary vector (`AT_PAGESZ`); 4096 if unreadable.
fn page_size() -> u64 {
    std::fs::read("/proc/self/auxv").ok().and_then(|auxv| at_pagesz(&auxv)).unwrap_or(4096)
}

/// `AT_PAGESZ` (type 6) in an auxiliary vector of native-endian (type, value) word pairs.
fn at_pagesz(auxv: &[u8]) -> Option<u64> {
    const AT_PAGESZ: usize = 6;
    let word = size_of::<usize>();
    auxv.chunks_exact(2 * word).find_map(|pair| {
        let (kind, value) = pair.split_at(word);
        let kind = usize::from_ne_bytes(kind.try_into().ok()?);
        let value = usize::from_ne_bytes(value.try_into().ok()?);
        (kind == AT_PAGESZ).then_some(value as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_pages_from_statm() {
        assert_eq!(resident("2913 815 602 118 0 334 0\n"), Some(815));
        assert_eq!(resident("2913"), None);
        assert_eq!(resident(""), None);
    }

    #[test]
    fn page_size_from_auxv() {
        let mut auxv = Vec::new();
        for (kind, value) in [(33usize, 7usize), (6, 16384), (0, 0)] {
            auxv.extend_from_slice(&kind.to_ne_bytes());
            auxv.extend_from_slice(&value.to_ne_bytes());
        }
        assert_eq!(at_pagesz(&auxv), Some(16384));
        assert_eq!(at_pagesz(&auxv[2 * size_of::<usize>()..4 * size_of::<usize>()]), Some(16384));
        assert_eq!(at_pagesz(&[]), None);
        assert!(page_size().is_power_of_two());
    }

    #[test]
    fn samples_this_process() {
        let sampler = Sampler::start(std::process::id());
        std::thread::sleep(INTERVAL * 3);
        let samples = sampler.stop();
        assert!((2..=5).contains(&samples.len()), "{} samples", samples.len());
        assert!(samples.iter().all(|&(_, rss)| rss > 1 << 20));
    }
}
