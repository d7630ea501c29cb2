//! Keeping a long-running `socle serve` small: the binary holds DataFusion, delta-rs and
//! every connector (hundreds of MB of code), and the kernel reads ahead around each page
//! of code a request touches, so a daemon's resident memory fills with code it never runs.
//! Marking the executable's mappings `MADV_RANDOM` turns that read-ahead off for them: only
//! the code that runs is resident. (Short commands do not bother.)

/// Advises the kernel that the executable's own file mappings are read at random.
pub fn no_readahead_for_code() {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return;
    };
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    let exe = exe.to_string_lossy();
    for line in maps.lines() {
        // `start-end perms offset dev inode path`
        let mut parts = line.split_whitespace();
        let (Some(range), Some(_perms)) = (parts.next(), parts.next()) else {
            continue;
        };
        if parts.nth(3).map(|p| p == exe.as_ref()) != Some(true) {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        // SAFETY: madvise(2) on a mapping of this process, with advice that changes only
        // how pages are read in, never their contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_RANDOM);
        }
    }
}
