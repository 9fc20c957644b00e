//! The free-space floor: below it nothing more is stored, and webhooks are answered 503.
use std::sync::atomic::{AtomicI64, Ordering};

use tracing::{error, info};

/// Bytes free for unprivileged writers on the file system holding `path`.
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` is written by statvfs
    // before it is read, only when it returns 0.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled `stat`.
    let stat = unsafe { stat.assume_init() };
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Whether there is room to store more: free space on the home's file system against a floor.
pub struct DiskFloor {
    home: std::path::PathBuf,
    floor: u64,
    /// Free bytes at the last measure, or `u64::MAX` when it could not be measured.
    free: AtomicI64,
}

impl DiskFloor {
    /// A floor of `floor_mb` megabytes on the file system of `home` (0 turns it off).
    pub fn new(home: &std::path::Path, floor_mb: u64) -> Self {
        let floor = DiskFloor {
            home: home.to_path_buf(),
            floor: floor_mb.saturating_mul(1 << 20),
            free: AtomicI64::new(i64::MAX),
        };
        floor.measure();
        floor
    }

    /// Measures the free space again; logs when crossing the floor either way.
    pub(super) fn measure(&self) {
        if self.floor == 0 {
            return;
        }
        let free = free_bytes(&self.home).map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
        let before = self.free.swap(free, Ordering::Relaxed);
        let floor = self.floor as i64;
        if free < floor && before >= floor {
            error!(
                "only {} MB free on the file system of {}, below HERMES_MIN_FREE_DISK_MB ({} MB): webhooks are answered 503 until space is freed",
                free >> 20,
                self.home.display(),
                self.floor >> 20
            );
        } else if free >= floor && before < floor {
            info!("disk space is back above HERMES_MIN_FREE_DISK_MB: storing webhooks again");
        }
    }

    /// Why nothing can be stored now, if so.
    pub(super) fn refusal(&self) -> Option<String> {
        let free = self.free.load(Ordering::Relaxed);
        (self.floor > 0 && free < self.floor as i64).then(|| {
            format!(
                "{} MB free, below HERMES_MIN_FREE_DISK_MB ({} MB)",
                free >> 20,
                self.floor >> 20
            )
        })
    }
}
