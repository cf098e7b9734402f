//! The `CORESTORE` device file (JS package `device-file` 2.x) and its lock.
//!
//! The file holds `key=value` lines: optional user data (corestore's `id=`), then
//! `device/platform`, `device/inode`, `device/created` (ms) and, when the extended
//! attribute could be set, `device/attribute=original`. On Linux the xattr
//! `user.device-file=original` is set on the file (`device-file` elsewhere).
//!
//! JS refuses a device file whose platform, xattr or inode differ, or whose
//! `max(mtime, birthtime)` is 5 s or more away from `created`: that is how it detects a
//! store that was copied or restored (even `cp -a` fails). The same rules apply here.
//!
//! The lock is a whole-file write lock held for the store's lifetime: an OFD lock
//! (`F_OFD_SETLK`) on Linux/Android, `flock` on other Unixes; as `fd-lock` /
//! `fs-native-extensions` take it, so JS and Rust exclude each other.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// `|max(mtime, birthtime) - created|` must stay below this many ms.
pub const MODIFIED_SLACK_MS: i128 = 5000;

#[cfg(any(target_os = "linux", target_os = "android"))]
const ATTR_NAME: &str = "user.device-file";
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const ATTR_NAME: &str = "device-file";
const ATTR_VALUE: &[u8] = b"original";

#[cfg(windows)]
const NL: &str = "\r\n";
#[cfg(not(windows))]
const NL: &str = "\n";

/// Node's `process.platform` for this build.
pub fn platform() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        "solaris" | "illumos" => "sunos",
        other => other,
    }
}

/// Why a device file was refused.
#[derive(Debug)]
pub enum DeviceFileError {
    /// Another process (or another open of this store) holds the lock.
    Locked,
    /// The file is not the original (copied, moved, restored, or from another platform).
    Invalid(String),
    Io(io::Error),
}

impl From<io::Error> for DeviceFileError {
    fn from(e: io::Error) -> Self {
        DeviceFileError::Io(e)
    }
}

/// An open, locked `CORESTORE` file. Dropping it releases the lock, then closes the
/// descriptor.
#[derive(Debug)]
pub struct DeviceFile {
    file: File,
    path: PathBuf,
    locked: bool,
    /// The user `key=value` pairs found in (or written to) the file.
    pub data: Vec<(String, String)>,
}

impl DeviceFile {
    /// Opens an existing device file, locks it and validates it.
    /// `Ok(None)` if there is no file at `path`.
    pub fn open_existing(path: &Path) -> Result<Option<DeviceFile>, DeviceFileError> {
        let mut file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if !try_lock(&file)? {
            return Err(DeviceFileError::Locked);
        }
        let mut text = Vec::new();
        file.seek(SeekFrom::Start(0))?;
        file.read_to_end(&mut text)?;
        let parsed = parse(&String::from_utf8_lossy(&text));
        validate(&file, &parsed)?;
        Ok(Some(DeviceFile {
            file,
            path: path.to_path_buf(),
            locked: true,
            data: parsed.data,
        }))
    }

