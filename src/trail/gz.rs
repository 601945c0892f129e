//! Whole-buffer gzip inflation with libdeflate, member by member.
//!
//! libdeflate's plain `gzip_decompress` stops after the first member and
//! ignores the rest, so a multi-member file (what `cat a.gz b.gz` or some log
//! shippers produce) would silently lose records. The `_ex` entry point says
//! how much input each member used, which lets us continue with the next.

use std::io::Read;
use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard};

use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_decompressor, libdeflate_free_decompressor,
    libdeflate_gzip_decompress_ex, libdeflate_result_LIBDEFLATE_BAD_DATA,
    libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE, libdeflate_result_LIBDEFLATE_SUCCESS,
};

/// The gzip magic bytes.
pub fn is_gzip(data: &[u8]) -> bool {
    data.len() >= 2 && data[0] == 0x1f && data[1] == 0x8b
}

/// Why inflation stopped early. What `out` holds is still valid output,
/// except when `over_limit` (then it is not worth reading).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InflateError {
    pub reason: String,
    /// The output passed the size limit: a gzip bomb, or a file far larger
    /// than CloudTrail writes.
    pub over_limit: bool,
}

impl InflateError {
    fn damaged(reason: String) -> Self {
        InflateError {
            reason,
            over_limit: false,
        }
    }
}

/// A buffer above this size is large: only one thread at a time may hold
/// one (see [`large_permit`]), so memory stays near one `--max-log-bytes`
/// plus this much per worker, however many hostile files run at once.
pub const LARGE: usize = 64 << 20;

static LARGE_LOCK: Mutex<()> = Mutex::new(());

/// The right to grow a buffer past [`LARGE`]. Hold it until the buffer is
/// shrunk back; never take it twice on one thread (pass it down instead).
pub fn large_permit() -> MutexGuard<'static, ()> {
    // The guarded value is `()`: a panic elsewhere leaves nothing to repair.
    LARGE_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

struct Decompressor(NonNull<libdeflate_decompressor>);

