//! The global pool ([`Pool::global`], behind [`crate::chunk()`] and [`crate::sync_chunk()`])
//! and its settings: [`configure_global`] from code, or `PERFLOC_*` variables from the
//! environment, fixed at its first use.
//!
//! **Precedence**: the program's word is final. If [`configure_global`] runs before the
//! first use, its settings are the global pool's and the environment is not read (a
//! `PERFLOC_*` variable that is set is reported on stderr as ignored). Otherwise the
//! first use reads the environment (see the table on [`configure_global`]) over the
//! defaults. A program that wants to let operators tune it reads variables of its own and
//! passes them to the builder.

use core::fmt;
use std::sync::OnceLock;

use crate::config::env;
use crate::{ConfigError, Pool, PoolBuilder};

/// The global pool, made at its first use (or by [`configure_global`]).
static GLOBAL: OnceLock<Global> = OnceLock::new();

/// The global pool and who set its settings: one value, set once, so a caller that finds it
/// set always learns who set it (a flag stored after the pool would leave a window where a
/// second `configure_global` read "the environment" for a pool the first call made).
struct Global {
    pool: Pool,
    /// Whether [`configure_global`] made it, for the message of a second call.
    configured: bool,
}

/// The global pool: made on first use from the environment's settings.
#[inline]
pub(crate) fn pool() -> &'static Pool {
    &GLOBAL.get_or_init(from_env).pool
}

#[cold]
fn from_env() -> Global {
    let lookup = |var: &str| std::env::var_os(var).map(|v| v.to_string_lossy().into_owned());
    let (config, messages) = env::settings(lookup, crate::os::can_map);
    for message in messages {
        eprintln!("{message}");
    }
    Global { pool: Pool::from_config(config), configured: false }
}

/// Sets the global pool's settings ([`Pool::global`], which [`perfloc::chunk()`](crate::chunk())
/// and [`perfloc::sync_chunk()`](crate::sync_chunk) use). It must run before the global
/// pool's first use, typically at the start of `main`; afterwards the settings are fixed
/// and it returns [`ConfigureGlobalError::AlreadyInUse`] (or
/// [`AlreadyConfigured`](ConfigureGlobalError::AlreadyConfigured) for a second call),
/// changing nothing.
///
/// Without it, the first use reads these environment variables (once); a malformed value,
/// or one the pool refuses, is reported on stderr naming the variable and the value, and
/// that setting keeps its default:
///
/// | variable | setting | examples |
/// |---|---|---|
/// | `PERFLOC_RETAIN` | [`PoolBuilder::retain`] | `4MiB`, `512KiB`, `1GiB`, `1048576` (bytes) |
/// | `PERFLOC_DECAY` | [`PoolBuilder::decay`] | `500ms`, `2s`, `1min`, `0`, `never` |
/// | `PERFLOC_LIMIT` | [`PoolBuilder::limit`] | `256MiB`, `none` |
/// | `PERFLOC_FIRST_BLOCK` | [`PoolBuilder::first_block_size`] | `64KiB` (the first top chunk grows to hold it) |
/// | `PERFLOC_MAX_BLOCK` | [`PoolBuilder::max_block_size`] | `128KiB`, `none` |
/// | `PERFLOC_DEDICATED` | [`PoolBuilder::dedicated_threshold`] | `64KiB`, `none` |
/// | `PERFLOC_LEARN_FIRST_BLOCK` | [`PoolBuilder::learn_first_block`] | `on`, `off` |
///
/// Sizes take the binary units `B`, `KiB`, `MiB`, `GiB`, `TiB` (any case) or none;
/// `MB` and friends are refused as ambiguous. When `configure_global` runs first, the
/// program's settings win and the environment is not read: a `PERFLOC_*` variable that is
/// set is reported on stderr as ignored.
///
/// ```
/// use std::time::Duration;
///
/// perfloc::configure_global(
///     perfloc::Pool::builder().retain(16 << 20).decay(Duration::from_millis(500)),
/// )?;
/// let chunk = perfloc::chunk(); // the global pool, with those settings
///
/// // Too late now: an error, and nothing changes.
/// let err = perfloc::configure_global(perfloc::Pool::builder()).unwrap_err();
/// assert_eq!(err, perfloc::ConfigureGlobalError::AlreadyConfigured);
/// # Ok::<(), perfloc::ConfigureGlobalError>(())
/// ```
///
/// # Errors
///
/// [`ConfigureGlobalError::Invalid`] when the builder's settings are refused (as
/// [`PoolBuilder::build`] would), [`ConfigureGlobalError::AlreadyInUse`] after the global
/// pool's first use, [`ConfigureGlobalError::AlreadyConfigured`] after an earlier
/// successful call. The global pool is unchanged in each case.
pub fn configure_global(builder: PoolBuilder) -> Result<(), ConfigureGlobalError> {
    let pool = builder.build().map_err(ConfigureGlobalError::Invalid)?;
    if let Some(global) = GLOBAL.get() {
        return Err(already(global));
    }
    match GLOBAL.set(Global { pool, configured: true }) {
        Ok(()) => {
            for var in env::VARS {
                if let Some(value) = std::env::var_os(var) {
                    eprintln!(
                        "perfloc: ignoring {var}={:?}: the program set the global pool's \
                         settings with perfloc::configure_global, which take precedence",
                        value.to_string_lossy()
                    );
                }
            }
            Ok(())
        }
        // Another thread got there first; `set` returns once its value is in place.
        Err(_) => Err(already(GLOBAL.get().expect("set by the thread that got there first"))),
    }
}

fn already(global: &Global) -> ConfigureGlobalError {
    if global.configured {
        ConfigureGlobalError::AlreadyConfigured
    } else {
        ConfigureGlobalError::AlreadyInUse
    }
}

/// Why [`configure_global`] refused; the global pool is unchanged.
///
/// ```
/// let err = perfloc::configure_global(perfloc::Pool::builder().first_block_size(1000));
/// let err = err.unwrap_err();
/// assert!(matches!(err, perfloc::ConfigureGlobalError::Invalid(_)));
/// assert!(err.to_string().contains("first_block_size"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigureGlobalError {
    /// The builder's settings are invalid; the error names the setting.
    Invalid(ConfigError),
    /// The global pool was already in use (a chunk was taken from it, or
    /// [`Pool::global`] was called) with the settings read from the environment.
    AlreadyInUse,
    /// An earlier call to [`configure_global`] already set the settings.
    AlreadyConfigured,
}

impl fmt::Display for ConfigureGlobalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigureGlobalError::Invalid(err) => err.fmt(f),
            ConfigureGlobalError::AlreadyInUse => f.write_str(
                "perfloc::configure_global was called after the global pool's first use \
                 (perfloc::chunk(), perfloc::sync_chunk() or Pool::global()); its settings \
                 are fixed then: call configure_global at the start of main",
            ),
            ConfigureGlobalError::AlreadyConfigured => f.write_str(
                "perfloc::configure_global was called a second time; the global pool keeps \
                 the settings of the first call",
            ),
        }
    }
}

impl std::error::Error for ConfigureGlobalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigureGlobalError::Invalid(err) => Some(err),
            _ => None,
        }
    }
}