    /// Creates (truncates) the device file, locks it and writes it the way `device-file`
    /// does. `data` pairs come first (corestore passes `id`).
    pub fn create(path: &Path, data: &[(String, String)]) -> Result<DeviceFile, DeviceFileError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        if !try_lock(&file)? {
            return Err(DeviceFileError::Locked);
        }
        let ino = inode(&file.metadata()?);
        let created = now_ms();
        let mut s = String::new();
        for (k, v) in data {
            s.push_str(&format!("{k}={v}{NL}"));
        }
        s.push_str(&format!("device/platform={}{NL}", platform()));
        s.push_str(&format!("device/inode={ino}{NL}"));
        s.push_str(&format!("device/created={created}{NL}"));
        if set_attr(&file) {
            s.push_str(&format!("device/attribute=original{NL}"));
        }
        file.write_all(s.as_bytes())?;
        file.sync_all()?;
        Ok(DeviceFile {
            file,
            path: path.to_path_buf(),
            locked: true,
            data: data.to_vec(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_locked(&self) -> bool {
        self.locked
    }

    /// Releases the lock but keeps the descriptor (JS `suspend`).
    pub fn unlock(&mut self) -> io::Result<()> {
        if self.locked {
            unlock(&self.file)?;
            self.locked = false;
        }
        Ok(())
    }

    /// Takes the lock again, waiting for it if another process holds it (JS `resume`).
    pub fn relock_wait(&mut self) -> io::Result<()> {
        if !self.locked {
            lock_wait(&self.file)?;
            self.locked = true;
        }
        Ok(())
    }
}

impl Drop for DeviceFile {
    /// Unlocks before the close: a child process this process is starting holds a copy of
    /// the descriptor from its fork to its exec, and the lock, which belongs to the open
    /// file and not to one descriptor, would outlive the close by that long. A store
    /// closed and opened again at that moment saw itself locked (a test that reopens a
    /// store failed once in ~45 runs while other tests spawned node).
    fn drop(&mut self) {
        // nothing to do about a failure: the close releases the lock anyway
        let _ = self.unlock();
    }
}

struct Parsed {
    platform: String,
    inode: Option<u64>,
    created: Option<i128>,
    attr: String,
    data: Vec<(String, String)>,
}

fn parse(text: &str) -> Parsed {
    let mut p = Parsed {
        platform: String::new(),
        inode: Some(0),
        created: None,
        attr: String::new(),
        data: Vec::new(),
    };
    for line in text.trim().split('\n') {
        let Some(i) = line.find('=') else { continue };
        let k = line[..i].trim();
        let v = line[i + 1..].trim();
        match k {
            "device/platform" => p.platform = v.to_string(),
            // JS: Number(v); a non-number never equals the inode
            "device/inode" => p.inode = parse_js_number(v).and_then(|n| u64::try_from(n).ok()),
            // JS: a 0 / NaN `created` skips the age check
            "device/created" => p.created = parse_js_number(v).filter(|&n| n != 0),
            "device/attribute" => p.attr = v.to_string(),
            _ => p.data.push((k.to_string(), v.to_string())),
        }
    }
    p
}

/// `Number(v)` for the integers device-file writes; `None` for what would be NaN.
fn parse_js_number(v: &str) -> Option<i128> {
    if v.is_empty() {
        return Some(0);
    }
    v.parse::<i128>().ok().or_else(|| {
        v.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| f as i128)
    })
}

fn validate(file: &File, p: &Parsed) -> Result<(), DeviceFileError> {
    let meta = file.metadata()?;
    let attr = get_attr(file).unwrap_or_default();
    if !p.platform.is_empty() && p.platform != platform() {
        return Err(DeviceFileError::Invalid(format!(
            "it was made on a different platform ({}, this is {})",
            p.platform,
            platform()
        )));
    }
    if String::from_utf8_lossy(&attr) != p.attr {
        return Err(DeviceFileError::Invalid(
            "it was moved unsafely (its extended attribute does not match)".into(),
        ));
    }
    let modified = ms(meta.modified().ok()).max(ms(meta.created().ok()));
    let ino = inode(&meta);
    if p.inode != Some(ino) {
        return Err(DeviceFileError::Invalid(format!(
            "it was modified or copied (inode is {ino}, the file says {})",
            p.inode
                .map(|i| i.to_string())
                .unwrap_or_else(|| "garbage".into())
        )));
    }
    if let Some(created) = p.created {
        if (modified - created).abs() >= MODIFIED_SLACK_MS {
            return Err(DeviceFileError::Invalid(format!(
                "it was modified or copied (last changed at {modified} ms, created at {created} ms)"
            )));
        }
    }
    Ok(())
}

fn ms(t: Option<SystemTime>) -> i128 {
    match t {
        Some(t) => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_millis() as i128,
            Err(e) => -(e.duration().as_millis() as i128),
        },
        None => 0,
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.ino()
}

#[cfg(not(unix))]
fn inode(_meta: &std::fs::Metadata) -> u64 {
    0
}

// ---- locks ----

#[cfg(any(target_os = "linux", target_os = "android"))]
fn ofd(file: &File, cmd: libc::c_int, kind: libc::c_short) -> io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: a zeroed `flock` is valid; l_start = l_len = 0 means the whole file and
    // OFD locks require l_pid = 0. The fd stays open for the duration of the call.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    let res = unsafe { libc::fcntl(file.as_raw_fd(), cmd, &mut fl) };
    if res == -1 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
            _ => Err(err),
        };
    }
    Ok(true)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn try_lock(file: &File) -> io::Result<bool> {
    ofd(file, libc::F_OFD_SETLK, libc::F_WRLCK as libc::c_short)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn lock_wait(file: &File) -> io::Result<()> {
    loop {
        match ofd(file, libc::F_OFD_SETLKW, libc::F_WRLCK as libc::c_short) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => return Ok(()),
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn unlock(file: &File) -> io::Result<()> {
    ofd(file, libc::F_OFD_SETLK, libc::F_UNLCK as libc::c_short).map(|_| ())
}

#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
fn flock(file: &File, op: libc::c_int) -> io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: plain syscall on an fd we own.
    let res = unsafe { libc::flock(file.as_raw_fd(), op) };
    if res == -1 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EWOULDBLOCK) => Ok(false),
            _ => Err(err),
        };
    }
    Ok(true)
}

