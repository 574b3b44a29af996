//! The contenders of the load driver and the instruction counter: which server binary runs
//! with which handler.

/// One allocator set-up under test: which server binary, with which handler.
#[derive(Debug, PartialEq)]
pub struct Contender {
    /// The name in the report.
    pub name: &'static str,
    /// The server binary, next to the driver in the target directory.
    pub binary: &'static str,
    /// The server's `--handler`.
    pub handler: &'static str,
}

/// Every contender, in the order they run and appear in the report.
pub const CONTENDERS: [Contender; 4] = [
    Contender { name: "glibc", binary: "server-glibc", handler: "global" },
    Contender { name: "jemalloc", binary: "server-jemalloc", handler: "global" },
    Contender { name: "mimalloc", binary: "server-mimalloc", handler: "global" },
    Contender { name: "perfloc", binary: "server-glibc", handler: "chunk" },
];