impl Decompressor {
    fn new() -> Option<Self> {
        // SAFETY: allocation has no preconditions; NULL means out of memory.
        NonNull::new(unsafe { libdeflate_alloc_decompressor() }).map(Decompressor)
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: the pointer came from libdeflate_alloc_decompressor and is
        // freed exactly once.
        unsafe { libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

/// Inflates every gzip member of `data` into `out` (cleared first), up to
/// `limit` bytes of output in all. On error `out` holds as much of the
/// stream as could be recovered (decoded with a streaming inflater, since
/// libdeflate returns nothing for a damaged member). Growing `out` past
/// [`LARGE`] first takes the large-buffer permit into `permit`.
pub fn inflate(
    data: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
    permit: &mut Option<MutexGuard<'static, ()>>,
) -> Result<(), InflateError> {
    out.clear();
    let Some(dec) = Decompressor::new() else {
        return Err(InflateError::damaged(
            "out of memory allocating the gzip decompressor".into(),
        ));
    };
    let mut pos = 0usize;
    let mut members = 0usize;
    while pos < data.len() {
        let rest = &data[pos..];
        if !is_gzip(rest) {
            // Zero padding after the last member is common (tape-style
            // writers); anything else is damage.
            if members > 0 && rest.iter().all(|&b| b == 0) {
                break;
            }
            return Err(InflateError::damaged(format!(
                "{} bytes of non-gzip data after gzip member {members}",
                rest.len()
            )));
        }
        // ISIZE of the last member is a good first guess for one member; CloudTrail text
        // compresses about 10-20x, so 8x is a cheap floor for the others. Either
        // is only a guess (the trailer is input too), bounded by the limit.
        let hint = if data.len() >= 4 {
            let t = &data[data.len() - 4..];
            u32::from_le_bytes([t[0], t[1], t[2], t[3]]) as usize
        } else {
            0
        };
        let room = limit.saturating_sub(out.len());
        let mut want = if hint >= rest.len() {
            hint
        } else {
            rest.len().saturating_mul(8)
        }
        .max(4096)
        .min(room);
        loop {
            let start = out.len();
            if permit.is_none() && start.saturating_add(want) > LARGE {
                *permit = Some(large_permit());
            }
            // Not zero-filled: libdeflate writes the bytes and only what it
            // reports written becomes part of `out`.
            out.reserve(want);
            let mut in_used = 0usize;
            let mut out_got = 0usize;
            // SAFETY: the pointers and lengths describe live, correctly sized
            // buffers (`rest` for input, `out[start..]` for output), and the
            // decompressor is valid for the duration of the call.
            let ret = unsafe {
                libdeflate_gzip_decompress_ex(
                    dec.0.as_ptr(),
                    rest.as_ptr().cast(),
                    rest.len(),
                    out.spare_capacity_mut().as_mut_ptr().cast(),
                    want,
                    &mut in_used,
                    &mut out_got,
                )
            };
            #[allow(non_upper_case_globals)]
            match ret {
                libdeflate_result_LIBDEFLATE_SUCCESS => {
                    // SAFETY: libdeflate initialised `out_got <= want` bytes
                    // of the reserved spare capacity.
                    unsafe { out.set_len(start + out_got.min(want)) };
                    pos += in_used.max(1);
                    members += 1;
                    break;
                }
                libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE => {
                    if want >= room {
                        out.clear();
                        return Err(InflateError {
                            reason: format!(
                                "gzip member {} inflates to more than --max-log-bytes ({limit} bytes); not read (a gzip bomb, or far larger than a CloudTrail delivery; raise --max-log-bytes to read it)",
                                members + 1
                            ),
                            over_limit: true,
                        });
                    }
                    want = want.saturating_mul(2).min(room);
                }
                _ => {
                    let recovered = recover_prefix(rest, out, limit, permit);
                    let what = if ret == libdeflate_result_LIBDEFLATE_BAD_DATA {
                        "truncated or damaged gzip data"
                    } else {
                        "gzip data libdeflate could not decode"
                    };
                    return Err(InflateError::damaged(format!(
                        "{what} in member {} (at compressed byte {pos}); {recovered} bytes before the damage recovered",
                        members + 1
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Streams `member` through flate2 and appends whatever it yields before the
/// error, up to `limit` bytes of `out` in all; returns how many bytes that was.
fn recover_prefix(
    member: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
    permit: &mut Option<MutexGuard<'static, ()>>,
) -> usize {
    let before = out.len();
    let mut dec = flate2::read::GzDecoder::new(member);
    let mut chunk = vec![0u8; 64 * 1024];
    while out.len() < limit {
        match dec.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let n = n.min(limit - out.len());
                if permit.is_none() && out.len() + n > LARGE {
                    *permit = Some(large_permit());
                }
                out.extend_from_slice(&chunk[..n]);
            }
        }
    }
    out.len() - before
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    pub fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn multi_member_is_read_whole() {
        let mut data = gz(b"hello ");
        data.extend(gz(b"world"));
        let mut out = Vec::new();
        inflate(&data, &mut out, usize::MAX, &mut None).unwrap();
        assert_eq!(out, b"hello world");
    }

    #[test]
    fn truncated_member_keeps_a_prefix() {
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| i.to_string().into_bytes())
            .collect();
        let data = gz(&text);
        let cut = &data[..data.len() / 2];
        let mut out = Vec::new();
        let e = inflate(cut, &mut out, usize::MAX, &mut None).unwrap_err();
        assert!(e.reason.contains("truncated"), "{}", e.reason);
        assert!(!out.is_empty() && text.starts_with(&out));
    }

    #[test]
    fn output_past_the_limit_is_refused() {
        let data = gz(&vec![0u8; 1 << 20]);
        let mut out = Vec::new();
        let e = inflate(&data, &mut out, 100_000, &mut None).unwrap_err();
        assert!(e.over_limit, "{e:?}");
        assert!(
            e.reason.contains("--max-log-bytes (100000 bytes)"),
            "{}",
            e.reason
        );
        assert!(out.is_empty());
        // Two members that fit alone but not together.
        let mut two = gz(&[b'a'; 60_000]);
        two.extend(gz(&[b'b'; 60_000]));
        let e = inflate(&two, &mut out, 100_000, &mut None).unwrap_err();
        assert!(e.over_limit && e.reason.contains("member 2"), "{e:?}");
        inflate(&two, &mut out, 120_000, &mut None).unwrap();
        assert_eq!(out.len(), 120_000);
    }

    #[test]
    fn garbage_after_a_member_is_an_error() {
        let mut data = gz(b"x");
        data.extend_from_slice(b"junk");
        let mut out = Vec::new();
        assert!(inflate(&data, &mut out, usize::MAX, &mut None).is_err());
        assert_eq!(out, b"x");
    }
}
