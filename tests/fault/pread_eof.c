/*
 * pread_eof.c — fault injection for the CLI tests (LD_PRELOAD): one file
 * reads as if it had been truncated under the reader.
 *
 *   SLIM_FAULT_PREAD_FILE=name   a descriptor whose path ends in /name
 *   SLIM_FAULT_PREAD_END=n       its preads see the file end at byte n
 *                                (short reads, then 0)
 *   SLIM_FAULT_PREAD_SIZE=m      optional: only preads asking for exactly
 *                                m bytes do (the input hash reads whole
 *                                blocks: a file's only, short block is m)
 *
 * Every other read passes through.  Built without sanitizers (the ASan
 * build's test sets verify_asan_link_order=0).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include "fault_fd.h"

static int is_target(int fd) { return fault_fd_is(fd, getenv("SLIM_FAULT_PREAD_FILE")); }

static ssize_t faulty(const char *sym, int fd, void *buf, size_t count, off_t off)
{
    ssize_t (*real)(int, void *, size_t, off_t) = (ssize_t (*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT, sym);
    const char *end = getenv("SLIM_FAULT_PREAD_END"), *size = getenv("SLIM_FAULT_PREAD_SIZE");
    if (end && is_target(fd) && (!size || !*size || (size_t)atoll(size) == count)) {
        off_t e = (off_t)atoll(end);
        if (off >= e) return 0;
        if ((off_t)count > e - off) count = (size_t)(e - off);
    }
    return real(fd, buf, count, off);
}

ssize_t pread(int fd, void *buf, size_t count, off_t off) { return faulty("pread", fd, buf, count, off); }
ssize_t pread64(int fd, void *buf, size_t count, off_t off) { return faulty("pread64", fd, buf, count, off); }