#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
fn try_lock(file: &File) -> io::Result<bool> {
    flock(file, libc::LOCK_EX | libc::LOCK_NB)
}

#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
fn lock_wait(file: &File) -> io::Result<()> {
    loop {
        match flock(file, libc::LOCK_EX) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => return Ok(()),
        }
    }
}

#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
fn unlock(file: &File) -> io::Result<()> {
    flock(file, libc::LOCK_UN).map(|_| ())
}

// Windows (JS: LockFileEx) is not implemented: no lock is taken there.
#[cfg(not(unix))]
fn try_lock(_file: &File) -> io::Result<bool> {
    Ok(true)
}

#[cfg(not(unix))]
fn lock_wait(_file: &File) -> io::Result<()> {
    Ok(())
}

#[cfg(not(unix))]
fn unlock(_file: &File) -> io::Result<()> {
    Ok(())
}

// ---- extended attribute ----

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_attr(file: &File) -> bool {
    use std::os::unix::io::AsRawFd;
    let Ok(name) = std::ffi::CString::new(ATTR_NAME) else {
        return false;
    };
    // SAFETY: valid fd, NUL-terminated name, value pointer/length from a live slice.
    let res = unsafe {
        libc::fsetxattr(
            file.as_raw_fd(),
            name.as_ptr(),
            ATTR_VALUE.as_ptr() as *const libc::c_void,
            ATTR_VALUE.len(),
            0,
        )
    };
    res == 0
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn get_attr(file: &File) -> Option<Vec<u8>> {
    use std::os::unix::io::AsRawFd;
    let name = std::ffi::CString::new(ATTR_NAME).ok()?;
    let fd = file.as_raw_fd();
    // SAFETY: size query with a null buffer, then a read into a buffer of that size.
    let len = unsafe { libc::fgetxattr(fd, name.as_ptr(), std::ptr::null_mut(), 0) };
    if len < 0 {
        return None;
    }
    let mut buf = vec![0u8; len as usize];
    let got = unsafe {
        libc::fgetxattr(
            fd,
            name.as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
        )
    };
    if got < 0 {
        return None;
    }
    buf.truncate(got as usize);
    Some(buf)
}

#[cfg(any(target_os = "macos", target_os = "ios"))]
fn set_attr(file: &File) -> bool {
    use std::os::unix::io::AsRawFd;
    let Ok(name) = std::ffi::CString::new(ATTR_NAME) else {
        return false;
    };
    // SAFETY: valid fd, NUL-terminated name, value pointer/length from a live slice.
    let res = unsafe {
        libc::fsetxattr(
            file.as_raw_fd(),
            name.as_ptr(),
            ATTR_VALUE.as_ptr() as *const libc::c_void,
            ATTR_VALUE.len(),
            0,
            0,
        )
    };
    res == 0
}

#[cfg(any(target_os = "macos", target_os = "ios"))]
fn get_attr(file: &File) -> Option<Vec<u8>> {
    use std::os::unix::io::AsRawFd;
    let name = std::ffi::CString::new(ATTR_NAME).ok()?;
    let fd = file.as_raw_fd();
    // SAFETY: size query with a null buffer, then a read into a buffer of that size.
    let len = unsafe { libc::fgetxattr(fd, name.as_ptr(), std::ptr::null_mut(), 0, 0, 0) };
    if len < 0 {
        return None;
    }
    let mut buf = vec![0u8; len as usize];
    let got = unsafe {
        libc::fgetxattr(
            fd,
            name.as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
            0,
            0,
        )
    };
    if got < 0 {
        return None;
    }
    buf.truncate(got as usize);
    Some(buf)
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios"
)))]
fn set_attr(_file: &File) -> bool {
    false
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios"
)))]
fn get_attr(_file: &File) -> Option<Vec<u8>> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "cs-devfile-{}-{}-{}",
            name,
            std::process::id(),
            now_ms()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn create_validate_lock() {
        let dir = tmp("basic");
        let path = dir.join("CORESTORE");
        let df = DeviceFile::create(&path, &[("id".into(), "abc".into())]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("id=abc\ndevice/platform="), "{text}");
        assert!(text.contains(&format!("device/platform={}\n", platform())));
        assert!(text.contains("device/inode="));
        assert!(text.contains("device/created="));
        // a second open in the same process is refused: OFD locks are per open file
        assert!(matches!(
            DeviceFile::open_existing(&path),
            Err(DeviceFileError::Locked)
        ));
        drop(df);
        let df = DeviceFile::open_existing(&path).unwrap().unwrap();
        assert_eq!(df.data, vec![("id".to_string(), "abc".to_string())]);
        drop(df);
        assert!(DeviceFile::open_existing(&dir.join("nope"))
            .unwrap()
            .is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn suspend_resume_lock() {
        let dir = tmp("suspend");
        let path = dir.join("CORESTORE");
        let mut df = DeviceFile::create(&path, &[]).unwrap();
        df.unlock().unwrap();
        let other = DeviceFile::open_existing(&path).unwrap().unwrap();
        drop(other);
        df.relock_wait().unwrap();
        assert!(matches!(
            DeviceFile::open_existing(&path),
            Err(DeviceFileError::Locked)
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn copied_file_is_refused() {
        let dir = tmp("copy");
        let path = dir.join("CORESTORE");
        drop(DeviceFile::create(&path, &[]).unwrap());
        let copy = dir.join("COPY");
        std::fs::copy(&path, &copy).unwrap();
        match DeviceFile::open_existing(&copy) {
            Err(DeviceFileError::Invalid(msg)) => {
                assert!(msg.contains("modified") || msg.contains("moved"), "{msg}")
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        // a rewritten file with a stale created time is refused
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text.lines().map(|l| l.to_string()).collect();
        for l in lines.iter_mut() {
            if l.starts_with("device/created=") {
                *l = "device/created=1000".into();
            }
        }
        std::fs::write(&path, lines.join("\n")).unwrap();
        assert!(matches!(
            DeviceFile::open_existing(&path),
            Err(DeviceFileError::Invalid(_))
        ));
        // another platform
        let text2 = text.replace(
            &format!("device/platform={}", platform()),
            "device/platform=win32",
        );
        std::fs::write(&path, text2).unwrap();
        match DeviceFile::open_existing(&path) {
            Err(DeviceFileError::Invalid(msg)) => assert!(msg.contains("platform"), "{msg}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn parse_is_tolerant() {
        let p = parse("  id = x \r\nnoequals\ndevice/inode=abc\ndevice/created=\n");
        assert_eq!(p.data, vec![("id".to_string(), "x".to_string())]);
        assert_eq!(p.inode, None);
        assert_eq!(p.created, None);
        assert_eq!(parse("").inode, Some(0));
    }
}
