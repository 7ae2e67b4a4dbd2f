/*
 * tool.c — slim_tool.h: message helpers for the command-line tools.
 */
#include "slim_tool.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

static const char *tool_name = "slim";

void slim_tool_init(const char *name) { tool_name = name; }

void slim_tool_big_heap(void)
{
#if defined(__GLIBC__) && defined(M_ARENA_MAX)
    /* every thread in the main arena, every block under 32 MiB from its
     * heap (glibc would otherwise mmap large blocks one by one, in 4 KiB
     * pages), the heap grown 256 MiB at a time and kept */
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_TOP_PAD, 256 << 20);
    char *lo = sbrk(0);
    void *volatile p = malloc(1 << 20);  /* grows the heap by the pad, now
                                            (volatile: not elided with the free) */
    char *hi = sbrk(0);
    free(p);
#ifdef MADV_HUGEPAGE
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)lo + pg - 1) & ~(pg - 1), e = (uintptr_t)hi & ~(pg - 1);
    if (lo != (char *)-1 && hi != (char *)-1 && e > a) madvise((void *)a, e - a, MADV_HUGEPAGE);
#endif
#endif
}

void slim_die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", tool_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}
