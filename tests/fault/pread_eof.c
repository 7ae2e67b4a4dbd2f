/*
 * pread_eof.c — fault injection for the CLI tests (LD_PRELOAD): the reads
 * of one file end early, as if it had been truncated under the reader.
 *
 *   SLIM_FAULT_PREAD_FILE=name   a descriptor whose path ends in /name
 *   SLIM_FAULT_PREAD_AFTER=n     its first n preads succeed; later ones
 *                                return 0 (end of file)
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

static long seen;

static int is_target(int fd)
{
    const char *name = getenv("SLIM_FAULT_PREAD_FILE");
    if (!name || !*name) return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    size_t ln = strlen(name), lp = (size_t)n;
    return lp > ln && path[lp - ln - 1] == '/' && !strcmp(path + lp - ln, name);
}

static ssize_t faulty(const char *sym, int fd, void *buf, size_t count, off_t off)
{
    ssize_t (*real)(int, void *, size_t, off_t) = (ssize_t (*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT, sym);
    if (is_target(fd)) {
        const char *after = getenv("SLIM_FAULT_PREAD_AFTER");
        if (__atomic_fetch_add(&seen, 1, __ATOMIC_SEQ_CST) >= (after ? atol(after) : 0)) return 0;
    }
    return real(fd, buf, count, off);
}

ssize_t pread(int fd, void *buf, size_t count, off_t off) { return faulty("pread", fd, buf, count, off); }
ssize_t pread64(int fd, void *buf, size_t count, off_t off) { return faulty("pread64", fd, buf, count, off); }
