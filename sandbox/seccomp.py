"""A seccomp deny-list for the sandboxed child, in plain classic BPF (no libseccomp).

The child installs it on itself (after ``PR_SET_NO_NEW_PRIVS``, before reading any user
byte). It refuses with EPERM the system calls a job never needs and kernel exploits
and escapes usually start from: new namespaces (``unshare``, ``setns``, ``clone`` with a
``CLONE_NEW*`` flag - an unprivileged user namespace would give the job every
capability inside it), mounts, ``chroot``, ``ptrace`` and cross-process memory access,
``bpf``, ``perf_event_open``, ``userfaultfd``, ``io_uring``, keyrings, modules, kexec,
reboot, swap, clock setting, and what attempts would share with each other or leave
behind (``socket``, System V IPC, POSIX message queues). ``clone3`` answers ENOSYS, so
the C library falls back to ``clone``, whose flags a classic filter can inspect. A call
from another ABI (x32, or 32-bit on x86_64) kills the process.

Only x86_64 and aarch64 are described; elsewhere ``install`` returns False and the
engine reports the layer as off.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct
from typing import Any

__all__ = ["available", "install"]

_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_RET_ALLOW = 0x7FFF0000
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_CLONE_NEW_FLAGS = 0x7E020000  # NEWNS NEWCGROUP NEWUTS NEWIPC NEWUSER NEWPID NEWNET
_X32_BIT = 0x40000000

_DENIED = (
    "unshare setns mount umount2 pivot_root chroot ptrace process_vm_readv process_vm_writev bpf "
    "perf_event_open keyctl add_key request_key userfaultfd kexec_load kexec_file_load init_module "
    "finit_module delete_module swapon swapoff reboot acct settimeofday clock_settime open_by_handle_at "
    "name_to_handle_at io_uring_setup io_uring_enter io_uring_register fsopen fsmount fspick move_mount "
    "open_tree mount_setattr personality syslog quotactl vhangup "
    # Shared between attempts and outliving them: sockets (no network, but loopback and
    # abstract unix names are one namespace for every attempt; a socketpair() end could
    # be bound to a name or connected to one) and System V and POSIX message IPC
    # objects. Pipes and connected socketpair() ends stay.
    "socket bind connect listen accept accept4 shmget semget msgget mq_open"
).split()

_X86_64 = {
    "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161,
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "bpf": 321, "perf_event_open": 298,
    "keyctl": 250, "add_key": 248, "request_key": 249, "userfaultfd": 323, "kexec_load": 246,
    "kexec_file_load": 320, "init_module": 175, "finit_module": 313, "delete_module": 176, "swapon": 167,
    "swapoff": 168, "reboot": 169, "acct": 163, "settimeofday": 164, "clock_settime": 227,
    "open_by_handle_at": 304, "name_to_handle_at": 303, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "fsopen": 430, "fsmount": 432, "fspick": 433, "move_mount": 429,
    "open_tree": 428, "mount_setattr": 442, "personality": 135, "syslog": 103, "quotactl": 179,
    "vhangup": 153, "socket": 41, "bind": 49, "connect": 42, "listen": 50, "accept": 43, "accept4": 288,
    "shmget": 29, "semget": 64, "msgget": 68, "mq_open": 240,
    "clone": 56, "clone3": 435,
}
_AARCH64 = {
    "unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "ptrace": 117,
    "process_vm_readv": 270, "process_vm_writev": 271, "bpf": 280, "perf_event_open": 241, "keyctl": 219,
    "add_key": 217, "request_key": 218, "userfaultfd": 282, "kexec_load": 104, "kexec_file_load": 294,
    "init_module": 105, "finit_module": 273, "delete_module": 106, "swapon": 224, "swapoff": 225,
    "reboot": 142, "acct": 89, "settimeofday": 170, "clock_settime": 112, "open_by_handle_at": 265,
    "name_to_handle_at": 264, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "fsopen": 430, "fsmount": 432, "fspick": 433, "move_mount": 429, "open_tree": 428, "mount_setattr": 442,
    "personality": 92, "syslog": 116, "quotactl": 60, "vhangup": 58, "socket": 198, "bind": 200,
    "connect": 203, "listen": 201, "accept": 202, "accept4": 242, "shmget": 194,
    "semget": 190, "msgget": 186, "mq_open": 180, "clone": 220, "clone3": 435,
}
_ARCHES = {"x86_64": (0xC000003E, _X86_64, True), "aarch64": (0xC00000B7, _AARCH64, False)}


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def _program() -> bytes | None:
    arch = _ARCHES.get(platform.machine())
    if arch is None:
        return None
    audit_arch, numbers, has_x32 = arch
    eperm = _RET_ERRNO | errno.EPERM
    prog = [
        _insn(_LD_W_ABS, 4),  # seccomp_data.arch
        _insn(_JEQ_K, audit_arch, 1, 0),
        _insn(_RET_K, _RET_KILL_PROCESS),
        _insn(_LD_W_ABS, 0),  # seccomp_data.nr
    ]
    if has_x32:
        prog += [_insn(_JGE_K, _X32_BIT, 0, 1), _insn(_RET_K, _RET_KILL_PROCESS)]
    for name in _DENIED:
        prog += [_insn(_JEQ_K, numbers[name], 0, 1), _insn(_RET_K, eperm)]
    prog += [_insn(_JEQ_K, numbers["clone3"], 0, 1), _insn(_RET_K, _RET_ERRNO | errno.ENOSYS)]
    # clone: refuse any CLONE_NEW* flag in the low word of args[0] (offset 16).
    prog += [
        _insn(_JEQ_K, numbers["clone"], 0, 3),
        _insn(_LD_W_ABS, 16),
        _insn(_JSET_K, _CLONE_NEW_FLAGS, 0, 1),
        _insn(_RET_K, eperm),
        _insn(_RET_K, _RET_ALLOW),
    ]
    return b"".join(prog)


_PROGRAM = _program()


def available() -> bool:
    return _PROGRAM is not None


def _prepared() -> tuple[Any, Any, Any] | None:
    """The filter and libc, built before the zygote forks so each child only calls prctl."""
    if _PROGRAM is None:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    buffer = ctypes.create_string_buffer(_PROGRAM, len(_PROGRAM))
    fprog = _SockFprog(len(_PROGRAM) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    return libc, buffer, fprog


_PREPARED = _prepared()


def install() -> bool:
    """Install the filter on the calling process; needs PR_SET_NO_NEW_PRIVS first."""
    if _PREPARED is None:
        return False
    libc, _, fprog = _PREPARED
    try:
        return libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) == 0
    except (OSError, AttributeError):
        return False
