//! Whole-buffer gzip inflation with libdeflate, member by member.
//!
//! libdeflate's plain `gzip_decompress` stops after the first member and
//! ignores the rest, so a multi-member file (what `cat a.gz b.gz` or some log
//! shippers produce) would silently lose records. The `_ex` entry point says
//! how much input each member used, which lets us continue with the next.

use std::io::Read;
use std::ptr::NonNull;

use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_decompressor, libdeflate_free_decompressor,
    libdeflate_gzip_decompress_ex, libdeflate_result_LIBDEFLATE_BAD_DATA,
    libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE, libdeflate_result_LIBDEFLATE_SUCCESS,
};

/// The gzip magic bytes.
pub fn is_gzip(data: &[u8]) -> bool {
    data.len() >= 2 && data[0] == 0x1f && data[1] == 0x8b
}

/// Why inflation stopped early. `kept` bytes of output are still valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InflateError {
    pub reason: String,
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

/// Inflates every gzip member of `data` into `out` (cleared first). On error
/// `out` holds as much of the stream as could be recovered (decoded with a
/// streaming inflater, since libdeflate returns nothing for a damaged member).
pub fn inflate(data: &[u8], out: &mut Vec<u8>) -> Result<(), InflateError> {
    out.clear();
    let Some(dec) = Decompressor::new() else {
        return Err(InflateError {
            reason: "out of memory allocating the gzip decompressor".into(),
        });
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
            return Err(InflateError {
                reason: format!(
                    "{} bytes of non-gzip data after gzip member {members}",
                    rest.len()
                ),
            });
        }
        // ISIZE of the last member is a good first guess for one member; CloudTrail text
        // compresses about 10-20x, so 8x is a cheap floor for the others.
        let hint = if data.len() >= 4 {
            let t = &data[data.len() - 4..];
            u32::from_le_bytes([t[0], t[1], t[2], t[3]]) as usize
        } else {
            0
        };
        let mut want = if hint >= rest.len() {
            hint
        } else {
            rest.len().saturating_mul(8)
        }
        .max(4096);
        loop {
            let start = out.len();
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
                libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE if want < (1 << 34) => {
                    want = want.saturating_mul(2);
                }
                _ => {
                    let recovered = recover_prefix(rest, out);
                    let what = if ret == libdeflate_result_LIBDEFLATE_BAD_DATA {
                        "truncated or damaged gzip data"
                    } else {
                        "gzip member larger than 16 GiB"
                    };
                    return Err(InflateError {
                        reason: format!(
                            "{what} in member {} (at compressed byte {pos}); {recovered} bytes before the damage recovered",
                            members + 1
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Streams `member` through flate2 and appends whatever it yields before the
/// error; returns how many bytes that was.
fn recover_prefix(member: &[u8], out: &mut Vec<u8>) -> usize {
    let before = out.len();
    let mut dec = flate2::read::GzDecoder::new(member);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match dec.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
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
        inflate(&data, &mut out).unwrap();
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
        let e = inflate(cut, &mut out).unwrap_err();
        assert!(e.reason.contains("truncated"), "{}", e.reason);
        assert!(!out.is_empty() && text.starts_with(&out));
    }

    #[test]
    fn garbage_after_a_member_is_an_error() {
        let mut data = gz(b"x");
        data.extend_from_slice(b"junk");
        let mut out = Vec::new();
        assert!(inflate(&data, &mut out).is_err());
        assert_eq!(out, b"x");
    }
}
