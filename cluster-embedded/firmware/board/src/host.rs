//! What the firmware asks of the machine that runs it, through Arm semihosting (QEMU's
//! `-semihosting-config enable=on,target=native,arg=...`): its command line, a file's
//! contents (the key file), and the exit status. On a board without a debugger attached these
//! calls would stop the core: they are made only at start-up, on a `keys` command, and to
//! exit, and only because the board is an emulated one.

use cortex_m_semihosting::nr;

/// Reads the command line into `buf`; the part that was written, or `None` without a host.
pub fn command_line(buf: &mut [u8]) -> Option<&str> {
    let mut block = [buf.as_mut_ptr() as usize, buf.len()];
    // SAFETY: SYS_GET_CMDLINE writes at most `block[1]` bytes at `block[0]`, a live buffer,
    // and the new length into `block[1]`. The block is passed by address (`syscall1`), so
    // the compiler knows it may have changed.
    let status =
        unsafe { cortex_m_semihosting::syscall1(nr::GET_CMDLINE, block.as_mut_ptr() as usize) };
    let block = core::hint::black_box(block);
    if status != 0 {
        return None;
    }
    // The host also ends the line with a NUL; stop there whatever the length says.
    let len = block[1].min(buf.len());
    let len = buf[..len].iter().position(|&b| b == 0).unwrap_or(len);
    core::str::from_utf8(&buf[..len]).ok()
}

/// Why a file could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileError {
    /// The host could not open it.
    Open,
    /// It is larger than the buffer.
    TooLarge,
    /// The host failed to read it whole.
    Read,
}

/// Reads the whole file at `path` (at most `buf.len() - 1` bytes: the path is copied in front
/// of the contents to get its NUL terminator) into `buf`; the contents.
pub fn read_file<'a>(path: &str, buf: &'a mut [u8]) -> Result<&'a [u8], FileError> {
    // The path, NUL-terminated, is staged at the start of `buf`.
    if path.len() + 1 > buf.len() {
        return Err(FileError::Open);
    }
    buf[..path.len()].copy_from_slice(path.as_bytes());
    buf[path.len()] = 0;
    let open = [buf.as_ptr() as usize, nr::open::R, path.len()];
    // SAFETY: SYS_OPEN reads a NUL-terminated path of the given length from a live buffer.
    let handle = unsafe { cortex_m_semihosting::syscall(nr::OPEN, &open) };
    if handle == usize::MAX {
        return Err(FileError::Open);
    }
    let result = read_open(handle, buf);
    // SAFETY: SYS_CLOSE takes the handle SYS_OPEN returned.
    unsafe { cortex_m_semihosting::syscall(nr::CLOSE, &[handle]) };
    result
}

fn read_open(handle: usize, buf: &mut [u8]) -> Result<&[u8], FileError> {
    // SAFETY: SYS_FLEN only reads the handle.
    let len = unsafe { cortex_m_semihosting::syscall(nr::FLEN, &[handle]) };
    if len == usize::MAX {
        return Err(FileError::Read);
    }
    if len > buf.len() {
        return Err(FileError::TooLarge);
    }
    let read = [handle, buf.as_mut_ptr() as usize, len];
    // SAFETY: SYS_READ writes at most `len` bytes into `buf`, which holds them; `buf` is
    // then read through `black_box`, so the compiler assumes it changed.
    let unread = unsafe { cortex_m_semihosting::syscall(nr::READ, &read) };
    let buf = core::hint::black_box(buf);
    if unread != 0 {
        return Err(FileError::Read);
    }
    Ok(&buf[..len])
}

/// Ends the emulation with a failure status (after a fatal error the firmware cannot fix).
pub fn exit_failure() -> ! {
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
