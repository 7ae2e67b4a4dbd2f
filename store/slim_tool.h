/*
 * slim_tool.h — support shared by the slim-* command-line tools.  Not part of
 * the library's contract in slim.h: the library itself never prints or
 * exits; these functions do, and only the tools' main files call them.
 */
#ifndef SLIM_TOOL_H
#define SLIM_TOOL_H

/* Name the running tool for messages ("slim-ingest"); call first in main. */
void slim_tool_init(const char *name);

/*
 * For a tool that touches a lot of fresh memory (slim-ingest: batch pools,
 * encoded records, LMDB's dirty pages): one malloc arena whose heap grows
 * in 256 MiB steps, is never trimmed, and is advised for transparent huge
 * pages, where the kernel offers them on request (THP "madvise" mode).  On
 * the development VM a first touch of a fresh 4 KiB page cost ~10 µs, and
 * the first two batches of a dense ingest spent 1.6-2.1x the CPU of the
 * others encoding (docs/BENCHMARKS.md, "Ingest", session 5).  Call once,
 * first thing in main, before any thread exists.  Advice only: with another
 * allocator (a sanitizer's, say) or without THP nothing changes but the
 * settings.
 */
void slim_tool_big_heap(void);

/* git-style fatal error: "<tool>: <message>" on stderr, then exit(code)
 * (1 = runtime error, 2 = usage error). */
void slim_die(int code, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

#endif
