/*
 * sync_fault.c — fault injection for the CLI tests (LD_PRELOAD): slow or
 * failing syncs, for what the store does while a commit waits for the disk
 * or after the disk refused one.
 *
 *   SLIM_FAULT_SYNC_MS=m     every fsync/fdatasync sleeps m ms first
 *   SLIM_FAULT_SYNC_FAIL=n   the n-th of them (from 1, counted over the
 *                            process) fails with EIO and syncs nothing
 *   SLIM_FAULT_SYNC_FILE=f   optional: only syncs of a file whose path ends
 *                            in /f are counted, slowed and can fail
 *
 * LMDB and SQLite both sync through these two calls.  Built without
 * sanitizers, like pread_eof.c.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include "fault_fd.h"

static int fault(int fd)
{
    static long calls;
    const char *ms = getenv("SLIM_FAULT_SYNC_MS"), *fail = getenv("SLIM_FAULT_SYNC_FAIL"),
               *file = getenv("SLIM_FAULT_SYNC_FILE");
    if (file && *file && !fault_fd_is(fd, file)) return 0;
    long n = __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED);
    if (ms && atol(ms) > 0) {
        long m = atol(ms);
        struct timespec t = { m / 1000, (m % 1000) * 1000000L };
        nanosleep(&t, NULL);
    }
    if (fail && atol(fail) == n) {
        errno = EIO;
        return -1;
    }
    return 0;
}

int fsync(int fd)
{
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return fault(fd) ? -1 : real(fd);
}

int fdatasync(int fd)
{
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return fault(fd) ? -1 : real(fd);
}
